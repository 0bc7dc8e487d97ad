//! `notify_pong`: the partner of `notify_ping`.
//!
//! Capabilities: slot 0 = `to-ping` (signal right), slot 1 = `to-pong` (wait right). For
//! round *r* (1..=100) it waits for bits, which must be exactly *r*, and answers `r << 8`.
//! Prints `pong: 100 rounds ok`, or `pong: MISMATCH in round <r>: ...` /
//! `pong: round <r> failed: <error>`.
#![no_std]
#![no_main]

use sdk::notification::Notification;

/// Number of rounds.
const ROUNDS: u64 = 100;
/// Signals ping.
const TO_PING: Notification = Notification::new(0);
/// Where ping signals.
const TO_PONG: Notification = Notification::new(1);

sdk::entry!(main);

fn main() {
    for round in 1..=ROUNDS {
        match TO_PONG.wait() {
            Ok(bits) if bits == round => {}
            Ok(bits) => {
                sdk::println!("pong: MISMATCH in round {round}: got bits {bits:#x}");
                return;
            }
            Err(error) => {
                sdk::println!("pong: round {round} failed: {error:?}");
                return;
            }
        }
        if let Err(error) = TO_PING.signal(round << 8) {
            sdk::println!("pong: round {round} failed: {error:?}");
            return;
        }
    }
    sdk::println!("pong: {ROUNDS} rounds ok");
}
