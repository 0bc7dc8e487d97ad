//! `bench_timer`: virtual timer interrupt latency, in instructions, from the moment the timer
//! expires to the first instruction of the cell's interrupt handler.
//!
//! [`SAMPLES`] times: read the counter (`CNTVCT`) and the cycle counter (`PMCCNTR`), arm the
//! virtual timer [`AHEAD`] (20 µs) ahead, and wait (`wfi` with IRQs masked, then unmask to
//! take the interrupt) until the handler has run; the handler reads `PMCCNTR` first thing. The
//! expiry in cycle-counter terms is
//! `pmccntr_at_setup + (cval − cntvct_at_setup) × 1e9 / CNTFRQ`, and the latency is the
//! handler's `PMCCNTR` minus that. The latency therefore covers the kernel noticing the
//! expiry, injecting virtual interrupt 27, resuming the blocked vCPU, and the SDK's IRQ
//! vector (register save, acknowledge) up to the handler.
//!
//! Prints `BENCH timer_irq_latency_insns_median=<n>` and
//! `BENCH timer_irq_latency_insns_max=<n>`, then exits with 0. The same binary runs beside a
//! spinner for the loaded figure; `xtask bench` renames the keys for that system.
//!
//! Precision: under QEMU `-icount shift=0` `PMCCNTR` counts one per instruction (1 GHz) but
//! the counter runs at 62.5 MHz, so it moves once every 16 instructions; `cntvct_at_setup` may
//! have been read anywhere within its tick, so each latency is exact only to within 16
//! instructions (the timer fires on a tick boundary). A latency that would come out negative
//! counts as 0.
#![no_std]
#![no_main]

use cellvisor_cells::{median, print_bench};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use sdk::time::{self, Duration, Instant};
use sdk::{interrupts, pmu, timer};

/// Number of measured interrupts.
const SAMPLES: usize = 200;
/// How far ahead the timer is armed.
const AHEAD: Duration = Duration::from_micros(20);
/// Nanoseconds per second: the cycle counter's rate under icount.
const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// `PMCCNTR` at the handler's entry.
static HANDLER_CYCLES: AtomicU64 = AtomicU64::new(0);
/// `CNTVCT` at the handler's entry (a sanity check: not before the deadline).
static HANDLER_COUNTER: AtomicU64 = AtomicU64::new(0);
/// Set by the handler when the timer interrupt arrived.
static FIRED: AtomicBool = AtomicBool::new(false);

/// Records the time of the timer interrupt and disarms the timer.
fn handler(intid: u32) {
    let cycles = pmu::cycles();
    if intid == timer::INTID {
        HANDLER_CYCLES.store(cycles, Ordering::Relaxed);
        HANDLER_COUNTER.store(time::now().ticks(), Ordering::Relaxed);
        timer::cancel();
        FIRED.store(true, Ordering::Release);
    }
}

/// Waits until the handler has run, without the race of a plain `wfi` loop: IRQs are masked
/// while `FIRED` is checked, `wfi` returns once the interrupt is pending, and unmasking lets
/// the IRQ vector take it.
fn wait_for_handler() {
    loop {
        interrupts::disable();
        if FIRED.load(Ordering::Acquire) {
            interrupts::enable();
            return;
        }
        interrupts::wait_for_interrupt();
        interrupts::enable();
    }
}

sdk::entry!(main);

fn main() {
    let frequency = time::frequency();
    let ahead_ticks = time::ticks_from_duration(AHEAD, frequency).unwrap_or(u64::MAX);
    interrupts::set_handler(handler);
    interrupts::enable();
    pmu::enable();
    let mut latencies = [0u64; SAMPLES];
    let mut early: u64 = 0;
    for latency in latencies.iter_mut() {
        FIRED.store(false, Ordering::Relaxed);
        let counter_at_setup = time::now().ticks();
        let cycles_at_setup = pmu::cycles();
        let deadline = counter_at_setup + ahead_ticks;
        timer::set_deadline(Instant::from_ticks(deadline));
        wait_for_handler();
        if HANDLER_COUNTER.load(Ordering::Relaxed) < deadline {
            early += 1;
        }
        let expiry = u128::from(cycles_at_setup)
            + u128::from(deadline - counter_at_setup) * NANOS_PER_SECOND / u128::from(frequency);
        let handler_cycles = u128::from(HANDLER_CYCLES.load(Ordering::Relaxed));
        *latency = u64::try_from(handler_cycles.saturating_sub(expiry)).unwrap_or(u64::MAX);
    }
    interrupts::disable();
    if early > 0 {
        sdk::println!("bench_timer: {early} interrupts arrived before their deadline");
    }
    let max = latencies.iter().copied().max().unwrap_or(0);
    print_bench("timer_irq_latency_insns_median", median(&mut latencies));
    print_bench("timer_irq_latency_insns_max", max);
}
