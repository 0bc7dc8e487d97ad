//! vCPUs and the per-core state that runs them: each core owns the vCPUs pinned to it,
//! its scheduler, and which vCPU its registers currently hold.
//!
//! Invariants: a vCPU lives in exactly one core's table and only that core touches it. The
//! vCPU named by `CoreState::loaded` has its live state in the hardware registers and in the
//! exception [`Frame`] being handled, not in its `Vcpu` record (which is stale until it is
//! switched out). A vCPU whose cell generation has moved on is dropped (or, for vCPU 0 of a
//! restarting cell, reset) before the scheduler chooses again.

use crate::arch::context::{self, El1Registers, FpRegisters};
use crate::arch::exception::Frame;
use crate::arch::{gic, sysreg, timer};
use crate::system::{self, CellState, System};
use abi::plan::{CellKind, CellRecord, ANY_CORE};
use core::sync::atomic::Ordering;
use kcore::sched::{SchedParams, Scheduler, VcpuId, MAX_VCPUS_PER_CORE};
use spin::{Mutex, Once};

/// HCR_EL2 for a native cell: stage 2 on, physical interrupts to EL2, default cacheable
/// (stage 1 off means Normal memory), WFI and SMC trapped, AArch64 EL1.
const HCR_NATIVE: u64 = HCR_VM
    | HCR_SWIO
    | HCR_FMO
    | HCR_IMO
    | HCR_AMO
    | HCR_FB
    | HCR_BSU_INNER
    | HCR_DC
    | HCR_TWI
    | HCR_TSC
    | HCR_TIDCP
    | HCR_TACR
    | HCR_TSW
    | HCR_RW;
const HCR_VM: u64 = 1 << 0;
const HCR_SWIO: u64 = 1 << 1;
const HCR_FMO: u64 = 1 << 3;
const HCR_IMO: u64 = 1 << 4;
const HCR_AMO: u64 = 1 << 5;
const HCR_FB: u64 = 1 << 9;
const HCR_BSU_INNER: u64 = 1 << 10;
const HCR_DC: u64 = 1 << 12;
const HCR_TWI: u64 = 1 << 13;
const HCR_TSC: u64 = 1 << 19;
const HCR_TIDCP: u64 = 1 << 20;
const HCR_TACR: u64 = 1 << 21;
const HCR_TSW: u64 = 1 << 22;
const HCR_RW: u64 = 1 << 31;
/// HCR_EL2 before any cell is loaded: interrupts taken at EL2 (they wake an idle core).
pub const HCR_IDLE: u64 = HCR_IMO | HCR_FMO | HCR_AMO | HCR_RW;

/// SPSR for a vCPU's first instruction: EL1h with D, A, I and F masked.
const SPSR_EL1H_MASKED: u64 = 0x3c5;

/// The SGI that asks a core to look at its vCPUs again (a cell stopped or restarted).
pub const SGI_RESCHEDULE: u32 = 1;
/// The SGI that stops a core for good (kernel panic).
pub const SGI_HALT: u32 = 2;

/// One vCPU's saved state.
pub struct Vcpu {
    /// Index of its cell.
    pub cell: usize,
    /// Its index within the cell.
    pub index: u8,
    /// The cell generation it belongs to.
    pub generation: u32,
    frame: Frame,
    el1: El1Registers,
    fp: FpRegisters,
    vttbr: u64,
    hcr: u64,
    vmpidr: u64,
}

impl Vcpu {
    fn new(cell: usize, index: u8, record: &CellRecord, vttbr: u64, generation: u32) -> Self {
        let mut vcpu = Self {
            cell,
            index,
            generation,
            frame: Frame::default(),
            el1: El1Registers::at_reset(),
            fp: FpRegisters::zeroed(),
            vttbr,
            hcr: HCR_NATIVE,
            vmpidr: (1 << 31) | index as u64,
        };
        vcpu.reset(record, generation);
        vcpu
    }

