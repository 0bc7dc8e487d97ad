//! `cellvisor build`: the kernel, the plan and the cell images packed into one image, plus
//! a report of every allocation, written atomically.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use abi::plan::{self, RegionKind, Rights};

use crate::duration::Duration;
use crate::elf::{self, Flat, ImageError};
use crate::layout::{image_offsets, Layout};
use crate::size::Size;
use crate::system::System;

/// Name of the bootable image inside the output folder.
pub const IMAGE_FILE: &str = "cellvisor.img";
/// Name of the allocation report inside the output folder.
pub const LAYOUT_FILE: &str = "layout.txt";

/// Why a kernel ELF cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// It is not a usable AArch64 ELF executable.
    Elf(ImageError),
    /// Its first loaded byte is not an arm64 Image header.
    NoImageHeader,
    /// It is linked for another address than board RAM base + `text_offset`.
    WrongBase {
        /// Lowest `p_paddr`.
        kernel_base: u64,
        /// Where QEMU will load it.
        expected: u64,
    },
    /// Its segments extend past the header's `image_size`.
    SegmentsPastImageSize {
        /// Bytes the segments span.
        span: u64,
        /// The header's `image_size`.
        image_size: u64,
    },
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Elf(error) => write!(f, "{error}"),
            Self::NoImageHeader => {
                write!(f, "its first loadable segment does not start with an arm64 Image header")
            }
            Self::WrongBase {
                kernel_base,
                expected,
            } => write!(
                f,
                "it is linked at {kernel_base:#x}, but the board loads it at {expected:#x} (RAM base + text_offset): the kernel is linked for another address"
            ),
            Self::SegmentsPastImageSize { span, image_size } => write!(
                f,
                "its segments span {span:#x} bytes, more than the header's image_size {image_size:#x}"
            ),
        }
    }
}

/// A kernel ready to pack.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// Its flattened memory image, starting with the arm64 Image header.
    pub flat: Flat,
    /// `text_offset` from the header.
    pub text_offset: u64,
    /// `image_size` from the header: the kernel's whole footprint.
    pub image_size: u64,
}

/// Loads the kernel ELF and checks it against the board's RAM base.
pub fn load_kernel(data: &[u8], ram_base: u64) -> Result<Kernel, KernelError> {
    let flat = elf::flatten(data).map_err(KernelError::Elf)?;
    let (text_offset, image_size) =
        abi::image::read_header(&flat.bytes).ok_or(KernelError::NoImageHeader)?;
    let expected = ram_base.wrapping_add(text_offset);
    if flat.base != expected {
        return Err(KernelError::WrongBase {
            kernel_base: flat.base,
            expected,
        });
    }
    let span = flat.bytes.len() as u64;
    if span > image_size {
        return Err(KernelError::SegmentsPastImageSize { span, image_size });
    }
    Ok(Kernel {
        flat,
        text_offset,
        image_size,
    })
}

/// Packs the image: kernel padded to the plan offset, the plan, the cell images.
pub fn pack(layout: &Layout, plan: &[u8], kernel: &Kernel, images: &[Flat]) -> Vec<u8> {
    let plan_start = layout.plan_offset as usize;
    let mut out = vec![0u8; plan_start + layout.payload_len as usize];
    out[..kernel.flat.bytes.len()].copy_from_slice(&kernel.flat.bytes);
    out[plan_start..plan_start + plan.len()].copy_from_slice(plan);
    for ((offset, size), image) in image_offsets(layout).zip(images) {
        let at = plan_start + offset as usize;
        out[at..at + size as usize].copy_from_slice(&image.bytes);
    }
    out
}

fn rights_text(rights: Rights) -> String {
    [(Rights::R, 'r'), (Rights::W, 'w'), (Rights::X, 'x')]
        .iter()
        .map(|&(bit, letter)| if rights.contains(bit) { letter } else { '-' })
        .collect()
}

