//! `rt_periodic`: a periodic real-time task; measures how late each period's wake-up is.
//!
//! Period [`PERIOD`] (1 ms), [`PERIODS`] (2000) periods on the fixed grid
//! `start + k × period`: for each, `sleep_until(deadline)`, then lateness = now − deadline.
//! A period is missed when the wake-up came after the next period had begun (lateness ≥ one
//! period). Prints `rt: <k> periods, <missed> missed, max lateness <us> us (<ticks> ticks)`
//! every 500 periods and finally
//! `rt: done: 2000 periods, <missed> missed, max lateness <us> us (<ticks> ticks)`, then exits
//! with 0. Lateness is measured on the system counter (16 ns per tick at 62.5 MHz); the
//! microseconds are rounded down.
#![no_std]
#![no_main]

use sdk::time::{self, Duration};

/// The task's period.
const PERIOD: Duration = Duration::from_millis(1);
/// How many periods to run.
const PERIODS: u64 = 2000;
/// A progress line every this many periods.
const REPORT_EVERY: u64 = 500;

sdk::entry!(main);

fn main() {
    let frequency = time::frequency();
    let period_ticks = time::ticks_from_duration(PERIOD, frequency).unwrap_or(u64::MAX);
    let mut missed: u64 = 0;
    let mut max_lateness_ticks: u64 = 0;
    let mut deadline = time::now();
    for period in 1..=PERIODS {
        deadline += PERIOD;
        time::sleep_until(deadline);
        let lateness = time::now().ticks().saturating_sub(deadline.ticks());
        if lateness >= period_ticks {
            missed += 1;
        }
        max_lateness_ticks = max_lateness_ticks.max(lateness);
        let micros = time::duration_from_ticks(max_lateness_ticks, frequency).as_micros();
        if period == PERIODS {
            sdk::println!(
                "rt: done: {period} periods, {missed} missed, max lateness {micros} us \
                 ({max_lateness_ticks} ticks)"
            );
        } else if period % REPORT_EVERY == 0 {
            sdk::println!(
                "rt: {period} periods, {missed} missed, max lateness {micros} us \
                 ({max_lateness_ticks} ticks)"
            );
        }
    }
}
