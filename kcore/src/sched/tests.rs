use super::*;
use crate::test_random::Random;
use std::collections::HashMap;

impl Scheduler {
    /// The reference for `block_wake_hand_off`, to be called after `block(from)` and
    /// `wake(to)`: makes `to` current in the rest of the slice and returns the choice when
    /// `choose` would certainly pick it (see `block_wake_hand_off`), else `None` with
    /// nothing changed.
    fn hand_off(&mut self, from: VcpuId, to: VcpuId) -> Option<Choice> {
        if self.budgeted > 0 || self.current != from || self.slot(from)?.runnable {
            return None;
        }
        let target = self.slot(to)?;
        if !target.runnable || !self.only_runnable_at_or_above(target.params.priority) {
            return None;
        }
        if let Some(slot) = self.slot_mut(to) {
            slot.slice_left = 0;
        }
        self.set_current(Some(to));
        Some(Choice {
            run: Some(to),
            next_event: None,
        })
    }

    /// Whether exactly one vCPU is runnable at `priority`'s level or above (found by a
    /// scan, not from the counts).
    fn only_runnable_at_or_above(&self, priority: u8) -> bool {
        let level = |priority: u8| (priority as usize).min(PRIORITY_LEVELS - 1);
        let above = self.slots.iter().flatten();
        above
            .filter(|slot| slot.runnable && level(slot.params.priority) >= level(priority))
            .count()
            == 1
    }

    /// The counts agree with the slots: `runnable_at[p]` is the number of runnable vCPUs at
    /// level `p` other than the current one, and `runnable_levels` marks the non-zero counts.
    fn assert_counts_agree(&self) {
        let mut expected = [0u8; PRIORITY_LEVELS];
        for slot in self.slots.iter().flatten() {
            if slot.runnable && self.current != slot.vcpu {
                expected[(slot.params.priority as usize).min(PRIORITY_LEVELS - 1)] += 1;
            }
        }
        assert_eq!(self.runnable_at, expected, "counts of {self:?}");
        let levels = (0..PRIORITY_LEVELS)
            .filter(|&level| expected[level] > 0)
            .fold(0u64, |levels, level| levels | 1 << level);
        assert_eq!(self.runnable_levels, levels, "levels of {self:?}");
    }
}

const SLICE: u64 = 10;

fn unlimited(priority: u8) -> SchedParams {
    SchedParams::unlimited(priority)
}

/// Runs the scheduler from `start` to `end`, calling back exactly when asked, and returns
/// the ticks each vCPU ran.
fn drive(s: &mut Scheduler, start: u64, end: u64) -> HashMap<VcpuId, u64> {
    let mut usage = HashMap::new();
    let mut now = start;
    while now < end {
        let choice = s.choose(now);
        let next = choice.next_event.unwrap_or(end).min(end);
        assert!(next > now, "next event {next} not after {now}");
        if let Some(vcpu) = choice.run {
            *usage.entry(vcpu).or_insert(0) += next - now;
        }
        now = next;
    }
    usage
}

#[test]
fn higher_priority_wins() {
    let mut s = Scheduler::new(SLICE);
    s.add(1, unlimited(1), 0).unwrap();
    s.add(2, unlimited(5), 0).unwrap();
    s.add(3, unlimited(3), 0).unwrap();
    let choice = s.choose(0);
    assert_eq!(
        choice,
        Choice {
            run: Some(2),
            next_event: None
        }
    );
    assert_eq!(s.current(), Some(2));
    s.block(2);
    assert_eq!(s.choose(1).run, Some(3));
    s.block(3);
    assert_eq!(s.choose(2).run, Some(1));
    s.wake(2);
    assert_eq!(s.choose(3).run, Some(2));
    s.block(1);
    s.block(2);
    s.block(3);
    assert_eq!(
        s.choose(4),
        Choice {
            run: None,
            next_event: None
        }
    );
    assert_eq!(s.current(), None);
}

