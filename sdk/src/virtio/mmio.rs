//! The virtio-mmio register file, version 2 (VIRTIO 1.x §4.2.2), around a [`Device`].
//!
//! [`MmioDevice`] owns what every virtio-mmio device has: the device status, feature
//! negotiation, up to [`MAX_QUEUES`] split virtqueues and their set-up registers, and the
//! interrupt status. The [`Device`] it wraps says what kind of device it is (ID, features,
//! configuration space, number of queues) and does the work when the driver notifies a
//! queue. [`MmioDevice::access`] applies one guest access and returns an [`Outcome`]: the
//! value a load returns, whether to raise the guest's interrupt, and what happened that the
//! cell may want to report.
//!
//! Behaviour, for any sequence of accesses:
//! - registers are matched by exact offset, whatever the access size; an unknown offset
//!   reads 0 and ignores stores; a store to a read-only register is ignored; a load of a
//!   register the spec makes write-only returns what was stored (the selected half or
//!   queue's), except QueueNotify and InterruptACK, which read 0;
//! - the configuration space (from [`register::CONFIG`]) reads and writes by byte, so any
//!   size at any offset works; bytes beyond the device's space read 0;
//! - the device offers its own features plus [`FEATURE_VERSION_1`]; FEATURES_OK stays set
//!   only if the driver accepted VERSION_1 and nothing that was not offered;
//! - a queue's set-up registers are ignored while it is ready; making it ready checks its
//!   layout ([`Queue::activate`]);
//! - queues are worked on only between DRIVER_OK and a reset: a notification before
//!   DRIVER_OK is remembered by doing the work of every queue when DRIVER_OK is set;
//! - a queue error sets DEVICE_NEEDS_RESET and the configuration-change interrupt bit; the
//!   queues are then left alone until the driver writes 0 to Status (reset), which also
//!   forgets the queues and features and calls [`Device::reset`].

use super::memory::GuestMemory;
use super::queue::{Queue, QueueError, MAX_QUEUE_SIZE};
use abi::device::Access;

/// MagicValue: "virt" in little-endian ASCII.
pub const MAGIC_VALUE: u32 = 0x7472_6976;
/// Version: the modern (virtio 1.x) register layout.
pub const VERSION: u32 = 2;
/// VendorID: "CVSR" in little-endian ASCII.
pub const VENDOR_ID: u32 = u32::from_le_bytes(*b"CVSR");
/// Most queues a device may have.
pub const MAX_QUEUES: usize = 8;
/// VIRTIO_F_VERSION_1 (feature bit 32): the device follows virtio 1.x.
pub const FEATURE_VERSION_1: u64 = 1 << 32;
/// InterruptStatus bit: the device used buffers.
pub const INTERRUPT_USED_BUFFER: u32 = 1 << 0;
/// InterruptStatus bit: the configuration changed (here: the device needs a reset).
pub const INTERRUPT_CONFIGURATION_CHANGE: u32 = 1 << 1;

