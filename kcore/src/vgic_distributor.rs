//! The emulated GICv3 distributor (GICD) and redistributors (GICR) of one guest cell.
//!
//! This module owns the guest-visible interrupt configuration that the hardware's virtual
//! CPU interface does not hold: which interrupts are enabled, their group, priority,
//! trigger and (for SPIs) routing, plus interrupts that are pending but cannot be delivered
//! yet (disabled, group 0, distributor off, or routed to no vCPU). The kernel traps the
//! guest's accesses to [`DISTRIBUTOR_BASE`] (64 KiB) and [`REDISTRIBUTOR_BASE`]
//! ([`REDISTRIBUTOR_FRAME_SIZE`] per vCPU: an RD_base frame, then an SGI_base frame) and
//! passes them to [`Distributor::read`] and [`Distributor::write`], both taking the IPA.
//!
//! The model is the one KVM presents: a single security state (`GICD_CTLR.DS` = 1), affinity
//! routing always on (`ARE` = 1), no LPIs, no message-based SPIs, no 1-of-N routing. vCPU
//! `n` has affinity `Aff0 = n` ([`crate::psci::virtual_mpidr`]).
//!
//! Delivery: an interrupt is *deliverable* to a vCPU when it is enabled, in group 1,
//! `GICD_CTLR.EnableGrp1` is set and it targets that vCPU (private interrupts: their
//! redistributor's vCPU; SPIs: their `GICD_IROUTER`). A pending deliverable interrupt leaves
//! this model: [`Distributor::set_pending`] hands it back at once, and after a write that
//! makes stored pending interrupts deliverable, [`Effects::deliver`] names the vCPUs whose
//! interrupts the kernel takes with [`Distributor::take_deliverable`] and raises in their
//! [`crate::vgic::VirtualInterrupts`]. From then on the list registers and the guest's CPU
//! interface own its pending and active state, so `GICD_ISPENDR` shows only interrupts still
//! waiting here, and `GICD_ISACTIVER` only what the guest wrote to it. Disabling an
//! interrupt already handed over does not withdraw it (the guest may see it once more).
//!
//! Invariants: no access (any address, size or value) panics; an unknown or misaligned
//! register reads as zero, ignores writes and is reported as [`Effects::unhandled`] (reads:
//! [`Distributor::read`] returns `None`); state for INTIDs at or above the configured
//! number of interrupt lines and for vCPUs outside the cell is never touched.

use crate::psci::{vcpu_of_mpidr, MAX_VCPUS};
use crate::set_bits;
#[cfg(test)]
use core::fmt;

/// IPA of the distributor.
pub const DISTRIBUTOR_BASE: u64 = 0x0800_0000;
/// Size of the distributor's register window.
pub const DISTRIBUTOR_SIZE: u64 = 0x1_0000;
/// IPA of vCPU 0's redistributor; vCPU `n`'s follows at `n * REDISTRIBUTOR_FRAME_SIZE`.
pub const REDISTRIBUTOR_BASE: u64 = 0x080a_0000;
/// Size of one vCPU's redistributor: RD_base and SGI_base, 64 KiB each.
pub const REDISTRIBUTOR_FRAME_SIZE: u64 = 0x2_0000;
/// Offset of the SGI_base frame in a redistributor.
const SGI_BASE: u64 = 0x1_0000;

/// Most INTIDs the model supports: SGIs, PPIs and SPIs 32–255.
pub const MAX_INTERRUPTS: u32 = 256;
const SHARED_BANKS: usize = (MAX_INTERRUPTS / 32 - 1) as usize;
const SHARED_INTERRUPTS: usize = (MAX_INTERRUPTS - 32) as usize;

/// `GICD_CTLR.EnableGrp0`.
pub const CTLR_ENABLE_GROUP_0: u32 = 1 << 0;
/// `GICD_CTLR.EnableGrp1` (`EnableGrp1NS` in the guest's single security state).
pub const CTLR_ENABLE_GROUP_1: u32 = 1 << 1;
/// `GICD_CTLR.ARE`: affinity routing, always on.
pub const CTLR_ARE: u32 = 1 << 4;
/// `GICD_CTLR.DS`: single security state, always on.
pub const CTLR_DS: u32 = 1 << 6;

