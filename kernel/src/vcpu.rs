//! vCPUs and the per-core state that runs them: each core owns the vCPUs pinned to it,
//! its scheduler, its timed wake-ups, and which vCPU its registers currently hold.
//!
//! Invariants:
//! - A vCPU lives in exactly one core's table and only that core touches it.
//! - A vCPU's general registers are always in its record: the exception vectors save the
//!   loaded vCPU's there and restore from the frame a handler returns
//!   ([`CoreState::resume_frame`]). The vCPU named by `CoreState::loaded` has the rest of its
//!   live state (EL1 and virtual-interface registers) in the CPU, not in its record, which
//!   is stale there until it is switched out.
//! - EL1 system registers belong to the last EL1 vCPU loaded: a vCPU of a native cell at EL0
//!   owns only SP_EL0 and TPIDR_EL0, and while `CoreState::el0_context_live` the EL1
//!   registers that govern EL0 hold the kernel's EL0 context (`context::enter_el0_context`),
//!   so a switch between two EL0 vCPUs moves two registers instead of sixteen.
//! - FP/SIMD registers belong to `CoreState::fp_owner`, which may differ from the loaded vCPU
//!   when the loaded one runs without FP (its FP use traps): FP state moves lazily.
//! - A vCPU whose cell generation has moved on is brought up to date (deactivated, reset or
//!   reactivated) before the scheduler chooses again.

use crate::arch::context::{El1Registers, FpRegisters};
use crate::arch::entry::MAX_CORES;
use crate::arch::exception::Frame;
use crate::arch::vgic::{self, InterfaceState};
use crate::arch::{gic, sysreg, timer};
use crate::system::{self, CellState, System};
use abi::plan::{CellFlags, CellKind, CellRecord, ANY_CORE};
use core::sync::atomic::Ordering;
use core::sync::atomic::{AtomicU16, AtomicU64};
use kcore::capability::IpcRoute;
use kcore::ipc::VcpuRef;
use kcore::sched::{SchedParams, Scheduler, VcpuId, MAX_VCPUS_PER_CORE, NO_VCPU};
use kcore::vgic::DirectRaise;
use kcore::vgic::VirtualInterrupts;
use kcore::wake::WakeQueue;
use spin::mutex::{SpinMutex, SpinMutexGuard};
use spin::Mutex;

mod switch;

/// HCR_EL2 for a native cell: stage 2 on, physical interrupts to EL2, default cacheable
/// (stage 1 off, as Normal memory), writes to the stage-1 translation registers trapped (a
/// fault: they keep their reset values, so switches between native vCPUs skip them), WFI
/// and SMC trapped, AArch64 EL1.
const HCR_NATIVE: u64 = HCR_GUEST | HCR_DC | HCR_TVM;
/// HCR_EL2 for a native cell at EL0: as [`HCR_NATIVE`] with TGE, which routes every
/// exception from EL0 to EL2 (`svc #0` is the hypercall) and treats SCTLR_EL1.M as 0; with
/// E2H clear stage 2 stays on. Virtual interrupts are off under TGE.
const HCR_NATIVE_EL0: u64 = HCR_NATIVE | HCR_TGE;
/// HCR_EL2 for a guest cell: stage 2 on, physical interrupts to EL2, WFI and SMC trapped,
/// AArch64 EL1; the guest runs its own stage-1 MMU.
const HCR_GUEST: u64 = HCR_VM
    | HCR_SWIO
    | HCR_FMO
    | HCR_IMO
    | HCR_AMO
    | HCR_FB
    | HCR_BSU_INNER
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
/// HCR_EL2.DC: set for native cells only.
pub const HCR_DC: u64 = 1 << 12;
const HCR_TWI: u64 = 1 << 13;
const HCR_TSC: u64 = 1 << 19;
const HCR_TIDCP: u64 = 1 << 20;
const HCR_TACR: u64 = 1 << 21;
const HCR_TSW: u64 = 1 << 22;
const HCR_TVM: u64 = 1 << 26;
const HCR_TGE: u64 = 1 << 27;
const HCR_RW: u64 = 1 << 31;
/// HCR_EL2 before any cell is loaded: interrupts taken at EL2 (they wake an idle core).
pub const HCR_IDLE: u64 = HCR_IMO | HCR_FMO | HCR_AMO | HCR_RW;

/// CPTR_EL2 RES1 bits; with TFP (bit 10) FP/SIMD use traps.
pub const CPTR_EL2_NO_TRAPS: u64 = 0x33ff;
const CPTR_EL2_TRAP_FP: u64 = CPTR_EL2_NO_TRAPS | (1 << 10);

/// SPSR for a vCPU's first instruction: EL1h with D, A, I and F masked.
const SPSR_EL1H_MASKED: u64 = 0x3c5;
/// SPSR for an EL0 vCPU's first instruction: EL0t (PSTATE masks do not apply to the
/// interrupts taken to EL2 from EL0).
const SPSR_EL0T: u64 = 0;

/// CNTV_CTL_EL0 bits.
const TIMER_ENABLE: u64 = 1 << 0;
const TIMER_MASKED: u64 = 1 << 1;
const TIMER_CONDITION_MET: u64 = 1 << 2;
/// The EL1 virtual timer's interrupt.
pub const VIRTUAL_TIMER_INTID: u32 = 27;
/// Priority of virtual interrupts the kernel raises.
const VIRTUAL_PRIORITY: u8 = 0xa0;

/// The SGI that asks a core to look at its vCPUs again (a cell stopped, restarted or got a
/// fault report).
pub const SGI_RESCHEDULE: u32 = 1;
/// The SGI that stops a core for good (kernel panic).
pub const SGI_HALT: u32 = 2;
/// The SGI that tells a core that another core posted virtual interrupts for its vCPUs: it
/// raises them, and chooses again only if that woke one (a guest's IPI to a vCPU running on
/// its own core needs no scheduling decision).
pub const SGI_POSTED: u32 = 3;

/// What a blocked vCPU waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// Not waiting.
    Nothing,
    /// WFI: a virtual interrupt.
    Interrupt,
    /// FAULT_WAIT: a fault report for its cell.
    FaultReport,
    /// CALL, REPLY_WAIT or WAIT: a delivery from `ipc`.
    Ipc,
}

/// `Vcpu::el0_class` of an EL0 vCPU, and its bit for one that uses FP/SIMD.
const EL0_CLASS: u8 = 1;
const EL0_CLASS_FP: u8 = 2;

