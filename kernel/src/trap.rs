//! What happens when a cell leaves EL1: hypercalls, trapped instructions, stage-2 faults
//! and interrupts. Called from the exception vectors with the vCPU's saved [`Frame`].
//!
//! Invariants: nothing a cell does makes the kernel panic. Every value read from the frame
//! is decoded by `kcore` (hypercall numbers, lengths, addresses, cell indices) and every
//! memory access on a cell's behalf goes through `cellmem` translation. A fault is the
//! faulting cell's problem: it is reported and the cell's policy applied; other cells never
//! see it (a supervisor sees a report, if the description says so).

use crate::arch::exception::{Frame, EL2_EXCEPTION_KINDS};
use crate::arch::{gic, sysreg, timer};
use crate::cellmem::CellBytes;
use crate::ipc::{self, Caller};
use crate::system::{self, CellState, System};
use crate::vcpu::{
    self, CoreState, EntryState, SGI_HALT, SGI_POSTED, SGI_RESCHEDULE, VIRTUAL_TIMER_INTID,
};
use abi::hvc::{CellStatus, ControlOperation, FaultKind, HvcError, CONSOLE_WRITE_MAX, STATUS_OK};
use abi::hvc::{NOTIFICATION_SIGNAL as SIGNAL_RIGHT, NOTIFICATION_WAIT as WAIT_RIGHT};
use abi::plan::{CellRecord, FaultPolicy};
use core::sync::atomic::{AtomicU32, Ordering};
use kcore::cell::{fault_outcome, CellFault, FaultOutcome};
use kcore::esr::Exit;
use kcore::fault_queue::FaultReport;
use kcore::hypercall::Call;

/// PSCI's NOT_SUPPORTED, returned to a native cell that issues an SMC.
const PSCI_NOT_SUPPORTED: u64 = -1i64 as u64;

/// Interrupts that arrived with no owner (counted, then disabled).
static UNOWNED_INTERRUPTS: AtomicU32 = AtomicU32::new(0);

/// This core's index, from TPIDR_EL2 (set at entry).
pub fn this_core() -> usize {
    sysreg::tpidr_el2::read() as usize
}

/// A synchronous exception from a cell with syndrome `esr`, whose registers the vector
/// saved in `frame` (the loaded vCPU's, in its record), on the core whose state is `state`;
/// returns the frame to resume from. An EL0 cell's CALL, REPLY_WAIT, SIGNAL, WAIT and YIELD
/// go from the vector straight to their entries ([`call_entry`] and the others below); an
/// EL1 cell's reach them from here.
pub extern "C" fn lower_sync(state: EntryState, frame: *mut Frame, esr: u64) -> *const Frame {
    // Native cells run with HCR_EL2.DC set, guests without: one register read tells whose
    // ABI this HVC follows before any kernel state is touched. An SVC reaches EL2 only from
    // a native cell at EL0 (HCR_EL2.TGE), whose hypercall instruction it is.
    let class = esr >> 26;
    if (class == kcore::esr::EC_HVC64 as u64 || class == kcore::esr::EC_SVC64 as u64)
        && esr & 0xffff == 0
        && sysreg::hcr_el2::read() & vcpu::HCR_DC != 0
    {
        // SAFETY: the vector just filled this loaded vCPU's frame, which only this core
        // touches; the entries below take the core's state only after its last use.
        let registers = unsafe { &mut *frame };
        if stateless_hypercall(registers) {
            return frame;
        }
        match registers.x[0] {
            abi::hvc::CALL => return call_entry(state),
            abi::hvc::REPLY_WAIT => return reply_wait_entry(state),
            abi::hvc::SIGNAL => return signal_entry(state, registers.x[1], registers.x[2]),
            abi::hvc::WAIT => return wait_entry(state, registers.x[1]),
            abi::hvc::YIELD => {
                registers.x[0] = STATUS_OK;
                return yield_entry(state);
            }
            _ => {}
        }
    }
    if let Some(register) = kcore::esr::sgi1r_write_register(esr) {
        return sgi_entry(state, register as usize, esr);
    }
    general_exit(state.take(), esr)
}

