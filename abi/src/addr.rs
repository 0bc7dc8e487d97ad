//! Address and identifier newtypes.
//!
//! A physical address ([`Pa`]) and an intermediate physical address ([`Ipa`], what a cell
//! sees) are different types so that one can never be passed for the other. Arithmetic
//! that can overflow is checked and returns `None`.

/// Size of the translation granule used everywhere (4 KiB).
pub const PAGE_SIZE: u64 = 4096;

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw address.
            pub const fn raw(self) -> u64 {
                self.0
            }
            /// `self + bytes`, or `None` on overflow.
            pub const fn checked_add(self, bytes: u64) -> Option<Self> {
                match self.0.checked_add(bytes) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
            /// Whether the address is a multiple of `align` (a power of two).
            #[cfg(test)]
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

address_type!(
    /// A physical address on the board.
    Pa
);
address_type!(
    /// An intermediate physical address: an address in a cell's stage-2 address space.
    Ipa
);

/// Index of a cell in the boot plan (0-based, in description order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellId(pub u16);

/// Index of a physical core, in the order of the DTB's `/cpus` nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoreId(pub u8);

/// Rounds `value` up to a multiple of `align` (a power of two), or `None` on overflow.
pub const fn align_up(value: u64, align: u64) -> Option<u64> {
    match value.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Whether `[a, a+a_len)` and `[b, b+b_len)` share a byte. Empty ranges overlap nothing.
pub const fn ranges_overlap(a: u64, a_len: u64, b: u64, b_len: u64) -> bool {
    if a_len == 0 || b_len == 0 {
        return false;
    }
    // Compare inclusive ends so that ranges ending at 2^64 do not overflow.
    let a_last = a.saturating_add(a_len - 1);
    let b_last = b.saturating_add(b_len - 1);
    a <= b_last && b <= a_last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_up_rounds_and_detects_overflow() {
        assert_eq!(align_up(0, 4096), Some(0));
        assert_eq!(align_up(1, 4096), Some(4096));
        assert_eq!(align_up(4096, 4096), Some(4096));
        assert_eq!(align_up(u64::MAX, 4096), None);
    }

    #[test]
    fn overlap_edges() {
        assert!(!ranges_overlap(0, 10, 10, 10));
        assert!(ranges_overlap(0, 11, 10, 10));
        assert!(!ranges_overlap(0, 0, 0, 10));
        assert!(ranges_overlap(u64::MAX - 1, 2, u64::MAX, 1));
    }

    #[test]
    fn checked_address_arithmetic() {
        assert_eq!(Pa(u64::MAX).checked_add(1), None);
        assert_eq!(Ipa(0x4000_0000).checked_add(0x1000), Some(Ipa(0x4000_1000)));
        assert!(Pa(0x20_0000).is_aligned(0x20_0000));
    }
}
