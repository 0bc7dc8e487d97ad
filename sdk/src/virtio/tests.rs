//! Host tests of the virtio device model: a test driver sets the device up the way Linux's
//! virtio-mmio and virtio-console drivers do, over guest memory held in a `Vec`.

extern crate std;

use super::console::{ByteQueue, BUFFER_CAPACITY, RECEIVE_QUEUE, TRANSMIT_QUEUE};
use super::mmio::{
    register, status, FEATURE_VERSION_1, INTERRUPT_CONFIGURATION_CHANGE, INTERRUPT_USED_BUFFER,
    MAGIC_VALUE, VENDOR_ID,
};
use super::queue::{DESCRIPTOR_INDIRECT, DESCRIPTOR_NEXT, DESCRIPTOR_WRITE, MAX_QUEUE_SIZE};
use super::*;
use abi::device::Access;
use core::sync::atomic::{AtomicU64, Ordering};
use std::vec;
use std::vec::Vec;

/// Guest-physical address of guest RAM.
const BASE: u64 = abi::image::CELL_RAM_IPA;
/// Bytes of guest RAM in these tests.
const RAM_BYTES: usize = 64 * 1024;
/// Where queue `q`'s areas start (descriptor table; available ring at +0x800, used ring at
/// +0x1000).
const fn queue_area(queue: usize) -> u64 {
    BASE + 0x1000 + 0x2000 * queue as u64
}
/// Where the test buffers start.
const BUFFERS: u64 = BASE + 0x8000;

fn new_ram() -> Vec<AtomicU64> {
    (0..RAM_BYTES / 8).map(|_| AtomicU64::new(0)).collect()
}

/// A virtio driver in the test, and the device it drives.
struct Driver {
    words: Vec<AtomicU64>,
    device: MmioDevice<Console>,
    size: u16,
    available: [u16; 2],
    next_descriptor: [u16; 2],
    seen_used: [u16; 2],
}

impl Driver {
    /// A device, not set up.
    fn new() -> Self {
        Self {
            words: new_ram(),
            device: MmioDevice::new(Console::new(80, 25)),
            size: 8,
            available: [0; 2],
            next_descriptor: [0; 2],
            seen_used: [0; 2],
        }
    }

    /// A device set up as Linux does it, with queues of `size`, DRIVER_OK set.
    fn ready(size: u16) -> Self {
        let mut driver = Self::new();
        driver.size = size;
        driver.start();
        driver
    }

    /// Zeroes guest RAM, resets the device and sets it up again, DRIVER_OK set.
    fn start(&mut self) {
        for word in &self.words {
            word.store(0, Ordering::Relaxed);
        }
        self.available = [0; 2];
        self.next_descriptor = [0; 2];
        self.seen_used = [0; 2];
        self.negotiate();
        for queue in [RECEIVE_QUEUE, TRANSMIT_QUEUE] {
            assert_eq!(self.set_up_queue(queue), Outcome::default());
        }
        let outcome = self.store(
            register::STATUS,
            u64::from(
                status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK,
            ),
        );
        assert!(outcome.driver_ready);
        assert!(self.device.is_live());
    }

