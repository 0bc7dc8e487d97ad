//! `bench_ipc_server`: the partner of `bench_ipc_client`: loops on REPLY_WAIT (capability
//! slot 0), reading the cycle counter as soon as a call arrives and replying with its
//! difference to the client's reading in the first message word.
//!
//! Runs with FP/SIMD trapped (`fp = false`): no `core::fmt`.
#![no_std]
#![no_main]

use sdk::console::Line;
use sdk::ipc::Server;
use sdk::pmu;

/// The benchmark's endpoint: the first name of this cell's `caps`.
const ENDPOINT: Server = Server::new(0);

sdk::entry!(main);

fn main() {
    let mut reply = [0; 4];
    loop {
        match ENDPOINT.reply_wait(reply) {
            Ok((_badge, [client_reading, _, _, _])) => {
                let now = pmu::cycles();
                reply = [now.wrapping_sub(client_reading), 0, 0, 0];
            }
            Err(error) => {
                Line::new()
                    .text("bench_ipc_server: reply_wait failed with code ")
                    .decimal(error.code())
                    .print();
                sdk::hvc::exit(1);
            }
        }
    }
}
