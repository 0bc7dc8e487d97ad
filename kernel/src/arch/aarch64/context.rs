//! A vCPU's EL1 state beyond its general registers: EL1 system registers, the virtual timer
//! and the FP/SIMD registers, saved and restored when a core switches vCPUs.
//!
//! Invariant: the kernel itself never touches FP/SIMD registers (it is built for a
//! soft-float target), so a vCPU's FP state stays live in the registers until another
//! vCPU is loaded on the same core.

/// EL1 system registers of a vCPU. The order is the assembly's; do not reorder.
///
/// The first 16 words are the registers every vCPU may change ([`save_el1`] always moves
/// them). The rest are the stage-1 translation and fault-status registers that only a guest
/// changes: a native cell runs with stage 1 off (HCR_EL2.DC) and its writes to them trap
/// (HCR_EL2.TVM), so they hold their reset values for every native vCPU and a switch between
/// native vCPUs leaves them alone.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct El1Registers {
    /// SP_EL1.
    pub sp_el1: u64,
    /// ELR_EL1.
    pub elr_el1: u64,
    /// SPSR_EL1.
    pub spsr_el1: u64,
    /// VBAR_EL1.
    pub vbar: u64,
    /// SP_EL0.
    pub sp_el0: u64,
    /// TPIDR_EL0.
    pub tpidr_el0: u64,
    /// TPIDRRO_EL0.
    pub tpidrro_el0: u64,
    /// TPIDR_EL1.
    pub tpidr_el1: u64,
    /// ESR_EL1.
    pub esr_el1: u64,
    /// FAR_EL1.
    pub far_el1: u64,
    /// PAR_EL1.
    pub par: u64,
    /// CPACR_EL1.
    pub cpacr: u64,
    /// CNTKCTL_EL1.
    pub cntkctl: u64,
    /// CSSELR_EL1.
    pub csselr: u64,
    /// CNTV_CVAL_EL0.
    pub cntv_cval: u64,
    /// CNTV_CTL_EL0.
    pub cntv_ctl: u64,
    /// SCTLR_EL1.
    pub sctlr: u64,
    /// TTBR0_EL1.
    pub ttbr0: u64,
    /// TTBR1_EL1.
    pub ttbr1: u64,
    /// TCR_EL1.
    pub tcr: u64,
    /// MAIR_EL1.
    pub mair: u64,
    /// AMAIR_EL1.
    pub amair: u64,
    /// CONTEXTIDR_EL1.
    pub contextidr: u64,
    /// AFSR0_EL1.
    pub afsr0: u64,
    /// AFSR1_EL1.
    pub afsr1: u64,
    /// MDSCR_EL1 as the vCPU sees it: virtual, never loaded into the register (accesses
    /// trap, see `kcore::debug`). Also keeps the structure a multiple of 16 bytes.
    pub mdscr: u64,
}

/// SCTLR_EL1 at reset: MMU and caches off, RES1 bits only.
pub const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

impl El1Registers {
    /// The state a vCPU starts in: every register 0 but SCTLR_EL1 ([`SCTLR_EL1_RESET`]).
    pub fn at_reset() -> Self {
        Self {
            sctlr: SCTLR_EL1_RESET,
            ..Self::default()
        }
    }
}

/// FP/SIMD registers of a vCPU.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub struct FpRegisters {
    /// q0–q31.
    pub q: [u128; 32],
    /// FPCR.
    pub fpcr: u64,
    /// FPSR.
    pub fpsr: u64,
}

impl FpRegisters {
    /// All zero.
    pub const fn zeroed() -> Self {
        Self {
            q: [0; 32],
            fpcr: 0,
            fpsr: 0,
        }
    }
}

/// Saves the current EL1 system registers into `registers`: all of them if `translation`,
/// else only those every vCPU may change (see [`El1Registers`]).
pub fn save_el1(registers: &mut El1Registers, translation: bool) {
    // `el1_save` writes the first 16 words of the `#[repr(C)]` structure, the other the next 9.
    // SAFETY: both only read EL1 registers and write the valid, exclusively borrowed structure.
    unsafe {
        el1_save(registers);
        if translation {
            el1_save_translation(registers);
        }
    }
}

/// Loads `registers` into the EL1 system registers: all of them if `translation`, else only
/// those every vCPU may change.
///
/// Changes EL1 state only; EL2 execution is unaffected, and the values become the running
/// vCPU's on the next `eret`.
pub fn restore_el1(registers: &El1Registers, translation: bool) {
    // SAFETY: both functions read the structure behind the valid pointer and write EL1
    // system registers, which affect only code running at EL1/EL0 (the vCPU being loaded).
    unsafe {
        el1_restore(registers);
        if translation {
            el1_restore_translation(registers);
        }
    }
}

