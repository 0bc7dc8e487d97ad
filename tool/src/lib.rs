//! The Cellvisor host tool: from a TOML system description to a bootable image.
//!
//! This crate owns the pipeline `systems/*.toml` → parse ([`raw`]) → resolve names and
//! validate, collecting every mistake ([`validate`], [`problem`]) → load cell images
//! ([`elf`]) → lay out physical memory and lower to boot-plan records ([`layout`]) → encode
//! with `abi::plan::encode` and pack with the kernel ([`build`]). [`caps`] shows each cell's
//! capability table for auditing. [`guest`] expands `${VARIABLE}`s in image paths and turns
//! a guest's Linux Image and initrd, with a generated device tree, into its memory image.
//!
//! Invariants: a description that [`check`] accepts always lays out and encodes unless the
//! kernel or the exact image sizes make it too big for board RAM (reported by [`build`]);
//! the layout is deterministic; [`build`] writes its output folder atomically, so a failed
//! build leaves nothing behind. The format is documented in `docs/system-description.md`.
#![forbid(unsafe_code)]

pub mod build;
pub mod caps;
pub mod duration;
pub mod elf;
pub mod guest;
pub mod layout;
pub mod problem;
pub mod quantity;
pub mod raw;
pub mod size;
pub mod system;
pub mod validate;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use crate::build::KernelError;
pub use crate::layout::LayoutError;
pub use crate::problem::{Diagnostics, Problem, Style};
pub use crate::system::System;

use crate::elf::Flat;

/// What [`check`] does beyond the description itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// Open every cell image and check it is an AArch64 ELF that fits its cell. When false
    /// the images are not looked at (useful before they are built).
    pub load_images: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { load_images: true }
    }
}

/// A description that passed every check.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The file's name as shown to people.
    pub name: String,
    /// The checked system.
    pub system: System,
    /// The loaded cell images, one per cell (empty without `load_images`).
    pub images: Vec<Flat>,
    /// Each guest cell's layout and device tree, `None` for native cells (empty without
    /// `load_images`).
    pub boots: Vec<Option<guest::Boot>>,
}

impl Checked {
    /// The one-line summary `check` prints.
    pub fn summary(&self) -> String {
        let cells = self.system.cells.len();
        format!(
            "{}: ok — {cells} cell{}, {} core{}, {} of cell memory",
            self.name,
            if cells == 1 { "" } else { "s" },
            self.system.board.cores,
            if self.system.board.cores == 1 {
                ""
            } else {
                "s"
            },
            size::Size(self.system.cell_memory())
        )
    }
}

/// What [`build`] wrote.
#[derive(Clone, Debug)]
pub struct Built {
    /// The checked description.
    pub checked: Checked,
    /// The layout.
    pub layout: layout::Layout,
    /// Path of the bootable image.
    pub image: PathBuf,
    /// Path of the allocation report.
    pub report: PathBuf,
}

/// Why `check` or `build` failed.
#[derive(Debug)]
pub enum Error {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The description has mistakes.
    Invalid(Diagnostics),
    /// The kernel ELF cannot be used.
    Kernel {
        /// The kernel file.
        path: PathBuf,
        /// Why.
        error: KernelError,
    },
    /// The system does not fit the board with this kernel.
    Layout {
        /// The description file.
        path: PathBuf,
        /// Why.
        error: LayoutError,
    },
    /// The output could not be written.
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            Self::Invalid(diagnostics) => write!(f, "{diagnostics}"),
            Self::Kernel { path, error } => {
                write!(f, "kernel {} cannot be used: {error}", path.display())
            }
            Self::Layout { path, error } => write!(f, "{}: {error}", path.display()),
            Self::Write { path, error } => {
                write!(f, "cannot write {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {}

/// Checks a description given as text. `name` is shown in messages; image paths are
/// relative to `base_dir`.
pub fn check_source(
    name: &str,
    text: &str,
    base_dir: &Path,
    options: CheckOptions,
) -> Result<Checked, Diagnostics> {
    let diagnostics = |problems| Diagnostics {
        name: name.to_string(),
        text: text.to_string(),
        problems,
    };
    let raw = raw::parse(text).map_err(|problem| diagnostics(vec![*problem]))?;
    let (system, images, boots) =
        validate::validate(&raw, base_dir, options.load_images).map_err(diagnostics)?;
    Ok(Checked {
        name: name.to_string(),
        system,
        images,
        boots,
    })
}

/// Reads and checks the description at `path`.
pub fn check(path: &Path, options: CheckOptions) -> Result<Checked, Error> {
    let text = std::fs::read_to_string(path).map_err(|error| Error::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    check_source(&path.display().to_string(), &text, base_dir, options).map_err(Error::Invalid)
}

/// Checks `description`, lays it out after `kernel` and writes `cellvisor.img`,
/// `layout.txt` and each guest cell's device tree `<cell>.dtb` into `out_dir` (atomically).
pub fn build(description: &Path, kernel: &Path, out_dir: &Path) -> Result<Built, Error> {
    let checked = check(description, CheckOptions::default())?;
    let kernel_data = std::fs::read(kernel).map_err(|error| Error::Read {
        path: kernel.to_path_buf(),
        error,
    })?;
    let system = &checked.system;
    let loaded =
        build::load_kernel(&kernel_data, system.board.ram_base).map_err(|error| Error::Kernel {
            path: kernel.to_path_buf(),
            error,
        })?;
    let layout_error = |error| Error::Layout {
        path: description.to_path_buf(),
        error,
    };
    let layout = layout::lay_out(system, &checked.images, loaded.flat.base, loaded.image_size)
        .map_err(layout_error)?;
    let mut plan = vec![0u8; layout.plan_len as usize];
    abi::plan::encode(&layout.parts(system), &mut plan)
        .map_err(|error| layout_error(LayoutError::Plan(error)))?;
    let image = build::pack(&layout, &plan, &loaded, &checked.images);
    let mut report = build::report(
        &checked.name,
        system,
        &layout,
        &loaded,
        &plan,
        image.len() as u64,
    );
    report.push_str(&build::guest_report(system, &checked.boots));
    let dtb_files: Vec<(String, &[u8])> = system
        .cells
        .iter()
        .zip(&checked.boots)
        .filter_map(|(cell, boot)| {
            Some((format!("{}.dtb", cell.name), boot.as_ref()?.dtb.as_slice()))
        })
        .collect();
    let mut files = vec![
        (build::IMAGE_FILE, image.as_slice()),
        (build::LAYOUT_FILE, report.as_bytes()),
    ];
    files.extend(dtb_files.iter().map(|(name, dtb)| (name.as_str(), *dtb)));
    build::write_atomically(out_dir, &files)
        .map_err(|(path, error)| Error::Write { path, error })?;
    Ok(Built {
        checked,
        layout,
        image: out_dir.join(build::IMAGE_FILE),
        report: out_dir.join(build::LAYOUT_FILE),
    })
}