/// One vCPU's saved state.
///
/// `repr(C)` in this order: the small fields the IPC fast path and the switch test come
/// first, at offsets a load instruction encodes directly (the Rust layout put them after
/// the register files, beyond the 4 KiB a byte load's offset reaches).
#[repr(C)]
pub struct Vcpu {
    wait: Wait,
    active: bool,
    uses_fp: bool,
    /// Whether it runs at EL0 (a native cell with `CellFlags::EL0`).
    el0: bool,
    /// `EL0_CLASS` with `EL0_CLASS_FP` if it uses FP/SIMD for an EL0 vCPU, 0 for an EL1
    /// one: the switch between two vCPUs of one class takes the short path.
    el0_class: u8,
    /// Whether it belongs to a guest cell (an OS booted by the Linux protocol).
    pub guest: bool,
    /// False only when `interrupts` is known to be quiet (nothing pending, nothing in a list
    /// register): lets a switch skip the virtual interface without looking.
    interrupts_active: bool,
    /// Its index within the cell.
    pub index: u8,
    /// The cell generation its state belongs to.
    pub generation: u32,
    /// Index of its cell.
    pub cell: usize,
    /// Its cell's record in the plan.
    pub record: &'static CellRecord,
    vttbr: u64,
    hcr: u64,
    vmpidr: u64,
    /// What x0 holds at its first instruction: the vCPU index for a native cell, the device
    /// tree's IPA for a guest's boot vCPU.
    boot_argument: u64,
    /// A guest's device access that a device-model cell is completing (its IPC wait ends
    /// by writing the loaded value, not by the IPC return registers).
    device_access: Option<kcore::mmio::Access>,
    scheduling: SchedParams,
    /// Its cell's endpoint and notification capabilities, pre-decoded for the fast paths
    /// (fixed at boot).
    routes: kcore::capability::IpcRoutes,
    frame: Frame,
    el1: El1Registers,
    interface: InterfaceState,
    interrupts: VirtualInterrupts,
    fp: FpRegisters,
}

impl Vcpu {
    fn new(
        cell: usize,
        index: u8,
        record: &'static CellRecord,
        vttbr: u64,
        scheduling: SchedParams,
        boot_argument: u64,
    ) -> Self {
        let guest = record.kind == CellKind::Guest;
        let el0 = !guest && record.runs_at_el0();
        let uses_fp = !record.flags.contains(CellFlags::NO_FP);
        Self {
            cell,
            index,
            record,
            generation: 0,
            active: false,
            wait: Wait::Nothing,
            uses_fp,
            scheduling,
            frame: Frame::default(),
            el1: El1Registers::at_reset(),
            fp: FpRegisters::zeroed(),
            interface: InterfaceState::at_reset(),
            interrupts: VirtualInterrupts::new(),
            interrupts_active: false,
            vttbr,
            hcr: match (guest, el0) {
                (true, _) => HCR_GUEST,
                (false, true) => HCR_NATIVE_EL0,
                (false, false) => HCR_NATIVE,
            },
            vmpidr: kcore::psci::virtual_mpidr(index as usize),
            guest,
            el0,
            el0_class: u8::from(el0) * (EL0_CLASS + u8::from(uses_fp) * EL0_CLASS_FP),
            boot_argument,
            device_access: None,
            routes: crate::ipc::routes_of(record),
        }
    }

    /// Puts the vCPU back to its first instruction. Out of line: one copy for the boot, a
    /// cell's restart and PSCI CPU_ON (it was inlined at four places).
    #[inline(never)]
    fn reset(&mut self, record: &CellRecord, generation: u32, restarts: u8) {
        self.generation = generation;
        self.start_at(record.entry_ipa, self.boot_argument);
        // A native cell learns its restart count; the Linux boot protocol wants x1..x3 = 0.
        self.frame.x[1] = if self.guest { 0 } else { restarts as u64 };
    }

    /// Puts the vCPU in its reset state at `entry`, with x0 = `x0`.
    fn start_at(&mut self, entry: u64, x0: u64) {
        self.wait = Wait::Nothing;
        self.device_access = None;
        self.frame = Frame::default();
        self.frame.x[0] = x0;
        // x2 tells the SDK's start-up which hypercall instruction is this cell's.
        self.frame.x[2] = self.el0 as u64;
        self.frame.elr = entry;
        self.frame.spsr = if self.el0 {
            SPSR_EL0T
        } else {
            SPSR_EL1H_MASKED
        };
        self.el1 = El1Registers::at_reset();
        self.fp = FpRegisters::zeroed();
        self.interface = InterfaceState::at_reset();
        self.interrupts.clear();
        self.interrupts_active = false;
    }
}

/// Everything one core owns.
///
/// `repr(C)` in this order: the scheduler and the small fields the fast paths read come
/// before the vCPU records, at offsets a load instruction encodes directly (the Rust
/// layout put them after 70 KiB of records, each access then costing an extra two
/// instructions to build the offset).
#[repr(C)]
pub struct CoreState {
    /// This core's index.
    pub index: usize,
    /// The slot of the vCPU whose state the registers hold, or [`NO_VCPU`]: a plain
    /// index, so that a lookup's bound test also tests whether one is loaded.
    loaded: VcpuId,
    /// The slot whose FP/SIMD state the registers hold, or [`NO_VCPU`].
    fp_owner: VcpuId,
    /// When this core's hypervisor timer fires (`None`: disarmed). Invariant: armed no
    /// later than the earliest entry of `wake` (every insertion is followed by a
    /// [`schedule`], which re-arms) and than the scheduler's next event as of the last
    /// arming; a hand-off that only moves that event later may leave it as it is
    /// (`arm_timer_after_hand_off`), and an IPC hand-off, which needs none, leaves it.
    timer_deadline: Option<u64>,
    list_registers: usize,
    /// How many of the hardware list registers (from index 0) may hold something; the rest
    /// are empty. Lets a switch between vCPUs without interrupts skip them entirely.
    live_list_registers: usize,
    /// Slots `0..used` hold vCPUs (they are never freed).
    used: usize,
    /// The cell-state epoch this core last brought its vCPUs up to date with.
    seen_epoch: u32,
    /// How many of this core's vCPUs wait in FAULT_WAIT.
    fault_waiters: usize,
    /// Whether the EL1 translation registers hold the values every native vCPU has (see
    /// `El1Registers`): false after a guest vCPU ran, and at boot.
    native_translation_live: bool,
    /// Whether the EL1 registers that govern EL0 hold the EL0 context (an EL0 vCPU ran
    /// last, see `context::enter_el0_context`); `el1_world_pmuserenr` then holds the EL1
    /// world's PMUSERENR_EL0.
    el0_context_live: bool,
    el1_world_pmuserenr: u64,
    /// Its scheduler; vCPU ids are slots of `vcpus`.
    pub scheduler: Scheduler,
    wake: WakeQueue<MAX_VCPUS_PER_CORE>,
    /// Stands in for the loaded vCPU's frame while none is loaded (never resumed into by a
    /// vCPU: a core with nothing loaded waits in `schedule`).
    scratch: Frame,
    vcpus: [Option<Vcpu>; MAX_VCPUS_PER_CORE],
}

impl CoreState {
    const fn new(index: usize) -> Self {
        Self {
            index,
            scheduler: Scheduler::new(0),
            vcpus: [const { None }; MAX_VCPUS_PER_CORE],
            loaded: NO_VCPU,
            fp_owner: NO_VCPU,
            wake: WakeQueue::new(),
            timer_deadline: None,
            list_registers: 0,
            live_list_registers: 0,
            used: 0,
            seen_epoch: u32::MAX,
            fault_waiters: 0,
            scratch: Frame::zeroed(),
            native_translation_live: false,
            el0_context_live: false,
            el1_world_pmuserenr: 0,
        }
    }