#[test]
fn equal_priorities_share_in_round_robin() {
    let mut s = Scheduler::new(SLICE);
    for vcpu in 0..3 {
        s.add(vcpu, unlimited(4), 0).unwrap();
    }
    s.add(9, unlimited(2), 0).unwrap();
    // Order of addition, one slice each.
    let mut order = Vec::new();
    let mut now = 0;
    for _ in 0..6 {
        let choice = s.choose(now);
        order.push(choice.run.unwrap());
        assert_eq!(choice.next_event, Some(now + SLICE));
        now += SLICE;
    }
    assert_eq!(order, [0, 1, 2, 0, 1, 2]);
    // An early call does not end the slice.
    assert_eq!(s.choose(now).run, Some(0));
    assert_eq!(s.choose(now + 3).run, Some(0));
    assert_eq!(s.choose(now + 3).next_event, Some(now + SLICE));

    let usage = drive(&mut s, 1000, 31_000);
    for vcpu in 0..3 {
        let share = usage[&vcpu];
        assert!((9_990..=10_010).contains(&share), "vCPU {vcpu} ran {share}");
    }
    assert_eq!(
        usage.get(&9),
        None,
        "lower priority starves while others run"
    );
}

#[test]
fn a_lone_vcpu_needs_no_timer() {
    let mut s = Scheduler::new(SLICE);
    s.add(7, unlimited(0), 0).unwrap();
    for now in [0, 5, 50, 5000] {
        assert_eq!(
            s.choose(now),
            Choice {
                run: Some(7),
                next_event: None
            }
        );
    }
    // A peer appears: the slice 7 started at 5000 now matters.
    s.add(8, unlimited(0), 5000).unwrap();
    assert_eq!(
        s.choose(5001),
        Choice {
            run: Some(7),
            next_event: Some(5010)
        }
    );
    assert_eq!(
        s.choose(5010),
        Choice {
            run: Some(8),
            next_event: Some(5020)
        }
    );
    assert_eq!(
        s.choose(5020),
        Choice {
            run: Some(7),
            next_event: Some(5030)
        }
    );
}

#[test]
fn budget_limits_a_high_priority_spinner() {
    let mut s = Scheduler::new(SLICE);
    let limited = SchedParams {
        priority: 10,
        budget: 3,
        period: 10,
    };
    s.add(1, limited, 0).unwrap();
    s.add(2, unlimited(1), 0).unwrap();
    assert_eq!(
        s.choose(0),
        Choice {
            run: Some(1),
            next_event: Some(3)
        }
    );
    assert_eq!(
        s.choose(3),
        Choice {
            run: Some(2),
            next_event: Some(10)
        }
    );
    assert_eq!(
        s.choose(10),
        Choice {
            run: Some(1),
            next_event: Some(13)
        }
    );
    let usage = drive(&mut s, 13, 10_000);
    // Periods starting at 20, 30, ..., 9990: 998 of them.
    assert_eq!(usage[&1], 3 * 998);
    assert_eq!(usage[&2], (10_000 - 13) - 3 * 998);
}

#[test]
fn exhausted_vcpu_waits_for_its_next_period() {
    let mut s = Scheduler::new(SLICE);
    let params = SchedParams {
        priority: 3,
        budget: 20,
        period: 100,
    };
    s.add(4, params, 50).unwrap();
    assert_eq!(
        s.choose(60),
        Choice {
            run: Some(4),
            next_event: Some(80)
        }
    );
    // Called back late: the overrun is not carried over.
    assert_eq!(
        s.choose(85),
        Choice {
            run: None,
            next_event: Some(150)
        }
    );
    assert_eq!(
        s.choose(149),
        Choice {
            run: None,
            next_event: Some(150)
        }
    );
    assert_eq!(
        s.choose(150),
        Choice {
            run: Some(4),
            next_event: Some(170)
        }
    );
    // Running across a period boundary is charged to the new period for the part after it.
    s.block(4);
    assert_eq!(s.choose(160).run, None);
    s.wake(4);
    assert_eq!(
        s.choose(245),
        Choice {
            run: Some(4),
            next_event: Some(255)
        }
    );
    assert_eq!(
        s.choose(255),
        Choice {
            run: Some(4),
            next_event: Some(270)
        }
    );
    assert_eq!(s.choose(270).run, None);
}

#[test]
fn blocked_vcpus_are_never_chosen_and_wake_at_the_back() {
    let mut s = Scheduler::new(SLICE);
    for vcpu in [1, 2, 3] {
        s.add(vcpu, unlimited(2), 0).unwrap();
    }
    assert_eq!(s.choose(0).run, Some(1));
    s.block(1);
    assert_eq!(s.is_runnable(1), Ok(false));
    assert_eq!(s.choose(1).run, Some(2));
    s.wake(1);
    // 1 queues behind 3.
    assert_eq!(s.choose(11).run, Some(3));
    assert_eq!(s.choose(21).run, Some(1));
    // Waking a runnable vCPU does not reorder it.
    s.wake(2);
    assert_eq!(s.choose(31).run, Some(2));
    s.wake(42);
    s.block(42);
    assert_eq!(s.is_runnable(42), Err(SchedError::Unknown));
}

