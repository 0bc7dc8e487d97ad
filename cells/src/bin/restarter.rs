//! `restarter`: prints `restarter: run <n>` (n = restarts so far + 1), then after about 50 ms
//! writes to an unmapped IPA, a stage-2 fault. With a `restart` fault policy the kernel
//! reloads and restarts it up to its limit, so the run number climbs; a supervisor may
//! restart it instead.
//!
//! If the store does not fault, the cell says so and exits with [`WRITE_DID_NOT_FAULT`].
#![no_std]
#![no_main]

use sdk::time::{self, Duration};

/// An IPA below the cell's RAM (which starts at 0x4000_0000) that no system maps.
const UNMAPPED_IPA: usize = 0x1000_0000;

/// Exit code when the store to [`UNMAPPED_IPA`] did not stop the cell.
const WRITE_DID_NOT_FAULT: u64 = 1;

sdk::entry!(main);

fn main() {
    sdk::println!("restarter: run {}", sdk::start::restarts() + 1);
    time::sleep(Duration::from_millis(50));
    // SAFETY: a deliberate fault. UNMAPPED_IPA is outside every region of the cell's stage-2
    // address space, so the store traps to the kernel as a stage-2 data abort and never
    // reaches memory; no Rust object lives there.
    unsafe {
        core::ptr::write_volatile(UNMAPPED_IPA as *mut u64, 0x5eed);
    }
    sdk::println!("restarter: the write to {UNMAPPED_IPA:#x} did not fault");
    sdk::hvc::exit(WRITE_DID_NOT_FAULT);
}
