//! Bulk zeroing and copying of cell RAM, for loading a cell at boot and on a restart: the
//! only kernel code that moves megabytes. `core::ptr::write_bytes` and `copy_nonoverlapping`
//! lower to the compiler's generic word loops (about 2.5 and 1.6 bytes per instruction, so
//! loading a 256 MiB Linux cell took 107 million instructions); here `dc zva` zeroes a whole
//! block (64 bytes on Cortex-A) per instruction and the copy moves 64 bytes per 10.
//!
//! Invariant (the callers' contract): the ranges are Normal, cacheable memory mapped at EL2
//! (cell RAM and the image payload). `dc zva` faults on Device memory, and the copy's
//! load/store pairs may be unaligned, which Normal memory allows with SCTLR_EL2.A clear
//! (see `mmu`).

use super::sysreg;

/// DCZID_EL0.DZP: `dc zva` is prohibited.
const DCZID_PROHIBITED: u64 = 1 << 4;

/// Zeroes the `len` bytes at `base`.
///
/// # Safety
/// `[base, base + len)` must be writable Normal memory mapped at EL2 that no Rust object
/// occupies.
pub unsafe fn zero(base: *mut u8, len: usize) {
    let dczid = sysreg::dczid_el0::read();
    // BS is log2 of the block size in 4-byte words.
    let block = 4usize << (dczid & 0xf);
    let (start, end) = (base as usize, base as usize + len);
    let first = start.next_multiple_of(block);
    // The loop below zeroes four blocks per turn.
    let run_end = first + (end.saturating_sub(first) / (4 * block)) * (4 * block);
    if dczid & DCZID_PROHIBITED != 0 || run_end <= first {
        // SAFETY: the caller's contract.
        unsafe { core::ptr::write_bytes(base, 0, len) };
        return;
    }
    // SAFETY: `[first, run_end)` is block-aligned and inside the caller's range; `dc zva`
    // writes zeroes to exactly one block at the address; the edges are written bytewise.
    unsafe {
        core::ptr::write_bytes(base, 0, first - start);
        core::arch::asm!(
            "1:",
            "dc zva, {at}",
            "add {at}, {at}, {block}",
            "dc zva, {at}",
            "add {at}, {at}, {block}",
            "dc zva, {at}",
            "add {at}, {at}, {block}",
            "dc zva, {at}",
            "add {at}, {at}, {block}",
            "cmp {at}, {end}",
            "b.lo 1b",
            at = inout(reg) first => _,
            block = in(reg) block,
            end = in(reg) run_end,
            options(nostack)
        );
        core::ptr::write_bytes(run_end as *mut u8, 0, end - run_end);
    }
}

/// Copies `len` bytes from `source` to `destination`.
///
/// # Safety
/// Both ranges must be Normal memory mapped at EL2, `destination` writable and occupied by
/// no Rust object, and the two must not overlap.
pub unsafe fn copy(destination: *mut u8, source: *const u8, len: usize) {
    let bulk = len / 64 * 64;
    if bulk > 0 {
        // SAFETY: the loop reads `[source, source + bulk)` and writes the same span of
        // `destination`, 64 bytes a turn, within the caller's ranges.
        unsafe {
            core::arch::asm!(
                "1:",
                "ldp {a}, {b}, [{from}, #16]",
                "ldp {c}, {d}, [{from}, #32]",
                "ldp {e}, {f}, [{from}, #48]",
                "ldp {g}, {h}, [{from}], #64",
                "stp {a}, {b}, [{to}, #16]",
                "stp {c}, {d}, [{to}, #32]",
                "stp {e}, {f}, [{to}, #48]",
                "stp {g}, {h}, [{to}], #64",
                "cmp {from}, {end}",
                "b.lo 1b",
                from = inout(reg) source => _,
                to = inout(reg) destination => _,
                end = in(reg) source.add(bulk),
                a = out(reg) _, b = out(reg) _, c = out(reg) _, d = out(reg) _,
                e = out(reg) _, f = out(reg) _, g = out(reg) _, h = out(reg) _,
                options(nostack)
            );
        }
    }
    // SAFETY: the rest of the caller's ranges, fewer than 64 bytes.
    unsafe { core::ptr::copy_nonoverlapping(source.add(bulk), destination.add(bulk), len - bulk) };
}
