//! Guest memory: loads and stores at guest-physical addresses, each one bounds-checked.
//!
//! [`GuestMemory`] is what the virtqueue code needs from guest RAM: byte copies, the
//! little-endian integers built on them, and the two single-copy-atomic 16-bit accesses of
//! the ring indices. [`GuestRam`] implements it over the guest's RAM seen as atomic 64-bit
//! words (from a shared memory capability's `SharedMemory::words`), the word at index *i*
//! holding guest-physical bytes `base + 8i .. base + 8i + 8`.
//!
//! Invariants: an access touches guest RAM only if the whole range `[address, address +
//! length)` lies inside it, without overflow; otherwise it fails with
//! [`MemoryError::OutOfRange`] and touches nothing. The guest's CPUs may access the same
//! memory at any time, so it is seen only through atomics. A store of part of a word is a
//! compare-and-swap that changes only the bytes stored, so bytes next to a buffer, which
//! the driver may be writing, are never overwritten with stale values.

use core::sync::atomic::{AtomicU64, Ordering};

/// Why a guest memory access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryError {
    /// The range is not entirely in guest RAM, or its end overflows.
    OutOfRange,
    /// A ring index access at an odd address (it could not be single-copy atomic).
    Misaligned,
    /// The guest kept changing a word the device was storing part of: the
    /// compare-and-swap failed [`MAX_STORE_ATTEMPTS`] times in a row.
    Contended,
}

impl MemoryError {
    /// A short description, for messages.
    pub const fn description(self) -> &'static str {
        match self {
            Self::OutOfRange => "guest address outside RAM",
            Self::Misaligned => "misaligned ring index",
            Self::Contended => "guest kept changing a word being stored",
        }
    }
}

/// Compare-and-swap attempts for one partial-word store before giving up.
pub const MAX_STORE_ATTEMPTS: u32 = 1024;

/// Loads and stores at guest-physical addresses.
///
/// Multi-byte values are little-endian (virtio 1.x). Loads and stores other than the two
/// index accesses are `Relaxed`: they are ordered by the index accesses around them.
pub trait GuestMemory {
    /// Whether `[address, address + length)` lies entirely in guest memory.
    fn contains(&self, address: u64, length: u64) -> bool;