/// `GICR_WAKER.ProcessorSleep`.
pub const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
/// `GICR_WAKER.ChildrenAsleep`.
pub const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// Implementer Arm (JEP106 0x43b), as `GICD_IIDR` and `GICR_IIDR` read.
pub const IIDR: u32 = 0x0000_043b;
/// `GICD_PIDR2`/`GICR_PIDR2`: architecture revision 3 in bits `[7:4]`, JEDEC-assigned.
pub const PIDR2: u32 = 0x3b;
const PIDR2_OFFSET: u64 = 0xffe8;
const IDENTIFICATION_START: u64 = 0xffd0;

/// Trigger configuration bits that may be set: bit 1 of each 2-bit field (edge).
const CONFIG_MASK: u32 = 0xaaaa_aaaa;
/// The affinity fields of `GICD_IROUTER` (IRM is RAZ/WI: no 1-of-N routing).
const ROUTE_MASK: u64 = 0xff_00ff_ffff;

/// An interrupt handed to the kernel for delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The vCPU to raise it in.
    pub vcpu: usize,
    /// The INTID.
    pub intid: u32,
    /// Its priority (for [`crate::vgic::VirtualInterrupts::raise`]).
    pub priority: u8,
}

/// The guest changed the enable bits of up to 32 interrupts (the kernel mirrors them to
/// physical interrupts it passes through).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnableChange {
    /// INTID of bit 0.
    pub first_intid: u32,
    /// For private interrupts (first INTID 0), the vCPU whose redistributor was written.
    pub vcpu: Option<usize>,
    /// Bits that went from disabled to enabled.
    pub enabled: u32,
    /// Bits that went from enabled to disabled.
    pub disabled: u32,
}

/// The guest routed an SPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteChange {
    /// The SPI.
    pub intid: u32,
    /// The vCPU it now targets, `None` if its affinity names no vCPU of the cell.
    pub vcpu: Option<usize>,
}

/// What the kernel must do after a guest write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Bit `n`: vCPU `n` has pending interrupts that are now deliverable. The kernel calls
    /// [`Distributor::take_deliverable`] for it until `None`, raising each.
    pub deliver: u8,
    /// Enable bits changed.
    pub enables: Option<EnableChange>,
    /// An SPI's routing changed.
    pub route: Option<RouteChange>,
    /// The write hit no register (or a misaligned one, or with a wrong size) and was
    /// ignored; the kernel counts it.
    pub unhandled: bool,
}

impl Effects {
    /// A write that hit no register.
    const UNHANDLED: Effects = Effects {
        deliver: 0,
        enables: None,
        route: None,
        unhandled: true,
    };
}

/// An SGI the guest sent with `ICC_SGI1R_EL1` ([`Distributor::send_sgi`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sgi {
    /// The SGI, 0–15.
    pub intid: u32,
    /// Bit `n`: the SGI is deliverable to vCPU `n` now (it targets `n` and `n` has it
    /// enabled in group 1).
    pub targets: u8,
}

/// Why [`Distributor::set_pending`] refused an interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DistributorError {
    /// The INTID is at or above the configured interrupt lines.
    NoSuchInterrupt,
    /// A private interrupt was raised for a vCPU the cell does not have.
    NoSuchVcpu,
}

// The kernel returns these as hypercall codes and never renders them: the text is
// for the tests.
#[cfg(test)]
impl fmt::Display for DistributorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoSuchInterrupt => "the INTID is beyond the guest distributor's lines",
            Self::NoSuchVcpu => "the vCPU is not part of the cell",
        })
    }
}

/// The state of 32 interrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bank {
    group: u32,
    enabled: u32,
    pending: u32,
    active: u32,
    config: [u32; 2],
    priority: [u8; 32],
}

