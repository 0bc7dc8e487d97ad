//! Split virtqueues (VIRTIO 1.x §2.7), seen from the device.
//!
//! The driver owns three areas in guest memory, whose addresses and size it gives through
//! the register file before making the queue ready:
//!
//! | area | layout (little-endian) | written by |
//! |---|---|---|
//! | descriptor table | `size` × { addr u64, len u32, flags u16, next u16 } | driver |
//! | available ring | flags u16, idx u16, ring\[size\] u16 | driver |
//! | used ring | flags u16, idx u16, ring\[size\] { id u32, len u32 } | device |
//!
//! A [`Queue`] holds those addresses and the device's two private counters: the next
//! available entry to take and the next used entry to fill. [`Queue::pop`] takes the next
//! chain the driver made available and checks it whole (indices, flags, length, buffers in
//! guest memory), giving a [`Chain`]; [`Queue::read`] and [`Queue::write`] copy from its
//! device-readable and into its device-writable buffers; [`Queue::push_used`] gives it back
//! with the number of bytes written. A `Chain` is not `Clone`: each is returned at most once.
//!
//! Invariants: a ready queue has a power-of-two size in `1..=MAX_QUEUE_SIZE` and its three
//! areas lie in guest memory, suitably aligned ([`Queue::activate`] checks this once); a
//! descriptor index is compared with the size before its entry is read; a chain is walked
//! for at most `size` descriptors; the driver's available index may be at most `size`
//! entries ahead of the device's. The guest may rewrite descriptors between `pop` and the
//! copies: each walk re-checks everything, so that only yields different bytes or an error.

use super::memory::{GuestMemory, MemoryError};

/// Largest queue size the device offers (QueueNumMax).
pub const MAX_QUEUE_SIZE: u16 = 256;
/// Bytes of one descriptor table entry.
pub const DESCRIPTOR_SIZE: u64 = 16;
/// Descriptor flag: the chain continues at `next`.
pub const DESCRIPTOR_NEXT: u16 = 1;
/// Descriptor flag: the buffer is device-writable (else device-readable).
pub const DESCRIPTOR_WRITE: u16 = 2;
/// Descriptor flag: the buffer holds a table of descriptors (not offered, refused).
pub const DESCRIPTOR_INDIRECT: u16 = 4;

/// Why a queue is unusable; the device then needs a reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// The driver made the queue ready with a size that is 0, not a power of two or above
    /// [`MAX_QUEUE_SIZE`].
    Size,
    /// The driver made the queue ready with a misaligned area (descriptor table 16 bytes,
    /// available ring 2, used ring 4).
    Alignment,
    /// The available index ran more than the queue size ahead of the device.
    AvailableIndex,
    /// A chain's head or a descriptor's `next` is beyond the descriptor table.
    DescriptorIndex,
    /// A descriptor has the INDIRECT flag, which was not negotiated.
    IndirectDescriptor,
    /// A chain is longer than the queue size: its `next` fields make a loop.
    ChainTooLong,
    /// A chain was given back to a queue that is no longer ready (the device kept it across
    /// a reset).
    NotReady,
    /// An area or a buffer is not in guest memory, or accessing it failed.
    Memory(MemoryError),
}

impl QueueError {
    /// A short description, for messages.
    pub const fn description(self) -> &'static str {
        match self {
            Self::Size => "queue size not a power of two up to the maximum",
            Self::Alignment => "misaligned queue area",
            Self::AvailableIndex => "available index too far ahead",
            Self::DescriptorIndex => "descriptor index beyond the table",
            Self::IndirectDescriptor => "indirect descriptor",
            Self::ChainTooLong => "descriptor chain longer than the queue (a loop)",
            Self::NotReady => "chain returned to a queue that is not ready",
            Self::Memory(error) => error.description(),
        }
    }
}

impl From<MemoryError> for QueueError {
    fn from(error: MemoryError) -> Self {
        Self::Memory(error)
    }
}

/// One descriptor table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// Guest-physical address of the buffer.
    pub address: u64,
    /// Length of the buffer in bytes.
    pub length: u32,
    /// [`DESCRIPTOR_NEXT`], [`DESCRIPTOR_WRITE`], [`DESCRIPTOR_INDIRECT`].
    pub flags: u16,
    /// The next descriptor of the chain, if `flags` has [`DESCRIPTOR_NEXT`].
    pub next: u16,
}

impl Descriptor {
    /// Whether the device writes this buffer (else it reads it).
    pub const fn is_writable(&self) -> bool {
        self.flags & DESCRIPTOR_WRITE != 0
    }
}

/// A descriptor chain taken from the available ring, to be given back with
/// [`Queue::push_used`].
#[derive(Debug, PartialEq, Eq)]
pub struct Chain {
    head: u16,
    readable: u64,
    writable: u64,
}

