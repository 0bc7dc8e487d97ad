//! `bench_switch_b`: the partner of `bench_switch_a`: yields forever, so that every YIELD of
//! A switches to B and straight back. No `core::fmt` (it may run with FP/SIMD trapped).
#![no_std]
#![no_main]

sdk::entry!(main);

fn main() -> ! {
    loop {
        sdk::hvc::yield_now();
    }
}