/// A guest's trapped ICC_SGI1R_EL1 write (an IPI to its other vCPUs), without the general
/// syndrome decode. Any other cell's is an undefined instruction, for the general path.
#[inline(never)]
fn sgi_entry(state: EntryState, register: usize, esr: u64) -> *const Frame {
    let core = state.take();
    let Some((cell, index)) = core.loaded_guest() else {
        return general_exit(core, esr);
    };
    let frame = core.regs();
    // Register 31 is XZR here.
    let value = frame.x.get(register).copied().unwrap_or(0);
    frame.elr = frame.elr.wrapping_add(4);
    // Raising for a vCPU of this core does not switch: the loaded vCPU resumes.
    let resume: *const Frame = frame;
    crate::guest::send_sgi(core, cell, index, value);
    resume
}

/// The IPC fast path's entries: a native cell's CALL and REPLY_WAIT, handled without
/// decoding the syndrome or the other hypercalls (and without their stack frame). The
/// vector calls them for an EL0 cell's `svc`, [`lower_sync`] for an EL1 cell's `hvc`.
#[inline(never)]
pub extern "C" fn call_entry(state: EntryState) -> *const Frame {
    ipc_entry(state, abi::hvc::CALL)
}

/// See [`call_entry`].
#[inline(never)]
pub extern "C" fn reply_wait_entry(state: EntryState) -> *const Frame {
    ipc_entry(state, abi::hvc::REPLY_WAIT)
}

#[inline(always)]
fn ipc_entry(state: EntryState, number: u64) -> *const Frame {
    let core = state.take();
    match ipc::fast_path(core, number) {
        Some(resume) => resume,
        None => ipc_general(core),
    }
}

/// The general CALL or REPLY_WAIT, out of line: one copy for both entries.
#[inline(never)]
fn ipc_general(core: &mut CoreState) -> *const Frame {
    let result = ipc_hypercall(core);
    finish(core, result)
}

/// The end of a hypercall entry: the error code if `result` is one, a choice if it asks
/// for one (`Ok(true)`), then the frame to resume from.
#[inline(always)]
fn finish(core: &mut CoreState, result: Result<bool, HvcError>) -> *const Frame {
    let reschedule = result.unwrap_or_else(|error| {
        core.regs().x[0] = error.code();
        false
    });
    if reschedule {
        vcpu::schedule(core);
    }
    core.resume_frame()
}

/// A native cell's SIGNAL of notification capability `slot` with `bits`, as [`call_entry`]:
/// the notification path, without the general path's syndrome and call decoding.
#[inline(never)]
pub extern "C" fn signal_entry(state: EntryState, slot: u64, bits: u64) -> *const Frame {
    let core = state.take();
    let signalled = kcore::hypercall::signal_bits(bits).and_then(|bits| {
        let (_, index) = ipc::loaded_notification(core, slot, SIGNAL_RIGHT)?;
        Ok(ipc::signal_notification(core, index, bits))
    });
    finish(core, signalled)
}

/// A native cell's WAIT on notification capability `slot`, as [`signal_entry`].
#[inline(never)]
pub extern "C" fn wait_entry(state: EntryState, slot: u64) -> *const Frame {
    let core = state.take();
    let waited = ipc::loaded_notification(core, slot, WAIT_RIGHT)
        .and_then(|(me, index)| ipc::wait_notification(core, me, index, true));
    finish(core, waited)
}

/// A native cell's YIELD (the cell switch's path), as [`call_entry`]; its result is set.
#[inline(never)]
pub extern "C" fn yield_entry(state: EntryState) -> *const Frame {
    let core = state.take();
    if !core.yield_hand_off() {
        yield_loaded(core);
        vcpu::schedule(core);
    }
    core.resume_frame()
}

