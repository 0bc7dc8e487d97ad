//! Drivers for the devices the kernel itself uses.

pub mod pl011;
