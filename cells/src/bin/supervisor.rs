//! `supervisor`: waits for faults of the cells it supervises and restarts each at most twice.
//!
//! For every fault report it prints
//! `supervisor: cell <c> faulted: <kind> at <address> (pc <pc>)` (addresses in hexadecimal,
//! kinds as in [`kind_name`]); then, if the cell's status shows fewer than
//! [`RESTART_LIMIT`] restarts, restarts it and prints `supervisor: restarted cell <c>`, else
//! prints `supervisor: leaving cell <c> stopped`. If the kernel refuses a call it prints
//! `supervisor: <call> refused: <error>` and goes on (or, for `fault_wait`, exits with
//! [`EXIT_CODE_REFUSED`]: a supervisor without rights has nothing to do).
#![no_std]
#![no_main]

use sdk::cell::{self, ControlOperation, FaultKind};

/// A cell is restarted while its restart count is below this.
const RESTART_LIMIT: u64 = 2;

/// Exit code when the kernel refuses `fault_wait`.
const EXIT_CODE_REFUSED: u64 = 1;

/// How a fault kind is printed.
fn kind_name(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::DataAbort => "data abort",
        FaultKind::InstructionAbort => "instruction abort",
        FaultKind::Undefined => "undefined instruction",
        FaultKind::IllegalHypercall => "illegal hypercall",
        FaultKind::Asynchronous => "asynchronous exception",
    }
}

sdk::entry!(main);

fn main() -> ! {
    sdk::println!("supervisor: waiting for faults");
    loop {
        let report = match cell::fault_wait() {
            Ok(report) => report,
            Err(error) => {
                sdk::println!("supervisor: fault_wait refused: {error:?}");
                sdk::hvc::exit(EXIT_CODE_REFUSED);
            }
        };
        let faulted = report.cell;
        sdk::println!(
            "supervisor: cell {faulted} faulted: {} at {:#x} (pc {:#x})",
            kind_name(report.kind),
            report.address,
            report.pc
        );
        match cell::status(faulted) {
            Ok(status) if status.restarts < RESTART_LIMIT => {
                match cell::control(faulted, ControlOperation::Restart) {
                    Ok(()) => sdk::println!("supervisor: restarted cell {faulted}"),
                    Err(error) => {
                        sdk::println!("supervisor: restart of cell {faulted} refused: {error:?}")
                    }
                }
            }
            Ok(_) => sdk::println!("supervisor: leaving cell {faulted} stopped"),
            Err(error) => {
                sdk::println!("supervisor: status of cell {faulted} refused: {error:?}")
            }
        }
    }
}
