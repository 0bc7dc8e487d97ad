use super::*;
use crate::test_random::Random;

const LRS: usize = 4;

fn lrs() -> [ListRegister; LRS] {
    [ListRegister::EMPTY; LRS]
}

/// The (vINTID, state) of every valid list register, in register order.
fn contents(list_registers: &[ListRegister]) -> Vec<(u32, LrState)> {
    list_registers
        .iter()
        .filter(|lr| lr.is_valid())
        .map(|lr| (lr.vintid(), lr.state()))
        .collect()
}

/// The guest acknowledges the interrupt in `index`.
fn acknowledge(list_registers: &mut [ListRegister], index: usize) {
    let lr = list_registers[index];
    assert_eq!(lr.state(), LrState::Pending, "acknowledging {lr:?}");
    list_registers[index] = lr.with_state(LrState::Active);
}

/// The guest deactivates the interrupt in `index` (ends handling it).
fn deactivate(list_registers: &mut [ListRegister], index: usize) {
    let lr = list_registers[index];
    let state = match lr.state() {
        LrState::Active => LrState::Invalid,
        LrState::PendingActive => LrState::Pending,
        other => panic!("deactivating an interrupt in state {other:?}"),
    };
    list_registers[index] = lr.with_state(state);
}

#[test]
fn list_register_encoding() {
    let lr = ListRegister::pending(27, 0xa0, None);
    assert_eq!(lr.0, 27 | (0xa0 << 48) | (1 << 60) | (0b01 << 62));
    assert_eq!(lr.vintid(), 27);
    assert_eq!(lr.priority(), 0xa0);
    assert_eq!(lr.physical(), None);
    assert_eq!(lr.state(), LrState::Pending);
    assert!(lr.is_valid());

    let linked = ListRegister::pending(40, 0x10, Some(1019));
    assert_eq!(
        linked.0,
        40 | (1019 << 32) | (0x10 << 48) | (1 << 60) | (1 << 61) | (0b01 << 62)
    );
    assert_eq!(linked.physical(), Some(1019));
    assert_eq!(linked.vintid(), 40);

    assert_eq!(ListRegister::EMPTY.state(), LrState::Invalid);
    assert!(!ListRegister::EMPTY.is_valid());
    for (bits, state) in [
        (0b00, LrState::Invalid),
        (0b01, LrState::Pending),
        (0b10, LrState::Active),
        (0b11, LrState::PendingActive),
    ] {
        let changed = linked.with_state(state);
        assert_eq!(changed.0 >> 62, bits);
        assert_eq!(changed.state(), state);
        assert_eq!(changed.0 & !(0b11 << 62), linked.0 & !(0b11 << 62));
    }
    // Bit 41 is the EOI maintenance request when HW = 0, not a physical INTID.
    assert_eq!(ListRegister(1 << 41).physical(), None);
    assert!(LrState::PendingActive.is_active() && LrState::PendingActive.is_pending());
    assert!(!LrState::Active.is_pending() && !LrState::Pending.is_active());
}

#[test]
fn out_of_range_interrupts_are_refused() {
    let mut vgic = VirtualInterrupts::new();
    assert_eq!(
        vgic.raise(MAX_VIRTUAL_INTID, 0, None),
        Err(VgicError::InvalidVirtualIntid)
    );
    assert_eq!(
        vgic.raise(u32::MAX, 0, None),
        Err(VgicError::InvalidVirtualIntid)
    );
    assert_eq!(
        vgic.raise(33, 0, Some(15)),
        Err(VgicError::InvalidPhysicalIntid)
    );
    assert_eq!(
        vgic.raise(33, 0, Some(MAX_VIRTUAL_INTID)),
        Err(VgicError::InvalidPhysicalIntid)
    );
    assert!(!vgic.has_pending());
    assert_eq!(vgic.raise(0, 0, None), Ok(()));
    assert_eq!(vgic.raise(MAX_VIRTUAL_INTID - 1, 0, Some(16)), Ok(()));
    assert_eq!(vgic.raise(34, 0, Some(MAX_VIRTUAL_INTID - 1)), Ok(()));
    assert!(vgic.is_pending(0) && vgic.is_pending(1019) && vgic.is_pending(34));
    assert!(!vgic.is_pending(1) && !vgic.is_pending(MAX_VIRTUAL_INTID));
    assert!(!VgicError::InvalidVirtualIntid.to_string().is_empty());
}

