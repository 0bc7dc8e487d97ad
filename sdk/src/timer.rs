//! The EL1 virtual timer (`CNTV_*`): one deadline on the system counter, delivered as INTID 27.
//!
//! When the counter reaches the deadline the timer condition is met and the kernel makes
//! virtual interrupt [`INTID`] pending for this vCPU: a `wfi` returns (even with IRQs masked),
//! and with IRQs unmasked the IRQ vector calls the handler of [`crate::interrupts`]. The
//! condition stays met until the deadline moves into the future or the timer is cancelled.
//! [`crate::time::sleep_until`] is built on this; a cell that uses the timer itself should
//! not sleep at the same time (a sleep cancels the timer when it ends).
//!
//! Native cells have `CNTVOFF_EL2 = 0`, so deadlines are [`Instant`]s of [`crate::time::now`].

use crate::registers;
use crate::time::Instant;

/// The timer's interrupt: the EL1 virtual timer PPI.
pub const INTID: u32 = 27;

/// `CNTV_CTL_EL0.ENABLE`.
const CONTROL_ENABLE: u64 = 1 << 0;

/// Arms the timer: its interrupt becomes pending once the counter reaches `deadline` (at once
/// if it already has). Replaces any earlier deadline.
pub fn set_deadline(deadline: Instant) {
    registers::set_timer_compare(deadline.ticks());
    registers::set_timer_control(CONTROL_ENABLE);
}

/// Disarms the timer: no interrupt is raised until the next [`set_deadline`]. An interrupt
/// already pending in the virtual CPU interface stays pending (see
/// [`crate::time::sleep_until`], which clears it).
pub fn cancel() {
    registers::set_timer_control(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::with;

    #[test]
    fn deadline_sets_compare_then_enables_and_cancel_disables() {
        set_deadline(Instant::from_ticks(1234));
        with(|kernel| {
            assert_eq!(kernel.timer_compare, 1234);
            assert_eq!(kernel.timer_control, 1);
        });
        cancel();
        with(|kernel| assert_eq!(kernel.timer_control, 0));
    }
}
