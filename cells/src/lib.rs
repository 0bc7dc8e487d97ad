//! Native cells shipped with Cellvisor: one binary per cell under `src/bin/`.
//!
//! Each binary is a `#![no_std]`, `#![no_main]` program built with the SDK for
//! `aarch64-unknown-none` (`--profile firmware`) and linked by `build.rs` with
//! `sdk/cell.ld`. The cells:
//! - `ping`, `pong`: print a numbered line every 100 ms (scheduling and console demo);
//! - `crasher`: stores to an unmapped address to exercise the kernel's fault handling;
//! - `bench_boot`: prints the boot-to-first-cell-instruction time for `xtask bench`.
//!
//! This library holds what several cells share. Like the SDK, it contains no `unsafe`
//! (the `crasher` binary's deliberate fault is the one exception, in its own file).
#![no_std]
#![forbid(unsafe_code)]

use sdk::time::{self, Duration};

/// Prints `<label> <n>` for n = 1, 2, 3, ... once per `period` of counter time, forever.
///
/// First prints `<label>: cell <cell> vcpu <vcpu> on core <core>`. The deadlines are
/// `start + n × period`, so printing time does not accumulate as drift; between lines the
/// cell yields (see [`time::sleep_until`]).
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