impl Chain {
    /// The index of the chain's first descriptor (the used element's `id`).
    pub const fn head(&self) -> u16 {
        self.head
    }

    /// Total bytes of its device-readable buffers, when it was taken.
    pub const fn readable_length(&self) -> u64 {
        self.readable
    }

    /// Total bytes of its device-writable buffers, when it was taken.
    pub const fn writable_length(&self) -> u64 {
        self.writable
    }
}

/// A split virtqueue's addresses, size and the device's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Queue {
    /// QueueNum: the size the driver chose.
    pub(super) size: u16,
    /// QueueReady.
    pub(super) ready: bool,
    /// QueueDesc: the descriptor table.
    pub(super) descriptor_table: u64,
    /// QueueDriver: the available ring.
    pub(super) available_ring: u64,
    /// QueueDevice: the used ring.
    pub(super) used_ring: u64,
    /// Free-running index of the next available ring entry to take.
    next_available: u16,
    /// Free-running index of the next used ring entry to fill (the used index published).
    next_used: u16,
}

impl Queue {
    /// A queue that is not ready, with size 0 and all addresses 0.
    pub const fn new() -> Self {
        Self {
            size: 0,
            ready: false,
            descriptor_table: 0,
            available_ring: 0,
            used_ring: 0,
            next_available: 0,
            next_used: 0,
        }
    }

    /// Whether the driver made the queue ready (and its layout was accepted).
    pub const fn is_ready(&self) -> bool {
        self.ready
    }

    /// The queue size the driver chose.
    pub const fn size(&self) -> u16 {
        self.size
    }

    /// Checks the layout the driver wrote and makes the queue ready, with both counters at 0.
    ///
    /// Errors: [`QueueError::Size`], [`QueueError::Alignment`], [`QueueError::Memory`] (an
    /// area not entirely in guest memory); the queue then stays not ready.
    pub fn activate(&mut self, memory: &impl GuestMemory) -> Result<(), QueueError> {
        if self.size == 0 || !self.size.is_power_of_two() || self.size > MAX_QUEUE_SIZE {
            return Err(QueueError::Size);
        }
        if !self.descriptor_table.is_multiple_of(16)
            || !self.available_ring.is_multiple_of(2)
            || !self.used_ring.is_multiple_of(4)
        {
            return Err(QueueError::Alignment);
        }
        let size = u64::from(self.size);
        for (address, length) in [
            (self.descriptor_table, DESCRIPTOR_SIZE * size),
            (self.available_ring, 6 + 2 * size),
            (self.used_ring, 6 + 8 * size),
        ] {
            if !memory.contains(address, length) {
                return Err(QueueError::Memory(MemoryError::OutOfRange));
            }
        }
        self.next_available = 0;
        self.next_used = 0;
        self.ready = true;
        Ok(())
    }

    /// Forgets everything: not ready, size and addresses 0.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Takes the next chain the driver made available, checked whole; `None` if there is
    /// none (or the queue is not ready).
    ///
    /// Errors: [`QueueError::AvailableIndex`], [`QueueError::DescriptorIndex`],
    /// [`QueueError::IndirectDescriptor`], [`QueueError::ChainTooLong`],
    /// [`QueueError::Memory`] (a ring or a buffer outside guest memory).
    pub fn pop(&mut self, memory: &impl GuestMemory) -> Result<Option<Chain>, QueueError> {
        if !self.ready {
            return Ok(None);
        }
        let available = memory.load_u16_acquire(self.available_ring + 2)?;
        let waiting = available.wrapping_sub(self.next_available);
        if waiting == 0 {
            return Ok(None);
        }
        if waiting > self.size {
            return Err(QueueError::AvailableIndex);
        }
        let slot = u64::from(self.next_available % self.size);
        let head = memory.read_u16(self.available_ring + 4 + 2 * slot)?;
        let mut chain = Chain {
            head,
            readable: 0,
            writable: 0,
        };
        let mut walk = self.walk(head);
        while let Some(descriptor) = walk.next(memory)? {
            let length = u64::from(descriptor.length);
            if !memory.contains(descriptor.address, length) {
                return Err(QueueError::Memory(MemoryError::OutOfRange));
            }
            if descriptor.is_writable() {
                chain.writable += length;
            } else {
                chain.readable += length;
            }
        }
        self.next_available = self.next_available.wrapping_add(1);
        Ok(Some(chain))
    }