/// Makes the EL1 registers that still govern EL0 under `HCR_EL2.TGE` the kernel's, for
/// cells that run at EL0: the EL1 world's values must already be saved ([`save_el1`], with
/// `translation` for a guest) except PMUSERENR_EL0, which this returns.
///
/// The EL0 context: SCTLR_EL1 at its reset value, the one every native vCPU has (little
/// endian, no EL0 cache maintenance, DC ZVA, DAIF access, WFI or WFE: they trap to EL2), so
/// it is written only when `reset_sctlr` (a guest's value is live);
/// CPACR_EL1 with FP/SIMD enabled (CPTR_EL2 still traps it for a cell without FP);
/// CNTKCTL_EL1 allowing only reads of the virtual counter (and CNTFRQ); the virtual timer
/// off; PMUSERENR_EL0.EN (the PMU is the cells' already, `MDCR_EL2.HPMN`); TPIDRRO_EL0 0.
/// MDSCR_EL1 needs nothing: no cell can write it (debug registers trap, `kcore::debug`),
/// so it keeps the 0 each core starts with.
pub fn enter_el0_context(reset_sctlr: bool) -> u64 {
    let world_pmuserenr = super::sysreg::pmuserenr_el0::read();
    // SAFETY: `el0_enter` and SCTLR_EL1 (EL1&0 regime, stage 1 off under TGE) write
    // registers that affect only EL1 and EL0.
    unsafe {
        el0_enter();
        if reset_sctlr {
            super::sysreg::sctlr_el1::write(SCTLR_EL1_RESET);
        }
    }
    world_pmuserenr
}

/// Gives the EL1 world back its PMUSERENR_EL0 (what [`enter_el0_context`] returned); the
/// next EL1 vCPU's [`restore_el1`] restores the rest (SCTLR_EL1 holds the native vCPUs'
/// value; a guest's restore, with `translation`, loads its own).
pub fn leave_el0_context(world_pmuserenr: u64) {
    // SAFETY: PMUSERENR_EL0 only governs EL0's access to the PMU; this is the EL1 world's
    // own value.
    unsafe { super::sysreg::pmuserenr_el0::write(world_pmuserenr) }
}

/// Saves the registers an EL0 cell owns besides its general registers: SP_EL0, TPIDR_EL0.
pub fn save_el0(registers: &mut El1Registers) {
    // SAFETY: `el0_save` reads two registers and writes words 4 and 5 of the valid,
    // exclusively borrowed `#[repr(C)]` structure.
    unsafe { el0_save(registers) }
}

/// Loads the registers an EL0 cell owns (see [`save_el0`]).
pub fn restore_el0(registers: &El1Registers) {
    // SAFETY: `el0_restore` reads words 4 and 5 of the valid structure and writes SP_EL0 and
    // TPIDR_EL0, which affect only code running below EL2.
    unsafe { el0_restore(registers) }
}

/// The switch between two EL0 vCPUs: saves SP_EL0 and TPIDR_EL0 into `from` and loads
/// the next vCPU's `sp_el0` and `tpidr_el0` ([`save_el0`] then [`restore_el0`], without
/// the calls).
#[inline(always)]
pub fn swap_el0(from: &mut El1Registers, sp_el0: u64, tpidr_el0: u64) {
    // SAFETY: the store writes words 4 and 5 of the exclusively borrowed `#[repr(C)]` `from`;
    // SP_EL0 and TPIDR_EL0 affect only code below EL2 (EL2 runs on SP_EL2).
    unsafe {
        core::arch::asm!(
            "mrs {a}, sp_el0",
            "mrs {b}, tpidr_el0",
            "stp {a}, {b}, [{from}, #32]",
            "msr sp_el0, {sp}",
            "msr tpidr_el0, {tpidr}",
            from = in(reg) from as *mut El1Registers,
            sp = in(reg) sp_el0,
            tpidr = in(reg) tpidr_el0,
            a = out(reg) _,
            b = out(reg) _,
            options(nostack, preserves_flags),
        )
    }
}

/// Saves the FP/SIMD registers into `registers`.
pub fn save_fp(registers: &mut FpRegisters) {
    // SAFETY: `fp_save` writes 32 × 16 + 16 bytes into the valid, exclusively borrowed,
    // 16-byte aligned structure; FP access from EL2 is not trapped (CPTR_EL2.TFP = 0).
    unsafe { fp_save(registers) }
}

/// Loads `registers` into the FP/SIMD registers.
pub fn restore_fp(registers: &FpRegisters) {
    // SAFETY: `fp_restore` reads the valid structure and writes FP/SIMD registers, which
    // the kernel itself never uses (soft-float target).
    unsafe { fp_restore(registers) }
}

extern "C" {
    fn el1_save(registers: *mut El1Registers);
    fn el1_save_translation(registers: *mut El1Registers);
    fn el1_restore(registers: *const El1Registers);
    fn el1_restore_translation(registers: *const El1Registers);
    fn el0_enter();
    fn el0_save(registers: *mut El1Registers);
    fn el0_restore(registers: *const El1Registers);
    fn fp_save(registers: *mut FpRegisters);
    fn fp_restore(registers: *const FpRegisters);
}

