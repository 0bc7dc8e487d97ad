//! The Cellvisor SDK: what a native cell links to start, print, tell time and call the kernel.
//!
//! A native cell is a `#![no_std]`, `#![no_main]` binary for `aarch64-unknown-none`, linked
//! with `cell.ld` (in this crate's directory) and naming its `main` with [`entry!`]:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//!
//! sdk::entry!(main);
//!
//! fn main() {
//!     let info = sdk::hvc::vcpu_info();
//!     sdk::println!("hello from cell {}", info.cell);
//! } // returning exits the cell with code 0
//! ```
//!
//! What this crate owns:
//! - [`start`]: `_start` (the image's first byte), the EL1 vector table, the [`entry!`] macro
//!   and the SDK's exit codes;
//! - [`hvc`]: one safe function per hypercall of [`abi::hvc`], plus the counter reads;
//! - [`time`]: instants and durations on the system counter, spinning and sleeping;
//! - [`console`]: [`print!`] and [`println!`] through a line-buffering writer;
//! - the panic handler, which prints `panic: <message> at <file>:<line>` and exits with
//!   [`start::EXIT_CODE_PANIC`].
//!
//! Invariants: `unsafe` appears only in `hvc.rs` (the `hvc #0` instruction and two counter
//! reads) and in the start-up assembly of `start.rs`; everything else is safe Rust. The SDK
//! never allocates. It runs with the stage-1 MMU off, so an address is an IPA.
//!
//! The SDK targets bare-metal AArch64 (`target_os = "none"`). On any other target it builds
//! against an in-process fake kernel (`hvc::host`) so that `cargo test -p cellvisor-sdk`
//! runs its unit tests on a workstation; that build cannot run a cell.
//! `sdk/smoke/run.sh` boots the shipped cells in QEMU under a throwaway EL2 stub.
#![no_std]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod console;
pub mod hvc;
mod panic;
pub mod start;
pub mod time;

pub use abi;
