//! `ring_vandal`: a ring producer that turns hostile: it sends some good items, then writes
//! garbage into the ring's shared indices a few times, waking the consumer after each.
//!
//! Capabilities as `ring_producer`. The consumer must detect the corruption
//! (`ring: peer corrupted the indices`) and never fault. Prints `vandal: sent <n> good
//! items`, `vandal: wrote garbage into the indices <k> times`, or `vandal: failed: <error>`.
#![no_std]
#![no_main]

use cellvisor_cells::{open_ring, TestData, RING_DOORBELLS, RING_MEMORY_SLOT};
use core::sync::atomic::Ordering;
use sdk::time::{self, Duration};

/// Good items sent before the vandalism (fewer than the consumer expects).
const GOOD_ITEMS: u64 = 1000;
/// Times garbage is written.
const ATTACKS: u64 = 4;
/// Words of the producer and consumer indices (see `sdk::ring`).
const INDEX_WORDS: [usize; 2] = [0, 8];

sdk::entry!(main);

fn main() {
    let mut producer = match open_ring().map(|ring| ring.producer()) {
        Ok(Ok(producer)) => producer,
        Ok(Err(error)) => return sdk::println!("vandal: failed: {error:?}"),
        Err(error) => return sdk::println!("vandal: failed: {error:?}"),
    };
    let mut data = TestData::new();
    for _ in 0..GOOD_ITEMS {
        if let Err(error) = producer.push_blocking(data.next_item(), &RING_DOORBELLS) {
            return sdk::println!("vandal: failed: {error:?}");
        }
    }
    sdk::println!("vandal: sent {GOOD_ITEMS} good items");
    let words = match sdk::caps::memory(RING_MEMORY_SLOT) {
        Ok(memory) => memory.words(),
        Err(error) => return sdk::println!("vandal: failed: {error:?}"),
    };
    let mut garbage = TestData::new();
    for attack in 0..ATTACKS {
        for word in INDEX_WORDS {
            // Huge: more than any ring's capacity ahead of the consumer, plus random bits.
            let value = (1 << 63) | (garbage.next_item() >> 1);
            words[word].store(value, Ordering::Release);
        }
        if let Err(error) = RING_DOORBELLS.data_ready.signal(1) {
            return sdk::println!("vandal: failed: {error:?} (attack {attack})");
        }
        time::sleep(Duration::from_millis(10));
    }
    sdk::println!("vandal: wrote garbage into the indices {ATTACKS} times");
}
