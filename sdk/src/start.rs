//! Start-up: from the kernel's hand-over at `_start` to the cell's `main`.
//!
//! The kernel enters `_start` (placed at the first byte of the image by `cell.ld`) at EL1h
//! with the stage-1 MMU off and DAIF set, or at EL0t for a cell with `privilege = "el0"`;
//! `x0` = the vCPU index, `x1` = the number of times the cell has been restarted, `x2` = 1
//! at EL0, 0 at EL1; the cell's RAM holds the image followed by zeroes. `_start`, in order:
//!
//! 1. reads `CNTVCT_EL0` into `x19` — the very first instruction, so that the value is the
//!    "first cell instruction" timestamp ([`boot_counter`](crate::time::boot_counter)) — and
//!    keeps `x1` in `x20` ([`restarts`]) and `x2` in `x21`;
//! 2. at EL1, enables FP/SIMD (`CPACR_EL1.FPEN = 0b11`): the compiler may use SIMD registers
//!    for copies and formatting, and the reset value of `CPACR_EL1` traps them (at EL0 the
//!    kernel's EL0 context enables them);
//! 3. points `SP` (`SP_EL1`, or `SP_EL0` at EL0) at the top of the stack `cell.ld` reserves;
//! 4. zeroes `.bss` (the kernel zeroes the cell's RAM too; doing it here keeps the SDK
//!    correct for a loader that does not), then records whether it runs at EL0
//!    ([`at_el0`]: the hypercall instruction is then `svc #0`);
//! 5. at EL1, installs the vector table below in `VBAR_EL1` (at EL0 every exception goes to
//!    the kernel, which reports a fault);
//! 6. calls `__cellvisor_cell_entry(boot_counter, restarts)`, which the [`entry!`](crate::entry)
//!    macro defines in the cell's binary: it stores both, runs `main` and exits with 0 when
//!    `main` returns. A binary without `entry!` fails to link (undefined symbol).
//!
//! The EL1 vector table: "IRQ, current EL with SP_EL1" (the only IRQ entry a cell running at
//! EL1h can take) saves the interrupted context — `x0..x18`, `x29`, `x30`, `ELR_EL1`,
//! `SPSR_EL1`, `FPSR`, `FPCR`, `q0..q7`, `q16..q31`: everything the AAPCS64 lets a called
//! function clobber — on the interrupted stack (592 bytes), calls `__cellvisor_irq` (see
//! [`crate::interrupts`]), restores and returns with `eret`. Every other entry reports an
//! unexpected exception (`ESR_EL1`, `ELR_EL1`, `FAR_EL1`) on the console and exits the cell
//! with [`EXIT_CODE_EXCEPTION`]: a synchronous exception at EL1 is a bug in the cell. That
//! handler resets `SP` to the stack top first, so a fault caused by a smashed stack still
//! reports.

use crate::hvc;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Exit code when `main` returns.
pub const EXIT_CODE_SUCCESS: u64 = 0;
/// Exit code after a panic (as Rust's test harness uses).
pub const EXIT_CODE_PANIC: u64 = 101;
/// Exit code after an unexpected exception taken at EL1.
pub const EXIT_CODE_EXCEPTION: u64 = 102;
/// Exit code when the kernel answers a hypercall in a way the ABI does not allow.
pub const EXIT_CODE_ABI_MISMATCH: u64 = 103;
/// Exit code when a cell at EL0 asks for interrupts (see [`crate::interrupts`]).
pub const EXIT_CODE_NO_INTERRUPTS: u64 = 104;

/// `CNTVCT_EL0` as read by the first instruction of `_start`.
static BOOT_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `x1` at entry: how many times the kernel has restarted this cell.
static RESTARTS: AtomicU64 = AtomicU64::new(0);

/// The counter value read by the first instruction of the cell (see [`crate::time`]).
pub(crate) fn boot_counter() -> u64 {
    BOOT_COUNTER.load(Ordering::Relaxed)
}

/// 1 when the cell runs at EL0, written by `_start` (after `.bss` is zeroed) from `x2`.
#[no_mangle]
static CELLVISOR_AT_EL0: AtomicU8 = AtomicU8::new(0);

/// Whether this cell runs at EL0 (`privilege = "el0"` in the system description): its
/// hypercall instruction is `svc #0`, and it can take no interrupt (no [`crate::interrupts`],
/// no virtual timer, no [`crate::time::sleep`]).
#[inline(always)]
pub fn at_el0() -> bool {
    CELLVISOR_AT_EL0.load(Ordering::Relaxed) != 0
}

/// How many times the kernel has restarted this cell before this run (0 on the first run), as
/// the kernel passed it in `x1` at entry.
pub fn restarts() -> u64 {
    RESTARTS.load(Ordering::Relaxed)
}

