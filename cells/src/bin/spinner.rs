//! `spinner`: never yields or sleeps; busy-waits on the counter and prints `spinner <n>` every
//! 100 ms, forever.
//!
//! A greedy neighbour for the isolation and real-time tests: it uses every cycle its core's
//! scheduler gives it, so only budgets and priorities keep other cells running. Printing is a
//! hypercall that returns at once.
#![no_std]
#![no_main]

use sdk::time::{self, Duration};

/// Time between two lines.
const PERIOD: Duration = Duration::from_millis(100);

sdk::entry!(main);

fn main() -> ! {
    let mut deadline = time::now();
    let mut count: u64 = 0;
    loop {
        deadline += PERIOD;
        time::spin_until(deadline);
        count += 1;
        sdk::println!("spinner {count}");
    }
}
