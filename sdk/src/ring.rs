//! A single-producer single-consumer ring over a shared memory region, safe against its peer.
//!
//! Two cells share a region (a memory capability in each, see [`crate::caps::memory`]); one
//! pushes items with a [`Producer`], the other pops them with a [`Consumer`]. Items are
//! written straight into the region's slots and read straight out of them: no kernel call
//! moves data. Two notifications make the blocking variants possible: "data ready"
//! (producer signals, consumer waits) and "space free" (consumer signals, producer waits),
//! see [`Doorbells`].
//!
//! Layout of the region, in 64-bit words:
//!
//! | words | written by | content |
//! |---|---|---|
//! | 0 | producer | producer index: items pushed so far (free-running, wraps at 2^64) |
//! | 1 | producer | non-zero while the producer waits for space: its wait mark |
//! | 2..8 | – | unused: the consumer's words start on another 64-byte line |
//! | 8 | consumer | consumer index: items popped so far |
//! | 9 | consumer | non-zero while the consumer waits for data: its wait mark |
//! | 10..16 | – | unused |
//! | 16.. | producer | `capacity` slots of `T::WORDS` words; item *i* is in slot *i* mod `capacity` |
//!
//! `capacity = (region words − 16) / T::WORDS`, any value ≥ 1 (not necessarily a power of
//! two).
//!
//! Safety against the peer. The region is seen only as `&[AtomicU64]`, so the peer writing
//! anything at any time is never a data race, and every slot and index access is a checked
//! slice access computed from values this side owns. Each side keeps its own index locally
//! and never reads it back; it reads only the peer's index, and validates every value read:
//! the consumer requires `0 ≤ head − tail ≤ capacity` and that `head` never moves backwards,
//! the producer that `tail` moves forward and never past `head`. A value that breaks this
//! makes the side return [`RingError::Corrupt`], then and on every later call (the ring is
//! poisoned). A peer can still make the other side read garbage items (it owns the slots) or
//! wait forever (it owns half of the wake-ups), but never fault, panic or access memory
//! outside the region.
//!
//! Ordering: slot words are stored and loaded `Relaxed`; the producer publishes its index
//! with a `Release` store after writing the slot, and the consumer loads it with `Acquire`
//! before reading the slot (symmetrically for freeing slots). A side about to wait sets its
//! waiting word, executes a `SeqCst` fence and looks at the ring once more; a side that has
//! just moved its index executes a `SeqCst` fence before reading the peer's waiting word.
//! One of the two then always sees the other's store, so no wake-up is lost. The consumer
//! wakes a waiting producer only once at least half the ring is free (fewer switches when
//! both share a core); the producer wakes a waiting consumer at once.
//!
//! Wait marks. A side that waits writes a mark that names the wait: its own index plus one
//! (never 0). The waker signals once per mark and remembers the last mark it signalled: a
//! woken peer that has not yet run (it shares the core, at the same priority) keeps its
//! mark set, and without this every push or pop until it ran would signal again. A side
//! cannot wait twice with one mark: the waker signals only after moving its own index (the
//! producer) or once half the ring is free (the consumer), so the woken side's retry finds
//! an item or a free slot before it could wait again at the same index. A restarted side
//! resumes from its index in the region, so its marks continue; a restarted waker has
//! forgotten its last mark and at worst signals once more.

use crate::hvc::HvcError;
use crate::notification::Notification;
use core::marker::PhantomData;
use core::sync::atomic::{fence, AtomicU64, Ordering};

/// Words before the first slot.
pub const HEADER_WORDS: usize = 16;
/// Largest item, in words.
pub const MAX_ITEM_WORDS: usize = 8;

/// Word of the producer index.
const PRODUCER_INDEX: usize = 0;
/// Word the producer sets while it waits for space.
const PRODUCER_WAITING: usize = 1;
/// Word of the consumer index.
const CONSUMER_INDEX: usize = 8;
/// Word the consumer sets while it waits for data.
const CONSUMER_WAITING: usize = 9;
/// Bit signalled on either doorbell.
const DOORBELL_BIT: u64 = 1;

/// The mark a side waiting at its own index `index` writes: never 0 (which means "not
/// waiting"), and different for every index it can wait at.
fn wait_mark(index: u64) -> u64 {
    index.wrapping_add(1).max(1)
}

