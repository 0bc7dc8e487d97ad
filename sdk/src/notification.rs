//! Notifications: a word of bits one cell sets and another waits for.
//!
//! Safe wrappers of [`abi::hvc::SIGNAL`], [`abi::hvc::WAIT`] and [`abi::hvc::POLL`]. A
//! notification is a 64-bit word in the kernel: SIGNAL ORs bits into it (it never blocks
//! and never loses a bit: signals before the wait are kept), WAIT blocks until some bit is
//! set and takes (returns and clears) all of them, POLL takes them without blocking. Several
//! signals before one wait therefore arrive as one word, their bits ORed together. A cell
//! reaches a notification through a capability slot with the signal right, the wait right,
//! or both.
//!
//! Errors: [`HvcError::InvalidCapability`] for a slot beyond the cell's table,
//! [`HvcError::Denied`] for an empty slot, another kind or a missing right, and
//! [`HvcError::InvalidArgument`] for a SIGNAL of no bits. No `core::fmt` here: cells with
//! FP/SIMD trapped may use this module.

use crate::hvc::{abi_mismatch, call, HvcError};
use abi::hvc::{POLL, SIGNAL, WAIT};

/// A notification capability: the slot of a notification capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The capability slot.
    pub slot: u32,
}

impl Notification {
    /// The notification capability in `slot`.
    pub const fn new(slot: u32) -> Self {
        Self { slot }
    }

    /// Sets `bits` (non-zero) in the notification, waking its waiter; needs the signal right.
    #[inline(always)]
    pub fn signal(&self, bits: u64) -> Result<(), HvcError> {
        call(SIGNAL, [u64::from(self.slot), bits, 0, 0, 0]).map(|_| ())
    }

    /// Blocks until some bit is set, then takes them all: returns the bits (never 0) and
    /// clears them. Needs the wait right. A kernel answering 0 is an ABI mismatch (the cell
    /// exits with code 103).
    #[inline(always)]
    pub fn wait(&self) -> Result<u64, HvcError> {
        let [bits, _, _, _] = call(WAIT, [u64::from(self.slot), 0, 0, 0, 0])?;
        if bits == 0 {
            abi_mismatch();
        }
        Ok(bits)
    }

    /// Takes the bits set so far without blocking: returns them (possibly 0) and clears them.
    /// Needs the wait right.
    #[inline(always)]
    pub fn poll(&self) -> Result<u64, HvcError> {
        let [bits, _, _, _] = call(POLL, [u64::from(self.slot), 0, 0, 0, 0])?;
        Ok(bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{set_peer, with};
    use crate::hvc::tests::exit_code_of;

    #[test]
    fn signals_accumulate_until_taken() {
        let notification = Notification::new(2);
        assert_eq!(notification.poll(), Ok(0));
        notification.signal(0b0101).unwrap();
        notification.signal(0b1000).unwrap();
        assert_eq!(notification.wait(), Ok(0b1101));
        assert_eq!(notification.poll(), Ok(0));
        with(|kernel| {
            assert_eq!(
                kernel.calls,
                [
                    (POLL, [2, 0, 0, 0, 0]),
                    (SIGNAL, [2, 0b0101, 0, 0, 0]),
                    (SIGNAL, [2, 0b1000, 0, 0, 0]),
                    (WAIT, [2, 0, 0, 0, 0]),
                    (POLL, [2, 0, 0, 0, 0]),
                ]
            );
        });
    }

    #[test]
    fn wait_blocks_until_the_peer_signals() {
        set_peer(|| Notification::new(0).signal(1 << 63).unwrap());
        assert_eq!(Notification::new(0).wait(), Ok(1 << 63));
    }

    #[test]
    fn errors_are_returned_and_a_wait_for_nothing_is_a_mismatch() {
        with(|kernel| kernel.next_status = Some(HvcError::InvalidCapability.code()));
        assert_eq!(
            Notification::new(1000).signal(1),
            Err(HvcError::InvalidCapability)
        );
        with(|kernel| kernel.next_status = Some(HvcError::Denied.code()));
        assert_eq!(Notification::new(0).wait(), Err(HvcError::Denied));
        with(|kernel| kernel.next_results = Some([0; 5]));
        assert_eq!(
            exit_code_of(|| {
                let _ = Notification::new(0).wait();
            }),
            103
        );
    }
}