    /// Copies the chain's device-readable bytes from byte `offset` of them (counting all its
    /// readable buffers in order as one stream) into `buffer`; returns how many were copied
    /// (fewer than `buffer.len()` at the end of the stream).
    ///
    /// Errors: as for [`Queue::pop`], should the guest have changed the chain since.
    pub fn read(
        &self,
        memory: &impl GuestMemory,
        chain: &Chain,
        offset: u64,
        buffer: &mut [u8],
    ) -> Result<usize, QueueError> {
        let mut skip = offset;
        let mut copied = 0;
        let mut walk = self.walk(chain.head);
        while copied < buffer.len() {
            let Some(descriptor) = walk.next(memory)? else {
                break;
            };
            if descriptor.is_writable() {
                continue;
            }
            let Some((address, count)) =
                Self::window(&descriptor, &mut skip, buffer.len() - copied)
            else {
                continue;
            };
            memory.read(address, &mut buffer[copied..copied + count])?;
            copied += count;
        }
        Ok(copied)
    }

    /// Copies `bytes` into the chain's device-writable buffers from byte `offset` of them
    /// (counting all its writable buffers in order as one stream); returns how many were
    /// copied (fewer than `bytes.len()` when the buffers are full).
    ///
    /// Errors: as for [`Queue::pop`], should the guest have changed the chain since, and
    /// [`MemoryError::Contended`].
    pub fn write(
        &self,
        memory: &impl GuestMemory,
        chain: &Chain,
        offset: u64,
        bytes: &[u8],
    ) -> Result<usize, QueueError> {
        let mut skip = offset;
        let mut copied = 0;
        let mut walk = self.walk(chain.head);
        while copied < bytes.len() {
            let Some(descriptor) = walk.next(memory)? else {
                break;
            };
            if !descriptor.is_writable() {
                continue;
            }
            let Some((address, count)) = Self::window(&descriptor, &mut skip, bytes.len() - copied)
            else {
                continue;
            };
            memory.write(address, &bytes[copied..copied + count])?;
            copied += count;
        }
        Ok(copied)
    }

    /// Gives `chain` back to the driver through the used ring, saying the device wrote
    /// `written` bytes into it: writes the used element, then publishes the used index
    /// with a `Release` store.
    ///
    /// Errors: [`QueueError::NotReady`], [`QueueError::Memory`].
    pub fn push_used(
        &mut self,
        memory: &impl GuestMemory,
        chain: Chain,
        written: u32,
    ) -> Result<(), QueueError> {
        if !self.ready || self.size == 0 {
            return Err(QueueError::NotReady);
        }
        let slot = u64::from(self.next_used % self.size);
        let element = self.used_ring + 4 + 8 * slot;
        memory.write_u32(element, u32::from(chain.head))?;
        memory.write_u32(element + 4, written)?;
        self.next_used = self.next_used.wrapping_add(1);
        memory.store_u16_release(self.used_ring + 2, self.next_used)?;
        Ok(())
    }

    /// A walk of the chain starting at descriptor `head`.
    fn walk(&self, head: u16) -> Walk {
        Walk {
            table: self.descriptor_table,
            size: self.size,
            next: Some(head),
            remaining: self.size,
        }
    }

    /// The part of `descriptor`'s buffer to copy: skips what is left of `skip` (reducing
    /// it), then at most `wanted` bytes; `None` when nothing of this buffer is copied.
    fn window(descriptor: &Descriptor, skip: &mut u64, wanted: usize) -> Option<(u64, usize)> {
        let length = u64::from(descriptor.length);
        if *skip >= length {
            *skip -= length;
            return None;
        }
        let start = *skip;
        *skip = 0;
        let count = usize::try_from(length - start)
            .unwrap_or(usize::MAX)
            .min(wanted);
        let address = descriptor.address.checked_add(start)?;
        (count > 0).then_some((address, count))
    }
}

/// A bounded walk along a descriptor chain.
struct Walk {
    table: u64,
    size: u16,
    next: Option<u16>,
    remaining: u16,
}

impl Walk {
    /// The next descriptor, checked; `None` after the last one.
    fn next(&mut self, memory: &impl GuestMemory) -> Result<Option<Descriptor>, QueueError> {
        let Some(index) = self.next else {
            return Ok(None);
        };
        if index >= self.size {
            return Err(QueueError::DescriptorIndex);
        }
        if self.remaining == 0 {
            return Err(QueueError::ChainTooLong);
        }
        self.remaining -= 1;
        let mut entry = [0; DESCRIPTOR_SIZE as usize];
        memory.read(self.table + DESCRIPTOR_SIZE * u64::from(index), &mut entry)?;
        let [a0, a1, a2, a3, a4, a5, a6, a7, l0, l1, l2, l3, f0, f1, n0, n1] = entry;
        let descriptor = Descriptor {
            address: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
            length: u32::from_le_bytes([l0, l1, l2, l3]),
            flags: u16::from_le_bytes([f0, f1]),
            next: u16::from_le_bytes([n0, n1]),
        };
        if descriptor.flags & DESCRIPTOR_INDIRECT != 0 {
            return Err(QueueError::IndirectDescriptor);
        }
        self.next = (descriptor.flags & DESCRIPTOR_NEXT != 0).then_some(descriptor.next);
        Ok(Some(descriptor))
    }
}
