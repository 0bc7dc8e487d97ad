//! The self-hosted debug registers as a cell sees them.
//!
//! Breakpoint, watchpoint and software-step state is per physical core, not per vCPU, so a
//! cell that could program it would make another cell on the same core take debug
//! exceptions. The kernel therefore keeps the OS Lock of every core locked (which disables
//! breakpoint, watchpoint and software-step exceptions below EL2; `BRK` still works) and
//! traps every debug-register access (`MDCR_EL2.TDA`, `TDOSA`, `TDRA`). [`trapped_access`]
//! decides what such an access does:
//! - `MDSCR_EL1` is virtual, one per vCPU: a write keeps its [`MDSCR_KEPT`] bits, a read
//!   returns them; it never reaches the register;
//! - `OSLSR_EL1` reads as "OS Lock implemented, unlocked";
//! - every other register (breakpoint and watchpoint values and controls, the OS Lock and
//!   Double Lock, claim tags, the debug communication channel, `MDRAR_EL1`) reads as zero
//!   and ignores writes.
//!
//! So a guest's hardware breakpoints and single steps never fire (its debugger falls back on
//! software breakpoints), and nothing a cell writes survives into another cell. Nothing here
//! panics.

/// The `MDSCR_EL1` bits a cell's write keeps: SS (bit 0), TDCC (12), KDE (13), MDE (15).
pub const MDSCR_KEPT: u64 = 1 | 1 << 12 | 1 << 13 | 1 << 15;

/// `OSLSR_EL1` as cells read it: OSLM = 0b10 (the OS Lock is implemented), OSLK = 0.
pub const OSLSR_UNLOCKED: u64 = 1 << 3;

/// A trapped access to the debug register with encoding op0 = 2, `(op1, crn, crm, op2)`:
/// a read returns `Some(value)` for the register the instruction loads; a write of `value`
/// returns `None`. `monitor_control` is the vCPU's virtual `MDSCR_EL1`.
pub fn trapped_access(
    read: bool,
    (op1, crn, crm, op2): (u8, u8, u8, u8),
    value: u64,
    monitor_control: &mut u64,
) -> Option<u64> {
    // The encodings `(op1, crn, crm, op2)` of the two registers with a behaviour of their own.
    const MDSCR_EL1: (u8, u8, u8, u8) = (0, 0, 2, 2);
    const OSLSR_EL1: (u8, u8, u8, u8) = (0, 1, 1, 4);
    match ((op1, crn, crm, op2), read) {
        (MDSCR_EL1, true) => Some(*monitor_control),
        (MDSCR_EL1, false) => {
            *monitor_control = value & MDSCR_KEPT;
            None
        }
        (OSLSR_EL1, true) => Some(OSLSR_UNLOCKED),
        (_, true) => Some(0),
        (_, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MDSCR: (u8, u8, u8, u8) = (0, 0, 2, 2);
    const OSLAR: (u8, u8, u8, u8) = (0, 1, 0, 4);
    const OSLSR: (u8, u8, u8, u8) = (0, 1, 1, 4);

    /// DBGBVR<n>_EL1, DBGBCR<n>, DBGWVR<n>, DBGWCR<n>: op2 4 to 7, CRm = n.
    fn breakpoint_and_watchpoint_registers() -> impl Iterator<Item = (u8, u8, u8, u8)> {
        (0..16).flat_map(|n| (4..8).map(move |op2| (0, 0, n, op2)))
    }

    #[test]
    fn monitor_control_is_virtual_and_keeps_only_the_cells_bits() {
        let mut mdscr = 0;
        assert_eq!(trapped_access(false, MDSCR, u64::MAX, &mut mdscr), None);
        assert_eq!(mdscr, MDSCR_KEPT);
        assert_eq!(trapped_access(true, MDSCR, 0, &mut mdscr), Some(MDSCR_KEPT));
        // Linux's first write: TDCC only.
        trapped_access(false, MDSCR, 1 << 12, &mut mdscr);
        assert_eq!(trapped_access(true, MDSCR, 0, &mut mdscr), Some(1 << 12));
    }

    #[test]
    fn breakpoints_watchpoints_and_the_os_lock_are_unreachable() {
        let mut mdscr = 1 << 15;
        for register in breakpoint_and_watchpoint_registers().chain([OSLAR, (0, 1, 3, 4)]) {
            assert_eq!(trapped_access(false, register, u64::MAX, &mut mdscr), None);
            assert_eq!(trapped_access(true, register, 0, &mut mdscr), Some(0));
        }
        // Unlocking (or locking) the OS Lock changes nothing a cell can read.
        assert_eq!(
            trapped_access(true, OSLSR, 0, &mut mdscr),
            Some(OSLSR_UNLOCKED)
        );
        trapped_access(false, OSLAR, 1, &mut mdscr);
        assert_eq!(
            trapped_access(true, OSLSR, 0, &mut mdscr),
            Some(OSLSR_UNLOCKED)
        );
        assert_eq!(mdscr, 1 << 15);
    }

    #[test]
    fn any_encoding_is_answered() {
        let mut mdscr = 0;
        for op1 in 0..8 {
            for crn in 0..16 {
                for crm in 0..16 {
                    for op2 in 0..8 {
                        let encoding = (op1, crn, crm, op2);
                        assert!(trapped_access(true, encoding, 0, &mut mdscr).is_some());
                        let before = mdscr;
                        assert_eq!(trapped_access(false, encoding, 5, &mut mdscr), None);
                        if encoding != MDSCR {
                            assert_eq!(mdscr, before);
                        }
                    }
                }
            }
        }
    }
}
