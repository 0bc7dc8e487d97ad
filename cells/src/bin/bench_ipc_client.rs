//! `bench_ipc_client`: the cost of an IPC round trip and of one direction, in instructions;
//! runs beside `bench_ipc_server` on the same core, the server at a higher priority.
//!
//! [`SAMPLES`] times: read the cycle counter, CALL the endpoint (capability slot 0) with
//! that reading as the first word, read the counter again. The server reads the counter as
//! soon as its REPLY_WAIT returns and replies with the difference to the client's reading:
//! the one-way cost (client's CALL to the server running). The cost of two back-to-back
//! counter reads is subtracted from both medians, printed as `BENCH ipc_roundtrip_insns=<n>`
//! and `BENCH ipc_oneway_insns=<n>`; then the cell exits with 0. Meaningful under QEMU
//! `-icount shift=0` (see [`sdk::pmu`]).
//!
//! Runs with FP/SIMD trapped (`fp = false`): no `core::fmt`, output through [`Line`].
#![no_std]
#![no_main]

use cellvisor_cells::{cycle_counter_read_cost, median, print_bench};
use sdk::console::Line;
use sdk::ipc::Endpoint;
use sdk::pmu;

/// Number of measured calls.
const SAMPLES: usize = 1000;
/// The benchmark's endpoint: the first name of this cell's `caps`.
const ENDPOINT: Endpoint = Endpoint::new(0);
/// Exit code when a call fails.
const EXIT_CODE_CALL_FAILED: u64 = 1;

sdk::entry!(main);

fn main() {
    pmu::enable();
    let mut round_trips = [0u64; SAMPLES];
    let read_cost = cycle_counter_read_cost(&mut round_trips);
    let mut one_ways = [0u64; SAMPLES];
    for (round_trip, one_way) in round_trips.iter_mut().zip(one_ways.iter_mut()) {
        let before = pmu::cycles();
        let reply = ENDPOINT.call([before, 0, 0, 0]);
        let after = pmu::cycles();
        match reply {
            Ok([server_elapsed, _, _, _]) => {
                *round_trip = after.wrapping_sub(before);
                *one_way = server_elapsed;
            }
            Err(error) => {
                Line::new()
                    .text("bench_ipc: call failed with code ")
                    .decimal(error.code())
                    .print();
                sdk::hvc::exit(EXIT_CODE_CALL_FAILED);
            }
        }
    }
    print_bench(
        "ipc_roundtrip_insns",
        median(&mut round_trips).saturating_sub(read_cost),
    );
    print_bench(
        "ipc_oneway_insns",
        median(&mut one_ways).saturating_sub(read_cost),
    );
}
