//! EL2 exception vectors: saving and restoring a cell's general registers.
//!
//! A vCPU's general registers live in its record (a [`Frame`] in `vcpu::Vcpu`), and the
//! vectors save them straight there: the top 16 bytes of each core's stack (its
//! [`CoreBlock`]) hold the address of the loaded vCPU's frame, which `exception_return`
//! writes each time it leaves for a vCPU. A handler returns the frame to resume from (the
//! loaded vCPU's, which after a switch is another vCPU's), so a switch copies no general
//! register at all. Because each exception starts from the top of the core's stack and
//! unwinds it fully, the kernel keeps no other per-core state on the stack between
//! exceptions.
//!
//! The block's other word is the address of the core's state (`vcpu::CoreState`, behind
//! its lock), written once by [`enter`]: the vectors pass it to the handler as a
//! `vcpu::EntryState`, through which the handler takes its core's state without computing
//! where it is and without the lock (see `EntryState::take` for why that holds).
//!
//! The vectors write a vCPU's record while no Rust code on the core runs: only the core
//! that owns a vCPU touches it, and the core's state is taken only after the vector returns
//! control to Rust, so the registers saved are seen like any earlier write.
//!
//! Exceptions from EL2 itself are kernel bugs: they save a frame on the stack and go to
//! [`crate::trap::unexpected`], which panics with the syndrome.

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

impl Frame {
    /// All registers zero.
    pub const fn zeroed() -> Self {
        Self {
            x: [0; 31],
            elr: 0,
            spsr: 0,
            padding: 0,
        }
    }
}

/// Size of [`Frame`] in bytes, as the assembly uses it.
pub const FRAME_SIZE: usize = 34 * 8;

/// What each vector for exceptions taken from EL2 (kernel bugs) receives, by its `kind`.
pub const EL2_EXCEPTION_KINDS: [&str; 4] = ["synchronous exception", "IRQ", "FIQ", "SError"];

/// The top 16 bytes of a core's stack: the frame the next exception from a cell saves
/// into, and the core's state, which the vectors pass to the handler. Only the assembly
/// reads and writes it.
#[repr(C, align(16))]
pub struct CoreBlock {
    live_frame: u64,
    core_state: u64,
}

/// Size of [`CoreBlock`] in bytes, as the assembly uses it.
pub const CORE_BLOCK_SIZE: usize = 16;

/// Leaves EL2 for the vCPU whose registers `resume` holds. Used by each core to enter its
/// first vCPU; `block` must be the address of this core's [`CoreBlock`] (entry.rs reserves
/// it at the top of the core's stack and passes it to the core's main function), `state`
/// this core's state, and `resume` a vCPU's frame in its record.
pub fn enter(block: usize, state: &'static crate::vcpu::CoreLock, resume: *const Frame) -> ! {
    // The block records `state` for every later exception on this core; `exception_return`
    // records `resume` in it as the frame the next exception saves into, restores the
    // registers from it and leaves EL2 with `eret`.
    // SAFETY: resetting `sp` to the top of this core's stack discards only Rust frames
    // never returned to; the block is this core's, which only its exceptions read.
    unsafe {
        core::arch::asm!(
            "mov sp, {block}",
            "str {state}, [sp, #8]",
            "b exception_return",
            block = in(reg) block,
            state = in(reg) state,
            in("x0") resume,
            options(noreturn)
        )
    }
}