    /// Copies `buffer.len()` bytes from `address` into `buffer`.
    ///
    /// Errors: [`MemoryError::OutOfRange`] (nothing is read).
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), MemoryError>;

    /// Copies `bytes` to `address`.
    ///
    /// Errors: [`MemoryError::OutOfRange`] (nothing is written), [`MemoryError::Contended`]
    /// (part of `bytes` may have been written).
    fn write(&self, address: u64, bytes: &[u8]) -> Result<(), MemoryError>;

    /// Loads the 16-bit value at `address` (even) with one single-copy-atomic `Acquire`
    /// load: later loads see what the guest wrote before storing it.
    ///
    /// Errors: [`MemoryError::OutOfRange`], [`MemoryError::Misaligned`].
    fn load_u16_acquire(&self, address: u64) -> Result<u16, MemoryError>;

    /// Stores the 16-bit `value` at `address` (even) with one single-copy-atomic `Release`
    /// store: a guest that sees it also sees every earlier store.
    ///
    /// Errors: [`MemoryError::OutOfRange`], [`MemoryError::Misaligned`],
    /// [`MemoryError::Contended`].
    fn store_u16_release(&self, address: u64, value: u16) -> Result<(), MemoryError>;

    /// The byte at `address`.
    fn read_u8(&self, address: u64) -> Result<u8, MemoryError> {
        let mut bytes = [0; 1];
        self.read(address, &mut bytes)?;
        Ok(bytes[0])
    }

    /// The little-endian 16-bit value at `address`.
    fn read_u16(&self, address: u64) -> Result<u16, MemoryError> {
        let mut bytes = [0; 2];
        self.read(address, &mut bytes)?;
        Ok(u16::from_le_bytes(bytes))
    }

    /// The little-endian 32-bit value at `address`.
    fn read_u32(&self, address: u64) -> Result<u32, MemoryError> {
        let mut bytes = [0; 4];
        self.read(address, &mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    /// The little-endian 64-bit value at `address`.
    fn read_u64(&self, address: u64) -> Result<u64, MemoryError> {
        let mut bytes = [0; 8];
        self.read(address, &mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Stores the byte `value` at `address`.
    fn write_u8(&self, address: u64, value: u8) -> Result<(), MemoryError> {
        self.write(address, &[value])
    }

    /// Stores `value` little-endian at `address`.
    fn write_u16(&self, address: u64, value: u16) -> Result<(), MemoryError> {
        self.write(address, &value.to_le_bytes())
    }

    /// Stores `value` little-endian at `address`.
    fn write_u32(&self, address: u64, value: u32) -> Result<(), MemoryError> {
        self.write(address, &value.to_le_bytes())
    }

    /// Stores `value` little-endian at `address`.
    fn write_u64(&self, address: u64, value: u64) -> Result<(), MemoryError> {
        self.write(address, &value.to_le_bytes())
    }
}

/// Guest RAM as atomic 64-bit words: word *i* holds the bytes at guest-physical
/// `base + 8i ..= base + 8i + 7`, little-endian.
#[derive(Clone, Copy, Debug)]
pub struct GuestRam<'a> {
    base: u64,
    words: &'a [AtomicU64],
}

impl<'a> GuestRam<'a> {
    /// Guest RAM starting at guest-physical `base` (for a guest cell,
    /// [`abi::image::CELL_RAM_IPA`]), held in `words`.
    ///
    /// `base` should be 8-byte aligned, so that an aligned guest index is in one word; the
    /// index accesses check their alignment relative to `base` as well, so another base
    /// only makes them fail.
    pub const fn new(base: u64, words: &'a [AtomicU64]) -> Self {
        Self { base, words }
    }

    /// The first guest-physical address.
    pub const fn base(&self) -> u64 {
        self.base
    }

    /// The size in bytes.
    pub const fn size(&self) -> u64 {
        self.words.len() as u64 * 8
    }

    /// The byte offset of `address` from `base`, if `[address, address + length)` is inside.
    fn offset_of(&self, address: u64, length: u64) -> Result<u64, MemoryError> {
        let offset = address
            .checked_sub(self.base)
            .ok_or(MemoryError::OutOfRange)?;
        let end = offset.checked_add(length).ok_or(MemoryError::OutOfRange)?;
        if end > self.size() {
            return Err(MemoryError::OutOfRange);
        }
        Ok(offset)
    }

    /// The word holding the byte at `offset` (inside the RAM).
    fn word(&self, offset: u64) -> Result<&AtomicU64, MemoryError> {
        usize::try_from(offset / 8)
            .ok()
            .and_then(|index| self.words.get(index))
            .ok_or(MemoryError::OutOfRange)
    }

    /// Sets the bytes of `word` selected by `mask` to those of `value`, leaving the others
    /// as they are at that instant; `ordering` is the store's ordering.
    fn merge(
        word: &AtomicU64,
        mask: u64,
        value: u64,
        ordering: Ordering,
    ) -> Result<(), MemoryError> {
        let mut current = word.load(Ordering::Relaxed);
        for _ in 0..MAX_STORE_ATTEMPTS {
            let merged = (current & !mask) | (value & mask);
            match word.compare_exchange_weak(current, merged, ordering, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
        Err(MemoryError::Contended)
    }

    /// The (word offset, byte position in the word, byte count) pieces of the `length`
    /// bytes from `offset`.
    fn pieces(offset: u64, length: usize) -> impl Iterator<Item = (u64, usize, usize)> {
        let mut position = offset;
        let mut remaining = length;
        core::iter::from_fn(move || {
            if remaining == 0 {
                return None;
            }
            let within = (position % 8) as usize;
            let count = (8 - within).min(remaining);
            let piece = (position, within, count);
            position += count as u64;
            remaining -= count;
            Some(piece)
        })
    }
}

/// The mask of `count` bytes from byte `within` of a word (`within + count <= 8`).
fn byte_mask(within: usize, count: usize) -> u64 {
    let ones = if count >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * count)) - 1
    };
    ones << (8 * within)
}

impl GuestMemory for GuestRam<'_> {
    fn contains(&self, address: u64, length: u64) -> bool {
        self.offset_of(address, length).is_ok()
    }

    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), MemoryError> {
        let offset = self.offset_of(address, buffer.len() as u64)?;
        let mut done = 0;
        for (position, within, count) in Self::pieces(offset, buffer.len()) {
            let bytes = self.word(position)?.load(Ordering::Relaxed).to_le_bytes();
            buffer[done..done + count].copy_from_slice(&bytes[within..within + count]);
            done += count;
        }
        Ok(())
    }

    fn write(&self, address: u64, bytes: &[u8]) -> Result<(), MemoryError> {
        let offset = self.offset_of(address, bytes.len() as u64)?;
        let mut done = 0;
        for (position, within, count) in Self::pieces(offset, bytes.len()) {
            let word = self.word(position)?;
            let mut value = [0; 8];
            value[within..within + count].copy_from_slice(&bytes[done..done + count]);
            let value = u64::from_le_bytes(value);
            if count == 8 {
                word.store(value, Ordering::Relaxed);
            } else {
                Self::merge(word, byte_mask(within, count), value, Ordering::Relaxed)?;
            }
            done += count;
        }
        Ok(())
    }

    fn load_u16_acquire(&self, address: u64) -> Result<u16, MemoryError> {
        let offset = self.offset_of(address, 2)?;
        if !address.is_multiple_of(2) || !offset.is_multiple_of(2) {
            return Err(MemoryError::Misaligned);
        }
        let word = self.word(offset)?.load(Ordering::Acquire);
        Ok((word >> (8 * (offset % 8))) as u16)
    }

    fn store_u16_release(&self, address: u64, value: u16) -> Result<(), MemoryError> {
        let offset = self.offset_of(address, 2)?;
        if !address.is_multiple_of(2) || !offset.is_multiple_of(2) {
            return Err(MemoryError::Misaligned);
        }
        let within = (offset % 8) as usize;
        let value = u64::from(value) << (8 * within);
        Self::merge(
            self.word(offset)?,
            byte_mask(within, 2),
            value,
            Ordering::Release,
        )
    }
}
