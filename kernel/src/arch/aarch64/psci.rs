//! PSCI calls to the firmware (on QEMU `virt` with virtualization, QEMU itself), by SMC.

const CPU_ON: u64 = 0xc400_0003;

/// Starts the core with affinity `mpidr` at physical address `entry` with x0 = `context`.
/// Returns the PSCI status (0 = success).
pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> i64 {
    let status: u64;
    // An SMC to the PSCI firmware with the SMC calling convention: x0..x3 in, x0 out,
    // x0..x17 may be clobbered (declared below).
    // SAFETY: CPU_ON starts another core at the kernel's secondary entry; no memory changes.
    unsafe {
        core::arch::asm!(
            "smc #0",
            inout("x0") CPU_ON => status,
            inout("x1") mpidr => _,
            inout("x2") entry => _,
            inout("x3") context => _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack)
        )
    };
    status as i64
}
