//! Architecture support. Cellvisor runs on AArch64 only; the module split keeps the
//! hardware-facing code in one place.

mod aarch64;
pub use aarch64::*;