#[test]
fn yield_hands_over_to_a_peer() {
    let mut s = Scheduler::new(SLICE);
    s.add(1, unlimited(2), 0).unwrap();
    s.add(2, unlimited(2), 0).unwrap();
    assert_eq!(s.choose(0).run, Some(1));
    s.yield_now(1, 2);
    assert_eq!(s.current(), None);
    let choice = s.choose(2);
    assert_eq!(
        choice,
        Choice {
            run: Some(2),
            next_event: Some(12)
        }
    );
    // Alone, a yielding vCPU runs again with a fresh slice.
    s.remove(1);
    s.yield_now(2, 5);
    assert_eq!(
        s.choose(5),
        Choice {
            run: Some(2),
            next_event: None
        }
    );
    // Yield charges the budget up to the yield.
    let params = SchedParams {
        priority: 9,
        budget: 10,
        period: 100,
    };
    s.add(3, params, 100).unwrap();
    assert_eq!(s.choose(100).run, Some(3));
    s.yield_now(3, 104);
    assert_eq!(
        s.choose(104),
        Choice {
            run: Some(3),
            next_event: Some(110)
        }
    );
}

#[test]
fn remove_forgets_a_vcpu() {
    let mut s = Scheduler::new(SLICE);
    s.add(1, unlimited(5), 0).unwrap();
    s.add(2, unlimited(1), 0).unwrap();
    assert_eq!(s.choose(0).run, Some(1));
    s.remove(1);
    assert_eq!(s.current(), None);
    assert_eq!(s.choose(1).run, Some(2));
    s.remove(1);
    s.remove(77);
    assert_eq!(s.len(), 1);
    // The identity can be reused.
    s.add(1, unlimited(0), 2).unwrap();
    assert_eq!(s.choose(2).run, Some(2));
}

#[test]
fn table_limits_and_parameter_checks() {
    let mut s = Scheduler::new(SLICE);
    assert!(s.is_empty());
    for vcpu in 0..MAX_VCPUS_PER_CORE as VcpuId {
        s.add(vcpu, unlimited(1), 0).unwrap();
    }
    assert_eq!(s.add(100, unlimited(1), 0), Err(SchedError::Full));
    assert_eq!(s.add(3, unlimited(1), 0), Err(SchedError::Duplicate));
    s.remove(3);
    let bad = SchedParams {
        priority: 1,
        budget: 11,
        period: 10,
    };
    assert_eq!(s.add(100, bad, 0), Err(SchedError::BadParams));
    assert_eq!(s.set_params(4, bad, 0), Err(SchedError::BadParams));
    assert_eq!(s.set_params(3, unlimited(1), 0), Err(SchedError::Unknown));
    // Ids are slot numbers: out of range is Full even with a free slot.
    assert_eq!(s.add(100, unlimited(1), 0), Err(SchedError::Full));
    s.add(3, unlimited(1), 0).unwrap();
    assert_eq!(s.len(), MAX_VCPUS_PER_CORE);
    // budget == period is unlimited.
    let full = SchedParams {
        priority: 30,
        budget: 10,
        period: 10,
    };
    s.set_params(3, full, 0).unwrap();
    assert_eq!(s.choose(0).run, Some(3));
    assert_eq!(
        s.choose(30),
        Choice {
            run: Some(3),
            next_event: None
        }
    );
    assert_eq!(
        SchedError::Full.to_string(),
        "no room for another vCPU on this core"
    );
    assert_eq!(
        SchedError::BadParams.to_string(),
        "the budget is larger than its period"
    );
}

/// What the test knows about a vCPU independently of the scheduler.
struct Model {
    params: SchedParams,
    runnable: bool,
    added_at: u64,
    /// Ticks run in each period, by period number.
    usage: HashMap<u64, u64>,
}

impl Model {
    fn record(&mut self, mut from: u64, to: u64) {
        if self.params.is_unlimited() {
            return;
        }
        let period = self.params.period;
        while from < to {
            let number = (from - self.added_at) / period;
            let end = (self.added_at + (number + 1) * period).min(to);
            *self.usage.entry(number).or_insert(0) += end - from;
            from = end;
        }
    }
}