#[test]
fn load_picks_the_most_urgent_first() {
    let mut vgic = VirtualInterrupts::new();
    for (vintid, priority) in [
        (40, 0x80),
        (33, 0x20),
        (900, 0x20),
        (27, 0xf0),
        (1, 0x00),
        (64, 0x80),
    ] {
        vgic.raise(vintid, priority, None).unwrap();
    }
    let mut registers = lrs();
    let outcome = vgic.load(&mut registers);
    assert_eq!(
        outcome,
        LoadOutcome {
            used: 4,
            overflow: true
        }
    );
    let loaded: Vec<(u32, u8)> = registers
        .iter()
        .map(|lr| (lr.vintid(), lr.priority()))
        .collect();
    // Lowest priority value first; equal priorities by vINTID.
    assert_eq!(loaded, [(1, 0x00), (33, 0x20), (900, 0x20), (40, 0x80)]);
    assert!(registers.iter().all(|lr| lr.state() == LrState::Pending));

    // The guest takes everything; the rest follows.
    for index in 0..LRS {
        acknowledge(&mut registers, index);
        deactivate(&mut registers, index);
    }
    vgic.save(&registers);
    let outcome = vgic.load(&mut registers);
    assert_eq!(
        outcome,
        LoadOutcome {
            used: 2,
            overflow: false
        }
    );
    assert_eq!(
        contents(&registers),
        [(64, LrState::Pending), (27, LrState::Pending)]
    );
    assert_eq!(registers[2], ListRegister::EMPTY);
}

#[test]
fn a_more_urgent_interrupt_displaces_pending_ones() {
    let mut vgic = VirtualInterrupts::new();
    for vintid in 40..44 {
        vgic.raise(vintid, 0x80, None).unwrap();
    }
    let mut registers = lrs();
    vgic.load(&mut registers);
    vgic.save(&registers); // the guest had interrupts masked
    vgic.raise(27, 0x10, None).unwrap();
    let outcome = vgic.load(&mut registers);
    assert!(outcome.overflow);
    assert_eq!(registers[0].vintid(), 27);
    assert_eq!(
        contents(&registers)
            .iter()
            .map(|(vintid, _)| *vintid)
            .collect::<Vec<_>>(),
        [27, 40, 41, 42]
    );
}

#[test]
fn raises_merge() {
    let mut vgic = VirtualInterrupts::new();
    vgic.raise(30, 0x40, None).unwrap();
    vgic.raise(30, 0x40, None).unwrap();
    let mut registers = lrs();
    assert_eq!(vgic.load(&mut registers).used, 1);
    assert_eq!(contents(&registers), [(30, LrState::Pending)]);

    // Raised again while in a list register and not yet acknowledged: one delivery.
    vgic.raise(30, 0x40, None).unwrap();
    vgic.save(&registers);
    assert_eq!(vgic.load(&mut registers).used, 1);
    assert_eq!(contents(&registers), [(30, LrState::Pending)]);
    vgic.raise(30, 0x40, None).unwrap();
    assert_eq!(
        vgic.load(&mut registers).used,
        1,
        "a second load changes nothing"
    );
    assert_eq!(contents(&registers), [(30, LrState::Pending)]);

    // Raised while active: pending again, in the same list register.
    acknowledge(&mut registers, 0);
    vgic.save(&registers);
    assert!(!vgic.has_pending());
    vgic.raise(30, 0x40, None).unwrap();
    assert!(vgic.has_pending());
    vgic.load(&mut registers);
    assert_eq!(contents(&registers), [(30, LrState::PendingActive)]);

    // Raised while pending and active: merged.
    vgic.save(&registers);
    vgic.raise(30, 0x40, None).unwrap();
    assert_eq!(
        vgic.load(&mut registers),
        LoadOutcome {
            used: 1,
            overflow: false
        }
    );
    assert_eq!(contents(&registers), [(30, LrState::PendingActive)]);

    // The guest finishes the first, takes and finishes the second: nothing left.
    deactivate(&mut registers, 0);
    acknowledge(&mut registers, 0);
    deactivate(&mut registers, 0);
    vgic.save(&registers);
    assert!(!vgic.has_pending());
    assert_eq!(
        vgic.load(&mut registers),
        LoadOutcome {
            used: 0,
            overflow: false
        }
    );
    assert_eq!(registers, lrs());
}

