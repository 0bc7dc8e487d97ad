//! Capabilities, IPC endpoints and notifications at run time: the hypercalls that use them,
//! the objects' state, and delivery to vCPUs that may live on other cores.
//!
//! Invariants:
//! - Every operation first checks the caller's capability (slot in its table, kind, right)
//!   through `kcore::capability`; a refusal counts a denial for the cell and has no effect.
//! - The objects' state machines (`kcore::ipc`, `kcore::notification`) decide; this module
//!   moves registers and blocks or wakes vCPUs. Each object is behind its own lock; lock
//!   order is core → object → inbox.
//! - A vCPU's registers are written only by the core that owns it. What another core must
//!   hand to a vCPU (a call, a reply, an error, notification bits) goes into the vCPU's
//!   inbox; the owning core applies it before it next chooses what to run.

use crate::arch::exception::Frame;
use crate::system::{self, System};
use crate::vcpu::{self, CoreState};
use abi::hvc::{CapabilityKind, HvcError, MESSAGE_WORDS, STATUS_OK};
use abi::plan::{
    CellKind, CellRecord, MAX_CAPABILITIES, MAX_CELLS, MAX_ENDPOINTS, MAX_NOTIFICATIONS,
    MAX_VCPUS_PER_CELL,
};
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use kcore::capability::{check, describe, CapabilityView, IpcRoutes};
use kcore::ipc::{CallOutcome, Endpoint, Message, VcpuRef};
use kcore::notification::Notification;
use kcore::sched::VcpuId;
use spin::Mutex;

/// What a blocked vCPU receives when its wait ends.
#[derive(Clone, Copy, Debug)]
pub enum Delivery {
    /// A call to the endpoint this server waits on: x1 = badge, x2..x5 = message.
    Call {
        /// The caller's badge.
        badge: u32,
        /// The message.
        message: Message,
    },
    /// The reply to this caller's call: x1..x4.
    Reply {
        /// The reply words.
        message: Message,
    },
    /// The wait ended with an error (e.g. the server faulted).
    Error(HvcError),
    /// Notification bits: x1.
    Bits(u64),
}

impl Delivery {
    /// Writes the delivery into a vCPU's registers as the return of its blocking call.
    pub fn write_to(self, registers: &mut [u64; 31]) {
        registers[0] = STATUS_OK;
        match self {
            Delivery::Call { badge, message } => {
                registers[1] = badge as u64;
                registers[2..2 + MESSAGE_WORDS].copy_from_slice(&message);
            }
            Delivery::Reply { message } => {
                registers[1..1 + MESSAGE_WORDS].copy_from_slice(&message)
            }
            Delivery::Error(error) => registers[0] = error.code(),
            Delivery::Bits(bits) => registers[1] = bits,
        }
    }
}

static ENDPOINTS: [Mutex<Endpoint>; MAX_ENDPOINTS] =
    [const { Mutex::new(Endpoint::new()) }; MAX_ENDPOINTS];
static NOTIFICATIONS: [Mutex<Notification>; MAX_NOTIFICATIONS] =
    [const { Mutex::new(Notification::new()) }; MAX_NOTIFICATIONS];
static INBOXES: [Mutex<Option<Delivery>>; MAX_CELLS * MAX_VCPUS_PER_CELL] =
    [const { Mutex::new(None) }; MAX_CELLS * MAX_VCPUS_PER_CELL];
static INBOX_PENDING: [AtomicBool; crate::arch::entry::MAX_CORES] =
    [const { AtomicBool::new(false) }; crate::arch::entry::MAX_CORES];

fn inbox(target: VcpuRef) -> &'static Mutex<Option<Delivery>> {
    let index = target.cell as usize * MAX_VCPUS_PER_CELL + target.vcpu as usize;
    &INBOXES[index % INBOXES.len()]
}

/// Takes the delivery waiting for `target`, if any.
pub fn take_delivery(target: VcpuRef) -> Option<Delivery> {
    inbox(target).lock().take()
}

/// Whether another core left deliveries for this core's vCPUs (and forgets that it did).
pub fn deliveries_pending(core: usize) -> bool {
    // A plain load first: the flag is almost always clear, and the swap's exclusive
    // access is dearer.
    INBOX_PENDING
        .get(core)
        .is_some_and(|flag| flag.load(Ordering::Relaxed) && flag.swap(false, Ordering::AcqRel))
}