/// Every other synchronous exception from a cell, with its syndrome `esr`.
#[inline(never)]
fn general_exit(core: &mut CoreState, esr: u64) -> *const Frame {
    let reschedule = match kcore::esr::decode(esr) {
        Exit::Hvc { imm: 0 } => hypercall(core),
        Exit::Hvc { .. } => {
            let frame = core.regs();
            let fault = CellFault::IllegalHypercall {
                number: frame.x[0],
                pc: frame.elr.wrapping_sub(4),
            };
            cell_fault(core, fault)
        }
        Exit::Wfx { wfe } => {
            core.complete_access(None);
            if wfe {
                // WFE waits for an event: giving way is a correct (if eager) implementation.
                yield_loaded(core);
                true
            } else {
                core.wait_for_interrupt()
            }
        }
        Exit::Smc { .. } => {
            core.complete_access(Some((0, PSCI_NOT_SUPPORTED)));
            false
        }
        Exit::DataAbort(abort) => guest_device_access(core, &abort).unwrap_or_else(|| {
            let fault = abort_fault(core, abort.fault_status, abort.write, false);
            cell_fault(core, fault)
        }),
        Exit::SystemRegister {
            read,
            op0: 3,
            op1: 0,
            crn,
            crm,
            op2,
            register,
        } if guest_interface_register(core, read, (crn, crm, op2), register) => false,
        Exit::SystemRegister {
            read,
            op0: 2,
            op1,
            crn,
            crm,
            op2,
            register,
        } => {
            debug_register(core, read, (op1, crn, crm, op2), register);
            false
        }
        Exit::InstructionAbort { fault_status } => {
            let fault = abort_fault(core, fault_status, false, true);
            cell_fault(core, fault)
        }
        Exit::SystemRegister { .. } | Exit::FloatingPoint | Exit::Other { .. } => {
            let fault = CellFault::Undefined {
                exception_class: kcore::esr::exception_class(esr),
                pc: core.regs().elr,
            };
            cell_fault(core, fault)
        }
    };
    if reschedule {
        vcpu::schedule(core);
    }
    core.resume_frame()
}

/// Answers the hypercalls that need no kernel state (no cell, no core state): the fast path
/// of the null call and of reading the time. Returns false for every other call.
#[inline(always)]
fn stateless_hypercall(frame: &mut Frame) -> bool {
    match frame.x[0] {
        abi::hvc::NULL => {
            frame.x[0] = STATUS_OK;
            true
        }
        abi::hvc::TIME => {
            frame.x[0] = STATUS_OK;
            frame.x[1] = timer::now();
            frame.x[2] = timer::frequency();
            true
        }
        _ => false,
    }
}

/// The address of the abort just taken with fault status `fsc` (`kcore::esr::abort_address`).
fn abort_address(fsc: u8) -> u64 {
    let (far, hpfar) = (sysreg::far_el2::read(), sysreg::hpfar_el2::read());
    kcore::esr::abort_address(fsc, far, hpfar)
}

/// The fault of the abort just taken with fault status `fsc`, which no emulated device
/// explains.
fn abort_fault(core: &mut CoreState, fsc: u8, write: bool, instruction_fetch: bool) -> CellFault {
    CellFault::Stage2Abort {
        ipa: abort_address(fsc),
        stage2: kcore::esr::is_stage2_fault(fsc),
        pc: core.regs().elr,
        write,
        instruction_fetch,
        status: kcore::esr::describe_fault_status(fsc),
    }
}

/// A guest's trapped access to an emulated device: `Some(reschedule)` when emulated.
fn guest_device_access(core: &mut CoreState, abort: &kcore::esr::DataAbort) -> Option<bool> {
    let vcpu = core.loaded().filter(|vcpu| vcpu.guest)?;
    let cell = vcpu.cell;
    let system = system::system()?;
    let name = system.cell(cell)?.record.name();
    let ipa = abort_address(abort.fault_status);
    crate::guest::device_access(core, cell, name, abort, ipa)
}

