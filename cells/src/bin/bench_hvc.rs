//! `bench_hvc`: the cost of a null hypercall round trip, in instructions.
//!
//! [`SAMPLES`] times: read the cycle counter, `hvc #0` with call NULL (through the SDK's
//! wrapper, whose status check is a few instructions), read the cycle counter. The cost of two
//! back-to-back counter reads, measured the same way, is subtracted from the median. Prints
//! `BENCH hypercall_roundtrip_insns=<n>` and exits with 0. Meaningful under QEMU
//! `-icount shift=0` (one count per instruction, the kernel's included: see [`sdk::pmu`]).
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
    measure(&mut samples, sdk::cell::null);
    let round_trip = median(&mut samples).saturating_sub(read_cost);
    print_bench("hypercall_roundtrip_insns", round_trip);
}
