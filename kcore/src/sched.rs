//! The per-core scheduler: fixed priorities, round robin within a priority, budgets.
//!
//! Each physical core has one [`Scheduler`] holding at most [`MAX_VCPUS_PER_CORE`] vCPUs.
//! The kernel tells it what happened ([`Scheduler::block`], [`Scheduler::wake`],
//! [`Scheduler::yield_now`], ...) and asks [`Scheduler::choose`] what to run next; the
//! answer carries the absolute counter time at which the kernel must ask again (it arms the
//! core's timer for it). Time is counted in system-counter ticks and only ever passed in,
//! so the scheduler is a plain state machine that tests drive with made-up clocks.
//!
//! Budgets: a vCPU with `budget < period` may run at most `budget` ticks in each period;
//! periods start when the vCPU is added and follow each other back to back. A vCPU with
//! `budget == 0` or `budget == period` is unlimited. Running time is charged when
//! [`Scheduler::choose`] (or [`Scheduler::yield_now`]) is called, split at period
//! boundaries; a kernel that calls back later than asked lets a vCPU overrun by that
//! lateness, and the overrun is not carried into the next period.
//!
//! Invariants, checked by a randomized test:
//! - a higher-priority runnable vCPU with budget left always wins;
//! - vCPUs of equal priority share the core in round robin, one time slice each; a vCPU
//!   preempted by a higher priority keeps the rest of its slice, so a neighbour that
//!   preempts often cannot stop the round robin from turning;
//! - a vCPU that exhausted its budget is not chosen until its next period;
//! - blocked vCPUs are never chosen;
//! - a returned `next_event` is always later than the `now` it was computed for.
//!
//! The kernel must call [`Scheduler::choose`] after any change (add, wake, block, yield,
//! remove) and whenever the time it was given arrives.

#[cfg(test)]
use core::fmt;

/// A vCPU's identity on its core, chosen by the kernel (unique per scheduler).
pub type VcpuId = u16;

/// Most vCPUs one core schedules.
pub const MAX_VCPUS_PER_CORE: usize = 16;

/// No vCPU: an id no slot has (`Scheduler`'s current vCPU when there is none; the kernel's
/// loaded vCPU and FP/SIMD owner likewise).
pub const NO_VCPU: VcpuId = VcpuId::MAX;

/// Distinct priorities the scheduler tells apart in its runnable counts (`abi::plan`'s
/// priorities are 0..=31).
pub const PRIORITY_LEVELS: usize = abi::plan::MAX_PRIORITY as usize + 1;

/// How a vCPU is scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedParams {
    /// Higher is more urgent.
    pub priority: u8,
    /// Ticks the vCPU may run in each period; 0 or `period` means unlimited.
    pub budget: u64,
    /// Length of a budget period in ticks.
    pub period: u64,
}

impl SchedParams {
    /// Parameters without a budget limit.
    pub const fn unlimited(priority: u8) -> Self {
        SchedParams {
            priority,
            budget: 0,
            period: 0,
        }
    }

    /// Whether the budget is unlimited.
    pub const fn is_unlimited(&self) -> bool {
        self.budget == 0 || self.budget == self.period
    }
}

/// Why a scheduler operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// The core already schedules [`MAX_VCPUS_PER_CORE`] vCPUs.
    Full,
    /// The vCPU is already scheduled on this core.
    Duplicate,
    /// The vCPU is not scheduled on this core.
    Unknown,
    /// The budget is larger than the period.
    BadParams,
}

// The kernel returns these as hypercall codes and never renders them: the text is
// for the tests.
#[cfg(test)]
impl fmt::Display for SchedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::Full => "no room for another vCPU on this core",
            Self::Duplicate => "the vCPU is already scheduled on this core",
            Self::Unknown => "the vCPU is not scheduled on this core",
            Self::BadParams => "the budget is larger than its period",
        };
        f.write_str(text)
    }
}

