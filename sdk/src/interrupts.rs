//! Virtual interrupts: the virtual GIC CPU interface, `DAIF.I`, and the cell's IRQ handler.
//!
//! The kernel delivers virtual interrupts (today: the EL1 virtual timer, [`crate::timer`],
//! INTID 27) through the list registers of the virtual GIC; the cell sees them through the
//! `ICC_*` system registers (which reach the `ICV_*` virtual interface because the kernel
//! sets `HCR_EL2.IMO`). EOI mode 0: writing `ICC_EOIR1_EL1` both drops the priority and
//! deactivates the interrupt.
//!
//! Use: [`set_handler`] once, then [`enable`]. The SDK's IRQ vector (in [`crate::start`])
//! saves every register the interrupted code may hold (the caller-saved general registers,
//! `q0..q7`, `q16..q31`, `FPSR`, `FPCR`, `ELR_EL1`, `SPSR_EL1`), acknowledges the interrupt
//! through `ICC_IAR1_EL1`, calls the handler with its INTID unless it is a special INTID
//! (1020..=1023, "nothing pending"), ends it through `ICC_EOIR1_EL1`, restores and returns.
//! The handler runs with IRQs masked (no nesting); it may make hypercalls and print.
//! Because the vector saves FP/SIMD registers, a cell whose system description says
//! `fp = false` must not unmask IRQs.
//!
//! Invariants: an interrupt acknowledged here is always ended here, after the handler.
//! The handler slot holds either nothing or a `fn(u32)` (the one `unsafe` block of this
//! file turns the stored pointer back into that function pointer).

use crate::registers;
use core::sync::atomic::{AtomicPtr, Ordering};

/// INTIDs from here on are special (1023: nothing pending); they are never ended.
pub const FIRST_SPECIAL_INTID: u32 = 1020;

/// `ICC_PMR_EL1` value letting every priority through.
const PRIORITY_MASK_ALL: u64 = 0xff;

/// The registered handler, as a type-erased `fn(u32)`; null when none is registered.
static HANDLER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Enables the virtual CPU interface: every priority unmasked (`ICC_PMR_EL1 = 0xff`) and group
/// 1 enabled (`ICC_IGRPEN1_EL1 = 1`). Only then does `ICC_IAR1_EL1` report pending
/// interrupts. Does not unmask IRQs at the core (see [`enable`]). Idempotent (two register
/// writes), so callers need not remember whether it ran.
///
/// A cell at EL0 ([`crate::start::at_el0`]) has no interrupt interface: it prints why and
/// exits with [`crate::start::EXIT_CODE_NO_INTERRUPTS`] (so does [`crate::time::sleep`],
/// which needs the timer's interrupt).
pub fn enable_cpu_interface() {
    if crate::start::at_el0() {
        crate::console::Line::new()
            .text("sdk: this cell runs at EL0 (privilege = \"el0\") and takes no interrupts")
            .print();
        crate::hvc::exit(crate::start::EXIT_CODE_NO_INTERRUPTS);
    }
    registers::set_priority_mask(PRIORITY_MASK_ALL);
    registers::set_group1_enable(1);
}

/// Registers `handler`, called with the INTID of every interrupt the IRQ vector takes (and of
/// every interrupt other than the timer's that [`crate::time::sleep_until`] finds pending).
/// Replaces any earlier handler.
pub fn set_handler(handler: fn(u32)) {
    HANDLER.store(handler as *mut (), Ordering::Release);
}

/// Enables the CPU interface (if not yet) and unmasks IRQs (`DAIF.I = 0`): pending virtual
/// interrupts are now taken by the IRQ vector.
pub fn enable() {
    enable_cpu_interface();
    registers::unmask_irqs();
}

/// Masks IRQs (`DAIF.I = 1`): interrupts stay pending until [`enable`].
pub fn disable() {
    registers::mask_irqs();
}