    /// The vCPU whose state the registers hold.
    pub fn loaded(&self) -> Option<&Vcpu> {
        self.vcpus.get(self.loaded as usize)?.as_ref()
    }

    /// The loaded vCPU's cell and index in it, if it is a guest's.
    pub fn loaded_guest(&self) -> Option<(usize, u8)> {
        let vcpu = self.loaded().filter(|vcpu| vcpu.guest)?;
        Some((vcpu.cell, vcpu.index))
    }

    /// The loaded vCPU's virtual MDSCR_EL1 (`kcore::debug`).
    pub fn loaded_monitor_control(&mut self) -> Option<&mut u64> {
        Some(&mut self.loaded_mut()?.el1.mdscr)
    }

    fn loaded_mut(&mut self) -> Option<&mut Vcpu> {
        self.vcpus.get_mut(self.loaded as usize)?.as_mut()
    }

    /// The general registers of the loaded vCPU, as the exception saved them (a scratch
    /// frame if none is loaded). After a switch these are the next vCPU's.
    pub fn regs(&mut self) -> &mut Frame {
        match self
            .vcpus
            .get_mut(self.loaded as usize)
            .and_then(Option::as_mut)
        {
            Some(vcpu) => &mut vcpu.frame,
            None => &mut self.scratch,
        }
    }

    /// General register `register` of the loaded vCPU (0 for number 31, the zero register).
    // Out of line, as `complete_access`.
    #[inline(never)]
    pub fn loaded_register(&mut self, register: usize) -> u64 {
        self.regs().x.get(register).copied().unwrap_or(0)
    }

    /// Completes an instruction of the loaded vCPU the kernel emulated: `result`, a general
    /// register's number and value, is written (nothing for number 31, the zero register),
    /// and the vCPU resumes after the instruction. Out of line: one copy for the emulated
    /// system, debug and device registers, SMC and WFx (none of them a measured hot path).
    #[inline(never)]
    pub fn complete_access(&mut self, result: Option<(usize, u64)>) {
        let frame = self.regs();
        let target = result.and_then(|(at, value)| Some((frame.x.get_mut(at)?, value)));
        if let Some((target, value)) = target {
            *target = value;
        }
        frame.elr = frame.elr.wrapping_add(4);
    }

    /// Ends vCPU `slot`'s IPC wait with `delivery` (written into its registers) and wakes it.
    /// A vCPU that is not waiting in IPC (its cell restarted meanwhile) ignores it.
    pub fn apply(&mut self, slot: VcpuId, delivery: crate::ipc::Delivery) {
        let Some(vcpu) = self.vcpus.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        if vcpu.wait != Wait::Ipc {
            return;
        }
        let registers = &mut vcpu.frame.x;
        match vcpu.device_access.take() {
            Some(access) => crate::guest::complete_device_access(&access, delivery, registers),
            None => delivery.write_to(registers),
        }
        vcpu.wait = Wait::Nothing;
        self.scheduler.wake(slot);
    }

    /// Starts (PSCI CPU_ON) vCPU `slot` of this core at `entry` with x0 = `context`.
    pub fn start_slot(&mut self, slot: VcpuId, entry: u64, context: u64) {
        let Some(vcpu) = self.vcpus.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        if vcpu.active {
            return;
        }
        vcpu.start_at(entry, context);
        self.activate(slot);
    }

    /// Stops the loaded vCPU (PSCI CPU_OFF); it runs again only when started.
    pub fn stop_loaded(&mut self) {
        if let Some(slot) = self.loaded_id() {
            self.deactivate(slot);
        }
    }

    /// Records that the loaded (guest) vCPU's device access `access` goes to a device-model
    /// cell: the IPC wait it is about to enter ends by completing the access.
    pub fn forward_loaded_access(&mut self, access: kcore::mmio::Access) {
        if let Some(vcpu) = self.loaded_mut() {
            vcpu.device_access = Some(access);
        }
    }

    /// Forgets the loaded vCPU's forwarded device access (the call was refused at once).
    pub fn take_loaded_access(&mut self) -> Option<kcore::mmio::Access> {
        self.loaded_mut()?.device_access.take()
    }

    /// Blocks the loaded vCPU in an IPC wait.
    pub fn block_loaded(&mut self) {
        let Some(slot) = self.loaded_id() else { return };
        if let Some(vcpu) = self.loaded_mut() {
            vcpu.wait = Wait::Ipc;
        }
        self.scheduler.block(slot);
    }