/// Hands `delivery` to `target`: directly if it lives on this core (returning its slot),
/// else through its inbox and an interrupt to its core.
#[inline(always)]
fn deliver(core: &mut CoreState, target: VcpuRef, delivery: Delivery) -> Option<VcpuId> {
    match vcpu::core_of(target) {
        Some(owner) if owner == core.index => {
            let slot = core.slot_of(target.cell as usize, target.vcpu)?;
            core.apply(slot, delivery);
            Some(slot)
        }
        Some(owner) => {
            post(owner, target, delivery);
            None
        }
        None => None,
    }
}

fn post(owner: usize, target: VcpuRef, delivery: Delivery) {
    *inbox(target).lock() = Some(delivery);
    wake_owner(owner);
}

/// Tells core `owner` that it has deliveries to apply, and interrupts it so it does so now.
pub fn wake_owner(owner: usize) {
    if let Some(flag) = INBOX_PENDING.get(owner) {
        flag.store(true, Ordering::Release);
    }
    vcpu::interrupt_core(owner, vcpu::SGI_RESCHEDULE);
}

/// Checks that `cell` holds in `slot` a capability of `kind` with `right`, counting a
/// denial if not.
fn capability(
    cell: usize,
    record: &CellRecord,
    slot: u64,
    kind: CapabilityKind,
    right: u64,
) -> Result<CapabilityView, HvcError> {
    let lookup = |slot: usize| record.capability_index(slot).and_then(cached_capability);
    check(record.capability_count as usize, slot, lookup, kind, right).map_err(|error| {
        system::runtime(cell).count_denial();
        error.to_hvc()
    })
}

/// Every cell's capability records, decoded once at boot (the plan stores them as bytes):
/// word 0 = kind | rights << 8 | object << 16, word 1 = badge; 0 means not filled.
static CAPABILITY_CACHE: [[AtomicU64; 2]; MAX_CAPABILITIES] =
    [const { [AtomicU64::new(0), AtomicU64::new(0)] }; MAX_CAPABILITIES];

/// The server cell of every endpoint, read once at boot from the plan.
static ENDPOINT_SERVER: [AtomicU16; MAX_ENDPOINTS] = [const { AtomicU16::new(0) }; MAX_ENDPOINTS];

/// Every notification's virtual interrupt, read once at boot from the plan: 0 for none, else
/// `irq | waiter cell << 16 | waiter vCPU << 32`, with [`GUEST_WAITER`] if the waiter is a
/// guest (its distributor then decides the delivery).
static NOTIFICATION_IRQ: [AtomicU64; MAX_NOTIFICATIONS] =
    [const { AtomicU64::new(0) }; MAX_NOTIFICATIONS];
const GUEST_WAITER: u64 = 1 << 48;

/// Decodes every capability record into [`CAPABILITY_CACHE`], every endpoint's server into
/// [`ENDPOINT_SERVER`] and every notification's interrupt into [`NOTIFICATION_IRQ`]. Boot
/// core, before any cell runs.
pub fn cache_capabilities(system: &System) {
    let notifications = NOTIFICATION_IRQ.iter().enumerate();
    for (index, target) in notifications.take(system.plan.notification_count()) {
        let record = system.plan.notification(index);
        let waiter = system
            .cell(record.waiter.into())
            .map(|info| info.record.kind);
        let guest = if waiter == Some(CellKind::Guest) {
            GUEST_WAITER
        } else {
            0
        };
        let word = record.virtual_irq().map_or(0, |irq| {
            guest | u64::from(irq) | u64::from(record.waiter) << 16 | u64::from(record.vcpu) << 32
        });
        target.store(word, Ordering::Relaxed);
    }
    for (index, server) in ENDPOINT_SERVER
        .iter()
        .enumerate()
        .take(system.plan.endpoint_count())
    {
        server.store(system.plan.endpoint(index).server, Ordering::Relaxed);
    }
    for (index, entry) in CAPABILITY_CACHE
        .iter()
        .enumerate()
        .take(system.plan.capability_count())
    {
        let record = system.plan.capability_record(index);
        let word = record.kind as u64 | (record.rights as u64) << 8 | (record.object as u64) << 16;
        entry[0].store(word, Ordering::Relaxed);
        entry[1].store(record.badge as u64, Ordering::Relaxed);
    }
}

