//! Reading AArch64 ELF files into flat memory images, and writing small ones.
//!
//! Both the kernel and the cell images are ELF executables. The tool loads their `PT_LOAD`
//! segments by physical address (`p_paddr`) into one byte vector that starts at the lowest
//! address: file-backed bytes are copied, the rest (bss, gaps) is zero. The kernel image
//! ([`flatten`]) spans every segment's memory, bss included; a cell image
//! ([`load_cell_image`]) ends at its last file-backed byte, because the kernel zeroes all of
//! a cell's RAM outside its image at every (re)load, so trailing bss (the cell's stack)
//! need not be stored. [`write_elf`] produces minimal executables for tests and fixtures.

use std::fmt;

use object::elf;
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::LittleEndian;

/// Offset of the class byte in `e_ident`.
const IDENT_CLASS: usize = 4;
/// Offset of the data-encoding byte in `e_ident`.
const IDENT_DATA: usize = 5;

/// Largest flat image the tool builds (a guard against absurd segment addresses).
pub const MAX_FLAT_SIZE: u64 = 1 << 30;

/// Why a file is not a usable AArch64 executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// The file could not be read.
    Unreadable(String),
    /// No ELF magic.
    NotElf,
    /// A 32-bit or big-endian ELF.
    Not64BitLittleEndian,
    /// The ELF is for another machine.
    WrongMachine(u16),
    /// Not an executable (a relocatable object or shared library).
    NotExecutable(u16),
    /// The ELF's headers are inconsistent.
    Malformed(String),
    /// No `PT_LOAD` segment with content.
    NoLoadSegments,
    /// The segments span more than [`MAX_FLAT_SIZE`].
    TooLarge {
        /// Lowest address.
        start: u64,
        /// End of the highest segment.
        end: u64,
    },
    /// A cell image that starts below the cell's RAM.
    BelowCellRam {
        /// The image's lowest address.
        load: u64,
    },
    /// A cell image that does not fit in the cell's RAM.
    DoesNotFit {
        /// End of the image.
        end: u64,
        /// End of the cell's RAM.
        ram_end: u64,
    },
    /// The entry point lies outside the loaded image.
    EntryOutside {
        /// The entry point.
        entry: u64,
        /// Start of the image.
        start: u64,
        /// End of the image.
        end: u64,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable(reason) => write!(f, "cannot read it: {reason}"),
            Self::NotElf => write!(f, "not an ELF file"),
            Self::Not64BitLittleEndian => write!(f, "not a 64-bit little-endian ELF"),
            Self::WrongMachine(machine) => {
                write!(
                    f,
                    "an ELF for machine {machine}, not AArch64 ({})",
                    elf::EM_AARCH64.0
                )
            }
            Self::NotExecutable(kind) => write!(f, "ELF type {kind} is not an executable"),
            Self::Malformed(reason) => write!(f, "malformed ELF: {reason}"),
            Self::NoLoadSegments => write!(f, "the ELF has no loadable segment"),
            Self::TooLarge { start, end } => {
                write!(
                    f,
                    "its segments span {start:#x}..{end:#x}, too large to load"
                )
            }
            Self::BelowCellRam { load } => write!(
                f,
                "it loads at {load:#x}, below the cell's RAM at {:#x}",
                abi::image::CELL_RAM_IPA
            ),
            Self::DoesNotFit { end, ram_end } => write!(
                f,
                "it ends at {end:#x}, past the end of the cell's RAM at {ram_end:#x}"
            ),
            Self::EntryOutside { entry, start, end } => write!(
                f,
                "its entry point {entry:#x} lies outside its image {start:#x}..{end:#x}"
            ),
        }
    }
}

impl ImageError {
    /// How to fix it.
    pub fn help(&self) -> String {
        match self {
            Self::Unreadable(_) => "check the file's permissions".to_string(),
            Self::NotElf
            | Self::Not64BitLittleEndian
            | Self::WrongMachine(_)
            | Self::NotExecutable(_)
            | Self::Malformed(_) => {
                "point `image` at an AArch64 ELF executable (build cells for aarch64-unknown-none)"
                    .to_string()
            }
            Self::NoLoadSegments | Self::TooLarge { .. } | Self::EntryOutside { .. } => {
                "link the cell with the SDK's linker script".to_string()
            }
            Self::BelowCellRam { .. } => format!(
                "link the cell at or above {:#x}, where its RAM starts",
                abi::image::CELL_RAM_IPA
            ),
            Self::DoesNotFit { .. } => "raise the cell's `memory`".to_string(),
        }
    }
}

