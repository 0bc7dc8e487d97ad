//! Cellvisor kernel core: the EL2 kernel's arch-independent logic, tested on the host.
//!
//! This crate owns the decisions the kernel makes that do not need the hardware, so that
//! they can be unit-tested with `cargo test -p cellvisor-kcore`:
//! - [`pagetable`]: building VMSAv8-64 translation tables (EL2 stage 1 and stage 2) in
//!   memory the kernel lends it, and the matching `MAIR_EL2`/`TCR_EL2`/`VTCR_EL2` values;
//! - [`sched`]: the per-core fixed-priority scheduler with round robin and budgets;
//! - [`console`]: turning a cell's console writes into whole, sanitised, name-prefixed lines;
//! - [`console_input`]: which guest cell typed input goes to, and the key sequence that moves it;
//! - [`debug`]: what a cell's trapped access to a debug register does;
//! - [`esr`]: decoding `ESR_EL2` for exceptions taken from a cell;
//! - [`platform_check`]: re-checking a decoded boot plan against the real board;
//! - [`vgic`]: each vCPU's pending virtual interrupts and the GICv3 list registers;
//! - [`wake`]: each core's timed wake-ups of blocked vCPUs;
//! - [`fault_queue`]: fault reports waiting for a supervisor cell;
//! - [`ipc`]: an IPC endpoint's queued callers and servers, and who gets which reply;
//! - [`notification`]: a notification's word of event bits and its blocked waiter;
//! - [`capability`]: the rule deciding whether a capability slot may be used for a call;
//! - [`mmio`]: decoding a guest's trapped load or store to an emulated device;
//! - [`psci`]: a guest's PSCI and SMCCC firmware calls and each vCPU's power state;
//! - [`vuart`]: an emulated PL011 UART for a guest;
//! - [`vgic_distributor`]: a guest's emulated GICv3 distributor and redistributors.
//!
//! Invariants: `no_std` outside tests, no allocator, no `unsafe`. Nothing here panics on
//! values that come from a cell or from the boot plan: every index into a fixed table is
//! either masked into range or looked up with `get`, and address arithmetic is checked.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod boot_seed;
pub mod capability;
pub mod cell;
pub mod chacha;
pub mod console;
pub mod console_input;
pub mod debug;
pub mod device_tree;
pub mod esr;
pub mod fault_queue;
pub mod hypercall;
pub mod ipc;
pub mod mmio;
pub mod notification;
pub mod pagetable;
pub mod platform_check;
pub mod psci;
pub mod sched;
#[cfg(test)]
mod test_random;
pub mod vgic;
pub mod vgic_distributor;
pub mod vuart;
pub mod wake;

/// The indices of the set bits of `bits`, lowest first.
pub fn set_bits(mut bits: u64) -> impl Iterator<Item = u32> {
    core::iter::from_fn(move || {
        let bit = (bits != 0).then(|| bits.trailing_zeros())?;
        bits &= bits - 1;
        Some(bit)
    })
}
