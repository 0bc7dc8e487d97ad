//! Deterministic randomness for the randomized tests (xorshift64): no dependency, the same
//! sequence on every run, so a failure is reproducible from its seed.

/// A xorshift64 generator; the seed must not be zero.
pub(crate) struct Random(pub(crate) u64);

impl Random {
    /// The next value.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..bound` (`bound` > 0).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}
