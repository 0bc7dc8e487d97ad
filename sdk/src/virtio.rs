//! A virtio-mmio device model: what a native cell needs to serve a guest's virtio slot.
//!
//! The kernel turns each guest load or store in a virtio-mmio slot into an IPC call on the
//! endpoint of the cell modelling the device ([`abi::device`]); the cell decodes it into an
//! [`Access`](abi::device::Access), hands it to an [`MmioDevice`] and replies with
//! [`Outcome::value`]. The device reads and writes the guest's virtqueues in guest RAM,
//! which the cell holds as a shared memory capability (`SharedMemory::words`, on bare metal)
//! seen through [`GuestRam`]. When [`Outcome::interrupt`] is set the cell signals the
//! notification that raises the guest's virtio interrupt.
//!
//! The parts:
//! - [`memory`]: [`GuestMemory`], loads and stores at guest-physical addresses, every one
//!   bounds-checked, and [`GuestRam`], its implementation over atomic words;
//! - [`queue`]: split virtqueues (VIRTIO 1.x §2.7): taking the next available descriptor
//!   chain, reading and writing its buffers, returning it through the used ring;
//! - [`mmio`]: the version 2 (modern) virtio-mmio register file (VIRTIO 1.x §4.2.2) around
//!   any [`Device`]: status, feature negotiation, queue set-up, notifications, interrupt
//!   status, device configuration space;
//! - [`console`]: virtio-console (device ID 3, one port, no multiport), with bounded buffers
//!   for the bytes the driver transmitted and the bytes waiting for the driver.
//!
//! Invariants, whatever the guest writes into its memory or registers: nothing here
//! panics, allocates or uses `unsafe`; every guest-physical address and every index read
//! from guest memory is checked before use (an address against guest RAM, a descriptor
//! index against the queue size); a descriptor chain is at most the queue size long (a
//! longer one is a loop); the work done for one access is bounded by the queue sizes and
//! the buffer capacities. A queue the driver corrupts makes the device set
//! DEVICE_NEEDS_RESET and raise a configuration-change interrupt (the register file keeps
//! answering; the queues are left alone until the driver resets the device).
//!
//! Ordering with the guest's CPUs: the device loads the available ring's index with
//! `Acquire` before reading the entries and descriptors it covers, and writes each used
//! element before storing the used ring's index with `Release`. Both indices are accessed
//! with single-copy-atomic 16-bit accesses (on the 64-bit word that holds them), so the
//! driver never sees half an update.
//!
//! Not offered: VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC (an indirect descriptor is a
//! corrupt queue), packed virtqueues, shared memory regions (their registers read 0).
//! VIRTQ_AVAIL_F_NO_INTERRUPT is ignored: the device interrupts whenever it used buffers,
//! which the spec allows.

#![forbid(unsafe_code)]

pub mod console;
pub mod memory;
pub mod mmio;
pub mod queue;

pub use console::Console;
pub use memory::{GuestMemory, GuestRam, MemoryError};
pub use mmio::{Device, MmioDevice, Outcome};
pub use queue::{Chain, Queue, QueueError};

#[cfg(test)]
mod tests;
