//! `bench_ring_producer`: pushes 4 MiB of `u64` items (0, 1, 2, ...) through the
//! shared-memory ring to `bench_ring_consumer`, blocking while the ring is full.
//! Capabilities as `ring_producer`. No `core::fmt`.
#![no_std]
#![no_main]

use cellvisor_cells::{open_ring, RING_DOORBELLS};
use sdk::console::Line;

/// Items sent: 4 MiB of 8-byte items.
const ITEMS: u64 = 4 * 1024 * 1024 / 8;

sdk::entry!(main);

fn main() {
    let Ok(Ok(mut producer)) = open_ring().map(|ring| ring.producer()) else {
        Line::new().text("bench_ring: cannot open the ring").print();
        sdk::hvc::exit(1);
    };
    for item in 0..ITEMS {
        if producer.push_blocking(item, &RING_DOORBELLS).is_err() {
            Line::new().text("bench_ring: push failed").print();
            sdk::hvc::exit(1);
        }
    }
}