    /// Arms this core's hypervisor timer for the earlier of the scheduler's next event
    /// (budget end, replenishment) and the earliest vCPU wake-up, or disarms it if neither.
    // Inlined: it sits on the IPC fast path and the context switch, where the call cost
    // 11 instructions per IPC in the benchmark.
    #[inline(always)]
    fn arm_timer(&mut self, scheduler_event: Option<u64>) {
        let deadline = match (scheduler_event, self.wake.earliest()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.timer_deadline = deadline;
        timer::set_deadline(deadline);
    }

    /// [`arm_timer`](Self::arm_timer) after a hand-off, whose new scheduler event (the end
    /// of the next vCPU's slice) is all that changed. If the timer already fires no later,
    /// it is left: the wake-ups are no earlier than it (the field's invariant), and firing
    /// early only makes `schedule` choose the same vCPU and re-arm. A ping-pong of calls
    /// then programs the timer once per time slice, not twice per call.
    #[inline(always)]
    fn arm_timer_after_hand_off(&mut self, scheduler_event: Option<u64>) {
        let fires_in_time = match (self.timer_deadline, scheduler_event) {
            (Some(armed), Some(event)) => armed <= event,
            _ => false,
        };
        if !fires_in_time {
            self.arm_timer(scheduler_event);
        }
    }

    /// The hypervisor timer fired: disarm it until `schedule` re-arms it.
    pub fn disarm_timer(&mut self) {
        self.timer_deadline = None;
        timer::set_deadline(None);
    }

    /// The cell switch's fast path: the loaded vCPU yields, and the scheduler is certain
    /// without a full choice who runs next ([`Scheduler::yield_hand_off`]); switches to it.
    /// Returns whether it did; if not, the caller yields and lets `schedule` choose.
    /// Deliveries and expired wake-ups that `schedule` would look at first each come with
    /// an interrupt, which is taken as soon as the next vCPU runs.
    pub fn yield_hand_off(&mut self) -> bool {
        let Some(from) = self.loaded_id() else {
            return false;
        };
        let Some(choice) = self.scheduler.yield_hand_off(from, timer::now()) else {
            return false;
        };
        self.arm_timer_after_hand_off(choice.next_event);
        if let Some(next) = choice.run {
            self.switch_to(next);
        }
        self.loaded_id() == choice.run
    }

    /// The notification fast path: vCPU `woken` of this core was just given a delivery and
    /// woken; if the scheduler is certain it preempts the loaded vCPU
    /// ([`Scheduler::preempt_hand_off`]), switches to it. Returns whether it did; if not,
    /// the caller lets `schedule` choose. What `schedule` would look at first comes with an
    /// interrupt, as for [`yield_hand_off`](Self::yield_hand_off).
    pub fn wake_hand_off(&mut self, woken: VcpuId) -> bool {
        let Some(from) = self.loaded_id() else {
            return false;
        };
        let Some(choice) = self.scheduler.preempt_hand_off(from, woken, timer::now()) else {
            return false;
        };
        self.arm_timer_after_hand_off(choice.next_event);
        self.switch_to(woken);
        self.loaded == woken
    }

    /// The loaded vCPU's slot and reference with the endpoint capability its x1 names if
    /// that holds `right` (as its pre-decoded routes say) and its message (x2..x5), for the
    /// IPC fast path; `None` where the general path must decide.
    #[inline(always)]
    pub fn loaded_ipc_route(
        &self,
        right: u64,
    ) -> Option<(VcpuId, VcpuRef, IpcRoute, kcore::ipc::Message)> {
        let slot = self.loaded;
        let vcpu = self.vcpus.get(slot as usize)?.as_ref()?;
        let x = &vcpu.frame.x;
        let route = vcpu.routes.endpoint(x[1], right)?;
        let party = VcpuRef::new(vcpu.cell, vcpu.index);
        Some((slot, party, route, [x[2], x[3], x[4], x[5]]))
    }

    /// The loaded vCPU and the notification whose capability is in its slot `slot`, if that
    /// holds `right` (as its pre-decoded routes say); `None` where the general path must
    /// decide.
    #[inline(always)]
    pub fn loaded_notification_route(&self, slot: u64, right: u64) -> Option<(VcpuRef, u8)> {
        let vcpu = self.loaded()?;
        let index = vcpu.routes.notification(slot, right)?;
        Some((VcpuRef::new(vcpu.cell, vcpu.index), index))
    }

    /// The loaded vCPU as a party to IPC: who it is and its cell's record.
    #[inline(always)]
    pub fn loaded_party(&self) -> Option<(VcpuRef, &'static CellRecord)> {
        let vcpu = self.loaded()?;
        Some((VcpuRef::new(vcpu.cell, vcpu.index), vcpu.record))
    }

    /// The IPC fast path's hand-off: the loaded vCPU `from` blocks in IPC, the vCPU in slot
    /// `to` (blocked in IPC, waiting for a plain delivery, not a guest's forwarded device
    /// access) gets its registers written by `deliver` and runs, when the scheduler
    /// is certain of it ([`Scheduler::block_wake_hand_off`]). Returns the switch still to
    /// make, which the caller makes with [`switch_for`](Self::switch_for) once it has
    /// committed its object's state (so that no value it holds lives across the switch's
    /// calls), or `None` having changed nothing.
    #[inline(always)]
    pub fn ipc_hand_off(
        &mut self,
        from: VcpuId,
        to: VcpuId,
        deliver: impl FnOnce(&mut [u64; 31]),
    ) -> Option<HandOff> {
        let vcpu = self.vcpus.get_mut(to as usize)?.as_mut()?;
        if vcpu.device_access.is_some() || vcpu.wait != Wait::Ipc {
            return None;
        }
        // The hand-off asks for no tick (`next_event` is `None`): the timer stays as it is.
        self.scheduler.block_wake_hand_off(from, to)?;
        vcpu.wait = Wait::Nothing;
        deliver(&mut vcpu.frame.x);
        let resume: *const Frame = &vcpu.frame;
        let next = switch::Incoming::of(vcpu);
        Some(HandOff(from, to, next, resume))
    }

    /// Switches as the [`HandOff`] says; returns the frame to resume from.
    #[inline(always)]
    pub fn switch_for(&mut self, HandOff(from, to, next, resume): HandOff) -> *const Frame {
        self.switch_from_blocked(from, to, next);
        resume
    }

    /// The slot of vCPU `index` of `cell` on this core.
    #[inline(always)]
    pub fn slot_of(&self, cell: usize, index: u8) -> Option<VcpuId> {
        self.slot_at(place_of(VcpuRef::new(cell, index))?)
    }

    /// The slot on this core of the vCPU at `place` (a place word, see `VCPU_PLACE`).
    #[inline(always)]
    pub fn slot_at(&self, place: u16) -> Option<VcpuId> {
        (usize::from(place >> 8) == self.index).then_some(place & 0xff)
    }

    /// The loaded vCPU's place word (`u16::MAX`: none is loaded).
    pub fn loaded_place(&self) -> u16 {
        self.loaded_id()
            .map_or(u16::MAX, |slot| place_word(self.index, slot))
    }

    /// Id of the vCPU whose state the registers hold.
    pub fn loaded_id(&self) -> Option<VcpuId> {
        (self.loaded != NO_VCPU).then_some(self.loaded)
    }

    fn add(&mut self, vcpu: Vcpu) -> Option<VcpuId> {
        let slot = self.used;
        *self.vcpus.get_mut(slot)? = Some(vcpu);
        self.used += 1;
        Some(slot as VcpuId)
    }

    fn activate(&mut self, slot: VcpuId) {
        let Some(vcpu) = self.vcpus.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        if !vcpu.active
            && self
                .scheduler
                .add(slot, vcpu.scheduling, timer::now())
                .is_ok()
        {
            vcpu.active = true;
            system::runtime(vcpu.cell)
                .active_vcpus
                .fetch_or(1 << vcpu.index, Ordering::AcqRel);
        }
    }

    /// Takes vCPU `slot` out of scheduling; returns whether it was active.
    fn deactivate(&mut self, slot: VcpuId) -> bool {
        let Some(vcpu) = self.vcpus.get_mut(slot as usize).and_then(Option::as_mut) else {
            return false;
        };
        let was_active = vcpu.active;
        if was_active {
            self.scheduler.remove(slot);
            vcpu.active = false;
            system::runtime(vcpu.cell)
                .active_vcpus
                .fetch_and(!(1 << vcpu.index), Ordering::AcqRel);
        }
        if vcpu.wait == Wait::FaultReport {
            self.fault_waiters -= 1;
        }
        vcpu.wait = Wait::Nothing;
        self.wake.remove(slot);
        if self.loaded == slot {
            self.loaded = NO_VCPU;
            // Its virtual timer is live in this core's registers: left armed, its
            // level-triggered interrupt would fire with no vCPU to take it, for ever.
            silence_live_virtual_timer();
        }
        if self.fp_owner == slot {
            self.fp_owner = NO_VCPU;
        }
        was_active
    }

    /// Brings every vCPU up to date with its cell's state, delivers fault reports to waiting
    /// supervisors and wakes vCPUs whose virtual timer expired. Returns the time it did so.
    #[inline(always)]
    fn refresh(&mut self) -> u64 {
        let epoch = system::epoch();
        let deliveries = crate::ipc::deliveries_pending(self.index);
        if epoch != self.seen_epoch || self.fault_waiters > 0 || deliveries {
            if let Some(system) = system::system() {
                self.refresh_cells(system, epoch, deliveries);
            }
        }
        let now = timer::now();
        if self.wake.earliest().is_some_and(|earliest| earliest <= now) {
            while let Some(slot) = self.wake.pop_expired(now) {
                self.expire_virtual_timer(slot);
            }
        }
        now
    }

    /// The part of [`refresh`](Self::refresh) that is rarely needed: a cell changed state
    /// (epoch), a supervisor waits for fault reports, or another core left deliveries.
    #[inline(never)]
    fn refresh_cells(&mut self, system: &System, epoch: u32, deliveries: bool) {
        if epoch != self.seen_epoch {
            self.seen_epoch = epoch;
            for slot in 0..self.used as VcpuId {
                self.refresh_generation(system, slot);
            }
        }
        if self.fault_waiters > 0 {
            for slot in 0..self.used as VcpuId {
                self.deliver_fault_report(slot);
            }
        }
        if deliveries {
            for slot in 0..self.used as VcpuId {
                let Some(vcpu) = self.vcpus.get(slot as usize).and_then(Option::as_ref) else {
                    continue;
                };
                let target = VcpuRef::new(vcpu.cell, vcpu.index);
                if let Some(delivery) = crate::ipc::take_delivery(target) {
                    self.apply(slot, delivery);
                }
                self.raise_posted(slot);
                if let Some((entry, context)) = START_REQUESTS[vcpu_index(target)].lock().take() {
                    self.start_slot(slot, entry, context);
                }
            }
        }
    }

    fn refresh_generation(&mut self, system: &System, slot: VcpuId) {
        let Some(vcpu) = self.vcpus.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        let runtime = system::runtime(vcpu.cell);
        let generation = runtime.generation.load(Ordering::Acquire);
        if vcpu.generation == generation {
            return;
        }
        let Some(record) = system.cell(vcpu.cell).map(|info| info.record) else {
            return;
        };
        let restarts = runtime.restarts.load(Ordering::Acquire);
        match runtime.state() {
            CellState::Stopped => {
                vcpu.generation = generation;
                self.deactivate(slot);
            }
            CellState::Restarting if vcpu.index == 0 => {
                let cell = vcpu.cell;
                self.deactivate(slot);
                // Reload only once every other vCPU of the cell has stopped: their cores
                // announce it (below), and this vCPU keeps its old generation until then.
                if runtime.active_vcpus.load(Ordering::Acquire) != 0 {
                    return;
                }
                if record.kind == CellKind::Guest {
                    crate::guest::reset(cell, &record);
                }
                if let Err(error) = system.reload(cell) {
                    crate::error!(
                        "cell {}: reload failed ({error:?}); stopping it",
                        record.name()
                    );
                    runtime.leave_running(CellState::Stopped);
                    return;
                }
                if let Some(vcpu) = self.vcpus.get_mut(slot as usize).and_then(Option::as_mut) {
                    vcpu.reset(&record, generation, restarts);
                }
                runtime.finish_restart();
                self.activate(slot);
                notify_other_cores();
            }
            CellState::Restarting => {
                if self.deactivate(slot) {
                    // The core of vCPU 0 waits for this before reloading the cell.
                    system::state_changed();
                    notify_other_cores();
                }
            }
            CellState::Running => {
                // Restarted by the core of vCPU 0: the other vCPUs of a native cell start
                // again too; a guest's secondaries wait for PSCI CPU_ON.
                self.deactivate(slot);
                if let Some(vcpu) = self.vcpus.get_mut(slot as usize).and_then(Option::as_mut) {
                    vcpu.reset(&record, generation, restarts);
                }
                if record.kind == CellKind::Native {
                    self.activate(slot);
                }
            }
        }
    }

    fn deliver_fault_report(&mut self, slot: VcpuId) {
        let Some(vcpu) = self.vcpus.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        if vcpu.wait != Wait::FaultReport {
            return;
        }
        let Some(report) = system::runtime(vcpu.cell).fault_reports.lock().pop() else {
            return;
        };
        let registers = &mut vcpu.frame.x;
        registers[0] = abi::hvc::STATUS_OK;
        registers[1] = report.cell as u64;
        registers[2] = report.kind as u64;
        registers[3] = report.address;
        registers[4] = report.pc;
        vcpu.wait = Wait::Nothing;
        self.fault_waiters -= 1;
        self.scheduler.wake(slot);
    }

    /// The virtual timer of blocked vCPU `slot` expired: mask it and raise its interrupt.
    fn expire_virtual_timer(&mut self, slot: VcpuId) {
        let loaded = self.loaded == slot;
        let Some(vcpu) = self.vcpus.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        if loaded {
            if !self.live_virtual_timer_fired() {
                // Not fired yet by the timer's own account: wait for it again.
                let deadline = sysreg::cntv_cval_el0::read();
                let _ = self.wake.insert(slot, deadline.max(timer::now() + 1));
                return;
            }
        } else {
            vcpu.el1.cntv_ctl |= TIMER_MASKED;
        }
        self.raise(slot, VIRTUAL_TIMER_INTID, None);
    }

    /// For the loaded vCPU: whether its virtual timer is armed and its condition is met,
    /// as the timer itself reports it (ISTATUS); if so, masks it (the guest re-arms it from
    /// its handler). A timer not yet fired by its own account is left alone: injecting its
    /// interrupt early would make the guest's handler find nothing and leave it masked.
    pub fn live_virtual_timer_fired(&mut self) -> bool {
        let control = sysreg::cntv_ctl_el0::read();
        if control & TIMER_ENABLE == 0 || control & TIMER_MASKED != 0 {
            return false;
        }
        // Writing the control back unchanged makes an emulated timer recompute ISTATUS.
        // SAFETY: the value is the loaded vCPU's own, unchanged.
        unsafe { sysreg::cntv_ctl_el0::write(control) };
        sysreg::isb();
        if sysreg::cntv_ctl_el0::read() & TIMER_CONDITION_MET == 0 {
            return false;
        }
        mask_live_virtual_timer();
        true
    }

    /// Makes virtual interrupt `intid` pending for vCPU `slot` (hardware-linked to physical
    /// `physical`, if any) and wakes it if it waits for an interrupt; returns whether it did.
    pub fn raise(&mut self, slot: VcpuId, intid: u32, physical: Option<u32>) -> bool {
        let loaded = self.loaded == slot;
        let raised = (loaded && self.raise_into_list_registers(slot, intid, physical))
            || self.raise_in_software(slot, intid, physical);
        let Some(vcpu) = self.vcpus.get_mut(slot as usize).and_then(Option::as_mut) else {
            return false;
        };
        let woken = raised && vcpu.wait == Wait::Interrupt;
        if woken {
            vcpu.wait = Wait::Nothing;
            self.wake.remove(slot);
            self.scheduler.wake(slot);
        }
        woken
    }

    /// Raises `intid` for vCPU `slot` in its software state; a loaded vCPU's list registers
    /// are taken back first and loaded again after. Returns whether it was raised.
    #[inline(never)]
    fn raise_in_software(&mut self, slot: VcpuId, intid: u32, physical: Option<u32>) -> bool {
        let loaded = self.loaded == slot;
        if loaded {
            self.take_list_registers(slot);
        }
        let Some(vcpu) = self.vcpus.get_mut(slot as usize).and_then(Option::as_mut) else {
            return false;
        };
        let raised = vcpu
            .interrupts
            .raise(intid, VIRTUAL_PRIORITY, physical)
            .is_ok();
        vcpu.interrupts_active |= raised;
        if loaded {
            self.give_list_registers(slot);
        }
        raised
    }

    /// Raises `intid` for the loaded vCPU `slot` by writing one list register, when
    /// `kcore::vgic` finds that enough (see `raise_direct`); false if the caller must take
    /// the list registers back, raise and load them.
    fn raise_into_list_registers(
        &mut self,
        slot: VcpuId,
        intid: u32,
        physical: Option<u32>,
    ) -> bool {
        let live = self.live_list_registers;
        let Some(vcpu) = self.vcpus.get_mut(slot as usize).and_then(Option::as_mut) else {
            return false;
        };
        let empty = vgic::empty_list_registers();
        let read = |index| kcore::vgic::ListRegister(vgic::read_list_register(index));
        match vcpu
            .interrupts
            .raise_direct(intid, VIRTUAL_PRIORITY, physical, empty, read)
        {
            DirectRaise::Merged => true,
            DirectRaise::Write { index, value } => {
                vgic::write_list_register(index, value.0);
                vcpu.interrupts_active = true;
                self.live_list_registers = live.max(index + 1);
                true
            }
            DirectRaise::Unavailable => false,
        }
    }

    /// Raises the virtual interrupts other cores posted for this core's vCPUs
    /// ([`SGI_POSTED`]); returns whether that woke one (the core must choose again).
    pub fn raise_posted_interrupts(&mut self) -> bool {
        let mut woken = false;
        for slot in 0..self.used as VcpuId {
            woken |= self.raise_posted(slot);
        }
        woken
    }

    /// Raises the virtual interrupts posted for vCPU `slot`; returns whether that woke it.
    fn raise_posted(&mut self, slot: VcpuId) -> bool {
        let Some(vcpu) = self.vcpus.get(slot as usize).and_then(Option::as_ref) else {
            return false;
        };
        let target = VcpuRef::new(vcpu.cell, vcpu.index);
        let mut woken = false;
        take_posted_interrupts(target, |intid| woken |= self.raise(slot, intid, None));
        woken
    }

    /// Refills the loaded vCPU's list registers (maintenance interrupt: they ran short).
    pub fn refill_list_registers(&mut self) {
        let Some(slot) = self.loaded_id() else {
            return;
        };
        self.take_list_registers(slot);
        self.give_list_registers(slot);
    }

    /// Reads the live list registers back into vCPU `slot`'s record (it must be the loaded
    /// one). Nothing to do when none may hold anything.
    fn take_list_registers(&mut self, slot: VcpuId) {
        let (live, count) = (self.live_list_registers, self.list_registers);
        if live == 0 {
            return;
        }
        let Some(vcpu) = self.vcpus.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        let registers = &mut vcpu.interface.list_registers[..count];
        vgic::save_list_registers(registers, live);
        for register in &mut registers[live..] {
            *register = kcore::vgic::ListRegister::EMPTY;
        }
        vcpu.interrupts.save(registers);
    }

    /// Loads vCPU `slot`'s virtual interrupts into the list registers (it is being entered
    /// or is loaded), writing only registers that change, and arms the underflow
    /// maintenance interrupt if some did not fit.
    fn give_list_registers(&mut self, slot: VcpuId) {
        let (live, count) = (self.live_list_registers, self.list_registers);
        let Some(vcpu) = self.vcpus.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        let vcpu_guest = vcpu.guest;
        if !vcpu.interrupts_active || vcpu.interrupts.is_quiet() {
            vcpu.interrupts_active = false;
            if live > 0 {
                vgic::load_list_registers(
                    &[kcore::vgic::ListRegister::EMPTY; kcore::vgic::MAX_LIST_REGISTERS],
                    live,
                );
            }
            self.live_list_registers = 0;
            vcpu.interrupts.load_quiet(count);
            vgic::enable(false, vcpu_guest);
            return;
        }
        let registers = &mut vcpu.interface.list_registers[..count];
        let outcome = vcpu.interrupts.load(registers);
        vgic::load_list_registers(registers, outcome.used.max(live));
        self.live_list_registers = outcome.used;
        vgic::enable(outcome.overflow, vcpu_guest);
    }

    /// The loaded vCPU executed WFI: returns true if it blocked (the core must choose again),
    /// false if an interrupt is already pending and it continues.
    pub fn wait_for_interrupt(&mut self) -> bool {
        // `NO_VCPU` fails `loaded_mut` below (and refilling does nothing then).
        let slot = self.loaded;
        self.refill_list_registers();
        let Some(vcpu) = self.loaded_mut() else {
            return true;
        };
        if vcpu.interrupts.has_pending() {
            return false;
        }
        let control = sysreg::cntv_ctl_el0::read();
        let armed = control & TIMER_ENABLE != 0 && control & TIMER_MASKED == 0;
        if armed && control & TIMER_CONDITION_MET != 0 {
            mask_live_virtual_timer();
            self.raise(slot, VIRTUAL_TIMER_INTID, None);
            return false;
        }
        if armed {
            // Native cells run with CNTVOFF = 0: the virtual deadline is the physical one.
            let deadline = sysreg::cntv_cval_el0::read();
            if self.wake.insert(slot, deadline).is_err() {
                return false;
            }
        }
        if let Some(vcpu) = self.loaded_mut() {
            vcpu.wait = Wait::Interrupt;
        }
        self.scheduler.block(slot);
        true
    }

    /// The loaded vCPU waits for a fault report (FAULT_WAIT); returns true if it blocked.
    pub fn wait_for_fault_report(&mut self) -> bool {
        let slot = self.loaded;
        let Some(vcpu) = self.loaded_mut() else {
            return true;
        };
        if vcpu.wait != Wait::FaultReport {
            vcpu.wait = Wait::FaultReport;
            self.fault_waiters += 1;
        }
        self.deliver_fault_report(slot);
        let still_waiting = self
            .loaded()
            .is_some_and(|vcpu| vcpu.wait == Wait::FaultReport);
        if still_waiting {
            self.scheduler.block(slot);
        }
        still_waiting
    }

    /// The frame the current exception returns to: the loaded vCPU's, in its record, which
    /// the vectors then also save the next exception into. The record must stay untouched
    /// until the return (only this core touches its vCPUs).
    pub fn resume_frame(&mut self) -> *const Frame {
        self.regs()
    }
}

/// Disables the virtual timer in this core's registers (no vCPU owns them now).
pub fn silence_live_virtual_timer() {
    // SAFETY: the registers belong to no vCPU any more (the next one loaded restores its
    // own); disabling the timer only stops an interrupt nobody would take.
    unsafe { sysreg::cntv_ctl_el0::write(0) };
}

fn mask_live_virtual_timer() {
    let control = sysreg::cntv_ctl_el0::read();
    // SAFETY: setting IMASK in the loaded vCPU's virtual timer only silences its interrupt
    // until the cell re-arms the timer (as the architecture lets software do).
    unsafe { sysreg::cntv_ctl_el0::write(control | TIMER_MASKED) };
}

/// Every core's state. Built at compile time: a core's state is far larger than the boot
/// stack could hold as a temporary, and the image carries the kernel's whole footprint
/// anyway (the boot plan follows it), so initialised data costs nothing extra.
static CORES: [CoreLock; crate::arch::entry::MAX_CORES] = {
    let mut cores = [const { SpinMutex::new(CoreState::new(0)) }; crate::arch::entry::MAX_CORES];
    let mut index = 0;
    while index < cores.len() {
        cores[index] = SpinMutex::new(CoreState::new(index));
        index += 1;
    }
    cores
};

/// An IPC hand-off decided and committed but for the switch ([`CoreState::switch_for`]):
/// from, to, what the switch needs of `to`, and `to`'s frame.
#[must_use = "the scheduler already runs `to`: the core must switch to it"]
pub struct HandOff(VcpuId, VcpuId, switch::Incoming, *const Frame);

/// A core's state behind its lock. The lock orders the boot core's writes (`populate`)
/// before the core's own first use and serves the cold paths ([`lock_core`]); an exception
/// entry takes its core's state through [`EntryState`] instead, without the lock.
pub type CoreLock = SpinMutex<CoreState>;

/// What the vectors pass to an exception entry: this core's state, as the core block names
/// it (written by `exception::enter` for this core). Rust code never makes one (it has no
/// constructor) nor copies one, so an exception's entry holds exactly one.
#[repr(transparent)]
pub struct EntryState(&'static CoreLock);

impl EntryState {
    /// This core's state, for the rest of the exception.
    ///
    /// Nothing else refers to it while the exception runs. Once the cores run, only a core
    /// uses its own state (other cores reach it through the posted-interrupt, start-request
    /// and inbox mailboxes and SGIs); exceptions do not nest at EL2; `lock_core` is taken
    /// only outside every entry (boot, `run` before the first exception, and
    /// `lower_unexpected`, an entry of its own); and `run` took the lock before this core's
    /// first exception, which ordered the boot core's writes before it.
    #[inline(always)]
    pub fn take(self) -> &'static mut CoreState {
        // SAFETY: the only reference to this core's state while its exception runs (see
        // above); `self` is consumed, so the exception's entry makes it once.
        unsafe { &mut *self.0.as_mut_ptr() }
    }
}

/// The state of core `index` (masked into range).
pub fn core(index: usize) -> &'static CoreLock {
    &CORES[index % CORES.len()]
}