/// What [`Scheduler::choose`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The vCPU to run, or `None` to idle.
    pub run: Option<VcpuId>,
    /// Absolute counter time at which the kernel must call [`Scheduler::choose`] again
    /// (end of the time slice, budget exhaustion or a replenishment that matters), or
    /// `None` if nothing is pending.
    pub next_event: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    vcpu: VcpuId,
    params: SchedParams,
    /// Its runnable count's index: the priority, capped at [`PRIORITY_LEVELS`]` - 1`.
    level: u8,
    runnable: bool,
    /// Ticks left in the current period (meaningless when unlimited).
    budget_left: u64,
    /// Start of the current period.
    period_start: u64,
    /// Round-robin position within the priority: lower goes first.
    ticket: u64,
    /// What is left of its time slice when a higher-priority vCPU preempted it (0: a
    /// fresh slice next time). Without it, a neighbour that preempts more often than the
    /// slice lasts would give the preempted vCPU a fresh slice each time, and its peers at
    /// the same priority would never run.
    slice_left: u64,
}

impl Slot {
    fn has_budget(&self) -> bool {
        self.params.is_unlimited() || self.budget_left > 0
    }

    fn eligible(&self) -> bool {
        self.runnable && self.has_budget()
    }

    /// End of the current period; `None` if unlimited or beyond the counter's range.
    fn period_end(&self) -> Option<u64> {
        if self.params.is_unlimited() {
            return None;
        }
        self.period_start.checked_add(self.params.period)
    }

    /// Starts the period that contains `now` if the current one is over; returns whether
    /// it did.
    fn roll_period(&mut self, now: u64) -> bool {
        match self.period_end() {
            Some(end) if now >= end => {
                let periods = (now - self.period_start) / self.params.period;
                // periods * period <= now - period_start, so neither operation overflows.
                self.period_start += periods * self.params.period;
                self.budget_left = self.params.budget;
                true
            }
            _ => false,
        }
    }

    /// Charges running time `[from, to)`, splitting it at period boundaries.
    fn charge(&mut self, from: u64, to: u64) {
        if self.params.is_unlimited() || to <= from {
            return;
        }
        if self.roll_period(to) {
            // Time before the new period belonged to an old one, which is over.
            let used = to - from.max(self.period_start);
            self.budget_left = self.params.budget.saturating_sub(used);
        } else {
            self.budget_left = self.budget_left.saturating_sub(to - from);
        }
    }
}

/// One core's scheduler. See the module documentation for its rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheduler {
    /// Slot `i` holds vCPU `i`: lookups by id are direct.
    slots: [Option<Slot>; MAX_VCPUS_PER_CORE],
    /// One past the highest slot ever used: scans stop there.
    bound: usize,
    /// How many scheduled vCPUs have a limited budget: with none, choosing skips all
    /// period bookkeeping.
    budgeted: usize,
    /// Runnable vCPUs per priority, not counting `current` (priorities above
    /// [`PRIORITY_LEVELS`]` - 1` share the top entry): the hand-offs know in O(1) whether
    /// anything else could run instead, and a hand-off from the current vCPU to another,
    /// which becomes current, changes no count.
    runnable_at: [u8; PRIORITY_LEVELS],
    /// Bit `p` set when `runnable_at[p]` is not zero.
    runnable_levels: u64,
    timeslice: u64,
    /// The vCPU the last [`Scheduler::choose`] picked, while it has not been removed or
    /// made to yield. Changed only through [`Scheduler::set_current`] (which keeps the
    /// counts) or by a hand-off that keeps them itself. [`NO_VCPU`] when there is none: a
    /// plain id, so that a hand-off tests it with one comparison and a slot lookup fails
    /// for it like for any id without a slot.
    current: VcpuId,
    /// Time up to which `current` has been charged.
    charged_until: u64,
    /// When `current`'s time slice ends.
    slice_end: u64,
    next_ticket: u64,
}

