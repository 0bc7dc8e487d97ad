//! virtio-console (VIRTIO 1.x §5.3): one port, no multiport, as a [`Device`].
//!
//! Queue 0 ([`RECEIVE_QUEUE`]) carries bytes to the driver: the driver posts writable
//! buffers and the device fills them from its outgoing bytes. Queue 1 ([`TRANSMIT_QUEUE`])
//! carries bytes from the driver: the device copies its readable buffers into its
//! transmitted bytes. The cell moves bytes between those two buffers and the world:
//! [`Console::take_transmitted`] empties the transmitted bytes, [`Console::queue_output`]
//! adds outgoing bytes; after either it calls
//! [`MmioDevice::process`](super::MmioDevice::process) so that the device consumes more of
//! the transmit queue or fills posted receive buffers.
//!
//! Configuration space (12 bytes): cols u16, rows u16, max_nr_ports u32 (= 1), emerg_wr u32
//! (reads 0; a store to it transmits its low byte). No feature bit is offered (not SIZE,
//! MULTIPORT or EMERG_WRITE), so a driver need not look at it.
//!
//! Invariants: both buffers hold at most [`BUFFER_CAPACITY`] bytes. Outgoing bytes that do
//! not fit are refused ([`Console::queue_output`] says how many it took) and kept bytes
//! stay until the driver posts receive buffers. Transmitted bytes are never dropped: when
//! the buffer is full the device stops reading the transmit queue, keeping the chain it
//! was reading and how far it got, and goes on after [`Console::take_transmitted`] (only an
//! emergency write that does not fit is dropped, and counted). Each notification takes at
//! most the queue size of chains.

use super::memory::GuestMemory;
use super::mmio::Device;
use super::queue::{Chain, Queue, QueueError};

/// DeviceID of a console.
pub const DEVICE_ID: u32 = 3;
/// The receive queue (device to driver).
pub const RECEIVE_QUEUE: usize = 0;
/// The transmit queue (driver to device).
pub const TRANSMIT_QUEUE: usize = 1;
/// Capacity of the transmitted and the outgoing buffers, in bytes.
pub const BUFFER_CAPACITY: usize = 4096;
/// Offset of emerg_wr in the configuration space.
const EMERGENCY_WRITE: usize = 8;
/// Bytes copied from guest memory at a time.
const COPY_CHUNK: usize = 256;

/// A bounded first-in first-out queue of bytes.
#[derive(Clone, Debug)]
pub struct ByteQueue<const CAPACITY: usize> {
    bytes: [u8; CAPACITY],
    start: usize,
    length: usize,
}

impl<const CAPACITY: usize> ByteQueue<CAPACITY> {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            bytes: [0; CAPACITY],
            start: 0,
            length: 0,
        }
    }

    /// Bytes held.
    pub const fn len(&self) -> usize {
        self.length
    }

    /// Whether no byte is held.
    pub const fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Bytes that still fit.
    pub const fn free(&self) -> usize {
        CAPACITY - self.length
    }

    /// Appends as many of `bytes` as fit; returns how many.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let count = bytes.len().min(self.free());
        for &byte in &bytes[..count] {
            let end = (self.start + self.length) % CAPACITY;
            self.bytes[end] = byte;
            self.length += 1;
        }
        count
    }

    /// Moves the oldest bytes into `buffer`; returns how many.
    pub fn pop(&mut self, buffer: &mut [u8]) -> usize {
        let (first, second) = self.as_slices();
        let from_first = first.len().min(buffer.len());
        buffer[..from_first].copy_from_slice(&first[..from_first]);
        let from_second = second.len().min(buffer.len() - from_first);
        buffer[from_first..from_first + from_second].copy_from_slice(&second[..from_second]);
        let count = from_first + from_second;
        self.discard(count);
        count
    }

    /// The bytes held, oldest first, as two slices (the second one is empty unless they
    /// wrap around the end of the storage).
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        let first_length = self.length.min(CAPACITY - self.start);
        let first = &self.bytes[self.start..self.start + first_length];
        let second = &self.bytes[..self.length - first_length];
        (first, second)
    }

    /// Drops the `count` oldest bytes (all of them if fewer are held).
    pub fn discard(&mut self, count: usize) {
        let count = count.min(self.length);
        self.length -= count;
        self.start = if self.length == 0 {
            0
        } else {
            (self.start + count) % CAPACITY
        };
    }
}

impl<const CAPACITY: usize> Default for ByteQueue<CAPACITY> {
    fn default() -> Self {
        Self::new()
    }
}

/// A virtio-console device model.
#[derive(Debug)]
pub struct Console {
    columns: u16,
    rows: u16,
    transmitted: ByteQueue<BUFFER_CAPACITY>,
    outgoing: ByteQueue<BUFFER_CAPACITY>,
    /// The transmit chain being read and how many of its bytes were taken, when the
    /// transmitted buffer filled up in the middle of it.
    transmitting: Option<(Chain, u64)>,
    dropped_emergency: u64,
}

