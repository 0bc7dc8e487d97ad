//! Address translation owned by the kernel: the EL2 stage-1 tables (identity map with
//! W^X), the storage for every cell's stage-2 tables, and the cache and TLB maintenance
//! that goes with them.
//!
//! Invariants: EL2 runs identity-mapped (VA == PA). Kernel text is read-execute, rodata
//! read-only, data/bss/stacks read-write never-execute, the guard page below each stack is
//! unmapped, RAM outside the kernel is read-write never-execute, devices are Device-nGnRE.
//! SCTLR_EL2.WXN is set, so no writable page is ever executable. The tables are built once
//! by the boot core before any other core starts, and never change afterwards.

use super::entry::{self, KernelLayout};
use super::sysreg;
use kcore::pagetable::{Access, MapError, MemoryType, PageTable, Regime, Table, TablePool};

/// SCTLR_EL2 with only its RES1 bits set: MMU, caches and alignment checks off.
pub const SCTLR_EL2_MMU_OFF: u64 = 0x30c5_0830;
const SCTLR_EL2_M: u64 = 1 << 0;
const SCTLR_EL2_C: u64 = 1 << 2;
const SCTLR_EL2_SA: u64 = 1 << 3;
const SCTLR_EL2_I: u64 = 1 << 12;
const SCTLR_EL2_WXN: u64 = 1 << 19;

/// Tables for the EL2 stage-1 map.
const EL2_TABLE_COUNT: usize = 16;
/// Stage-2 tables available to each cell.
pub const STAGE2_TABLES_PER_CELL: usize = 8;

#[repr(C, align(4096))]
struct TableStore<const N: usize>([Table; N]);

static mut EL2_TABLES: TableStore<EL2_TABLE_COUNT> = TableStore([[0; 512]; EL2_TABLE_COUNT]);
static mut STAGE2_TABLES: TableStore<{ STAGE2_TABLES_PER_CELL * abi::plan::MAX_CELLS }> =
    TableStore([[0; 512]; STAGE2_TABLES_PER_CELL * abi::plan::MAX_CELLS]);

/// What the secondaries need to turn their MMU on with the boot core's tables.
#[derive(Clone, Copy, Debug)]
pub struct El2Translation {
    ttbr0: u64,
    tcr: u64,
}

/// Physical address bits the core implements (ID_AA64MMFR0_EL1.PARange), capped at 48.
pub fn physical_address_bits() -> u8 {
    match sysreg::id_aa64mmfr0_el1::read() & 0xf {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        _ => 48,
    }
}

/// Builds the EL2 identity map for `ram` (the board's RAM ranges) and `devices` (the
/// devices the kernel uses), each range as `(base, size)`, and returns what every core
/// loads to use it.
///
/// Must run on the boot core before any other core starts (it is the only writer of the
/// EL2 tables).
pub fn build_el2_map(
    ram: &[(u64, u64)],
    devices: &[(u64, u64)],
) -> Result<El2Translation, MapError> {
    // Only the boot core runs this, once, before the other cores start and the MMU is on;
    // after `enable` loads the root into TTBR0_EL2 the tables are never written again.
    // SAFETY: so nothing else refers to EL2_TABLES while this borrow lives.
    let tables = unsafe { &mut (*core::ptr::addr_of_mut!(EL2_TABLES)).0 };
    let base_pa = tables.as_ptr() as u64;
    let mut map = PageTable::new(TablePool::new(tables, base_pa), Regime::El2Stage1)?;
    let layout = entry::kernel_layout();
    map_kernel(&mut map, &layout)?;
    for &(base, size) in ram {
        let end = base.saturating_add(size);
        // RAM below and above the kernel image.
        if base < layout.start {
            map.map(
                base,
                base,
                end.min(layout.start) - base,
                MemoryType::Normal,
                Access::READ_WRITE,
            )?;
        }
        if end > layout.end {
            let from = base.max(layout.end);
            map.map(
                from,
                from,
                end - from,
                MemoryType::Normal,
                Access::READ_WRITE,
            )?;
        }
    }
    for &(base, size) in devices {
        map.map(base, base, size, MemoryType::Device, Access::READ_WRITE)?;
    }
    let bits = physical_address_bits();
    Ok(El2Translation {
        ttbr0: map.root_pa(),
        tcr: kcore::pagetable::tcr_el2(bits),
    })
}