#[test]
fn a_hardware_linked_interrupt_is_never_pending_and_active() {
    let mut vgic = VirtualInterrupts::new();
    vgic.raise(27, 0x20, Some(27)).unwrap();
    let mut registers = lrs();
    vgic.load(&mut registers);
    assert_eq!(registers[0], ListRegister::pending(27, 0x20, Some(27)));
    acknowledge(&mut registers, 0);
    vgic.save(&registers);
    // Its pending state is kept by the physical distributor while it is active.
    vgic.raise(27, 0x20, Some(27)).unwrap();
    assert!(!vgic.has_pending());
    vgic.load(&mut registers);
    assert_eq!(contents(&registers), [(27, LrState::Active)]);
    assert!(!vgic.is_pending(27));
    deactivate(&mut registers, 0);
    vgic.save(&registers);
    assert_eq!(vgic.load(&mut registers).used, 0);
}

#[test]
fn active_interrupts_keep_their_list_register() {
    let mut vgic = VirtualInterrupts::new();
    for vintid in [50, 51, 52] {
        vgic.raise(vintid, 0x80, None).unwrap();
    }
    let mut registers = lrs();
    vgic.load(&mut registers);
    // The guest acknowledges 52 and finishes 50; 51 stays pending.
    acknowledge(&mut registers, 2);
    acknowledge(&mut registers, 0);
    deactivate(&mut registers, 0);
    vgic.save(&registers);
    assert!(vgic.has_pending());
    // Two urgent arrivals fill the free registers around the active one.
    vgic.raise(60, 0x00, None).unwrap();
    vgic.raise(61, 0x00, None).unwrap();
    let outcome = vgic.load(&mut registers);
    assert_eq!(
        outcome,
        LoadOutcome {
            used: 4,
            overflow: false
        }
    );
    assert_eq!(
        contents(&registers),
        [
            (60, LrState::Pending),
            (61, LrState::Pending),
            (52, LrState::Active),
            (51, LrState::Pending)
        ]
    );
    // All registers active: nothing pending may displace them.
    for index in [0, 1, 3] {
        acknowledge(&mut registers, index);
    }
    vgic.save(&registers);
    vgic.raise(20, 0x00, None).unwrap();
    let outcome = vgic.load(&mut registers);
    assert_eq!(
        outcome,
        LoadOutcome {
            used: 4,
            overflow: true
        }
    );
    assert!(registers.iter().all(|lr| lr.state() == LrState::Active));
    assert!(vgic.has_pending());
}

#[test]
fn fewer_or_more_list_registers_than_before() {
    let mut vgic = VirtualInterrupts::new();
    for vintid in 100..104 {
        vgic.raise(vintid, 0x80, None).unwrap();
    }
    let mut registers = lrs();
    vgic.load(&mut registers);
    acknowledge(&mut registers, 3);
    vgic.save(&registers);
    // Two registers only: the active interrupt moves in, one pending one joins it.
    let mut two = [ListRegister::EMPTY; 2];
    assert_eq!(
        vgic.load(&mut two),
        LoadOutcome {
            used: 2,
            overflow: true
        }
    );
    assert_eq!(
        contents(&two),
        [(103, LrState::Active), (100, LrState::Pending)]
    );
    // More than the architecture's 16: the extra ones are written empty.
    vgic.save(&two);
    let mut many = [ListRegister(u64::MAX); MAX_LIST_REGISTERS + 2];
    assert_eq!(
        vgic.load(&mut many),
        LoadOutcome {
            used: 4,
            overflow: false
        }
    );
    assert!(many[4..].iter().all(|lr| *lr == ListRegister::EMPTY));
    assert_eq!(many[0].vintid(), 103);
    // No list register at all: everything stays tracked.
    vgic.save(&many);
    assert_eq!(
        vgic.load(&mut []),
        LoadOutcome {
            used: 0,
            overflow: true
        }
    );
    assert!(vgic.has_pending());
    let mut registers = lrs();
    vgic.load(&mut registers);
    assert_eq!(contents(&registers).len(), 4);
}

#[test]
fn clear_forgets_everything() {
    let mut vgic = VirtualInterrupts::new();
    vgic.raise(5, 0, None).unwrap();
    vgic.raise(6, 0, None).unwrap();
    let mut registers = [ListRegister::EMPTY; 1];
    vgic.load(&mut registers);
    vgic.clear();
    assert!(!vgic.has_pending());
    assert_eq!(
        vgic.load(&mut registers),
        LoadOutcome {
            used: 0,
            overflow: false
        }
    );
    assert_eq!(registers[0], ListRegister::EMPTY);
}

#[test]
fn save_ignores_list_registers_it_did_not_fill() {
    let mut vgic = VirtualInterrupts::new();
    vgic.save(&[ListRegister::pending(9, 0, None); LRS]);
    assert!(!vgic.has_pending());
    let mut registers = lrs();
    assert_eq!(vgic.load(&mut registers).used, 0);
}