/// A value that can travel through a ring: a fixed number of words, and any words make a
/// valid value (the peer owns the slots and may write anything into them).
pub trait Item: Copy {
    /// Words per item, `1..=MAX_ITEM_WORDS`.
    const WORDS: usize;
    /// Writes the item into `words` (`WORDS` long).
    fn to_words(self, words: &mut [u64]);
    /// Reads an item from `words` (`WORDS` long, any content).
    fn from_words(words: &[u64]) -> Self;
}

macro_rules! one_word_item {
    ($($integer:ty),*) => {$(
        impl Item for $integer {
            const WORDS: usize = 1;
            fn to_words(self, words: &mut [u64]) {
                words[0] = self as u64;
            }
            /// Keeps the low bits of a word the peer may have filled with anything.
            fn from_words(words: &[u64]) -> Self {
                words[0] as $integer
            }
        }
    )*};
}

one_word_item!(u8, u16, u32, u64, i8, i16, i32, i64);

impl<const N: usize> Item for [u64; N] {
    const WORDS: usize = {
        assert!(N >= 1 && N <= MAX_ITEM_WORDS, "ring items are 1 to 8 words");
        N
    };
    fn to_words(self, words: &mut [u64]) {
        words.copy_from_slice(&self);
    }
    fn from_words(words: &[u64]) -> Self {
        let mut item = [0; N];
        item.copy_from_slice(words);
        item
    }
}

/// Why a ring operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The region cannot hold the header and one slot.
    TooSmall,
    /// The region is not mapped readable and writable into this cell.
    NotWritable,
    /// No slot is free (non-blocking push).
    Full,
    /// The peer wrote an index no correct peer could have written; the ring is poisoned.
    Corrupt,
    /// A doorbell notification was refused.
    Doorbell(HvcError),
}

/// The notifications of the blocking operations, each used with the right this side holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Doorbells {
    /// Producer signals, consumer waits: items were pushed.
    pub data_ready: Notification,
    /// Consumer signals, producer waits: slots were freed.
    pub space_free: Notification,
}

/// A region laid out as a ring of `T`, before a side takes it.
#[derive(Clone, Copy, Debug)]
pub struct Ring<'a, T: Item> {
    words: &'a [AtomicU64],
    capacity: u64,
    item: PhantomData<T>,
}

impl<'a, T: Item> Ring<'a, T> {
    /// Lays a ring over `words` (normally [`SharedMemory::words`](crate::caps::SharedMemory)).
    ///
    /// Errors: [`RingError::TooSmall`] if the words cannot hold the header and one item.
    pub fn new(words: &'a [AtomicU64]) -> Result<Self, RingError> {
        let item_words = const {
            assert!(T::WORDS >= 1 && T::WORDS <= MAX_ITEM_WORDS);
            T::WORDS
        };
        let capacity = words.len().saturating_sub(HEADER_WORDS) / item_words;
        if capacity == 0 {
            return Err(RingError::TooSmall);
        }
        Ok(Self {
            words,
            capacity: capacity as u64,
            item: PhantomData,
        })
    }

    /// How many items the ring holds when full.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Takes the producer's side, starting from the indices found in the region (both 0 in
    /// a fresh region; a restarted producer resumes where it stopped).
    ///
    /// Errors: [`RingError::Corrupt`] if the indices found are inconsistent.
    pub fn producer(self) -> Result<Producer<'a, T>, RingError> {
        let head = self.load(PRODUCER_INDEX, Ordering::Relaxed);
        let tail = self.load(CONSUMER_INDEX, Ordering::Acquire);
        if head.wrapping_sub(tail) > self.capacity {
            return Err(RingError::Corrupt);
        }
        Ok(Producer {
            ring: self,
            head,
            tail_seen: tail,
            consumer_woken: 0,
            corrupt: false,
        })
    }

    /// Takes the consumer's side, starting from the indices found in the region.
    ///
    /// Errors: [`RingError::Corrupt`] if the indices found are inconsistent.
    pub fn consumer(self) -> Result<Consumer<'a, T>, RingError> {
        let tail = self.load(CONSUMER_INDEX, Ordering::Relaxed);
        let head = self.load(PRODUCER_INDEX, Ordering::Acquire);
        if head.wrapping_sub(tail) > self.capacity {
            return Err(RingError::Corrupt);
        }
        Ok(Consumer {
            ring: self,
            tail,
            head_seen: head,
            producer_woken: 0,
            corrupt: false,
        })
    }

    fn load(&self, word: usize, order: Ordering) -> u64 {
        self.words[word].load(order)
    }

    fn store(&self, word: usize, value: u64, order: Ordering) {
        self.words[word].store(value, order);
    }

    /// The words of the slot of item `index` (computed locally: always inside the region).
    fn slot(&self, index: u64) -> &'a [AtomicU64] {
        let start = HEADER_WORDS + (index % self.capacity) as usize * T::WORDS;
        &self.words[start..start + T::WORDS]
    }
}

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
impl<T: Item> Ring<'static, T> {
    /// Lays a ring over a shared memory region this cell may read and write.
    ///
    /// Errors: [`RingError::NotWritable`] without both rights, [`RingError::TooSmall`].
    pub fn from_memory(memory: &crate::caps::SharedMemory) -> Result<Self, RingError> {
        let read_write = abi::plan::Rights::R.union(abi::plan::Rights::W);
        if !memory.rights().contains(read_write) {
            return Err(RingError::NotWritable);
        }
        Self::new(memory.words())
    }
}

