//! AArch64 at EL2 (non-VHE, ARMv8.0): everything that touches system registers, device
//! registers or raw memory lives below this module, each file owning one piece of
//! hardware.

pub mod bulk;
pub mod context;
pub mod entry;
pub mod exception;
pub mod gic;
pub mod mmio;
pub mod mmu;
pub mod psci;
pub mod sysreg;
pub mod timer;
pub mod vgic;