/// An ELF executable loaded into one flat byte vector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flat {
    /// Address of `bytes[0]` (the lowest `p_paddr`).
    pub base: u64,
    /// The memory image: from [`flatten`] up to the end of the highest segment's memory,
    /// bss included; from [`load_cell_image`] up to `file_end`.
    pub bytes: Vec<u8>,
    /// The ELF entry point.
    pub entry: u64,
    /// One past the last file-backed byte (`p_paddr + p_filesz` of the highest segment with
    /// file bytes; `base` if none has any), at or before [`Flat::end`].
    pub file_end: u64,
}

impl Flat {
    /// One past the last byte of `bytes`.
    pub fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }
}

/// Loads the `PT_LOAD` segments of an AArch64 ELF executable by physical address.
pub fn flatten(data: &[u8]) -> Result<Flat, ImageError> {
    if data.get(..4) != Some(&elf::ELFMAG[..]) {
        return Err(ImageError::NotElf);
    }
    // e_ident[EI_CLASS] == ELFCLASS64 and e_ident[EI_DATA] == ELFDATA2LSB.
    if data.get(IDENT_CLASS) != Some(&2) || data.get(IDENT_DATA) != Some(&1) {
        return Err(ImageError::Not64BitLittleEndian);
    }
    let file = ElfFile64::<LittleEndian>::parse(data)
        .map_err(|error| ImageError::Malformed(error.to_string()))?;
    let endian = file.endian();
    let header = file.elf_header();
    let machine = header.e_machine(endian);
    if machine != elf::EM_AARCH64 {
        return Err(ImageError::WrongMachine(machine.0));
    }
    let kind = header.e_type(endian);
    if kind != elf::ET_EXEC {
        return Err(ImageError::NotExecutable(kind.0));
    }
    let mut segments = Vec::new();
    for segment in file.elf_program_headers() {
        if segment.p_type(endian) != elf::PT_LOAD || segment.p_memsz(endian) == 0 {
            continue;
        }
        let paddr = segment.p_paddr(endian);
        let memsz = segment.p_memsz(endian);
        let bytes = segment
            .data(endian, data)
            .map_err(|_| ImageError::Malformed("a segment lies outside the file".to_string()))?;
        if bytes.len() as u64 > memsz {
            return Err(ImageError::Malformed(format!(
                "segment at {paddr:#x} has more file bytes than memory bytes"
            )));
        }
        let end = paddr
            .checked_add(memsz)
            .ok_or_else(|| ImageError::Malformed(format!("segment at {paddr:#x} wraps around")))?;
        segments.push((paddr, end, bytes));
    }
    let start = segments
        .iter()
        .map(|&(paddr, _, _)| paddr)
        .min()
        .ok_or(ImageError::NoLoadSegments)?;
    let end = segments
        .iter()
        .map(|&(_, end, _)| end)
        .max()
        .unwrap_or(start);
    if end - start > MAX_FLAT_SIZE {
        return Err(ImageError::TooLarge { start, end });
    }
    // Segments without file bytes (pure bss) do not move the end of the file bytes.
    let file_end = segments
        .iter()
        .filter(|(_, _, bytes)| !bytes.is_empty())
        .map(|&(paddr, _, bytes)| paddr + bytes.len() as u64)
        .max()
        .unwrap_or(start);
    let mut flat = vec![0u8; (end - start) as usize];
    for (paddr, _, bytes) in segments {
        let offset = (paddr - start) as usize;
        flat[offset..offset + bytes.len()].copy_from_slice(bytes);
    }
    Ok(Flat {
        base: start,
        bytes: flat,
        entry: header.e_entry(endian),
        file_end,
    })
}

