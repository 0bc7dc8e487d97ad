//! `ping`: prints `ping <n>` every 100 ms, forever.
#![no_std]
#![no_main]

sdk::entry!(main);

fn main() -> ! {
    cellvisor_cells::tick_forever("ping", sdk::time::Duration::from_millis(100))
}