/// The pre-decoded endpoint and notification routes of a vCPU of the cell `record`
/// describes, from the cache ([`cache_capabilities`] ran). Boot core, while placing vCPUs.
pub fn routes_of(record: &CellRecord) -> IpcRoutes {
    IpcRoutes::decode(
        record.capability_count as usize,
        |slot| record.capability_index(slot).and_then(cached_capability),
        |endpoint| ENDPOINT_SERVER[endpoint as usize % MAX_ENDPOINTS].load(Ordering::Relaxed),
    )
}

fn cached_capability(index: usize) -> Option<CapabilityView> {
    let entry = CAPABILITY_CACHE.get(index)?;
    let word = entry[0].load(Ordering::Relaxed);
    Some(cached_view(
        CapabilityKind::from_code(word & 0xff)?,
        word,
        entry,
    ))
}

/// The capability of `kind` whose cache entry is `entry` (`word` its first word, loaded).
#[inline(always)]
fn cached_view(kind: CapabilityKind, word: u64, entry: &[AtomicU64; 2]) -> CapabilityView {
    CapabilityView {
        kind,
        rights: (word >> 8) & 0xff,
        object: (word >> 16) as u32,
        badge: entry[1].load(Ordering::Relaxed) as u32,
    }
}

/// The caller of an IPC hypercall.
pub struct Caller<'a> {
    /// Its cell.
    pub cell: usize,
    /// Its vCPU index.
    pub vcpu: u8,
    /// Its cell's record.
    pub record: &'a CellRecord,
}

impl Caller<'_> {
    fn reference(&self) -> VcpuRef {
        VcpuRef::new(self.cell, self.vcpu)
    }
}

/// The IPC fast path: a native vCPU's CALL (`number`) to an endpoint whose server waits on
/// this core, or its REPLY_WAIT to a caller on this core with no call queued (from the
/// server that took the endpoint's last call), when the scheduler is certain the other side
/// runs next. The message goes register to register, the endpoint commits, and the core
/// switches last (so that nothing is held across the switch's calls). Every decision is the
/// general path's own, made by the objects' one-step forms (`Endpoint::first_waiting`,
/// `Endpoint::reply_and_wait_for_running`, `Scheduler::block_wake_hand_off`, each checked
/// against its general form by randomized tests; the endpoint's two are O(1) because the
/// vCPU that makes the call is running, so blocked nowhere), and the capability's from the
/// vCPU's pre-decoded routes (`IpcRoutes`). Returns the frame to resume from; `None`, having
/// changed nothing, in every other case (a refused capability too: the general path counts
/// the denial).
#[inline(always)]
pub fn fast_path(core: &mut CoreState, number: u64) -> Option<*const Frame> {
    let call = number == abi::hvc::CALL;
    let right = if call {
        abi::hvc::ENDPOINT_CALL
    } else {
        abi::hvc::ENDPOINT_SERVE
    };
    let (from, me, route, message) = core.loaded_ipc_route(right)?;
    let index = route.endpoint as usize % MAX_ENDPOINTS;
    let mut endpoint = ENDPOINTS[index].lock();
    if call {
        if system::runtime(route.server_cell as usize).state() != system::CellState::Running {
            return None;
        }
        // The caller runs (it made this call), so it is blocked nowhere.
        let first = endpoint.first_waiting()?;
        let to = core.slot_at(first.place())?;
        let handed = core.ipc_hand_off(from, to, |registers| {
            Delivery::Call {
                badge: route.badge,
                message,
            }
            .write_to(registers)
        })?;
        first.deliver(me);
        drop(endpoint);
        Some(core.switch_for(handed))
    } else {
        // The server runs (it made this call), so it is not itself blocked as a caller.
        let (server, peer) = endpoint.reply_and_wait_for_running(me)?;
        let to = core.slot_of(peer.cell as usize, peer.vcpu)?;
        let handed = core.ipc_hand_off(from, to, |registers| {
            Delivery::Reply { message }.write_to(registers)
        })?;
        endpoint.wait_after_reply(server);
        drop(endpoint);
        Some(core.switch_for(handed))
    }
}