/// Loads a cell image, checks that its whole memory span (bss included) fits the cell's RAM
/// (`memory` bytes at [`abi::image::CELL_RAM_IPA`]), cuts it after its last file-backed
/// byte, and checks that its entry point is inside what remains.
pub fn load_cell_image(data: &[u8], memory: u64) -> Result<Flat, ImageError> {
    let mut flat = flatten(data)?;
    let ram = abi::image::CELL_RAM_IPA;
    if flat.base < ram {
        return Err(ImageError::BelowCellRam { load: flat.base });
    }
    let ram_end = ram.saturating_add(memory);
    if flat.end() > ram_end {
        return Err(ImageError::DoesNotFit {
            end: flat.end(),
            ram_end,
        });
    }
    // base <= file_end <= end(): the cut stays inside the bytes.
    flat.bytes.truncate((flat.file_end - flat.base) as usize);
    if !(flat.base..flat.end()).contains(&flat.entry) {
        return Err(ImageError::EntryOutside {
            entry: flat.entry,
            start: flat.base,
            end: flat.end(),
        });
    }
    Ok(flat)
}

/// One segment for [`write_elf`].
#[derive(Clone, Debug)]
pub struct SegmentSpec {
    /// Physical (and virtual) address.
    pub address: u64,
    /// File-backed bytes.
    pub bytes: Vec<u8>,
    /// Memory size (at least `bytes.len()`; the rest is bss).
    pub memory_size: u64,
}

