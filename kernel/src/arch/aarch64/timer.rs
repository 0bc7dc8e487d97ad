//! The system counter and the EL2 physical timer, which the kernel uses for scheduling.
//!
//! Cells may read the counters; the EL1 physical timer is trapped (cells use their
//! virtual timer), and the virtual counter offset is zero for native cells.

use super::sysreg;

const CNTHCTL_EL1PCTEN: u64 = 1 << 0;
const CNTHP_CTL_ENABLE: u64 = 1 << 0;

/// The system counter now.
#[inline]
pub fn now() -> u64 {
    sysreg::isb();
    sysreg::cntpct_el0::read()
}

/// Counter ticks per second.
pub fn frequency() -> u64 {
    sysreg::cntfrq_el0::read()
}

/// Sets this core's counter access rules for cells and stops the EL2 timer.
pub fn init_core() {
    // CNTHCTL_EL2 lets EL1 read the physical counter but traps its physical timer;
    // CNTVOFF_EL2 = 0 gives native cells the physical count as virtual count.
    // SAFETY: these only shape EL1's view of the timers; the EL2 timer is the kernel's own.
    unsafe {
        sysreg::cnthctl_el2::write(CNTHCTL_EL1PCTEN);
        sysreg::cntvoff_el2::write(0);
        sysreg::cnthp_ctl_el2::write(0);
    }
}

/// Arms the EL2 timer to fire at counter value `deadline`, or disarms it.
pub fn set_deadline(deadline: Option<u64>) {
    // SAFETY: programming this core's EL2 timer only decides when the kernel's tick fires.
    unsafe {
        match deadline {
            Some(at) => {
                sysreg::cnthp_cval_el2::write(at);
                sysreg::cnthp_ctl_el2::write(CNTHP_CTL_ENABLE);
            }
            None => sysreg::cnthp_ctl_el2::write(0),
        }
    }
}