/// Executes `wfi`: the kernel blocks this vCPU until a virtual interrupt is pending for it,
/// even while IRQs are masked (then the interrupt stays pending and this just returns). With
/// IRQs unmasked the handler has run by the time this returns. May also return early.
pub fn wait_for_interrupt() {
    registers::wait_for_interrupt();
}

/// Calls the registered handler with `intid`; does nothing if none is registered.
fn dispatch(intid: u32) {
    let handler = HANDLER.load(Ordering::Acquire);
    if handler.is_null() {
        return;
    }
    // SAFETY: the only non-null values ever stored in HANDLER are `fn(u32)` pointers cast to
    // `*mut ()` by `set_handler`; function and data pointers have the same size on every
    // target this SDK supports, so transmuting back yields that same, valid function pointer.
    let handler = unsafe { core::mem::transmute::<*mut (), fn(u32)>(handler) };
    handler(intid);
}

/// Acknowledges the highest-priority pending interrupt; `None` if there is none.
fn acknowledge() -> Option<u32> {
    let intid = u32::try_from(registers::acknowledge_interrupt() & 0xff_ffff).unwrap_or(u32::MAX);
    (intid < FIRST_SPECIAL_INTID).then_some(intid)
}

/// Handles one IRQ exception: acknowledge, handler, end. Called only by the IRQ vector.
pub(crate) fn handle_irq() {
    if let Some(intid) = acknowledge() {
        dispatch(intid);
        registers::end_of_interrupt(u64::from(intid));
    }
}

/// The IRQ vector's call into Rust (see `crate::start`).
#[no_mangle]
extern "C" fn __cellvisor_irq() {
    handle_irq();
}

/// Acknowledges and ends every pending interrupt without taking an exception (IRQs may be
/// masked): `consumed` is ended silently, any other INTID goes to the handler first.
/// Stops after 16 interrupts, so a source that re-asserts at once cannot hold the caller.
pub(crate) fn drain_pending(consumed: u32) {
    for _ in 0..16 {
        let Some(intid) = acknowledge() else {
            return;
        };
        if intid != consumed {
            dispatch(intid);
        }
        registers::end_of_interrupt(u64::from(intid));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;

    use super::*;
    use crate::host::with;
    use std::cell::RefCell;
    use std::vec::Vec;

    std::thread_local! {
        pub(crate) static HANDLED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    }

    /// A handler recording the INTIDs it is called with (per thread).
    pub(crate) fn recording_handler(intid: u32) {
        HANDLED.with(|handled| handled.borrow_mut().push(intid));
    }

    pub(crate) fn handled() -> Vec<u32> {
        HANDLED.with(|handled| handled.borrow().clone())
    }

    #[test]
    fn enable_turns_on_the_interface_and_unmasks() {
        enable();
        with(|kernel| {
            assert_eq!(kernel.priority_mask, 0xff);
            assert_eq!(kernel.group1_enable, 1);
            assert!(!kernel.irqs_masked);
        });
        disable();
        with(|kernel| assert!(kernel.irqs_masked));
    }

    #[test]
    fn an_irq_is_acknowledged_handled_and_ended() {
        set_handler(recording_handler);
        enable_cpu_interface();
        with(|kernel| kernel.pending.extend([27, 33]));
        handle_irq();
        handle_irq();
        handle_irq();
        assert_eq!(handled(), [27, 33]);
        with(|kernel| {
            assert_eq!(kernel.acknowledged, [27, 33, 1023]);
            assert_eq!(kernel.ended, [27, 33]);
        });
    }

    #[test]
    fn draining_ends_the_consumed_intid_silently_and_dispatches_others() {
        set_handler(recording_handler);
        enable_cpu_interface();
        with(|kernel| kernel.pending.extend([27, 40]));
        drain_pending(27);
        assert_eq!(handled(), [40]);
        with(|kernel| assert_eq!(kernel.ended, [27, 40]));
    }
}