/// Runs the cell's `main`: records the boot counter and the restart count, calls `main`,
/// exits with [`EXIT_CODE_SUCCESS`] if it returns. Called only by the code
/// [`entry!`](crate::entry) generates.
#[doc(hidden)]
pub fn run(boot_counter: u64, restarts: u64, main: impl FnOnce()) -> ! {
    BOOT_COUNTER.store(boot_counter, Ordering::Relaxed);
    RESTARTS.store(restarts, Ordering::Relaxed);
    main();
    hvc::exit(EXIT_CODE_SUCCESS)
}

/// Defines the cell's entry point: `sdk::entry!(main);` with `fn main()` or `fn main() -> !`.
///
/// The macro defines the symbol `_start` calls once the stack, `.bss` and vectors are ready.
/// Use it exactly once, in the binary's root module.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// Called by the SDK's `_start` with the boot counter and the restart count; never
        /// returns.
        #[no_mangle]
        pub extern "C" fn __cellvisor_cell_entry(boot_counter: u64, restarts: u64) -> ! {
            $crate::start::run(boot_counter, restarts, || {
                // `fn main() -> !` makes the end of this closure unreachable; the `let ()`
                // rejects a `main` that returns anything but `()` or `!`.
                #[allow(unreachable_code, clippy::diverging_sub_expression)]
                let () = $main();
            })
        }
    };
}

/// Names of the sixteen vector table entries, in table order.
const VECTOR_NAMES: [&str; 16] = [
    "synchronous, current EL with SP_EL0",
    "IRQ, current EL with SP_EL0",
    "FIQ, current EL with SP_EL0",
    "SError, current EL with SP_EL0",
    "synchronous, current EL with SP_EL1",
    "IRQ, current EL with SP_EL1",
    "FIQ, current EL with SP_EL1",
    "SError, current EL with SP_EL1",
    "synchronous, lower EL using AArch64",
    "IRQ, lower EL using AArch64",
    "FIQ, lower EL using AArch64",
    "SError, lower EL using AArch64",
    "synchronous, lower EL using AArch32",
    "IRQ, lower EL using AArch32",
    "FIQ, lower EL using AArch32",
    "SError, lower EL using AArch32",
];

/// Called by every vector entry with the entry's index and the syndrome registers.
#[no_mangle]
extern "C" fn __cellvisor_unexpected_exception(vector: u64, esr: u64, elr: u64, far: u64) -> ! {
    unexpected_exception(vector, esr, elr, far)
}

/// Reports an exception the cell did not expect and exits.
fn unexpected_exception(vector: u64, esr: u64, elr: u64, far: u64) -> ! {
    let name = usize::try_from(vector)
        .ok()
        .and_then(|index| VECTOR_NAMES.get(index))
        .copied()
        .unwrap_or("unknown vector");
    // Formatted without core::fmt, so that the report works in a cell with FP/SIMD trapped.
    crate::console::Line::new()
        .text("unexpected EL1 exception: ")
        .text(name)
        .text(": ESR_EL1=")
        .hexadecimal(esr)
        .text(" ELR_EL1=")
        .hexadecimal(elr)
        .text(" FAR_EL1=")
        .hexadecimal(far)
        .print();
    hvc::exit(EXIT_CODE_EXCEPTION)
}

#[cfg(all(target_arch = "aarch64", not(test)))]
core::arch::global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
    .type _start, %function
_start:
    // First instruction: the boot timestamp, kept in a callee-saved register, as is the
    // restart count the kernel passes in x1.
    mrs     x19, cntvct_el0
    mov     x20, x1
    mov     x21, x2

    // At EL1, let FP/SIMD be used (CPACR_EL1.FPEN = 0b11, nothing else trapped or enabled).
    cbnz    x21, 3f
    mov     x9, #(3 << 20)
    msr     cpacr_el1, x9
    isb
3:

    adrp    x9, __cellvisor_stack_top
    add     x9, x9, :lo12:__cellvisor_stack_top
    mov     sp, x9

    // Zero .bss; cell.ld aligns both ends to 16 bytes.
    adrp    x9, __cellvisor_bss_start
    add     x9, x9, :lo12:__cellvisor_bss_start
    adrp    x10, __cellvisor_bss_end
    add     x10, x10, :lo12:__cellvisor_bss_end
0:  cmp     x9, x10
    b.hs    1f
    stp     xzr, xzr, [x9], #16
    b       0b
1:
    adrp    x9, CELLVISOR_AT_EL0
    strb    w21, [x9, :lo12:CELLVISOR_AT_EL0]
    cbnz    x21, 3f
    adrp    x9, __cellvisor_vectors
    add     x9, x9, :lo12:__cellvisor_vectors
    msr     vbar_el1, x9
    isb
3:

    mov     x0, x19
    mov     x1, x20
    bl      __cellvisor_cell_entry
    // __cellvisor_cell_entry never returns; should it, exit with code 0 anyway.
    mov     x1, #{exit_code}
    mov     x0, #{exit_call}
    cbnz    x21, 3f
    hvc     #0
