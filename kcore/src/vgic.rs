//! Per-vCPU virtual interrupt state behind the GICv3 list registers (`ICH_LR<n>_EL2`).
//!
//! The kernel owns one [`VirtualInterrupts`] per vCPU. It [`raise`](VirtualInterrupts::raise)s
//! virtual interrupts for the vCPU at any time, [`load`](VirtualInterrupts::load)s them into
//! the list registers just before entering the vCPU and hands the list registers back to
//! [`save`](VirtualInterrupts::save) after the vCPU exits. The hardware (the guest
//! acknowledging, ending and deactivating interrupts) changes only the state bits of a list
//! register; everything else comes from this module's own copy.
//!
//! Where an interrupt lives:
//! - *software pending*: raised, not yet in a list register. One bit per vINTID, with the
//!   priority and linked physical INTID of the latest raise. Raising is therefore idempotent
//!   (level semantics) and never fails for a valid vINTID: no interrupt is ever dropped for
//!   lack of room. This costs about 3 KiB per vCPU.
//! - *resident*: in a list register. After [`save`](VirtualInterrupts::save) only active and
//!   pending-and-active interrupts stay resident, each in the list register it occupied
//!   (the guest is handling them); pending ones return to software so that the next
//!   [`load`](VirtualInterrupts::load) picks by priority again.
//!
//! Invariants, checked by a randomized test:
//! - a vINTID is in at most one list register, and never both in a list register and pending
//!   in software after a load (the GIC's behaviour is UNPREDICTABLE for duplicates);
//! - a raise is never lost: it ends in a list register the guest sees pending, or is merged
//!   with a delivery the guest has not yet acknowledged;
//! - a raise made while the vCPU is not running is never delivered twice. A raise made while
//!   the vCPU runs (from another core) cannot know whether the guest acknowledged the
//!   interrupt meanwhile; if the guest did, the interrupt is delivered again rather than lost;
//! - `load` fills free list registers with the highest-priority (lowest value) pending
//!   interrupts, lower vINTID first among equals, and never evicts an active interrupt.
//!
//! A hardware-linked interrupt (HW = 1) is never made pending-and-active: its pending state
//! is kept by the physical distributor while it is active, so a raise of it while it is
//! active in a list register is merged.

use crate::set_bits;
#[cfg(test)]
use core::fmt;

/// Most list registers the kernel uses. A GICv3 CPU interface implements up to 16
/// (`ICH_VTR_EL2.ListRegs` + 1); the Cortex-A cores' own interfaces, and QEMU's, have 4.
/// Using at most 8 keeps every scan over them short; interrupts beyond what fits wait in
/// software and come in through the underflow maintenance interrupt.
pub const MAX_LIST_REGISTERS: usize = 8;

/// First vINTID that is refused: SGIs are 0–15, PPIs 16–31, SPIs 32–1019; 1020–1023 are
/// special INTIDs and LPIs are not virtualised.
pub const MAX_VIRTUAL_INTID: u32 = 1020;

/// Lowest physical INTID a virtual interrupt may be linked to: SGIs belong to the kernel.
pub const MIN_PHYSICAL_INTID: u32 = 16;

const INTERRUPTS: usize = MAX_VIRTUAL_INTID as usize;
const PENDING_WORDS: usize = INTERRUPTS.div_ceil(64);
const _: () = assert!(PENDING_WORDS <= 16, "`pending_words` has a bit per word");
/// `physical` table entry of an interrupt without a linked physical INTID (0 is an SGI,
/// which is never linked).
const NO_PHYSICAL: u16 = 0;

const VINTID_MASK: u64 = 0xffff_ffff;
const PHYSICAL_SHIFT: u32 = 32;
/// pINTID is bits `[44:32]`; only values below 1020, which fit in `[41:32]`, are ever written.
const PHYSICAL_MASK: u64 = 0x1fff;
const PRIORITY_SHIFT: u32 = 48;
const GROUP_1: u64 = 1 << 60;
const HARDWARE: u64 = 1 << 61;
const STATE_SHIFT: u32 = 62;
const STATE_MASK: u64 = 0b11;

/// The state field of a list register, bits `[63:62]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum LrState {
    /// The list register holds nothing.
    Invalid = 0b00,
    /// Waiting for the guest to acknowledge it.
    Pending = 0b01,
    /// Acknowledged, not yet deactivated.
    Active = 0b10,
    /// Active, and pending again.
    PendingActive = 0b11,
}