impl Scheduler {
    /// An empty scheduler whose time slices last `timeslice` ticks (0 is taken as 1).
    pub const fn new(timeslice: u64) -> Self {
        Scheduler {
            slots: [None; MAX_VCPUS_PER_CORE],
            bound: 0,
            budgeted: 0,
            runnable_at: [0; PRIORITY_LEVELS],
            runnable_levels: 0,
            timeslice: if timeslice == 0 { 1 } else { timeslice },
            current: NO_VCPU,
            charged_until: 0,
            slice_end: 0,
            next_ticket: 0,
        }
    }

    /// Adds a runnable vCPU at the back of its priority's round robin; its first period
    /// starts at `now` with a full budget. vCPU ids are the core's slot numbers,
    /// `0..MAX_VCPUS_PER_CORE`; a larger id is refused as [`SchedError::Full`].
    pub fn add(&mut self, vcpu: VcpuId, params: SchedParams, now: u64) -> Result<(), SchedError> {
        check_params(params)?;
        if self.slot(vcpu).is_some() {
            return Err(SchedError::Duplicate);
        }
        let index = vcpu as usize;
        if index >= MAX_VCPUS_PER_CORE {
            return Err(SchedError::Full);
        }
        let ticket = self.take_ticket();
        self.bound = self.bound.max(index + 1);
        if !params.is_unlimited() {
            self.budgeted += 1;
        }
        let level = level_of(params.priority);
        self.count_in(level);
        self.slots[index] = Some(Slot {
            vcpu,
            params,
            level,
            runnable: true,
            budget_left: params.budget,
            period_start: now,
            ticket,
            slice_left: 0,
        });
        Ok(())
    }

    /// Changes a vCPU's parameters; a new period with a full budget starts at `now`.
    #[cfg(test)]
    pub fn set_params(
        &mut self,
        vcpu: VcpuId,
        params: SchedParams,
        now: u64,
    ) -> Result<(), SchedError> {
        check_params(params)?;
        if self.current == vcpu {
            self.charge_current(now);
        }
        let slot = self.slot_mut(vcpu).ok_or(SchedError::Unknown)?;
        let was_limited = !slot.params.is_unlimited();
        let (old_level, runnable) = (slot.level, slot.runnable);
        slot.params = params;
        slot.level = level_of(params.priority);
        if runnable && self.current != vcpu {
            self.count_out(old_level);
            self.count_in(level_of(params.priority));
        }
        match (was_limited, !params.is_unlimited()) {
            (true, false) => self.budgeted -= 1,
            (false, true) => self.budgeted += 1,
            _ => {}
        }
        let slot = self.slot_mut(vcpu).ok_or(SchedError::Unknown)?;
        slot.budget_left = params.budget;
        slot.period_start = now;
        Ok(())
    }

    /// Forgets a vCPU; unknown vCPUs are ignored.
    pub fn remove(&mut self, vcpu: VcpuId) {
        let removed = self.slots.get_mut(vcpu as usize).and_then(Option::take);
        if let Some(slot) = removed {
            if !slot.params.is_unlimited() {
                self.budgeted -= 1;
            }
            if slot.runnable && self.current != vcpu {
                self.count_out(slot.level);
            }
        }
        if self.current == vcpu {
            // Not counted while current, and now gone.
            self.current = NO_VCPU;
        }
    }

    /// Makes a vCPU unrunnable (WFI, waiting for IPC) until [`Scheduler::wake`].
    pub fn block(&mut self, vcpu: VcpuId) {
        let Some(slot) = self.slot_mut(vcpu) else {
            return;
        };
        slot.slice_left = 0;
        if slot.runnable {
            slot.runnable = false;
            let level = slot.level;
            if self.current != vcpu {
                self.count_out(level);
            }
        }
    }