    /// Puts the vCPU back to its first instruction.
    fn reset(&mut self, record: &CellRecord, generation: u32) {
        self.generation = generation;
        self.frame = Frame::default();
        self.frame.x[0] = self.index as u64;
        self.frame.elr = record.entry_ipa;
        self.frame.spsr = SPSR_EL1H_MASKED;
        self.el1 = El1Registers::at_reset();
        self.fp = FpRegisters::zeroed();
    }
}

/// Everything one core owns.
pub struct CoreState {
    /// This core's index.
    pub index: usize,
    /// Its scheduler; vCPU ids are slots of `vcpus`.
    pub scheduler: Scheduler,
    vcpus: [Option<Vcpu>; MAX_VCPUS_PER_CORE],
    loaded: Option<VcpuId>,
}

impl CoreState {
    const fn new(index: usize) -> Self {
        Self {
            index,
            scheduler: Scheduler::new(0),
            vcpus: [const { None }; MAX_VCPUS_PER_CORE],
            loaded: None,
        }
    }

    /// The vCPU whose state the registers hold.
    pub fn loaded(&self) -> Option<&Vcpu> {
        self.vcpus.get(self.loaded? as usize)?.as_ref()
    }

    /// Id of the vCPU whose state the registers hold.
    pub fn loaded_id(&self) -> Option<VcpuId> {
        self.loaded
    }

    fn add(&mut self, vcpu: Vcpu, priority: u8) -> bool {
        let Some(slot) = self.vcpus.iter().position(Option::is_none) else {
            return false;
        };
        let id = slot as VcpuId;
        if self
            .scheduler
            .add(id, SchedParams::unlimited(priority), timer::now())
            .is_err()
        {
            return false;
        }
        self.vcpus[slot] = Some(vcpu);
        true
    }

    /// Drops vCPUs of stopped cells and resets vCPU 0 of restarting ones (reloading the cell).
    fn refresh(&mut self, system: &System) {
        for slot in 0..MAX_VCPUS_PER_CORE {
            let Some(vcpu) = self.vcpus[slot].as_mut() else {
                continue;
            };
            let runtime = system::runtime(vcpu.cell);
            let generation = runtime.generation.load(Ordering::Acquire);
            if vcpu.generation == generation {
                continue;
            }
            let restart = runtime.state() == CellState::Restarting && vcpu.index == 0;
            let record = system.cell(vcpu.cell).map(|info| info.record);
            match (restart, record) {
                (true, Some(record)) => {
                    if let Err(error) = system.reload(vcpu.cell) {
                        crate::error!(
                            "cell {}: reload failed ({error:?}); stopping it",
                            record.name()
                        );
                        runtime.leave_running(CellState::Stopped);
                        self.drop_vcpu(slot);
                        continue;
                    }
                    vcpu.reset(&record, generation);
                    runtime.finish_restart();
                    if self.loaded == Some(slot as VcpuId) {
                        // Its registers no longer matter: load the reset state on the next switch.
                        self.loaded = None;
                    }
                    self.scheduler.wake(slot as VcpuId);
                }
                _ => self.drop_vcpu(slot),
            }
        }
    }

    fn drop_vcpu(&mut self, slot: usize) {
        self.scheduler.remove(slot as VcpuId);
        self.vcpus[slot] = None;
        if self.loaded == Some(slot as VcpuId) {
            self.loaded = None;
        }
    }

