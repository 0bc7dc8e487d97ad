//! Native cells shipped with Cellvisor: one binary per cell under `src/bin/`.
//!
//! Each binary is a `#![no_std]`, `#![no_main]` program built with the SDK for
//! `aarch64-unknown-none` (`--profile firmware`) and linked by `build.rs` with
//! `sdk/cell.ld`. The cells:
//! - `ping`, `pong`: print a numbered line every 100 ms (scheduling and console demo);
//! - `crasher`: stores to an unmapped address to exercise the kernel's fault handling;
//! - `spinner`: never yields, prints `spinner <n>` every 100 ms (a greedy neighbour);
//! - `victim`: keeps a 64 KiB canary and re-checks it every 100 ms (memory isolation);
//! - `hostile`: abuses the hypercall ABI, then attacks memory, devices and the ABI with one
//!   fault per run (fault containment);
//! - `restarter`: prints its run number and faults after 50 ms (restart policy);
//! - `supervisor`: waits for faults of the cells it supervises and restarts them twice;
//! - `rt_periodic`: a 1 ms periodic task measuring its wake-up lateness (real time);
//! - `bench_boot`, `bench_hvc`, `bench_switch_a`/`bench_switch_b`, `bench_timer`: print
//!   `BENCH <key>=<integer>` lines for `xtask bench`.
//!
//! This library holds what several cells share: the periodic printer and the benchmark
//! statistics. Like the SDK, it contains no `unsafe` (the deliberate faults of `crasher`,
//! `restarter` and `hostile` are in their own files). [`median`] and [`print_bench`] use
//! integer operations only (no `core::fmt`), so that cells running with FP/SIMD trapped can
//! use them.
#![no_std]
#![forbid(unsafe_code)]

use sdk::console::Line;
use sdk::time::{self, Duration};

/// Prints `<label> <n>` for n = 1, 2, 3, ... once per `period` of counter time, forever.
///
/// First prints `<label>: cell <cell> vcpu <vcpu> on core <core>`. The deadlines are
/// `start + n × period`, so printing time does not accumulate as drift; between lines the
/// cell sleeps (see [`time::sleep_until`]).
pub fn tick_forever(label: &str, period: Duration) -> ! {
    let info = sdk::hvc::vcpu_info();
    sdk::println!(
        "{label}: cell {} vcpu {} on core {}",
        info.cell,
        info.vcpu,
        info.core
    );
    let mut deadline = time::now();
    let mut count: u64 = 0;
    loop {
        deadline += period;
        time::sleep_until(deadline);
        count += 1;
        sdk::println!("{label} {count}");
    }
}

/// Sorts `samples` in place (insertion sort: integer compares and moves only) and returns the
/// median: the middle element, or the lower of the two middle elements for an even count.
/// Returns 0 for no samples.
pub fn median(samples: &mut [u64]) -> u64 {
    for sorted in 1..samples.len() {
        let mut index = sorted;
        while index > 0 && samples[index - 1] > samples[index] {
            samples.swap(index - 1, index);
            index -= 1;
        }
    }
    match samples.len() {
        0 => 0,
        length => samples[(length - 1) / 2],
    }
}

/// Prints `BENCH <key>=<value>`, the line `xtask bench` parses.
pub fn print_bench(key: &str, value: u64) {
    Line::new()
        .text("BENCH ")
        .text(key)
        .text("=")
        .decimal(value)
        .print();
}

/// Measures the cost of reading the cycle counter twice in a row (`isb; mrs` each): the
/// median over `samples.len()` tries, to subtract from intervals measured between two reads.
pub fn cycle_counter_read_cost(samples: &mut [u64]) -> u64 {
    for sample in samples.iter_mut() {
        let before = sdk::pmu::cycles();
        let after = sdk::pmu::cycles();
        *sample = after.wrapping_sub(before);
    }
    median(samples)
}
