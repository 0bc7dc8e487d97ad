//! Bounds-checked access to a device's register window.
//!
//! Invariant: a [`DeviceWindow`] exists only for a range the caller promised is a device
//! (from the DTB) mapped in the EL2 tables (or, before the MMU is on, any device address);
//! every access is checked against the window and naturally aligned, so after the one
//! `unsafe` constructor all register accesses are safe.

/// A device's register window.
#[derive(Clone, Copy, Debug)]
pub struct DeviceWindow {
    base: usize,
    size: usize,
}

impl DeviceWindow {
    /// A window over `[base, base + size)`.
    ///
    /// # Safety
    /// The range must be a device's registers, accessible from EL2 as Device memory (mapped
    /// Device-nGnRE, or the MMU off), with no Rust object placed there.
    pub const unsafe fn new(base: u64, size: u64) -> Self {
        Self {
            base: base as usize,
            size: size as usize,
        }
    }

    fn address(&self, offset: usize, width: usize) -> usize {
        assert!(
            offset.is_multiple_of(width) && offset + width <= self.size,
            "register offset outside its window"
        );
        self.base + offset
    }

    /// Reads the 32-bit register at `offset`.
    pub fn read32(&self, offset: usize) -> u32 {
        let address = self.address(offset, 4);
        // SAFETY: the address is inside the device window (checked) and aligned; the
        // constructor's contract makes it a device register readable from EL2.
        unsafe { core::ptr::read_volatile(address as *const u32) }
    }

    /// Writes the 32-bit register at `offset`.
    pub fn write32(&self, offset: usize, value: u32) {
        let address = self.address(offset, 4);
        // SAFETY: as for `read32`; writing a device register touches no Rust object.
        unsafe { core::ptr::write_volatile(address as *mut u32, value) }
    }

    /// Reads the 64-bit register at `offset`.
    pub fn read64(&self, offset: usize) -> u64 {
        let address = self.address(offset, 8);
        // SAFETY: as for `read32`, with 8-byte alignment checked.
        unsafe { core::ptr::read_volatile(address as *const u64) }
    }

    /// Writes the 64-bit register at `offset`.
    pub fn write64(&self, offset: usize, value: u64) {
        let address = self.address(offset, 8);
        // SAFETY: as for `write32`, with 8-byte alignment checked.
        unsafe { core::ptr::write_volatile(address as *mut u64, value) }
    }

    /// The sub-window `[offset, offset + size)`, or `None` if it does not fit.
    pub fn sub(&self, offset: usize, size: usize) -> Option<Self> {
        (offset.checked_add(size)? <= self.size).then_some(Self {
            base: self.base + offset,
            size,
        })
    }
}
