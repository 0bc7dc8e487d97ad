//! `bench_notify_signaller`: the partner of `bench_notify_waiter`: signals the notification
//! (capability slot 0) with its cycle counter reading (bit 63 set) as the bits, once per
//! sample. The waiter has the higher priority on the same core, so each signal switches to it
//! and it is waiting again before the next signal. Exits after the waiter's samples.
//!
//! May run with FP/SIMD trapped: no `core::fmt`.
#![no_std]
#![no_main]

use sdk::console::Line;
use sdk::notification::Notification;
use sdk::pmu;

/// Signals sent: as many as the waiter's samples.
const SIGNALS: usize = 1000;
/// The notification: the first name of this cell's `caps`.
const WAKE: Notification = Notification::new(0);
/// Set in every signal so that the bits are never 0.
const MARKER: u64 = 1 << 63;

sdk::entry!(main);

fn main() {
    for _ in 0..SIGNALS {
        if let Err(error) = WAKE.signal(pmu::cycles() | MARKER) {
            Line::new()
                .text("bench_notify: signal failed with code ")
                .decimal(error.code())
                .print();
            sdk::hvc::exit(1);
        }
    }
}
