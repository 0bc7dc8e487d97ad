//! `bench_notify_waiter`: the cost of waking a waiter with a notification, in instructions;
//! runs beside `bench_notify_signaller` on the same core, at a higher priority.
//!
//! Enables the cycle counter, then [`SAMPLES`] times waits on its notification (capability
//! slot 0). The signaller sends its cycle counter reading as the bits, with bit 63 set so
//! they are never 0; the waiter reads the counter when WAIT returns and records the
//! difference. Prints `BENCH notify_wake_insns=<median minus the cost of two back-to-back
//! reads>` and exits with 0. Meaningful under QEMU `-icount shift=0`.
//!
//! May run with FP/SIMD trapped: no `core::fmt`.
#![no_std]
#![no_main]

use cellvisor_cells::{cycle_counter_read_cost, median, print_bench};
use sdk::console::Line;
use sdk::notification::Notification;
use sdk::pmu;

/// Number of measured wake-ups.
const SAMPLES: usize = 1000;
/// The notification: the first name of this cell's `caps`.
const WAKE: Notification = Notification::new(0);
/// Set in every signal so that the bits are never 0.
const MARKER: u64 = 1 << 63;

sdk::entry!(main);

fn main() {
    pmu::enable();
    let mut samples = [0u64; SAMPLES];
    let read_cost = cycle_counter_read_cost(&mut samples);
    for sample in samples.iter_mut() {
        match WAKE.wait() {
            Ok(bits) => *sample = pmu::cycles().wrapping_sub(bits & !MARKER),
            Err(error) => {
                Line::new()
                    .text("bench_notify: wait failed with code ")
                    .decimal(error.code())
                    .print();
                sdk::hvc::exit(1);
            }
        }
    }
    print_bench(
        "notify_wake_insns",
        median(&mut samples).saturating_sub(read_cost),
    );
}