/// CALL: returns whether the core must choose again.
pub fn call(
    core: &mut CoreState,
    caller: &Caller<'_>,
    slot: u64,
    message: Message,
) -> Result<bool, HvcError> {
    let cap = capability(
        caller.cell,
        caller.record,
        slot,
        CapabilityKind::Endpoint,
        abi::hvc::ENDPOINT_CALL,
    )?;
    call_endpoint(core, caller.reference(), cap, message)
}

/// The endpoint call capability in slot `slot` of guest cell `record`, which serves its
/// virtio-mmio slot `slot` (`abi::device`); `None` if there is none (the window is empty).
/// Looking counts no denial: the guest named no capability.
pub fn device_endpoint(record: &CellRecord, slot: usize) -> Option<CapabilityView> {
    record
        .capability_index(slot)
        .and_then(cached_capability)
        .filter(|cap| {
            cap.kind == CapabilityKind::Endpoint && cap.rights & abi::hvc::ENDPOINT_CALL != 0
        })
}

/// A call through endpoint capability `cap` by `caller` (the loaded vCPU), whose capability
/// was checked: blocks the caller, delivers the call or queues it. Returns whether the core
/// must choose again.
pub fn call_endpoint(
    core: &mut CoreState,
    caller: VcpuRef,
    cap: CapabilityView,
    message: Message,
) -> Result<bool, HvcError> {
    let index = cap.object as usize % MAX_ENDPOINTS;
    let server_cell = ENDPOINT_SERVER[index].load(Ordering::Relaxed) as usize;
    let server_running = system::runtime(server_cell).state() == system::CellState::Running;
    let outcome = ENDPOINTS[index]
        .lock()
        .call(caller, message, cap.badge, server_running)
        .map_err(|error| error.to_hvc())?;
    core.block_loaded();
    if let CallOutcome::Deliver { server } = outcome {
        let delivery = Delivery::Call {
            badge: cap.badge,
            message,
        };
        deliver(core, server, delivery);
    }
    Ok(true)
}

/// REPLY_WAIT: returns whether the core must choose again.
pub fn reply_wait(
    core: &mut CoreState,
    server: &Caller<'_>,
    slot: u64,
    reply: Message,
) -> Result<bool, HvcError> {
    let cap = capability(
        server.cell,
        server.record,
        slot,
        CapabilityKind::Endpoint,
        abi::hvc::ENDPOINT_SERVE,
    )?;
    let place = core.loaded_place();
    let outcome = ENDPOINTS[cap.object as usize % MAX_ENDPOINTS]
        .lock()
        .reply_wait(server.reference(), place)
        .map_err(|error| error.to_hvc())?;
    if let Some(caller) = outcome.reply_to {
        deliver(core, caller, Delivery::Reply { message: reply });
    }
    match outcome.next {
        Some(pending) => {
            Delivery::Call {
                badge: pending.badge,
                message: pending.message,
            }
            .write_to(&mut core.regs().x);
            // A woken caller on this core may outrank the server.
            Ok(outcome.reply_to.is_some())
        }
        None => {
            core.block_loaded();
            Ok(true)
        }
    }
}

/// The loaded vCPU and the notification whose capability it holds in `slot` with `right`
/// (SIGNAL or WAIT: a poll takes the wait right): from the vCPU's routes, else by the
/// general check, which counts a denial.
#[inline(always)]
pub fn loaded_notification(
    core: &CoreState,
    slot: u64,
    right: u64,
) -> Result<(VcpuRef, usize), HvcError> {
    if let Some((me, index)) = core.loaded_notification_route(slot, right) {
        return Ok((me, index.into()));
    }
    let (me, record) = core.loaded_party().ok_or(HvcError::Denied)?;
    let kind = CapabilityKind::Notification;
    let cap = capability(me.cell.into(), record, slot, kind, right)?;
    Ok((me, cap.object as usize))
}

