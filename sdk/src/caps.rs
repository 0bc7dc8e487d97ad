//! Capabilities: what a slot of the cell's table designates, and shared memory regions.
//!
//! Safe wrappers of [`abi::hvc::CAP_INFO`]. Each cell has a fixed capability table built
//! from the boot plan: slot *i* holds the *i*-th name of the cell's `caps = [...]` list in
//! its system description. [`info`] describes any slot; [`memory`] reads a shared memory
//! capability and checks its kind, giving a [`SharedMemory`], the only way to get one, and
//! on bare metal the only way to turn an IPA range into Rust-visible memory
//! ([`SharedMemory::words`], [`SharedMemory::bytes`]).
//!
//! Invariant: a [`SharedMemory`] describes a range the kernel reported for one of this cell's
//! memory capabilities, checked here to be non-empty, 8-byte aligned, a whole number of
//! words, without address overflow and outside this cell's image and stack. `words` and
//! `bytes` are the crate's only `unsafe` outside the register and hypercall modules.

use crate::hvc::{abi_mismatch, call, HvcError};
use abi::hvc::CAP_INFO;
use abi::plan::Rights;

pub use abi::hvc::CapabilityKind;

/// What CAP_INFO reports about a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilityInfo {
    /// What the capability designates.
    pub kind: CapabilityKind,
    /// Its right bits (their meaning depends on `kind`: `abi::hvc::ENDPOINT_CALL`, ...,
    /// or `abi::plan::Rights` bits for shared memory).
    pub rights: u64,
    /// `x3`: what the kind says (an endpoint's badge, a notification's virtual interrupt,
    /// a region's IPA, an INTID, a cell index).
    pub x3: u64,
    /// `x4`: what the kind says (a region's size in bytes; 0 for other kinds).
    pub x4: u64,
}

/// Describes the capability in `slot`.
///
/// Errors: [`HvcError::InvalidCapability`] for a slot beyond the cell's table,
/// [`HvcError::Denied`] for an empty slot (both counted as denials). An unknown kind code is
/// an ABI mismatch (the cell exits with code 103).
pub fn info(slot: u32) -> Result<CapabilityInfo, HvcError> {
    let [kind, rights, x3, x4] = call(CAP_INFO, [u64::from(slot), 0, 0, 0, 0])?;
    Ok(CapabilityInfo {
        kind: CapabilityKind::from_code(kind).unwrap_or_else(|| abi_mismatch()),
        rights,
        x3,
        x4,
    })
}

/// Why [`memory`] gave no region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapabilityError {
    /// The kernel refused to describe the slot.
    Refused(HvcError),
    /// The slot holds a capability of another kind.
    WrongKind(CapabilityKind),
}

/// A shared memory region mapped into this cell, as its capability describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedMemory {
    ipa: u64,
    size: u64,
    rights: Rights,
}

impl SharedMemory {
    /// The region's first IPA.
    pub const fn ipa(&self) -> u64 {
        self.ipa
    }

    /// The region's size in bytes.
    pub const fn size(&self) -> u64 {
        self.size
    }

    /// What this cell may do with the region.
    pub const fn rights(&self) -> Rights {
        self.rights
    }

    /// The region as 64-bit atomic words, for sharing with other cells.
    ///
    /// Other cells may read and write the region at any time, so it is seen only through
    /// atomics: every access is a single-copy-atomic load or store, never a data race in
    /// Rust's model, and no Rust reference to plain data points into it. Writing a region
    /// mapped without the write right is a stage-2 fault: check [`SharedMemory::rights`]
    /// first.
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    pub fn words(&self) -> &'static [core::sync::atomic::AtomicU64] {
        let length = (self.size / 8) as usize;
        // SAFETY: the kernel maps exactly the range [ipa, ipa + size) of this memory
        // capability into this cell's stage-2 address space, readable (a region is mapped
        // with at least one right, and every right implies reading on a data access), for
        // the cell's whole life: mappings are fixed by the boot plan and never removed. The
        // stage-1 MMU is off, so the IPA is the address. `memory` checked that the range is
        // non-empty, 8-byte aligned, a whole number of words, does not wrap, and lies outside
        // this cell's image, data, bss and stack, so no Rust object of this cell is there.
        // `AtomicU64` has the size and alignment of `u64`, any bit pattern is valid, and all
        // accesses through it are atomic, so writes by other cells are not data races.
        unsafe { core::slice::from_raw_parts(self.ipa as usize as *const _, length) }
    }

    /// The region as atomic bytes, for sharing with other cells.
    ///
    /// The same region and rules as [`SharedMemory::words`], one byte at a time: each access
    /// is a single-copy-atomic byte load or store. A multi-byte value read byte by byte may
    /// mix bytes of two writes by another cell; use [`SharedMemory::words`] where that
    /// matters.
    #[cfg(all(target_arch = "aarch64", target_os = "none"))]
    pub fn bytes(&self) -> &'static [core::sync::atomic::AtomicU8] {
        let length = self.size as usize;
        // SAFETY: the kernel maps exactly the range [ipa, ipa + size) of this memory
        // capability into this cell's stage-2 address space, readable (a region is mapped
        // with at least one right, and every right implies reading on a data access), for
        // the cell's whole life: mappings are fixed by the boot plan and never removed. The
        // stage-1 MMU is off, so the IPA is the address. `memory` checked that the range is
        // non-empty, does not wrap, and lies outside this cell's image, data, bss and stack,
        // so no Rust object of this cell is there. `AtomicU8` has the size and alignment of
        // `u8`, any bit pattern is valid, and all accesses through it are atomic, so writes
        // by other cells are not data races.
        unsafe { core::slice::from_raw_parts(self.ipa as usize as *const _, length) }
    }
}

