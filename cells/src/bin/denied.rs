//! `denied`: a cell that holds no capability tries every capability call, and every one
//! must be refused.
//!
//! On slots 0..8 and 1000 it tries CALL, REPLY_WAIT, SIGNAL, WAIT, POLL and CAP_INFO, each
//! of which must answer `Denied` or `InvalidCapability`; then CELL_CONTROL (stop) of cells
//! 0..4, which must answer `Denied`, or `InvalidArgument` for itself or a cell the plan
//! lacks. Any other answer is printed as `denied: UNEXPECTED <call> slot <s>: <answer>`.
//! Then prints `denied: <n> operations refused` and, from CELL_STATUS of itself,
//! `denied: kernel counted <m> denials`.
#![no_std]
#![no_main]

use core::fmt::Debug;
use sdk::cell::{self, ControlOperation};
use sdk::hvc::HvcError;
use sdk::ipc::{Endpoint, Server};
use sdk::notification::Notification;

/// The slots tried: the first few and one far beyond any table.
const SLOTS: [u32; 9] = [0, 1, 2, 3, 4, 5, 6, 7, 1000];
/// The cells whose control is tried.
const CELLS: core::ops::Range<u16> = 0..4;

sdk::entry!(main);

/// Counts refusals and reports anything else.
struct Tally {
    refused: u64,
}

impl Tally {
    fn check<T: Debug>(
        &mut self,
        call: &str,
        slot: u64,
        answer: Result<T, HvcError>,
        allowed: [HvcError; 2],
    ) {
        match answer {
            Err(error) if allowed.contains(&error) => self.refused += 1,
            other => sdk::println!("denied: UNEXPECTED {call} slot {slot}: {other:?}"),
        }
    }
}

fn main() {
    let own = sdk::hvc::vcpu_info().cell;
    let mut tally = Tally { refused: 0 };
    let capability_refusals = [HvcError::Denied, HvcError::InvalidCapability];
    for slot in SLOTS {
        let at = u64::from(slot);
        tally.check(
            "CALL",
            at,
            Endpoint::new(slot).call([1, 2, 3, 4]),
            capability_refusals,
        );
        tally.check(
            "REPLY_WAIT",
            at,
            Server::new(slot).reply_wait([0; 4]),
            capability_refusals,
        );
        let notification = Notification::new(slot);
        tally.check("SIGNAL", at, notification.signal(1), capability_refusals);
        tally.check("WAIT", at, notification.wait(), capability_refusals);
        tally.check("POLL", at, notification.poll(), capability_refusals);
        tally.check("CAP_INFO", at, sdk::caps::info(slot), capability_refusals);
    }
    for target in CELLS {
        let allowed = if target == own {
            [HvcError::InvalidArgument, HvcError::InvalidArgument]
        } else {
            [HvcError::Denied, HvcError::InvalidArgument]
        };
        tally.check(
            "CELL_CONTROL of cell",
            u64::from(target),
            cell::control(target, ControlOperation::Stop),
            allowed,
        );
    }
    sdk::println!("denied: {} operations refused", tally.refused);
    match cell::status(own) {
        Ok(status) => sdk::println!("denied: kernel counted {} denials", status.denials),
        Err(error) => sdk::println!("denied: UNEXPECTED CELL_STATUS of itself: {error:?}"),
    }
}
