//! Notifications: a word of event bits that cells set and one vCPU takes.
//!
//! A [`Notification`] is the kernel object behind a notification capability: a 64-bit word
//! and at most one blocked waiter. `SIGNAL` ORs bits into the word ([`Notification::signal`]);
//! `WAIT` takes every set bit at once or blocks until one is set ([`Notification::wait`]);
//! `POLL` takes them without blocking ([`Notification::poll`]). Taking bits clears them.
//! The kernel calls these methods under its lock; they only decide, and the kernel moves the
//! bits into registers and blocks or wakes the vCPUs.
//!
//! Invariants, checked by a randomized test against a reference:
//! - no bit is lost or duplicated: every bit set by a signal is returned exactly once (by a
//!   wait, a poll or the wake-up of a signal), however many signals set it before it was
//!   taken (signals OR-merge);
//! - a waiter is recorded only while the word is 0, so a recorded waiter means "blocked";
//! - there is at most one waiter: a second vCPU waiting is refused
//!   ([`NotificationError::WaiterPresent`]) rather than forgetting the first;
//! - a waiter is forgotten only when it is woken or its cell stops
//!   ([`Notification::waiter_lost`]); the bits stay in the word for the next waiter.

use crate::ipc::VcpuRef;
use abi::hvc::HvcError;
#[cfg(test)]
use core::fmt;

/// Why a notification operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotificationError {
    /// Another vCPU is already blocked waiting on this notification.
    WaiterPresent,
}

impl NotificationError {
    /// The hypercall error code.
    pub const fn to_hvc(self) -> HvcError {
        match self {
            Self::WaiterPresent => HvcError::InvalidArgument,
        }
    }
}

// The kernel returns these as hypercall codes and never renders them: the text is
// for the tests.
#[cfg(test)]
impl fmt::Display for NotificationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WaiterPresent => {
                f.write_str("another vCPU is already waiting on this notification")
            }
        }
    }
}

/// One notification's word and blocked waiter. See the module documentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notification {
    bits: u64,
    waiter: Option<VcpuRef>,
}

impl Notification {
    /// No bits set, nobody waiting.
    pub const fn new() -> Self {
        Notification {
            bits: 0,
            waiter: None,
        }
    }

    /// ORs `bits` into the word. If a vCPU is blocked waiting and the word is now non-zero,
    /// it takes every bit (the word is cleared) and is returned with them, to be woken with
    /// the bits in `x1`.
    pub fn signal(&mut self, bits: u64) -> Option<(VcpuRef, u64)> {
        self.bits |= bits;
        if self.bits == 0 {
            return None;
        }
        let waiter = self.waiter.take()?;
        Some((waiter, core::mem::take(&mut self.bits)))
    }

    /// `waiter` waits: `Ok(Some(bits))` at once if any bit is set (the word is cleared),
    /// else `Ok(None)` and `waiter` is recorded as blocked. Waiting again while recorded
    /// changes nothing; another vCPU than the recorded one is refused.
    pub fn wait(&mut self, waiter: VcpuRef) -> Result<Option<u64>, NotificationError> {
        match self.waiter {
            Some(blocked) if blocked != waiter => Err(NotificationError::WaiterPresent),
            _ if self.bits != 0 => {
                self.waiter = None;
                Ok(Some(core::mem::take(&mut self.bits)))
            }
            _ => {
                self.waiter = Some(waiter);
                Ok(None)
            }
        }
    }

    /// Takes the word (possibly 0) without blocking.
    pub fn poll(&mut self) -> u64 {
        core::mem::take(&mut self.bits)
    }

    /// A cell stopped: forget its vCPU if it is the blocked waiter. The bits stay.
    pub fn waiter_lost(&mut self, cell: u16) {
        if self.waiter.is_some_and(|waiter| waiter.cell == cell) {
            self.waiter = None;
        }
    }

    /// The blocked waiter, if any.
    pub fn waiter(&self) -> Option<VcpuRef> {
        self.waiter
    }

