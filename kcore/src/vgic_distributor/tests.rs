use super::*;
use crate::psci::virtual_mpidr;

const GICD: u64 = DISTRIBUTOR_BASE;

fn gicr(vcpu: usize, offset: u64) -> u64 {
    REDISTRIBUTOR_BASE + vcpu as u64 * REDISTRIBUTOR_FRAME_SIZE + offset
}

fn sgi_base(vcpu: usize, offset: u64) -> u64 {
    gicr(vcpu, SGI_BASE + offset)
}

fn write32(distributor: &mut Distributor, ipa: u64, value: u32) -> Effects {
    let effects = distributor.write(ipa, 4, u64::from(value));
    assert!(!effects.unhandled, "write to {ipa:#x} unhandled");
    effects
}

fn read32(distributor: &mut Distributor, ipa: u64) -> u32 {
    distributor.read(ipa, 4).expect("register exists") as u32
}

/// What Linux's GICv3 driver does at boot on the boot vCPU, then on each secondary.
fn linux_boot(distributor: &mut Distributor) {
    // gic_dist_init: disable, wait for RWP, every SPI group 1, priority 0xa0, level,
    // disabled and inactive, then route every SPI to the boot CPU, then enable.
    write32(distributor, GICD, 0);
    assert_eq!(read32(distributor, GICD) & (1 << 31), 0, "RWP reads 0");
    let lines = distributor.interrupt_lines();
    for intid in (32..lines).step_by(32) {
        let word = u64::from(intid / 32) * 4;
        write32(distributor, GICD + 0x080 + word, !0);
        write32(distributor, GICD + 0x180 + word, !0);
        write32(distributor, GICD + 0x380 + word, !0);
    }
    for intid in (32..lines).step_by(16) {
        write32(distributor, GICD + 0xc00 + u64::from(intid / 16) * 4, 0);
    }
    for intid in (32..lines).step_by(4) {
        write32(distributor, GICD + 0x400 + u64::from(intid), 0xa0a0_a0a0);
    }
    write32(
        distributor,
        GICD,
        CTLR_ARE | CTLR_ENABLE_GROUP_1 | CTLR_ENABLE_GROUP_0,
    );
    for intid in 32..lines {
        let effects = distributor.write(GICD + 0x6000 + u64::from(intid) * 8, 8, virtual_mpidr(0));
        assert_eq!(
            effects.route,
            Some(RouteChange {
                intid,
                vcpu: Some(0)
            })
        );
    }
    for vcpu in 0..distributor.vcpu_count() {
        linux_cpu_init(distributor, vcpu);
    }
}

/// gic_populate_rdist, gic_enable_redist and gic_cpu_init for one vCPU.
fn linux_cpu_init(distributor: &mut Distributor, vcpu: usize) {
    // Walk the frames until the one whose affinity matches, as gic_iterate_rdists does.
    let mut frame = 0;
    loop {
        assert_eq!(read32(distributor, gicr(frame, 0xffe8)) >> 4 & 0xf, 3);
        let typer = distributor.read(gicr(frame, 0x8), 8).unwrap();
        if typer >> 32 == virtual_mpidr(vcpu) & 0xff {
            assert_eq!((typer >> 8) & 0xffff, vcpu as u64);
            break;
        }
        assert_eq!(typer & (1 << 4), 0, "Last set before vCPU {vcpu}'s frame");
        frame += 1;
    }
    // Wake the redistributor.
    let waker = read32(distributor, gicr(vcpu, 0x14));
    assert_eq!(waker, WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP);
    write32(
        distributor,
        gicr(vcpu, 0x14),
        waker & !WAKER_PROCESSOR_SLEEP,
    );
    assert_eq!(
        read32(distributor, gicr(vcpu, 0x14)) & WAKER_CHILDREN_ASLEEP,
        0
    );
    // gic_cpu_config: group 1, disable PPIs and SGIs, deactivate, priorities, then enable
    // SGIs (ipi setup) and the timer PPI 27 (arch timer driver).
    write32(distributor, sgi_base(vcpu, 0x080), !0);
    write32(distributor, sgi_base(vcpu, 0x180), !0);
    write32(distributor, sgi_base(vcpu, 0x380), !0);
    for intid in (0..32).step_by(4) {
        write32(distributor, sgi_base(vcpu, 0x400 + intid), 0xa0a0_a0a0);
    }
    let effects = write32(distributor, sgi_base(vcpu, 0x100), 0xffff);
    assert_eq!(
        effects.enables,
        Some(EnableChange {
            first_intid: 0,
            vcpu: Some(vcpu),
            enabled: 0xffff,
            disabled: 0
        })
    );
    write32(distributor, sgi_base(vcpu, 0xc04), 0);
    write32(distributor, sgi_base(vcpu, 0x100), 1 << 27);
}