/// The guest's view, for the randomized test: per vINTID, whether a raise happened since the
/// guest last acknowledged it.
struct Model {
    raised_since_acknowledge: Vec<bool>,
    acknowledgements: u64,
}

impl Model {
    fn acknowledge(&mut self, list_registers: &mut [ListRegister], index: usize) {
        let vintid = list_registers[index].vintid() as usize;
        assert!(
            self.raised_since_acknowledge[vintid],
            "vINTID {vintid} delivered twice for one raise"
        );
        self.raised_since_acknowledge[vintid] = false;
        self.acknowledgements += 1;
        acknowledge(list_registers, index);
    }

    /// The guest runs: it acknowledges, finishes and deactivates at random.
    fn run(&mut self, list_registers: &mut [ListRegister], random: &mut Random) {
        for index in 0..list_registers.len() {
            match list_registers[index].state() {
                LrState::Invalid => {}
                LrState::Pending => match random.below(3) {
                    0 => {}
                    1 => self.acknowledge(list_registers, index),
                    _ => {
                        self.acknowledge(list_registers, index);
                        deactivate(list_registers, index);
                    }
                },
                LrState::Active => {
                    if random.below(2) == 0 {
                        deactivate(list_registers, index);
                    }
                }
                LrState::PendingActive => match random.below(3) {
                    0 => {}
                    1 => deactivate(list_registers, index),
                    _ => {
                        deactivate(list_registers, index);
                        self.acknowledge(list_registers, index);
                    }
                },
            }
        }
    }
}

fn check_loaded(list_registers: &[ListRegister], count: usize, vgic: &VirtualInterrupts) {
    let valid: Vec<u32> = list_registers
        .iter()
        .filter(|lr| lr.is_valid())
        .map(ListRegister::vintid)
        .collect();
    let mut unique = valid.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        valid.len(),
        "a vINTID in two list registers: {valid:?}"
    );
    for lr in list_registers.iter().filter(|lr| lr.is_valid()) {
        assert!(
            !vgic.pending_bit(lr.vintid()),
            "{} both loaded and pending",
            lr.vintid()
        );
        if lr.physical().is_some() {
            assert_ne!(lr.state(), LrState::PendingActive);
        }
    }
    // Anything left pending in software is no more urgent than what was loaded pending,
    // and only left because no list register was free.
    let left: Vec<u32> = vgic.pending_intids().collect();
    if !left.is_empty() {
        assert!(list_registers
            .iter()
            .take(count)
            .all(ListRegister::is_valid));
        let most_urgent_left = left
            .iter()
            .map(|v| vgic.priority[*v as usize])
            .min()
            .unwrap();
        for lr in list_registers
            .iter()
            .filter(|lr| lr.state() == LrState::Pending)
        {
            assert!(lr.priority() <= most_urgent_left);
        }
    }
}

#[test]
fn randomized_no_interrupt_is_lost_or_duplicated() {
    randomized_raises(Random(0x9e37_79b9_7f4a_7c15), false);
}

#[test]
fn randomized_direct_raises_lose_or_duplicate_nothing() {
    randomized_raises(Random(0x2545_f491_4f6c_dd1d), true);
}