    fn ram(&self) -> GuestRam<'_> {
        GuestRam::new(BASE, &self.words)
    }

    fn access(&mut self, offset: u16, size: u8, write: Option<u64>) -> Outcome {
        let ram = GuestRam::new(BASE, &self.words);
        self.device.access(
            &ram,
            Access {
                offset,
                size,
                write,
                vcpu: 0,
            },
        )
    }

    fn load(&mut self, offset: u16) -> u64 {
        self.access(offset, 4, None).value
    }

    fn store(&mut self, offset: u16, value: u64) -> Outcome {
        self.access(offset, 4, Some(value))
    }

    fn process(&mut self) -> Outcome {
        let ram = GuestRam::new(BASE, &self.words);
        self.device.process(&ram)
    }

    /// Reset, ACKNOWLEDGE, DRIVER, VERSION_1 accepted, FEATURES_OK.
    fn negotiate(&mut self) {
        self.store(register::STATUS, 0);
        self.store(register::STATUS, u64::from(status::ACKNOWLEDGE));
        self.store(
            register::STATUS,
            u64::from(status::ACKNOWLEDGE | status::DRIVER),
        );
        self.store(register::DRIVER_FEATURES_SELECT, 1);
        self.store(register::DRIVER_FEATURES, 1);
        self.store(register::DRIVER_FEATURES_SELECT, 0);
        self.store(register::DRIVER_FEATURES, 0);
        self.store(
            register::STATUS,
            u64::from(status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK),
        );
        assert_ne!(
            self.load(register::STATUS) & u64::from(status::FEATURES_OK),
            0
        );
    }

    /// Selects `queue`, gives it size and areas, makes it ready.
    fn set_up_queue(&mut self, queue: usize) -> Outcome {
        let area = queue_area(queue);
        self.store(register::QUEUE_SELECT, queue as u64);
        assert_eq!(self.load(register::QUEUE_READY), 0);
        assert_eq!(
            self.load(register::QUEUE_SIZE_MAX),
            u64::from(MAX_QUEUE_SIZE)
        );
        self.store(register::QUEUE_SIZE, u64::from(self.size));
        for (low, address) in [
            (register::QUEUE_DESCRIPTOR_LOW, area),
            (register::QUEUE_DRIVER_LOW, area + 0x800),
            (register::QUEUE_DEVICE_LOW, area + 0x1000),
        ] {
            self.store(low, address & 0xffff_ffff);
            self.store(low + 4, address >> 32);
        }
        self.store(register::QUEUE_READY, 1)
    }

    /// Writes descriptor `index` of `queue`.
    fn write_descriptor(
        &self,
        queue: usize,
        index: u16,
        address: u64,
        length: u32,
        flags: u16,
        next: u16,
    ) {
        let entry = queue_area(queue) + 16 * u64::from(index);
        let ram = self.ram();
        ram.write_u64(entry, address).unwrap();
        ram.write_u32(entry + 8, length).unwrap();
        ram.write_u16(entry + 12, flags).unwrap();
        ram.write_u16(entry + 14, next).unwrap();
    }

    /// Makes descriptor `head` of `queue` available (without notifying).
    fn make_available(&mut self, queue: usize, head: u16) {
        let ring = queue_area(queue) + 0x800;
        let slot = u64::from(self.available[queue] % self.size);
        self.ram().write_u16(ring + 4 + 2 * slot, head).unwrap();
        self.available[queue] = self.available[queue].wrapping_add(1);
        self.ram()
            .write_u16(ring + 2, self.available[queue])
            .unwrap();
    }

    /// Posts a chain of `(address, length, writable)` buffers on `queue`; returns its head.
    fn post(&mut self, queue: usize, buffers: &[(u64, u32, bool)]) -> u16 {
        let head = self.next_descriptor[queue];
        for (position, &(address, length, writable)) in buffers.iter().enumerate() {
            let index = self.next_descriptor[queue];
            let next = (index + 1) % self.size;
            let mut flags = if writable { DESCRIPTOR_WRITE } else { 0 };
            if position + 1 < buffers.len() {
                flags |= DESCRIPTOR_NEXT;
            }
            self.write_descriptor(queue, index, address, length, flags, next);
            self.next_descriptor[queue] = next;
        }
        self.make_available(queue, head);
        head
    }

    /// Writes `bytes` at `address` and posts them as one readable buffer on the transmit
    /// queue.
    fn transmit(&mut self, address: u64, bytes: &[u8]) -> u16 {
        self.ram().write(address, bytes).unwrap();
        self.post(TRANSMIT_QUEUE, &[(address, bytes.len() as u32, false)])
    }

    fn notify(&mut self, queue: usize) -> Outcome {
        self.store(register::QUEUE_NOTIFY, queue as u64)
    }

    /// The used elements of `queue` the driver has not seen yet, as (id, len).
    fn used(&mut self, queue: usize) -> Vec<(u32, u32)> {
        let ring = queue_area(queue) + 0x1000;
        let ram = GuestRam::new(BASE, &self.words);
        let index = ram.load_u16_acquire(ring + 2).unwrap();
        let mut elements = Vec::new();
        while self.seen_used[queue] != index {
            let slot = u64::from(self.seen_used[queue] % self.size);
            let element = ring + 4 + 8 * slot;
            elements.push((
                ram.read_u32(element).unwrap(),
                ram.read_u32(element + 4).unwrap(),
            ));
            self.seen_used[queue] = self.seen_used[queue].wrapping_add(1);
        }
        elements
    }

    fn read(&self, address: u64, length: usize) -> Vec<u8> {
        let mut bytes = vec![0; length];
        self.ram().read(address, &mut bytes).unwrap();
        bytes
    }

    fn take_transmitted(&mut self) -> Vec<u8> {
        let mut bytes = vec![0; BUFFER_CAPACITY];
        let count = self.device.device_mut().take_transmitted(&mut bytes);
        bytes.truncate(count);
        bytes
    }

    fn needs_reset(&self) -> bool {
        self.device.status() & status::DEVICE_NEEDS_RESET != 0
    }
}