impl LrState {
    const fn bits(self) -> u64 {
        self as u64
    }

    const fn from_bits(bits: u64) -> Self {
        match bits & STATE_MASK {
            0b00 => Self::Invalid,
            0b01 => Self::Pending,
            0b10 => Self::Active,
            _ => Self::PendingActive,
        }
    }

    /// Whether the guest has acknowledged the interrupt and not yet deactivated it.
    #[cfg(test)]
    pub const fn is_active(self) -> bool {
        matches!(self, Self::Active | Self::PendingActive)
    }

    /// Whether the guest may acknowledge the interrupt (again).
    pub const fn is_pending(self) -> bool {
        matches!(self, Self::Pending | Self::PendingActive)
    }
}

/// The value of one `ICH_LR<n>_EL2`: vINTID `[31:0]`, pINTID `[44:32]` (when HW = 1),
/// priority `[55:48]`, group `[60]`, HW `[61]`, state `[63:62]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListRegister(pub u64);

impl ListRegister {
    /// A list register holding nothing.
    pub const EMPTY: Self = ListRegister(0);

    /// A pending group 1 interrupt; `physical` links it to a physical INTID (HW = 1) whose
    /// deactivation the guest's deactivation performs. Values are masked to their fields;
    /// [`VirtualInterrupts`] only builds list registers from checked values.
    pub const fn pending(vintid: u32, priority: u8, physical: Option<u32>) -> Self {
        let mut value = (vintid as u64 & VINTID_MASK)
            | ((priority as u64) << PRIORITY_SHIFT)
            | GROUP_1
            | (LrState::Pending.bits() << STATE_SHIFT);
        if let Some(physical) = physical {
            value |= HARDWARE | ((physical as u64 & PHYSICAL_MASK) << PHYSICAL_SHIFT);
        }
        ListRegister(value)
    }

    /// The virtual INTID the guest sees.
    pub const fn vintid(&self) -> u32 {
        (self.0 & VINTID_MASK) as u32
    }

    /// The state field.
    pub const fn state(&self) -> LrState {
        LrState::from_bits(self.0 >> STATE_SHIFT)
    }

    /// The priority field (lower is more urgent).
    pub const fn priority(&self) -> u8 {
        (self.0 >> PRIORITY_SHIFT) as u8
    }

    /// The linked physical INTID, if HW = 1.
    pub const fn physical(&self) -> Option<u32> {
        if self.0 & HARDWARE == 0 {
            None
        } else {
            Some(((self.0 >> PHYSICAL_SHIFT) & PHYSICAL_MASK) as u32)
        }
    }

    /// The same list register with its state field replaced.
    pub const fn with_state(self, state: LrState) -> Self {
        ListRegister((self.0 & !(STATE_MASK << STATE_SHIFT)) | (state.bits() << STATE_SHIFT))
    }

    /// Whether the state is not [`LrState::Invalid`].
    pub const fn is_valid(&self) -> bool {
        !matches!(self.state(), LrState::Invalid)
    }
}

/// Why [`VirtualInterrupts::raise`] refused an interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VgicError {
    /// The vINTID is [`MAX_VIRTUAL_INTID`] or above.
    InvalidVirtualIntid,
    /// The linked physical INTID is an SGI or [`MAX_VIRTUAL_INTID`] or above.
    InvalidPhysicalIntid,
}

// The kernel returns these as hypercall codes and never renders them: the text is
// for the tests.
#[cfg(test)]
impl fmt::Display for VgicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::InvalidVirtualIntid => "the virtual INTID is not an SGI, PPI or SPI",
            Self::InvalidPhysicalIntid => "the linked physical INTID is not a PPI or SPI",
        };
        f.write_str(text)
    }
}

/// What [`VirtualInterrupts::load`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadOutcome {
    /// One past the highest list register now valid (0 if none); every list register from
    /// `used` on is [`ListRegister::EMPTY`].
    pub used: usize,
    /// Some pending interrupts did not fit: the kernel enables the underflow maintenance
    /// interrupt (`ICH_HCR_EL2.UIE`) so that it can load them once the guest frees list
    /// registers.
    pub overflow: bool,
}

/// What [`VirtualInterrupts::raise_direct`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectRaise {
    /// The interrupt is already pending in its list register: nothing to write.
    Merged,
    /// The caller must write this value into list register `index`.
    Write {
        /// Which list register.
        index: usize,
        /// Its new value.
        value: ListRegister,
    },
    /// No quick way: the caller takes the list registers back, raises, and loads them.
    Unavailable,
}