/// Core `index`'s state, locked, for the cold paths (boot, a core's first entry, a cell's
/// exception the kernel does not expect); the other entries take it without the lock
/// ([`EntryState::take`]).
#[inline(never)]
pub fn lock_core(index: usize) -> SpinMutexGuard<'static, CoreState> {
    core(index).lock()
}

/// Where every vCPU lives, by `cell * MAX_VCPUS_PER_CELL + vcpu`: its core << 8 | its slot
/// on that core (`u16::MAX`: nowhere). Written once by `populate` before the other cores start.
static VCPU_PLACE: [AtomicU16; abi::plan::MAX_CELLS * abi::plan::MAX_VCPUS_PER_CELL] =
    [const { AtomicU16::new(u16::MAX) }; abi::plan::MAX_CELLS * abi::plan::MAX_VCPUS_PER_CELL];

/// The place word of slot `slot` on core `core`.
fn place_word(core: usize, slot: VcpuId) -> u16 {
    (core as u16) << 8 | slot
}

fn vcpu_index(target: VcpuRef) -> usize {
    (target.cell as usize * abi::plan::MAX_VCPUS_PER_CELL + target.vcpu as usize) % VCPU_PLACE.len()
}

/// The place word of vCPU `target` (its core << 8 | its slot); `u16::MAX`, whose core 255 is
/// no core's index (there are `MAX_CORES`), if it lives nowhere, so that
/// [`CoreState::slot_at`] needs no test of its own for that.
// Inlined: it sits on the IPC fast path.
#[inline(always)]
fn place_of(target: VcpuRef) -> Option<u16> {
    if target.vcpu as usize >= abi::plan::MAX_VCPUS_PER_CELL {
        return None;
    }
    Some(VCPU_PLACE[vcpu_index(target)].load(Ordering::Acquire))
}