#[test]
fn identification_registers() {
    let mut driver = Driver::new();
    assert_eq!(driver.load(register::MAGIC_VALUE), u64::from(MAGIC_VALUE));
    assert_eq!(driver.load(register::MAGIC_VALUE), 0x7472_6976);
    assert_eq!(driver.load(register::VERSION), 2);
    assert_eq!(driver.load(register::DEVICE_ID), 3);
    assert_eq!(driver.load(register::VENDOR_ID), u64::from(VENDOR_ID));
    assert_eq!(driver.load(register::STATUS), 0);
    assert_eq!(driver.load(register::CONFIG_GENERATION), 0);
    // Stores to read-only registers change nothing.
    driver.store(register::MAGIC_VALUE, 0);
    driver.store(register::DEVICE_ID, 9);
    assert_eq!(driver.load(register::MAGIC_VALUE), u64::from(MAGIC_VALUE));
    assert_eq!(driver.load(register::DEVICE_ID), 3);
}

#[test]
fn unknown_offsets_read_zero_and_ignore_stores() {
    let mut driver = Driver::ready(8);
    for offset in [0x001, 0x018, 0x0ac, 0x0b0, 0x0fe, 0x0f8] {
        assert_eq!(driver.store(offset, u64::MAX), Outcome::default());
        assert_eq!(driver.load(offset), 0, "{offset:#x}");
    }
    assert!(driver.device.is_live());
}

