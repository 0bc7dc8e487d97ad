// A throwaway EL2 stand-in for the Cellvisor kernel: enough to smoke-test SDK cells in QEMU
// without the real kernel (see run.sh). Not the kernel, and not a model of it.
//
// It maps the cell's IPA 0x4000_0000..0x8000_0000 to PA 0x8000_0000 (one stage-2 1 GiB
// block; QEMU's DTB occupies PA 0x4000_0000), enters the cell at 0x4000_0000 at EL1h with
// DAIF masked and HCR_EL2.DC set, and serves CONSOLE_WRITE, YIELD, EXIT, VCPU_INFO and TIME,
// preserving every register the ABI says it preserves. EXIT prints "STUB exit code <hex>",
// any other trap prints "STUB lower-EL fault ESR/IPA <esr> <ipa>"; both power off via PSCI.
    .equ UART, 0x09000000
    .section .text
    .global _entry
_entry:
    ldr x0, =stack_top
    mov sp, x0
    adr x0, vectors
    msr vbar_el2, x0
    // stage 2: level-1 table, 1 GiB identity block at 0x4000_0000 only
    adr x0, s2table
    msr vttbr_el2, x0
    ldr x0, =((32) | (1 << 6) | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 31))
    msr vtcr_el2, x0
    ldr x0, =((1 << 31) | (1 << 12) | (1 << 0))   // RW | DC | VM
    msr hcr_el2, x0
    mov x0, #0x33ff
    msr cptr_el2, x0
    mov x0, #3
    msr cnthctl_el2, x0
    msr cntvoff_el2, xzr
    ldr x0, =0x30d00800
    msr sctlr_el1, x0
    mov x0, #0x3c5
    msr spsr_el2, x0
    ldr x0, =0x40000000
    msr elr_el2, x0
    isb
    mov x0, #0
    eret

putc: // w9 = char
    ldr x10, =UART
1:  ldr w11, [x10, #0x18]
    tbnz w11, #5, 1b
    strb w9, [x10]
    ret
puts: // x12 = string
    mov x15, x30
2:  ldrb w9, [x12], #1
    cbz w9, 3f
    bl putc
    b 2b
3:  mov x30, x15
    ret
puthex: // x13 value
    mov x16, x30
    mov x14, #60
4:  lsr x9, x13, x14
    and x9, x9, #0xf
    cmp x9, #10
    add x11, x9, #'0'
    add x9, x9, #('a' - 10)
    csel x9, x11, x9, lo
    bl putc
    subs x14, x14, #4
    b.ge 4b
    mov w9, #'\n'
    bl putc
    mov x30, x16
    ret
off:
    ldr x0, =0x84000008
    smc #0
    b .

lower_sync:
    stp x9, x10, [sp, #-96]!
    stp x11, x12, [sp, #16]
    stp x13, x14, [sp, #32]
    stp x15, x16, [sp, #48]
    stp x17, x18, [sp, #64]
    str x30, [sp, #80]
    mrs x9, esr_el2
    lsr x9, x9, #26
    cmp x9, #0x16
    b.ne not_hvc
    cmp x0, #1
    b.eq console
    cmp x0, #2
    b.eq ok
    cmp x0, #3
    b.eq do_exit
    cmp x0, #4
    b.eq info
    cmp x0, #5
    b.eq time
    mov x0, #1
    b restore
console:
    mov x17, #0x40000000
    add x17, x17, x1
    mov x18, x2
5:  cbz x18, 6f
    ldrb w9, [x17], #1
    bl putc
    sub x18, x18, #1
    b 5b
6:  mov x1, x2
ok: mov x0, #0
    b restore
info:
    mov x1, #0
    mov x2, #0
    mov x3, #0
    mov x0, #0
    b restore
time:
    mrs x1, cntvct_el0
    mrs x2, cntfrq_el0
    mov x0, #0
    b restore
do_exit:
    adr x12, s_exit
    bl puts
    mov x13, x1
    bl puthex
    b off
not_hvc:
    adr x12, s_fault
    bl puts
    mrs x13, esr_el2
    bl puthex
    mrs x13, hpfar_el2
    lsl x13, x13, #8
    bl puthex
    b off
bad:
    adr x12, s_bad
    bl puts
    b off

restore:
    ldp x11, x12, [sp, #16]
    ldp x13, x14, [sp, #32]
    ldp x15, x16, [sp, #48]
    ldp x17, x18, [sp, #64]
    ldr x30, [sp, #80]
    ldp x9, x10, [sp], #96
    eret
s_exit: .asciz "STUB exit code "
s_fault: .asciz "STUB lower-EL fault ESR/IPA "
s_bad: .asciz "STUB unexpected EL2 vector\n"

    .balign 2048
vectors:
    .rept 8
    .balign 128
    b bad
    .endr
    .balign 128
    b lower_sync
    .rept 7
    .balign 128
    b bad
    .endr

    .balign 4096
s2table:
    .quad 0
    .quad 0x80000000 | (1 << 10) | (3 << 8) | (3 << 6) | (0xf << 2) | 1
    .quad 0
    .quad 0
    .balign 16
    .space 4096
stack_top:
