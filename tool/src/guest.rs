//! Guest cells: `${VARIABLE}` expansion in image paths, reading a Linux arm64 `Image` and
//! its initrd, and placing them with a generated device tree ([`tree`]) in the guest's RAM
//! by the Linux arm64 boot protocol.
//!
//! Guest RAM starts at `CELL_RAM_IPA` (0x4000_0000). [`place`] lays it out as:
//!
//! ```text
//! RAM base + text_offset   kernel Image (image_size bytes: file, then its bss)
//! align_up(kernel end, 2 MiB)   device tree blob, in a DTB_SLOT (2 MiB) slot
//! DTB + DTB_SLOT           initrd (page aligned), if any
//! ```
//!
//! Invariants: every address is inside the guest's `memory`; the DTB address is a pure
//! function of the kernel's header (the EL2 kernel finds it the same way: align the end of
//! the Image's `image_size` up to 2 MiB, see [`dtb_ipa`]); the assembled image
//! ([`assemble`]) starts at the kernel and ends at the initrd's (or the DTB's) last byte,
//! zero between the pieces.

use std::fmt;

use abi::addr::{align_up, PAGE_SIZE};
use abi::image::CELL_RAM_IPA;

use crate::elf::Flat;

pub mod tree;

/// The variable that names the folder of guest images.
pub const GUEST_VARIABLE: &str = "CELLVISOR_GUEST";
/// Alignment of the DTB's address (and of the kernel's base by the boot protocol).
pub const DTB_ALIGN: u64 = 2 << 20;
/// Space kept for the DTB: the boot protocol's limit on its size.
pub const DTB_SLOT: u64 = 2 << 20;

/// Why a `${VARIABLE}` in a path cannot be expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpandError {
    /// The variable is not set (or empty), and has no default.
    Unset(String),
    /// `${` without its `}`.
    Unterminated,
    /// `${}` or a name with characters other than letters, digits and `_`.
    BadName(String),
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unset(name) => write!(f, "environment variable `{name}` is not set"),
            Self::Unterminated => write!(f, "`${{` without a closing `}}`"),
            Self::BadName(name) => write!(f, "`{name}` is not a variable name"),
        }
    }
}

/// Replaces each `${NAME}` in `text` by `lookup(NAME)`. A `$` not followed by `{` is kept.
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(ExpandError::Unterminated)?;
        let name = &after[..end];
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ExpandError::BadName(name.to_string()));
        }
        out.push_str(&lookup(name).ok_or_else(|| ExpandError::Unset(name.to_string()))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A variable's value for [`expand`] from `environment` (non-empty values only), with the
/// default of [`GUEST_VARIABLE`]: `${XDG_CACHE_HOME:-$HOME/.cache}/cellvisor/guest`.
pub fn lookup_with(name: &str, environment: impl Fn(&str) -> Option<String>) -> Option<String> {
    let get = |name: &str| environment(name).filter(|value| !value.is_empty());
    get(name).or_else(|| {
        (name == GUEST_VARIABLE)
            .then(|| {
                get("XDG_CACHE_HOME")
                    .or_else(|| get("HOME").map(|home| format!("{home}/.cache")))
                    .map(|cache| format!("{cache}/cellvisor/guest"))
            })
            .flatten()
    })
}

/// [`lookup_with`] the process environment.
pub fn lookup(name: &str) -> Option<String> {
    lookup_with(name, |name| std::env::var(name).ok())
}

/// Why a file is not a usable guest kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelImageError {
    /// No `ARM\x64` magic at offset 56.
    NotArm64Image {
        /// Whether the file is an ELF (a `vmlinux` rather than an `Image`).
        elf: bool,
    },
    /// `image_size` is zero (a kernel older than Linux 3.17) or smaller than the file.
    BadImageSize {
        /// The header's `image_size`.
        image_size: u64,
        /// The file's length.
        file_len: u64,
    },
    /// `text_offset` is not below 2 MiB or not page aligned.
    BadTextOffset(u64),
}

impl fmt::Display for KernelImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotArm64Image { elf: true } => {
                write!(f, "an ELF file (vmlinux), not a raw arm64 Linux Image")
            }
            Self::NotArm64Image { elf: false } => write!(
                f,
                "not an arm64 Linux Image (no `ARM\\x64` magic at offset 56)"
            ),
            Self::BadImageSize {
                image_size,
                file_len,
            } => write!(
                f,
                "its header's image_size {image_size:#x} is smaller than the file ({file_len:#x} bytes)"
            ),
            Self::BadTextOffset(offset) => {
                write!(f, "its text_offset {offset:#x} is not a page-aligned offset below 2 MiB")
            }
        }
    }
}

/// The header fields of a guest kernel that [`place`] needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelHeader {
    /// Offset of the kernel from a 2 MiB-aligned base.
    pub text_offset: u64,
    /// The kernel's memory footprint, bss included.
    pub image_size: u64,
}

/// Reads and checks the arm64 Image header of `data`.
pub fn read_kernel(data: &[u8]) -> Result<KernelHeader, KernelImageError> {
    let (text_offset, image_size) =
        abi::image::read_header(data).ok_or(KernelImageError::NotArm64Image {
            elf: data.starts_with(b"\x7fELF"),
        })?;
    let file_len = data.len() as u64;
    if image_size == 0 || image_size < file_len {
        return Err(KernelImageError::BadImageSize {
            image_size,
            file_len,
        });
    }
    if text_offset >= DTB_ALIGN || text_offset % PAGE_SIZE != 0 {
        return Err(KernelImageError::BadTextOffset(text_offset));
    }
    Ok(KernelHeader {
        text_offset,
        image_size,
    })
}

/// Where the DTB of a guest goes: the kernel's end rounded up to 2 MiB. The EL2 kernel
/// computes the same from the cell record's `load_ipa` and the `image_size` at offset 16
/// of the cell image (the Image header), and passes it in x0.
pub fn dtb_ipa(kernel_ipa: u64, image_size: u64) -> Option<u64> {
    align_up(kernel_ipa.checked_add(image_size)?, DTB_ALIGN)
}

/// The guest's memory layout (IPAs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The kernel's first byte, also the entry point.
    pub kernel_ipa: u64,
    /// The kernel's footprint (`image_size`).
    pub kernel_size: u64,
    /// The DTB.
    pub dtb_ipa: u64,
    /// The initrd's first byte (meaningful when `initrd_size` is non-zero).
    pub initrd_ipa: u64,
    /// The initrd's length, 0 without one.
    pub initrd_size: u64,
}

impl Placement {
    /// Bytes of guest RAM the layout uses, from the RAM base to the end of the initrd, or
    /// of the DTB slot without one.
    pub fn needed(&self) -> u64 {
        let end = if self.initrd_size == 0 {
            self.dtb_ipa + DTB_SLOT
        } else {
            self.initrd_ipa + self.initrd_size
        };
        end - CELL_RAM_IPA
    }
}

/// The guest needs more RAM than its `memory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoesNotFit {
    /// Bytes needed from the RAM base.
    pub needed: u64,
}

/// Lays out a guest's RAM (see the module documentation).
pub fn place(kernel: KernelHeader, initrd_size: u64, memory: u64) -> Result<Placement, DoesNotFit> {
    let too_big = DoesNotFit { needed: u64::MAX };
    let kernel_ipa = CELL_RAM_IPA + kernel.text_offset;
    let dtb_ipa = dtb_ipa(kernel_ipa, kernel.image_size).ok_or(too_big)?;
    let initrd_ipa = align_up(dtb_ipa + DTB_SLOT, PAGE_SIZE).ok_or(too_big)?;
    initrd_ipa.checked_add(initrd_size).ok_or(too_big)?;
    let placement = Placement {
        kernel_ipa,
        kernel_size: kernel.image_size,
        dtb_ipa,
        initrd_ipa,
        initrd_size,
    };
    if placement.needed() > memory {
        return Err(DoesNotFit {
            needed: placement.needed(),
        });
    }
    Ok(placement)
}

/// A guest's boot pieces, for the report and `<cell>.dtb`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boot {
    /// The layout.
    pub placement: Placement,
    /// The generated device tree blob.
    pub dtb: Vec<u8>,
}

/// The guest's memory image from the kernel to the end of the initrd (or the DTB): what
/// the plan stores as the cell image. `dtb` must be at most [`DTB_SLOT`] bytes.
pub fn assemble(kernel: &[u8], initrd: &[u8], dtb: &[u8], placement: &Placement) -> Flat {
    let base = placement.kernel_ipa;
    let dtb_at = (placement.dtb_ipa - base) as usize;
    let end = if initrd.is_empty() {
        dtb_at + dtb.len()
    } else {
        (placement.initrd_ipa - base) as usize + initrd.len()
    };
    let mut bytes = vec![0u8; end];
    bytes[..kernel.len()].copy_from_slice(kernel);
    bytes[dtb_at..dtb_at + dtb.len()].copy_from_slice(dtb);
    if !initrd.is_empty() {
        let at = (placement.initrd_ipa - base) as usize;
        bytes[at..].copy_from_slice(initrd);
    }
    Flat {
        base,
        entry: base,
        file_end: base + bytes.len() as u64,
        bytes,
    }
}

/// A fake arm64 Image for tests and fixtures: the header, then `file_len - 64` bytes of
/// `0xAA`, with the given `text_offset` and `image_size`.
pub fn fake_kernel(text_offset: u64, image_size: u64, file_len: usize) -> Vec<u8> {
    let mut data = vec![0xAAu8; file_len.max(64)];
    data[..64].fill(0);
    data[8..16].copy_from_slice(&text_offset.to_le_bytes());
    data[16..24].copy_from_slice(&image_size.to_le_bytes());
    data[56..60].copy_from_slice(&abi::image::ARM64_MAGIC);
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn variables_are_expanded_with_the_guest_default() {
        let environment = |name: &str| match name {
            "HOME" => Some("/home/u".to_string()),
            "EMPTY" => Some(String::new()),
            "A" => Some("x".to_string()),
            _ => None,
        };
        let lookup = |name: &str| lookup_with(name, environment);
        assert_eq!(expand("${A}/b$c", lookup), Ok("x/b$c".to_string()));
        assert_eq!(
            expand("${CELLVISOR_GUEST}/Image", lookup),
            Ok("/home/u/.cache/cellvisor/guest/Image".to_string())
        );
        assert_eq!(
            expand("${EMPTY}", lookup),
            Err(ExpandError::Unset("EMPTY".to_string()))
        );
        assert_eq!(expand("${A", lookup), Err(ExpandError::Unterminated));
        assert_eq!(
            expand("${1A}", lookup),
            Err(ExpandError::BadName("1A".to_string()))
        );
        let xdg = |name: &str| {
            lookup_with(name, |name| {
                (name == "XDG_CACHE_HOME").then(|| "/cache".to_string())
            })
        };
        assert_eq!(
            expand("${CELLVISOR_GUEST}", xdg),
            Ok("/cache/cellvisor/guest".to_string())
        );
        assert_eq!(
            expand("${CELLVISOR_GUEST}", |name| lookup_with(name, |_| None)),
            Err(ExpandError::Unset(GUEST_VARIABLE.to_string()))
        );
    }

    #[test]
    fn kernel_headers_are_checked() {
        let header = read_kernel(&fake_kernel(0, 3 * MIB, 4096)).unwrap();
        assert_eq!(header.image_size, 3 * MIB);
        assert_eq!(
            read_kernel(b"\x7fELF and more bytes than the header, and more bytes than that: x"),
            Err(KernelImageError::NotArm64Image { elf: true })
        );
        assert_eq!(
            read_kernel(&[0; 100]),
            Err(KernelImageError::NotArm64Image { elf: false })
        );
        assert_eq!(
            read_kernel(&fake_kernel(0, 0, 4096)),
            Err(KernelImageError::BadImageSize {
                image_size: 0,
                file_len: 4096
            })
        );
        assert_eq!(
            read_kernel(&fake_kernel(0x123, MIB, 4096)),
            Err(KernelImageError::BadTextOffset(0x123))
        );
    }

    #[test]
    fn guest_memory_is_laid_out_by_the_boot_protocol() {
        let kernel = KernelHeader {
            text_offset: 0x8_0000,
            image_size: 5 * MIB + 7,
        };
        let placement = place(kernel, 3 * MIB + 5, 64 * MIB).unwrap();
        assert_eq!(placement.kernel_ipa, CELL_RAM_IPA + 0x8_0000);
        assert_eq!(placement.dtb_ipa, CELL_RAM_IPA + 6 * MIB);
        assert_eq!(placement.initrd_ipa, CELL_RAM_IPA + 8 * MIB);
        assert_eq!(placement.needed(), 11 * MIB + 5);
        assert_eq!(
            place(kernel, 3 * MIB + 5, 8 * MIB),
            Err(DoesNotFit {
                needed: 11 * MIB + 5
            })
        );
        let no_initrd = place(kernel, 0, 8 * MIB).unwrap();
        assert_eq!(no_initrd.needed(), 8 * MIB);

        let image = fake_kernel(0x8_0000, 5 * MIB + 7, 4096);
        let flat = assemble(&image, &[7; 5], b"tree", &placement);
        assert_eq!(
            (flat.base, flat.entry),
            (placement.kernel_ipa, placement.kernel_ipa)
        );
        assert_eq!(flat.end(), placement.initrd_ipa + 5);
        assert_eq!(&flat.bytes[..4096], &image[..]);
        let dtb_at = (placement.dtb_ipa - flat.base) as usize;
        assert!(flat.bytes[4096..dtb_at].iter().all(|&b| b == 0));
        assert_eq!(&flat.bytes[dtb_at..dtb_at + 4], b"tree");
        assert_eq!(&flat.bytes[flat.bytes.len() - 5..], &[7; 5]);
        let without = assemble(&image, &[], b"tree", &no_initrd);
        assert_eq!(without.end(), no_initrd.dtb_ipa + 4);
    }
}