/// One vCPU's virtual interrupts. See the module documentation for its rules.
pub struct VirtualInterrupts {
    /// Software pending interrupts, one bit per vINTID.
    pending: [u64; PENDING_WORDS],
    /// Bit `w` set when `pending[w]` is not zero: the scans for pending interrupts look at
    /// those words only (usually none or one).
    pending_words: u16,
    /// Priority of the latest raise of each vINTID.
    priority: [u8; INTERRUPTS],
    /// Linked physical INTID of the latest raise of each vINTID, or [`NO_PHYSICAL`].
    physical: [u16; INTERRUPTS],
    /// What each list register holds, as this module last wrote or read it (while loaded,
    /// the guest may have finished with some: the next [`save`](Self::save) reads that).
    resident: [ListRegister; MAX_LIST_REGISTERS],
    /// While loaded (from a [`load`](Self::load) that stranded nothing to the next
    /// [`save`](Self::save)): how many list registers the load was given.
    loaded: Option<u8>,
}

impl Default for VirtualInterrupts {
    fn default() -> Self {
        Self::new()
    }
}

impl VirtualInterrupts {
    /// No interrupt pending, every list register empty.
    pub const fn new() -> Self {
        VirtualInterrupts {
            pending: [0; PENDING_WORDS],
            pending_words: 0,
            priority: [0; INTERRUPTS],
            physical: [NO_PHYSICAL; INTERRUPTS],
            resident: [ListRegister::EMPTY; MAX_LIST_REGISTERS],
            loaded: None,
        }
    }

    /// Marks `vintid` pending with `priority` (lower is more urgent), linked to the
    /// physical INTID `physical` if given. Raising an interrupt that is already pending (in
    /// software or in a list register) merges with it; the latest priority and link apply
    /// to a delivery not yet loaded. May be called while the list registers are loaded (the
    /// vCPU runs on another core); the module documentation says how that merges.
    pub fn raise(
        &mut self,
        vintid: u32,
        priority: u8,
        physical: Option<u32>,
    ) -> Result<(), VgicError> {
        let physical = Self::checked(vintid, physical)?;
        self.mark_pending(vintid, priority, physical);
        Ok(())
    }

    /// Checks a raise's INTIDs; returns the linked physical INTID's table entry.
    fn checked(vintid: u32, physical: Option<u32>) -> Result<u16, VgicError> {
        if vintid >= MAX_VIRTUAL_INTID {
            return Err(VgicError::InvalidVirtualIntid);
        }
        match physical {
            None => Ok(NO_PHYSICAL),
            Some(intid) if (MIN_PHYSICAL_INTID..MAX_VIRTUAL_INTID).contains(&intid) => {
                Ok(intid as u16)
            }
            Some(_) => Err(VgicError::InvalidPhysicalIntid),
        }
    }

    /// Raises `vintid` straight into the list registers of the vCPU loaded on this core
    /// while it is not executing (the kernel runs on its core), instead of a
    /// [`save`](Self::save), [`raise`](Self::raise) and [`load`](Self::load) of them all.
    /// `empty` is `ICH_ELRSR_EL2` (bit n: list register n holds nothing) and `read` reads one
    /// live list register. Works while loaded, when nothing waits in software (so everything
    /// raised is resident and order by priority is kept) and either the interrupt is
    /// resident, or a list register is free; otherwise, and for a raise
    /// [`raise`](Self::raise) would refuse, answers [`DirectRaise::Unavailable`].
    pub fn raise_direct(
        &mut self,
        vintid: u32,
        priority: u8,
        physical: Option<u32>,
        empty: u64,
        read: impl FnOnce(usize) -> ListRegister,
    ) -> DirectRaise {
        let Some(count) = self.loaded else {
            return DirectRaise::Unavailable;
        };
        if self.pending_words != 0 || Self::checked(vintid, physical).is_err() {
            return DirectRaise::Unavailable;
        }
        let in_range: u64 = (1 << count) - 1;
        let free = empty & in_range;
        let found = set_bits(!empty & in_range).find_map(|index| {
            let index = index as usize;
            self.resident
                .get(index)
                .filter(|slot| slot.is_valid() && slot.vintid() == vintid)
                .map(|slot| (index, *slot))
        });
        if let Some((index, resident)) = found {
            let live = read(index);
            return match live.state() {
                // Merged, as the general path would, unless the link changes (the general
                // path gives the delivery the latest one).
                LrState::Pending | LrState::PendingActive if resident.physical() == physical => {
                    DirectRaise::Merged
                }
                LrState::Active if resident.physical().is_none() && physical.is_none() => {
                    let value = live.with_state(LrState::PendingActive);
                    self.resident[index] = value;
                    DirectRaise::Write { index, value }
                }
                // A linked interrupt active in the guest, or a change of its link: the
                // general path merges it at the next load.
                _ => DirectRaise::Unavailable,
            };
        }
        if free == 0 {
            return DirectRaise::Unavailable;
        }
        let index = free.trailing_zeros() as usize;
        let value = ListRegister::pending(vintid, priority, physical);
        self.resident[index] = value;
        DirectRaise::Write { index, value }
    }

