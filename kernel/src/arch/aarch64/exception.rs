//! EL2 exception vectors: saving and restoring a cell's general registers.
//!
//! Every exception taken to EL2 pushes a [`Frame`] (x0–x30, ELR_EL2, SPSR_EL2) on the
//! core's stack and calls a Rust handler with it. The handler may rewrite the frame (a
//! hypercall's results) and returns the frame to resume from: that same frame, or after a
//! switch the saved frame of another vCPU, so that a switch copies registers only once (out
//! of the stack frame). The common exit path pops the stack frame, restores the registers
//! from the returned one and leaves with `eret`. Because each exception starts from the top
//! of the core's stack and unwinds it fully, the kernel keeps no per-core state on the stack
//! between exceptions.
//!
//! Exceptions from EL2 itself are kernel bugs: they go to [`crate::trap::unexpected`],
//! which panics with the syndrome.

/// The general registers of a vCPU as saved on exception entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Frame {
    /// x0–x30.
    pub x: [u64; 31],
    /// Where the vCPU resumes (ELR_EL2).
    pub elr: u64,
    /// The vCPU's saved PSTATE (SPSR_EL2).
    pub spsr: u64,
    /// Keeps the frame 16-byte aligned.
    pub padding: u64,
}

/// Size of [`Frame`] in bytes, as the assembly uses it.
pub const FRAME_SIZE: usize = 34 * 8;

/// Which vector an exception arrived at, for the unexpected ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum VectorKind {
    /// Synchronous exception at EL2.
    El2Sync = 0,
    /// IRQ at EL2 (the kernel runs with IRQs masked, so never expected).
    El2Irq = 1,
    /// FIQ at EL2.
    El2Fiq = 2,
    /// SError at EL2.
    El2SError = 3,
    /// FIQ from a cell.
    LowerFiq = 4,
    /// SError from a cell.
    LowerSError = 5,
    /// Any exception from AArch32 (cells are AArch64 only).
    LowerAarch32 = 6,
}

impl VectorKind {
    pub(crate) fn from_raw(raw: u64) -> Self {
        match raw {
            0 => Self::El2Sync,
            1 => Self::El2Irq,
            2 => Self::El2Fiq,
            3 => Self::El2SError,
            4 => Self::LowerFiq,
            5 => Self::LowerSError,
            _ => Self::LowerAarch32,
        }
    }
}

/// Leaves EL2 for the vCPU whose registers `resume` holds. Used by each core to enter its
/// first vCPU; `stack_frame` must be the frame reserved at the top of this core's stack, and
/// `resume` that frame or a vCPU's saved frame (which must stay untouched until the `eret`).
pub fn enter_frame(stack_frame: &mut Frame, resume: *const Frame) -> ! {
    // `stack_frame` is the frame at the top of this core's stack (entry.rs reserves it and
    // passes it to the core's main function); `exception_return` pops it, restores the
    // registers from `resume` and leaves EL2 with `eret` to the vCPU state they describe.
    // SAFETY: resetting `sp` to that frame discards only Rust frames never returned to.
    unsafe {
        core::arch::asm!(
            "mov sp, {frame}",
            "b exception_return",
            frame = in(reg) stack_frame as *mut Frame,
            in("x0") resume,
            options(noreturn)
        )
    }
}

core::arch::global_asm!(
    r#"
.macro SAVE_FRAME
    sub     sp, sp, #{frame_size}
    stp     x0, x1, [sp, #16 * 0]
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
    mrs     x0, elr_el2
    mrs     x1, spsr_el2
    stp     x30, x0, [sp, #16 * 15]
    str     x1, [sp, #16 * 16]
.endm

// A vector entry that saves the frame and calls `handler(frame)`, then returns to the frame
// the handler returns.
.macro VECTOR_CALL handler
    .balign 0x80
    SAVE_FRAME
    mov     x0, sp
    bl      \handler
    b       exception_return
.endm

// A vector entry for an unexpected exception: `unexpected(frame, kind)`.
.macro VECTOR_UNEXPECTED kind
    .balign 0x80
    SAVE_FRAME
    mov     x0, sp
    mov     x1, #\kind
    bl      {unexpected}
    b       exception_return
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global el2_vectors
el2_vectors:
    // Current EL with SP_EL0: never used (the kernel runs on SP_EL2).
    VECTOR_UNEXPECTED 0
    VECTOR_UNEXPECTED 1
    VECTOR_UNEXPECTED 2
    VECTOR_UNEXPECTED 3
    // Current EL with SP_EL2: kernel faults.
    VECTOR_UNEXPECTED 0
    VECTOR_UNEXPECTED 1
    VECTOR_UNEXPECTED 2
    VECTOR_UNEXPECTED 3
    // Lower EL, AArch64: the cells.
    VECTOR_CALL {lower_sync}
    VECTOR_CALL {lower_irq}
    VECTOR_UNEXPECTED 4
    VECTOR_UNEXPECTED 5
    // Lower EL, AArch32: cells never run AArch32 (HCR_EL2.RW = 1).
    VECTOR_UNEXPECTED 6
    VECTOR_UNEXPECTED 6
    VECTOR_UNEXPECTED 6
    VECTOR_UNEXPECTED 6

// Pops the stack frame and restores the registers from the frame x0 points to.
    .global exception_return
exception_return:
    ldp     x30, x1, [x0, #16 * 15]
    ldr     x2, [x0, #16 * 16]
    msr     elr_el2, x1
    msr     spsr_el2, x2
    add     sp, sp, #{frame_size}
    ldp     x2, x3, [x0, #16 * 1]
    ldp     x4, x5, [x0, #16 * 2]
    ldp     x6, x7, [x0, #16 * 3]
    ldp     x8, x9, [x0, #16 * 4]
    ldp     x10, x11, [x0, #16 * 5]
    ldp     x12, x13, [x0, #16 * 6]
    ldp     x14, x15, [x0, #16 * 7]
    ldp     x16, x17, [x0, #16 * 8]
    ldp     x18, x19, [x0, #16 * 9]
    ldp     x20, x21, [x0, #16 * 10]
    ldp     x22, x23, [x0, #16 * 11]
    ldp     x24, x25, [x0, #16 * 12]
    ldp     x26, x27, [x0, #16 * 13]
    ldp     x28, x29, [x0, #16 * 14]
    ldp     x0, x1, [x0, #16 * 0]
    eret
"#,
    frame_size = const FRAME_SIZE,
    lower_sync = sym crate::trap::lower_sync,
    lower_irq = sym crate::trap::lower_irq,
    unexpected = sym crate::trap::unexpected,
);