/// The readable allocation report written as `layout.txt`.
pub fn report(
    description: &str,
    system: &System,
    layout: &Layout,
    kernel: &Kernel,
    plan: &[u8],
    image_len: u64,
) -> String {
    let board = &system.board;
    let plan_pa = layout.kernel_base + layout.plan_offset;
    let checksum = plan::Plan::decode(plan).map_or(0, |p| p.checksum());
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!("Cellvisor layout of {description}"));
    line(String::new());
    line(format!(
        "board    {}: RAM {:#x}..{:#x} ({}), {} cores",
        board.name,
        board.ram_base,
        board.ram_base + board.ram_size,
        Size(board.ram_size),
        board.cores
    ));
    line(format!(
        "kernel   PA {:#x}..{:#x} (image_size {:#x}, text_offset {:#x}, {:#x} bytes in the file)",
        layout.kernel_base,
        layout.kernel_base + kernel.image_size,
        kernel.image_size,
        kernel.text_offset,
        kernel.flat.bytes.len()
    ));
    line(format!(
        "plan     PA {:#x}..{:#x} (offset {:#x} in the image, {} bytes, version {}, checksum {:#010x})",
        plan_pa,
        plan_pa + layout.plan_len,
        layout.plan_offset,
        layout.plan_len,
        plan::VERSION,
        checksum
    ));
    line(format!(
        "payload  {:#x} bytes from the plan's start; image file {:#x} bytes, ends at PA {:#x}",
        layout.payload_len,
        image_len,
        layout.kernel_base + image_len
    ));
    line(String::new());
    line("cell images (offsets from the plan's start)".to_string());
    for (cell, record) in system.cells.iter().zip(&layout.cells) {
        line(format!(
            "  {:<16} offset {:#08x} size {:#08x} load IPA {:#x} entry IPA {:#x}",
            cell.name, record.image_offset, record.image_size, record.load_ipa, record.entry_ipa
        ));
    }
    line(String::new());
    line("physical memory".to_string());
    for (cell, &pa) in system.cells.iter().zip(&layout.cell_ram) {
        line(format!(
            "  {:#x}..{:#x} {:>8} RAM of cell `{}`",
            pa,
            pa + cell.memory,
            Size(cell.memory).to_string(),
            cell.name
        ));
    }
    for (memory, &pa) in system.memories.iter().zip(&layout.shared) {
        line(format!(
            "  {:#x}..{:#x} {:>8} shared memory `{}`",
            pa,
            pa + memory.size,
            Size(memory.size).to_string(),
            memory.name
        ));
    }
    line(format!(
        "  used {:#x}..{:#x} of RAM {:#x}..{:#x}",
        board.ram_base,
        layout.end,
        board.ram_base,
        board.ram_base + board.ram_size
    ));
    line(String::new());
    line("cells".to_string());
    for (index, (cell, record)) in system.cells.iter().zip(&layout.cells).enumerate() {
        let cores: Vec<String> = cell
            .cores
            .iter()
            .map(|&core| {
                if core == plan::ANY_CORE {
                    "any".to_string()
                } else {
                    core.to_string()
                }
            })
            .collect();
        let fault = match cell.fault {
            plan::FaultPolicy::Stop => "stop".to_string(),
            plan::FaultPolicy::Restart => format!("restart (limit {})", cell.restart_limit),
            plan::FaultPolicy::Report => match cell.supervisor {
                Some(supervisor) => format!("report to `{}`", system.cells[supervisor].name),
                None => "report".to_string(),
            },
        };
        line(format!(
            "  [{index}] {}: {:?}, priority {}, {} vCPU on cores [{}], fault {fault}",
            cell.name,
            cell.kind,
            cell.priority,
            cell.vcpus,
            cores.join(", "),
        ));
        let budget = match cell.budget {
            Some(budget) => format!(
                "{} every {}",
                Duration(budget.budget_us.into()),
                Duration(budget.period_us.into())
            ),
            None => "unlimited".to_string(),
        };
        let controls = if cell.controls.is_empty() {
            "none".to_string()
        } else {
            let names: Vec<String> = cell
                .controls
                .iter()
                .map(|&controlled| format!("`{}`", system.cells[controlled].name))
                .collect();
            names.join(", ")
        };
        line(format!(
            "      budget {budget}; FP/SIMD {}; controls {controls}{}",
            if cell.fp { "on" } else { "off (trapped)" },
            if cell.el0 { "; runs at EL0" } else { "" }
        ));
        let first = record.first_region as usize;
        for region in &layout.regions[first..first + record.region_count as usize] {
            let kind = match region.kind {
                RegionKind::Ram => "ram",
                RegionKind::Shared => "shared",
                RegionKind::Foreign => "foreign",
                RegionKind::Device => "device",
            };
            line(format!(
                "      {kind:<7} IPA {:#x}..{:#x} -> PA {:#x} {:>8} {}",
                region.ipa,
                region.ipa + region.size,
                region.pa,
                Size(region.size).to_string(),
                rights_text(region.rights)
            ));
        }
    }
    if !system.devices.is_empty() {
        line(String::new());
        line("interrupts".to_string());
        for device in &system.devices {
            for irq in &device.irqs {
                line(format!(
                    "  INTID {irq} of device `{}` -> cell `{}` vCPU 0",
                    device.name, system.cells[device.cell].name
                ));
            }
        }
    }
    if !system.channels.is_empty() {
        line(String::new());
        line("channels".to_string());
        for channel in &system.channels {
            line(format!(
                "  {} -> {}",
                system.cells[channel.from].name, system.cells[channel.to].name
            ));
        }
    }
    line(String::new());
    line("capability tables".to_string());
    for text in crate::caps::tables(system).lines() {
        line(format!("  {text}"));
    }
    out
}