#[test]
fn identification_and_type() {
    let mut distributor = Distributor::new(4, 96);
    let typer = read32(&mut distributor, GICD + 4);
    assert_eq!(typer & 0x1f, 2, "ITLinesNumber: 96 INTIDs");
    assert_eq!((typer >> 19) & 0x1f, 9, "IDbits");
    assert_eq!(typer & (1 << 17), 0, "no LPIs");
    assert_eq!(typer & (1 << 16), 0, "no MBIS");
    assert_eq!((typer >> 5) & 7, 3, "CPUNumber");
    assert_eq!(read32(&mut distributor, GICD + 0xffe8), 0x3b);
    assert_eq!(read32(&mut distributor, GICD + 8), IIDR);
    assert_eq!(read32(&mut distributor, GICD), CTLR_ARE | CTLR_DS);
    assert_eq!(read32(&mut distributor, gicr(2, 0xffe8)), 0x3b);
    assert_eq!(read32(&mut distributor, gicr(3, 4)), IIDR);
    // Last only on the last frame; 32-bit halves of GICR_TYPER.
    assert_eq!(
        distributor.read(gicr(3, 8), 8),
        Some(3 << 32 | 3 << 8 | 1 << 4)
    );
    assert_eq!(distributor.read(gicr(2, 8), 8), Some(2 << 32 | 2 << 8));
    assert_eq!(distributor.read(gicr(2, 0xc), 4), Some(2));
    assert_eq!(distributor.read(gicr(2, 8), 4), Some(2 << 8));
    // Beyond the redistributors of the cell: nothing.
    assert!(!distributor.contains(gicr(4, 0)));
    assert!(distributor.contains(gicr(3, 0x1_ffff)));
    assert!(distributor.contains(GICD + 0xffff));
    assert_eq!(distributor.read(gicr(4, 0xffe8), 4), None);
    assert_eq!(Distributor::new(1, 1000).interrupt_lines(), MAX_INTERRUPTS);
    assert_eq!(Distributor::new(1, 33).interrupt_lines(), 64);
    assert_eq!(Distributor::new(0, 0).interrupt_lines(), 32);
}

#[test]
fn linux_boot_then_timer_and_device_interrupts() {
    let mut distributor = Distributor::new(2, 64);
    // A device raises SPI 33 before the guest configured anything: it waits.
    assert_eq!(distributor.set_pending(33, 0), Ok(None));
    linux_boot(&mut distributor);
    assert_eq!(
        read32(&mut distributor, GICD + 0x204),
        1 << 1,
        "SPI 33 still waits"
    );
    // The timer PPI is deliverable on each vCPU; a PPI not enabled is not.
    assert_eq!(distributor.deliverable(27, 0), Some(0xa0));
    assert_eq!(distributor.deliverable(27, 1), Some(0xa0));
    assert_eq!(distributor.deliverable(26, 1), None);
    assert_eq!(
        distributor.set_pending(27, 1),
        Ok(Some(Delivery {
            vcpu: 1,
            intid: 27,
            priority: 0xa0
        }))
    );
    // The guest routes SPI 33 to vCPU 1, gives it priority 0x80 with a byte write, and
    // enables it: the waiting interrupt is delivered there.
    distributor.write(GICD + 0x6000 + 33 * 8, 8, virtual_mpidr(1));
    assert_eq!(distributor.write(GICD + 0x400 + 33, 1, 0x80).deliver, 0);
    let effects = write32(&mut distributor, GICD + 0x104, 1 << 1);
    assert_eq!(effects.deliver, 0b10);
    assert_eq!(
        effects.enables,
        Some(EnableChange {
            first_intid: 32,
            vcpu: None,
            enabled: 1 << 1,
            disabled: 0
        })
    );
    assert_eq!(distributor.take_deliverable(0), None);
    assert_eq!(
        distributor.take_deliverable(1),
        Some(Delivery {
            vcpu: 1,
            intid: 33,
            priority: 0x80
        })
    );
    assert_eq!(distributor.take_deliverable(1), None);
    assert_eq!(read32(&mut distributor, GICD + 0x204), 0);
    assert_eq!(distributor.read(GICD + 0x420, 4), Some(0xa0a0_80a0));
    // Disable: the SPI no longer reaches anyone.
    let effects = write32(&mut distributor, GICD + 0x184, 1 << 1);
    assert_eq!(effects.enables.map(|change| change.disabled), Some(1 << 1));
    assert_eq!(distributor.deliverable(33, 1), None);
}

