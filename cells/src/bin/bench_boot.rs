//! `bench_boot`: reports how many counter ticks passed from reset to this cell's first
//! instruction, and the counter frequency, then exits with code 0.
//!
//! Output, one `BENCH key=value` per line (parsed by `xtask bench`):
//! `BENCH boot_to_first_cell_ticks=<ticks>` and `BENCH counter_frequency_hz=<hz>`.
#![no_std]
#![no_main]

sdk::entry!(main);

fn main() {
    sdk::println!(
        "BENCH boot_to_first_cell_ticks={}",
        sdk::time::boot_counter()
    );
    sdk::println!("BENCH counter_frequency_hz={}", sdk::time::frequency());
}