fn map_kernel(map: &mut PageTable<'_>, layout: &KernelLayout) -> Result<(), MapError> {
    // Each part of the image `[start, end)` at its own address, as Normal memory.
    let mut identity = |start: u64, end: u64, access: Access| {
        map.map(start, start, end - start, MemoryType::Normal, access)
    };
    identity(layout.start, layout.text_end, Access::READ_EXECUTE)?;
    identity(layout.text_end, layout.rodata_end, Access::READ)?;
    // Data, bss and stacks, leaving each stack's guard page unmapped.
    let mut from = layout.rodata_end;
    for guard in entry::guard_pages() {
        identity(from, guard, Access::READ_WRITE)?;
        from = guard + entry::GUARD_SIZE as u64;
    }
    identity(from, layout.end, Access::READ_WRITE)
}

/// Turns on this core's EL2 MMU and caches with the tables `translation` describes.
///
/// # Safety
/// `translation` must come from [`build_el2_map`], whose identity map covers the code,
/// stack and data this core is using, so execution continues at the same addresses.
pub unsafe fn enable(translation: &El2Translation) {
    // MAIR/TCR/TTBR0 take effect only once SCTLR_EL2.M is set below; the TLB invalidation
    // drops any stale EL2 entries.
    // SAFETY: the identity map (caller's contract) keeps instruction fetch and stack valid.
    unsafe {
        sysreg::mair_el2::write(kcore::pagetable::MAIR_EL2_VALUE);
        sysreg::tcr_el2::write(translation.tcr);
        sysreg::ttbr0_el2::write(translation.ttbr0);
        sysreg::isb();
        core::arch::asm!(
            "tlbi alle2",
            "dsb nsh",
            "isb",
            options(nostack, preserves_flags)
        );
        sysreg::sctlr_el2::write(
            SCTLR_EL2_MMU_OFF
                | SCTLR_EL2_M
                | SCTLR_EL2_C
                | SCTLR_EL2_SA
                | SCTLR_EL2_I
                | SCTLR_EL2_WXN,
        );
    }
    sysreg::isb();
}

/// The stage-2 table storage of cell `index`, and the physical address of its first table.
///
/// # Safety
/// Each cell's storage must be borrowed by one builder at a time; the kernel builds a
/// cell's stage-2 tables only on the boot core, once, before any core runs cells.
pub unsafe fn stage2_tables(index: usize) -> Option<(&'static mut [Table], u64)> {
    if index >= abi::plan::MAX_CELLS {
        return None;
    }
    // SAFETY: the caller guarantees exclusive use of this cell's chunk; chunks of different
    // cells do not overlap.
    let all = unsafe { &mut (*core::ptr::addr_of_mut!(STAGE2_TABLES)).0 };
    let chunk = &mut all[index * STAGE2_TABLES_PER_CELL..(index + 1) * STAGE2_TABLES_PER_CELL];
    let base = chunk.as_ptr() as u64;
    Some((chunk, base))
}

/// Sets the stage-2 translation control for this core (the same for every cell).
pub fn configure_stage2() {
    // The value comes from kcore and matches the tables it builds; stage 2 is enabled per
    // cell through HCR_EL2.VM when a vCPU is entered.
    // SAFETY: VTCR_EL2 only affects stage-2 translation of EL1/EL0, not EL2.
    unsafe { sysreg::vtcr_el2::write(kcore::pagetable::vtcr_el2(physical_address_bits())) };
    sysreg::isb();
}

/// Invalidates all stage-1 and stage-2 TLB entries of all VMIDs, on all cores.
pub fn invalidate_guest_tlbs() {
    // SAFETY: TLB invalidation only removes cached translations; the barriers order it
    // after earlier table writes and before later guest execution.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi alle1is",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
}

/// Makes freshly written code in `[base, base + len)` visible to instruction fetch: cleans
/// the data cache to the point of unification, then invalidates all instruction caches.
pub fn sync_code(base: u64, len: u64) {
    let line = 4u64 << ((sysreg::ctr_el0::read() >> 16) & 0xf);
    let mut address = base & !(line - 1);
    while address < base.saturating_add(len) {
        // SAFETY: `dc cvau` cleans a cache line by address; it changes no memory contents
        // and the address is mapped (the caller just wrote there).
        unsafe { core::arch::asm!("dc cvau, {}", in(reg) address, options(nostack)) };
        address += line;
    }
    // SAFETY: invalidating instruction caches only discards cached instructions.
    unsafe { core::arch::asm!("dsb ish", "ic ialluis", "dsb ish", "isb", options(nostack)) };
}
