//! GICv3: the distributor (shared), each core's redistributor, and the CPU interface
//! through system registers.
//!
//! The kernel takes every physical interrupt at EL2 (HCR_EL2.IMO) as group 1 with EOI mode
//! 1: `end_of_interrupt` only drops the running priority, and deactivation is separate. The
//! kernel deactivates its own interrupts at once; an interrupt it forwards to a cell through
//! a hardware-linked list register stays active until the cell's virtual EOI deactivates it,
//! so a level-triggered device cannot storm the core meanwhile. Shared peripheral
//! interrupts stay disabled unless the plan gives them to a cell; an interrupt nobody owns
//! is counted and disabled by the caller.

use super::mmio::DeviceWindow;
use super::sysreg;

const GICD_CTLR: usize = 0x0000;
const GICD_TYPER: usize = 0x0004;
const GICD_IGROUPR: usize = 0x0080;
const GICD_ISENABLER: usize = 0x0100;
const GICD_ICENABLER: usize = 0x0180;
const GICD_IROUTER: usize = 0x6000;
const GICD_ICPENDR: usize = 0x0280;
const GICD_IPRIORITYR: usize = 0x0400;
const GICD_CTLR_RWP: u32 = 1 << 31;
const GICD_CTLR_ENABLE_GROUPS_AND_AFFINITY_ROUTING: u32 = (1 << 4) | (1 << 1) | (1 << 0);

const GICR_TYPER: usize = 0x0008;
const GICR_WAKER: usize = 0x0014;
const GICR_FRAME: usize = 0x2_0000;
const GICR_SGI_BASE: usize = 0x1_0000;
const GICR_IGROUPR0: usize = GICR_SGI_BASE + 0x0080;
const GICR_ISENABLER0: usize = GICR_SGI_BASE + 0x0100;
const GICR_ICENABLER0: usize = GICR_SGI_BASE + 0x0180;
const GICR_IPRIORITYR: usize = GICR_SGI_BASE + 0x0400;
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
const GICR_TYPER_LAST: u64 = 1 << 4;
const GICR_TYPER_VLPIS: u64 = 1 << 1;

/// ICC_CTLR_EL1.EOImode: EOI drops priority only; deactivation is a separate write.
const ICC_CTLR_EOI_MODE_DROP_ONLY: u64 = 1 << 1;

/// Priority of every interrupt the kernel enables.
const DEFAULT_PRIORITY: u32 = 0xa0;
/// The interrupt ID the CPU interface returns when nothing is pending.
pub const SPURIOUS: u32 = 1023;

/// Errors bringing up the GIC.
#[derive(Clone, Copy, Debug)]
pub enum GicError {
    /// No redistributor frame has this core's affinity.
    NoRedistributor {
        /// The core's MPIDR.
        mpidr: u64,
    },
}

impl core::fmt::Display for GicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoRedistributor { mpidr } => {
                write!(f, "no redistributor frame matches core MPIDR {mpidr:#x}")
            }
        }
    }
}

/// The distributor and the redistributor region.
#[derive(Clone, Copy, Debug)]
pub struct Gic {
    distributor: DeviceWindow,
    redistributors: DeviceWindow,
}

impl Gic {
    /// A GIC with these register windows.
    pub const fn new(distributor: DeviceWindow, redistributors: DeviceWindow) -> Self {
        Self {
            distributor,
            redistributors,
        }
    }

    fn wait_for_distributor(&self) {
        while self.distributor.read32(GICD_CTLR) & GICD_CTLR_RWP != 0 {
            core::hint::spin_loop();
        }
    }

    /// Number of interrupt IDs the distributor implements.
    pub fn interrupt_lines(&self) -> u32 {
        (((self.distributor.read32(GICD_TYPER) & 0x1f) + 1) * 32).min(1020)
    }

    /// Resets the distributor: every SPI group 1, disabled, not pending, default priority;
    /// then enables affinity routing and group 1. Boot core only, once.
    pub fn init_distributor(&self) {
        self.distributor.write32(GICD_CTLR, 0);
        self.wait_for_distributor();
        let lines = self.interrupt_lines() as usize;
        for block in 1..lines / 32 {
            self.distributor.write32(GICD_IGROUPR + block * 4, !0);
            self.distributor.write32(GICD_ICENABLER + block * 4, !0);
            self.distributor.write32(GICD_ICPENDR + block * 4, !0);
        }
        for word in 8..lines / 4 {
            self.distributor
                .write32(GICD_IPRIORITYR + word * 4, priority_word());
        }
        self.wait_for_distributor();
        self.distributor
            .write32(GICD_CTLR, GICD_CTLR_ENABLE_GROUPS_AND_AFFINITY_ROUTING);
        self.wait_for_distributor();
    }

    /// This core's redistributor frame.
    fn redistributor(&self, mpidr: u64) -> Result<DeviceWindow, GicError> {
        let affinity = ((mpidr >> 32 & 0xff) << 24) | (mpidr & 0xff_ffff);
        let mut offset = 0;
        while let Some(frame) = self.redistributors.sub(offset, GICR_FRAME) {
            let typer = frame.read64(GICR_TYPER);
            let stride = if typer & GICR_TYPER_VLPIS != 0 {
                2 * GICR_FRAME
            } else {
                GICR_FRAME
            };
            if typer >> 32 == affinity {
                return self
                    .redistributors
                    .sub(offset, stride)
                    .ok_or(GicError::NoRedistributor { mpidr });
            }
            if typer & GICR_TYPER_LAST != 0 {
                break;
            }
            offset += stride;
        }
        Err(GicError::NoRedistributor { mpidr })
    }

