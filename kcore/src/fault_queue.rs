//! Fault reports waiting for a supervisor cell.
//!
//! When a cell faults, the kernel applies the cell's fault policy and, if a supervisor cell
//! holds the control right over it, queues a [`FaultReport`] for that supervisor; the
//! supervisor takes reports one at a time with the `FAULT_WAIT` hypercall
//! ([`abi::hvc::FAULT_WAIT`]), which blocks while the queue is empty.
//!
//! A [`FaultQueue`] is a bounded ring of at most `N` reports, oldest first. Invariants:
//! - reports come out in the order they went in;
//! - a full queue refuses a new report and counts it in [`dropped`](FaultQueue::dropped): a
//!   faulting cell can never overwrite reports the supervisor has not read yet;
//! - no operation panics, whatever `N` (a queue with `N = 0` drops everything).

use abi::hvc::FaultKind;

/// One fault of a supervised cell, as `FAULT_WAIT` returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultReport {
    /// Index of the cell that faulted.
    pub cell: u16,
    /// What went wrong.
    pub kind: FaultKind,
    /// The faulting IPA for aborts, else the pc.
    pub address: u64,
    /// The pc of the faulting instruction.
    pub pc: u64,
}

/// A bounded ring of fault reports. See the module documentation.
pub struct FaultQueue<const N: usize> {
    reports: [Option<FaultReport>; N],
    /// Index of the oldest report.
    head: usize,
    /// Number of reports held.
    len: usize,
    /// Reports refused because the queue was full (saturating).
    dropped: u32,
}

impl<const N: usize> Default for FaultQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FaultQueue<N> {
    /// An empty queue.
    pub const fn new() -> Self {
        FaultQueue {
            reports: [None; N],
            head: 0,
            len: 0,
            dropped: 0,
        }
    }

    /// Appends a report; returns `false` and counts a drop if the queue is full.
    pub fn push(&mut self, report: FaultReport) -> bool {
        if self.len >= N {
            self.dropped = self.dropped.saturating_add(1);
            return false;
        }
        let tail = (self.head + self.len).checked_rem(N).unwrap_or(0);
        match self.reports.get_mut(tail) {
            Some(slot) => {
                *slot = Some(report);
                self.len += 1;
                true
            }
            None => {
                self.dropped = self.dropped.saturating_add(1);
                false
            }
        }
    }

    /// Removes and returns the oldest report.
    pub fn pop(&mut self) -> Option<FaultReport> {
        if self.len == 0 {
            return None;
        }
        let report = self.reports.get_mut(self.head)?.take();
        self.head = (self.head + 1).checked_rem(N).unwrap_or(0);
        self.len -= 1;
        report
    }

    /// Reports refused because the queue was full, since it was created (saturating).
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// Number of reports waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no report is waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn report(cell: u16, pc: u64) -> FaultReport {
        FaultReport {
            cell,
            kind: FaultKind::DataAbort,
            address: 0x4000_0000 + pc,
            pc,
        }
    }

    #[test]
    fn first_in_first_out() {
        let mut queue = FaultQueue::<3>::new();
        assert!(queue.is_empty());
        assert_eq!(queue.pop(), None);
        assert!(queue.push(report(1, 0x10)));
        assert!(queue.push(FaultReport {
            kind: FaultKind::Undefined,
            ..report(2, 0x20)
        }));
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.pop(), Some(report(1, 0x10)));
        assert_eq!(
            queue.pop().map(|r| (r.cell, r.kind)),
            Some((2, FaultKind::Undefined))
        );
        assert_eq!(queue.pop(), None);
        assert!(queue.is_empty());
        assert_eq!(queue.dropped(), 0);
    }

    #[test]
    fn a_full_queue_keeps_the_oldest_and_counts_drops() {
        let mut queue = FaultQueue::<2>::new();
        assert!(queue.push(report(1, 1)));
        assert!(queue.push(report(1, 2)));
        assert!(!queue.push(report(1, 3)));
        assert!(!queue.push(report(1, 4)));
        assert_eq!(queue.dropped(), 2);
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.pop(), Some(report(1, 1)));
        // Room again, and the ring wraps around.
        assert!(queue.push(report(1, 5)));
        assert_eq!(queue.pop(), Some(report(1, 2)));
        assert_eq!(queue.pop(), Some(report(1, 5)));
        assert_eq!(queue.pop(), None);
        assert_eq!(queue.dropped(), 2);
    }

    #[test]
    fn drops_saturate() {
        let mut queue = FaultQueue::<0>::new();
        queue.dropped = u32::MAX - 1;
        assert!(!queue.push(report(0, 0)));
        assert!(!queue.push(report(0, 0)));
        assert_eq!(queue.dropped(), u32::MAX);
        assert_eq!(queue.pop(), None);
        assert!(queue.is_empty());
    }

    #[test]
    fn randomized_against_a_reference() {
        const CAPACITY: usize = 5;
        let mut state = 0x0123_4567_89ab_cdefu64;
        let mut random = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        let mut queue = FaultQueue::<CAPACITY>::new();
        let mut reference = VecDeque::new();
        let mut dropped = 0;
        for step in 0..10_000u64 {
            if random(2) == 0 {
                let new = report(random(4) as u16, step);
                let accepted = reference.len() < CAPACITY;
                if accepted {
                    reference.push_back(new);
                } else {
                    dropped += 1;
                }
                assert_eq!(queue.push(new), accepted);
            } else {
                assert_eq!(queue.pop(), reference.pop_front());
            }
            assert_eq!(queue.len(), reference.len());
            assert_eq!(queue.dropped(), dropped);
        }
    }
}