#[test]
fn interrupts_wait_for_the_distributor_enable() {
    let mut distributor = Distributor::new(1, 64);
    write32(&mut distributor, sgi_base(0, 0x080), !0);
    write32(&mut distributor, sgi_base(0, 0x100), 1 << 27);
    assert_eq!(distributor.set_pending(27, 0), Ok(None));
    // Group 1 disabled in GICD_CTLR: kept.
    assert_eq!(distributor.take_deliverable(0), None);
    let effects = write32(&mut distributor, GICD, CTLR_ENABLE_GROUP_1);
    assert_eq!(effects.deliver, 1);
    assert_eq!(
        distributor
            .take_deliverable(0)
            .map(|delivery| delivery.intid),
        Some(27)
    );
    // Group 0 interrupts are never delivered.
    write32(&mut distributor, sgi_base(0, 0x080), 0);
    assert_eq!(distributor.set_pending(27, 0), Ok(None));
    assert_eq!(distributor.take_deliverable(0), None);
    distributor.clear_pending(27, 0);
    assert_eq!(read32(&mut distributor, sgi_base(0, 0x200)), 0);
}

#[test]
fn guest_writes_of_pending_bits() {
    let mut distributor = Distributor::new(2, 64);
    linux_boot(&mut distributor);
    write32(&mut distributor, GICD + 0x104, 1 << 8);
    // The guest makes SPI 40 pending itself (irq_set_irqchip_state).
    let effects = write32(&mut distributor, GICD + 0x204, 1 << 8);
    assert_eq!(effects.deliver, 1);
    // Clearing it before the kernel takes it withdraws it.
    write32(&mut distributor, GICD + 0x284, 1 << 8);
    assert_eq!(distributor.take_deliverable(0), None);
    // Active bits are stored.
    write32(&mut distributor, GICD + 0x304, 1 << 3);
    assert_eq!(read32(&mut distributor, GICD + 0x384), 1 << 3);
    write32(&mut distributor, GICD + 0x384, !0);
    assert_eq!(read32(&mut distributor, GICD + 0x304), 0);
}

#[test]
fn configuration_bits() {
    let mut distributor = Distributor::new(1, 64);
    write32(&mut distributor, GICD + 0xc08, !0);
    assert_eq!(read32(&mut distributor, GICD + 0xc08), 0xaaaa_aaaa);
    // SGIs are edge-triggered and fixed; PPI configuration is stored.
    write32(&mut distributor, sgi_base(0, 0xc00), 0);
    assert_eq!(read32(&mut distributor, sgi_base(0, 0xc00)), 0xaaaa_aaaa);
    write32(&mut distributor, sgi_base(0, 0xc04), 0x0080_0003);
    assert_eq!(read32(&mut distributor, sgi_base(0, 0xc04)), 0x0080_0002);
}

#[test]
fn software_generated_interrupts() {
    let mut distributor = Distributor::new(4, 32);
    linux_boot(&mut distributor);
    // Target list {1, 3}, INTID 5.
    let sgi = Sgi {
        intid: 5,
        targets: 0b1010,
    };
    assert_eq!(distributor.send_sgi(0, 5 << 24 | 0b1010), sgi);
    for vcpu in 0..4 {
        assert_eq!(distributor.take_deliverable(vcpu), None);
    }
    // IRM: everyone but the sender.
    assert_eq!(distributor.send_sgi(2, 1 << 40 | 3 << 24).targets, 0b1011);
    assert_eq!(distributor.send_sgi(2, 1 << 40 | 3 << 24).intid, 3);
    // Target list bits beyond the cell, other clusters or range selectors reach nobody.
    assert_eq!(distributor.send_sgi(0, 0xffff).targets, 0b1111);
    assert_eq!(distributor.send_sgi(0, 1 << 16 | 1).targets, 0);
    assert_eq!(distributor.send_sgi(0, 1 << 32 | 1).targets, 0);
    assert_eq!(distributor.send_sgi(0, 1 << 48 | 1).targets, 0);
    assert_eq!(distributor.send_sgi(0, 1 << 44 | 1).targets, 0);
    assert_eq!(distributor.send_sgi(9, u64::MAX).targets, 0b1111);
    // SGI 5 disabled on vCPU 2: it waits there, and is delivered to the others.
    write32(&mut distributor, sgi_base(2, 0x180), 1 << 5);
    assert_eq!(distributor.send_sgi(1, 1 << 40 | 5 << 24).targets, 0b1001);
    assert_eq!(distributor.take_deliverable(2), None);
    let effects = write32(&mut distributor, sgi_base(2, 0x100), 1 << 5);
    assert_eq!(effects.deliver, 0b0100);
    assert_eq!(
        distributor
            .take_deliverable(2)
            .map(|delivery| delivery.intid),
        Some(5)
    );
}