/// SIGNAL of notification `index` with `bits` by the loaded vCPU, whose capability was
/// checked: the waiter gets the bits (and the notification's virtual interrupt, if it has
/// one). Returns whether the core must choose again.
pub fn signal_notification(core: &mut CoreState, index: usize, bits: u64) -> bool {
    let index = index % MAX_NOTIFICATIONS;
    let woken = NOTIFICATIONS[index].lock().signal(bits);
    core.regs().x[0] = STATUS_OK;
    let target = NOTIFICATION_IRQ[index].load(Ordering::Relaxed);
    let irq = target as u16 as u32;
    let waiter = VcpuRef::new((target >> 16) as u16 as usize, (target >> 32) as u8);
    if target & GUEST_WAITER != 0 {
        crate::guest::raise_interrupt(core, waiter.cell as usize, irq);
    } else if target != 0 {
        vcpu::raise_anywhere(core, waiter, irq);
    }
    match woken {
        // A waiter of this core that now outranks the signaller runs at once.
        Some((waiter, bits)) => {
            deliver(core, waiter, Delivery::Bits(bits)).is_none_or(|slot| !core.wake_hand_off(slot))
        }
        None => false,
    }
}

/// WAIT (blocking) or POLL on notification `index` by the loaded vCPU `waiter`, whose
/// capability was checked. Returns whether the core must choose again.
pub fn wait_notification(
    core: &mut CoreState,
    waiter: VcpuRef,
    index: usize,
    block: bool,
) -> Result<bool, HvcError> {
    let mut notification = NOTIFICATIONS[index % MAX_NOTIFICATIONS].lock();
    if !block {
        let registers = core.regs();
        registers.x[0] = STATUS_OK;
        registers.x[1] = notification.poll();
        return Ok(false);
    }
    match notification.wait(waiter).map_err(|error| error.to_hvc())? {
        Some(bits) => {
            let registers = core.regs();
            registers.x[0] = STATUS_OK;
            registers.x[1] = bits;
            Ok(false)
        }
        None => {
            drop(notification);
            // As the general path leaves it; the delivery that ends the wait writes it again.
            core.regs().x[0] = STATUS_OK;
            core.block_loaded();
            Ok(true)
        }
    }
}

/// CAP_INFO.
pub fn capability_info(
    frame: &mut Frame,
    system: &System,
    caller: &Caller<'_>,
    slot: u64,
) -> Result<(), HvcError> {
    let record = caller.record;
    let lookup = |slot: usize| record.capability_index(slot).and_then(cached_capability);
    let cap = describe(record.capability_count as usize, slot, lookup).map_err(|error| {
        system::runtime(caller.cell).count_denial();
        error.to_hvc()
    })?;
    let (detail, size) = match cap.kind {
        CapabilityKind::Endpoint => (cap.badge as u64, 0),
        CapabilityKind::Notification => {
            let notification = system.plan.notification(cap.object as usize);
            (notification.virtual_irq().map_or(0, u64::from), 0)
        }
        CapabilityKind::SharedMemory => {
            let region = system.plan.region(cap.object as usize);
            (region.ipa, region.size)
        }
        CapabilityKind::Interrupt | CapabilityKind::CellControl => (cap.object as u64, 0),
    };
    frame.x[0] = STATUS_OK;
    frame.x[1] = cap.kind as u64;
    frame.x[2] = cap.rights;
    frame.x[3] = detail;
    frame.x[4] = size;
    Ok(())
}

/// A cell stopped, faulted or is restarting: calls it was serving or making end, callers
/// waiting for it get [`HvcError::PeerFault`], and its waits on notifications are forgotten.
pub fn cell_lost(system: &System, cell: usize) {
    let cell = cell as u16;
    for (index, endpoint) in ENDPOINTS
        .iter()
        .enumerate()
        .take(system.plan.endpoint_count())
    {
        let mut endpoint = endpoint.lock();
        if system.plan.endpoint(index).server == cell {
            let failed = endpoint.server_cell_lost(cell);
            drop(endpoint);
            for &caller in failed.iter() {
                if let Some(owner) = vcpu::core_of(caller) {
                    post(owner, caller, Delivery::Error(HvcError::PeerFault));
                }
            }
        } else {
            endpoint.caller_cell_lost(cell);
        }
    }
    for notification in NOTIFICATIONS.iter().take(system.plan.notification_count()) {
        notification.lock().waiter_lost(cell);
    }
}