/// A guest's trapped access to a GIC CPU interface register (ICH_HCR_EL2.TC is set for
/// guests): SGI generation goes through the cell's distributor; the priority mask, the
/// control register and the running priority are emulated against the vCPU's virtual
/// interface (ICH_VMCR_EL2, ICH_AP1R0_EL2). Returns false for anything else (a fault).
fn guest_interface_register(
    core: &mut CoreState,
    read: bool,
    (crn, crm, op2): (u8, u8, u8),
    register: u8,
) -> bool {
    use crate::arch::vgic;
    const VMCR_PRIORITY_MASK_SHIFT: u64 = 24;
    const VMCR_EOI_MODE: u64 = 1 << 9;
    const VMCR_COMMON_BINARY_POINT: u64 = 1 << 4;
    if core.loaded_guest().is_none() {
        return false;
    }
    let register = register as usize;
    let value = core.loaded_register(register);
    let result = match (crn, crm, op2, read) {
        // ICC_SGI1R_EL1 writes take `sgi_entry`. ICC_ASGI1R_EL1 and ICC_SGI0R_EL1 name
        // groups guests are not offered: those writes have no effect.
        (12, 11, 6 | 7, false) => None,
        // ICC_PMR_EL1.
        (4, 6, 0, false) => {
            let vmcr = vgic::control() & !(0xff << VMCR_PRIORITY_MASK_SHIFT);
            vgic::set_control(vmcr | (value & 0xff) << VMCR_PRIORITY_MASK_SHIFT);
            None
        }
        (4, 6, 0, true) => Some((vgic::control() >> VMCR_PRIORITY_MASK_SHIFT) & 0xff),
        // ICC_CTLR_EL1: EOImode (bit 1) and CBPR (bit 0) live in the VMCR.
        (12, 12, 4, false) => {
            let mut vmcr = vgic::control() & !(VMCR_EOI_MODE | VMCR_COMMON_BINARY_POINT);
            if value & 2 != 0 {
                vmcr |= VMCR_EOI_MODE;
            }
            if value & 1 != 0 {
                vmcr |= VMCR_COMMON_BINARY_POINT;
            }
            vgic::set_control(vmcr);
            None
        }
        (12, 12, 4, true) => {
            let vmcr = vgic::control();
            let eoi_mode = u64::from(vmcr & VMCR_EOI_MODE != 0) << 1;
            let common_binary_point = u64::from(vmcr & VMCR_COMMON_BINARY_POINT != 0);
            Some(vgic::control_id_fields() | eoi_mode | common_binary_point)
        }
        // ICC_RPR_EL1: the highest active priority (5 priority bits: bit n is priority n << 3).
        (12, 11, 3, true) => {
            let active = vgic::active_priorities();
            Some(if active == 0 {
                0xff
            } else {
                u64::from(active.trailing_zeros()) << 3
            })
        }
        _ => return false,
    };
    core.complete_access(result.map(|result| (register, result)));
    true
}

/// A cell's trapped access to a debug register (op0 = 2, `MDCR_EL2.TDA`, `TDOSA`, `TDRA`),
/// as `kcore::debug` decides: the vCPU's virtual MDSCR_EL1, or nothing.
fn debug_register(core: &mut CoreState, read: bool, encoding: (u8, u8, u8, u8), register: u8) {
    let register = register as usize;
    let value = core.loaded_register(register);
    let Some(monitor_control) = core.loaded_monitor_control() else {
        return;
    };
    let result = kcore::debug::trapped_access(read, encoding, value, monitor_control);
    core.complete_access(result.map(|result| (register, result)));
}