/// The core that owns vCPU `target`.
pub fn core_of(target: VcpuRef) -> Option<usize> {
    place_of(target).and_then(|place| (place != u16::MAX).then_some(usize::from(place >> 8)))
}

/// Virtual interrupts raised by another core for a vCPU, waiting for its core: a bit per
/// INTID below 64 (SGIs, PPIs and the first SPIs: none may be lost, an IPI is a wake-up),
/// and a short list for higher INTIDs (level-style device and notification interrupts,
/// raised again while their source stays active).
struct Posted {
    low: u64,
    high: [u16; 4],
}

static POSTED_INTERRUPTS: [Mutex<Posted>; abi::plan::MAX_CELLS * abi::plan::MAX_VCPUS_PER_CELL] = [const {
    Mutex::new(Posted {
        low: 0,
        high: [0; 4],
    })
};
    abi::plan::MAX_CELLS * abi::plan::MAX_VCPUS_PER_CELL];

/// Raises virtual interrupt `intid` in vCPU `target`: at once if this core owns it, else
/// through its core's posted interrupts and a reschedule SGI to that core.
pub fn raise_anywhere(core: &mut CoreState, target: VcpuRef, intid: u32) {
    match core_of(target) {
        Some(owner) if owner == core.index => {
            if let Some(slot) = core.slot_of(target.cell as usize, target.vcpu) {
                core.raise(slot, intid, None);
            }
        }
        Some(owner) => {
            post_virtual_interrupt(target, intid);
            interrupt_core(owner, SGI_POSTED);
        }
        None => {}
    }
}