impl Bank {
    const RESET: Bank = Bank {
        group: 0,
        enabled: 0,
        pending: 0,
        active: 0,
        config: [0; 2],
        priority: [0; 32],
    };

    const fn ready(&self) -> u32 {
        self.pending & self.enabled & self.group
    }
}

/// Which bank a register access selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BankSelector {
    /// The private interrupts of a vCPU.
    Private(usize),
    /// SPIs `32 * (index + 1)` onwards.
    Shared(usize),
}

/// The registers repeated per bank of 32 interrupts, at the same offsets in GICD and in
/// the SGI_base frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BankRegister {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
    /// Byte `0..32` of the bank's priorities.
    Priority(usize),
    /// Configuration word 0 (interrupts 0–15 of the bank) or 1.
    Config(usize),
}

/// Decodes a bank register offset into (register, bank word).
fn decode_bank_register(offset: u64) -> Option<(BankRegister, usize)> {
    let word = |base: u64| ((offset - base) / 4) as usize;
    Some(match offset {
        0x080..=0x0ff => (BankRegister::Group, word(0x080)),
        0x100..=0x17f => (BankRegister::SetEnable, word(0x100)),
        0x180..=0x1ff => (BankRegister::ClearEnable, word(0x180)),
        0x200..=0x27f => (BankRegister::SetPending, word(0x200)),
        0x280..=0x2ff => (BankRegister::ClearPending, word(0x280)),
        0x300..=0x37f => (BankRegister::SetActive, word(0x300)),
        0x380..=0x3ff => (BankRegister::ClearActive, word(0x380)),
        0x400..=0x7ff => {
            let byte = (offset - 0x400) as usize;
            (BankRegister::Priority(byte % 32), byte / 32)
        }
        0xc00..=0xcff => {
            let index = word(0xc00);
            (BankRegister::Config(index % 2), index / 2)
        }
        _ => return None,
    })
}

/// One cell's emulated distributor and redistributors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Distributor {
    control: u32,
    private: [Bank; MAX_VCPUS],
    shared: [Bank; SHARED_BANKS],
    /// `GICD_IROUTER` of SPI `32 + n`, affinity fields only.
    routes: [u64; SHARED_INTERRUPTS],
    /// Bit `n`: vCPU `n`'s redistributor has `ProcessorSleep` set.
    asleep: u8,
    vcpu_count: usize,
    /// INTIDs implemented: a multiple of 32 in `32..=MAX_INTERRUPTS`.
    interrupt_lines: u32,
}

impl Distributor {
    /// A distributor for `vcpu_count` vCPUs (clamped to 1..=[`MAX_VCPUS`]) implementing
    /// INTIDs below `interrupt_lines`, rounded up to a multiple of 32 and clamped to
    /// 32..=[`MAX_INTERRUPTS`]. Everything starts disabled, group 0, priority 0, routed to
    /// vCPU 0, redistributors asleep.
    pub fn new(vcpu_count: usize, interrupt_lines: u32) -> Self {
        let vcpu_count = vcpu_count.clamp(1, MAX_VCPUS);
        // SGIs are edge-triggered, fixed.
        let sgis_edge = Bank {
            config: [CONFIG_MASK, 0],
            ..Bank::RESET
        };
        Distributor {
            control: 0,
            private: [sgis_edge; MAX_VCPUS],
            shared: [Bank::RESET; SHARED_BANKS],
            routes: [0; SHARED_INTERRUPTS],
            asleep: ((1u16 << vcpu_count) - 1) as u8,
            vcpu_count,
            interrupt_lines: interrupt_lines.clamp(32, MAX_INTERRUPTS).div_ceil(32) * 32,
        }
    }

    /// The number of vCPUs.
    #[cfg(test)]
    pub const fn vcpu_count(&self) -> usize {
        self.vcpu_count
    }

    /// INTIDs implemented (a multiple of 32).
    #[cfg(test)]
    pub const fn interrupt_lines(&self) -> u32 {
        self.interrupt_lines
    }