core::arch::global_asm!(
    r#"
    .arch_extension fp
    .arch_extension simd
    .section .text.context, "ax"

// Moves two system registers to or from the structure at x0 (offset `at`).
.macro SAVE_PAIR first, second, at
    mrs     x1, \first
    mrs     x2, \second
    stp     x1, x2, [x0, #\at]
.endm
.macro RESTORE_PAIR first, second, at
    ldp     x1, x2, [x0, #\at]
    msr     \first, x1
    msr     \second, x2
.endm

    .global el1_save
el1_save:
    SAVE_PAIR sp_el1, elr_el1, 0
    SAVE_PAIR spsr_el1, vbar_el1, 16
    SAVE_PAIR sp_el0, tpidr_el0, 32
    SAVE_PAIR tpidrro_el0, tpidr_el1, 48
    SAVE_PAIR esr_el1, far_el1, 64
    SAVE_PAIR par_el1, cpacr_el1, 80
    SAVE_PAIR cntkctl_el1, csselr_el1, 96
    SAVE_PAIR cntv_cval_el0, cntv_ctl_el0, 112
    ret

    .global el1_save_translation
el1_save_translation:
    SAVE_PAIR sctlr_el1, ttbr0_el1, 128
    SAVE_PAIR ttbr1_el1, tcr_el1, 144
    SAVE_PAIR mair_el1, amair_el1, 160
    SAVE_PAIR contextidr_el1, afsr0_el1, 176
    mrs     x1, afsr1_el1
    str     x1, [x0, #192]
    ret

    .global el1_restore
el1_restore:
    RESTORE_PAIR sp_el1, elr_el1, 0
    RESTORE_PAIR spsr_el1, vbar_el1, 16
    RESTORE_PAIR sp_el0, tpidr_el0, 32
    RESTORE_PAIR tpidrro_el0, tpidr_el1, 48
    RESTORE_PAIR esr_el1, far_el1, 64
    RESTORE_PAIR par_el1, cpacr_el1, 80
    RESTORE_PAIR cntkctl_el1, csselr_el1, 96
    RESTORE_PAIR cntv_cval_el0, cntv_ctl_el0, 112
    ret

    .global el1_restore_translation
el1_restore_translation:
    RESTORE_PAIR sctlr_el1, ttbr0_el1, 128
    RESTORE_PAIR ttbr1_el1, tcr_el1, 144
    RESTORE_PAIR mair_el1, amair_el1, 160
    RESTORE_PAIR contextidr_el1, afsr0_el1, 176
    ldr     x1, [x0, #192]
    msr     afsr1_el1, x1
    ret

    .global el0_enter
el0_enter:
    mov     x1, #(3 << 20)
    msr     cpacr_el1, x1
    mov     x1, #2
    msr     cntkctl_el1, x1
    mov     x1, #1
    msr     pmuserenr_el0, x1
    msr     cntv_ctl_el0, xzr
    msr     tpidrro_el0, xzr
    ret

    .global el0_save
el0_save:
    SAVE_PAIR sp_el0, tpidr_el0, 32
    ret

    .global el0_restore
el0_restore:
    RESTORE_PAIR sp_el0, tpidr_el0, 32
    ret

    .global fp_save
fp_save:
    st1     {{v0.2d, v1.2d, v2.2d, v3.2d}}, [x0], #64
    st1     {{v4.2d, v5.2d, v6.2d, v7.2d}}, [x0], #64
    st1     {{v8.2d, v9.2d, v10.2d, v11.2d}}, [x0], #64
    st1     {{v12.2d, v13.2d, v14.2d, v15.2d}}, [x0], #64
    st1     {{v16.2d, v17.2d, v18.2d, v19.2d}}, [x0], #64
    st1     {{v20.2d, v21.2d, v22.2d, v23.2d}}, [x0], #64
    st1     {{v24.2d, v25.2d, v26.2d, v27.2d}}, [x0], #64
    st1     {{v28.2d, v29.2d, v30.2d, v31.2d}}, [x0], #64
    mrs     x1, fpcr
    mrs     x2, fpsr
    stp     x1, x2, [x0]
    ret

    .global fp_restore
fp_restore:
    ld1     {{v0.2d, v1.2d, v2.2d, v3.2d}}, [x0], #64
    ld1     {{v4.2d, v5.2d, v6.2d, v7.2d}}, [x0], #64
    ld1     {{v8.2d, v9.2d, v10.2d, v11.2d}}, [x0], #64
    ld1     {{v12.2d, v13.2d, v14.2d, v15.2d}}, [x0], #64
    ld1     {{v16.2d, v17.2d, v18.2d, v19.2d}}, [x0], #64
    ld1     {{v20.2d, v21.2d, v22.2d, v23.2d}}, [x0], #64
    ld1     {{v24.2d, v25.2d, v26.2d, v27.2d}}, [x0], #64
    ld1     {{v28.2d, v29.2d, v30.2d, v31.2d}}, [x0], #64
    ldp     x1, x2, [x0]
    msr     fpcr, x1
    msr     fpsr, x2
    ret
"#
);

const _: () = assert!(core::mem::size_of::<El1Registers>() == 26 * 8);
const _: () = assert!(core::mem::offset_of!(El1Registers, sp_el0) == 32);
const _: () = assert!(core::mem::offset_of!(El1Registers, tpidr_el0) == 40);