    /// Makes a blocked vCPU runnable again, at the back of its round robin. Has no effect
    /// on a runnable or unknown (removed) vCPU.
    pub fn wake(&mut self, vcpu: VcpuId) {
        let ticket = self.next_ticket;
        let Some(slot) = self.slot_mut(vcpu) else {
            return;
        };
        if !slot.runnable {
            slot.runnable = true;
            slot.ticket = ticket;
            let level = slot.level;
            self.next_ticket += 1;
            if self.current != vcpu {
                self.count_in(level);
            }
        }
    }

    /// Sends a vCPU to the back of its priority's round robin; if it is running, its time
    /// slice ends at `now`.
    pub fn yield_now(&mut self, vcpu: VcpuId, now: u64) {
        if self.slot(vcpu).is_none() {
            return;
        }
        if self.current == vcpu {
            self.charge_current(now);
            self.set_current(None);
        }
        let ticket = self.take_ticket();
        if let Some(slot) = self.slot_mut(vcpu) {
            slot.ticket = ticket;
            slot.slice_left = 0;
        }
    }

    /// Charges the running vCPU up to `now`, replenishes budgets whose period began,
    /// rotates the round robin if the running vCPU's slice is over, and returns the
    /// highest-priority runnable vCPU with budget left (first in round-robin order among
    /// equals) and when to call again.
    pub fn choose(&mut self, now: u64) -> Choice {
        self.charge_current(now);
        if self.budgeted > 0 {
            for slot in self.slots[..self.bound].iter_mut().flatten() {
                slot.roll_period(now);
            }
        }
        if let Some(vcpu) = self.current() {
            let slice_over = now >= self.slice_end;
            let ticket = self.next_ticket;
            match self.slot_mut(vcpu) {
                Some(slot) if slot.eligible() && !slice_over => {}
                Some(slot) => {
                    // Slice used up or budget exhausted: to the back of the round robin.
                    // A blocked vCPU goes to the back when it wakes. It is counted again if
                    // runnable (what `set_current(None)` does, without a second lookup).
                    slot.slice_left = 0;
                    let (runnable, level) = (slot.runnable, slot.level);
                    if runnable {
                        slot.ticket = ticket;
                        self.next_ticket += 1;
                        self.count_in(level);
                    }
                    self.current = NO_VCPU;
                }
                None => self.current = NO_VCPU,
            }
        }

        let best = self.best();
        let chosen = best.map(|slot| slot.vcpu);
        if chosen != self.current() {
            // A preempted vCPU keeps what is left of its slice for when it runs again, and
            // is counted again (what `set_current` does, without looking the slots up twice).
            let left = self.slice_end.saturating_sub(now);
            if let Some(preempted) = self.slot_mut(self.current) {
                preempted.slice_left = left;
                let (runnable, level) = (preempted.runnable, preempted.level);
                if runnable {
                    self.count_in(level);
                }
            }
            let mut slice = 0;
            if let Some(next) = chosen.and_then(|vcpu| self.slot_mut(vcpu)) {
                slice = core::mem::take(&mut next.slice_left);
                // Chosen, so runnable.
                let level = next.level;
                self.count_out(level);
            }
            self.current = chosen.unwrap_or(NO_VCPU);
            self.slice_end = now.saturating_add(if slice > 0 { slice } else { self.timeslice });
        }
        Choice {
            run: chosen,
            next_event: self.next_event(best, now),
        }
    }