/// Register offsets in the slot's window.
pub mod register {
    /// MagicValue (read).
    pub const MAGIC_VALUE: u16 = 0x000;
    /// Version (read).
    pub const VERSION: u16 = 0x004;
    /// DeviceID (read).
    pub const DEVICE_ID: u16 = 0x008;
    /// VendorID (read).
    pub const VENDOR_ID: u16 = 0x00c;
    /// DeviceFeatures (read): 32 feature bits selected by DeviceFeaturesSel.
    pub const DEVICE_FEATURES: u16 = 0x010;
    /// DeviceFeaturesSel (write).
    pub const DEVICE_FEATURES_SELECT: u16 = 0x014;
    /// DriverFeatures (write): 32 feature bits selected by DriverFeaturesSel.
    pub const DRIVER_FEATURES: u16 = 0x020;
    /// DriverFeaturesSel (write).
    pub const DRIVER_FEATURES_SELECT: u16 = 0x024;
    /// QueueSel (write).
    pub const QUEUE_SELECT: u16 = 0x030;
    /// QueueNumMax (read).
    pub const QUEUE_SIZE_MAX: u16 = 0x034;
    /// QueueNum (write).
    pub const QUEUE_SIZE: u16 = 0x038;
    /// QueueReady (read and write).
    pub const QUEUE_READY: u16 = 0x044;
    /// QueueNotify (write): the queue index.
    pub const QUEUE_NOTIFY: u16 = 0x050;
    /// InterruptStatus (read).
    pub const INTERRUPT_STATUS: u16 = 0x060;
    /// InterruptACK (write).
    pub const INTERRUPT_ACKNOWLEDGE: u16 = 0x064;
    /// Status (read and write).
    pub const STATUS: u16 = 0x070;
    /// QueueDescLow (write).
    pub const QUEUE_DESCRIPTOR_LOW: u16 = 0x080;
    /// QueueDescHigh (write).
    pub const QUEUE_DESCRIPTOR_HIGH: u16 = 0x084;
    /// QueueDriverLow (write): the available ring.
    pub const QUEUE_DRIVER_LOW: u16 = 0x090;
    /// QueueDriverHigh (write).
    pub const QUEUE_DRIVER_HIGH: u16 = 0x094;
    /// QueueDeviceLow (write): the used ring.
    pub const QUEUE_DEVICE_LOW: u16 = 0x0a0;
    /// QueueDeviceHigh (write).
    pub const QUEUE_DEVICE_HIGH: u16 = 0x0a4;
    /// ConfigGeneration (read).
    pub const CONFIG_GENERATION: u16 = 0x0fc;
    /// First byte of the device configuration space.
    pub const CONFIG: u16 = 0x100;
}

/// Device status bits (Status register).
pub mod status {
    /// The guest found the device.
    pub const ACKNOWLEDGE: u32 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u32 = 2;
    /// The driver is ready: the device may use the queues.
    pub const DRIVER_OK: u32 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u32 = 8;
    /// The device hit an error it cannot recover from without a reset.
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
    /// The driver gave up on the device.
    pub const FAILED: u32 = 0x80;
}

/// A kind of virtio device, as [`MmioDevice`] drives it.
pub trait Device {
    /// DeviceID (for example 3 for a console).
    const DEVICE_ID: u32;
    /// Number of queues, at most [`MAX_QUEUES`] (more are not offered).
    const QUEUES: usize;

    /// The device-specific feature bits offered ([`FEATURE_VERSION_1`] is added).
    fn features(&self) -> u64;

    /// The configuration space byte at `offset` (0 beyond its end).
    fn read_config(&self, offset: usize) -> u8;

    /// The driver stored `bytes` (1 to 8) at `offset` of the configuration space.
    fn write_config(&mut self, offset: usize, bytes: &[u8]);

    /// Works on queue `queue` (below `QUEUES`) of `queues` (`QUEUES` long): called when the
    /// driver notifies it, and for every queue on [`MmioDevice::process`] and when the
    /// driver sets DRIVER_OK, so it must do whatever work is possible and nothing more.
    /// Returns whether buffers were used (the driver is then interrupted). Each call must
    /// do bounded work (for example at most the queue size of chains).
    ///
    /// Errors: a queue error, which makes the device need a reset.
    fn notify(
        &mut self,
        queue: usize,
        queues: &mut [Queue],
        memory: &impl GuestMemory,
    ) -> Result<bool, QueueError>;

    /// The driver reset the device: forget any chain held (it belongs to the old queues).
    fn reset(&mut self);
}

/// The result of one access (or of [`MmioDevice::process`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The value a load returns (0 for a store).
    pub value: u64,
    /// The guest's interrupt must be raised: an InterruptStatus bit was set.
    pub interrupt: bool,
    /// This access set DRIVER_OK (the negotiated features are
    /// [`MmioDevice::driver_features`]).
    pub driver_ready: bool,
    /// This access reset the device.
    pub reset: bool,
    /// A queue became unusable during this access: the device now needs a reset.
    pub failure: Option<QueueError>,
}