    /// Whether `ipa` lies in the distributor or in one of the cell's redistributors.
    pub fn contains(&self, ipa: u64) -> bool {
        ipa.wrapping_sub(DISTRIBUTOR_BASE) < DISTRIBUTOR_SIZE
            || ipa.wrapping_sub(REDISTRIBUTOR_BASE) < self.redistributor_region_size()
    }

    /// Size of the redistributor region: one frame per vCPU.
    pub fn redistributor_region_size(&self) -> u64 {
        self.vcpu_count as u64 * REDISTRIBUTOR_FRAME_SIZE
    }

    /// Back to the state after [`new`](Self::new).
    #[cfg(test)]
    pub fn reset(&mut self) {
        *self = Self::new(self.vcpu_count, self.interrupt_lines);
    }

    /// A guest read of `size` bytes at `ipa`; `None` if no register is there (the guest
    /// reads 0 and the kernel counts it).
    pub fn read(&mut self, ipa: u64, size: u8) -> Option<u64> {
        let offset = ipa.wrapping_sub(DISTRIBUTOR_BASE);
        if offset < DISTRIBUTOR_SIZE {
            return self.read_distributor(offset, size);
        }
        let offset = ipa.wrapping_sub(REDISTRIBUTOR_BASE);
        if offset < self.redistributor_region_size() {
            let vcpu = (offset / REDISTRIBUTOR_FRAME_SIZE) as usize;
            return self.read_redistributor(vcpu, offset % REDISTRIBUTOR_FRAME_SIZE, size);
        }
        None
    }

    /// A guest write of `value` (`size` bytes) at `ipa`.
    pub fn write(&mut self, ipa: u64, size: u8, value: u64) -> Effects {
        let offset = ipa.wrapping_sub(DISTRIBUTOR_BASE);
        let redistributor_offset = ipa.wrapping_sub(REDISTRIBUTOR_BASE);
        let mut effects = if offset < DISTRIBUTOR_SIZE {
            self.write_distributor(offset, size, value)
        } else if redistributor_offset < self.redistributor_region_size() {
            let vcpu = (redistributor_offset / REDISTRIBUTOR_FRAME_SIZE) as usize;
            let inner = redistributor_offset % REDISTRIBUTOR_FRAME_SIZE;
            self.write_redistributor(vcpu, inner, size, value)
        } else {
            Effects::UNHANDLED
        };
        if !effects.unhandled {
            effects.deliver = self.ready_vcpus();
        }
        effects
    }

    /// The priority of `intid` if it is deliverable to `vcpu` (enabled, group 1, group 1
    /// enabled in `GICD_CTLR`, targeting `vcpu`), whether or not it is pending.
    pub fn deliverable(&self, intid: u32, vcpu: usize) -> Option<u8> {
        if self.control & CTLR_ENABLE_GROUP_1 == 0 || vcpu >= self.vcpu_count {
            return None;
        }
        if intid >= 32 && self.route_target(intid) != Some(vcpu) {
            return None;
        }
        let bank = self.bank(Self::selector(intid, vcpu))?;
        let bit = 1u32 << (intid % 32);
        (bank.enabled & bank.group & bit != 0).then(|| bank.priority[(intid % 32) as usize])
    }

    /// The vCPU an SPI is routed to (`None` for private INTIDs, INTIDs beyond the lines, or
    /// an affinity naming no vCPU).
    // Out of line: one copy for its five callers.
    #[inline(never)]
    pub fn route_target(&self, intid: u32) -> Option<usize> {
        let route = self.routes.get(self.route_index(intid)?)?;
        vcpu_of_mpidr(*route, self.vcpu_count)
    }

    /// The index in `routes` of `intid`, if it is an implemented SPI.
    fn route_index(&self, intid: u32) -> Option<usize> {
        (32..self.interrupt_lines)
            .contains(&intid)
            .then(|| (intid - 32) as usize)
    }

