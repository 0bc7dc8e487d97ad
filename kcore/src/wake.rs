//! Per-core timed wake-ups of blocked vCPUs.
//!
//! A vCPU that blocks until a time (WFI with its virtual timer armed, a wait with a timeout)
//! gets an entry in its core's [`WakeQueue`]: the vCPU and the absolute system-counter time
//! at which it must be woken. The kernel arms the core's timer for
//! [`earliest`](WakeQueue::earliest) (together with the scheduler's own next event) and, when
//! the timer fires, takes the due vCPUs one at a time with
//! [`pop_expired`](WakeQueue::pop_expired) and wakes them in the scheduler.
//!
//! Invariants, checked against a reference model by a randomized test:
//! - a vCPU has at most one entry: inserting again replaces its deadline;
//! - `pop_expired(now)` returns only entries with `deadline <= now`, earliest deadline first,
//!   and among equal deadlines the one inserted first;
//! - an entry leaves the queue only through `pop_expired` or `remove`.
//!
//! The queue holds at most `N` entries in a fixed array (no allocator); every operation is
//! a linear scan, which is fastest for the few vCPUs one core runs.

#[cfg(test)]
use core::fmt;

/// Why [`WakeQueue::insert`] refused an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeError {
    /// The queue already holds `N` other vCPUs.
    Full,
}

// The kernel returns these as hypercall codes and never renders them: the text is
// for the tests.
#[cfg(test)]
impl fmt::Display for WakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("no room for another timed wake-up on this core"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    vcpu: u16,
    deadline: u64,
    /// Insertion order, to break ties between equal deadlines.
    sequence: u64,
}

/// One core's pending timed wake-ups, at most `N`. See the module documentation.
pub struct WakeQueue<const N: usize> {
    entries: [Option<Entry>; N],
    next_sequence: u64,
    /// Number of `Some` entries: an empty queue (the common case on the scheduling path)
    /// answers without scanning.
    len: usize,
}

impl<const N: usize> Default for WakeQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> WakeQueue<N> {
    /// An empty queue.
    pub const fn new() -> Self {
        WakeQueue {
            entries: [None; N],
            next_sequence: 0,
            len: 0,
        }
    }

    /// Wakes `vcpu` at counter time `deadline`, replacing its earlier deadline if it had
    /// one (the replaced entry then counts as inserted now).
    pub fn insert(&mut self, vcpu: u16, deadline: u64) -> Result<(), WakeError> {
        let sequence = self.next_sequence;
        let slot = match self.position(vcpu) {
            Some(index) => self.entries.get_mut(index),
            None => self.entries.iter_mut().find(|entry| entry.is_none()),
        };
        let slot = slot.ok_or(WakeError::Full)?;
        if slot.is_none() {
            self.len += 1;
        }
        *slot = Some(Entry {
            vcpu,
            deadline,
            sequence,
        });
        self.next_sequence = sequence.wrapping_add(1);
        Ok(())
    }

    /// Cancels `vcpu`'s wake-up (it was woken otherwise); unknown vCPUs are ignored.
    pub fn remove(&mut self, vcpu: u16) {
        if let Some(slot) = self
            .position(vcpu)
            .and_then(|index| self.entries.get_mut(index))
        {
            if slot.take().is_some() {
                self.len -= 1;
            }
        }
    }

    /// The earliest deadline, for arming the core's timer.
    // Inlined: the empty case is the common one on the switch path.
    #[inline]
    pub fn earliest(&self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        self.first().map(|entry| entry.deadline)
    }

    /// Removes and returns the vCPU with the earliest deadline if that deadline is `now` or
    /// earlier. Call until it returns `None`.
    pub fn pop_expired(&mut self, now: u64) -> Option<u16> {
        let entry = self.first().filter(|entry| entry.deadline <= now)?;
        self.remove(entry.vcpu);
        Some(entry.vcpu)
    }

    /// `vcpu`'s deadline, if it has one.
    pub fn deadline(&self, vcpu: u16) -> Option<u64> {
        self.entries
            .iter()
            .flatten()
            .find(|entry| entry.vcpu == vcpu)
            .map(|entry| entry.deadline)
    }

