//! What happens when a cell leaves EL1: hypercalls, trapped instructions, stage-2 faults
//! and interrupts. Called from the exception vectors with the vCPU's saved [`Frame`].
//!
//! Invariants: nothing a cell does makes the kernel panic. Every value read from the frame
//! is decoded by `kcore` (hypercall numbers, lengths, addresses) and every memory access on
//! a cell's behalf goes through `cellmem` translation. A fault is the faulting cell's
//! problem: it is reported and the cell's policy applied; other cells never see it.

use crate::arch::exception::{Frame, VectorKind};
use crate::arch::{gic, sysreg, timer};
use crate::cellmem::CellBytes;
use crate::system::{self, CellState};
use crate::vcpu::{self, CoreState, SGI_HALT, SGI_RESCHEDULE};
use abi::hvc::{HvcError, CONSOLE_WRITE_MAX, STATUS_OK};
use core::sync::atomic::{AtomicU32, Ordering};
use kcore::cell::{fault_outcome, CellFault, FaultOutcome};
use kcore::esr::Exit;
use kcore::hypercall::Call;

/// PSCI's NOT_SUPPORTED, returned to a native cell that issues an SMC.
const PSCI_NOT_SUPPORTED: u64 = -1i64 as u64;

/// Interrupts that arrived with no owner (counted, then left disabled).
static UNOWNED_INTERRUPTS: AtomicU32 = AtomicU32::new(0);

/// This core's index, from TPIDR_EL2 (set at entry).
pub fn this_core() -> usize {
    sysreg::tpidr_el2::read() as usize
}

/// A synchronous exception from a cell.
pub extern "C" fn lower_sync(frame: &mut Frame) {
    let mut core = vcpu::core(this_core()).lock();
    let esr = sysreg::esr_el2::read();
    let reschedule = match kcore::esr::decode(esr) {
        Exit::Hvc { .. } => hypercall(&mut core, frame),
        Exit::Wfx { .. } => {
            // Until interrupts are delivered to cells, waiting means giving way.
            frame.elr = frame.elr.wrapping_add(4);
            yield_loaded(&mut core);
            true
        }
        Exit::Smc { .. } => {
            frame.x[0] = PSCI_NOT_SUPPORTED;
            frame.elr = frame.elr.wrapping_add(4);
            false
        }
        Exit::DataAbort(abort) => {
            let fault = CellFault::Stage2Abort {
                ipa: faulting_ipa(),
                pc: frame.elr,
                write: abort.write,
                instruction_fetch: false,
                status: kcore::esr::describe_fault_status(abort.fault_status),
            };
            cell_fault(&mut core, fault)
        }
        Exit::InstructionAbort { fault_status } => {
            let fault = CellFault::Stage2Abort {
                ipa: faulting_ipa(),
                pc: frame.elr,
                write: false,
                instruction_fetch: true,
                status: kcore::esr::describe_fault_status(fault_status),
            };
            cell_fault(&mut core, fault)
        }
        Exit::SystemRegister { .. } | Exit::FloatingPoint | Exit::Other { .. } => {
            let fault = CellFault::Undefined {
                exception_class: kcore::esr::exception_class(esr),
                pc: frame.elr,
            };
            cell_fault(&mut core, fault)
        }
    };
    if reschedule {
        vcpu::schedule(&mut core, frame);
    }
}

/// The IPA of the current stage-2 abort: the page from HPFAR_EL2, the offset from FAR_EL2.
fn faulting_ipa() -> u64 {
    let page = (sysreg::hpfar_el2::read() >> 4) << 12;
    page | (sysreg::far_el2::read() & 0xfff)
}

/// Runs a hypercall; returns whether the core must choose again.
fn hypercall(core: &mut CoreState, frame: &mut Frame) -> bool {
    let registers = [
        frame.x[0], frame.x[1], frame.x[2], frame.x[3], frame.x[4], frame.x[5],
    ];
    let result = kcore::hypercall::decode(&registers).and_then(|call| execute(core, frame, call));
    match result {
        Ok(reschedule) => reschedule,
        Err(error) => {
            frame.x[0] = error.code();
            false
        }
    }
}

