//! Synchronous IPC: calling an endpoint and serving one.
//!
//! Safe wrappers of [`abi::hvc::CALL`] and [`abi::hvc::REPLY_WAIT`]. An endpoint joins
//! callers and one server; a cell reaches it through a capability in its table, named by
//! its slot (the position of the endpoint's name in the cell's `caps = [...]` list in the
//! system description). A message and a reply are [`MESSAGE_WORDS`] words, carried in
//! registers: nothing is copied through memory, and the kernel never writes the cell's
//! memory for IPC.
//!
//! - A client holds an [`Endpoint`] (a capability with the call right) and uses
//!   [`Endpoint::call`]: the calling vCPU blocks until the server replies.
//! - A server holds a [`Server`] (the serve right) and runs [`Server::serve`] with a handler,
//!   or drives [`Server::reply_wait`] itself: each REPLY_WAIT replies to the call being
//!   served (if any) and blocks until the next call, which arrives with the caller's badge
//!   (fixed per calling capability by the system description).
//!
//! Errors, as the kernel reports them: [`HvcError::InvalidCapability`] for a slot beyond the
//! cell's table, [`HvcError::Denied`] for an empty slot, another kind or a missing right
//! (both counted as denials for the cell); for a call, [`HvcError::PeerFault`] if the server
//! faulted, stopped or restarted while it held the call, and [`HvcError::PeerStopped`] if the
//! server's cell is stopped. These functions use no `core::fmt`, so cells running with
//! FP/SIMD trapped may use them.

use crate::hvc::{abi_mismatch, call, call_with_five_results, HvcError};
use abi::hvc::{CALL, REPLY_WAIT};

pub use abi::hvc::MESSAGE_WORDS;

/// The words of a call or a reply.
pub type Message = [u64; MESSAGE_WORDS];

/// A capability to call an endpoint: the slot of an endpoint capability with the call right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The capability slot.
    pub slot: u32,
}

impl Endpoint {
    /// The endpoint capability in `slot`.
    pub const fn new(slot: u32) -> Self {
        Self { slot }
    }

    /// Sends `message` to the endpoint's server and blocks until it replies; returns the
    /// reply.
    ///
    /// Errors: [`HvcError::InvalidCapability`], [`HvcError::Denied`] (see the module docs),
    /// [`HvcError::PeerFault`] (the server faulted, stopped or restarted holding this call: it
    /// may or may not have acted on it) and [`HvcError::PeerStopped`] (the server is stopped;
    /// the call was not delivered).
    #[inline(always)]
    pub fn call(&self, message: Message) -> Result<Message, HvcError> {
        let [word0, word1, word2, word3] = message;
        call(CALL, [u64::from(self.slot), word0, word1, word2, word3])
    }
}

/// A capability to serve an endpoint: the slot of an endpoint capability with the serve right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Server {
    /// The capability slot.
    pub slot: u32,
}

impl Server {
    /// The endpoint capability in `slot`.
    pub const fn new(slot: u32) -> Self {
        Self { slot }
    }

    /// Replies `reply` to the call being served (ignored if none: the first time, or after
    /// the caller went away) and blocks until the next call; returns the caller's badge and
    /// the message.
    ///
    /// Errors: [`HvcError::InvalidCapability`] and [`HvcError::Denied`] (see the module docs);
    /// nothing was received then. A badge that does not fit 32 bits is an ABI mismatch (the
    /// cell exits with code 103).
    #[inline(always)]
    pub fn reply_wait(&self, reply: Message) -> Result<(u32, Message), HvcError> {
        let [word0, word1, word2, word3] = reply;
        let [badge, message0, message1, message2, message3] = call_with_five_results(
            REPLY_WAIT,
            [u64::from(self.slot), word0, word1, word2, word3],
        )?;
        let badge = u32::try_from(badge).unwrap_or_else(|_| abi_mismatch());
        Ok((badge, [message0, message1, message2, message3]))
    }

    /// Serves calls forever: each call's badge and message go to `handler`, whose result is
    /// the reply.
    ///
    /// Returns only when the kernel refuses a REPLY_WAIT (the slot is not an endpoint this
    /// cell may serve), with that error: a refusal would repeat on every try, so looping on
    /// it would only burn the core. The reply to the call being served then is not sent.
    pub fn serve(&self, mut handler: impl FnMut(u32, Message) -> Message) -> HvcError {
        let mut reply = [0; MESSAGE_WORDS];
        loop {
            match self.reply_wait(reply) {
                Ok((badge, message)) => reply = handler(badge, message),
                Err(error) => return error,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::host::with;
    use crate::hvc::tests::exit_code_of;
    use std::vec::Vec;

    #[test]
    fn call_passes_slot_and_message_and_returns_the_reply() {
        assert_eq!(Endpoint::new(3).call([1, 2, 3, u64::MAX]), Ok([2, 3, 4, 0]));
        with(|kernel| {
            assert_eq!(kernel.calls, [(CALL, [3, 1, 2, 3, u64::MAX])]);
            kernel.next_status = Some(HvcError::PeerFault.code());
        });
        assert_eq!(Endpoint { slot: 0 }.call([0; 4]), Err(HvcError::PeerFault));
    }

    #[test]
    fn reply_wait_sends_the_reply_and_decodes_badge_and_message() {
        with(|kernel| kernel.incoming.push_back((7, [10, 20, 30, 40])));
        assert_eq!(
            Server::new(1).reply_wait([5, 6, 7, 8]),
            Ok((7, [10, 20, 30, 40]))
        );
        with(|kernel| {
            assert_eq!(kernel.calls, [(REPLY_WAIT, [1, 5, 6, 7, 8])]);
            assert_eq!(kernel.replies, [[5, 6, 7, 8]]);
        });
        assert_eq!(Server::new(1).reply_wait([0; 4]), Err(HvcError::Denied));
    }

    #[test]
    fn a_badge_beyond_32_bits_is_an_abi_mismatch() {
        with(|kernel| {
            kernel.incoming.push_back((0, [0; 4]));
            kernel.next_results = Some([1 << 32, 0, 0, 0, 0]);
        });
        assert_eq!(
            exit_code_of(|| {
                let _ = Server::new(0).reply_wait([0; 4]);
            }),
            103
        );
    }

    #[test]
    fn serve_replies_with_the_handler_result_to_each_call_in_turn() {
        with(|kernel| {
            kernel.incoming.push_back((1, [1, 2, 3, 4]));
            kernel.incoming.push_back((2, [100, 0, 0, u64::MAX]));
        });
        let mut badges = Vec::new();
        let error = Server::new(0).serve(|badge, message| {
            badges.push(badge);
            message.map(|word| word.wrapping_add(u64::from(badge)))
        });
        assert_eq!(error, HvcError::Denied);
        assert_eq!(badges, [1, 2]);
        with(|kernel| {
            // The first REPLY_WAIT has no call to answer; then each reply follows its call.
            assert_eq!(kernel.replies, [[0; 4], [2, 3, 4, 5], [102, 2, 2, 1]]);
        });
    }
}
