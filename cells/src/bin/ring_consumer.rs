//! `ring_consumer`: receives 1 MiB from `ring_producer` (or `ring_vandal`) through the
//! shared-memory ring and checks it.
//!
//! Capabilities: slot 0 = the ring's shared memory (read-write), slot 1 = `data-ready`
//! (wait), slot 2 = `space-free` (signal). Pops [`ITEMS`] items, checking each against the
//! same [`TestData`](cellvisor_cells::TestData) sequence and computing their FNV-1a
//! checksum, then pops the producer's checksum and compares. Prints one of:
//! - `ring: received 1048576 bytes, checksum <hex> ok`;
//! - `ring: checksum MISMATCH: computed <hex>, producer sent <hex>` (with the first item
//!   that differed from the expected sequence, if any);
//! - `ring: peer corrupted the indices` when the producer wrote impossible indices (the
//!   ring is then poisoned: the consumer stops reading it and exits normally, never
//!   faulting);
//! - `ring: consumer failed: <error>`.
#![no_std]
#![no_main]

use cellvisor_cells::{open_ring, Checksum, TestData, RING_DOORBELLS};
use sdk::ring::RingError;

/// Bytes of test data.
const BYTES: u64 = 1024 * 1024;
/// Items of test data (8 bytes each).
const ITEMS: u64 = BYTES / 8;

sdk::entry!(main);

fn main() {
    let mut consumer = match open_ring().map(|ring| ring.consumer()) {
        Ok(Ok(consumer)) => consumer,
        Ok(Err(RingError::Corrupt)) => return sdk::println!("ring: peer corrupted the indices"),
        Ok(Err(error)) => return sdk::println!("ring: consumer failed: {error:?}"),
        Err(error) => return sdk::println!("ring: consumer failed: {error:?}"),
    };
    let mut expected = TestData::new();
    let mut checksum = Checksum::new();
    let mut first_difference = None;
    let mut received = || consumer.pop_blocking(&RING_DOORBELLS);
    for index in 0..=ITEMS {
        let item = match received() {
            Ok(item) => item,
            Err(RingError::Corrupt) => return sdk::println!("ring: peer corrupted the indices"),
            Err(error) => return sdk::println!("ring: consumer failed: {error:?}"),
        };
        if index == ITEMS {
            if item == checksum.value() && first_difference.is_none() {
                sdk::println!(
                    "ring: received {BYTES} bytes, checksum {:#018x} ok",
                    checksum.value()
                );
            } else {
                sdk::println!(
                    "ring: checksum MISMATCH: computed {:#018x}, producer sent {item:#018x}, \
                     first differing item {first_difference:?}",
                    checksum.value()
                );
            }
            return;
        }
        checksum.add(item);
        if item != expected.next_item() && first_difference.is_none() {
            first_difference = Some(index);
        }
    }
}