    /// The bits set and not yet taken.
    pub fn pending(&self) -> u64 {
        self.bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_random::Random;

    const A: VcpuRef = VcpuRef { cell: 1, vcpu: 0 };
    const B: VcpuRef = VcpuRef { cell: 2, vcpu: 3 };

    #[test]
    fn wait_takes_set_bits_at_once() {
        let mut notification = Notification::new();
        assert_eq!(notification.signal(0b101), None);
        assert_eq!(notification.signal(0b110), None);
        assert_eq!(notification.pending(), 0b111);
        assert_eq!(notification.wait(A), Ok(Some(0b111)));
        assert_eq!(notification.pending(), 0);
        assert_eq!(notification.waiter(), None);
    }

    #[test]
    fn a_blocked_waiter_takes_the_next_signal() {
        let mut notification = Notification::new();
        assert_eq!(notification.wait(A), Ok(None));
        assert_eq!(notification.waiter(), Some(A));
        // Waiting again is harmless; a second vCPU is refused, not swapped in.
        assert_eq!(notification.wait(A), Ok(None));
        assert_eq!(notification.wait(B), Err(NotificationError::WaiterPresent));
        // A signal of no bits wakes nobody.
        assert_eq!(notification.signal(0), None);
        assert_eq!(notification.waiter(), Some(A));
        assert_eq!(notification.signal(1 << 63), Some((A, 1 << 63)));
        assert_eq!(notification.waiter(), None);
        assert_eq!(notification.pending(), 0);
        assert_eq!(notification.signal(4), None);
        assert_eq!(notification.wait(B), Ok(Some(4)));
    }

    #[test]
    fn poll_takes_without_blocking() {
        let mut notification = Notification::new();
        assert_eq!(notification.poll(), 0);
        notification.signal(9);
        assert_eq!(notification.poll(), 9);
        assert_eq!(notification.poll(), 0);
        assert_eq!(notification.waiter(), None);
    }

    #[test]
    fn a_stopped_cell_stops_waiting_and_the_bits_stay() {
        let mut notification = Notification::new();
        assert_eq!(notification.wait(A), Ok(None));
        notification.waiter_lost(B.cell);
        assert_eq!(notification.waiter(), Some(A));
        notification.waiter_lost(A.cell);
        assert_eq!(notification.waiter(), None);
        assert_eq!(notification.signal(2), None);
        notification.waiter_lost(A.cell);
        assert_eq!(notification.wait(B), Ok(Some(2)));
        assert_eq!(
            NotificationError::WaiterPresent.to_hvc(),
            HvcError::InvalidArgument
        );
        assert!(!NotificationError::WaiterPresent.to_string().is_empty());
    }

    /// Per bit: how many signals set it since it was last taken. A taken bit must have been
    /// set (not duplicated); at the end, every set bit must have been taken (not lost).
    struct Ledger([u32; 64]);

    impl Ledger {
        fn set(&mut self, bits: u64) {
            for (bit, count) in self.0.iter_mut().enumerate() {
                if bits & (1 << bit) != 0 {
                    *count += 1;
                }
            }
        }

        fn take(&mut self, bits: u64) {
            for (bit, count) in self.0.iter_mut().enumerate() {
                if bits & (1 << bit) != 0 {
                    assert!(*count > 0, "bit {bit} returned without a signal");
                    *count = 0;
                }
            }
        }

        fn outstanding(&self) -> u64 {
            self.0
                .iter()
                .enumerate()
                .filter(|(_, count)| **count > 0)
                .fold(0, |word, (bit, _)| word | 1 << bit)
        }
    }

    #[test]
    fn randomized_bits_are_never_lost_or_duplicated() {
        let mut random = Random(0x2545_f491_4f6c_dd1d);
        let vcpus = [A, B, VcpuRef { cell: 1, vcpu: 1 }];
        let mut wake_ups = 0;
        for _ in 0..100 {
            let mut notification = Notification::new();
            let mut ledger = Ledger([0; 64]);
            let mut blocked: Option<VcpuRef> = None;
            for _ in 0..300 {
                let vcpu = vcpus[random.below(3) as usize];
                match random.below(5) {
                    0 | 1 => {
                        // Sparse bit patterns, so bits are often set again before taken.
                        let bits = match random.below(3) {
                            0 => 0,
                            1 => 1 << random.below(64),
                            _ => random.next() & random.next() & random.next(),
                        };
                        ledger.set(bits);
                        let word = ledger.outstanding();
                        let woken = notification.signal(bits);
                        match (blocked, word) {
                            (Some(waiter), 1..) => {
                                assert_eq!(woken, Some((waiter, word)));
                                ledger.take(word);
                                blocked = None;
                                wake_ups += 1;
                            }
                            _ => assert_eq!(woken, None),
                        }
                    }
                    2 => {
                        let word = ledger.outstanding();
                        let result = notification.wait(vcpu);
                        match blocked {
                            Some(waiter) if waiter != vcpu => {
                                assert_eq!(result, Err(NotificationError::WaiterPresent));
                            }
                            _ if word != 0 => {
                                assert_eq!(result, Ok(Some(word)));
                                ledger.take(word);
                            }
                            _ => {
                                assert_eq!(result, Ok(None));
                                blocked = Some(vcpu);
                            }
                        }
                    }
                    3 => {
                        let word = notification.poll();
                        assert_eq!(word, ledger.outstanding());
                        ledger.take(word);
                    }
                    _ => {
                        notification.waiter_lost(vcpu.cell);
                        if blocked.is_some_and(|waiter| waiter.cell == vcpu.cell) {
                            blocked = None;
                        }
                    }
                }
                assert_eq!(notification.waiter(), blocked);
                assert_eq!(notification.pending(), ledger.outstanding());
                if blocked.is_some() {
                    assert_eq!(notification.pending(), 0);
                }
            }
            let rest = notification.poll();
            ledger.take(rest);
            assert_eq!(ledger.outstanding(), 0, "bits lost");
        }
        assert!(wake_ups > 100, "only {wake_ups} wake-ups exercised");
    }
}