/// A guest powers its cell off (PSCI SYSTEM_OFF) or resets it (SYSTEM_RESET). Returns true
/// (the core must choose again).
pub fn guest_power(cell: usize, reset: bool) -> bool {
    let Some(system) = system::system() else {
        return true;
    };
    let name = system.cell_name(cell);
    let runtime = system::runtime(cell);
    runtime.flush_console(name);
    if reset {
        if runtime.leave_running(CellState::Restarting) {
            let restarts = runtime.restarts.load(Ordering::Acquire).saturating_add(1);
            runtime.restarts.store(restarts, Ordering::Release);
            crate::info!("cell {name}: reset by its guest (PSCI SYSTEM_RESET); restarting");
            left_running(system, cell);
        }
    } else if runtime.leave_running(CellState::Stopped) {
        crate::info!("cell {name}: powered off by its guest (PSCI SYSTEM_OFF); stopped");
        left_running(system, cell);
    }
    true
}

/// Runs a hypercall; returns whether the core must choose again.
fn hypercall(core: &mut CoreState) -> bool {
    if let Some((cell, index)) = core.loaded_guest() {
        return crate::guest::hypercall(core, cell, index);
    }
    let frame = core.regs();
    let registers: [u64; 6] = core::array::from_fn(|index| frame.x[index]);
    let result = kcore::hypercall::decode(&registers).and_then(|call| execute(core, call));
    match result {
        Ok(reschedule) => reschedule,
        Err(error) => {
            core.regs().x[0] = error.code();
            false
        }
    }
}

/// CALL or REPLY_WAIT of a native cell (x0), with the capability slot in x1 and the
/// message in x2..x5.
#[inline(always)]
fn ipc_hypercall(core: &mut CoreState) -> Result<bool, HvcError> {
    let (cell, vcpu, record) = caller(core)?;
    let caller = Caller { cell, vcpu, record };
    let frame = core.regs();
    let slot = frame.x[1];
    let message = [frame.x[2], frame.x[3], frame.x[4], frame.x[5]];
    let number = core::mem::replace(&mut frame.x[0], STATUS_OK);
    if number == abi::hvc::CALL {
        ipc::call(core, &caller, slot, message)
    } else {
        ipc::reply_wait(core, &caller, slot, message)
    }
}

/// The calling cell's index, vCPU index and record (borrowed: hypercalls never copy it).
fn caller(core: &CoreState) -> Result<(usize, u8, &'static CellRecord), HvcError> {
    let (me, record) = core.loaded_party().ok_or(HvcError::Denied)?;
    Ok((me.cell as usize, me.vcpu, record))
}

/// Checks that `caller` may control cell `target` and returns the target's index.
fn controlled(
    system: &System,
    caller: usize,
    record: &CellRecord,
    target: u64,
) -> Result<usize, HvcError> {
    let target = usize::try_from(target).map_err(|_| HvcError::InvalidArgument)?;
    if target >= system.plan.cell_count() || target == caller {
        return Err(HvcError::InvalidArgument);
    }
    if !record.may_control(target) {
        system::runtime(caller).count_denial();
        return Err(HvcError::Denied);
    }
    Ok(target)
}

