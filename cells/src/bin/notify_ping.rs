//! `notify_ping`: 100 rounds of notification ping-pong with `notify_pong`.
//!
//! Capabilities: slot 0 = `to-pong` (signal right), slot 1 = `to-ping` (wait right). Round
//! *r* (1..=100) signals bits *r* to pong and waits for pong's answer, which must be exactly
//! `r << 8` (one signal per wait, so no bits accumulate). Prints `notify: 100 rounds ok`, or
//! `notify: MISMATCH in round <r>: ...` / `notify: round <r> failed: <error>`.
#![no_std]
#![no_main]

use sdk::notification::Notification;

/// Number of rounds.
const ROUNDS: u64 = 100;
/// Signals pong.
const TO_PONG: Notification = Notification::new(0);
/// Where pong answers.
const TO_PING: Notification = Notification::new(1);

sdk::entry!(main);

fn main() {
    for round in 1..=ROUNDS {
        let answer = TO_PONG.signal(round).and_then(|()| TO_PING.wait());
        match answer {
            Ok(bits) if bits == round << 8 => {}
            Ok(bits) => {
                sdk::println!("notify: MISMATCH in round {round}: got bits {bits:#x}");
                return;
            }
            Err(error) => {
                sdk::println!("notify: round {round} failed: {error:?}");
                return;
            }
        }
    }
    sdk::println!("notify: {ROUNDS} rounds ok");
}
