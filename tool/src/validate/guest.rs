//! A cell's image paths (`${VARIABLE}` expansion, for every kind of cell) and a guest
//! cell's boot settings and images: its Linux Image, initrd and the generated device tree,
//! placed in its RAM (see `crate::guest`).
//!
//! Path and key checks run per cell while drafting; images are read only when asked for;
//! the device trees are written last, once the shared memory mapped into each guest is
//! known.

use std::path::{Path, PathBuf};

use abi::plan::CellKind;
use toml::Spanned;

use super::Checker;
use crate::elf::Flat;
use crate::guest::{self, tree, Boot, Placement};
use crate::problem::{GuestProblem, Problem};
use crate::raw::RawCell;
use crate::system::{Guest, System};

/// A guest's images, read and placed, before its device tree is written.
pub(super) struct GuestImages {
    kernel: Vec<u8>,
    initrd: Vec<u8>,
    placement: Placement,
}

impl Checker {
    /// Expands the `${VARIABLE}`s of a path value, reporting what cannot be expanded.
    pub(super) fn expanded_path(&mut self, value: &Spanned<String>) -> Option<PathBuf> {
        guest::expand(value.get_ref(), guest::lookup)
            .map(PathBuf::from)
            .map_err(|reason| {
                self.report(Problem::Guest(GuestProblem::Expand {
                    span: value.span(),
                    reason,
                }))
            })
            .ok()
    }

    /// A cell's guest settings: `Some(Some(_))` for a correct guest, `Some(None)` for a
    /// correct native cell, `None` after a mistake.
    pub(super) fn guest_settings(
        &mut self,
        cell: &RawCell,
        kind: Option<CellKind>,
    ) -> Option<Option<Guest>> {
        let initrd = cell
            .initrd
            .as_ref()
            .map(|initrd| self.expanded_path(initrd));
        if kind == Some(CellKind::Native) {
            let keys = [
                ("initrd", cell.initrd.as_ref().map(|v| v.span())),
                ("bootargs", cell.bootargs.as_ref().map(|v| v.span())),
                ("virtio-mmio", cell.virtio_mmio.as_ref().map(|v| v.span())),
            ];
            let mut ok = true;
            for (key, span) in keys {
                if let Some(span) = span {
                    self.report(Problem::Guest(GuestProblem::KeyOnNative { span, key }));
                    ok = false;
                }
            }
            return ok.then_some(None);
        }
        let virtio_mmio = match &cell.virtio_mmio {
            None => Some(0),
            Some(value) => match u8::try_from(*value.get_ref()) {
                Ok(count) if count <= tree::MAX_VIRTIO_MMIO => Some(count),
                _ => {
                    self.report(Problem::Guest(GuestProblem::TooManyVirtio {
                        span: value.span(),
                        count: *value.get_ref(),
                    }));
                    None
                }
            },
        };
        let initrd = match initrd {
            Some(path) => Some(Some(path?)),
            None => Some(None),
        };
        kind?;
        Some(Some(Guest {
            bootargs: cell
                .bootargs
                .as_ref()
                .map_or_else(String::new, |b| b.get_ref().clone()),
            initrd: initrd?,
            virtio_mmio: virtio_mmio?,
        }))
    }

    /// Reads a guest's kernel and initrd (paths as written, expanded) and places them in
    /// its `memory`.
    pub(super) fn guest_images(
        &mut self,
        cell: &RawCell,
        base_dir: &Path,
        image: &Path,
        guest: &Guest,
        memory: Option<u64>,
    ) -> Option<GuestImages> {
        let path = base_dir.join(image);
        if !path.is_file() {
            self.report(Problem::MissingImage {
                span: cell.image.span(),
                path: image.to_path_buf(),
            });
            return None;
        }
        let kernel = match std::fs::read(&path) {
            Ok(data) => data,
            Err(error) => {
                self.report(Problem::BadImage {
                    span: cell.image.span(),
                    path: image.to_path_buf(),
                    reason: crate::elf::ImageError::Unreadable(error.to_string()),
                });
                return None;
            }
        };
        let header = guest::read_kernel(&kernel)
            .map_err(|reason| {
                self.report(Problem::Guest(GuestProblem::BadKernel {
                    span: cell.image.span(),
                    path: image.to_path_buf(),
                    reason,
                }))
            })
            .ok();
        let initrd = match (&guest.initrd, &cell.initrd) {
            (Some(initrd), Some(value)) => match std::fs::read(base_dir.join(initrd)) {
                Ok(data) => Some(data),
                Err(_) => {
                    self.report(Problem::Guest(GuestProblem::MissingInitrd {
                        span: value.span(),
                        path: initrd.clone(),
                    }));
                    None
                }
            },
            _ => Some(Vec::new()),
        };
        let (header, initrd, memory) = (header?, initrd?, memory?);
        match guest::place(header, initrd.len() as u64, memory) {
            Ok(placement) => Some(GuestImages {
                kernel,
                initrd,
                placement,
            }),
            Err(too_big) => {
                self.report(Problem::Guest(GuestProblem::MemoryTooSmall {
                    span: cell.memory.span(),
                    cell: cell.name.get_ref().clone(),
                    needed: too_big.needed,
                    memory,
                }));
                None
            }
        }
    }

    /// Writes the device tree of the guest `index` of `system` and assembles its memory
    /// image.
    pub(super) fn guest_boot(
        &mut self,
        system: &System,
        index: usize,
        cell: &RawCell,
        images: GuestImages,
    ) -> Option<(Flat, Boot)> {
        let described = &system.cells[index];
        let guest = described.guest.as_ref()?;
        let placement = images.placement;
        let reserved = system
            .memories
            .iter()
            .flat_map(|memory| {
                memory
                    .maps
                    .iter()
                    .filter(|map| map.cell == index)
                    .map(move |map| (memory.name.as_str(), map.ipa, memory.size))
            })
            .collect();
        let spec = tree::TreeSpec {
            vcpus: described.vcpus,
            memory: described.memory,
            bootargs: &guest.bootargs,
            initrd: (placement.initrd_size != 0).then(|| {
                (
                    placement.initrd_ipa,
                    placement.initrd_ipa + placement.initrd_size,
                )
            }),
            virtio_mmio: guest.virtio_mmio,
            reserved,
        };
        let span = cell
            .bootargs
            .as_ref()
            .map_or_else(|| cell.name.span(), |b| b.span());
        let dtb = match tree::device_tree(&spec) {
            Ok(dtb) if dtb.len() as u64 <= guest::DTB_SLOT => dtb,
            Ok(dtb) => {
                self.report(Problem::Guest(GuestProblem::DeviceTree {
                    span,
                    reason: format!("{} bytes, more than the 2 MiB slot", dtb.len()),
                }));
                return None;
            }
            Err(error) => {
                self.report(Problem::Guest(GuestProblem::DeviceTree {
                    span,
                    reason: error.to_string(),
                }));
                return None;
            }
        };
        let flat = guest::assemble(&images.kernel, &images.initrd, &dtb, &placement);
        Some((flat, Boot { placement, dtb }))
    }
}
