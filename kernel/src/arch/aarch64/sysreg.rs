//! Every system register the kernel reads or writes, in one table, one accessor module each.
//!
//! Reads of these registers have no side effects (the one exception, acknowledging an
//! interrupt, lives in `gic.rs`), so `read()` is safe. Writes can change translation,
//! trapping or interrupt routing, so `write()` is an `unsafe fn`: each caller states why
//! its value is right at that point.

macro_rules! system_registers {
    ($($(#[$doc:meta])* $module:ident = $register:literal;)*) => {$(
        $(#[$doc])*
        #[allow(dead_code)]
        pub mod $module {
            /// Reads the register.
            #[inline(always)]
            pub fn read() -> u64 {
                let value: u64;
                // SAFETY: `mrs` of this register has no side effects and touches no memory.
                unsafe {
                    core::arch::asm!(
                        concat!("mrs {}, ", $register),
                        out(reg) value,
                        options(nomem, nostack, preserves_flags)
                    )
                };
                value
            }

            /// Writes the register.
            ///
            /// # Safety
            /// The value must be valid for the register and consistent with the state the
            /// kernel relies on at this point (translation, trapping, interrupt routing).
            #[inline(always)]
            pub unsafe fn write(value: u64) {
                // SAFETY: the caller upholds this function's contract.
                unsafe {
                    core::arch::asm!(
                        concat!("msr ", $register, ", {}"),
                        in(reg) value,
                        options(nostack, preserves_flags)
                    )
                };
            }
        }
    )*};
}

system_registers! {
    /// This core's affinity.
    mpidr_el1 = "mpidr_el1";
    /// Memory model features: physical address range in bits [3:0].
    id_aa64mmfr0_el1 = "id_aa64mmfr0_el1";
    /// Hypervisor configuration: traps and routing for the running cell.
    hcr_el2 = "hcr_el2";
    /// Stage-2 translation control.
    vtcr_el2 = "vtcr_el2";
    /// Stage-2 table base and VMID of the running cell.
    vttbr_el2 = "vttbr_el2";
    /// EL2 system control: MMU, caches, alignment, WXN.
    sctlr_el2 = "sctlr_el2";
    /// EL2 stage-1 translation control.
    tcr_el2 = "tcr_el2";
    /// EL2 memory attribute indirection.
    mair_el2 = "mair_el2";
    /// EL2 stage-1 table base.
    ttbr0_el2 = "ttbr0_el2";
    /// Syndrome of the exception taken to EL2.
    esr_el2 = "esr_el2";
    /// Faulting virtual address of the exception taken to EL2.
    far_el2 = "far_el2";
    /// Faulting IPA page (bits [39:4] hold IPA[51:12]) of a stage-2 abort.
    hpfar_el2 = "hpfar_el2";
    /// Counter and timer access from EL1/EL0.
    cnthctl_el2 = "cnthctl_el2";
    /// Virtual counter offset of the running cell.
    cntvoff_el2 = "cntvoff_el2";
    /// EL2 physical timer control (the kernel's scheduling timer).
    cnthp_ctl_el2 = "cnthp_ctl_el2";
    /// EL2 physical timer compare value.
    cnthp_cval_el2 = "cnthp_cval_el2";
    /// Physical system counter.
    cntpct_el0 = "cntpct_el0";
    /// System counter frequency in Hz.
    cntfrq_el0 = "cntfrq_el0";
    /// Traps of FP/SIMD and other features to EL2.
    cptr_el2 = "cptr_el2";
    /// Debug and performance monitor traps.
    mdcr_el2 = "mdcr_el2";
    /// OS Lock Access (write-only): 1 locks the OS Lock.
    oslar_el1 = "oslar_el1";
    /// Monitor debug system control (the hardware one; cells see a virtual one).
    mdscr_el1 = "mdscr_el1";
    /// Performance monitors user enable: EL0 access to the PMU.
    pmuserenr_el0 = "pmuserenr_el0";
    /// The MPIDR value a cell's vCPU reads.
    vmpidr_el2 = "vmpidr_el2";
    /// This core's index (set once at entry).
    tpidr_el2 = "tpidr_el2";
    /// GIC system register enable at EL2 (and EL1 access to ICC_SRE_EL1).
    icc_sre_el2 = "S3_4_C12_C9_5";
    /// GIC priority mask.
    icc_pmr_el1 = "S3_0_C4_C6_0";
    /// GIC group 1 binary point.
    icc_bpr1_el1 = "S3_0_C12_C12_3";
    /// GIC CPU interface control (EOI mode).
    icc_ctlr_el1 = "S3_0_C12_C12_4";
    /// GIC group 1 interrupt enable.
    icc_igrpen1_el1 = "S3_0_C12_C12_7";
    /// GIC group 1 end of interrupt.
    icc_eoir1_el1 = "S3_0_C12_C12_1";
    /// GIC deactivate interrupt.
    icc_dir_el1 = "S3_0_C12_C11_1";
    /// EL1 system control of the loaded vCPU (or of the EL0 context).
    sctlr_el1 = "sctlr_el1";
    /// Virtual timer control of the loaded vCPU.
    cntv_ctl_el0 = "cntv_ctl_el0";
    /// Virtual timer compare value of the loaded vCPU.
    cntv_cval_el0 = "cntv_cval_el0";
    /// GIC group 1 software generated interrupt.
    icc_sgi1r_el1 = "S3_0_C12_C11_5";
    /// GIC virtual CPU interface control.
    ich_hcr_el2 = "S3_4_C12_C11_0";
    /// GIC virtual interface type: list registers in bits [4:0], PRIbits, IDbits, SEIS, A3V.
    ich_vtr_el2 = "S3_4_C12_C11_1";
    /// GIC empty list register status: bit n set when list register n holds nothing.
    ich_elrsr_el2 = "S3_4_C12_C11_5";
    /// GIC virtual machine control (the loaded vCPU's priority mask, EOI mode, enables).
    ich_vmcr_el2 = "S3_4_C12_C11_7";
    /// GIC group 1 active priorities of the loaded vCPU.
    ich_ap1r0_el2 = "S3_4_C12_C9_0";
    /// Cache type: minimum data cache line size in bits [19:16].
    ctr_el0 = "ctr_el0";
    /// Data cache zero ID: `dc zva` block size (log2 words, bits [3:0]) and prohibition (bit 4).
    dczid_el0 = "dczid_el0";
    /// Performance monitors control: number of event counters in bits [15:11].
    pmcr_el0 = "pmcr_el0";
}

/// Instruction synchronisation barrier: later instructions see earlier register writes.
#[inline(always)]
pub fn isb() {
    // SAFETY: a barrier has no effect on memory or registers.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
}

/// Makes this core's earlier stores visible to the other cores of the inner-shareable
/// domain before anything after it (an SGI write, say) takes effect.
#[inline(always)]
pub fn dsb_ishst() {
    // SAFETY: a barrier has no effect on memory or registers.
    unsafe { core::arch::asm!("dsb ishst", options(nostack, preserves_flags)) };
}

/// Waits for an interrupt (which wakes the core even while masked at EL2).
#[inline(always)]
pub fn wait_for_interrupt() {
    // SAFETY: `wfi` only suspends the core until an interrupt or event.
    unsafe { core::arch::asm!("wfi", options(nomem, nostack, preserves_flags)) };
}

/// Waits for an event.
#[inline(always)]
pub fn wait_for_event() {
    // SAFETY: `wfe` only suspends the core until an event.
    unsafe { core::arch::asm!("wfe", options(nomem, nostack, preserves_flags)) };
}