    /// Whether `vintid` is pending, in software or in a list register.
    pub fn is_pending(&self, vintid: u32) -> bool {
        self.pending_bit(vintid)
            || self
                .resident_slot(vintid)
                .is_some_and(|(_, lr)| lr.state().is_pending())
    }

    /// Whether the guest has something to acknowledge: an interrupt pending in software or
    /// in a list register. Wakes a vCPU waiting in WFI.
    pub fn has_pending(&self) -> bool {
        if self.resident.iter().any(|lr| lr.state().is_pending()) {
            return true;
        }
        // A raise of a hardware-linked interrupt that is active is merged at the next load.
        self.pending_intids().any(|vintid| {
            !matches!(self.resident_slot(vintid), Some((_, lr)) if lr.physical().is_some())
        })
    }

    /// Whether nothing is pending and no list register holds anything: then neither
    /// [`save`](Self::save) nor [`load`](Self::load) has anything to do, and the kernel may
    /// skip touching the list registers at all (the fast path of a vCPU switch).
    pub fn is_quiet(&self) -> bool {
        self.pending_words == 0 && !self.resident.iter().any(ListRegister::is_valid)
    }

    /// The kernel wrote the first `count` list registers empty instead of a
    /// [`load`](Self::load), which is the same while [`is_quiet`](Self::is_quiet).
    pub fn load_quiet(&mut self, count: usize) {
        self.loaded = Some(count.min(MAX_LIST_REGISTERS) as u8);
    }

    /// Takes back the list registers after the vCPU exited (`list_registers[n]` is
    /// `ICH_LR<n>_EL2`, the same registers the last [`load`](Self::load) wrote). Only their
    /// state is read: invalid ones were acknowledged and deactivated by the guest; pending
    /// ones return to software pending; active and pending-and-active ones stay resident.
    pub fn save(&mut self, list_registers: &[ListRegister]) {
        self.loaded = None;
        for (slot, hardware) in self.resident.iter_mut().zip(list_registers) {
            if slot.is_valid() {
                *slot = match hardware.state() {
                    LrState::Invalid => ListRegister::EMPTY,
                    state => slot.with_state(state),
                };
            }
        }
        self.return_pending_to_software();
    }

    /// Fills the list registers before entering the vCPU. Active and pending-and-active
    /// interrupts keep their list register; a pending raise of an active interrupt makes it
    /// pending-and-active (unless hardware-linked); free list registers get the
    /// highest-priority pending interrupts; the rest are written empty. Pass every
    /// implemented list register each time (registers past [`MAX_LIST_REGISTERS`] are
    /// written empty).
    pub fn load(&mut self, list_registers: &mut [ListRegister]) -> LoadOutcome {
        let count = list_registers.len().min(MAX_LIST_REGISTERS);
        // Only after two loads without a save are there pending interrupts in the copy.
        self.return_pending_to_software();
        self.merge_with_resident();
        self.move_into_range(count);
        for index in 0..count {
            if self.resident[index].is_valid() {
                continue;
            }
            match self.take_most_urgent() {
                Some(lr) => self.resident[index] = lr,
                None => break,
            }
        }

        let mut used = 0;
        for (index, register) in list_registers.iter_mut().enumerate() {
            *register = match self.resident.get(index) {
                Some(lr) if index < count => *lr,
                _ => ListRegister::EMPTY,
            };
            if register.is_valid() {
                used = index + 1;
            }
        }
        let stranded = self.resident.iter().skip(count).any(ListRegister::is_valid);
        self.loaded = (!stranded).then_some(count as u8);
        LoadOutcome {
            used,
            overflow: stranded || self.pending_words != 0,
        }
    }