3:  svc     #0
2:  b       2b
    .size _start, . - _start

    // memset(destination x0, byte w1, count x2) -> x0, with general registers only. It
    // replaces compiler_builtins' weak memset, which uses SIMD registers: cells that run with
    // FP/SIMD trapped (`fp = false`) zero their arrays through this one.
    .section .text.memset, "ax"
    .global memset
    .type memset, %function
memset:
    mov     x3, x0
    and     x1, x1, #0xff
    orr     x1, x1, x1, lsl #8
    orr     x1, x1, x1, lsl #16
    orr     x1, x1, x1, lsl #32
4:  cbz     x2, 7f
    tst     x3, #7
    b.eq    5f
    strb    w1, [x3], #1
    sub     x2, x2, #1
    b       4b
5:  cmp     x2, #8
    b.lo    6f
    str     x1, [x3], #8
    sub     x2, x2, #8
    b       5b
6:  cbz     x2, 7f
    strb    w1, [x3], #1
    sub     x2, x2, #1
    b       6b
7:  ret
    .size memset, . - memset

    .section .text.vectors, "ax"
    .balign 2048
    .global __cellvisor_vectors
__cellvisor_vectors:
    .set vector_index, 0
    .rept 16
    .balign 128
    .if vector_index == 5
    b       __cellvisor_irq_vector
    .else
    mov     x0, #vector_index
    b       __cellvisor_vector_common
    .endif
    .set vector_index, vector_index + 1
    .endr

// IRQ at EL1h: save what a Rust function may clobber, handle, restore, return.
// Frame (592 bytes): x0..x17 at 0, x18/x29 at 144, x30/ELR at 160, SPSR/FPSR at 176,
// FPCR at 192, q0..q7 at 208, q16..q31 at 336.
__cellvisor_irq_vector:
    sub     sp, sp, #592
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    mrs     x0, elr_el1
    stp     x30, x0, [sp, #160]
    mrs     x0, spsr_el1
    mrs     x1, fpsr
    stp     x0, x1, [sp, #176]
    mrs     x0, fpcr
    str     x0, [sp, #192]
    stp     q0, q1, [sp, #208]
    stp     q2, q3, [sp, #240]
    stp     q4, q5, [sp, #272]
    stp     q6, q7, [sp, #304]
    stp     q16, q17, [sp, #336]
    stp     q18, q19, [sp, #368]
    stp     q20, q21, [sp, #400]
    stp     q22, q23, [sp, #432]
    stp     q24, q25, [sp, #464]
    stp     q26, q27, [sp, #496]
    stp     q28, q29, [sp, #528]
    stp     q30, q31, [sp, #560]

    bl      __cellvisor_irq

    ldp     q30, q31, [sp, #560]
    ldp     q28, q29, [sp, #528]
    ldp     q26, q27, [sp, #496]
    ldp     q24, q25, [sp, #464]
    ldp     q22, q23, [sp, #432]
    ldp     q20, q21, [sp, #400]
    ldp     q18, q19, [sp, #368]
    ldp     q16, q17, [sp, #336]
    ldp     q6, q7, [sp, #304]
    ldp     q4, q5, [sp, #272]
    ldp     q2, q3, [sp, #240]
    ldp     q0, q1, [sp, #208]
    ldr     x0, [sp, #192]
    msr     fpcr, x0
    ldp     x0, x1, [sp, #176]
    msr     spsr_el1, x0
    msr     fpsr, x1
    ldp     x30, x0, [sp, #160]
    msr     elr_el1, x0
    ldp     x18, x29, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #592
    eret

__cellvisor_vector_common:
    // Never returns to the interrupted code: start from a known-good stack.
    adrp    x9, __cellvisor_stack_top
    add     x9, x9, :lo12:__cellvisor_stack_top
    mov     sp, x9
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    bl      __cellvisor_unexpected_exception
3:  b       3b
"#,
    exit_code = const EXIT_CODE_SUCCESS,
    exit_call = const abi::hvc::EXIT,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::with;
    use crate::hvc::tests::exit_code_of;

    #[test]
    fn an_unexpected_exception_is_reported_and_exits() {
        let code = exit_code_of(|| unexpected_exception(4, 0x9600_0045, 0x4000_1234, 0x1000_0000));
        assert_eq!(code, EXIT_CODE_EXCEPTION);
        with(|kernel| {
            assert_eq!(
                kernel.console,
                b"unexpected EL1 exception: synchronous, current EL with SP_EL1: \
                  ESR_EL1=0x96000045 ELR_EL1=0x40001234 FAR_EL1=0x10000000\n"
            );
        });
    }

    #[test]
    fn run_records_the_boot_counter_and_exits_with_success() {
        let code = exit_code_of(|| run(0x1234, 2, || crate::println!("main ran")));
        assert_eq!(code, EXIT_CODE_SUCCESS);
        assert_eq!(boot_counter(), 0x1234);
        assert_eq!(restarts(), 2);
        with(|kernel| assert_eq!(kernel.console, b"main ran\n"));
    }
}