    /// A device (or an SGI sender) makes `intid` pending; `vcpu` selects whose private
    /// interrupt it is (ignored for SPIs, which follow their routing). Returns the delivery
    /// if it is deliverable now; otherwise it is kept pending here until a guest write
    /// makes it deliverable.
    pub fn set_pending(
        &mut self,
        intid: u32,
        vcpu: usize,
    ) -> Result<Option<Delivery>, DistributorError> {
        if intid >= self.interrupt_lines {
            return Err(DistributorError::NoSuchInterrupt);
        }
        if intid < 32 && vcpu >= self.vcpu_count {
            return Err(DistributorError::NoSuchVcpu);
        }
        let target = if intid < 32 {
            Some(vcpu)
        } else {
            self.route_target(intid)
        };
        if let Some(target) = target {
            if let Some(priority) = self.deliverable(intid, target) {
                return Ok(Some(Delivery {
                    vcpu: target,
                    intid,
                    priority,
                }));
            }
        }
        if let Some(bank) = self.bank_mut(Self::selector(intid, vcpu)) {
            bank.pending |= 1 << (intid % 32);
        }
        Ok(None)
    }

    /// A level-triggered device lowered `intid`: it no longer waits here. (An interrupt
    /// already handed over stays in the vCPU's list registers.)
    pub fn clear_pending(&mut self, intid: u32, vcpu: usize) {
        if intid < self.interrupt_lines && (intid >= 32 || vcpu < self.vcpu_count) {
            if let Some(bank) = self.bank_mut(Self::selector(intid, vcpu)) {
                bank.pending &= !(1 << (intid % 32));
            }
        }
    }

    /// Takes one pending interrupt deliverable to `vcpu` out of this model (lowest INTID
    /// first), for the kernel to raise.
    pub fn take_deliverable(&mut self, vcpu: usize) -> Option<Delivery> {
        if self.control & CTLR_ENABLE_GROUP_1 == 0 || vcpu >= self.vcpu_count {
            return None;
        }
        let private = self.private.get(vcpu)?.ready();
        let intid = if private != 0 {
            private.trailing_zeros()
        } else {
            self.ready_spis()
                .find(|&intid| self.route_target(intid) == Some(vcpu))?
        };
        let priority = self.deliverable(intid, vcpu)?;
        self.clear_pending(intid, vcpu);
        Some(Delivery {
            vcpu,
            intid,
            priority,
        })
    }

    /// The guest's write of `value` to `ICC_SGI1R_EL1` from vCPU `sender`. The SGI targets
    /// all other vCPUs with IRM = 1; otherwise those in the target list whose Aff3.Aff2.Aff1
    /// and range selector match, which for this cell's vCPUs means all zero. It is made
    /// pending in each (as [`set_pending`](Self::set_pending) would), and the answer names
    /// those it is deliverable to now; the others keep it pending here.
    pub fn send_sgi(&mut self, sender: usize, value: u64) -> Sgi {
        let intid = ((value >> 24) & 0xf) as u32;
        let all = ((1u16 << self.vcpu_count) - 1) as u8;
        let targets = if value & (1 << 40) != 0 {
            let sender_bit = if sender < MAX_VCPUS { 1u8 << sender } else { 0 };
            all & !sender_bit
        } else if value & 0x00ff_00ff_00ff_0000 != 0 || (value >> 44) & 0xf != 0 {
            0
        } else {
            (value & 0xff) as u8 & all
        };
        let (bit, enabled) = (1 << intid, self.control & CTLR_ENABLE_GROUP_1 != 0);
        let mut deliverable = 0;
        for vcpu in set_bits(targets.into()) {
            let Some(bank) = self.private.get_mut(vcpu as usize) else {
                break;
            };
            if enabled && bank.enabled & bank.group & bit != 0 {
                deliverable |= 1 << vcpu;
            } else {
                bank.pending |= bit;
            }
        }
        Sgi {
            intid,
            targets: deliverable,
        }
    }

