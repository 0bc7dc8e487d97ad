//! `rt_forever`: the periodic real-time task of `rt_periodic` without an end
//! ([`cellvisor_cells::periodic_task`] for `u64::MAX` periods), for watching a neighbour for
//! as long as it runs: a progress line every 500 periods, `rt: MISSED period <k> ...` for
//! each missed one.
#![no_std]
#![no_main]

sdk::entry!(main);

fn main() {
    cellvisor_cells::periodic_task(u64::MAX);
}