fn execute(core: &mut CoreState, call: Call) -> Result<bool, HvcError> {
    let system = system::system().ok_or(HvcError::Denied)?;
    let (cell, vcpu_index, record) = caller(core)?;
    let ipc_caller = Caller {
        cell,
        vcpu: vcpu_index,
        record,
    };
    let runtime = system::runtime(cell);
    let core_index = core.index;
    let frame = core.regs();
    frame.x[0] = STATUS_OK;
    match call {
        Call::Null => Ok(false),
        Call::ConsoleWrite { ipa, len } => {
            let bytes = CellBytes::readable(&system.plan, record, ipa, len)?;
            let mut buffer = [0u8; CONSOLE_WRITE_MAX as usize];
            let text = bytes.copy_to(&mut buffer);
            let name = record.name();
            runtime
                .console
                .lock()
                .push(text, &mut |line| crate::console::cell_line(name, line));
            frame.x[1] = len;
            Ok(false)
        }
        Call::Yield => {
            yield_loaded(core);
            Ok(true)
        }
        Call::Exit { code } => {
            runtime.flush_console(record.name());
            if runtime.leave_running(CellState::Stopped) {
                crate::info!("cell {}: exited with code {code}; stopped", record.name());
                left_running(system, cell);
            }
            Ok(true)
        }
        Call::VcpuInfo => {
            frame.x[1] = cell as u64;
            frame.x[2] = vcpu_index as u64;
            frame.x[3] = core_index as u64;
            frame.x[4] = runtime.restarts.load(Ordering::Acquire) as u64;
            Ok(false)
        }
        Call::Time => {
            frame.x[1] = timer::now();
            frame.x[2] = timer::frequency();
            Ok(false)
        }
        Call::CellControl {
            cell: target,
            operation,
        } => {
            let target = controlled(system, cell, record, target)?;
            let operation =
                ControlOperation::from_code(operation).ok_or(HvcError::InvalidArgument)?;
            control(system, record.name(), target, operation)?;
            // This core may hold vCPUs of the target: bring them up to date now.
            Ok(true)
        }
        Call::CellStatus { cell: target } => {
            let target = if target == cell as u64 {
                cell
            } else {
                controlled(system, cell, record, target)?
            };
            let target_runtime = system::runtime(target);
            frame.x[1] = match target_runtime.state() {
                CellState::Running => CellStatus::Running,
                CellState::Restarting => CellStatus::Restarting,
                CellState::Stopped => CellStatus::Stopped,
            } as u64;
            frame.x[2] = target_runtime.restarts.load(Ordering::Acquire) as u64;
            frame.x[3] = target_runtime.faults.load(Ordering::Acquire) as u64;
            frame.x[4] = target_runtime.denials.load(Ordering::Acquire) as u64;
            Ok(false)
        }
        Call::FaultWait => Ok(core.wait_for_fault_report()),
        Call::Call { slot, message } => ipc::call(core, &ipc_caller, slot, message),
        Call::ReplyWait { slot, reply } => ipc::reply_wait(core, &ipc_caller, slot, reply),
        Call::Signal { slot, bits } => ipc::loaded_notification(core, slot, SIGNAL_RIGHT)
            .map(|(_, index)| ipc::signal_notification(core, index, bits)),
        Call::Wait { slot } | Call::Poll { slot } => {
            let (me, index) = ipc::loaded_notification(core, slot, WAIT_RIGHT)?;
            ipc::wait_notification(core, me, index, matches!(call, Call::Wait { .. }))
        }
        Call::CapInfo { slot } => {
            ipc::capability_info(core.regs(), system, &ipc_caller, slot).map(|()| false)
        }
    }
}

/// Stops, starts or restarts cell `target` on behalf of `by`.
fn control(
    system: &System,
    by: &str,
    target: usize,
    operation: ControlOperation,
) -> Result<(), HvcError> {
    let runtime = system::runtime(target);
    let name = system.cell_name(target);
    let changed = match operation {
        ControlOperation::Stop => runtime.leave_running(CellState::Stopped),
        ControlOperation::Start => runtime.start_stopped(),
        ControlOperation::Restart => {
            let changed = runtime.leave_running(CellState::Restarting) || runtime.start_stopped();
            if changed {
                let restarts = runtime.restarts.load(Ordering::Acquire).saturating_add(1);
                runtime.restarts.store(restarts, Ordering::Release);
            }
            changed
        }
    };
    if !changed {
        return Err(HvcError::InvalidArgument);
    }
    let done = match operation {
        ControlOperation::Stop => "stopped",
        ControlOperation::Start => "started",
        ControlOperation::Restart => "restarted",
    };
    crate::info!("cell {name}: {done} by cell {by}");
    if operation == ControlOperation::Start {
        vcpu::notify_other_cores();
    } else {
        left_running(system, target);
    }
    Ok(())
}