/// The guest section of `layout.txt`: each guest's kernel, DTB and initrd IPAs and sizes
/// (empty without guests).
pub fn guest_report(system: &System, boots: &[Option<crate::guest::Boot>]) -> String {
    let mut out = String::new();
    for (cell, boot) in system.cells.iter().zip(boots) {
        let (Some(boot), Some(guest)) = (boot, &cell.guest) else {
            continue;
        };
        if out.is_empty() {
            out.push_str("\nguests (IPAs; x0 = DTB IPA at entry)\n");
        }
        let placement = &boot.placement;
        out.push_str(&format!(
            "  {}: {} vCPU, {} RAM at {:#x}, {} virtio-mmio slot(s)\n",
            cell.name,
            cell.vcpus,
            Size(cell.memory),
            abi::image::CELL_RAM_IPA,
            guest.virtio_mmio
        ));
        out.push_str(&format!(
            "      kernel IPA {:#x}..{:#x} (image_size {:#x}), entry {:#x}\n",
            placement.kernel_ipa,
            placement.kernel_ipa + placement.kernel_size,
            placement.kernel_size,
            placement.kernel_ipa
        ));
        out.push_str(&format!(
            "      dtb    IPA {:#x}..{:#x} ({} bytes, {}.dtb)\n",
            placement.dtb_ipa,
            placement.dtb_ipa + boot.dtb.len() as u64,
            boot.dtb.len(),
            cell.name
        ));
        if placement.initrd_size == 0 {
            out.push_str("      initrd none\n");
        } else {
            out.push_str(&format!(
                "      initrd IPA {:#x}..{:#x} ({} bytes)\n",
                placement.initrd_ipa,
                placement.initrd_ipa + placement.initrd_size,
                placement.initrd_size
            ));
        }
        out.push_str(&format!("      bootargs \"{}\"\n", guest.bootargs));
    }
    out
}

/// Writes `files` into `out_dir` atomically: into a fresh sibling folder first, renamed into
/// place once complete (a previous `out_dir` is replaced). On error nothing is left behind.
pub fn write_atomically(
    out_dir: &Path,
    files: &[(&str, &[u8])],
) -> Result<(), (PathBuf, io::Error)> {
    let parent = match out_dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string());
    fs::create_dir_all(&parent).map_err(|e| (parent.clone(), e))?;
    let temporary = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let result = (|| {
        if temporary.exists() {
            fs::remove_dir_all(&temporary).map_err(|e| (temporary.clone(), e))?;
        }
        fs::create_dir(&temporary).map_err(|e| (temporary.clone(), e))?;
        for (file, bytes) in files {
            let path = temporary.join(file);
            fs::write(&path, bytes).map_err(|e| (path, e))?;
        }
        let previous = parent.join(format!(".{name}.previous-{}", std::process::id()));
        let replaced = out_dir.exists();
        if replaced {
            fs::rename(out_dir, &previous).map_err(|e| (out_dir.to_path_buf(), e))?;
        }
        if let Err(error) = fs::rename(&temporary, out_dir) {
            if replaced {
                // Put the previous output back; the build error is what matters.
                let _ = fs::rename(&previous, out_dir);
            }
            return Err((out_dir.to_path_buf(), error));
        }
        if replaced {
            fs::remove_dir_all(&previous).map_err(|e| (previous, e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&temporary);
    }
    result
}