#[test]
fn invariants_hold_over_random_operations() {
    for seed in 1..=40u64 {
        let mut rng = Random(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut s = Scheduler::new(1 + rng.below(20));
        let mut models: HashMap<VcpuId, Model> = HashMap::new();
        let mut now = rng.below(1000);
        let mut running: Option<(VcpuId, u64)> = None;
        for _ in 0..3000 {
            for _ in 0..rng.below(3) {
                let vcpu = rng.below(20) as VcpuId;
                match rng.below(6) {
                    0 => {
                        let period = 1 + rng.below(100);
                        let budget = match rng.below(3) {
                            0 => 0,
                            _ => 1 + rng.below(period),
                        };
                        let params = SchedParams {
                            priority: rng.below(4) as u8,
                            budget,
                            period,
                        };
                        let expected = if models.contains_key(&vcpu) {
                            Err(SchedError::Duplicate)
                        } else if vcpu as usize >= MAX_VCPUS_PER_CORE
                            || models.len() == MAX_VCPUS_PER_CORE
                        {
                            Err(SchedError::Full)
                        } else {
                            Ok(())
                        };
                        assert_eq!(s.add(vcpu, params, now), expected);
                        if expected.is_ok() {
                            let model = Model {
                                params,
                                runnable: true,
                                added_at: now,
                                usage: HashMap::new(),
                            };
                            models.insert(vcpu, model);
                        }
                    }
                    1 => {
                        s.remove(vcpu);
                        models.remove(&vcpu);
                    }
                    2 => {
                        s.block(vcpu);
                        if let Some(m) = models.get_mut(&vcpu) {
                            m.runnable = false;
                        }
                    }
                    3 => {
                        s.wake(vcpu);
                        if let Some(m) = models.get_mut(&vcpu) {
                            m.runnable = true;
                        }
                    }
                    _ => {
                        let target = match (rng.below(2), s.current()) {
                            (0, Some(current)) => current,
                            _ => vcpu,
                        };
                        s.yield_now(target, now);
                    }
                }
                s.assert_counts_agree();
            }
            let choice = s.choose(now);
            s.assert_counts_agree();
            // Account the previous choice's running time in the model.
            if let Some((vcpu, since)) = running {
                if let Some(m) = models.get_mut(&vcpu) {
                    m.record(since, now);
                }
            }
            running = choice.run.map(|vcpu| (vcpu, now));
            check_choice(&s, &models, choice, now);
            let step = 1 + rng.below(60);
            now = match choice.next_event {
                Some(next) => next.min(now + step),
                None => now + step,
            };
        }
    }
}

fn check_choice(s: &Scheduler, models: &HashMap<VcpuId, Model>, choice: Choice, now: u64) {
    let eligible = |vcpu: VcpuId| {
        let slot = s
            .slot(vcpu)
            .expect("model and scheduler agree on membership");
        models[&vcpu].runnable && slot.has_budget()
    };
    assert_eq!(s.len(), models.len());
    for (vcpu, model) in models {
        for (period, used) in &model.usage {
            assert!(
                *used <= model.params.budget,
                "vCPU {vcpu} ran {used} in period {period}, budget {:?}",
                model.params
            );
        }
        assert_eq!(s.is_runnable(*vcpu), Ok(model.runnable));
    }
    if let Some(next) = choice.next_event {
        assert!(next > now);
    }
    match choice.run {
        Some(run) => {
            assert!(models[&run].runnable, "blocked vCPU {run} chosen");
            assert!(eligible(run), "vCPU {run} without budget chosen");
            let priority = models[&run].params.priority;
            for (vcpu, model) in models {
                assert!(
                    !(eligible(*vcpu) && model.params.priority > priority),
                    "vCPU {vcpu} outranks chosen {run}"
                );
            }
        }
        None => assert!(models.keys().all(|&v| !eligible(v)), "idle with work"),
    }
}

#[test]
fn hand_off_only_when_the_answer_is_certain() {
    let mut s = Scheduler::new(SLICE);
    s.add(0, unlimited(5), 0).unwrap(); // caller
    s.add(1, unlimited(7), 0).unwrap(); // server, higher priority
    s.add(2, unlimited(3), 0).unwrap(); // lower
    s.block(1);
    assert_eq!(s.choose(0).run, Some(0));
    // The caller blocks on the server, which wakes.
    s.block(0);
    s.wake(1);
    let choice = s
        .hand_off(0, 1)
        .expect("a higher-priority server is certain");
    assert_eq!(choice.run, Some(1));
    assert_eq!(s.current(), Some(1));
    assert_eq!(s.choose(20).run, Some(1), "choose agrees");
    // The server replies: the caller wakes, the server blocks; nothing else runnable is at
    // the caller's priority or above, so the hand-off back is certain too.
    s.wake(0);
    s.block(1);
    assert_eq!(s.hand_off(1, 0).map(|choice| choice.run), Some(Some(0)));
    assert_eq!(s.choose(30).run, Some(0), "choose agrees");
    // A runnable peer at the woken vCPU's priority makes it uncertain.
    s.add(3, unlimited(5), 30).unwrap();
    s.block(0);
    s.wake(1);
    assert_eq!(s.choose(31).run, Some(1));
    s.block(1);
    s.wake(0);
    assert_eq!(s.hand_off(1, 0), None);
    s.remove(3);
    // Not from the current vCPU: refused.
    assert_eq!(s.hand_off(2, 0), None);
    // A blocked target: refused.
    s.block(2);
    assert_eq!(s.hand_off(0, 2), None);
}

#[test]
fn a_hand_off_donates_the_rest_of_the_slice() {
    let mut s = Scheduler::new(SLICE);
    s.add(0, unlimited(5), 0).unwrap(); // caller
    s.add(1, unlimited(7), 0).unwrap(); // server
    s.add(2, unlimited(7), 0).unwrap(); // the server's peer
    s.block(1);
    s.block(2);
    assert_eq!(s.choose(0).run, Some(0));
    // The call comes at any time in the caller's slice (the hand-off reads no clock).
    let choice = s.block_wake_hand_off(0, 1).expect("certain");
    assert_eq!(choice.next_event, None, "alone at its level: no tick");
    // The peer wakes: the server keeps the caller's slice, which ends at SLICE.
    s.wake(2);
    assert_eq!(s.choose(SLICE - 1).run, Some(1));
    let choice = s.choose(SLICE);
    assert_eq!(choice.run, Some(2), "the donated slice is over");
    assert_eq!(choice.next_event, Some(2 * SLICE));
}

#[test]
fn hand_off_is_refused_when_budgets_are_in_play() {
    let mut s = Scheduler::new(SLICE);
    s.add(0, unlimited(5), 0).unwrap();
    s.add(
        1,
        SchedParams {
            priority: 7,
            budget: 10,
            period: 100,
        },
        0,
    )
    .unwrap();
    s.block(1);
    assert_eq!(s.choose(0).run, Some(0));
    s.block(0);
    s.wake(1);
    assert_eq!(s.hand_off(0, 1), None);
    assert_eq!(s.choose(1).run, Some(1));
}

#[test]
fn a_frequent_preempter_does_not_starve_peers_of_the_preempted() {
    // A and B share priority 5; H (priority 9) wakes every 4 ticks and runs 1 tick, so A
    // never runs a whole slice (10) in one go. A's slice must still end after 10 ticks of
    // its own running, and B must get its turn.
    let (a, b, h) = (1, 2, 3);
    let mut s = Scheduler::new(SLICE);
    s.add(a, unlimited(5), 0).unwrap();
    s.add(b, unlimited(5), 0).unwrap();
    s.add(h, unlimited(9), 0).unwrap();
    s.block(h);
    let mut usage: HashMap<VcpuId, u64> = HashMap::new();
    let mut now = 0;
    while now < 200 {
        if now % 4 == 0 {
            s.wake(h);
        }
        let choice = s.choose(now);
        let run = choice.run.expect("someone is runnable");
        let until = choice.next_event.unwrap_or(u64::MAX).min(now + 1);
        *usage.entry(run).or_insert(0) += until - now;
        if run == h {
            s.block(h);
        }
        now = until;
    }
    let (ran_a, ran_b) = (usage[&a], usage[&b]);
    assert!(ran_b > 0, "B never ran: {usage:?}");
    assert!(ran_a.abs_diff(ran_b) <= SLICE, "unfair: {usage:?}");
    assert_eq!(usage[&h], 50);
}

/// One random operation on `s` at `now`, for the fast-path tests: mostly unlimited vCPUs at
/// a few priorities (now and then one above the shared top level), now and then a budget.
fn random_operation(rng: &mut Random, s: &mut Scheduler, now: u64) {
    let vcpu = rng.below(MAX_VCPUS_PER_CORE as u64) as VcpuId;
    match rng.below(8) {
        0 => {
            let params = if rng.below(25) == 0 {
                SchedParams {
                    priority: rng.below(3) as u8,
                    budget: 1 + rng.below(5),
                    period: 10,
                }
            } else {
                unlimited(rng.below(3) as u8 + if rng.below(10) == 0 { 40 } else { 0 })
            };
            let _ = s.add(vcpu, params, now);
        }
        1 if rng.below(3) == 0 => s.remove(vcpu),
        1 | 2 => s.block(vcpu),
        3 => s.wake(vcpu),
        4 => s.yield_now(vcpu, now),
        _ => {
            let _ = s.choose(now);
        }
    }
}

/// Drives 60 schedulers (seeds 1..=60, mixed by `mix`) through 2000 random operations
/// each and calls `check(scheduler, current, now, rng, seed)` in every state with a current
/// vCPU.
fn at_random_states(
    mix: u64,
    mut check: impl FnMut(&mut Scheduler, VcpuId, u64, &mut Random, u64),
) {
    for seed in 1..=60u64 {
        let mut rng = Random(seed.wrapping_mul(mix) | 1);
        let mut s = Scheduler::new(1 + rng.below(20));
        let mut now = rng.below(100);
        for _ in 0..2000 {
            random_operation(&mut rng, &mut s, now);
            s.assert_counts_agree();
            now += rng.below(8);
            if let Some(from) = s.current() {
                check(&mut s, from, now, &mut rng, seed);
                s.assert_counts_agree();
            }
        }
    }
}

/// Runs a fast path at random states against the steps it stands for. At each state a
/// random `to` is drawn and `setup` applied; `steps` then computes on a copy the choice and
/// state the fast path must leave when it answers. A fast path that declines must change
/// nothing, and must not decline where `certain` says the steps would surely answer.
fn agrees_with_steps(
    mix: u64,
    minimum: (u32, u32),
    setup: fn(&mut Scheduler, VcpuId),
    fast: fn(&mut Scheduler, VcpuId, VcpuId, u64) -> Option<Choice>,
    steps: fn(&mut Scheduler, VcpuId, VcpuId, u64) -> Option<Choice>,
    certain: fn(&Scheduler, VcpuId, VcpuId) -> bool,
) {
    let (mut answered, mut declined) = (0, 0);
    at_random_states(mix, |s, from, now, rng, seed| {
        let to = rng.below(MAX_VCPUS_PER_CORE as u64) as VcpuId;
        setup(s, to);
        let before = s.clone();
        let mut reference = s.clone();
        let expected = steps(&mut reference, from, to, now);
        match fast(s, from, to, now) {
            Some(choice) => {
                assert_eq!(Some(choice), expected, "seed {seed}");
                assert_eq!(*s, reference, "seed {seed}");
                answered += 1;
            }
            None => {
                assert_eq!(*s, before, "seed {seed}");
                if certain(&before, from, to) {
                    assert_eq!(expected, None, "seed {seed}: declined a certain answer");
                }
                declined += 1;
            }
        }
    });
    assert!(
        answered > minimum.0 && declined > minimum.1,
        "{answered} answered, {declined} declined"
    );
}

/// `yield_hand_off` answers exactly as `yield_now` then `choose` would, leaving the same
/// state, whenever it answers; when it declines it changes nothing.
#[test]
fn yield_hand_off_matches_yield_then_choose() {
    agrees_with_steps(
        0x2545_f491_4f6c_dd1d,
        (1000, 100),
        |_, _| {},
        |s, from, _, now| s.yield_hand_off(from, now),
        |s, from, _, now| {
            s.yield_now(from, now);
            Some(s.choose(now))
        },
        |_, _, _| false,
    );
}

/// `block_wake_hand_off` answers exactly as `block`, `wake` and `hand_off` in turn, and
/// declines (changing nothing) only where `hand_off` would refuse too.
#[test]
fn block_wake_hand_off_matches_the_steps() {
    agrees_with_steps(
        0x9e37_79b9_7f4a_7c15,
        (500, 500),
        |_, _| {},
        |s, from, to, _| s.block_wake_hand_off(from, to),
        |s, from, to, _| {
            s.block(from);
            s.wake(to);
            s.hand_off(from, to)
        },
        |before, from, to| {
            from != to
                && before.is_runnable(from) == Ok(true)
                && before.is_runnable(to) == Ok(false)
        },
    );
}

/// `preempt_hand_off` after a wake-up answers exactly as `choose` would, leaving the same
/// state, whenever it answers; when it declines it changes nothing.
#[test]
fn preempt_hand_off_matches_choose() {
    agrees_with_steps(
        0x6a09_e667_f3bc_c909,
        (200, 200),
        Scheduler::wake,
        Scheduler::preempt_hand_off,
        |s, _, _, now| Some(s.choose(now)),
        |_, _, _| false,
    );
}