/// A cell stopped or is restarting: end its IPC and let the other cores update its vCPUs.
// Out of line: one copy for every stop and restart path.
#[inline(never)]
fn left_running(system: &System, cell: usize) {
    ipc::cell_lost(system, cell);
    vcpu::notify_other_cores();
}

fn yield_loaded(core: &mut CoreState) {
    if let Some(id) = core.loaded_id() {
        core.scheduler.yield_now(id, timer::now());
    }
}

fn fault_kind(fault: &CellFault) -> (FaultKind, u64, u64) {
    match *fault {
        CellFault::Stage2Abort {
            ipa,
            pc,
            instruction_fetch: true,
            ..
        } => (FaultKind::InstructionAbort, ipa, pc),
        CellFault::Stage2Abort { ipa, pc, .. } => (FaultKind::DataAbort, ipa, pc),
        CellFault::Undefined { pc, .. } => (FaultKind::Undefined, pc, pc),
        CellFault::IllegalHypercall { pc, .. } => (FaultKind::IllegalHypercall, pc, pc),
        CellFault::Asynchronous { pc } => (FaultKind::Asynchronous, pc, pc),
    }
}

/// Reports a fault of the loaded vCPU's cell and applies the cell's policy. Returns true
/// (the core must choose again: the vCPU is gone or reset).
fn cell_fault(core: &mut CoreState, fault: CellFault) -> bool {
    let Some(system) = system::system() else {
        return true;
    };
    let Ok((cell, vcpu_index, record)) = caller(core) else {
        return true;
    };
    let name = record.name();
    let runtime = system::runtime(cell);
    runtime.faults.fetch_add(1, Ordering::AcqRel);
    runtime.flush_console(name);
    crate::warning!("cell {name}: vCPU {vcpu_index} faulted: {fault}");
    if record.fault_policy == FaultPolicy::Report {
        if let (true, Some(supervisor)) = (
            runtime.leave_running(CellState::Stopped),
            record.supervisor(),
        ) {
            let (kind, address, pc) = fault_kind(&fault);
            let report = FaultReport {
                cell: cell as u16,
                kind,
                address,
                pc,
            };
            let queued = system::runtime(supervisor)
                .fault_reports
                .lock()
                .push(report);
            let supervisor_name = system.cell_name(supervisor);
            if queued {
                crate::info!("cell {name}: stopped; fault reported to cell {supervisor_name}");
            } else {
                crate::warning!(
                    "cell {name}: stopped; cell {supervisor_name} has too many unread reports"
                );
            }
            ipc::cell_lost(system, cell);
        }
        vcpu::notify_other_cores();
        return true;
    }
    let restarts = runtime.restarts.load(Ordering::Acquire);
    match fault_outcome(record, restarts) {
        FaultOutcome::Restart { attempt, limit } => {
            if runtime.leave_running(CellState::Restarting) {
                runtime.restarts.store(attempt, Ordering::Release);
                crate::info!("cell {name}: restarting (restart {attempt} of {limit})");
                ipc::cell_lost(system, cell);
            }
        }
        FaultOutcome::Stop { restarts } => {
            if runtime.leave_running(CellState::Stopped) {
                if restarts > 0 {
                    crate::info!("cell {name}: stopped after {restarts} restarts (limit reached)");
                } else {
                    crate::info!("cell {name}: stopped (fault policy: stop)");
                }
                ipc::cell_lost(system, cell);
            }
        }
    }
    vcpu::notify_other_cores();
    true
}

/// An IRQ while a cell ran, whose registers the vector saved in `frame`; returns the frame
/// to resume from (that one, unless the core chose again).
pub extern "C" fn lower_irq(state: EntryState, frame: *mut Frame) -> *const Frame {
    let core = state.take();
    let intid = gic::acknowledge();
    let reschedule = match intid {
        gic::SPURIOUS => false,
        // The most frequent alone, without draining the others (anything else pending is
        // taken as the next exception): a guest's IPI or a notification from another core.
        SGI_POSTED => {
            gic::end_of_interrupt(intid);
            let woken = core.raise_posted_interrupts();
            gic::deactivate(intid);
            woken
        }
        _ => {
            let handled = handle_interrupt(core, intid);
            handle_pending_interrupts(core) | handled
        }
    };
    if !reschedule {
        // Only choosing again changes the loaded vCPU.
        return frame;
    }
    vcpu::schedule(core);
    core.resume_frame()
}

