//! Layout of the bootable image that `cellvisor build` writes.
//!
//! ```text
//! kernel_base ──► ┌──────────────────────────────┐  arm64 Image header at offset 0
//!                 │ kernel text, rodata, data    │  (QEMU loads at RAM base + text_offset)
//!                 │ kernel bss (not in the file, │
//!                 │ zero-filled by the kernel)   │
//! + plan_offset ► ├──────────────────────────────┤  plan_offset = align_up(image_size, PLAN_ALIGN)
//!                 │ boot plan (see `plan`)       │
//!                 ├──────────────────────────────┤
//!                 │ cell images, each aligned to │  offsets recorded in the plan,
//!                 │ CELL_IMAGE_ALIGN             │  relative to the plan's start
//!                 └──────────────────────────────┘
//! ```
//!
//! `image_size` is the kernel's memory footprint from its Image header (the linker computes
//! it), so the tool and the kernel agree on where the plan is without sharing any other
//! number. The file contains the bss range as zeros so that everything after it lands at the
//! right address when the whole file is loaded.

/// Offset of `text_offset` (u64) in the arm64 Image header.
pub const HEADER_TEXT_OFFSET: usize = 8;
/// Offset of `image_size` (u64) in the arm64 Image header.
pub const HEADER_IMAGE_SIZE: usize = 16;
/// Offset of the magic `ARM\x64` in the arm64 Image header.
pub const HEADER_MAGIC: usize = 56;
/// The arm64 Image magic.
pub const ARM64_MAGIC: [u8; 4] = *b"ARM\x64";

/// Alignment of the plan after the kernel's footprint.
pub const PLAN_ALIGN: u64 = 0x1_0000;
/// Alignment of each cell image inside the payload.
pub const CELL_IMAGE_ALIGN: u64 = 0x1000;
/// Alignment of each cell's RAM region in physical memory (one stage-2 level-2 block).
pub const CELL_RAM_ALIGN: u64 = 0x20_0000;
/// IPA at which a cell's main RAM starts (as on QEMU `virt`).
pub const CELL_RAM_IPA: u64 = 0x4000_0000;
/// Bytes of the `rng-seed` property `cellvisor build` puts, zeroed, in each guest's
/// `/chosen` (with an 8-byte `kaslr-seed`): the kernel fills both with fresh randomness every
/// time the guest starts (or removes them when the board gave the kernel no randomness).
pub const GUEST_RNG_SEED_BYTES: usize = 64;
/// The properties of a guest's `/chosen` the kernel fills with randomness at each start.
pub const GUEST_SEED_PROPERTIES: [&str; 2] = ["rng-seed", "kaslr-seed"];

/// Offset of the plan from the kernel's load address, given the Image header's
/// `image_size`; `None` if it overflows.
pub const fn plan_offset(image_size: u64) -> Option<u64> {
    crate::addr::align_up(image_size, PLAN_ALIGN)
}

/// Reads `text_offset` and `image_size` from an arm64 Image header, if `bytes` starts with
/// one.
#[cfg(any(test, feature = "host"))]
pub fn read_header(bytes: &[u8]) -> Option<(u64, u64)> {
    let magic = bytes.get(HEADER_MAGIC..HEADER_MAGIC + 4)?;
    if magic != ARM64_MAGIC {
        return None;
    }
    let text_offset = u64::from_le_bytes(
        bytes
            .get(HEADER_TEXT_OFFSET..HEADER_TEXT_OFFSET + 8)?
            .try_into()
            .ok()?,
    );
    let image_size = u64::from_le_bytes(
        bytes
            .get(HEADER_IMAGE_SIZE..HEADER_IMAGE_SIZE + 8)?
            .try_into()
            .ok()?,
    );
    Some((text_offset, image_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_read_only_with_magic() {
        let mut hdr = [0u8; 64];
        hdr[8..16].copy_from_slice(&0x20_0000u64.to_le_bytes());
        hdr[16..24].copy_from_slice(&0x3_2100u64.to_le_bytes());
        assert_eq!(read_header(&hdr), None);
        hdr[56..60].copy_from_slice(&ARM64_MAGIC);
        assert_eq!(read_header(&hdr), Some((0x20_0000, 0x3_2100)));
        assert_eq!(plan_offset(0x3_2100), Some(0x4_0000));
        assert_eq!(read_header(&hdr[..40]), None);
    }
}