/// The pushing side of a ring.
#[derive(Debug)]
pub struct Producer<'a, T: Item> {
    ring: Ring<'a, T>,
    /// Items pushed: the truth, whatever the region's word 0 now holds.
    head: u64,
    /// The consumer index last read and validated.
    tail_seen: u64,
    /// The consumer's wait mark this side last signalled `data_ready` for.
    consumer_woken: u64,
    corrupt: bool,
}

impl<T: Item> Producer<'_, T> {
    /// How many items the ring holds when full.
    pub fn capacity(&self) -> u64 {
        self.ring.capacity
    }

    /// Pushes `item` if a slot is free; never blocks or signals.
    ///
    /// Errors: [`RingError::Full`], [`RingError::Corrupt`].
    pub fn push(&mut self, item: T) -> Result<(), RingError> {
        if self.corrupt {
            return Err(RingError::Corrupt);
        }
        if self.head.wrapping_sub(self.tail_seen) == self.ring.capacity {
            self.refresh_tail()?;
            if self.head.wrapping_sub(self.tail_seen) == self.ring.capacity {
                return Err(RingError::Full);
            }
        }
        let mut buffer = [0u64; MAX_ITEM_WORDS];
        item.to_words(&mut buffer[..T::WORDS]);
        for (word, value) in self.ring.slot(self.head).iter().zip(buffer) {
            word.store(value, Ordering::Relaxed);
        }
        self.head = self.head.wrapping_add(1);
        self.ring
            .store(PRODUCER_INDEX, self.head, Ordering::Release);
        Ok(())
    }

    /// Pushes `item`, waiting on `doorbells.space_free` while the ring is full, and wakes
    /// the consumer (`doorbells.data_ready`) if it waits for data.
    ///
    /// Errors: [`RingError::Corrupt`], [`RingError::Doorbell`].
    pub fn push_blocking(&mut self, item: T, doorbells: &Doorbells) -> Result<(), RingError> {
        loop {
            match self.push(item) {
                Ok(()) => return self.wake_consumer(doorbells),
                Err(RingError::Full) => {}
                Err(error) => return Err(error),
            }
            // Full: make sure the consumer is draining, then announce the wait and look
            // once more before sleeping (see the module docs on lost wake-ups).
            self.wake_consumer(doorbells)?;
            self.ring
                .store(PRODUCER_WAITING, wait_mark(self.head), Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let retried = self.push(item);
            if let Err(RingError::Full) = retried {
                let waited = doorbells.space_free.wait();
                self.ring.store(PRODUCER_WAITING, 0, Ordering::Relaxed);
                waited.map_err(RingError::Doorbell)?;
                continue;
            }
            self.ring.store(PRODUCER_WAITING, 0, Ordering::Relaxed);
            retried?;
            return self.wake_consumer(doorbells);
        }
    }

    /// Signals `doorbells.data_ready` if the consumer says it waits for data (once per
    /// wait, see the module docs on wait marks); call after [`Producer::push`] when the
    /// consumer may block.
    pub fn wake_consumer(&mut self, doorbells: &Doorbells) -> Result<(), RingError> {
        fence(Ordering::SeqCst);
        let mark = self.ring.load(CONSUMER_WAITING, Ordering::Relaxed);
        if mark != 0 && mark != self.consumer_woken {
            doorbells
                .data_ready
                .signal(DOORBELL_BIT)
                .map_err(RingError::Doorbell)?;
            self.consumer_woken = mark;
        }
        Ok(())
    }

    /// Reads the consumer index and checks it moved forward, not past the producer index.
    fn refresh_tail(&mut self) -> Result<(), RingError> {
        let tail = self.ring.load(CONSUMER_INDEX, Ordering::Acquire);
        let advanced = tail.wrapping_sub(self.tail_seen);
        if advanced > self.head.wrapping_sub(self.tail_seen) {
            self.corrupt = true;
            return Err(RingError::Corrupt);
        }
        self.tail_seen = tail;
        Ok(())
    }
}