/// Reads the shared memory capability in `slot`.
///
/// Errors: [`CapabilityError::Refused`] with the kernel's refusal (see [`info`]),
/// [`CapabilityError::WrongKind`] when the slot holds another kind of capability. A region
/// that is empty, not 8-byte aligned or sized, wraps around the address space, overlaps this
/// cell's image or stack, or has rights beyond `rwx` is an ABI mismatch (the cell exits with
/// code 103).
pub fn memory(slot: u32) -> Result<SharedMemory, CapabilityError> {
    let description = info(slot).map_err(CapabilityError::Refused)?;
    if description.kind != CapabilityKind::SharedMemory {
        return Err(CapabilityError::WrongKind(description.kind));
    }
    region_from(description).unwrap_or_else(|| abi_mismatch())
}

/// Checks a shared memory capability's range and rights; `None` if the kernel's answer
/// breaks the rules [`memory`] lists.
fn region_from(description: CapabilityInfo) -> Option<Result<SharedMemory, CapabilityError>> {
    let (ipa, size) = (description.x3, description.x4);
    let end = ipa.checked_add(size)?;
    let rights = u8::try_from(description.rights)
        .ok()
        .filter(|&bits| bits & !Rights::RWX.0 == 0)?;
    let well_formed = size > 0 && ipa % 8 == 0 && size % 8 == 0;
    let (image_start, image_end) = image_range();
    let outside_image = end <= image_start || ipa >= image_end;
    (well_formed && outside_image).then_some(Ok(SharedMemory {
        ipa,
        size,
        rights: Rights(rights),
    }))
}

/// The IPA range of this cell's image, data, bss and stack (what `cell.ld` lays out).
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
fn image_range() -> (u64, u64) {
    extern "C" {
        static __cellvisor_image_start: u8;
        static __cellvisor_image_end: u8;
    }
    (
        (&raw const __cellvisor_image_start) as usize as u64,
        (&raw const __cellvisor_image_end) as usize as u64,
    )
}

/// The fake image range of host tests: the first 2 MiB of cell RAM.
#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
fn image_range() -> (u64, u64) {
    (
        abi::image::CELL_RAM_IPA,
        abi::image::CELL_RAM_IPA + 0x20_0000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::with;
    use crate::hvc::tests::exit_code_of;
    use abi::hvc::ENDPOINT_CALL;

    const REGION_IPA: u64 = 0x4040_0000;

    fn install(capabilities: &[Option<[u64; 4]>]) {
        with(|kernel| kernel.capabilities = capabilities.to_vec());
    }

    #[test]
    fn info_decodes_each_kind_and_returns_refusals() {
        install(&[Some([1, ENDPOINT_CALL, 42, 0]), None]);
        assert_eq!(
            info(0),
            Ok(CapabilityInfo {
                kind: CapabilityKind::Endpoint,
                rights: ENDPOINT_CALL,
                x3: 42,
                x4: 0
            })
        );
        assert_eq!(info(1), Err(HvcError::Denied));
        assert_eq!(info(2), Err(HvcError::InvalidCapability));
        with(|kernel| assert_eq!(kernel.calls[0], (CAP_INFO, [0, 0, 0, 0, 0])));
        install(&[Some([6, 0, 0, 0])]);
        assert_eq!(
            exit_code_of(|| {
                let _ = info(0);
            }),
            103
        );
    }

    #[test]
    fn memory_checks_the_kind() {
        install(&[Some([3, 3, REGION_IPA, 0x1000]), Some([2, 1, 0, 0]), None]);
        let region = memory(0).unwrap();
        assert_eq!(
            (region.ipa(), region.size(), region.rights()),
            (REGION_IPA, 0x1000, Rights(3))
        );
        assert_eq!(
            memory(1),
            Err(CapabilityError::WrongKind(CapabilityKind::Notification))
        );
        assert_eq!(memory(2), Err(CapabilityError::Refused(HvcError::Denied)));
        assert_eq!(
            memory(9),
            Err(CapabilityError::Refused(HvcError::InvalidCapability))
        );
    }

    #[test]
    fn a_malformed_region_is_an_abi_mismatch() {
        let image_start = abi::image::CELL_RAM_IPA;
        for bad in [
            [3, 3, REGION_IPA, 0],
            [3, 3, REGION_IPA + 4, 0x1000],
            [3, 3, REGION_IPA, 0x1004],
            [3, 3, u64::MAX - 0xfff, 0x1000],
            [3, 8, REGION_IPA, 0x1000],
            [3, 1 << 8, REGION_IPA, 0x1000],
            [3, 3, image_start, 0x1000],
            [3, 3, image_start - 0x1000, 0x2000],
        ] {
            install(&[Some(bad)]);
            assert_eq!(
                exit_code_of(|| {
                    let _ = memory(0);
                }),
                103,
                "{bad:x?}"
            );
        }
        install(&[Some([3, 1, image_start - 0x1000, 0x1000])]);
        assert!(memory(0).is_ok());
    }
}