/// A random run of raises, loads, guest activity and saves; with `direct`, interrupts are
/// also raised while the list registers are loaded, through
/// [`VirtualInterrupts::raise_direct`] or, where that is unavailable, the general path.
fn randomized_raises(mut random: Random, direct: bool) {
    let mut direct_writes = 0;
    for round in 0..200 {
        let count = 1 + random.below(MAX_LIST_REGISTERS as u64) as usize;
        let mut vgic = VirtualInterrupts::new();
        let mut registers = vec![ListRegister::EMPTY; count];
        let mut model = Model {
            raised_since_acknowledge: vec![false; INTERRUPTS],
            acknowledgements: 0,
        };
        // A small set of vINTIDs so that merges happen; the even ones are linked.
        let intids: Vec<u32> = (0..24)
            .map(|_| random.below(u64::from(MAX_VIRTUAL_INTID)) as u32)
            .collect();
        let mut raises = 0;
        for _ in 0..300 {
            for _ in 0..random.below(4) {
                let Some((vintid, priority, physical)) =
                    pick_raise(&intids, &registers, &mut random)
                else {
                    continue;
                };
                vgic.raise(vintid, priority, physical).unwrap();
                model.raised_since_acknowledge[vintid as usize] = true;
                raises += 1;
            }
            // The kernel's quiet path: the registers written empty, without a load.
            if direct && vgic.is_quiet() && random.below(2) == 0 {
                registers.fill(ListRegister::EMPTY);
                vgic.load_quiet(count);
            } else {
                let before = registers.clone();
                let outcome = vgic.load(&mut registers);
                check_loaded(&registers, count, &vgic);
                // Active interrupts stay in their list register.
                for (old, new) in before.iter().zip(&registers) {
                    if old.state().is_active() {
                        assert_eq!(new.vintid(), old.vintid());
                        assert!(new.state().is_active());
                    }
                }
                assert_eq!(outcome.overflow, vgic.pending_intids().next().is_some());
            }
            model.run(&mut registers, &mut random);
            for _ in 0..if direct { random.below(4) } else { 0 } {
                let Some((vintid, priority, physical)) =
                    pick_raise(&intids, &registers, &mut random)
                else {
                    continue;
                };
                let empty = registers
                    .iter()
                    .enumerate()
                    .filter(|(_, lr)| !lr.is_valid())
                    .fold(0u64, |bits, (index, _)| bits | 1 << index);
                let live = registers.clone();
                match vgic.raise_direct(vintid, priority, physical, empty, |index| live[index]) {
                    DirectRaise::Merged => {}
                    DirectRaise::Write { index, value } => {
                        registers[index] = value;
                        direct_writes += 1;
                    }
                    DirectRaise::Unavailable => {
                        vgic.save(&registers);
                        vgic.raise(vintid, priority, physical).unwrap();
                        vgic.load(&mut registers);
                    }
                }
                check_loaded(&registers, count, &vgic);
                model.raised_since_acknowledge[vintid as usize] = true;
                raises += 1;
                model.run(&mut registers, &mut random);
            }
            vgic.save(&registers);
        }
        // Drain: the guest takes and finishes everything.
        let mut cycles = 0;
        loop {
            vgic.load(&mut registers);
            check_loaded(&registers, count, &vgic);
            if !registers.iter().any(ListRegister::is_valid) {
                break;
            }
            for index in 0..count {
                if registers[index].state().is_active() {
                    deactivate(&mut registers, index);
                }
                if registers[index].state() == LrState::Pending {
                    model.acknowledge(&mut registers, index);
                    deactivate(&mut registers, index);
                }
            }
            vgic.save(&registers);
            cycles += 1;
            assert!(cycles < 100, "round {round}: draining does not end");
        }
        assert!(!vgic.has_pending());
        let lost: Vec<usize> = (0..INTERRUPTS)
            .filter(|v| model.raised_since_acknowledge[*v])
            .collect();
        assert!(lost.is_empty(), "round {round}: raises lost for {lost:?}");
        assert!(model.acknowledgements > 0 && model.acknowledgements <= raises);
    }
    assert_eq!(
        direct_writes > 0,
        direct,
        "direct raises wrote list registers"
    );
}

/// A raise for the randomized test: a vINTID of `intids` (the even ones linked), unless it
/// is a linked interrupt active in `registers` (its physical source cannot fire again).
fn pick_raise(
    intids: &[u32],
    registers: &[ListRegister],
    random: &mut Random,
) -> Option<(u32, u8, Option<u32>)> {
    let vintid = intids[random.below(intids.len() as u64) as usize];
    let physical = (vintid.is_multiple_of(2) && vintid >= MIN_PHYSICAL_INTID).then_some(vintid);
    let active = registers
        .iter()
        .any(|lr| lr.vintid() == vintid && lr.state().is_active());
    if physical.is_some() && active {
        return None;
    }
    Some((vintid, random.below(8) as u8 * 0x20, physical))
}

#[test]
fn quiet_only_with_nothing_pending_and_nothing_resident() {
    let mut interrupts = VirtualInterrupts::new();
    assert!(interrupts.is_quiet());
    interrupts.raise(27, 0xa0, None).unwrap();
    assert!(!interrupts.is_quiet());
    let mut list_registers = [ListRegister::EMPTY; 4];
    let outcome = interrupts.load(&mut list_registers);
    assert_eq!(outcome.used, 1);
    assert!(
        !interrupts.is_quiet(),
        "a loaded interrupt is still tracked"
    );
    // The guest acknowledges: the register becomes active, then deactivated (invalid).
    list_registers[0] = list_registers[0].with_state(LrState::Active);
    interrupts.save(&list_registers);
    assert!(
        !interrupts.is_quiet(),
        "an active interrupt is still tracked"
    );
    interrupts.load(&mut list_registers);
    list_registers[0] = ListRegister::EMPTY;
    interrupts.save(&list_registers);
    assert!(interrupts.is_quiet());
}
