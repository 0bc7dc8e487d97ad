//! Guest cells: an unmodified OS (Linux) sees a QEMU-`virt`-like machine. This module
//! runs the parts of that machine the kernel owns: PSCI over HVC (`kcore::psci`), the PL011
//! console (`kcore::vuart`), and the dispatch of trapped device accesses (decoded by
//! `kcore::mmio`) to the right model: the kernel's own (distributor, PL011) or, for a
//! virtio-mmio window, the device-model cell that serves it (`abi::device`), by an IPC call
//! made on the guest vCPU's behalf.
//!
//! Invariants: only cells of kind `Guest` reach this module; every value from the guest is
//! decoded by kcore before use; a device access the kernel does not emulate is a fault of the
//! cell (its policy applies), never a kernel error.

use crate::ipc::Delivery;
use crate::system::{self, System};
use crate::vcpu::{self, CoreState};
use abi::device::{MAX_VIRTIO_MMIO, VIRTIO_MMIO_BASE, VIRTIO_MMIO_SIZE};
use abi::plan::{CellRecord, MAX_CELLS};
use kcore::esr::DataAbort;
use kcore::ipc::VcpuRef;
use kcore::psci::{Action, Psci};
use kcore::vgic_distributor::{Delivery as DistributorDelivery, Distributor};
use kcore::vuart::Pl011;
use spin::{Mutex, MutexGuard, Once};

/// The guest's PL011 (as on QEMU `virt`).
pub const UART_BASE: u64 = 0x0900_0000;
/// Size of the PL011's register window.
pub const UART_SIZE: u64 = 0x1000;
/// The PL011's interrupt in the guest (SPI 1).
pub const UART_INTID: u32 = 33;

/// Interrupt lines of a guest's distributor (SGIs, PPIs and SPIs up to 127).
const GUEST_INTERRUPT_LINES: u32 = 128;

/// The kernel-owned devices of one guest cell.
pub struct GuestDevices {
    uart: Pl011,
    psci: Psci,
    distributor: Distributor,
}

impl GuestDevices {
    /// The UART's interrupt, made pending in the distributor if the UART holds its line
    /// high; the delivery to make if it is deliverable now.
    fn uart_interrupt(&mut self) -> Option<DistributorDelivery> {
        if !self.uart.interrupt_level() {
            return None;
        }
        self.distributor.set_pending(UART_INTID, 0).ok().flatten()
    }
}

/// Raises in vCPU `vcpu` of guest `cell` interrupt `intid`, which its distributor delivered.
fn raise(core: &mut CoreState, cell: usize, vcpu: usize, intid: u32) {
    vcpu::raise_anywhere(core, VcpuRef::new(cell, vcpu as u8), intid);
}

static GUESTS: [Once<Mutex<GuestDevices>>; MAX_CELLS] = [const { Once::new() }; MAX_CELLS];

/// Creates the devices of guest cell `cell`. Boot core, before cells run.
pub fn create(cell: usize, record: &CellRecord) {
    if let Some(slot) = GUESTS.get(cell) {
        slot.call_once(|| {
            let mut psci = Psci::new(record.vcpu_count as usize);
            psci.vcpu_started(0);
            let distributor = Distributor::new(record.vcpu_count as usize, GUEST_INTERRUPT_LINES);
            Mutex::new(GuestDevices {
                uart: Pl011::new(),
                psci,
                distributor,
            })
        });
    }
}

/// Guest `cell`'s devices, locked. Out of line: one copy of the lock for the many device
/// paths that take it.
#[inline(never)]
fn lock_devices(cell: usize) -> Option<MutexGuard<'static, GuestDevices>> {
    Some(GUESTS.get(cell)?.get()?.lock())
}

/// Where a guest's device tree is, by the convention of `cellvisor build`: the first 2 MiB
/// boundary after the kernel's `image_size` (Image header offset 16), from the load address.
// Out of line: one copy for the boot-time load and every restart.
#[inline(never)]
pub fn device_tree_ipa(system: &System, record: &CellRecord) -> u64 {
    let image = system.image(record);
    let image_size = image
        .get(16..24)
        .and_then(|bytes| bytes.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0);
    abi::addr::align_up(record.load_ipa.saturating_add(image_size), 0x20_0000).unwrap_or(0)
}