fn execute(core: &mut CoreState, frame: &mut Frame, call: Call) -> Result<bool, HvcError> {
    let system = system::system().ok_or(HvcError::Denied)?;
    let vcpu = core.loaded().ok_or(HvcError::Denied)?;
    let (cell_index, vcpu_index) = (vcpu.cell, vcpu.index);
    let info = system.cell(cell_index).ok_or(HvcError::Denied)?;
    match call {
        Call::ConsoleWrite { ipa, len } => {
            let bytes = CellBytes::readable(&system.plan, &info.record, ipa, len)?;
            let mut buffer = [0u8; CONSOLE_WRITE_MAX as usize];
            let text = bytes.copy_to(&mut buffer);
            let name = info.record.name();
            system::runtime(cell_index)
                .console
                .lock()
                .push(text, &mut |line| crate::console::cell_line(name, line));
            frame.x[0] = STATUS_OK;
            frame.x[1] = len;
            Ok(false)
        }
        Call::Yield => {
            frame.x[0] = STATUS_OK;
            yield_loaded(core);
            Ok(true)
        }
        Call::Exit { code } => {
            let runtime = system::runtime(cell_index);
            runtime
                .console
                .lock()
                .flush(&mut |line| crate::console::cell_line(info.record.name(), line));
            if runtime.leave_running(CellState::Stopped) {
                crate::info!(
                    "cell {}: exited with code {code}; stopped",
                    info.record.name()
                );
                vcpu::notify_other_cores();
            }
            Ok(true)
        }
        Call::VcpuInfo => {
            frame.x[0] = STATUS_OK;
            frame.x[1] = cell_index as u64;
            frame.x[2] = vcpu_index as u64;
            frame.x[3] = core.index as u64;
            Ok(false)
        }
        Call::Time => {
            frame.x[0] = STATUS_OK;
            frame.x[1] = timer::now();
            frame.x[2] = timer::frequency();
            Ok(false)
        }
    }
}

fn yield_loaded(core: &mut CoreState) {
    if let Some(id) = core.loaded_id() {
        core.scheduler.yield_now(id, timer::now());
    }
}

/// Reports a fault of the loaded vCPU's cell and applies the cell's policy. Returns true
/// (the core must choose again: the vCPU is gone or reset).
fn cell_fault(core: &mut CoreState, fault: CellFault) -> bool {
    let Some(system) = system::system() else {
        return true;
    };
    let Some(vcpu) = core.loaded() else {
        return true;
    };
    let (cell_index, vcpu_index) = (vcpu.cell, vcpu.index);
    let Some(info) = system.cell(cell_index) else {
        return true;
    };
    let name = info.record.name();
    let runtime = system::runtime(cell_index);
    runtime
        .console
        .lock()
        .flush(&mut |line| crate::console::cell_line(name, line));
    crate::warning!("cell {name}: vCPU {vcpu_index} faulted: {fault}");
    let restarts = runtime.restarts.load(Ordering::Acquire);
    match fault_outcome(&info.record, restarts) {
        FaultOutcome::Restart { attempt, limit } => {
            if runtime.leave_running(CellState::Restarting) {
                runtime.restarts.store(attempt, Ordering::Release);
                crate::info!("cell {name}: restarting (restart {attempt} of {limit})");
            }
        }
        FaultOutcome::Stop { restarts } => {
            if runtime.leave_running(CellState::Stopped) {
                if restarts > 0 {
                    crate::info!("cell {name}: stopped after {restarts} restarts (limit reached)");
                } else {
                    crate::info!("cell {name}: stopped (fault policy: stop)");
                }
            }
        }
    }
    vcpu::notify_other_cores();
    true
}

/// An IRQ while a cell ran.
pub extern "C" fn lower_irq(frame: &mut Frame) {
    let mut core = vcpu::core(this_core()).lock();
    handle_pending_interrupts(&mut core);
    vcpu::schedule(&mut core, frame);
}

/// Acknowledges and handles every pending interrupt of this core.
pub fn handle_pending_interrupts(core: &mut CoreState) {
    let timer_intid = crate::hypervisor_timer_intid();
    loop {
        let intid = gic::acknowledge();
        if intid == gic::SPURIOUS {
            return;
        }
        if intid == timer_intid {
            // The scheduler's deadline passed; the caller chooses again and re-arms.
            timer::set_deadline(None);
        } else if intid == SGI_HALT {
            gic::end_of_interrupt(intid);
            crate::halt_this_core();
        } else if intid == SGI_RESCHEDULE {
            // Nothing to do here: the caller refreshes this core's vCPUs.
        } else {
            let count = UNOWNED_INTERRUPTS.fetch_add(1, Ordering::Relaxed) + 1;
            crate::warning!(
                "core {}: interrupt {intid} has no owner (unowned so far: {count})",
                core.index
            );
        }
        gic::end_of_interrupt(intid);
    }
}

/// An exception the kernel never expects: a kernel bug at EL2, or a cell exception that
/// cannot happen (AArch32, FIQ, SError).
pub extern "C" fn unexpected(frame: &mut Frame, kind: u64) {
    let kind = VectorKind::from_raw(kind);
    match kind {
        VectorKind::LowerFiq | VectorKind::LowerSError | VectorKind::LowerAarch32 => {
            let mut core = vcpu::core(this_core()).lock();
            cell_fault(&mut core, CellFault::Asynchronous { pc: frame.elr });
            vcpu::schedule(&mut core, frame);
        }
        _ => panic!(
            "unexpected exception at EL2 ({kind:?}): ESR {:#x}, ELR {:#x}, FAR {:#x}",
            sysreg::esr_el2::read(),
            frame.elr,
            sysreg::far_el2::read()
        ),
    }
}