core::arch::global_asm!(
    r#"
// Saves the registers on the stack (exceptions taken from EL2: kernel bugs).
// Stores x2–x29 into the frame at `base`.
.macro STORE_X2_TO_X29 base
    stp     x2, x3, [\base, #16 * 1]
    stp     x4, x5, [\base, #16 * 2]
    stp     x6, x7, [\base, #16 * 3]
    stp     x8, x9, [\base, #16 * 4]
    stp     x10, x11, [\base, #16 * 5]
    stp     x12, x13, [\base, #16 * 6]
    stp     x14, x15, [\base, #16 * 7]
    stp     x16, x17, [\base, #16 * 8]
    stp     x18, x19, [\base, #16 * 9]
    stp     x20, x21, [\base, #16 * 10]
    stp     x22, x23, [\base, #16 * 11]
    stp     x24, x25, [\base, #16 * 12]
    stp     x26, x27, [\base, #16 * 13]
    stp     x28, x29, [\base, #16 * 14]
.endm

.macro SAVE_FRAME_ON_STACK
    sub     sp, sp, #{frame_size}
    stp     x0, x1, [sp, #16 * 0]
    STORE_X2_TO_X29 sp
    mrs     x0, elr_el2
    mrs     x1, spsr_el2
    stp     x30, x0, [sp, #16 * 15]
    str     x1, [sp, #16 * 16]
.endm

// Saves a cell's registers into the loaded vCPU's frame (named by the core block at the
// top of the stack, where sp points) and leaves its address in x1, the core's state in x0.
.macro SAVE_TO_LOADED_FRAME
    stp     x0, x1, [sp, #-16]!
    ldr     x1, [sp, #16]
    STORE_X2_TO_X29 x1
    mrs     x0, elr_el2
    mrs     x2, spsr_el2
    stp     x30, x0, [x1, #16 * 15]
    str     x2, [x1, #16 * 16]
    ldp     x0, x2, [sp], #16
    stp     x0, x2, [x1, #16 * 0]
    ldr     x0, [sp, #8]
.endm

// A vector entry for a cell's exception: `handler(core state, frame)`, then return to the
// frame the handler returns.
.macro VECTOR_CALL handler
    .balign 0x80
    SAVE_TO_LOADED_FRAME
    bl      \handler
    b       exception_return
.endm

// A vector entry for an exception at EL2 (a kernel bug): `unexpected(frame, kind)` panics.
.macro VECTOR_UNEXPECTED kind
    .balign 0x80
    SAVE_FRAME_ON_STACK
    mov     x0, sp
    mov     x1, #\kind
    bl      {unexpected}
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
    .balign 0x80
    SAVE_TO_LOADED_FRAME
    b       lower_sync_dispatch
    VECTOR_CALL {lower_irq}
    // FIQ and SError from a cell: faults of that cell.
    VECTOR_CALL {lower_unexpected}
    VECTOR_CALL {lower_unexpected}
    // Lower EL, AArch32: cells never run AArch32 (HCR_EL2.RW = 1).
    VECTOR_CALL {lower_unexpected}
    VECTOR_CALL {lower_unexpected}
    VECTOR_CALL {lower_unexpected}
    VECTOR_CALL {lower_unexpected}

// A synchronous exception from a cell, saved (x0 = core state, x1 = frame). An EL0 cell's
// hypercall (`svc #0`: ESR exactly EC 0x15 with IL set and immediate 0; x0 the call number)
// that has an entry of its own goes straight to it: CALL, REPLY_WAIT, SIGNAL, WAIT and YIELD,
// each with its arguments from the frame. Any other exception goes to
// `lower_sync(core state, frame, ESR)`.
lower_sync_dispatch:
    mrs     x2, esr_el2
    mov     x4, #{svc_esr}
    cmp     x2, x4
    b.ne    1f
    ldr     x3, [x1]
    sub     x3, x3, #{call}
    cmp     x3, #{reply_wait} - {call}
    b.eq    2f
    b.lo    3f
    cmp     x3, #{signal} - {call}
    b.eq    4f
    cmp     x3, #{wait} - {call}
    b.eq    5f
    cmn     x3, #{call} - {yield}
    b.eq    6f
1:  bl      {lower_sync}
    b       exception_return
2:  bl      {reply_wait_entry}
    b       exception_return
3:  bl      {call_entry}
    b       exception_return
    // SIGNAL: slot and bits.
4:  ldp     x1, x2, [x1, #8]
    bl      {signal_entry}
    b       exception_return
    // WAIT: slot.
5:  ldr     x1, [x1, #8]
    bl      {wait_entry}
    b       exception_return
    // YIELD returns STATUS_OK (0) in x0.
6:  str     xzr, [x1]
    bl      {yield_entry}
    b       exception_return

// Records the frame x0 points to as the one the next exception saves into (sp points to
// the core block) and restores the registers from it.
    .global exception_return
exception_return:
    str     x0, [sp]
    ldp     x30, x1, [x0, #16 * 15]
    ldr     x2, [x0, #16 * 16]
    msr     elr_el2, x1
    msr     spsr_el2, x2
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
    call_entry = sym crate::trap::call_entry,
    reply_wait_entry = sym crate::trap::reply_wait_entry,
    svc_esr = const (kcore::esr::EC_SVC64 as u64) << 26 | 1 << 25,
    call = const abi::hvc::CALL,
    reply_wait = const abi::hvc::REPLY_WAIT,
    signal = const abi::hvc::SIGNAL,
    wait = const abi::hvc::WAIT,
    yield = const abi::hvc::YIELD,
    signal_entry = sym crate::trap::signal_entry,
    wait_entry = sym crate::trap::wait_entry,
    yield_entry = sym crate::trap::yield_entry,
    lower_irq = sym crate::trap::lower_irq,
    lower_unexpected = sym crate::trap::lower_unexpected,
    unexpected = sym crate::trap::unexpected,
);

const _: () = assert!(core::mem::size_of::<CoreBlock>() == CORE_BLOCK_SIZE);
const _: () = assert!(core::mem::size_of::<Frame>() == FRAME_SIZE);
const _: () = assert!(abi::hvc::STATUS_OK == 0);
