//! `victim`: keeps a 64 KiB canary in its RAM and re-checks all of it every 100 ms.
//!
//! Prints `victim <n>: memory intact` after each full check. If any word differs from the
//! pattern, prints `victim: CANARY CORRUPTED at <byte offset>` and exits with
//! [`EXIT_CODE_CORRUPTED`]. Another cell (`hostile`) attacking memory must never cause that:
//! the canary is only reachable through this cell's stage-2 address space.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use sdk::time::{self, Duration};

/// Words in the canary: 64 KiB.
const CANARY_WORDS: usize = 64 * 1024 / 8;

/// Time between two checks.
const PERIOD: Duration = Duration::from_millis(100);

/// Exit code after a corrupted canary.
const EXIT_CODE_CORRUPTED: u64 = 1;

/// The canary, in `.bss` (the kernel zeroes it; [`main`] fills it). Atomics only so that a
/// static may be written without `unsafe`; the cell has one vCPU.
static CANARY: [AtomicU64; CANARY_WORDS] = [const { AtomicU64::new(0) }; CANARY_WORDS];

/// The canary's value at word `index`: distinct per word, never zero.
fn pattern(index: usize) -> u64 {
    (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
}

/// Byte offset of the first word that differs from the pattern, if any.
fn first_corruption() -> Option<usize> {
    CANARY
        .iter()
        .enumerate()
        .find(|(index, word)| word.load(Ordering::Relaxed) != pattern(*index))
        .map(|(index, _)| index * 8)
}

sdk::entry!(main);

fn main() {
    for (index, word) in CANARY.iter().enumerate() {
        word.store(pattern(index), Ordering::Relaxed);
    }
    let mut deadline = time::now();
    let mut count: u64 = 0;
    loop {
        deadline += PERIOD;
        time::sleep_until(deadline);
        count += 1;
        if let Some(offset) = first_corruption() {
            sdk::println!("victim: CANARY CORRUPTED at {offset}");
            sdk::hvc::exit(EXIT_CODE_CORRUPTED);
        }
        sdk::println!("victim {count}: memory intact");
    }
}