/// Acknowledges and handles every pending interrupt of this core. Returns whether the core
/// must choose again.
pub fn handle_pending_interrupts(core: &mut CoreState) -> bool {
    let mut reschedule = false;
    loop {
        let intid = gic::acknowledge();
        if intid == gic::SPURIOUS {
            return reschedule;
        }
        reschedule |= handle_interrupt(core, intid);
    }
}

/// Handles interrupt `intid`, just acknowledged. Returns whether the core must choose again.
fn handle_interrupt(core: &mut CoreState, intid: u32) -> bool {
    gic::end_of_interrupt(intid);
    // The GIC delivers nothing before the boot core read the platform.
    let Some(platform) = crate::platform() else {
        gic::deactivate(intid);
        return false;
    };
    let mut reschedule = false;
    if intid == SGI_POSTED {
        reschedule = core.raise_posted_interrupts();
    } else if intid == platform.hypervisor_timer_intid {
        // The scheduler's deadline passed; `schedule` chooses again and re-arms.
        core.disarm_timer();
        reschedule = true;
    } else if intid == platform.virtual_timer_intid {
        // The loaded vCPU's virtual timer fired: mask it, raise its virtual interrupt.
        match core.loaded_id() {
            Some(slot) => {
                if core.live_virtual_timer_fired() {
                    core.raise(slot, VIRTUAL_TIMER_INTID, None);
                    reschedule = true;
                }
            }
            // No vCPU owns the timer registers: silence them, or the level-triggered
            // interrupt would come back at once.
            None => vcpu::silence_live_virtual_timer(),
        }
    } else if intid == platform.maintenance_intid {
        core.refill_list_registers();
    } else if Some(intid) == platform.uart_intid {
        crate::console::receive(core);
        reschedule = true;
    } else if intid == SGI_HALT {
        gic::deactivate(intid);
        crate::halt_this_core();
    } else if intid == SGI_RESCHEDULE {
        reschedule = true;
    } else if let Some(slot) = crate::interrupts::owner_on_core(core, intid) {
        // A cell's device interrupt: it stays active until the cell's virtual EOI
        // deactivates it through the hardware link.
        core.raise(slot, intid, Some(intid));
        return true;
    } else {
        let count = UNOWNED_INTERRUPTS.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(gic) = crate::gic() {
            gic.disable(intid, sysreg::mpidr_el1::read());
        }
        crate::warning!(
            "core {}: interrupt {intid} has no owner; disabled (unowned so far: {count})",
            core.index
        );
    }
    gic::deactivate(intid);
    reschedule
}

/// A cell exception that cannot happen (AArch32, FIQ, SError): a fault of the loaded vCPU's
/// cell. Returns the frame to resume from.
pub extern "C" fn lower_unexpected() -> *const Frame {
    let mut core = vcpu::lock_core(this_core());
    let pc = core.regs().elr;
    cell_fault(&mut core, CellFault::Asynchronous { pc });
    vcpu::schedule(&mut core);
    core.resume_frame()
}

/// An exception taken from EL2 itself: a kernel bug.
pub extern "C" fn unexpected(frame: &Frame, kind: u64) -> ! {
    panic!(
        "unexpected {} at EL2: ESR {:#x}, ELR {:#x}, FAR {:#x}",
        EL2_EXCEPTION_KINDS
            .get(kind as usize)
            .unwrap_or(&"exception"),
        sysreg::esr_el2::read(),
        frame.elr,
        sysreg::far_el2::read()
    )
}
