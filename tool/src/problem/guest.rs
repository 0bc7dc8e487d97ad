//! Mistakes specific to guest cells and to image paths: `${VARIABLE}` expansion, guest
//! keys on native cells, Linux Images, initrds and guest memory, and how each is shown (the
//! same three parts as every [`super::Problem`]: message, help, labels).

use std::path::PathBuf;

use crate::guest::{ExpandError, KernelImageError, GUEST_VARIABLE};
use crate::size::Size;

use super::Span;

/// A mistake in a guest cell or an image path.
#[derive(Debug)]
pub enum GuestProblem {
    /// An `image` or `initrd` path whose `${VARIABLE}` cannot be expanded.
    Expand {
        /// The path.
        span: Span,
        /// Why.
        reason: ExpandError,
    },
    /// `initrd`, `bootargs` or `virtio-mmio` on a native cell.
    KeyOnNative {
        /// The key's value.
        span: Span,
        /// The key.
        key: &'static str,
    },
    /// More virtio-mmio slots than the guest's interrupt range holds.
    TooManyVirtio {
        /// The value.
        span: Span,
        /// The value given.
        count: i64,
    },
    /// A guest kernel that is not a usable arm64 Linux Image.
    BadKernel {
        /// The `image` value.
        span: Span,
        /// The expanded path.
        path: PathBuf,
        /// Why.
        reason: KernelImageError,
    },
    /// An initrd that does not exist or cannot be read.
    MissingInitrd {
        /// The `initrd` value.
        span: Span,
        /// The expanded path.
        path: PathBuf,
    },
    /// The kernel, DTB and initrd do not fit in the guest's `memory`.
    MemoryTooSmall {
        /// The `memory` value.
        span: Span,
        /// The cell.
        cell: String,
        /// Bytes needed from the guest's RAM base.
        needed: u64,
        /// The guest's memory.
        memory: u64,
    },
    /// The device tree cannot be written (a NUL in `bootargs`).
    DeviceTree {
        /// The `bootargs` value, or the cell's name.
        span: Span,
        /// Why.
        reason: String,
    },
}

impl GuestProblem {
    /// The one-line message.
    pub fn message(&self) -> String {
        match self {
            Self::Expand { reason, .. } => format!("cannot expand the path: {reason}"),
            Self::KeyOnNative { key, .. } => format!("`{key}` is only for guest cells"),
            Self::TooManyVirtio { count, .. } => {
                format!("{count} virtio-mmio slots is out of range")
            }
            Self::BadKernel { path, reason, .. } => {
                format!("guest image `{}` is not usable: {reason}", path.display())
            }
            Self::MissingInitrd { path, .. } => {
                format!("initrd `{}` does not exist", path.display())
            }
            Self::MemoryTooSmall {
                cell,
                needed,
                memory,
                ..
            } => format!(
                "guest `{cell}` needs {} for its kernel, device tree and initrd but has {}",
                Size(*needed),
                Size(*memory)
            ),
            Self::DeviceTree { reason, .. } => {
                format!("the guest's device tree cannot be written: {reason}")
            }
        }
    }

    /// How to fix it.
    pub fn help(&self) -> String {
        match self {
            Self::Expand {
                reason: ExpandError::Unset(name),
                ..
            } if name == GUEST_VARIABLE => format!(
                "set `{GUEST_VARIABLE}` to the folder of the guest images; unset, it defaults to ${{XDG_CACHE_HOME:-$HOME/.cache}}/cellvisor/guest, but neither XDG_CACHE_HOME nor HOME is set"
            ),
            Self::Expand {
                reason: ExpandError::Unset(name),
                ..
            } => format!("set `{name}` in the environment, or write the path without it"),
            Self::Expand { .. } => {
                "write variables as ${NAME}, with letters, digits and `_`".to_string()
            }
            Self::KeyOnNative { .. } => {
                "remove it, or make the cell a guest (kind = \"guest\")".to_string()
            }
            Self::TooManyVirtio { .. } => format!(
                "use 0 to {} slots",
                crate::guest::tree::MAX_VIRTIO_MMIO
            ),
            Self::BadKernel { .. } => "point `image` at a raw arm64 Linux Image (arch/arm64/boot/Image, or `cargo xtask guest-images`), not a vmlinux ELF or a compressed Image".to_string(),
            Self::MissingInitrd { .. } => "fetch the guest images (`cargo xtask guest-images`), or fix the path (it is relative to this file's folder)".to_string(),
            Self::MemoryTooSmall { needed, .. } => format!(
                "raise `memory` to more than {} (Linux needs room to run beyond its images), or use a smaller initrd",
                Size(*needed)
            ),
            Self::DeviceTree { .. } => "remove NUL characters from `bootargs`".to_string(),
        }
    }

    /// The underlined spans, the first being the primary one.
    pub fn labels(&self) -> Vec<(Span, String)> {
        match self {
            Self::Expand { span, reason } => vec![(span.clone(), reason.to_string())],
            Self::KeyOnNative { span, .. } => {
                vec![(span.clone(), "the cell is native".to_string())]
            }
            Self::TooManyVirtio { span, .. } => vec![(
                span.clone(),
                format!("must be 0 to {}", crate::guest::tree::MAX_VIRTIO_MMIO),
            )],
            Self::BadKernel { span, reason, .. } => vec![(span.clone(), reason.to_string())],
            Self::MissingInitrd { span, .. } => vec![(span.clone(), "no such file".to_string())],
            Self::MemoryTooSmall { span, needed, .. } => vec![(
                span.clone(),
                format!("the images end {} into guest RAM", Size(*needed)),
            )],
            Self::DeviceTree { span, reason } => vec![(span.clone(), reason.clone())],
        }
    }
}