/// Each core's `ICC_SGI1R_EL1` target fields ([`gic::sgi_target`]), set at boot.
static SGI_TARGETS: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];

/// Sends SGI `intid` to core `owner`.
pub fn interrupt_core(owner: usize, intid: u32) {
    if let Some(target) = SGI_TARGETS.get(owner) {
        gic::send_sgi(intid, target.load(Ordering::Relaxed));
    }
}

/// Leaves virtual interrupt `intid` for `target`'s core to raise (the caller then signals
/// that core).
fn post_virtual_interrupt(target: VcpuRef, intid: u32) {
    let mut posted = POSTED_INTERRUPTS[vcpu_index(target)].lock();
    if intid < 64 {
        posted.low |= 1 << intid;
        return;
    }
    let intid = intid as u16;
    if posted.high.contains(&intid) {
        return;
    }
    if let Some(free) = posted.high.iter_mut().find(|slot| **slot == 0) {
        *free = intid;
    }
}

/// Takes every interrupt posted for `target`, then calls `raise` for each.
fn take_posted_interrupts(target: VcpuRef, mut raise: impl FnMut(u32)) {
    let (mut low, high) = {
        let mut posted = POSTED_INTERRUPTS[vcpu_index(target)].lock();
        let taken = (posted.low, posted.high);
        posted.low = 0;
        posted.high = [0; 4];
        taken
    };
    while low != 0 {
        let intid = low.trailing_zeros();
        low &= low - 1;
        raise(intid);
    }
    // Usually none: one comparison instead of the scan.
    if high != [0; 4] {
        for intid in high.into_iter().filter(|intid| *intid != 0) {
            raise(intid as u32);
        }
    }
}