    fn selector(intid: u32, vcpu: usize) -> BankSelector {
        if intid < 32 {
            BankSelector::Private(vcpu)
        } else {
            BankSelector::Shared((intid / 32 - 1) as usize)
        }
    }

    fn bank(&self, selector: BankSelector) -> Option<&Bank> {
        match selector {
            BankSelector::Private(vcpu) if vcpu < self.vcpu_count => self.private.get(vcpu),
            BankSelector::Shared(index) if (index as u32 + 2) * 32 <= self.interrupt_lines => {
                self.shared.get(index)
            }
            _ => None,
        }
    }

    fn bank_mut(&mut self, selector: BankSelector) -> Option<&mut Bank> {
        match selector {
            BankSelector::Private(vcpu) if vcpu < self.vcpu_count => self.private.get_mut(vcpu),
            BankSelector::Shared(index) if (index as u32 + 2) * 32 <= self.interrupt_lines => {
                self.shared.get_mut(index)
            }
            _ => None,
        }
    }

    /// vCPUs with pending interrupts that are deliverable.
    fn ready_vcpus(&self) -> u8 {
        if self.control & CTLR_ENABLE_GROUP_1 == 0 {
            return 0;
        }
        let mut vcpus = 0u8;
        for (vcpu, bank) in self.private.iter().enumerate().take(self.vcpu_count) {
            if bank.ready() != 0 {
                vcpus |= 1 << vcpu;
            }
        }
        for intid in self.ready_spis() {
            if let Some(vcpu) = self.route_target(intid) {
                vcpus |= 1 << vcpu;
            }
        }
        vcpus
    }

