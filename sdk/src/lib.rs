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
//! - [`start`]: `_start` (the image's first byte), the EL1 vector table (with the IRQ entry),
//!   the [`entry!`] macro, the restart count and the SDK's exit codes;
//! - [`hvc`]: one safe function per hypercall of [`abi::hvc`] (the cell-control calls are in
//!   [`cell`]);
//! - [`cell`]: the null call, cell control and status, fault reports (for supervisors);
//! - [`time`]: instants and durations on the system counter, spinning and blocking sleep;
//! - [`timer`]: the EL1 virtual timer (INTID 27);
//! - [`interrupts`]: the virtual GIC CPU interface, IRQ masking and the IRQ handler;
//! - [`pmu`]: the cycle counter, for benchmarks;
//! - [`ipc`]: calling an endpoint ([`ipc::Endpoint`]) and serving one ([`ipc::Server`]);
//! - [`notification`]: signalling and waiting for notification bits;
//! - [`caps`]: describing capability slots, shared memory regions;
//! - [`ring`]: a single-producer single-consumer ring in a shared region, safe against a
//!   peer that writes garbage into it;
//! - [`virtio`]: a virtio-mmio device model (register file, split virtqueues over guest
//!   memory, virtio-console) for cells that serve a guest's virtio slot;
//! - [`console`]: [`print!`] and [`println!`] through a line-buffering writer, and
//!   [`console::Line`], a formatter that needs no `core::fmt` (no FP/SIMD registers);
//! - the panic handler, which prints `panic: <message> at <file>:<line>` and exits with
//!   [`start::EXIT_CODE_PANIC`].
//!
//! Invariants: `unsafe` appears only in `hvc.rs` (the `hvc` instruction), `registers.rs`
//! (system registers and `wfi`), `interrupts.rs` (the handler slot), `caps.rs` (a shared
//! memory capability's range as atomic words or bytes) and in the start-up and vector
//! assembly of `start.rs`; everything else is safe Rust. Memory shared with other cells is only ever
//! accessed through atomics. The SDK never allocates. It
//! runs with the stage-1 MMU off, so an address is an IPA.
//!
//! The SDK targets bare-metal AArch64 (`target_os = "none"`). On any other target it builds
//! against an in-process fake kernel (`host`) so that `cargo test -p cellvisor-sdk` runs
//! its unit tests on a workstation; that build cannot run a cell. The cells themselves are
//! run by the kernel's QEMU tests (`cargo xtask test`).
#![no_std]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod caps;
pub mod cell;
pub mod console;
#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
pub mod host;
pub mod hvc;
pub mod interrupts;
pub mod ipc;
pub mod notification;
mod panic;
pub mod pmu;
mod registers;
pub mod ring;
pub mod start;
pub mod time;
pub mod timer;
pub mod virtio;

pub use abi;