/// A guest's HVC: PSCI and SMCCC calls. Returns whether the core must choose again.
pub fn hypercall(core: &mut CoreState, cell: usize, vcpu_index: u8) -> bool {
    let frame = core.regs();
    let Some(mut devices) = lock_devices(cell) else {
        frame.x[0] = kcore::psci::NOT_SUPPORTED as u64;
        return false;
    };
    let outcome = devices.psci.call(
        vcpu_index as usize,
        frame.x[0],
        [frame.x[1], frame.x[2], frame.x[3]],
    );
    drop(devices);
    frame.x[0] = outcome.result as u64;
    match outcome.action {
        Action::None => false,
        Action::StartVcpu {
            vcpu,
            entry,
            context,
        } => {
            vcpu::start(core, VcpuRef::new(cell, vcpu as u8), entry, context);
            if let Some(mut devices) = lock_devices(cell) {
                devices.psci.vcpu_started(vcpu);
            }
            false
        }
        Action::StopVcpu => {
            core.stop_loaded();
            true
        }
        Action::Suspend => core.wait_for_interrupt(),
        Action::StopCell => crate::trap::guest_power(cell, false),
        Action::RestartCell => crate::trap::guest_power(cell, true),
    }
}

/// A guest's access to an IPA it has no mapping for. Returns `Some(reschedule)` if the
/// access was to an emulated device (and is complete), `None` if it is a fault.
pub fn device_access(
    core: &mut CoreState,
    cell: usize,
    name: &str,
    abort: &DataAbort,
    ipa: u64,
) -> Option<bool> {
    let register = abort.register as usize;
    let value = core.loaded_register(register);
    let access = kcore::mmio::access(abort, ipa, value).ok()?;
    if let Some((slot, offset)) = virtio_window(ipa) {
        return Some(forward_device_access(core, cell, slot, offset, access));
    }
    let mut devices = lock_devices(cell)?;
    if devices.distributor.contains(ipa) {
        let (deliver, result) = match access.write {
            Some(value) => (
                devices.distributor.write(ipa, access.size, value).deliver,
                None,
            ),
            None => {
                let result = devices.distributor.read(ipa, access.size).unwrap_or(0);
                (
                    0,
                    Some((register, kcore::mmio::load_result(&access, result))),
                )
            }
        };
        let mut raised = [None; 32];
        let mut count = 0;
        for vcpu in 0..8usize {
            if deliver & (1 << vcpu) == 0 {
                continue;
            }
            while let Some(delivery) = devices.distributor.take_deliverable(vcpu) {
                if count < raised.len() {
                    raised[count] = Some(delivery);
                    count += 1;
                }
            }
        }
        drop(devices);
        core.complete_access(result);
        for delivery in raised.into_iter().flatten() {
            raise(core, cell, delivery.vcpu, delivery.intid);
        }
        return Some(false);
    }
    if !(UART_BASE..UART_BASE + UART_SIZE).contains(&ipa) {
        return None;
    }
    let offset = ipa - UART_BASE;
    let result = match access.write {
        Some(value) => {
            let runtime = system::runtime(cell);
            let mut console = runtime.console.lock();
            devices.uart.write(offset, value, &mut |byte| {
                crate::console::guest_output(cell, name, &mut console, &[byte]);
            });
            None
        }
        None => {
            let waiting = devices.uart.input_len();
            let result = devices.uart.read(offset, access.size);
            if devices.uart.input_len() < waiting {
                crate::console::guest_read_input();
            }
            Some((register, kcore::mmio::load_result(&access, result)))
        }
    };
    let delivery = devices.uart_interrupt();
    drop(devices);
    core.complete_access(result);
    if let Some(delivery) = delivery {
        raise(core, cell, delivery.vcpu, delivery.intid);
    }
    Some(false)
}

/// The virtio-mmio slot and offset within it of `ipa`, if it is in a slot's window.
fn virtio_window(ipa: u64) -> Option<(usize, u16)> {
    let offset = ipa.checked_sub(VIRTIO_MMIO_BASE)?;
    let slot = offset / VIRTIO_MMIO_SIZE;
    (slot < u64::from(MAX_VIRTIO_MMIO))
        .then_some((slot as usize, (offset % VIRTIO_MMIO_SIZE) as u16))
}