    /// Makes `next` the loaded vCPU, saving the previous one's state from `frame` and the
    /// registers.
    fn switch_to(&mut self, next: VcpuId, frame: &mut Frame) {
        if self.loaded == Some(next) {
            return;
        }
        if let Some(previous) = self
            .loaded
            .and_then(|id| self.vcpus.get_mut(id as usize)?.as_mut())
        {
            previous.frame = *frame;
            context::save_el1(&mut previous.el1);
            context::save_fp(&mut previous.fp);
        }
        self.loaded = None;
        let Some(vcpu) = self.vcpus.get(next as usize).and_then(Option::as_ref) else {
            return;
        };
        *frame = vcpu.frame;
        context::restore_el1(&vcpu.el1);
        context::restore_fp(&vcpu.fp);
        // SAFETY: the cell's stage-2 root and VMID were built at boot for exactly this cell;
        // HCR_EL2 and VMPIDR_EL2 configure how that cell runs at EL1. They take effect at
        // the `eret` that enters the vCPU (EL2 itself is not affected by them).
        unsafe {
            sysreg::vttbr_el2::write(vcpu.vttbr);
            sysreg::hcr_el2::write(vcpu.hcr);
            sysreg::vmpidr_el2::write(vcpu.vmpidr);
        }
        self.loaded = Some(next);
    }
}

/// Every core's state, created on first use (`Once` keeps the table in `.bss`).
static CORES: [Once<Mutex<CoreState>>; crate::arch::entry::MAX_CORES] =
    [const { Once::new() }; crate::arch::entry::MAX_CORES];

/// The state of core `index` (masked into range).
pub fn core(index: usize) -> &'static Mutex<CoreState> {
    let index = index % CORES.len();
    CORES[index].call_once(|| Mutex::new(CoreState::new(index)))
}

/// Creates every cell's vCPUs on their cores. Boot core only, before other cores start.
/// Returns how many vCPUs were created.
pub fn populate(system: &System, core_count: usize, timeslice: u64) -> usize {
    for index in 0..CORES.len() {
        core(index).lock().scheduler = Scheduler::new(timeslice);
    }
    let mut next_core = 0;
    let mut created = 0;
    for cell in 0..system.plan.cell_count() {
        let Some(info) = system.cell(cell) else {
            continue;
        };
        let record = info.record;
        // A guest starts with its boot vCPU only; the others wait for PSCI CPU_ON.
        let started = if record.kind == CellKind::Guest {
            1
        } else {
            record.vcpu_count
        };
        for index in 0..started {
            let pinned = record.vcpu_cores[index as usize];
            let target = if pinned == ANY_CORE {
                next_core = (next_core + 1) % core_count.max(1);
                next_core
            } else {
                pinned as usize
            };
            let vcpu = Vcpu::new(cell, index, &record, info.vttbr, 0);
            if core(target).lock().add(vcpu, record.priority) {
                created += 1;
                crate::info!(
                    "cell {}: started vCPU {index} on core {target} (priority {}, {} KiB RAM at {:#x})",
                    record.name(),
                    record.priority,
                    info.ram.size() / 1024,
                    info.ram.pa()
                );
            } else {
                crate::error!(
                    "cell {}: core {target} has no room for vCPU {index}",
                    record.name()
                );
            }
        }
    }
    created
}

/// Chooses what this core runs next and loads it into `frame` and the registers; idles
/// (handling interrupts) while nothing is runnable.
pub fn schedule(core: &mut CoreState, frame: &mut Frame) {
    let Some(system) = system::system() else {
        return;
    };
    loop {
        core.refresh(system);
        let choice = core.scheduler.choose(timer::now());
        timer::set_deadline(choice.next_event);
        if let Some(next) = choice.run {
            core.switch_to(next, frame);
            if core.loaded == Some(next) {
                return;
            }
            // The chosen vCPU vanished between choose and switch: choose again.
            core.drop_vcpu(next as usize);
            continue;
        }
        idle(core);
    }
}

/// Waits for an interrupt with nothing to run, then handles what arrived.
fn idle(core: &mut CoreState) {
    sysreg::wait_for_interrupt();
    crate::trap::handle_pending_interrupts(core);
}

/// Sends the reschedule SGI so other cores drop or reset stale vCPUs promptly.
pub fn notify_other_cores() {
    gic::send_sgi_to_others(SGI_RESCHEDULE);
}
