//! Cell control: the null call, stopping and restarting cells, their status and fault reports.
//!
//! Safe wrappers of [`abi::hvc::NULL`], [`abi::hvc::CELL_CONTROL`], [`abi::hvc::CELL_STATUS`]
//! (state, restarts, faults and capability denials)
//! and [`abi::hvc::FAULT_WAIT`]. Cells are named by their index in the boot plan (what
//! [`crate::hvc::vcpu_info`] reports as `cell`). Controlling a cell, or reading another
//! cell's status, needs the control right over it, which the system description grants (a
//! supervisor); without it the kernel answers [`HvcError::Denied`]. A code outside the ABI's
//! enumerations in a result is an ABI mismatch (the cell exits with code 103).

use crate::hvc::{abi_mismatch, call, infallible_call, HvcError};
use abi::hvc::{CELL_CONTROL, CELL_STATUS, FAULT_WAIT, NULL};

pub use abi::hvc::{CellStatus, ControlOperation, FaultKind};

/// Does nothing in the kernel: the cheapest round trip, for measuring hypercall cost.
pub fn null() {
    infallible_call(NULL, [0; 5]);
}

/// Stops, starts or restarts cell `cell` (see [`ControlOperation`]).
///
/// Errors: [`HvcError::Denied`] without the control right over `cell`,
/// [`HvcError::InvalidArgument`] for a cell index the plan does not have or the calling cell
/// itself.
pub fn control(cell: u16, operation: ControlOperation) -> Result<(), HvcError> {
    call(CELL_CONTROL, [u64::from(cell), operation as u64, 0, 0, 0]).map(|_| ())
}

/// A cell's state and counters, as [`status`] reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// Running, restarting or stopped.
    pub state: CellStatus,
    /// How many times the cell has been restarted.
    pub restarts: u64,
    /// How many faults the cell has taken.
    pub faults: u64,
    /// How many capability operations the kernel refused the cell (an empty slot, a slot
    /// beyond its table, the wrong kind or a missing right).
    pub denials: u64,
}

/// Reads the state of cell `cell`: always allowed for the calling cell itself, otherwise
/// needs the control right over `cell`.
///
/// Errors: [`HvcError::Denied`] without that right, [`HvcError::InvalidArgument`] for a cell
/// index the plan does not have.
pub fn status(cell: u16) -> Result<Status, HvcError> {
    let [state, restarts, faults, denials] = call(CELL_STATUS, [u64::from(cell), 0, 0, 0, 0])?;
    Ok(Status {
        state: CellStatus::from_code(state).unwrap_or_else(|| abi_mismatch()),
        restarts,
        faults,
        denials,
    })
}

/// A fault of a supervised cell, as [`fault_wait`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultReport {
    /// Index of the cell that faulted.
    pub cell: u16,
    /// What went wrong.
    pub kind: FaultKind,
    /// The faulting IPA for aborts, otherwise the faulting instruction's address.
    pub address: u64,
    /// Address of the faulting instruction.
    pub pc: u64,
}

/// Blocks until a cell this cell supervises faults, and reports the fault. The faulted cell
/// is stopped (or being restarted by its own policy) when this returns; use [`status`] and
/// [`control`] to decide what happens next.
///
/// Errors: none from the current kernel, which lets a cell that supervises nothing wait
/// forever; a kernel may answer [`HvcError::Denied`] to it.
pub fn fault_wait() -> Result<FaultReport, HvcError> {
    let [cell, kind, address, pc] = call(FAULT_WAIT, [0; 5])?;
    Ok(FaultReport {
        cell: u16::try_from(cell).unwrap_or_else(|_| abi_mismatch()),
        kind: FaultKind::from_code(kind).unwrap_or_else(|| abi_mismatch()),
        address,
        pc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::with;
    use crate::hvc::tests::exit_code_of;

    #[test]
    fn null_makes_one_call_without_arguments() {
        null();
        with(|kernel| assert_eq!(kernel.calls, [(NULL, [0; 5])]));
        with(|kernel| kernel.next_status = Some(HvcError::Denied.code()));
        assert_eq!(exit_code_of(null), 103);
    }

    #[test]
    fn control_passes_the_cell_and_operation_and_returns_errors() {
        assert_eq!(control(3, ControlOperation::Restart), Ok(()));
        with(|kernel| kernel.next_status = Some(HvcError::Denied.code()));
        assert_eq!(control(4, ControlOperation::Stop), Err(HvcError::Denied));
        with(|kernel| {
            assert_eq!(
                kernel.calls,
                [
                    (CELL_CONTROL, [3, 2, 0, 0, 0]),
                    (CELL_CONTROL, [4, 0, 0, 0, 0])
                ]
            );
        });
    }

    #[test]
    fn status_decodes_state_restarts_faults_and_denials() {
        with(|kernel| kernel.status = [2, 5, 7, 9]);
        assert_eq!(
            status(1),
            Ok(Status {
                state: CellStatus::Stopped,
                restarts: 5,
                faults: 7,
                denials: 9
            })
        );
        with(|kernel| {
            assert_eq!(kernel.calls, [(CELL_STATUS, [1, 0, 0, 0, 0])]);
            kernel.next_status = Some(HvcError::InvalidArgument.code());
        });
        assert_eq!(status(9), Err(HvcError::InvalidArgument));
        with(|kernel| kernel.status = [3, 0, 0, 0]);
        assert_eq!(
            exit_code_of(|| {
                let _ = status(1);
            }),
            103
        );
    }

    #[test]
    fn fault_wait_decodes_x1_to_x4() {
        with(|kernel| kernel.fault = [2, 1, 0x4020_0000, 0x4000_0123]);
        assert_eq!(
            fault_wait(),
            Ok(FaultReport {
                cell: 2,
                kind: FaultKind::DataAbort,
                address: 0x4020_0000,
                pc: 0x4000_0123
            })
        );
        with(|kernel| kernel.next_status = Some(HvcError::Denied.code()));
        assert_eq!(fault_wait(), Err(HvcError::Denied));
        for bad in [[1 << 16, 1, 0, 0], [1, 0, 0, 0], [1, 6, 0, 0]] {
            with(|kernel| kernel.fault = bad);
            assert_eq!(
                exit_code_of(|| {
                    let _ = fault_wait();
                }),
                103
            );
        }
    }
}