    /// The IPC fast path: [`block`] the running vCPU `from` (it calls, or waits for the
    /// next call), [`wake`] the blocked `to` (the server it calls, or the caller it replied
    /// to) and make `to` current at once, when [`choose`] would certainly pick it; returns
    /// the choice. It is certain when no vCPU on this core has a budget (replenishments
    /// could change the answer, and without budgets runnable means eligible), `from` is the
    /// current vCPU, and `to` will be the only runnable vCPU at its priority or above (a
    /// peer at the same priority would be ahead of it in the round robin). Otherwise returns
    /// `None` and changes nothing: the kernel then blocks, wakes and lets [`choose`] decide.
    ///
    /// Unlike [`choose`], a hand-off donates time: `to` runs in the rest of `from`'s slice,
    /// so the clock is not read. Nothing needs a tick (`next_event` is `None`): no other
    /// vCPU at `to`'s level can run, and without budgets none can run out; whatever makes
    /// one runnable is followed by a [`choose`], which rotates `to` if the slice is over.
    ///
    /// [`block`]: Scheduler::block
    /// [`wake`]: Scheduler::wake
    /// [`choose`]: Scheduler::choose
    #[inline(always)]
    pub fn block_wake_hand_off(&mut self, from: VcpuId, to: VcpuId) -> Option<Choice> {
        if self.budgeted > 0 || self.current != from {
            return None;
        }
        // A runnable `from` and a blocked `to` are two vCPUs. (Each test of `runnable`
        // through `Option<bool>` is one comparison of the byte the slot's `Option` uses.)
        if self.slot(from).map(|slot| slot.runnable) != Some(true)
            || self.slot(to).map(|slot| slot.runnable) != Some(false)
        {
            return None;
        }
        let level = self.slot(to)?.level;
        // Nothing else may be runnable at `to`'s level or above: the counts leave out
        // `from` (current, and blocking), so they count exactly the others.
        if self.runnable_levels >> level != 0 {
            return None;
        }
        // What `block` and `wake` do, without their lookups and checks: `from` was runnable
        // and current, `to` is now alone at its level and current, so no count changes.
        let ticket = self.take_ticket();
        if let Some(slot) = self.slot_mut(from) {
            slot.runnable = false;
            slot.slice_left = 0;
        }
        if let Some(slot) = self.slot_mut(to) {
            slot.runnable = true;
            slot.ticket = ticket;
            slot.slice_left = 0;
        }
        self.current = to;
        Some(Choice {
            run: Some(to),
            next_event: None,
        })
    }

    /// The notification fast path: `to`, just woken, preempts the current vCPU `from`
    /// (runnable or blocked). Without budgets on this core, returns exactly what
    /// [`choose`] at `now` would (and leaves the scheduler as it would) when it would
    /// certainly pick `to`: `from`'s slice is not over, `to` is runnable and the only
    /// runnable vCPU at its level or above, and `from` is blocked or of lower priority.
    /// `from` keeps the rest of its slice. Otherwise returns `None` and changes nothing.
    ///
    /// [`choose`]: Scheduler::choose
    pub fn preempt_hand_off(&mut self, from: VcpuId, to: VcpuId, now: u64) -> Option<Choice> {
        if self.budgeted > 0 || self.current != from || from == to || now >= self.slice_end {
            return None;
        }
        let (current, woken) = (self.slot(from)?, self.slot(to)?);
        let (from_runnable, from_level) = (current.runnable, current.level);
        let level = woken.level as usize % PRIORITY_LEVELS;
        let alone = self.runnable_at[level] == 1 && self.runnable_levels >> level >> 1 == 0;
        let outranked = !from_runnable || current.params.priority < woken.params.priority;
        if !woken.runnable || !alone || !outranked {
            return None;
        }
        // What `choose` does when the current vCPU is preempted (or blocked) and `to` is
        // the best: `from` keeps the rest of its slice and is counted again if runnable,
        // `to` leaves the counts.
        self.charged_until = now.max(self.charged_until);
        let left = self.slice_end.saturating_sub(now);
        if let Some(slot) = self.slot_mut(from) {
            slot.slice_left = if from_runnable { left } else { 0 };
        }
        if from_runnable {
            self.count_in(from_level);
        }
        self.count_out(level as u8);
        // A peer at `to`'s level (`from`, in the shared top level) gets a tick.
        Some(self.start_slice(to, level, now))
    }