/// The popping side of a ring.
#[derive(Debug)]
pub struct Consumer<'a, T: Item> {
    ring: Ring<'a, T>,
    /// Items popped: the truth, whatever the region's word 8 now holds.
    tail: u64,
    /// The producer index last read and validated.
    head_seen: u64,
    /// The producer's wait mark this side last signalled `space_free` for.
    producer_woken: u64,
    corrupt: bool,
}

impl<T: Item> Consumer<'_, T> {
    /// How many items the ring holds when full.
    pub fn capacity(&self) -> u64 {
        self.ring.capacity
    }

    /// Pops the oldest item, or `None` if the ring is empty; never blocks or signals.
    ///
    /// Errors: [`RingError::Corrupt`].
    pub fn pop(&mut self) -> Result<Option<T>, RingError> {
        if self.corrupt {
            return Err(RingError::Corrupt);
        }
        if self.tail == self.head_seen {
            self.refresh_head()?;
            if self.tail == self.head_seen {
                return Ok(None);
            }
        }
        let mut buffer = [0u64; MAX_ITEM_WORDS];
        for (value, word) in buffer.iter_mut().zip(self.ring.slot(self.tail)) {
            *value = word.load(Ordering::Relaxed);
        }
        let item = T::from_words(&buffer[..T::WORDS]);
        self.tail = self.tail.wrapping_add(1);
        self.ring
            .store(CONSUMER_INDEX, self.tail, Ordering::Release);
        Ok(Some(item))
    }

    /// Pops the oldest item, waiting on `doorbells.data_ready` while the ring is empty, and
    /// wakes the producer (`doorbells.space_free`) if it waits and half the ring is free.
    ///
    /// Errors: [`RingError::Corrupt`], [`RingError::Doorbell`].
    pub fn pop_blocking(&mut self, doorbells: &Doorbells) -> Result<T, RingError> {
        loop {
            if let Some(item) = self.pop()? {
                self.wake_producer(doorbells)?;
                return Ok(item);
            }
            self.ring
                .store(CONSUMER_WAITING, wait_mark(self.tail), Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let retried = self.pop();
            if let Ok(None) = retried {
                let waited = doorbells.data_ready.wait();
                self.ring.store(CONSUMER_WAITING, 0, Ordering::Relaxed);
                waited.map_err(RingError::Doorbell)?;
                continue;
            }
            self.ring.store(CONSUMER_WAITING, 0, Ordering::Relaxed);
            if let Some(item) = retried? {
                self.wake_producer(doorbells)?;
                return Ok(item);
            }
        }
    }

    /// Signals `doorbells.space_free` if the producer says it waits for space and at least
    /// half the ring is free (once per wait, see the module docs on wait marks); call after
    /// [`Consumer::pop`] when the producer may block.
    ///
    /// Errors: [`RingError::Corrupt`] (it reads the producer index), [`RingError::Doorbell`].
    pub fn wake_producer(&mut self, doorbells: &Doorbells) -> Result<(), RingError> {
        fence(Ordering::SeqCst);
        let mark = self.ring.load(PRODUCER_WAITING, Ordering::Relaxed);
        if mark == 0 || mark == self.producer_woken {
            return Ok(());
        }
        // The producer waits: count with its current index, not a stale one.
        self.refresh_head()?;
        let used = self.head_seen.wrapping_sub(self.tail);
        if used <= self.ring.capacity / 2 {
            doorbells
                .space_free
                .signal(DOORBELL_BIT)
                .map_err(RingError::Doorbell)?;
            self.producer_woken = mark;
        }
        Ok(())
    }

    /// Reads the producer index and checks it did not move backwards or more than a ring
    /// ahead of the consumer index.
    fn refresh_head(&mut self) -> Result<(), RingError> {
        let head = self.ring.load(PRODUCER_INDEX, Ordering::Acquire);
        let available = head.wrapping_sub(self.tail);
        let known = self.head_seen.wrapping_sub(self.tail);
        if available > self.ring.capacity || available < known {
            self.corrupt = true;
            return Err(RingError::Corrupt);
        }
        self.head_seen = head;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
