//! The kernel's only access to cells' memory: copying bytes out of a cell for a hypercall,
//! (re)loading a cell's RAM from its pristine image, and writing a guest's boot seed.
//!
//! Invariants: a [`CellBytes`] exists only for a range that `kcore::cell::translate` found
//! inside one of the cell's RAM or shared regions with the needed right; a [`CellRam`] only
//! for a cell's RAM region as recorded in the plan. `kcore::platform_check` has verified
//! (before any cell was built) that all such regions lie in board RAM, outside the kernel,
//! the plan and the cell images, and the EL2 map covers that RAM read-write. So every access
//! here reads or writes RAM that no Rust object of the kernel occupies.

use crate::arch::bulk;
use abi::hvc::HvcError;
use abi::plan::{CellRecord, Plan, RegionKind, Rights};

/// A range of a cell's memory the kernel may read, found by translation.
#[derive(Clone, Copy, Debug)]
pub struct CellBytes {
    pa: u64,
    len: usize,
}

impl CellBytes {
    /// Translates `[ipa, ipa + len)` of `cell`, which must be readable RAM or shared memory.
    pub fn readable(
        plan: &Plan<'_>,
        cell: &CellRecord,
        ipa: u64,
        len: u64,
    ) -> Result<Self, HvcError> {
        let pa = kcore::cell::translate(plan, cell, ipa, len, Rights::R)?;
        Ok(Self {
            pa,
            len: len as usize,
        })
    }

    /// Copies the bytes into `out` (which must be at least as long) and returns them.
    pub fn copy_to<'a>(&self, out: &'a mut [u8]) -> &'a [u8] {
        let len = self.len.min(out.len());
        let out = &mut out[..len];
        // A plain copy of memory another core's vCPU may be writing yields some byte values,
        // which is all a console needs.
        // SAFETY: the range is cell RAM mapped in EL2, holding no kernel object (module invariant).
        unsafe {
            core::ptr::copy_nonoverlapping(self.pa as *const u8, out.as_mut_ptr(), out.len())
        };
        out
    }
}

/// Why a cell could not be loaded.
#[derive(Clone, Copy, Debug)]
pub enum LoadError {
    /// The cell has no RAM region (the plan check makes this impossible).
    NoRam,
    /// The image does not fit the RAM region at its load address.
    ImageOutsideRam,
}

/// A cell's RAM region.
#[derive(Clone, Copy, Debug)]
pub struct CellRam {
    ipa: u64,
    pa: u64,
    size: u64,
}

impl CellRam {
    /// The RAM region of `cell` from the plan.
    pub fn of(plan: &Plan<'_>, cell: &CellRecord) -> Result<Self, LoadError> {
        plan.regions_of(cell)
            .find(|region| region.kind == RegionKind::Ram)
            .map(|region| Self {
                ipa: region.ipa,
                pa: region.pa,
                size: region.size,
            })
            .ok_or(LoadError::NoRam)
    }

    /// Physical base.
    pub fn pa(&self) -> u64 {
        self.pa
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Writes `bytes` at `ipa`, if the whole range lies in this RAM (else writes nothing).
    // Out of line: one copy for its two callers.
    #[inline(never)]
    pub fn write(&self, ipa: u64, bytes: &[u8]) {
        let Some(offset) = ipa.checked_sub(self.ipa) else {
            return;
        };
        if offset.saturating_add(bytes.len() as u64) > self.size {
            return;
        }
        // SAFETY: `[pa + offset, + len)` lies in the cell's own RAM (checked above), mapped
        // RW, with no kernel object there.
        unsafe {
            core::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                (self.pa + offset) as *mut u8,
                bytes.len(),
            )
        };
    }

    /// Fills the RAM with `image` at `load_ipa` and zeroes everything else, then makes the
    /// new code visible to instruction fetch.
    pub fn load(&self, image: &[u8], load_ipa: u64) -> Result<(), LoadError> {
        let offset = load_ipa
            .checked_sub(self.ipa)
            .ok_or(LoadError::ImageOutsideRam)?;
        let end = offset
            .checked_add(image.len() as u64)
            .ok_or(LoadError::ImageOutsideRam)?;
        if end > self.size {
            return Err(LoadError::ImageOutsideRam);
        }
        // `image` lies in the payload, which the plan check keeps disjoint from every cell's
        // RAM, and the offsets were checked against `size` above.
        // SAFETY: `[pa, pa + size)` is the cell's own RAM, mapped RW, no kernel object there.
        // The RAM is Normal memory, as `bulk` needs.
        unsafe {
            let base = self.pa as *mut u8;
            bulk::zero(base, offset as usize);
            bulk::copy(base.add(offset as usize), image.as_ptr(), image.len());
            bulk::zero(base.add(end as usize), (self.size - end) as usize);
        }
        crate::arch::mmu::sync_code(self.pa + offset, image.len() as u64);
        Ok(())
    }
}