    /// Number of vCPUs waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no vCPU is waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn position(&self, vcpu: u16) -> Option<usize> {
        self.entries
            .iter()
            .position(|entry| matches!(entry, Some(e) if e.vcpu == vcpu))
    }

    /// The entry due first: earliest deadline, then earliest insertion.
    fn first(&self) -> Option<Entry> {
        if self.len == 0 {
            return None;
        }
        self.entries
            .iter()
            .flatten()
            .min_by_key(|entry| (entry.deadline, entry.sequence))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_random::Random;

    #[test]
    fn pops_in_deadline_order_once_due() {
        let mut queue = WakeQueue::<4>::new();
        assert_eq!(queue.earliest(), None);
        assert_eq!(queue.pop_expired(u64::MAX), None);
        queue.insert(1, 300).unwrap();
        queue.insert(2, 100).unwrap();
        queue.insert(3, 200).unwrap();
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.earliest(), Some(100));
        assert_eq!(queue.pop_expired(99), None);
        assert_eq!(queue.pop_expired(250), Some(2));
        assert_eq!(queue.pop_expired(250), Some(3));
        assert_eq!(queue.pop_expired(250), None);
        assert_eq!(queue.earliest(), Some(300));
        assert_eq!(queue.pop_expired(300), Some(1));
        assert!(queue.is_empty());
    }

    #[test]
    fn insert_replaces_and_remove_cancels() {
        let mut queue = WakeQueue::<2>::new();
        queue.insert(7, 500).unwrap();
        queue.insert(7, 50).unwrap();
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.deadline(7), Some(50));
        queue.insert(8, 60).unwrap();
        assert_eq!(queue.insert(9, 1), Err(WakeError::Full));
        assert_eq!(queue.deadline(9), None);
        // Replacing still works when full.
        queue.insert(8, 10).unwrap();
        assert_eq!(queue.earliest(), Some(10));
        queue.remove(8);
        queue.remove(42);
        assert_eq!(queue.earliest(), Some(50));
        queue.insert(9, 1).unwrap();
        assert_eq!(queue.pop_expired(u64::MAX), Some(9));
        assert_eq!(queue.pop_expired(u64::MAX), Some(7));
        assert!(queue.is_empty());
        assert!(!WakeError::Full.to_string().is_empty());
    }

    #[test]
    fn equal_deadlines_pop_in_insertion_order() {
        let mut queue = WakeQueue::<4>::new();
        for vcpu in [3, 1, 2] {
            queue.insert(vcpu, 10).unwrap();
        }
        queue.insert(3, 10).unwrap(); // re-inserted: now last
        let popped: Vec<u16> = core::iter::from_fn(|| queue.pop_expired(10)).collect();
        assert_eq!(popped, [1, 2, 3]);
    }

    #[test]
    fn a_queue_without_room_refuses_everything() {
        let mut queue = WakeQueue::<0>::new();
        assert_eq!(queue.insert(0, 0), Err(WakeError::Full));
        queue.remove(0);
        assert_eq!(queue.pop_expired(u64::MAX), None);
        assert!(queue.is_empty());
    }

    /// The reference: a list in insertion order, searched for the earliest deadline.
    #[derive(Default)]
    struct Reference(Vec<(u16, u64)>);

    impl Reference {
        fn insert(&mut self, capacity: usize, vcpu: u16, deadline: u64) -> Result<(), WakeError> {
            let known = self.0.iter().any(|(v, _)| *v == vcpu);
            if !known && self.0.len() == capacity {
                return Err(WakeError::Full);
            }
            self.0.retain(|(v, _)| *v != vcpu);
            self.0.push((vcpu, deadline));
            Ok(())
        }

        fn pop_expired(&mut self, now: u64) -> Option<u16> {
            let mut best: Option<usize> = None;
            for (index, (_, deadline)) in self.0.iter().enumerate() {
                if *deadline <= now && best.is_none_or(|b| *deadline < self.0[b].1) {
                    best = Some(index);
                }
            }
            best.map(|index| self.0.remove(index).0)
        }
    }

    #[test]
    fn randomized_against_a_reference() {
        const CAPACITY: usize = 6;
        let mut random = Random(0x2545_f491_4f6c_dd1d);
        for _ in 0..200 {
            let mut queue = WakeQueue::<CAPACITY>::new();
            let mut reference = Reference::default();
            let mut now = 0u64;
            for _ in 0..200 {
                let vcpu = random.below(9) as u16;
                match random.below(4) {
                    0 | 1 => {
                        let deadline = now + random.below(50);
                        assert_eq!(
                            queue.insert(vcpu, deadline),
                            reference.insert(CAPACITY, vcpu, deadline)
                        );
                    }
                    2 => {
                        queue.remove(vcpu);
                        reference.0.retain(|(v, _)| *v != vcpu);
                    }
                    _ => {
                        now += random.below(20);
                        loop {
                            let popped = queue.pop_expired(now);
                            assert_eq!(popped, reference.pop_expired(now));
                            if popped.is_none() {
                                break;
                            }
                        }
                    }
                }
                assert_eq!(queue.len(), reference.0.len());
                assert_eq!(
                    queue.earliest(),
                    reference.0.iter().map(|(_, deadline)| *deadline).min()
                );
                for (vcpu, deadline) in &reference.0 {
                    assert_eq!(queue.deadline(*vcpu), Some(*deadline));
                }
            }
        }
    }
}