/// Writes a minimal 64-bit little-endian ELF executable for `machine` (normally
/// [`elf::EM_AARCH64`]) with one `PT_LOAD` per segment and no sections.
pub fn write_elf(machine: u16, entry: u64, segments: &[SegmentSpec]) -> Vec<u8> {
    use object::write::elf::{FileHeader as WriteHeader, ProgramHeader as WriteSegment, Writer};
    const ALIGN: u64 = 16;
    let mut out = Vec::new();
    let mut writer = Writer::new(object::Endianness::Little, true, &mut out);
    writer.reserve_file_header();
    writer.reserve_program_headers(segments.len() as u32);
    let offsets: Vec<u64> = segments
        .iter()
        .map(|segment| writer.reserve(segment.bytes.len() as u64, ALIGN))
        .collect();
    // Writing into a Vec only fails if the reserved length overflows usize.
    writer
        .write_file_header(&WriteHeader {
            os_abi: elf::ELFOSABI_NONE,
            abi_version: 0,
            e_type: elf::ET_EXEC,
            e_machine: elf::Machine(machine),
            e_entry: entry,
            e_flags: elf::FileFlags(0),
        })
        .expect("an ELF header fits in memory");
    writer.write_align_program_headers();
    for (segment, &offset) in segments.iter().zip(&offsets) {
        writer.write_program_header(&WriteSegment {
            p_type: elf::PT_LOAD,
            p_flags: elf::ProgramFlags(elf::PF_R.0 | elf::PF_W.0 | elf::PF_X.0),
            p_offset: offset,
            p_vaddr: segment.address,
            p_paddr: segment.address,
            p_filesz: segment.bytes.len() as u64,
            p_memsz: segment.memory_size.max(segment.bytes.len() as u64),
            p_align: ALIGN,
        });
    }
    for segment in segments {
        writer.write_align(ALIGN);
        writer.write(&segment.bytes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = abi::image::CELL_RAM_IPA;

    fn segment(address: u64, bytes: &[u8], memory_size: u64) -> SegmentSpec {
        SegmentSpec {
            address,
            bytes: bytes.to_vec(),
            memory_size,
        }
    }

    #[test]
    fn flattens_segments_by_address_with_zero_fill() {
        let data = write_elf(
            elf::EM_AARCH64.0,
            RAM + 4,
            &[
                segment(RAM + 0x1000, &[5, 6], 4),
                segment(RAM, &[1, 2, 3, 4, 9], 8),
            ],
        );
        let flat = flatten(&data).unwrap();
        assert_eq!(flat.base, RAM);
        assert_eq!(flat.entry, RAM + 4);
        assert_eq!(flat.bytes.len(), 0x1004);
        assert_eq!(&flat.bytes[..8], &[1, 2, 3, 4, 9, 0, 0, 0]);
        assert!(flat.bytes[8..0x1000].iter().all(|&b| b == 0));
        assert_eq!(&flat.bytes[0x1000..], &[5, 6, 0, 0]);
        assert_eq!(flat.file_end, RAM + 0x1002);
    }

    #[test]
    fn cell_images_end_at_their_last_file_byte() {
        // Code, a gap, data, then a pure-bss segment (the stack) above everything.
        let data = write_elf(
            elf::EM_AARCH64.0,
            RAM,
            &[
                segment(RAM, &[1, 2, 3, 4], 0x10),
                segment(RAM + 0x2000, &[7; 8], 0x1000),
                segment(RAM + 0x1_0000, &[], 0x1_0000),
            ],
        );
        let kernel_style = flatten(&data).unwrap();
        assert_eq!(kernel_style.end(), RAM + 0x2_0000);
        assert_eq!(kernel_style.file_end, RAM + 0x2008);
        let cell = load_cell_image(&data, 2 << 20).unwrap();
        assert_eq!(cell.bytes.len(), 0x2008);
        assert_eq!(&cell.bytes[..6], &[1, 2, 3, 4, 0, 0]);
        assert!(cell.bytes[4..0x2000].iter().all(|&b| b == 0));
        assert_eq!(&cell.bytes[0x2000..], &[7; 8]);
        // The bss still counts against the cell's memory.
        assert_eq!(
            load_cell_image(&data, 0x1_8000),
            Err(ImageError::DoesNotFit {
                end: RAM + 0x2_0000,
                ram_end: RAM + 0x1_8000
            })
        );
        // An entry point in the trailing bss is outside the image.
        let entry_in_bss = write_elf(
            elf::EM_AARCH64.0,
            RAM + 0x100,
            &[segment(RAM, &[1; 16], 0x1000)],
        );
        assert_eq!(
            load_cell_image(&entry_in_bss, 2 << 20),
            Err(ImageError::EntryOutside {
                entry: RAM + 0x100,
                start: RAM,
                end: RAM + 16
            })
        );
    }

    #[test]
    fn refuses_what_is_not_an_aarch64_executable() {
        assert_eq!(flatten(b"hello, world"), Err(ImageError::NotElf));
        let x86 = write_elf(elf::EM_X86_64.0, RAM, &[segment(RAM, &[0; 4], 4)]);
        assert_eq!(
            flatten(&x86),
            Err(ImageError::WrongMachine(elf::EM_X86_64.0))
        );
        let mut big_endian = write_elf(elf::EM_AARCH64.0, RAM, &[segment(RAM, &[0; 4], 4)]);
        big_endian[IDENT_DATA] = 2;
        assert_eq!(flatten(&big_endian), Err(ImageError::Not64BitLittleEndian));
        let empty = write_elf(elf::EM_AARCH64.0, RAM, &[]);
        assert_eq!(flatten(&empty), Err(ImageError::NoLoadSegments));
        let mut relocatable = write_elf(elf::EM_AARCH64.0, RAM, &[segment(RAM, &[0; 4], 4)]);
        relocatable[16] = elf::ET_REL.0 as u8;
        assert_eq!(flatten(&relocatable), Err(ImageError::NotExecutable(1)));
    }

    #[test]
    fn cell_images_must_fit_their_ram() {
        let mib = 1 << 20;
        let ok = write_elf(elf::EM_AARCH64.0, RAM, &[segment(RAM, &[1; 16], mib)]);
        // The whole span (1 MiB of bss) must fit, but only the file bytes are kept.
        let loaded = load_cell_image(&ok, 2 * mib).unwrap();
        assert_eq!(loaded.bytes, [1; 16]);
        assert_eq!((loaded.end(), loaded.file_end), (RAM + 16, RAM + 16));
        assert_eq!(
            load_cell_image(&ok, mib / 2),
            Err(ImageError::DoesNotFit {
                end: RAM + mib,
                ram_end: RAM + mib / 2
            })
        );
        let low = write_elf(elf::EM_AARCH64.0, 0x1000, &[segment(0x1000, &[1], 1)]);
        assert_eq!(
            load_cell_image(&low, mib),
            Err(ImageError::BelowCellRam { load: 0x1000 })
        );
        let outside = write_elf(elf::EM_AARCH64.0, RAM + 64, &[segment(RAM, &[1; 16], 16)]);
        assert_eq!(
            load_cell_image(&outside, mib),
            Err(ImageError::EntryOutside {
                entry: RAM + 64,
                start: RAM,
                end: RAM + 16
            })
        );
    }
}
