//! `ring_producer`: sends 1 MiB of test data through the shared-memory ring to
//! `ring_consumer`, then the data's checksum.
//!
//! Capabilities: slot 0 = the ring's shared memory (read-write), slot 1 = `data-ready`
//! (signal), slot 2 = `space-free` (wait). Pushes [`ITEMS`] items of
//! [`TestData`](cellvisor_cells::TestData), blocking while the ring is full, then one more
//! item: their FNV-1a checksum. Prints `ring: sent 1048576 bytes, checksum <hex>`, or
//! `ring: producer failed: <error>`.
#![no_std]
#![no_main]

use cellvisor_cells::{open_ring, Checksum, TestData, RING_DOORBELLS};

/// Bytes of test data.
const BYTES: u64 = 1024 * 1024;
/// Items of test data (8 bytes each).
const ITEMS: u64 = BYTES / 8;

sdk::entry!(main);

fn main() {
    let mut producer = match open_ring().map(|ring| ring.producer()) {
        Ok(Ok(producer)) => producer,
        Ok(Err(error)) => return sdk::println!("ring: producer failed: {error:?}"),
        Err(error) => return sdk::println!("ring: producer failed: {error:?}"),
    };
    let mut data = TestData::new();
    let mut checksum = Checksum::new();
    for _ in 0..ITEMS {
        let item = data.next_item();
        checksum.add(item);
        if let Err(error) = producer.push_blocking(item, &RING_DOORBELLS) {
            return sdk::println!("ring: producer failed: {error:?}");
        }
    }
    if let Err(error) = producer.push_blocking(checksum.value(), &RING_DOORBELLS) {
        return sdk::println!("ring: producer failed: {error:?}");
    }
    sdk::println!(
        "ring: sent {BYTES} bytes, checksum {:#018x}",
        checksum.value()
    );
}
