//! The PMU cycle counter (`PMCCNTR_EL0`), for benchmarks.
//!
//! [`enable`] starts the cycle counter counting at EL1, EL0 and EL2 (so a measured interval
//! includes the kernel's work during a hypercall or a switch); [`cycles`] reads it. Under QEMU
//! with `-icount shift=0` the counter advances exactly one per instruction executed, by any
//! exception level: a difference of two reads is an instruction count, the same on every run.
//! Without icount it follows host time and means little.
//!
//! A read is `isb; mrs`: the `isb` makes every earlier instruction complete first, so two
//! back-to-back reads differ by the cost of one read. Subtract that (measured the same way)
//! from a measured interval.

use crate::registers;

/// `PMCR_EL0.E`: enable the counters.
const CONTROL_ENABLE: u64 = 1 << 0;
/// `PMCR_EL0.C`: reset the cycle counter to 0 (write-only).
const CONTROL_RESET_CYCLES: u64 = 1 << 2;
/// `PMCR_EL0.LC`: the cycle counter overflows at 64 bits, not 32.
const CONTROL_LONG_CYCLES: u64 = 1 << 6;
/// `PMCNTENSET_EL0` bit 31: enable the cycle counter.
const ENABLE_CYCLE_COUNTER: u64 = 1 << 31;
/// `PMCCFILTR_EL0.NSH`: count at EL2 too (with P = U = 0: EL1 and EL0 counted as well).
const FILTER_COUNT_EL2: u64 = 1 << 27;

/// Resets the cycle counter to 0 and starts it, counting at EL0, EL1 and EL2.
pub fn enable() {
    registers::set_cycle_counter_filter(FILTER_COUNT_EL2);
    registers::set_counter_enable(ENABLE_CYCLE_COUNTER);
    let control = registers::performance_monitor_control();
    registers::set_performance_monitor_control(
        control | CONTROL_ENABLE | CONTROL_LONG_CYCLES | CONTROL_RESET_CYCLES,
    );
}

/// The cycle counter (instructions under QEMU `-icount shift=0`).
pub fn cycles() -> u64 {
    registers::cycle_counter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::with;

    #[test]
    fn enable_counts_every_level_from_zero() {
        with(|kernel| {
            kernel.cycles = 500;
            kernel.performance_monitor_control = 0x4100_0000;
            kernel.cycles_step = 7;
        });
        enable();
        with(|kernel| {
            assert_eq!(kernel.cycle_counter_filter, 1 << 27);
            assert_eq!(kernel.counter_enable, 1 << 31);
            assert_eq!(kernel.performance_monitor_control, 0x4100_0041);
        });
        assert_eq!(cycles(), 0);
        assert_eq!(cycles(), 7);
    }
}
