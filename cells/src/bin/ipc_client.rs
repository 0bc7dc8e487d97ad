//! `ipc_client`: calls the `echo` endpoint (capability slot 0) 1000 times and checks every
//! reply.
//!
//! Call *i* sends `[i, 3i, !i, 0xC0FFEE]`; the `ipc_server` adds 1 to every word, so the
//! reply must be `[i + 1, 3i + 1, !i + 1, 0xC0FFEF]` (wrapping). Prints `client: 1000 calls
//! ok`, or `client: MISMATCH at <i>: ...` / `client: call <i> failed: <error>` at the first
//! failure, then `client: done`.
#![no_std]
#![no_main]

use sdk::ipc::Endpoint;

/// Number of calls.
const CALLS: u64 = 1000;
/// The `echo` endpoint: the first name of this cell's `caps`.
const ECHO: Endpoint = Endpoint::new(0);

sdk::entry!(main);

fn main() {
    match run() {
        Ok(()) => sdk::println!("client: {CALLS} calls ok"),
        Err(Failure::Mismatch { call, reply }) => {
            sdk::println!("client: MISMATCH at {call}: reply {reply:#x?}")
        }
        Err(Failure::Refused { call, error }) => {
            sdk::println!("client: call {call} failed: {error:?}")
        }
    }
    sdk::println!("client: done");
}

/// The first thing that went wrong.
enum Failure {
    /// The reply was not the message plus one.
    Mismatch { call: u64, reply: [u64; 4] },
    /// The kernel refused the call.
    Refused {
        call: u64,
        error: sdk::hvc::HvcError,
    },
}

fn run() -> Result<(), Failure> {
    for call in 0..CALLS {
        let message = [call, call * 3, !call, 0xC0FFEE];
        let reply = ECHO
            .call(message)
            .map_err(|error| Failure::Refused { call, error })?;
        if reply != message.map(|word| word.wrapping_add(1)) {
            return Err(Failure::Mismatch { call, reply });
        }
    }
    Ok(())
}