    /// Wakes this core's redistributor, puts its SGIs and PPIs in group 1 (disabled, default
    /// priority), enables `ppis`, and turns on the CPU interface.
    pub fn init_core(&self, mpidr: u64, ppis: &[u32]) -> Result<(), GicError> {
        let frame = self.redistributor(mpidr)?;
        let waker = frame.read32(GICR_WAKER);
        frame.write32(GICR_WAKER, waker & !GICR_WAKER_PROCESSOR_SLEEP);
        while frame.read32(GICR_WAKER) & GICR_WAKER_CHILDREN_ASLEEP != 0 {
            core::hint::spin_loop();
        }
        frame.write32(GICR_IGROUPR0, !0);
        frame.write32(GICR_ICENABLER0, !0);
        for word in 0..8 {
            frame.write32(GICR_IPRIORITYR + word * 4, priority_word());
        }
        let mut enable = 0u32;
        for &intid in ppis.iter().filter(|&&intid| intid < 32) {
            enable |= 1 << intid;
        }
        frame.write32(GICR_ISENABLER0, enable);

        // Enables the system-register CPU interface at EL2 (SRE, and EL1 access to
        // ICC_SRE_EL1), then sets the priority mask, binary point, EOI mode 1 and group 1.
        // SAFETY: interrupts are still masked in PSTATE; these configure only this core's
        // CPU interface.
        unsafe {
            sysreg::icc_sre_el2::write(0xf);
            sysreg::isb();
            sysreg::icc_pmr_el1::write(0xff);
            sysreg::icc_bpr1_el1::write(0);
            sysreg::icc_ctlr_el1::write(ICC_CTLR_EOI_MODE_DROP_ONLY);
            sysreg::icc_igrpen1_el1::write(1);
        }
        sysreg::isb();
        Ok(())
    }
}

impl Gic {
    /// Routes shared interrupt `intid` to the core with affinity `mpidr` and enables it.
    pub fn route_shared(&self, intid: u32, mpidr: u64) {
        if !(32..self.interrupt_lines()).contains(&intid) {
            return;
        }
        let affinity = (mpidr & 0xff_00ff_ffff) & !(1 << 31);
        self.distributor
            .write64(GICD_IROUTER + intid as usize * 8, affinity);
        let (word, bit) = (intid as usize / 32, intid % 32);
        self.distributor
            .write32(GICD_ISENABLER + word * 4, 1 << bit);
    }

    /// Disables interrupt `intid` (a shared one at the distributor, a private one at this
    /// core's redistributor).
    pub fn disable(&self, intid: u32, mpidr: u64) {
        let (word, bit) = (intid as usize / 32, intid % 32);
        if intid < 32 {
            if let Ok(frame) = self.redistributor(mpidr) {
                frame.write32(GICR_ICENABLER0, 1 << bit);
            }
        } else if intid < self.interrupt_lines() {
            self.distributor
                .write32(GICD_ICENABLER + word * 4, 1 << bit);
        }
    }
}

fn priority_word() -> u32 {
    DEFAULT_PRIORITY * 0x0101_0101
}

/// Acknowledges the highest-priority pending interrupt, returning its ID ([`SPURIOUS`] if
/// none).
pub fn acknowledge() -> u32 {
    let intid: u64;
    // SAFETY: reading ICC_IAR1_EL1 acknowledges the interrupt (its only side effect); the
    // caller signals its end with `end_of_interrupt`.
    unsafe { core::arch::asm!("mrs {}, S3_0_C12_C12_0", out(reg) intid, options(nomem, nostack)) };
    (intid & 0xff_ffff) as u32
}

/// Drops the running priority of `intid` (EOI mode 1: it stays active).
pub fn end_of_interrupt(intid: u32) {
    // SAFETY: EOI of an interrupt this core acknowledged; only GIC state changes.
    unsafe { sysreg::icc_eoir1_el1::write(intid as u64) };
}

/// Deactivates `intid`, which this core acknowledged and ended.
pub fn deactivate(intid: u32) {
    // SAFETY: deactivating an interrupt this core handled; only GIC state changes.
    unsafe { sysreg::icc_dir_el1::write(intid as u64) };
}

/// The target fields of an `ICC_SGI1R_EL1` value that name just the core with affinity
/// `mpidr`: Aff3, Aff2, Aff1, the range selector and the target list bit of Aff0.
pub const fn sgi_target(mpidr: u64) -> u64 {
    let aff0 = mpidr & 0xff;
    // Aff3 (MPIDR bits 32..40) and Aff2 (16..24) move up 16 bits, Aff1 (8..16) 8.
    (mpidr & 0xff_00ff_0000) << 16 | (mpidr & 0xff00) << 8 | (aff0 >> 4) << 44 | 1 << (aff0 & 0xf)
}

/// Sends software-generated interrupt `intid` (0..16) to the cores that `target` (from
/// [`sgi_target`], or IRM) names.
pub fn send_sgi(intid: u32, target: u64) {
    let value = target | ((intid as u64 & 0xf) << 24);
    // What the target core is told to look at (an inbox, a flag) must be visible to it
    // before the interrupt is: a system-register write is not ordered after stores.
    sysreg::dsb_ishst();
    // SAFETY: an SGI only raises an interrupt on the target cores, which handle it.
    unsafe { sysreg::icc_sgi1r_el1::write(value) };
    sysreg::isb();
}

/// Sends software-generated interrupt `intid` (0..16) to every core but this one (IRM).
pub fn send_sgi_to_others(intid: u32) {
    send_sgi(intid, 1 << 40);
}
