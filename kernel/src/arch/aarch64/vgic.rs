//! The GICv3 virtual CPU interface at EL2: the list registers through which the kernel
//! delivers virtual interrupts to the vCPU it runs, and the virtual interface state that is
//! saved and restored with each vCPU.
//!
//! Invariant: while a vCPU is loaded, its list registers, VMCR and active-priority state are
//! live in the hardware; they are saved into its `InterfaceState` only when it is switched
//! out, and written back when it is switched in.

use super::sysreg;
use kcore::vgic::{ListRegister, MAX_LIST_REGISTERS};

/// ICH_HCR_EL2.En: the virtual CPU interface is on.
const ICH_HCR_ENABLE: u64 = 1 << 0;
/// ICH_HCR_EL2.UIE: maintenance interrupt when at most one list register holds an interrupt.
const ICH_HCR_UNDERFLOW: u64 = 1 << 1;
/// ICH_HCR_EL2.TC: EL1 accesses to the registers common to both groups trap to EL2 — the
/// only way to see a guest's SGI writes (and, on QEMU, its PMR, CTLR and RPR accesses,
/// which the kernel then emulates against ICH_VMCR_EL2).
const ICH_HCR_TRAP_COMMON: u64 = 1 << 10;

/// A vCPU's virtual CPU interface state while it is not loaded.
#[derive(Clone, Copy, Debug)]
pub struct InterfaceState {
    /// List registers.
    pub list_registers: [ListRegister; MAX_LIST_REGISTERS],
    /// ICH_VMCR_EL2 (the vCPU's priority mask, group enables, EOI mode).
    pub vmcr: u64,
    /// ICH_AP1R0_EL2 (active priorities of group 1).
    pub active_priorities: u64,
}

impl InterfaceState {
    /// The state of a vCPU at reset.
    pub const fn at_reset() -> Self {
        Self {
            list_registers: [ListRegister::EMPTY; MAX_LIST_REGISTERS],
            vmcr: 0,
            active_priorities: 0,
        }
    }
}

/// Number of list registers this core implements.
pub fn list_register_count() -> usize {
    let vtr = sysreg::ich_vtr_el2::read();
    ((vtr & 0x1f) as usize + 1).min(MAX_LIST_REGISTERS)
}

/// Turns the virtual CPU interface on for this core, with or without the underflow
/// maintenance interrupt.
pub fn enable(underflow_interrupt: bool, trap_common: bool) {
    let value = ICH_HCR_ENABLE
        | if underflow_interrupt {
            ICH_HCR_UNDERFLOW
        } else {
            0
        }
        | if trap_common { ICH_HCR_TRAP_COMMON } else { 0 };
    // SAFETY: ICH_HCR_EL2 only controls the virtual interface seen by EL1; enabling it makes
    // EL1's ICC_* accesses reach the virtual interface (HCR_EL2.IMO is set for cells).
    unsafe { sysreg::ich_hcr_el2::write(value) };
}

/// ICH_ELRSR_EL2: bit n set when list register n holds nothing. The ISB makes list
/// registers written since the last exception show in it (another register's indirect view).
pub fn empty_list_registers() -> u64 {
    sysreg::isb();
    sysreg::ich_elrsr_el2::read()
}

/// Switches the virtual CPU interface off while the core idles and returns what
/// [`resume`] must restore. A pending virtual interrupt of the loaded vCPU would otherwise
/// keep the virtual IRQ line up, and a WFI at EL2 may end at once on it (QEMU's does): the
/// idle core would spin instead of waiting.
pub fn pause() -> u64 {
    let control = sysreg::ich_hcr_el2::read();
    if control & ICH_HCR_ENABLE != 0 {
        // SAFETY: with En clear the interface signals nothing to EL1 and EL1 does not run
        // until `resume` restores the value; the list registers keep their contents.
        unsafe { sysreg::ich_hcr_el2::write(control & !ICH_HCR_ENABLE) };
        // The WFI must already see the interface off.
        sysreg::isb();
    }
    control
}

/// Restores the virtual interface control [`pause`] returned.
pub fn resume(control: u64) {
    if control & ICH_HCR_ENABLE != 0 {
        // SAFETY: the value is the one the loaded vCPU had before the core idled.
        unsafe { sysreg::ich_hcr_el2::write(control) };
    }
}