/// A virtio-mmio device: the register file and queues around a [`Device`].
#[derive(Debug)]
pub struct MmioDevice<D> {
    device: D,
    queues: [Queue; MAX_QUEUES],
    status: u32,
    device_features_select: u32,
    driver_features_select: u32,
    driver_features: u64,
    queue_select: u32,
    interrupt_status: u32,
}

impl<D: Device> MmioDevice<D> {
    /// Number of queues offered.
    const QUEUE_COUNT: usize = if D::QUEUES < MAX_QUEUES {
        D::QUEUES
    } else {
        MAX_QUEUES
    };

    /// A device just reset: status 0, no queue ready.
    pub const fn new(device: D) -> Self {
        Self {
            device,
            queues: [Queue::new(); MAX_QUEUES],
            status: 0,
            device_features_select: 0,
            driver_features_select: 0,
            driver_features: 0,
            queue_select: 0,
            interrupt_status: 0,
        }
    }

    /// The device model.
    pub const fn device(&self) -> &D {
        &self.device
    }

    /// The device model, to change.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The Status register.
    pub const fn status(&self) -> u32 {
        self.status
    }

    /// The InterruptStatus register.
    pub const fn interrupt_status(&self) -> u32 {
        self.interrupt_status
    }

    /// The features the driver accepted (all 64 bits).
    pub const fn driver_features(&self) -> u64 {
        self.driver_features
    }

    /// All features offered.
    pub fn device_features(&self) -> u64 {
        self.device.features() | FEATURE_VERSION_1
    }

    /// The device's queues.
    pub fn queues(&self) -> &[Queue] {
        &self.queues[..Self::QUEUE_COUNT]
    }

    /// Whether the queues are live: DRIVER_OK is set and DEVICE_NEEDS_RESET is not.
    pub const fn is_live(&self) -> bool {
        self.status & (status::DRIVER_OK | status::DEVICE_NEEDS_RESET) == status::DRIVER_OK
    }

    /// Applies one guest load or store.
    pub fn access(&mut self, memory: &impl GuestMemory, access: Access) -> Outcome {
        match access.write {
            None => Outcome {
                value: self.load(access.offset, access.size),
                ..Outcome::default()
            },
            Some(value) => self.store(memory, access.offset, access.size, value),
        }
    }

    /// Does the work of every queue, as if the driver had notified each (nothing unless the
    /// queues are live): for a cell that changed the device model's state, for example
    /// queued bytes for the driver.
    pub fn process(&mut self, memory: &impl GuestMemory) -> Outcome {
        self.notify(memory, None)
    }

    /// The value of a load at `offset`.
    fn load(&self, offset: u16, size: u8) -> u64 {
        if offset >= register::CONFIG {
            let start = usize::from(offset - register::CONFIG);
            let mut bytes = [0; 8];
            for (index, byte) in bytes.iter_mut().take(usize::from(size)).enumerate() {
                *byte = self.device.read_config(start + index);
            }
            return u64::from_le_bytes(bytes);
        }
        let selected = self.selected_queue();
        let value = match offset {
            register::MAGIC_VALUE => MAGIC_VALUE,
            register::VERSION => VERSION,
            register::DEVICE_ID => D::DEVICE_ID,
            register::VENDOR_ID => VENDOR_ID,
            register::DEVICE_FEATURES => match self.device_features_select {
                0 => self.device_features() as u32,
                1 => (self.device_features() >> 32) as u32,
                _ => 0,
            },
            register::DEVICE_FEATURES_SELECT => self.device_features_select,
            register::DRIVER_FEATURES => match self.driver_features_select {
                0 => self.driver_features as u32,
                1 => (self.driver_features >> 32) as u32,
                _ => 0,
            },
            register::DRIVER_FEATURES_SELECT => self.driver_features_select,
            register::QUEUE_SELECT => self.queue_select,
            register::QUEUE_SIZE_MAX => selected.map_or(0, |_| u32::from(MAX_QUEUE_SIZE)),
            register::QUEUE_SIZE => selected.map_or(0, |queue| u32::from(queue.size)),
            register::QUEUE_READY => selected.map_or(0, |queue| u32::from(queue.ready)),
            register::QUEUE_DESCRIPTOR_LOW => {
                selected.map_or(0, |queue| queue.descriptor_table as u32)
            }
            register::QUEUE_DESCRIPTOR_HIGH => {
                selected.map_or(0, |queue| (queue.descriptor_table >> 32) as u32)
            }
            register::QUEUE_DRIVER_LOW => selected.map_or(0, |queue| queue.available_ring as u32),
            register::QUEUE_DRIVER_HIGH => {
                selected.map_or(0, |queue| (queue.available_ring >> 32) as u32)
            }
            register::QUEUE_DEVICE_LOW => selected.map_or(0, |queue| queue.used_ring as u32),
            register::QUEUE_DEVICE_HIGH => {
                selected.map_or(0, |queue| (queue.used_ring >> 32) as u32)
            }
            register::INTERRUPT_STATUS => self.interrupt_status,
            register::STATUS => self.status,
            // Configuration never changes while the driver reads it.
            register::CONFIG_GENERATION => 0,
            _ => 0,
        };
        u64::from(value)
    }

