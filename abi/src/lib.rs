//! Cellvisor's ABI: what the kernel, native cells and the host tool must agree on.
//!
//! This crate owns every constant and layout that crosses a boundary:
//! - [`hvc`]: hypercall numbers, argument registers and error codes (cell ↔ kernel);
//! - [`addr`]: address and identifier newtypes with checked arithmetic;
//! - [`plan`]: the binary boot plan the tool writes and the kernel decodes (tool ↔ kernel);
//! - [`device`]: how a guest's access to a virtual device reaches the device-model cell;
//! - [`image`]: where the plan and the cell images sit in the bootable image.
//!
//! Invariants: `no_std`, no allocation, no `unsafe`. Every multi-byte value on the wire is
//! little-endian and encoded field by field, never by transmuting structs, so the layouts
//! here are the layouts on the wire.
#![no_std]
#![forbid(unsafe_code)]

pub mod addr;
pub mod device;
pub mod hvc;
pub mod image;
pub mod plan;

pub use addr::{CellId, CoreId, Ipa, Pa};