#[test]
fn routing_to_no_vcpu_and_by_halves() {
    let mut distributor = Distributor::new(2, 64);
    linux_boot(&mut distributor);
    write32(&mut distributor, GICD + 0x104, 1);
    // Aff1 = 1: no such vCPU; the interrupt waits.
    let effects = distributor.write(GICD + 0x6000 + 32 * 8, 8, 0x100);
    assert_eq!(
        effects.route,
        Some(RouteChange {
            intid: 32,
            vcpu: None
        })
    );
    assert_eq!(distributor.set_pending(32, 0), Ok(None));
    assert_eq!(distributor.take_deliverable(0), None);
    // Route it back with two 32-bit writes (upper half first, then lower).
    distributor.write(GICD + 0x6000 + 32 * 8 + 4, 4, 0);
    let effects = distributor.write(GICD + 0x6000 + 32 * 8, 4, 1);
    assert_eq!(effects.deliver, 0b10);
    assert_eq!(distributor.route_target(32), Some(1));
    // IRM is RAZ/WI.
    distributor.write(GICD + 0x6000 + 32 * 8, 8, 1 << 31 | 1);
    assert_eq!(distributor.read(GICD + 0x6000 + 32 * 8, 8), Some(1));
    // IROUTER of private INTIDs and beyond the lines: RAZ/WI.
    assert_eq!(distributor.write(GICD + 0x6000, 8, 1).route, None);
    assert_eq!(distributor.read(GICD + 0x6000 + 100 * 8, 8), Some(0));
    assert!(distributor.write(GICD + 0x6002, 4, 1).unhandled);
}

#[test]
fn unknown_and_malformed_accesses_are_reported_not_fatal() {
    let mut distributor = Distributor::new(2, 256);
    let before = distributor.clone();
    for (ipa, size) in [
        (GICD + 0x0f00, 4),             // GICD_SGIR: not with ARE
        (GICD + 0x0d00, 4),             // IGRPMODR
        (GICD + 0x0101, 4),             // misaligned
        (GICD + 0x0100, 2),             // wrong size
        (GICD + 0x0401, 2),             // misaligned priority halfword
        (GICD, 8),                      // CTLR as a doubleword
        (gicr(0, 0x70), 8),             // PROPBASER: no LPIs
        (gicr(1, SGI_BASE + 0x104), 4), // a second private word
        (gicr(2, 0), 4),                // no third vCPU
        (0, 4),
        (u64::MAX, 8),
    ] {
        assert_eq!(distributor.read(ipa, size), None, "read {ipa:#x}");
        assert!(
            distributor.write(ipa, size, u64::MAX).unhandled,
            "write {ipa:#x}"
        );
    }
    assert_eq!(distributor, before);
    // Private words in the distributor and SPI words beyond the lines are RAZ/WI, handled.
    let mut small = Distributor::new(1, 64);
    assert!(!small.write(GICD + 0x100, 4, !0).unhandled);
    assert!(!small.write(GICD + 0x108, 4, !0).unhandled);
    assert_eq!(small.read(GICD + 0x108, 4), Some(0));
    assert_eq!(small.read(GICD + 0x100, 4), Some(0));
    assert_eq!(
        small.set_pending(64, 0),
        Err(DistributorError::NoSuchInterrupt)
    );
    assert_eq!(small.set_pending(3, 1), Err(DistributorError::NoSuchVcpu));
    assert_eq!(small.deliverable(2000, 0), None);
    assert_eq!(small.take_deliverable(7), None);
    small.clear_pending(u32::MAX, usize::MAX);
    small.reset();
    assert_eq!(small, Distributor::new(1, 64));
}

#[test]
fn every_offset_and_size_is_safe() {
    let mut distributor = Distributor::new(8, 256);
    for offset in (0..DISTRIBUTOR_SIZE).step_by(2) {
        for size in [1, 2, 4, 8] {
            distributor.read(GICD + offset, size);
            distributor.write(GICD + offset, size, 0xa5a5_a5a5_a5a5_a5a5);
        }
    }
    for offset in (0..8 * REDISTRIBUTOR_FRAME_SIZE).step_by(6) {
        for size in [1, 4, 8, 3] {
            distributor.read(REDISTRIBUTOR_BASE + offset, size);
            distributor.write(REDISTRIBUTOR_BASE + offset, size, u64::MAX);
        }
    }
    for vcpu in 0..9 {
        while distributor.take_deliverable(vcpu).is_some() {}
    }
}