#[test]
fn only_version_1_is_offered_and_must_be_accepted() {
    let mut driver = Driver::new();
    driver.store(register::DEVICE_FEATURES_SELECT, 0);
    assert_eq!(driver.load(register::DEVICE_FEATURES), 0);
    driver.store(register::DEVICE_FEATURES_SELECT, 1);
    assert_eq!(driver.load(register::DEVICE_FEATURES), 1);
    driver.store(register::DEVICE_FEATURES_SELECT, 2);
    assert_eq!(driver.load(register::DEVICE_FEATURES), 0);
    assert_eq!(driver.device.device_features(), FEATURE_VERSION_1);

    let features_ok = u64::from(status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
    // Without VERSION_1: FEATURES_OK does not stick.
    driver.store(register::STATUS, features_ok);
    assert_eq!(
        driver.load(register::STATUS) & u64::from(status::FEATURES_OK),
        0
    );
    // With a feature that was not offered (EVENT_IDX, bit 29): refused too.
    driver.store(register::STATUS, 0);
    driver.store(register::DRIVER_FEATURES_SELECT, 1);
    driver.store(register::DRIVER_FEATURES, 1);
    driver.store(register::DRIVER_FEATURES_SELECT, 0);
    driver.store(register::DRIVER_FEATURES, 1 << 29);
    driver.store(register::STATUS, features_ok);
    assert_eq!(
        driver.load(register::STATUS) & u64::from(status::FEATURES_OK),
        0
    );
    // VERSION_1 alone: accepted.
    driver.store(register::DRIVER_FEATURES, 0);
    driver.store(register::STATUS, features_ok);
    assert_eq!(driver.load(register::STATUS), features_ok);
    assert_eq!(driver.device.driver_features(), FEATURE_VERSION_1);
}

#[test]
fn config_space_reads_any_size_at_any_offset() {
    let mut driver = Driver::new();
    let config = register::CONFIG;
    assert_eq!(driver.access(config, 1, None).value, 80);
    assert_eq!(driver.access(config, 2, None).value, 80);
    assert_eq!(driver.access(config + 2, 2, None).value, 25);
    assert_eq!(driver.access(config, 4, None).value, 25 << 16 | 80);
    assert_eq!(driver.access(config + 4, 4, None).value, 1);
    assert_eq!(driver.access(config + 1, 4, None).value, 1 << 24 | 25 << 8);
    assert_eq!(
        driver.access(config, 8, None).value,
        1 << 32 | 25 << 16 | 80
    );
    // emerg_wr reads 0, and so does everything beyond the space.
    assert_eq!(driver.access(config + 8, 4, None).value, 0);
    assert_eq!(driver.access(config + 10, 4, None).value, 0);
    assert_eq!(driver.access(0x1fc, 4, None).value, 0);
    assert_eq!(driver.access(0x1ff, 1, None).value, 0);
    // Stores to read-only fields change nothing.
    driver.access(config, 2, Some(132));
    assert_eq!(driver.access(config, 2, None).value, 80);
}

#[test]
fn an_emergency_write_transmits_one_byte() {
    let mut driver = Driver::new();
    driver.access(register::CONFIG + 8, 4, Some(u64::from(b'!')));
    driver.access(register::CONFIG + 8, 1, Some(u64::from(b'?')));
    assert_eq!(driver.device.device().transmitted_len(), 2);
    assert_eq!(driver.take_transmitted(), b"!?");
}

#[test]
fn transmitted_bytes_reach_the_cell_and_the_buffer_is_used() {
    let mut driver = Driver::ready(8);
    let text = BUFFERS;
    driver.ram().write(text, b"hello, modem").unwrap();
    let head = driver.post(TRANSMIT_QUEUE, &[(text, 7, false), (text + 7, 5, false)]);
    let outcome = driver.notify(TRANSMIT_QUEUE);
    assert_eq!(
        outcome,
        Outcome {
            interrupt: true,
            ..Outcome::default()
        }
    );
    assert_eq!(driver.take_transmitted(), b"hello, modem");
    assert_eq!(driver.used(TRANSMIT_QUEUE), [(u32::from(head), 0)]);
    assert_eq!(
        driver.load(register::INTERRUPT_STATUS),
        u64::from(INTERRUPT_USED_BUFFER)
    );
    driver.store(
        register::INTERRUPT_ACKNOWLEDGE,
        u64::from(INTERRUPT_USED_BUFFER),
    );
    assert_eq!(driver.load(register::INTERRUPT_STATUS), 0);
    // A notification with nothing new does nothing.
    assert_eq!(driver.notify(TRANSMIT_QUEUE), Outcome::default());
}

#[test]
fn output_waits_for_receive_buffers() {
    let mut driver = Driver::ready(8);
    assert_eq!(driver.device.device_mut().queue_output(b"OK\n"), 3);
    // No receive buffer yet: nothing happens.
    assert_eq!(driver.process(), Outcome::default());
    assert_eq!(driver.device.device().output_len(), 3);
    let head = driver.post(RECEIVE_QUEUE, &[(BUFFERS, 64, true)]);
    assert!(driver.notify(RECEIVE_QUEUE).interrupt);
    assert_eq!(driver.used(RECEIVE_QUEUE), [(u32::from(head), 3)]);
    assert_eq!(driver.read(BUFFERS, 3), b"OK\n");
    assert_eq!(driver.device.device().output_len(), 0);
}

#[test]
fn output_queued_later_fills_posted_buffers_on_process() {
    let mut driver = Driver::ready(8);
    let first = driver.post(
        RECEIVE_QUEUE,
        &[(BUFFERS, 3, true), (BUFFERS + 0x100, 3, true)],
    );
    let second = driver.post(RECEIVE_QUEUE, &[(BUFFERS + 0x200, 8, true)]);
    // Posted, but nothing to deliver: no buffer is used.
    assert_eq!(driver.notify(RECEIVE_QUEUE), Outcome::default());
    assert_eq!(driver.device.device_mut().queue_output(b"0123456789"), 10);
    assert!(driver.process().interrupt);
    assert_eq!(
        driver.used(RECEIVE_QUEUE),
        [(u32::from(first), 6), (u32::from(second), 4)]
    );
    assert_eq!(driver.read(BUFFERS, 3), b"012");
    assert_eq!(driver.read(BUFFERS + 0x100, 3), b"345");
    assert_eq!(driver.read(BUFFERS + 0x200, 4), b"6789");
    // Bytes next to a partly written buffer are untouched.
    assert_eq!(driver.read(BUFFERS + 3, 5), [0; 5]);
}

#[test]
fn output_beyond_the_capacity_is_refused() {
    let mut driver = Driver::ready(8);
    let console = driver.device.device_mut();
    assert_eq!(
        console.queue_output(&[b'x'; BUFFER_CAPACITY - 1]),
        BUFFER_CAPACITY - 1
    );
    assert_eq!(console.queue_output(b"yz"), 1);
    assert_eq!(console.output_len(), BUFFER_CAPACITY);
}

#[test]
fn a_large_transmission_resumes_after_the_cell_takes_bytes() {
    let mut driver = Driver::ready(8);
    let message: Vec<u8> = (0..6000u32).map(|index| (index % 251) as u8).collect();
    let head = driver.transmit(BUFFERS, &message);
    // The transmitted buffer fills up in the middle of the chain: it is not used yet.
    assert_eq!(driver.notify(TRANSMIT_QUEUE), Outcome::default());
    assert_eq!(driver.device.device().transmitted_len(), BUFFER_CAPACITY);
    let mut received = driver.take_transmitted();
    assert!(driver.process().interrupt);
    received.extend(driver.take_transmitted());
    assert_eq!(received, message);
    assert_eq!(driver.used(TRANSMIT_QUEUE), [(u32::from(head), 0)]);
}

#[test]
fn indices_wrap_around() {
    let mut driver = Driver::ready(4);
    for round in 0..70_000u32 {
        let byte = round as u8;
        let head = driver.transmit(BUFFERS + u64::from(round % 4), &[byte]);
        assert!(driver.notify(TRANSMIT_QUEUE).interrupt);
        assert_eq!(driver.take_transmitted(), [byte]);
        assert_eq!(driver.used(TRANSMIT_QUEUE), [(u32::from(head), 0)]);
        if round % 1000 == 0 {
            driver.device.device_mut().queue_output(&[byte, byte]);
            let head = driver.post(RECEIVE_QUEUE, &[(BUFFERS + 0x400, 16, true)]);
            assert!(driver.notify(RECEIVE_QUEUE).interrupt);
            assert_eq!(driver.used(RECEIVE_QUEUE), [(u32::from(head), 2)]);
        }
    }
    assert!(!driver.needs_reset());
}

#[test]
fn a_notification_before_driver_ok_is_served_at_driver_ok() {
    let mut driver = Driver::new();
    driver.negotiate();
    driver.set_up_queue(RECEIVE_QUEUE);
    driver.set_up_queue(TRANSMIT_QUEUE);
    driver.transmit(BUFFERS, b"early");
    assert_eq!(driver.notify(TRANSMIT_QUEUE), Outcome::default());
    assert_eq!(driver.device.device().transmitted_len(), 0);
    let outcome = driver.store(
        register::STATUS,
        u64::from(status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK),
    );
    assert!(outcome.driver_ready && outcome.interrupt);
    assert_eq!(driver.take_transmitted(), b"early");
}

#[test]
fn queue_set_up_is_ignored_while_ready() {
    let mut driver = Driver::ready(8);
    driver.store(register::QUEUE_SELECT, TRANSMIT_QUEUE as u64);
    driver.store(register::QUEUE_SIZE, 2);
    driver.store(register::QUEUE_DESCRIPTOR_LOW, 0);
    assert_eq!(driver.device.queues()[TRANSMIT_QUEUE].size(), 8);
    assert_eq!(driver.load(register::QUEUE_SIZE), 8);
    assert_eq!(
        driver.load(register::QUEUE_DESCRIPTOR_LOW),
        queue_area(TRANSMIT_QUEUE) & 0xffff_ffff
    );
    assert_eq!(
        driver.load(register::QUEUE_DEVICE_LOW),
        (queue_area(TRANSMIT_QUEUE) + 0x1000) & 0xffff_ffff
    );
    assert_eq!(driver.load(register::QUEUE_DEVICE_HIGH), 0);
    assert_eq!(driver.load(register::QUEUE_SELECT), TRANSMIT_QUEUE as u64);
    driver.store(register::DRIVER_FEATURES_SELECT, 1);
    assert_eq!(driver.load(register::DRIVER_FEATURES), 1);
    assert_eq!(driver.load(register::QUEUE_NOTIFY), 0);
    driver.transmit(BUFFERS, b"still fine");
    assert!(driver.notify(TRANSMIT_QUEUE).interrupt);
    assert_eq!(driver.take_transmitted(), b"still fine");
    // A queue that does not exist reads as absent and ignores set-up and notifications.
    driver.store(register::QUEUE_SELECT, 2);
    assert_eq!(driver.load(register::QUEUE_SIZE_MAX), 0);
    assert_eq!(driver.store(register::QUEUE_READY, 1), Outcome::default());
    assert_eq!(driver.load(register::QUEUE_READY), 0);
    assert_eq!(driver.notify(7), Outcome::default());
    assert_eq!(
        driver.store(register::QUEUE_NOTIFY, u64::MAX),
        Outcome::default()
    );
}

#[test]
fn a_bad_queue_layout_needs_a_reset() {
    let cases: [(u16, u64, QueueError); 5] = [
        (register::QUEUE_SIZE, 3, QueueError::Size),
        (register::QUEUE_SIZE, 512, QueueError::Size),
        (register::QUEUE_SIZE, 0, QueueError::Size),
        (
            register::QUEUE_DESCRIPTOR_LOW,
            (queue_area(0) + 8) & 0xffff_ffff,
            QueueError::Alignment,
        ),
        (
            register::QUEUE_DEVICE_HIGH,
            1,
            QueueError::Memory(MemoryError::OutOfRange),
        ),
    ];
    for (offset, value, expected) in cases {
        let mut driver = Driver::new();
        driver.negotiate();
        let area = queue_area(0);
        driver.store(register::QUEUE_SELECT, 0);
        driver.store(register::QUEUE_SIZE, 8);
        for (low, address) in [
            (register::QUEUE_DESCRIPTOR_LOW, area),
            (register::QUEUE_DRIVER_LOW, area + 0x800),
            (register::QUEUE_DEVICE_LOW, area + 0x1000),
        ] {
            driver.store(low, address & 0xffff_ffff);
        }
        driver.store(offset, value);
        let outcome = driver.store(register::QUEUE_READY, 1);
        assert_eq!(outcome.failure, Some(expected));
        assert!(outcome.interrupt);
        assert!(driver.needs_reset());
        assert_eq!(driver.load(register::QUEUE_READY), 0);
        assert_eq!(
            driver.load(register::INTERRUPT_STATUS),
            u64::from(INTERRUPT_CONFIGURATION_CHANGE)
        );
    }
}

/// Sets a device up, lets `spoil` corrupt the transmit queue, notifies it and checks that
/// the device then needs a reset for `expected`, and recovers after one.
fn check_corruption(spoil: impl Fn(&mut Driver), expected: QueueError) {
    let mut driver = Driver::ready(8);
    spoil(&mut driver);
    let outcome = driver.notify(TRANSMIT_QUEUE);
    assert_eq!(outcome.failure, Some(expected));
    assert!(outcome.interrupt);
    assert!(driver.needs_reset());
    assert_ne!(
        driver.load(register::INTERRUPT_STATUS) & u64::from(INTERRUPT_CONFIGURATION_CHANGE),
        0
    );
    assert!(!driver.device.is_live());
    // The driver cannot clear DEVICE_NEEDS_RESET, and the queues are left alone.
    driver.store(register::STATUS, 0xf);
    assert!(driver.needs_reset());
    assert_eq!(driver.notify(TRANSMIT_QUEUE), Outcome::default());
    assert_eq!(driver.process(), Outcome::default());
    // A reset and a new set-up make the device work again.
    assert!(driver.store(register::STATUS, 0).reset);
    assert_eq!(driver.load(register::STATUS), 0);
    assert_eq!(driver.load(register::INTERRUPT_STATUS), 0);
    driver.take_transmitted();
    driver.start();
    driver.transmit(BUFFERS, b"again");
    assert!(driver.notify(TRANSMIT_QUEUE).interrupt);
    assert_eq!(driver.take_transmitted(), b"again");
}

#[test]
fn an_indirect_descriptor_needs_a_reset() {
    check_corruption(
        |driver| {
            driver.write_descriptor(TRANSMIT_QUEUE, 0, BUFFERS, 16, DESCRIPTOR_INDIRECT, 0);
            driver.make_available(TRANSMIT_QUEUE, 0);
        },
        QueueError::IndirectDescriptor,
    );
}

#[test]
fn a_head_beyond_the_table_needs_a_reset() {
    check_corruption(
        |driver| driver.make_available(TRANSMIT_QUEUE, 8),
        QueueError::DescriptorIndex,
    );
}

#[test]
fn a_next_beyond_the_table_needs_a_reset() {
    check_corruption(
        |driver| {
            driver.write_descriptor(TRANSMIT_QUEUE, 0, BUFFERS, 1, DESCRIPTOR_NEXT, 0xffff);
            driver.make_available(TRANSMIT_QUEUE, 0);
        },
        QueueError::DescriptorIndex,
    );
}

#[test]
fn a_looping_chain_needs_a_reset() {
    check_corruption(
        |driver| {
            driver.write_descriptor(TRANSMIT_QUEUE, 0, BUFFERS, 1, DESCRIPTOR_NEXT, 1);
            driver.write_descriptor(TRANSMIT_QUEUE, 1, BUFFERS, 1, DESCRIPTOR_NEXT, 0);
            driver.make_available(TRANSMIT_QUEUE, 0);
        },
        QueueError::ChainTooLong,
    );
}

#[test]
fn an_available_index_too_far_ahead_needs_a_reset() {
    check_corruption(
        |driver| {
            let ring = queue_area(TRANSMIT_QUEUE) + 0x800;
            driver.ram().write_u16(ring + 2, 9).unwrap();
        },
        QueueError::AvailableIndex,
    );
}

#[test]
fn a_buffer_outside_ram_needs_a_reset() {
    for address in [0, BASE + RAM_BYTES as u64 - 4, u64::MAX - 2] {
        check_corruption(
            |driver| {
                driver.write_descriptor(TRANSMIT_QUEUE, 0, address, 8, 0, 0);
                driver.make_available(TRANSMIT_QUEUE, 0);
            },
            QueueError::Memory(MemoryError::OutOfRange),
        );
    }
}

#[test]
fn a_chain_rewritten_after_it_was_taken_ends_early() {
    // The guest shrinks a transmit buffer while the device is half-way through it.
    let mut driver = Driver::ready(8);
    let message = vec![b'a'; BUFFER_CAPACITY + 100];
    let head = driver.transmit(BUFFERS, &message);
    driver.notify(TRANSMIT_QUEUE);
    driver.write_descriptor(TRANSMIT_QUEUE, head, BUFFERS, 10, 0, 0);
    assert_eq!(driver.take_transmitted().len(), BUFFER_CAPACITY);
    assert!(driver.process().interrupt);
    assert_eq!(driver.take_transmitted(), b"");
    assert_eq!(driver.used(TRANSMIT_QUEUE), [(u32::from(head), 0)]);
    assert!(!driver.needs_reset());
}

#[test]
fn a_reset_forgets_queues_features_and_the_chain_being_read() {
    let mut driver = Driver::ready(8);
    driver.transmit(BUFFERS, &[b'a'; BUFFER_CAPACITY + 1]);
    driver.notify(TRANSMIT_QUEUE);
    assert!(driver.store(register::STATUS, 0).reset);
    assert_eq!(driver.device.driver_features(), 0);
    for queue in [RECEIVE_QUEUE, TRANSMIT_QUEUE] {
        driver.store(register::QUEUE_SELECT, queue as u64);
        assert_eq!(driver.load(register::QUEUE_READY), 0);
    }
    driver.take_transmitted();
    // Without live queues there is nothing to resume.
    assert_eq!(driver.process(), Outcome::default());
    assert_eq!(driver.device.device().transmitted_len(), 0);
}

#[test]
fn guest_ram_checks_every_range() {
    let words = new_ram();
    let ram = GuestRam::new(BASE, &words);
    let end = BASE + RAM_BYTES as u64;
    assert_eq!(ram.size(), RAM_BYTES as u64);
    assert!(ram.contains(BASE, RAM_BYTES as u64));
    assert!(ram.contains(end, 0));
    assert!(!ram.contains(end - 1, 2));
    assert!(!ram.contains(BASE - 1, 1));
    assert!(!ram.contains(u64::MAX, 2));
    assert_eq!(ram.read_u8(end), Err(MemoryError::OutOfRange));
    assert_eq!(ram.read_u64(end - 4), Err(MemoryError::OutOfRange));
    assert_eq!(ram.write_u32(end - 2, 1), Err(MemoryError::OutOfRange));
    assert_eq!(ram.write_u8(0, 1), Err(MemoryError::OutOfRange));
    assert_eq!(ram.load_u16_acquire(end), Err(MemoryError::OutOfRange));
    assert_eq!(ram.load_u16_acquire(BASE + 3), Err(MemoryError::Misaligned));
    assert_eq!(
        ram.store_u16_release(BASE + 5, 1),
        Err(MemoryError::Misaligned)
    );
    // Nothing was written by the refused stores.
    assert!(words.iter().all(|word| word.load(Ordering::Relaxed) == 0));
}

#[test]
fn guest_ram_stores_only_the_bytes_given() {
    let words = new_ram();
    let ram = GuestRam::new(BASE, &words);
    ram.write(BASE, &[0xff; 24]).unwrap();
    ram.write(BASE + 5, b"abcdefghij").unwrap();
    assert_eq!(words[0].load(Ordering::Relaxed), 0x6362_61ff_ffff_ffff);
    let mut bytes = [0; 24];
    ram.read(BASE, &mut bytes).unwrap();
    assert_eq!(&bytes[..5], [0xff; 5]);
    assert_eq!(&bytes[5..15], b"abcdefghij");
    assert_eq!(&bytes[15..], [0xff; 9]);
    ram.write_u64(BASE + 0x13, 0x0102_0304_0506_0708).unwrap();
    assert_eq!(ram.read_u64(BASE + 0x13), Ok(0x0102_0304_0506_0708));
    assert_eq!(ram.read_u16(BASE + 0x13), Ok(0x0708));
    assert_eq!(ram.read_u32(BASE + 0x17), Ok(0x0102_0304));
    ram.store_u16_release(BASE + 0x16, 0xbeef).unwrap();
    assert_eq!(ram.load_u16_acquire(BASE + 0x16), Ok(0xbeef));
    assert_eq!(ram.read_u64(BASE + 0x13), Ok(0x0102_03be_ef06_0708));
}

#[test]
fn byte_queue_wraps_around() {
    let mut queue = ByteQueue::<8>::new();
    assert_eq!(queue.push(b"abcdef"), 6);
    let mut buffer = [0; 4];
    assert_eq!(queue.pop(&mut buffer), 4);
    assert_eq!(&buffer, b"abcd");
    assert_eq!(queue.push(b"ghijklmn"), 6);
    assert_eq!(queue.free(), 0);
    assert_eq!(queue.as_slices(), (&b"efgh"[..], &b"ijkl"[..]));
    let mut all = [0; 16];
    assert_eq!(queue.pop(&mut all), 8);
    assert_eq!(&all[..8], b"efghijkl");
    assert!(queue.is_empty());
    let mut empty = ByteQueue::<0>::new();
    assert_eq!(empty.push(b"x"), 0);
    assert_eq!(empty.pop(&mut all), 0);
}

/// A small deterministic pseudo-random generator (xorshift64*).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn garbage_registers_and_memory_never_panic() {
    let mut random = Random(0x1234_5678_9abc_def1);
    let (mut failures, mut interrupts) = (0, 0);
    for round in 0..100 {
        let mut driver = Driver::ready(if round % 2 == 0 { 8 } else { 256 });
        for _ in 0..300 {
            if !driver.device.is_live() {
                driver.start();
            }
            let choice = random.next();
            match choice % 8 {
                // Scribble over the queue areas.
                0 | 1 => {
                    let address = queue_area((choice >> 8) as usize % 2) + (random.next() % 0x1800);
                    let _ = driver.ram().write_u64(address & !7, random.next());
                }
                // Make a random descriptor available, with plausible or wild fields.
                2 => {
                    let queue = (choice >> 8) as usize % 2;
                    let index = (random.next() % 10) as u16;
                    let address = if choice & (1 << 20) != 0 {
                        BUFFERS + random.next() % 0x8000
                    } else {
                        random.next()
                    };
                    let flags = (random.next() % 8) as u16;
                    let next = (random.next() % 12) as u16;
                    let length = (random.next() % 0x3000) as u32;
                    if index < driver.size {
                        driver.write_descriptor(queue, index, address, length, flags, next);
                    }
                    driver.make_available(queue, index);
                }
                3 => {
                    let outcome = driver.notify((choice >> 8) as usize % 3);
                    failures += usize::from(outcome.failure.is_some());
                    interrupts += usize::from(outcome.interrupt);
                }
                4 => {
                    let offset = (random.next() % 0x200) as u16;
                    let size = [1, 2, 4, 8][(random.next() % 4) as usize];
                    driver.access(offset, size, Some(random.next()));
                }
                5 => {
                    let offset = (random.next() % 0x200) as u16;
                    driver.access(offset, 4, None);
                }
                6 => {
                    driver.device.device_mut().queue_output(&[b'z'; 300]);
                    driver.process();
                }
                _ => {
                    driver.take_transmitted();
                    driver.process();
                }
            }
        }
    }
    // The garbage reached both the working and the failing paths.
    assert!(
        failures > 50 && interrupts > failures,
        "{failures} {interrupts}"
    );
}
