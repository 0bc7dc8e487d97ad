//! The first instructions of every core: the arm64 Image header, EL and load-address
//! checks, `.bss` clearing, and the per-core stacks (each below an unmapped guard page).
//!
//! Invariants: the boot core arrives at `_start` at EL2 with the MMU off and x0 = DTB
//! address (Linux arm64 boot protocol); secondaries arrive at `secondary_entry` from PSCI
//! CPU_ON with x0 = their core index. Each core then runs on its own stack, with
//! `TPIDR_EL2` = core index and a [`CoreBlock`] reserved at the top of that stack: where the
//! exception vectors find the frame to save a cell's registers into.

use super::exception::{CoreBlock, CORE_BLOCK_SIZE};

/// Most cores the kernel drives.
pub const MAX_CORES: usize = abi::plan::MAX_CORES;
/// Bytes of each core's stack.
pub const STACK_SIZE: usize = 64 * 1024;
/// Bytes of the unmapped guard page below each stack.
pub const GUARD_SIZE: usize = 4096;
/// Where QEMU loads the image, relative to the start of RAM (Image header `text_offset`).
pub const TEXT_OFFSET: u64 = 0x20_0000;

/// One core's stack with the guard page below it.
#[repr(C, align(4096))]
pub struct StackSlot {
    guard: [u8; GUARD_SIZE],
    stack: [u8; STACK_SIZE],
}

/// The per-core stacks. Only the entry code below touches them (through `sp`); the MMU code
/// reads their address to leave the guard pages unmapped.
#[no_mangle]
static mut KERNEL_STACKS: [StackSlot; MAX_CORES] = [const {
    StackSlot {
        guard: [0; GUARD_SIZE],
        stack: [0; STACK_SIZE],
    }
}; MAX_CORES];

/// Address range of the stacks and the address of each guard page.
pub fn guard_pages() -> impl Iterator<Item = u64> {
    let base = core::ptr::addr_of!(KERNEL_STACKS) as u64;
    (0..MAX_CORES as u64).map(move |core| base + core * core::mem::size_of::<StackSlot>() as u64)
}

/// Address of the secondary cores' entry point, for PSCI CPU_ON.
pub fn secondary_entry_address() -> u64 {
    extern "C" {
        fn secondary_entry();
    }
    secondary_entry as *const () as u64
}

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
    static __text_end: u8;
    static __rodata_end: u8;
}

/// Link-time addresses of the kernel's sections.
#[derive(Clone, Copy, Debug)]
pub struct KernelLayout {
    /// Start of the kernel (and of the Image header).
    pub start: u64,
    /// End of `.text` (page aligned).
    pub text_end: u64,
    /// End of `.rodata` (page aligned).
    pub rodata_end: u64,
    /// End of `.bss`, the kernel's memory footprint (page aligned).
    pub end: u64,
}

/// The kernel's section boundaries.
pub fn kernel_layout() -> KernelLayout {
    KernelLayout {
        start: core::ptr::addr_of!(__kernel_start) as u64,
        text_end: core::ptr::addr_of!(__text_end) as u64,
        rodata_end: core::ptr::addr_of!(__rodata_end) as u64,
        end: core::ptr::addr_of!(__kernel_end) as u64,
    }
}

core::arch::global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    b       primary_entry
    .word   0
    .quad   {text_offset}                   // text_offset
    .quad   __kernel_size                   // image_size: the kernel's whole footprint
    .quad   0x2                             // flags: little-endian, 4 KiB pages
    .quad   0, 0, 0
    .byte   0x41, 0x52, 0x4d, 0x64          // "ARM\x64"
    .word   0

    .section .text.boot, "ax"
primary_entry:
    mov     x19, x0                         // DTB address
    mrs     x1, CurrentEL
    cmp     x1, #(2 << 2)
    b.ne    park                            // not at EL2: nothing we can do
    adr     x1, _start
    ldr     x2, =_start
    cmp     x1, x2
    b.ne    park                            // not loaded where linked
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:  mov     x0, #0
    bl      prepare_core
    mov     x0, x19
    bl      {kernel_main}
    b       park

    .global secondary_entry
secondary_entry:
    mov     x19, x0                         // core index (PSCI context id)
    mrs     x1, CurrentEL
    cmp     x1, #(2 << 2)
    b.ne    park
    cmp     x19, #{max_cores}
    b.hs    park
    mov     x0, x19
    bl      prepare_core
    mov     x0, x19
    bl      {secondary_main}
    b       park

// x0 = core index. Sets TPIDR_EL2, VBAR_EL2, SCTLR_EL2 (MMU off) and sp, reserving the
// core block at the top of the core's stack; returns with x1 = the block's address.
prepare_core:
    msr     tpidr_el2, x0
    ldr     x9, =el2_vectors
    msr     vbar_el2, x9
    ldr     x9, ={sctlr_mmu_off}
    msr     sctlr_el2, x9
    isb
    ldr     x9, ={stacks}
    ldr     x10, ={slot_size}
    madd    x9, x0, x10, x9
    add     x9, x9, x10
    sub     sp, x9, #{block_size}
    mov     x1, sp
    ret

park:
    wfe
    b       park
"#,
    text_offset = const TEXT_OFFSET,
    max_cores = const MAX_CORES,
    slot_size = const core::mem::size_of::<StackSlot>(),
    block_size = const CORE_BLOCK_SIZE,
    sctlr_mmu_off = const super::mmu::SCTLR_EL2_MMU_OFF,
    stacks = sym KERNEL_STACKS,
    kernel_main = sym crate::kernel_main,
    secondary_main = sym crate::secondary_main,
);

const _: () = assert!(core::mem::size_of::<CoreBlock>() == CORE_BLOCK_SIZE);