    /// Applies a store of `value` at `offset`.
    fn store(&mut self, memory: &impl GuestMemory, offset: u16, size: u8, value: u64) -> Outcome {
        if offset >= register::CONFIG {
            let bytes = value.to_le_bytes();
            let length = usize::from(size).min(bytes.len());
            self.device
                .write_config(usize::from(offset - register::CONFIG), &bytes[..length]);
            return Outcome::default();
        }
        let value = value as u32;
        match offset {
            register::DEVICE_FEATURES_SELECT => self.device_features_select = value,
            register::DRIVER_FEATURES_SELECT => self.driver_features_select = value,
            register::DRIVER_FEATURES => match self.driver_features_select {
                0 => self.driver_features = self.driver_features & !0xffff_ffff | u64::from(value),
                1 => {
                    self.driver_features =
                        self.driver_features & 0xffff_ffff | u64::from(value) << 32;
                }
                _ => {}
            },
            register::QUEUE_SELECT => self.queue_select = value,
            register::QUEUE_SIZE => {
                if let Some(queue) = self.configurable_queue() {
                    queue.size = u16::try_from(value).unwrap_or(u16::MAX);
                }
            }
            register::QUEUE_READY => return self.set_queue_ready(memory, value != 0),
            register::QUEUE_DESCRIPTOR_LOW
            | register::QUEUE_DESCRIPTOR_HIGH
            | register::QUEUE_DRIVER_LOW
            | register::QUEUE_DRIVER_HIGH
            | register::QUEUE_DEVICE_LOW
            | register::QUEUE_DEVICE_HIGH => self.set_queue_address(offset, value),
            register::QUEUE_NOTIFY => {
                let queue = usize::try_from(value).unwrap_or(usize::MAX);
                if queue < Self::QUEUE_COUNT {
                    return self.notify(memory, Some(queue));
                }
            }
            register::INTERRUPT_ACKNOWLEDGE => self.interrupt_status &= !value,
            register::STATUS => return self.set_status(memory, value),
            _ => {}
        }
        Outcome::default()
    }

    /// The queue QueueSel selects, if it exists.
    fn selected_queue(&self) -> Option<&Queue> {
        let index = usize::try_from(self.queue_select).ok()?;
        self.queues[..Self::QUEUE_COUNT].get(index)
    }

    /// The queue QueueSel selects, if it exists and is not ready (so its layout may change).
    fn configurable_queue(&mut self) -> Option<&mut Queue> {
        let index = usize::try_from(self.queue_select).ok()?;
        self.queues[..Self::QUEUE_COUNT]
            .get_mut(index)
            .filter(|queue| !queue.ready)
    }

