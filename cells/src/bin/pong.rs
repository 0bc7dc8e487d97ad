//! `pong`: prints `pong <n>` every 100 ms, forever.
#![no_std]
#![no_main]

sdk::entry!(main);

fn main() -> ! {
    cellvisor_cells::tick_forever("pong", sdk::time::Duration::from_millis(100))
}