    /// Pending SPIs that are enabled and in group 1 (routed anywhere), lowest first.
    fn ready_spis(&self) -> impl Iterator<Item = u32> + '_ {
        (1..).zip(&self.shared).flat_map(|(index, bank): (u32, _)| {
            set_bits(bank.ready().into()).map(move |bit| 32 * index + bit)
        })
    }

    fn typer(&self) -> u32 {
        let it_lines = self.interrupt_lines / 32 - 1;
        let cpu_number = (self.vcpu_count as u32 - 1) & 0x7;
        // IDbits = 9 (10 INTID bits), No1N (bit 25); no LPIs, no MBIS, no security extension.
        it_lines | (cpu_number << 5) | (9 << 19) | (1 << 25)
    }

    fn read_distributor(&mut self, offset: u64, size: u8) -> Option<u64> {
        match (offset, size) {
            (0x0000, 4) => Some(u64::from(self.control | CTLR_ARE | CTLR_DS)),
            (0x0004, 4) => Some(u64::from(self.typer())),
            (0x0008, 4) => Some(u64::from(IIDR)),
            // TYPER2, STATUSR.
            (0x000c | 0x0010, 4) => Some(0),
            (0x6000..=0x7fff, _) => self.read_route(offset, size),
            (PIDR2_OFFSET, 4) => Some(u64::from(PIDR2)),
            (IDENTIFICATION_START..=0xfffc, 4) if offset.is_multiple_of(4) => Some(0),
            _ => {
                let (register, word) = decode_bank_register(offset)?;
                // Private interrupts live in the redistributors while ARE = 1; INTIDs beyond
                // the lines are not implemented.
                if word == 0 || word as u32 * 32 >= self.interrupt_lines {
                    return Self::bank_access_valid(register, offset, size).then_some(0);
                }
                self.read_bank(BankSelector::Shared(word - 1), register, offset, size)
            }
        }
    }

    fn write_distributor(&mut self, offset: u64, size: u8, value: u64) -> Effects {
        let (handled, unhandled) = (Effects::default(), Effects::UNHANDLED);
        match (offset, size) {
            (0x0000, 4) => {
                self.control = value as u32 & (CTLR_ENABLE_GROUP_0 | CTLR_ENABLE_GROUP_1);
                handled
            }
            // TYPER, IIDR, TYPER2 are read-only; STATUSR has nothing to clear.
            (0x0004 | 0x0008 | 0x000c | 0x0010, 4) => handled,
            (0x6000..=0x7fff, _) => self.write_route(offset, size, value),
            _ => {
                let Some((register, word)) = decode_bank_register(offset) else {
                    return unhandled;
                };
                if !Self::bank_access_valid(register, offset, size) {
                    return unhandled;
                }
                if word == 0 || word as u32 * 32 >= self.interrupt_lines {
                    return handled;
                }
                self.write_bank(
                    BankSelector::Shared(word - 1),
                    32 * word as u32,
                    register,
                    size,
                    value,
                )
            }
        }
    }

    fn read_route(&self, offset: u64, size: u8) -> Option<u64> {
        let relative = offset - 0x6000;
        let intid = (relative / 8) as u32;
        let half = relative % 8;
        let index = self.route_index(intid);
        let route = *index.and_then(|index| self.routes.get(index)).unwrap_or(&0);
        match (size, half) {
            (8, 0) => Some(route),
            (4, 0) => Some(route & 0xffff_ffff),
            (4, 4) => Some(route >> 32),
            _ => None,
        }
    }

    fn write_route(&mut self, offset: u64, size: u8, value: u64) -> Effects {
        let relative = offset - 0x6000;
        let intid = (relative / 8) as u32;
        let half = relative % 8;
        if !matches!((size, half), (8, 0) | (4, 0) | (4, 4)) {
            return Effects::UNHANDLED;
        }
        let index = self.route_index(intid);
        let Some(route) = index.and_then(|index| self.routes.get_mut(index)) else {
            return Effects::default();
        };
        let updated = match (size, half) {
            (4, 0) => (*route & !0xffff_ffff) | (value & 0xffff_ffff),
            (4, 4) => (*route & 0xffff_ffff) | (value << 32),
            _ => value,
        };
        *route = updated & ROUTE_MASK;
        Effects {
            route: Some(RouteChange {
                intid,
                vcpu: self.route_target(intid),
            }),
            ..Effects::default()
        }
    }

    fn redistributor_typer(&self, vcpu: usize) -> u64 {
        let last = u64::from(vcpu + 1 == self.vcpu_count) << 4;
        ((vcpu as u64) << 32) | ((vcpu as u64) << 8) | last
    }

    fn read_redistributor(&mut self, vcpu: usize, offset: u64, size: u8) -> Option<u64> {
        if offset >= SGI_BASE {
            let offset = offset - SGI_BASE;
            let (register, word) = decode_bank_register(offset)?;
            if word != 0 {
                return None;
            }
            return self.read_bank(BankSelector::Private(vcpu), register, offset, size);
        }
        let asleep = self.asleep & (1 << vcpu) != 0;
        match (offset, size) {
            // GICR_CTLR (no LPIs, no pending writes), GICR_STATUSR.
            (0x0000 | 0x0010, 4) => Some(0),
            (0x0004, 4) => Some(u64::from(IIDR)),
            (0x0008, 8) => Some(self.redistributor_typer(vcpu)),
            (0x0008, 4) => Some(self.redistributor_typer(vcpu) & 0xffff_ffff),
            (0x000c, 4) => Some(self.redistributor_typer(vcpu) >> 32),
            (0x0014, 4) if asleep => Some(u64::from(WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP)),
            (0x0014, 4) => Some(0),
            (PIDR2_OFFSET, 4) => Some(u64::from(PIDR2)),
            (IDENTIFICATION_START..=0xfffc, 4) if offset.is_multiple_of(4) => Some(0),
            _ => None,
        }
    }

    fn write_redistributor(&mut self, vcpu: usize, offset: u64, size: u8, value: u64) -> Effects {
        let (handled, unhandled) = (Effects::default(), Effects::UNHANDLED);
        if offset >= SGI_BASE {
            let offset = offset - SGI_BASE;
            return match decode_bank_register(offset) {
                Some((register, 0)) if Self::bank_access_valid(register, offset, size) => {
                    self.write_bank(BankSelector::Private(vcpu), 0, register, size, value)
                }
                _ => unhandled,
            };
        }
        match (offset, size) {
            // GICR_CTLR: EnableLPIs is RES0 without LPIs; STATUSR: nothing to clear;
            // IIDR and TYPER are read-only.
            (0x0000 | 0x0004 | 0x000c | 0x0010, 4) | (0x0008, 4 | 8) => handled,
            (0x0014, 4) => {
                if value as u32 & WAKER_PROCESSOR_SLEEP != 0 {
                    self.asleep |= 1 << vcpu;
                } else {
                    self.asleep &= !(1 << vcpu);
                }
                handled
            }
            _ => unhandled,
        }
    }

    /// Whether `size` suits the bank register: 32-bit aligned words, except priorities,
    /// which allow any naturally aligned access of 1, 2, 4 or 8 bytes.
    // Out of line: the banked-register read and write paths share one copy.
    #[inline(never)]
    fn bank_access_valid(register: BankRegister, offset: u64, size: u8) -> bool {
        match register {
            BankRegister::Priority(_) => {
                matches!(size, 1 | 2 | 4 | 8) && offset.is_multiple_of(u64::from(size))
            }
            _ => size == 4 && offset.is_multiple_of(4),
        }
    }

    fn read_bank(
        &self,
        selector: BankSelector,
        register: BankRegister,
        offset: u64,
        size: u8,
    ) -> Option<u64> {
        if !Self::bank_access_valid(register, offset, size) {
            return None;
        }
        let bank = self.bank(selector)?;
        let value = match register {
            BankRegister::Group => bank.group,
            BankRegister::SetEnable | BankRegister::ClearEnable => bank.enabled,
            BankRegister::SetPending | BankRegister::ClearPending => bank.pending,
            BankRegister::SetActive | BankRegister::ClearActive => bank.active,
            BankRegister::Config(half) => bank.config.get(half).copied().unwrap_or(0),
            BankRegister::Priority(first) => {
                let mut value = 0u64;
                for index in 0..usize::from(size) {
                    let byte = bank.priority.get(first + index).copied().unwrap_or(0);
                    value |= u64::from(byte) << (8 * index);
                }
                return Some(value);
            }
        };
        Some(u64::from(value))
    }

    fn write_bank(
        &mut self,
        selector: BankSelector,
        first_intid: u32,
        register: BankRegister,
        size: u8,
        value: u64,
    ) -> Effects {
        let private_vcpu = match selector {
            BankSelector::Private(vcpu) => Some(vcpu),
            BankSelector::Shared(_) => None,
        };
        let Some(bank) = self.bank_mut(selector) else {
            return Effects::default();
        };
        let bits = value as u32;
        let before = bank.enabled;
        match register {
            BankRegister::Group => bank.group = bits,
            BankRegister::SetEnable => bank.enabled |= bits,
            BankRegister::ClearEnable => bank.enabled &= !bits,
            BankRegister::SetPending => bank.pending |= bits,
            BankRegister::ClearPending => bank.pending &= !bits,
            BankRegister::SetActive => bank.active |= bits,
            BankRegister::ClearActive => bank.active &= !bits,
            BankRegister::Config(half) => {
                // SGIs' configuration is fixed.
                if private_vcpu.is_none() || half == 1 {
                    if let Some(config) = bank.config.get_mut(half) {
                        *config = bits & CONFIG_MASK;
                    }
                }
            }
            BankRegister::Priority(first) => {
                for index in 0..usize::from(size) {
                    if let Some(priority) = bank.priority.get_mut(first + index) {
                        *priority = (value >> (8 * index)) as u8;
                    }
                }
            }
        }
        let after = bank.enabled;
        Effects {
            enables: (before != after).then_some(EnableChange {
                first_intid,
                vcpu: private_vcpu,
                enabled: after & !before,
                disabled: before & !after,
            }),
            ..Effects::default()
        }
    }
}

#[cfg(test)]
mod tests;