    /// Stores half of one of the selected queue's area addresses.
    fn set_queue_address(&mut self, offset: u16, value: u32) {
        let Some(queue) = self.configurable_queue() else {
            return;
        };
        let (address, high) = match offset {
            register::QUEUE_DESCRIPTOR_LOW => (&mut queue.descriptor_table, false),
            register::QUEUE_DESCRIPTOR_HIGH => (&mut queue.descriptor_table, true),
            register::QUEUE_DRIVER_LOW => (&mut queue.available_ring, false),
            register::QUEUE_DRIVER_HIGH => (&mut queue.available_ring, true),
            register::QUEUE_DEVICE_LOW => (&mut queue.used_ring, false),
            _ => (&mut queue.used_ring, true),
        };
        *address = if high {
            *address & 0xffff_ffff | u64::from(value) << 32
        } else {
            *address & !0xffff_ffff | u64::from(value)
        };
    }

    /// Makes the selected queue ready (checking its layout) or not ready.
    fn set_queue_ready(&mut self, memory: &impl GuestMemory, ready: bool) -> Outcome {
        let Some(index) = usize::try_from(self.queue_select)
            .ok()
            .filter(|&index| index < Self::QUEUE_COUNT)
        else {
            return Outcome::default();
        };
        let queue = &mut self.queues[index];
        if !ready {
            queue.ready = false;
            return Outcome::default();
        }
        if queue.ready {
            return Outcome::default();
        }
        match queue.activate(memory) {
            Ok(()) => Outcome::default(),
            Err(error) => self.fail(error),
        }
    }

    /// Applies a store to Status.
    fn set_status(&mut self, memory: &impl GuestMemory, value: u32) -> Outcome {
        if value == 0 {
            self.reset();
            return Outcome {
                reset: true,
                ..Outcome::default()
            };
        }
        let previous = self.status;
        let mut new = value & 0xff & !status::DEVICE_NEEDS_RESET;
        new |= previous & status::DEVICE_NEEDS_RESET;
        if new & status::FEATURES_OK != 0 && previous & status::FEATURES_OK == 0 {
            let accepted = self.driver_features & !self.device_features() == 0
                && self.driver_features & FEATURE_VERSION_1 != 0;
            if !accepted {
                new &= !status::FEATURES_OK;
            }
        }
        self.status = new;
        if new & status::DRIVER_OK != 0 && previous & status::DRIVER_OK == 0 {
            let outcome = self.notify(memory, None);
            return Outcome {
                driver_ready: true,
                ..outcome
            };
        }
        Outcome::default()
    }

    /// Resets the device: status, features, queues and interrupt status to 0.
    fn reset(&mut self) {
        self.status = 0;
        self.device_features_select = 0;
        self.driver_features_select = 0;
        self.driver_features = 0;
        self.queue_select = 0;
        self.interrupt_status = 0;
        for queue in &mut self.queues {
            queue.reset();
        }
        self.device.reset();
    }

    /// Lets the device work on queue `only`, or on every queue; interrupts if it used
    /// buffers.
    fn notify(&mut self, memory: &impl GuestMemory, only: Option<usize>) -> Outcome {
        if !self.is_live() {
            return Outcome::default();
        }
        let mut used = false;
        for queue in 0..Self::QUEUE_COUNT {
            if only.is_some_and(|only| only != queue) {
                continue;
            }
            match self
                .device
                .notify(queue, &mut self.queues[..Self::QUEUE_COUNT], memory)
            {
                Ok(added) => used |= added,
                Err(error) => {
                    if used {
                        self.interrupt_status |= INTERRUPT_USED_BUFFER;
                    }
                    return self.fail(error);
                }
            }
        }
        if !used {
            return Outcome::default();
        }
        self.interrupt_status |= INTERRUPT_USED_BUFFER;
        Outcome {
            interrupt: true,
            ..Outcome::default()
        }
    }

    /// A queue is unusable: sets DEVICE_NEEDS_RESET and interrupts with a configuration
    /// change.
    fn fail(&mut self, error: QueueError) -> Outcome {
        self.status |= status::DEVICE_NEEDS_RESET;
        self.interrupt_status |= INTERRUPT_CONFIGURATION_CHANGE;
        Outcome {
            interrupt: true,
            failure: Some(error),
            ..Outcome::default()
        }
    }
}
