//! Every system register the SDK touches, and `wfi`: one accessor each, with its safety reason.
//!
//! What this module owns: the instructions the compiler cannot check, other than `hvc` (in
//! [`crate::hvc`]) and the start-up and vector assembly (in [`crate::start`]). The rest of the
//! SDK ([`crate::time`], [`crate::timer`], [`crate::interrupts`], [`crate::pmu`]) is safe
//! Rust over these functions.
//!
//! | register | access | used by |
//! |---|---|---|
//! | `CNTVCT_EL0`, `CNTFRQ_EL0` | read | [`crate::time`] |
//! | `CNTV_CTL_EL0`, `CNTV_CVAL_EL0` | write | [`crate::timer`] (the EL1 virtual timer) |
//! | `ICC_PMR_EL1`, `ICC_IGRPEN1_EL1` | write | [`crate::interrupts`] (enable the virtual CPU interface) |
//! | `ICC_IAR1_EL1`, `ICC_EOIR1_EL1` | read, write | [`crate::interrupts`] (acknowledge, end) |
//! | `DAIF` (`I` bit) | `msr daifset/daifclr` | [`crate::interrupts`] |
//! | `PMCR_EL0`, `PMCNTENSET_EL0`, `PMCCFILTR_EL0`, `PMCCNTR_EL0` | read, write | [`crate::pmu`] |
//! | `wfi` | – | [`crate::time::sleep_until`] and benchmarks |
//!
//! Because the kernel sets `HCR_EL2.IMO`, the `ICC_*` names reach the virtual CPU interface
//! (`ICV_*`) at EL1; they are written with their generic encodings (`S3_0_C12_...`) so that
//! any assembler accepts them.
//!
//! None of these accesses touches memory the compiler knows about, so none can break a Rust
//! invariant; what they change is machine state (timer, interrupt routing, counters) that the
//! SDK's safe modules own. Off bare-metal AArch64 every accessor talks to the fake kernel in
//! [`crate::host`] instead, so the safe modules are unit-tested on a workstation.

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod machine {
    /// Reads a system register with `mrs` (optionally after an `isb`).
    macro_rules! read {
        ($(#[$attribute:meta])* $name:ident, $register:literal) => {
            $(#[$attribute])*
            pub(crate) fn $name() -> u64 {
                let value: u64;
                // SAFETY: reading this register has no side effect on memory or the stack
                // and is allowed at EL1 (the kernel does not trap it for native cells; see
                // the table in the module docs). The flags are untouched.
                unsafe {
                    core::arch::asm!(
                        concat!("mrs {value}, ", $register),
                        value = out(reg) value,
                        options(nomem, nostack, preserves_flags),
                    );
                }
                value
            }
        };
    }

    /// Writes a system register with `msr`, then `isb` so the change takes effect before the
    /// next instruction.
    macro_rules! write {
        ($(#[$attribute:meta])* $name:ident, $register:literal) => {
            $(#[$attribute])*
            pub(crate) fn $name(value: u64) {
                // SAFETY: this register controls timer, interrupt or counter state that only
                // the SDK's safe modules use; writing it changes no memory the compiler knows
                // about and does not touch the stack or the flags. It is accessible at EL1
                // (the kernel does not trap it for native cells).
                unsafe {
                    core::arch::asm!(
                        concat!("msr ", $register, ", {value}"),
                        "isb",
                        value = in(reg) value,
                        options(nomem, nostack, preserves_flags),
                    );
                }
            }
        };
    }

    /// Reads the virtual counter (`CNTVCT_EL0`), after an `isb` so that successive reads in
    /// program order never go backwards. For native cells `CNTVOFF_EL2` is 0, so this equals
    /// the physical counter.
    pub(crate) fn counter() -> u64 {
        let value: u64;
        // SAFETY: as for `read!`; the `isb` only orders the read after earlier instructions.
        unsafe {
            core::arch::asm!(
                "isb",
                "mrs {value}, cntvct_el0",
                value = out(reg) value,
                options(nomem, nostack, preserves_flags),
            );
        }
        value
    }

    read!(
        /// The counter frequency in Hz (`CNTFRQ_EL0`), as the firmware programmed it.
        counter_frequency,
        "cntfrq_el0"
    );
    write!(
        /// `CNTV_CTL_EL0`: bit 0 ENABLE, bit 1 IMASK.
        set_timer_control,
        "cntv_ctl_el0"
    );
    write!(
        /// `CNTV_CVAL_EL0`: the counter value at which the virtual timer condition is met.
        set_timer_compare,
        "cntv_cval_el0"
    );
    write!(
        /// `ICC_PMR_EL1` (`S3_0_C4_C6_0`): interrupts with a priority value below it are
        /// signalled.
        set_priority_mask,
        "S3_0_C4_C6_0"
    );
    write!(
        /// `ICC_IGRPEN1_EL1` (`S3_0_C12_C12_7`): bit 0 enables group 1 interrupts.
        set_group1_enable,
        "S3_0_C12_C12_7"
    );
    write!(
        /// `ICC_EOIR1_EL1` (`S3_0_C12_C12_1`): ends (drops priority and deactivates, EOI
        /// mode 0) the interrupt whose INTID is written.
        end_of_interrupt,
        "S3_0_C12_C12_1"
    );

    /// Reads `ICC_IAR1_EL1` (`S3_0_C12_C12_0`): acknowledges the highest-priority pending
    /// group 1 interrupt and returns its INTID (1023 if none).
    pub(crate) fn acknowledge_interrupt() -> u64 {
        let value: u64;
        // SAFETY: the read changes interrupt state (the interrupt becomes active), which the
        // caller then ends with `end_of_interrupt`; it touches no memory, stack or flags. It
        // is not `pure`: two reads may return different INTIDs.
        unsafe {
            core::arch::asm!(
                "mrs {value}, S3_0_C12_C12_0",
                value = out(reg) value,
                options(nomem, nostack, preserves_flags),
            );
        }
        value
    }

    /// Sets `DAIF.I`: IRQs are no longer taken at EL1.
    pub(crate) fn mask_irqs() {
        // SAFETY: masking IRQs only delays the SDK's IRQ vector; no memory, stack or flags.
        unsafe { core::arch::asm!("msr daifset, #2", options(nomem, nostack, preserves_flags)) }
    }

    /// Clears `DAIF.I`: a pending virtual IRQ is taken at the SDK's IRQ vector, which saves
    /// every register the interrupted code may hold (see `crate::start`). Not `nomem`: the
    /// registered handler may change memory, so the compiler must not move memory accesses
    /// across this point.
    pub(crate) fn unmask_irqs() {
        // SAFETY: the IRQ vector preserves all general and FP/SIMD registers, ELR_EL1 and
        // SPSR_EL1, so interrupted code resumes unchanged; the handler is safe Rust.
        unsafe { core::arch::asm!("msr daifclr, #2", options(nostack, preserves_flags)) }
    }

    /// Executes `wfi`: under Cellvisor the kernel blocks this vCPU until a virtual interrupt
    /// is pending for it, even with IRQs masked. Not `nomem`: if IRQs are unmasked, the
    /// handler may run before it returns.
    pub(crate) fn wait_for_interrupt() {
        // SAFETY: `wfi` only waits; the kernel resumes the vCPU with its registers intact.
        unsafe { core::arch::asm!("wfi", options(nostack, preserves_flags)) }
    }

    read!(
        /// `PMCR_EL0`: bit 0 E (enable), bit 2 C (reset the cycle counter), bit 6 LC.
        performance_monitor_control,
        "pmcr_el0"
    );
    write!(
        /// Writes `PMCR_EL0`.
        set_performance_monitor_control,
        "pmcr_el0"
    );
    write!(
        /// `PMCNTENSET_EL0`: bit 31 enables the cycle counter.
        set_counter_enable,
        "pmcntenset_el0"
    );
    write!(
        /// `PMCCFILTR_EL0`: which exception levels the cycle counter counts.
        set_cycle_counter_filter,
        "pmccfiltr_el0"
    );

    /// Reads `PMCCNTR_EL0` after an `isb`, so that earlier instructions are counted.
    pub(crate) fn cycle_counter() -> u64 {
        let value: u64;
        // SAFETY: as for `read!`; the `isb` only orders the read.
        unsafe {
            core::arch::asm!(
                "isb",
                "mrs {value}, pmccntr_el0",
                value = out(reg) value,
                options(nomem, nostack, preserves_flags),
            );
        }
        value
    }
}

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub(crate) use machine::*;

#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
pub(crate) use crate::host::registers::*;