    /// The cell switch's fast path: the running vCPU `from` yields. Without budgets on
    /// this core, returns exactly what [`yield_now`] followed by [`choose`] at `now` would
    /// (and leaves the scheduler as they would): `from` goes to the back of its round
    /// robin and the first runnable peer at its priority runs, or `from` itself if it has
    /// none. Returns `None` and changes nothing when that is not certain without a full
    /// choice: budgets are in play, `from` is not the current vCPU or not runnable, or a
    /// runnable vCPU has a higher priority.
    ///
    /// [`yield_now`]: Scheduler::yield_now
    /// [`choose`]: Scheduler::choose
    pub fn yield_hand_off(&mut self, from: VcpuId, now: u64) -> Option<Choice> {
        if self.budgeted > 0 || self.current != from {
            return None;
        }
        let yielder = *self.slot(from)?;
        let level = yielder.level as usize;
        if !yielder.runnable || self.runnable_levels >> level >> 1 != 0 {
            return None;
        }
        // The peer first in round-robin order; any runnable vCPU above `from` (possible
        // only in the shared top level) means a full choice.
        let mut peer: Option<&Slot> = None;
        if self.runnable_at[level] > 0 {
            for slot in self.slots[..self.bound].iter().flatten() {
                if !slot.runnable || slot.vcpu == from {
                    continue;
                }
                if slot.params.priority > yielder.params.priority {
                    return None;
                }
                if slot.params.priority == yielder.params.priority
                    && peer.is_none_or(|p| slot.ticket < p.ticket)
                {
                    peer = Some(slot);
                }
            }
        }
        let next = peer.map_or(from, |slot| slot.vcpu);
        self.charged_until = now.max(self.charged_until);
        let ticket = self.take_ticket();
        if let Some(slot) = self.slot_mut(from) {
            slot.ticket = ticket;
            slot.slice_left = 0;
        }
        // `from` and the peer share a level: one leaves the counts as the other joins.
        Some(self.start_slice(next, level, now))
    }

    /// The vCPU the last [`Scheduler::choose`] picked, unless it was removed or yielded
    /// since.
    pub fn current(&self) -> Option<VcpuId> {
        (self.current != NO_VCPU).then_some(self.current)
    }

    /// Number of vCPUs scheduled.
    pub fn len(&self) -> usize {
        self.slots[..self.bound].iter().flatten().count()
    }

    /// Whether no vCPU is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `vcpu` is scheduled and runnable; [`SchedError::Unknown`] if not scheduled.
    #[cfg(test)]
    pub fn is_runnable(&self, vcpu: VcpuId) -> Result<bool, SchedError> {
        self.slot(vcpu)
            .map(|slot| slot.runnable)
            .ok_or(SchedError::Unknown)
    }

    #[inline(always)]
    fn charge_current(&mut self, now: u64) {
        let from = self.charged_until;
        self.charged_until = now.max(from);
        // Without budgets, charging changes nothing but the clock.
        if self.budgeted > 0 {
            self.charge_budget(from, now);
        }
    }

    #[inline(never)]
    fn charge_budget(&mut self, from: u64, now: u64) {
        if let Some(slot) = self.slot_mut(self.current) {
            slot.charge(from, now);
        }
    }

    fn best(&self) -> Option<Slot> {
        // The highest priority wins, then the lowest ticket (the longest waiting).
        let mut best: Option<&Slot> = None;
        for slot in self.slots[..self.bound].iter().flatten() {
            if !slot.eligible() {
                continue;
            }
            let better = best.is_none_or(|b| {
                slot.params.priority > b.params.priority
                    || (slot.params.priority == b.params.priority && slot.ticket < b.ticket)
            });
            if better {
                best = Some(slot);
            }
        }
        best.copied()
    }

