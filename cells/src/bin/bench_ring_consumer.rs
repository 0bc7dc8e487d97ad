//! `bench_ring_consumer`: receives 4 MiB from `bench_ring_producer` and reports the ring's
//! throughput in bytes per thousand instructions of its core.
//!
//! Enables the cycle counter, pops the items (checking each is the next integer), and
//! prints `BENCH ring_bytes_per_kinsn=<bytes × 1000 / instructions>` counted from before the
//! first pop to after the last. Capabilities as `ring_consumer`. Meaningful under QEMU
//! `-icount shift=0`. No `core::fmt`.
#![no_std]
#![no_main]

use cellvisor_cells::{open_ring, print_bench, RING_DOORBELLS};
use sdk::console::Line;
use sdk::pmu;

/// Bytes received.
const BYTES: u64 = 4 * 1024 * 1024;
/// Items received (8 bytes each).
const ITEMS: u64 = BYTES / 8;

sdk::entry!(main);

fn main() {
    let Ok(Ok(mut consumer)) = open_ring().map(|ring| ring.consumer()) else {
        Line::new().text("bench_ring: cannot open the ring").print();
        sdk::hvc::exit(1);
    };
    pmu::enable();
    let start = pmu::cycles();
    for expected in 0..ITEMS {
        match consumer.pop_blocking(&RING_DOORBELLS) {
            Ok(item) if item == expected => {}
            Ok(item) => {
                Line::new()
                    .text("bench_ring: item ")
                    .decimal(expected)
                    .text(" is ")
                    .decimal(item)
                    .print();
                sdk::hvc::exit(1);
            }
            Err(_) => {
                Line::new().text("bench_ring: pop failed").print();
                sdk::hvc::exit(1);
            }
        }
    }
    let elapsed = pmu::cycles().wrapping_sub(start).max(1);
    print_bench("ring_bytes_per_kinsn", BYTES * 1000 / elapsed);
}
