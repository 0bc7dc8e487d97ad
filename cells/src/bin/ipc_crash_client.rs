//! `ipc_crash_client`: calls the `echo` endpoint of `ipc_crash_server` (capability slot 0),
//! which faults on its 5th call and is restarted.
//!
//! Makes [`CALLS`] calls, each checked like `ipc_client`'s. The 5th (index 4) must fail with
//! `PeerFault`: it prints `client: server fault reported (PeerFault)` and calls again until
//! the restarted server answers (sleeping 10 ms after each `PeerStopped` while the server is
//! down), then prints `client: call after restart ok`. Any other failure prints
//! `client: UNEXPECTED ...`; the cell ends with `client: done`.
#![no_std]
#![no_main]

use sdk::hvc::HvcError;
use sdk::ipc::Endpoint;
use sdk::time::{self, Duration};

/// The `echo` endpoint: the first name of this cell's `caps`.
const ECHO: Endpoint = Endpoint::new(0);
/// Calls made.
const CALLS: u64 = 10;
/// The call (from 0) during which the server faults.
const FAULTING_CALL: u64 = 4;
/// Tries of a call while the server is stopped.
const STOPPED_RETRIES: u32 = 500;

sdk::entry!(main);

fn main() {
    let mut fault_seen = false;
    'calls: for call in 0..CALLS {
        let message = [call, call * 3, !call, 0xC0FFEE];
        let mut stopped = 0;
        loop {
            match ECHO.call(message) {
                Ok(reply) if reply == message.map(|word| word.wrapping_add(1)) => {
                    if call == FAULTING_CALL && fault_seen {
                        sdk::println!("client: call after restart ok");
                    }
                    continue 'calls;
                }
                Ok(reply) => {
                    sdk::println!("client: UNEXPECTED reply to call {call}: {reply:#x?}");
                    break 'calls;
                }
                Err(HvcError::PeerFault) if call == FAULTING_CALL && !fault_seen => {
                    fault_seen = true;
                    sdk::println!("client: server fault reported (PeerFault)");
                }
                Err(HvcError::PeerStopped) if stopped < STOPPED_RETRIES => {
                    stopped += 1;
                    time::sleep(Duration::from_millis(10));
                }
                Err(error) => {
                    sdk::println!("client: UNEXPECTED {error:?} from call {call}");
                    break 'calls;
                }
            }
        }
    }
    if !fault_seen {
        sdk::println!("client: UNEXPECTED: no PeerFault reported");
    }
    sdk::println!("client: done");
}