/// PSCI CPU_ON requests for vCPUs of another core: `(entry, context)`.
static START_REQUESTS: [Mutex<Option<(u64, u64)>>;
    abi::plan::MAX_CELLS * abi::plan::MAX_VCPUS_PER_CELL] =
    [const { Mutex::new(None) }; abi::plan::MAX_CELLS * abi::plan::MAX_VCPUS_PER_CELL];

/// Starts vCPU `target` at `entry` with x0 = `context`, on whichever core owns it.
pub fn start(core: &mut CoreState, target: VcpuRef, entry: u64, context: u64) {
    match core_of(target) {
        Some(owner) if owner == core.index => {
            if let Some(slot) = core.slot_of(target.cell as usize, target.vcpu) {
                core.start_slot(slot, entry, context);
            }
        }
        Some(owner) => {
            *START_REQUESTS[vcpu_index(target)].lock() = Some((entry, context));
            crate::ipc::wake_owner(owner);
        }
        None => {}
    }
}

/// Scheduling parameters of a cell, converted to counter ticks.
fn scheduling(record: &CellRecord, frequency: u64) -> SchedParams {
    let ticks = |microseconds: u32| microseconds as u64 * frequency / 1_000_000;
    if record.period_us == 0 {
        return SchedParams::unlimited(record.priority);
    }
    SchedParams {
        priority: record.priority,
        budget: ticks(record.budget_us).max(1),
        period: ticks(record.period_us).max(1),
    }
}

/// Where each vCPU runs: `(cell, vCPU index, core)`.
pub fn placement(
    system: &System,
    core_count: usize,
) -> impl Iterator<Item = (usize, u8, usize)> + '_ {
    let mut next_core = 0;
    (0..system.plan.cell_count())
        .flat_map(move |cell| {
            let record = system.plan.cell(cell);
            (0..record.vcpu_count)
                .map(move |index| (cell, index, record.vcpu_cores[index as usize]))
        })
        .map(move |(cell, index, pinned)| {
            let core = if pinned == ANY_CORE {
                next_core = (next_core + 1) % core_count.max(1);
                next_core
            } else {
                pinned as usize
            };
            (cell, index, core)
        })
}

/// Creates every cell's vCPUs on their cores and starts the ones that run at boot. Boot
/// core only, before other cores start. Returns how many vCPUs were started.
pub fn populate(system: &'static System, core_count: usize, timeslice: u64) -> usize {
    let list_registers = vgic::list_register_count();
    if let Some(platform) = crate::platform() {
        for (target, &mpidr) in SGI_TARGETS
            .iter()
            .zip(&platform.cores[..platform.core_count])
        {
            target.store(gic::sgi_target(mpidr), Ordering::Relaxed);
        }
    }
    for index in 0..CORES.len() {
        let mut state = lock_core(index);
        state.scheduler = Scheduler::new(timeslice);
        state.list_registers = list_registers;
    }
    let frequency = timer::frequency();
    let mut started = 0;
    for (cell, index, target) in placement(system, core_count) {
        let Some(info) = system.cell(cell) else {
            continue;
        };
        let record = info.record;
        let boot_argument = if record.kind == CellKind::Guest {
            crate::guest::create(cell, &record);
            crate::guest::device_tree_ipa(system, &record)
        } else {
            index as u64
        };
        let mut vcpu = Vcpu::new(
            cell,
            index,
            &info.record,
            info.vttbr,
            scheduling(&record, frequency),
            boot_argument,
        );
        vcpu.reset(&record, 0, 0);
        let mut state = lock_core(target);
        let Some(slot) = state.add(vcpu) else {
            crate::error!(
                "cell {}: core {target} has no room for vCPU {index}",
                record.name()
            );
            continue;
        };
        VCPU_PLACE[vcpu_index(VcpuRef::new(cell, index))]
            .store(place_word(target, slot), Ordering::Release);
        // A guest starts with its boot vCPU only; the others wait for PSCI CPU_ON.
        if record.kind == CellKind::Native || index == 0 {
            state.activate(slot);
            started += 1;
            crate::info!(
                "cell {}: started vCPU {index} on core {target} (priority {}, {} KiB RAM at {:#x})",
                record.name(),
                record.priority,
                info.ram.size() / 1024,
                info.ram.pa()
            );
        }
    }
    // A guest vCPU alone on its core has nobody to give the core to: its WFI need not trap
    // (the core then waits in the guest, and an interrupt for it still arrives at EL2 first),
    // which spares each of its idle periods a switch out and back of its whole EL1 context.
    // A native vCPU's switch is cheap, and waiting in the kernel wakes it sooner.
    for index in 0..CORES.len() {
        let mut state = lock_core(index);
        if let (1, Some(vcpu)) = (state.used, state.vcpus[0].as_mut()) {
            if vcpu.guest {
                vcpu.hcr &= !HCR_TWI;
            }
        }
    }
    started
}

/// Chooses what this core runs next and loads it into the registers; idles
/// (handling interrupts) while nothing is runnable.
pub fn schedule(core: &mut CoreState) {
    loop {
        let now = core.refresh();
        let choice = core.scheduler.choose(now);
        core.arm_timer(choice.next_event);
        if let Some(next) = choice.run {
            core.switch_to(next);
            if core.loaded == next {
                return;
            }
            // The chosen vCPU vanished between choose and switch: choose again.
            core.deactivate(next);
            continue;
        }
        let interface = vgic::pause();
        sysreg::wait_for_interrupt();
        vgic::resume(interface);
        crate::trap::handle_pending_interrupts(core);
    }
}

/// Sends the reschedule SGI so other cores update their vCPUs promptly.
pub fn notify_other_cores() {
    gic::send_sgi_to_others(SGI_RESCHEDULE);
}
