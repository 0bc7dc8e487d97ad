//! `bench_switch_a`: the cost of a cell switch on one core, in instructions; runs beside
//! `bench_switch_b` on the same core at the same priority.
//!
//! [`SAMPLES`] times: read the cycle counter, YIELD, read the cycle counter. B only yields,
//! so each sample is A → B → A: two cell switches, B's return from its YIELD and B's loop.
//! The cost of two back-to-back counter reads is subtracted from the median, and half of it
//! is printed as `BENCH cell_switch_insns=<n>`; then the cell exits with 0. Meaningful under
//! QEMU `-icount shift=0` (see [`sdk::pmu`]).
//!
//! The system may run A and B with FP/SIMD trapped (`fp = false`), so this file uses no
//! `core::fmt`: output goes through [`print_bench`], which formats with integer operations.
#![no_std]
#![no_main]

use cellvisor_cells::{cycle_counter_read_cost, measure, median, print_bench};
use sdk::pmu;

/// Number of measured round trips.
const SAMPLES: usize = 1000;

sdk::entry!(main);

fn main() {
    pmu::enable();
    let mut samples = [0u64; SAMPLES];
    let read_cost = cycle_counter_read_cost(&mut samples);
    measure(&mut samples, sdk::hvc::yield_now);
    let round_trip = median(&mut samples).saturating_sub(read_cost);
    print_bench("cell_switch_insns", round_trip / 2);
}
