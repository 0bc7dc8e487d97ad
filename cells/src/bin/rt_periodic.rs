//! `rt_periodic`: a periodic real-time task; measures how late each period's wake-up is.
//!
//! Runs [`cellvisor_cells::periodic_task`] for 2000 periods of 1 ms, then exits with 0. Its lines:
//! `rt: <k> periods, <missed> missed, max lateness <us> us (<ticks> ticks)` every 500
//! periods and finally `rt: done: 2000 periods, ...`.
#![no_std]
#![no_main]

sdk::entry!(main);

fn main() {
    cellvisor_cells::periodic_task(2000);
}