/// A guest's access to virtio-mmio slot `slot`: forwarded to the device-model cell that
/// serves the slot (through the guest's capability `slot`), the vCPU blocked until it
/// replies; an empty slot reads as zero. The vCPU resumes after the instruction either
/// way. Returns whether the core must choose again.
fn forward_device_access(
    core: &mut CoreState,
    cell: usize,
    slot: usize,
    offset: u16,
    access: kcore::mmio::Access,
) -> bool {
    core.complete_access(None);
    let (Some(system), Some(vcpu)) = (system::system(), core.loaded().map(|vcpu| vcpu.index))
    else {
        return false;
    };
    let Some(cap) = system
        .cell(cell)
        .and_then(|info| crate::ipc::device_endpoint(&info.record, slot))
    else {
        let registers = &mut core.regs().x;
        complete_device_access(&access, Delivery::Reply { message: [0; 4] }, registers);
        return false;
    };
    let message = abi::device::Access {
        offset,
        size: access.size,
        write: access.write,
        vcpu,
    }
    .encode();
    let caller = VcpuRef::new(cell, vcpu);
    core.forward_loaded_access(access);
    match crate::ipc::call_endpoint(core, caller, cap, message) {
        Ok(reschedule) => reschedule,
        // The device-model cell is stopped: the access completes as with nothing behind it.
        Err(error) => {
            core.take_loaded_access();
            complete_device_access(&access, Delivery::Error(error), &mut core.regs().x);
            false
        }
    }
}

/// Completes a guest's forwarded device access with the device model's answer: a load
/// receives word 0 of the reply, or all ones if the device-model cell failed.
// Cold: kept out of the IPC delivery path that native cells' calls take.
#[cold]
#[inline(never)]
pub fn complete_device_access(
    access: &kcore::mmio::Access,
    delivery: Delivery,
    registers: &mut [u64; 31],
) {
    if access.write.is_some() {
        return;
    }
    let value = match delivery {
        Delivery::Reply { message } => message[0],
        _ => u64::MAX,
    };
    if let Some(register) = registers.get_mut(access.register as usize) {
        *register = kcore::mmio::load_result(access, value);
    }
}

/// Raises the guest's interrupt `intid` (an SPI a notification stands for) through its
/// distributor, which decides whether it is enabled and which vCPU it is routed to. Out of
/// line: inlined into SIGNAL, its device lock costs native waiters' wake-ups 2 instructions
/// (`notify_wake_insns`).
#[inline(never)]
pub fn raise_interrupt(core: &mut CoreState, cell: usize, intid: u32) {
    let Some(mut devices) = lock_devices(cell) else {
        return;
    };
    let delivery = devices.distributor.set_pending(intid, 0).ok().flatten();
    drop(devices);
    if let Some(delivery) = delivery {
        raise(core, cell, delivery.vcpu, delivery.intid);
    }
}

/// A guest wrote ICC_SGI1R_EL1 (trapped): make the SGI pending in the targeted vCPUs of
/// the same cell, through its distributor (which decodes IRM and the target list).
pub fn send_sgi(core: &mut CoreState, cell: usize, sender: u8, value: u64) {
    let Some(mut devices) = lock_devices(cell) else {
        return;
    };
    let sgi = devices.distributor.send_sgi(sender as usize, value);
    drop(devices);
    // Raised after the devices' lock is dropped: raising may take other locks.
    let mut delivered = sgi.targets;
    while delivered != 0 {
        raise(core, cell, delivered.trailing_zeros() as usize, sgi.intid);
        delivered &= delivered - 1;
    }
}

/// A byte typed on the console for guest `cell`: into its PL011's receive FIFO (dropped,
/// with the overrun flag, when that is full), raising the UART's interrupt if the guest
/// enabled it.
pub fn push_input(core: &mut CoreState, cell: usize, byte: u8) {
    let Some(mut devices) = lock_devices(cell) else {
        return;
    };
    devices.uart.push_input(byte);
    let delivery = devices.uart_interrupt();
    drop(devices);
    if let Some(delivery) = delivery {
        raise(core, cell, delivery.vcpu, delivery.intid);
    }
}

/// Whether typed input for guest `cell` must wait: it runs and its PL011's receive FIFO is
/// full. (Input for a guest that is not running is dropped rather than held, so the focus
/// key still gets through.)
pub fn input_must_wait(cell: usize) -> bool {
    system::runtime(cell).state() == system::CellState::Running
        && lock_devices(cell)
            .is_some_and(|devices| devices.uart.input_len() >= kcore::vuart::INPUT_CAPACITY)
}

/// Forgets a guest's device state (its cell restarts).
pub fn reset(cell: usize, record: &CellRecord) {
    if let Some(mut devices) = lock_devices(cell) {
        devices.uart.reset();
        devices.psci.reset();
        devices.distributor = Distributor::new(record.vcpu_count as usize, GUEST_INTERRUPT_LINES);
    }
    // Its receive FIFO is empty again: input held back for it may flow.
    crate::console::guest_read_input();
}