macro_rules! list_register_access {
    ($($index:literal => $name:literal),* $(,)?) => {
        /// Reads `ICH_LR<index>_EL2` (0 past the implemented ones).
        pub fn read_list_register(index: usize) -> u64 {
            let value: u64;
            match index {
                $($index => {
                    // SAFETY: reading a list register has no side effect.
                    unsafe { core::arch::asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack)) }
                })*
                _ => value = 0,
            }
            value
        }

        /// Writes `ICH_LR<index>_EL2` (nothing past the implemented ones).
        pub fn write_list_register(index: usize, value: u64) {
            match index {
                $($index => {
                    // SAFETY: a list register only describes a virtual interrupt for the vCPU
                    // loaded on this core; the value comes from kcore::vgic's encoding.
                    unsafe { core::arch::asm!(concat!("msr ", $name, ", {}"), in(reg) value, options(nomem, nostack)) }
                })*
                _ => {}
            }
        }
    };
}

list_register_access!(
    0 => "S3_4_C12_C12_0", 1 => "S3_4_C12_C12_1", 2 => "S3_4_C12_C12_2", 3 => "S3_4_C12_C12_3",
    4 => "S3_4_C12_C12_4", 5 => "S3_4_C12_C12_5", 6 => "S3_4_C12_C12_6", 7 => "S3_4_C12_C12_7",
    8 => "S3_4_C12_C13_0", 9 => "S3_4_C12_C13_1", 10 => "S3_4_C12_C13_2", 11 => "S3_4_C12_C13_3",
    12 => "S3_4_C12_C13_4", 13 => "S3_4_C12_C13_5", 14 => "S3_4_C12_C13_6", 15 => "S3_4_C12_C13_7",
);

/// Empties every list register the interface implements, also those beyond the
/// [`MAX_LIST_REGISTERS`] the kernel uses: their reset value is UNKNOWN.
pub fn clear_list_registers() {
    for index in 0..=(sysreg::ich_vtr_el2::read() & 0x1f) as usize {
        write_list_register(index, 0);
    }
}

/// Reads the first `count` live list registers into `list_registers`.
pub fn save_list_registers(list_registers: &mut [ListRegister], count: usize) {
    for (index, register) in list_registers.iter_mut().take(count).enumerate() {
        *register = ListRegister(read_list_register(index));
    }
}

/// Writes `list_registers` (the first `count`) into the live list registers.
pub fn load_list_registers(list_registers: &[ListRegister], count: usize) {
    for (index, register) in list_registers.iter().take(count).enumerate() {
        write_list_register(index, register.0);
    }
}

/// The loaded vCPU's ICH_VMCR_EL2 (its virtual priority mask, EOI mode, group enables).
pub fn control() -> u64 {
    sysreg::ich_vmcr_el2::read()
}

/// Sets the loaded vCPU's ICH_VMCR_EL2.
pub fn set_control(value: u64) {
    // SAFETY: ICH_VMCR_EL2 is the loaded vCPU's own virtual interface state (what its
    // ICC_PMR/CTLR accesses would set); it only affects EL1.
    unsafe { sysreg::ich_vmcr_el2::write(value) };
}

/// The loaded vCPU's group 1 active priorities (ICH_AP1R0_EL2).
pub fn active_priorities() -> u64 {
    sysreg::ich_ap1r0_el2::read()
}

/// The virtual interface's ID fields as ICC_CTLR_EL1 reports them (PRIbits, IDbits, SEIS,
/// A3V from ICH_VTR_EL2).
pub fn control_id_fields() -> u64 {
    let vtr = sysreg::ich_vtr_el2::read();
    let pri_bits = (vtr >> 29) & 0x7;
    let id_bits = (vtr >> 23) & 0x7;
    let seis = (vtr >> 22) & 1;
    let a3v = (vtr >> 21) & 1;
    (a3v << 15) | (seis << 14) | (id_bits << 11) | (pri_bits << 8)
}

/// Saves the loaded vCPU's virtual interface control state (VMCR and active priorities;
/// the list registers are saved separately, and only when they may hold something).
pub fn save_control(state: &mut InterfaceState) {
    state.vmcr = sysreg::ich_vmcr_el2::read();
    state.active_priorities = sysreg::ich_ap1r0_el2::read();
}

/// Loads a vCPU's virtual interface control state (see [`save_control`]).
pub fn restore_control(state: &InterfaceState) {
    // SAFETY: ICH_VMCR_EL2 and ICH_AP1R0_EL2 hold the virtual interface state of the vCPU
    // being loaded, saved by `save` (or its reset state); they only affect EL1.
    unsafe {
        sysreg::ich_vmcr_el2::write(state.vmcr);
        sysreg::ich_ap1r0_el2::write(state.active_priorities);
    }
}