impl Console {
    /// A console of `columns` × `rows` characters, with empty buffers.
    pub const fn new(columns: u16, rows: u16) -> Self {
        Self {
            columns,
            rows,
            transmitted: ByteQueue::new(),
            outgoing: ByteQueue::new(),
            transmitting: None,
            dropped_emergency: 0,
        }
    }

    /// Bytes the driver transmitted that were not taken yet.
    pub const fn transmitted_len(&self) -> usize {
        self.transmitted.len()
    }

    /// Moves the oldest transmitted bytes into `buffer`; returns how many.
    pub fn take_transmitted(&mut self, buffer: &mut [u8]) -> usize {
        self.transmitted.pop(buffer)
    }

    /// Queues `bytes` for the driver; returns how many fit (the rest is refused).
    pub fn queue_output(&mut self, bytes: &[u8]) -> usize {
        self.outgoing.push(bytes)
    }

    /// Bytes queued for the driver that no receive buffer took yet.
    pub const fn output_len(&self) -> usize {
        self.outgoing.len()
    }

    /// Emergency writes dropped because the transmitted buffer was full.
    pub const fn dropped_emergency_writes(&self) -> u64 {
        self.dropped_emergency
    }

    /// Fills receive buffers from the outgoing bytes; returns whether buffers were used.
    fn fill_receive(
        &mut self,
        queue: &mut Queue,
        memory: &impl GuestMemory,
    ) -> Result<bool, QueueError> {
        let mut used = false;
        for _ in 0..queue.size() {
            if self.outgoing.is_empty() {
                break;
            }
            let Some(chain) = queue.pop(memory)? else {
                break;
            };
            let (first, second) = self.outgoing.as_slices();
            let mut written = queue.write(memory, &chain, 0, first)?;
            if written == first.len() {
                written += queue.write(memory, &chain, written as u64, second)?;
            }
            self.outgoing.discard(written);
            queue.push_used(memory, chain, u32::try_from(written).unwrap_or(u32::MAX))?;
            used = true;
        }
        Ok(used)
    }

    /// Copies transmit buffers into the transmitted bytes while they fit; returns whether
    /// buffers were used.
    fn drain_transmit(
        &mut self,
        queue: &mut Queue,
        memory: &impl GuestMemory,
    ) -> Result<bool, QueueError> {
        let mut used = false;
        let mut taken = 0;
        let mut scratch = [0; COPY_CHUNK];
        loop {
            let (chain, mut offset) = match self.transmitting.take() {
                Some(partial) => partial,
                None if taken < queue.size() => match queue.pop(memory)? {
                    Some(chain) => {
                        taken += 1;
                        (chain, 0)
                    }
                    None => break,
                },
                None => break,
            };
            while offset < chain.readable_length() {
                let remaining =
                    usize::try_from(chain.readable_length() - offset).unwrap_or(usize::MAX);
                let count = remaining.min(self.transmitted.free()).min(COPY_CHUNK);
                if count == 0 {
                    break;
                }
                let copied = queue.read(memory, &chain, offset, &mut scratch[..count])?;
                if copied == 0 {
                    // The guest shortened the chain since it was taken: it ends here.
                    offset = chain.readable_length();
                    break;
                }
                self.transmitted.push(&scratch[..copied]);
                offset += copied as u64;
            }
            if offset < chain.readable_length() {
                self.transmitting = Some((chain, offset));
                break;
            }
            queue.push_used(memory, chain, 0)?;
            used = true;
        }
        Ok(used)
    }
}

impl Device for Console {
    const DEVICE_ID: u32 = DEVICE_ID;
    const QUEUES: usize = 2;

    fn features(&self) -> u64 {
        0
    }

    fn read_config(&self, offset: usize) -> u8 {
        let [columns_low, columns_high] = self.columns.to_le_bytes();
        let [rows_low, rows_high] = self.rows.to_le_bytes();
        let [ports_0, ports_1, ports_2, ports_3] = 1u32.to_le_bytes();
        let space = [
            columns_low,
            columns_high,
            rows_low,
            rows_high,
            ports_0,
            ports_1,
            ports_2,
            ports_3,
            0,
            0,
            0,
            0,
        ];
        space.get(offset).copied().unwrap_or(0)
    }

    fn write_config(&mut self, offset: usize, bytes: &[u8]) {
        if offset == EMERGENCY_WRITE && !bytes.is_empty() && self.transmitted.push(&bytes[..1]) == 0
        {
            self.dropped_emergency += 1;
        }
    }

    fn notify(
        &mut self,
        queue: usize,
        queues: &mut [Queue],
        memory: &impl GuestMemory,
    ) -> Result<bool, QueueError> {
        let Some(target) = queues.get_mut(queue) else {
            return Ok(false);
        };
        match queue {
            RECEIVE_QUEUE => self.fill_receive(target, memory),
            TRANSMIT_QUEUE => self.drain_transmit(target, memory),
            _ => Ok(false),
        }
    }

    fn reset(&mut self) {
        self.transmitting = None;
    }
}