    fn next_event(&self, chosen: Option<Slot>, now: u64) -> Option<u64> {
        let mut next: Option<u64> = None;
        let mut consider = |time: Option<u64>| {
            if let Some(time) = time {
                next = Some(next.map_or(time, |n| n.min(time)));
            }
        };
        let floor = chosen.map_or(0, |c| c.params.priority);
        if let Some(chosen) = chosen {
            // Without budgets every runnable vCPU is eligible: the count per level (which
            // leaves out `chosen`, now current) tells.
            let has_peer = if self.budgeted == 0 {
                self.runnable_at[chosen.level as usize % PRIORITY_LEVELS] > 0
            } else {
                self.slots[..self.bound].iter().flatten().any(|s| {
                    s.vcpu != chosen.vcpu
                        && s.eligible()
                        && s.params.priority == chosen.params.priority
                })
            };
            if has_peer {
                consider(Some(self.slice_end));
            }
            if !chosen.params.is_unlimited() {
                consider(now.checked_add(chosen.budget_left));
            }
        }
        // A replenishment matters only if it makes an exhausted vCPU eligible that could
        // then be chosen or share the round robin.
        let budgeted = if self.budgeted > 0 { self.bound } else { 0 };
        for slot in self.slots[..budgeted].iter().flatten() {
            if slot.runnable && !slot.has_budget() && slot.params.priority >= floor {
                consider(slot.period_end());
            }
        }
        next
    }

    /// Makes `next` current from `now` with what is left of its slice, or a fresh one; it
    /// gets a tick at the slice's end if a vCPU is counted at its level `level`. The counts
    /// are the caller's to move.
    #[inline(always)]
    fn start_slice(&mut self, next: VcpuId, level: usize, now: u64) -> Choice {
        let slice = self
            .slot_mut(next)
            .map_or(0, |slot| core::mem::take(&mut slot.slice_left));
        self.current = next;
        self.slice_end = now.saturating_add(if slice > 0 { slice } else { self.timeslice });
        let has_peer = self.runnable_at[level] > 0;
        Choice {
            run: Some(next),
            next_event: has_peer.then_some(self.slice_end),
        }
    }

    /// Makes `next` current: the vCPU that was current is counted again if runnable, and
    /// `next` leaves the counts while it is current.
    #[inline(always)]
    fn set_current(&mut self, next: Option<VcpuId>) {
        if next == self.current() {
            return;
        }
        let counted = |slot: Option<&Slot>| slot.filter(|slot| slot.runnable).map(|s| s.level);
        if let Some(level) = counted(self.slot(self.current)) {
            self.count_in(level);
        }
        if let Some(level) = counted(next.and_then(|vcpu| self.slot(vcpu))) {
            self.count_out(level);
        }
        self.current = next.unwrap_or(NO_VCPU);
    }

    /// One more runnable vCPU at `level` (counts stay within `MAX_VCPUS_PER_CORE`).
    fn count_in(&mut self, level: u8) {
        let level = level as usize % PRIORITY_LEVELS;
        self.runnable_at[level] = self.runnable_at[level].wrapping_add(1);
        self.runnable_levels |= 1 << level;
    }

    /// One runnable vCPU fewer at `level`.
    fn count_out(&mut self, level: u8) {
        let level = level as usize % PRIORITY_LEVELS;
        let count = self.runnable_at[level].saturating_sub(1);
        self.runnable_at[level] = count;
        if count == 0 {
            self.runnable_levels &= !(1 << level);
        }
    }

    fn take_ticket(&mut self) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        ticket
    }

    fn slot(&self, vcpu: VcpuId) -> Option<&Slot> {
        self.slots.get(vcpu as usize)?.as_ref()
    }

    fn slot_mut(&mut self, vcpu: VcpuId) -> Option<&mut Slot> {
        self.slots.get_mut(vcpu as usize)?.as_mut()
    }
}

/// The runnable count that vCPUs of `priority` share.
fn level_of(priority: u8) -> u8 {
    priority.min((PRIORITY_LEVELS - 1) as u8)
}

fn check_params(params: SchedParams) -> Result<(), SchedError> {
    if params.budget > params.period {
        return Err(SchedError::BadParams);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