    /// Forgets every interrupt (vCPU reset).
    pub fn clear(&mut self) {
        *self = Self::new();
    }

    fn mark_pending(&mut self, vintid: u32, priority: u8, physical: u16) {
        let index = vintid as usize;
        if let (Some(word), Some(stored_priority), Some(stored_physical)) = (
            self.pending.get_mut(index / 64),
            self.priority.get_mut(index),
            self.physical.get_mut(index),
        ) {
            *word |= 1 << (index % 64);
            *stored_priority = priority;
            *stored_physical = physical;
            self.pending_words |= 1 << (index / 64);
        }
    }

    fn pending_bit(&self, vintid: u32) -> bool {
        let index = vintid as usize;
        self.pending
            .get(index / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    fn clear_pending_bit(&mut self, vintid: u32) {
        let index = vintid as usize;
        if let Some(word) = self.pending.get_mut(index / 64) {
            *word &= !(1 << (index % 64));
            if *word == 0 {
                self.pending_words &= !(1 << (index / 64));
            }
        }
    }

    /// Software pending vINTIDs in increasing order.
    fn pending_intids(&self) -> impl Iterator<Item = u32> + '_ {
        set_bits(self.pending_words.into()).flat_map(|word| {
            let bits = self.pending.get(word as usize).copied().unwrap_or(0);
            set_bits(bits).map(move |bit| word * 64 + bit)
        })
    }

    fn resident_slot(&self, vintid: u32) -> Option<(usize, ListRegister)> {
        self.resident
            .iter()
            .enumerate()
            .find(|(_, lr)| lr.is_valid() && lr.vintid() == vintid)
            .map(|(index, lr)| (index, *lr))
    }

    /// Moves resident pending interrupts back to software pending; a raise since they were
    /// loaded keeps its priority and link.
    fn return_pending_to_software(&mut self) {
        for index in 0..MAX_LIST_REGISTERS {
            let lr = self.resident[index];
            if lr.state() != LrState::Pending {
                continue;
            }
            if !self.pending_bit(lr.vintid()) {
                let physical = lr.physical().map_or(NO_PHYSICAL, |intid| intid as u16);
                self.mark_pending(lr.vintid(), lr.priority(), physical);
            }
            self.resident[index] = ListRegister::EMPTY;
        }
    }

    /// Merges software pending raises of resident (active) interrupts into their list
    /// register, so that no vINTID is loaded twice.
    fn merge_with_resident(&mut self) {
        for index in 0..MAX_LIST_REGISTERS {
            let lr = self.resident[index];
            if !lr.is_valid() || !self.pending_bit(lr.vintid()) {
                continue;
            }
            self.clear_pending_bit(lr.vintid());
            if lr.state() == LrState::Active && lr.physical().is_none() {
                self.resident[index] = lr.with_state(LrState::PendingActive);
            }
        }
    }

    /// Moves resident interrupts from list registers the kernel no longer passes into free
    /// ones it does; those that do not fit stay where they are.
    fn move_into_range(&mut self, count: usize) {
        for from in count..MAX_LIST_REGISTERS {
            if !self.resident[from].is_valid() {
                continue;
            }
            let free = self
                .resident
                .iter()
                .take(count)
                .position(|lr| !lr.is_valid());
            if let Some(to) = free {
                self.resident[to] = self.resident[from];
                self.resident[from] = ListRegister::EMPTY;
            }
        }
    }

    /// Removes the most urgent software pending interrupt (lowest priority value, then
    /// lowest vINTID) and returns it as a pending list register.
    fn take_most_urgent(&mut self) -> Option<ListRegister> {
        let mut best: Option<(u8, u32)> = None;
        for vintid in self.pending_intids() {
            let priority = self
                .priority
                .get(vintid as usize)
                .copied()
                .unwrap_or(u8::MAX);
            if best.is_none_or(|(best_priority, _)| priority < best_priority) {
                best = Some((priority, vintid));
            }
        }
        let (priority, vintid) = best?;
        self.clear_pending_bit(vintid);
        let physical = self
            .physical
            .get(vintid as usize)
            .copied()
            .filter(|intid| *intid != NO_PHYSICAL)
            .map(u32::from);
        Some(ListRegister::pending(vintid, priority, physical))
    }
}

#[cfg(test)]
mod tests;
