//! VMSAv8-64 translation tables: 4 KiB granule, 39-bit input addresses, starting at level 1.
//!
//! This module owns the encoding of translation-table descriptors for the two regimes the
//! kernel builds: its own EL2 stage-1 tables ([`Regime::El2Stage1`]) and each cell's stage-2
//! tables ([`Regime::Stage2`]). The kernel lends it memory for the tables as a
//! [`TablePool`] (contiguous 4 KiB tables at a known physical address) and installs the
//! root with the register values computed here ([`MAIR_EL2_VALUE`], [`tcr_el2`],
//! [`vtcr_el2`]). Because the MMU is never consulted, every descriptor bit can be tested on
//! the host through `PageTable::translate` (a test-only method).
//!
//! Geometry: the root is one 512-entry level-1 table (input addresses below 2^39); a
//! level-1 entry covers 1 GiB, a level-2 entry 2 MiB, a level-3 entry 4 KiB. [`PageTable::map`]
//! uses the largest block that the alignment of both addresses and the remaining length
//! allow.
//!
//! Invariants:
//! - a mapping never overlaps an existing one, and a refused [`PageTable::map`] changes
//!   nothing (it is checked in a dry run, including the tables it needs, before any write);
//! - every table descriptor points at a table of this pool;
//! - no mapping is both writable and executable in the EL2 regime, no mapping is writable
//!   without being readable, and Device memory is never executable;
//! - tables are zeroed when allocated, so unused entries are invalid.

use core::fmt;

/// One translation table: 512 descriptors, 4 KiB. The kernel keeps these in
/// `#[repr(align(4096))]` static arrays.
pub type Table = [u64; 512];

/// Bytes in one table (and in one page).
pub const TABLE_SIZE: u64 = 4096;
/// Number of input-address bits (T0SZ = 64 - 39 = 25).
pub const INPUT_ADDRESS_BITS: u32 = 39;
/// Number of output-address bits a descriptor can hold.
pub const OUTPUT_ADDRESS_BITS: u32 = 48;
/// Bytes covered by one level-1 block.
pub const LEVEL1_BLOCK_SIZE: u64 = 1 << 30;
/// Bytes covered by one level-2 block.
pub const LEVEL2_BLOCK_SIZE: u64 = 1 << 21;
/// Bytes covered by one level-3 page.
pub const PAGE_SIZE: u64 = 1 << 12;

/// `MAIR_EL2`: attribute 0 is Normal write-back read/write-allocate (0xff), attribute 1 is
/// Device-nGnRE (0x04). EL2 stage-1 descriptors select them through AttrIndx.
pub const MAIR_EL2_VALUE: u64 = 0x04ff;

const ATTR_INDEX_NORMAL: u64 = 0;
const ATTR_INDEX_DEVICE: u64 = 1;

/// Descriptor bit 0: valid.
const VALID: u64 = 1 << 0;
/// Descriptor bit 1: table (levels 1-2) or page (level 3); clear for a block.
const TABLE_OR_PAGE: u64 = 1 << 1;
/// Stage-1 AttrIndx, bits `[4:2]`; stage-2 MemAttr, bits `[5:2]`.
const ATTR_SHIFT: u32 = 2;
#[cfg(test)]
const STAGE1_ATTR_INDEX_MASK: u64 = 0b111 << ATTR_SHIFT;
#[cfg(test)]
const STAGE2_MEMATTR_MASK: u64 = 0b1111 << ATTR_SHIFT;
/// Stage-2 MemAttr for Normal, outer and inner write-back cacheable.
const STAGE2_MEMATTR_NORMAL: u64 = 0b1111;
/// Stage-2 MemAttr for Device-nGnRE.
const STAGE2_MEMATTR_DEVICE: u64 = 0b0001;
/// Stage-1 AP[1] (RES1 in single-EL regimes); stage-2 S2AP[0], read allowed.
const BIT6: u64 = 1 << 6;
/// Stage-1 AP[2], read-only; stage-2 S2AP[1], write allowed.
const BIT7: u64 = 1 << 7;
/// Shareability, bits `[9:8]`.
const SHAREABILITY_SHIFT: u32 = 8;
const INNER_SHAREABLE: u64 = 0b11 << SHAREABILITY_SHIFT;
/// Access flag.
const ACCESS_FLAG: u64 = 1 << 10;
/// Execute never (stage 1: XN in a single-EL regime; stage 2: XN[1]).
const EXECUTE_NEVER: u64 = 1 << 54;
/// Output address bits `[47:12]`.
const ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;

/// Which translation regime a table serves; it decides the attribute encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// The kernel's own stage-1 tables at EL2 (`TTBR0_EL2`).
    El2Stage1,
    /// A cell's stage-2 tables (`VTTBR_EL2`).
    Stage2,
}

/// The memory type of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryType {
    /// Normal memory, write-back cacheable, inner shareable.
    Normal,
    /// Device-nGnRE memory, never executable.
    Device,
}

/// What may be done through a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Loads allowed.
    pub read: bool,
    /// Stores allowed.
    pub write: bool,
    /// Instruction fetches allowed.
    pub execute: bool,
}

impl Access {
    /// Read only.
    pub const READ: Access = Access::new(true, false, false);
    /// Read and write.
    pub const READ_WRITE: Access = Access::new(true, true, false);
    /// Read and execute.
    pub const READ_EXECUTE: Access = Access::new(true, false, true);
    /// Read, write and execute (refused in the EL2 regime).
    #[cfg(test)]
    pub const READ_WRITE_EXECUTE: Access = Access::new(true, true, true);

    /// Builds an access set.
    pub const fn new(read: bool, write: bool, execute: bool) -> Self {
        Access {
            read,
            write,
            execute,
        }
    }
}

/// Why a mapping was refused. A refused mapping changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The input address, output address or size is not a multiple of 4 KiB, or the size
    /// is zero.
    Misaligned {
        /// Input address asked for.
        va: u64,
        /// Output address asked for.
        pa: u64,
        /// Size asked for.
        size: u64,
    },
    /// The range runs past 2^39 (input) or 2^48 (output).
    OutOfRange {
        /// Input address asked for.
        va: u64,
        /// Output address asked for.
        pa: u64,
        /// Size asked for.
        size: u64,
    },
    /// Part of the range is already mapped; `va` is the first such address met.
    AlreadyMapped {
        /// An input address inside both the request and an existing mapping.
        va: u64,
    },
    /// The pool has too few free tables for this mapping.
    OutOfTables,
    /// The combination of memory type and access cannot or must not be expressed.
    Unsupported {
        /// Input address asked for.
        va: u64,
        /// What is refused.
        reason: &'static str,
    },
    /// A table descriptor points outside the pool: the tables were changed behind this
    /// builder's back.
    CorruptTable {
        /// Input address whose walk met the bad descriptor.
        va: u64,
    },
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Misaligned { va, pa, size } => write!(
                f,
                "cannot map {size:#x} bytes at {va:#x} -> {pa:#x}: addresses and size must be non-zero multiples of 4 KiB"
            ),
            Self::OutOfRange { va, pa, size } => write!(
                f,
                "cannot map {size:#x} bytes at {va:#x} -> {pa:#x}: input addresses end at 2^39 and output addresses at 2^48"
            ),
            Self::AlreadyMapped { va } => write!(f, "address {va:#x} is already mapped"),
            Self::OutOfTables => write!(f, "no free translation table left in the pool"),
            Self::Unsupported { va, reason } => write!(f, "cannot map {va:#x}: {reason}"),
            Self::CorruptTable { va } => write!(
                f,
                "translation table walk for {va:#x} met a descriptor pointing outside the table pool"
            ),
        }
    }
}

/// The result of [`PageTable::translate`].
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Output address of the translated input address.
    pub pa: u64,
    /// Memory type of the mapping.
    pub memory: MemoryType,
    /// Access the mapping grants.
    pub access: Access,
}

/// Memory for translation tables, lent by the kernel.
///
/// The tables are contiguous in physical memory: table `i` is at `base_pa + i * 4096`.
/// Tables are handed out in order and zeroed when handed out, never returned.
pub struct TablePool<'a> {
    tables: &'a mut [Table],
    base_pa: u64,
    used: usize,
}

impl<'a> TablePool<'a> {
    /// A pool over `tables`, the first of which is at physical address `base_pa`.
    ///
    /// A table descriptor can only point at a 4 KiB-aligned address below 2^48: if
    /// `base_pa` is misaligned or the tables would run past 2^48, the pool is empty and
    /// every allocation fails with [`MapError::OutOfTables`].
    pub fn new(tables: &'a mut [Table], base_pa: u64) -> Self {
        let bytes = (tables.len() as u128) * u128::from(TABLE_SIZE);
        let fits = u128::from(base_pa) + bytes <= 1 << OUTPUT_ADDRESS_BITS;
        let usable = base_pa & (TABLE_SIZE - 1) == 0 && fits;
        TablePool {
            tables: if usable { tables } else { &mut [] },
            base_pa,
            used: 0,
        }
    }

    /// Tables not handed out yet.
    pub fn free(&self) -> usize {
        self.tables.len() - self.used
    }

    fn allocate(&mut self) -> Result<usize, MapError> {
        let index = self.used;
        let table = self.tables.get_mut(index).ok_or(MapError::OutOfTables)?;
        table.fill(0);
        self.used += 1;
        Ok(index)
    }

    fn physical_address(&self, index: usize) -> u64 {
        self.base_pa + index as u64 * TABLE_SIZE
    }

    /// The pool index of the allocated table at `pa`, if there is one.
    fn index_of(&self, pa: u64) -> Option<usize> {
        let offset = pa.checked_sub(self.base_pa)?;
        if offset % TABLE_SIZE != 0 {
            return None;
        }
        let index = usize::try_from(offset / TABLE_SIZE).ok()?;
        (index < self.used).then_some(index)
    }
}

/// What one entry of a table holds.
enum Entry {
    Invalid,
    /// A table descriptor, with the pool index of the next-level table (`None` if the
    /// descriptor points outside the pool).
    Table(Option<usize>),
    /// A block or page descriptor.
    Leaf,
}

/// Whether a walk only checks and counts, or writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    DryRun,
    Write,
}

/// One mapping request, carried down the walk.
#[derive(Clone, Copy)]
struct Request {
    /// Input address of the request's start.
    va: u64,
    /// Output address of the request's start.
    pa: u64,
    /// Leaf attributes (everything but the address and the type bits).
    attributes: u64,
}

/// A translation table tree rooted at one level-1 table.
pub struct PageTable<'a> {
    pool: TablePool<'a>,
    regime: Regime,
    root: usize,
}

impl<'a> PageTable<'a> {
    /// A tree with an empty root table allocated from `pool`.
    pub fn new(mut pool: TablePool<'a>, regime: Regime) -> Result<Self, MapError> {
        let root = pool.allocate()?;
        Ok(PageTable { pool, regime, root })
    }

    /// Physical address of the root table (for `TTBR0_EL2` or `VTTBR_EL2`).
    pub fn root_pa(&self) -> u64 {
        self.pool.physical_address(self.root)
    }

    /// The regime the tree serves.
    pub fn regime(&self) -> Regime {
        self.regime
    }

    /// Number of tables allocated, root included.
    #[cfg(test)]
    pub fn tables_used(&self) -> usize {
        self.pool.used
    }

    /// Maps `[va, va + size)` to `[pa, pa + size)` with the largest blocks alignment allows.
    ///
    /// Refuses (changing nothing) misaligned or empty ranges, ranges beyond 2^39 (input) or
    /// 2^48 (output), overlap with an existing mapping, write without read, any mapping
    /// without access, write and execute together in the EL2 regime, and a mapping the
    /// pool has too few tables for. Device memory is always mapped execute-never.
    pub fn map(
        &mut self,
        va: u64,
        pa: u64,
        size: u64,
        memory: MemoryType,
        access: Access,
    ) -> Result<(), MapError> {
        if size == 0 || (va | pa | size) & (PAGE_SIZE - 1) != 0 {
            return Err(MapError::Misaligned { va, pa, size });
        }
        let fits = |start: u64, bits| u128::from(start) + u128::from(size) <= 1u128 << bits;
        if !fits(va, INPUT_ADDRESS_BITS) || !fits(pa, OUTPUT_ADDRESS_BITS) {
            return Err(MapError::OutOfRange { va, pa, size });
        }
        let end = va + size;
        let attributes = self.leaf_attributes(va, memory, access)?;
        let request = Request { va, pa, attributes };
        let needed = self.walk(Some(self.root), 1, va, end, request, Mode::DryRun)?;
        if needed > self.pool.free() {
            return Err(MapError::OutOfTables);
        }
        self.walk(Some(self.root), 1, va, end, request, Mode::Write)?;
        Ok(())
    }

    /// Where `va` leads, with the mapping's type and access; `None` if unmapped or beyond
    /// the input-address range. (The kernel never reads its tables back: this is how the
    /// tests check every descriptor bit.)
    #[cfg(test)]
    pub fn translate(&self, va: u64) -> Option<Translation> {
        if va >= 1 << INPUT_ADDRESS_BITS {
            return None;
        }
        let mut table = self.root;
        for level in 1..=3 {
            let descriptor = *self.pool.tables.get(table)?.get(entry_index(va, level))?;
            match self.classify(descriptor, level) {
                Entry::Invalid => return None,
                Entry::Table(next) => table = next?,
                Entry::Leaf => {
                    let offset = va & (level_size(level) - 1);
                    return Some(self.decode_leaf(descriptor, offset));
                }
            }
        }
        None
    }

    /// The attribute bits of a leaf descriptor for this regime, or why the combination is
    /// refused.
    fn leaf_attributes(
        &self,
        va: u64,
        memory: MemoryType,
        access: Access,
    ) -> Result<u64, MapError> {
        let refuse = |reason| Err(MapError::Unsupported { va, reason });
        if access.write && !access.read {
            return refuse("write access without read access");
        }
        if !access.read && !access.execute {
            return refuse("a mapping must grant some access");
        }
        let execute = access.execute && memory == MemoryType::Normal;
        // The shareability, the stage-1 attribute index and the stage-2 MemAttr of `memory`.
        let (shareability, index, memattr) = match memory {
            MemoryType::Normal => (INNER_SHAREABLE, ATTR_INDEX_NORMAL, STAGE2_MEMATTR_NORMAL),
            MemoryType::Device => (0, ATTR_INDEX_DEVICE, STAGE2_MEMATTR_DEVICE),
        };
        let mut attributes = ACCESS_FLAG | shareability;
        if !execute {
            attributes |= EXECUTE_NEVER;
        }
        match self.regime {
            Regime::El2Stage1 => {
                if !access.read {
                    return refuse("EL2 stage-1 mappings are always readable");
                }
                if access.write && access.execute {
                    return refuse("EL2 mappings are never both writable and executable");
                }
                attributes |= index << ATTR_SHIFT | BIT6;
                if !access.write {
                    attributes |= BIT7;
                }
            }
            Regime::Stage2 => {
                attributes |= memattr << ATTR_SHIFT;
                if access.read {
                    attributes |= BIT6;
                }
                if access.write {
                    attributes |= BIT7;
                }
            }
        }
        Ok(attributes)
    }

    #[cfg(test)]
    fn decode_leaf(&self, descriptor: u64, offset: u64) -> Translation {
        let execute = descriptor & EXECUTE_NEVER == 0;
        let (memory, access) = match self.regime {
            Regime::El2Stage1 => {
                let index = (descriptor & STAGE1_ATTR_INDEX_MASK) >> ATTR_SHIFT;
                let memory = if index == ATTR_INDEX_DEVICE {
                    MemoryType::Device
                } else {
                    MemoryType::Normal
                };
                (memory, Access::new(true, descriptor & BIT7 == 0, execute))
            }
            Regime::Stage2 => {
                let memattr = (descriptor & STAGE2_MEMATTR_MASK) >> ATTR_SHIFT;
                let memory = if memattr == STAGE2_MEMATTR_NORMAL {
                    MemoryType::Normal
                } else {
                    MemoryType::Device
                };
                let read = descriptor & BIT6 != 0;
                let write = descriptor & BIT7 != 0;
                (memory, Access::new(read, write, execute))
            }
        };
        Translation {
            pa: (descriptor & ADDRESS_MASK) + offset,
            memory,
            access,
        }
    }

    /// What `descriptor`, found at `level`, is.
    fn classify(&self, descriptor: u64, level: u32) -> Entry {
        if descriptor & VALID == 0 {
            return Entry::Invalid;
        }
        if level < 3 && descriptor & TABLE_OR_PAGE != 0 {
            return Entry::Table(self.pool.index_of(descriptor & ADDRESS_MASK));
        }
        Entry::Leaf
    }

    /// Maps `[start, end)` of `request` within the level-`level` table `table` (`None`: a
    /// table that does not exist yet, all entries invalid, only in a dry run). Returns the
    /// number of tables allocated (or, in a dry run, that would be).
    fn walk(
        &mut self,
        table: Option<usize>,
        level: u32,
        start: u64,
        end: u64,
        request: Request,
        mode: Mode,
    ) -> Result<usize, MapError> {
        let size = level_size(level);
        let mut allocated = 0;
        let mut va = start;
        while va < end {
            let entry_start = va & !(size - 1);
            let chunk_end = end.min(entry_start + size);
            let pa = request.pa + (va - request.va);
            let index = entry_index(va, level);
            let descriptor = match table {
                Some(table) => *self
                    .pool
                    .tables
                    .get(table)
                    .and_then(|t| t.get(index))
                    .ok_or(MapError::CorruptTable { va })?,
                None => 0,
            };
            let whole_entry = va == entry_start && chunk_end == entry_start + size;
            let leaf_fits = whole_entry && pa & (size - 1) == 0;
            match self.classify(descriptor, level) {
                Entry::Leaf => return Err(MapError::AlreadyMapped { va }),
                Entry::Table(None) => return Err(MapError::CorruptTable { va }),
                Entry::Table(Some(next)) => {
                    allocated += self.walk(Some(next), level + 1, va, chunk_end, request, mode)?;
                }
                Entry::Invalid if leaf_fits => {
                    if mode == Mode::Write {
                        let type_bit = if level == 3 { TABLE_OR_PAGE } else { 0 };
                        let leaf = (pa & ADDRESS_MASK) | request.attributes | type_bit | VALID;
                        self.set_entry(table, index, leaf, va)?;
                    }
                }
                Entry::Invalid => {
                    // Only levels 1 and 2 get here: at level 3 every chunk is a whole,
                    // page-aligned entry.
                    let next = match mode {
                        Mode::DryRun => None,
                        Mode::Write => {
                            let next = self.pool.allocate()?;
                            let next_pa = self.pool.physical_address(next);
                            let descriptor = (next_pa & ADDRESS_MASK) | TABLE_OR_PAGE | VALID;
                            self.set_entry(table, index, descriptor, va)?;
                            Some(next)
                        }
                    };
                    allocated += 1;
                    allocated += self.walk(next, level + 1, va, chunk_end, request, mode)?;
                }
            }
            va = chunk_end;
        }
        Ok(allocated)
    }

    fn set_entry(
        &mut self,
        table: Option<usize>,
        index: usize,
        descriptor: u64,
        va: u64,
    ) -> Result<(), MapError> {
        let slot = table
            .and_then(|table| self.pool.tables.get_mut(table))
            .and_then(|table| table.get_mut(index))
            .ok_or(MapError::CorruptTable { va })?;
        *slot = descriptor;
        Ok(())
    }
}

/// Bytes covered by one entry of a level-`level` table.
const fn level_size(level: u32) -> u64 {
    match level {
        1 => LEVEL1_BLOCK_SIZE,
        2 => LEVEL2_BLOCK_SIZE,
        _ => PAGE_SIZE,
    }
}

/// Index of `va`'s entry in a level-`level` table (always below 512).
const fn entry_index(va: u64, level: u32) -> usize {
    let shift = 12 + 9 * (3 - level);
    ((va >> shift) & 0x1ff) as usize
}

/// The `PS`/`IPS` field value for a physical address range of `bits` bits. A range not in
/// the architecture's list is rounded down to the next listed one; more than 48 bits is
/// treated as 48, the most a descriptor of this format holds.
pub const fn physical_size_field(bits: u8) -> u64 {
    match bits {
        0..=35 => 0b000,
        36..=39 => 0b001,
        40..=41 => 0b010,
        42..=43 => 0b011,
        44..=47 => 0b100,
        _ => 0b101,
    }
}

/// The physical address range, in bits, that `ID_AA64MMFR0_EL1.PARange` (bits `[3:0]`)
/// reports; unknown encodings are taken as 32 bits, the smallest.
pub const fn pa_range_bits(parange: u8) -> u8 {
    match parange & 0xf {
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        5 => 48,
        6 => 52,
        _ => 32,
    }
}

const T0SZ: u64 = 64 - INPUT_ADDRESS_BITS as u64;
/// IRGN0 = ORGN0 = write-back read/write-allocate, SH0 = inner shareable, TG0 = 4 KiB.
const WALK_ATTRIBUTES: u64 = 0b01 << 8 | 0b01 << 10 | 0b11 << 12;

/// `VTCR_EL2` for the stage-2 tables built here: T0SZ = 25, SL0 = 1 (start at level 1),
/// write-back walks, inner shareable, 4 KiB granule, PS from `pa_range_bits`, bit 31 RES1.
pub const fn vtcr_el2(pa_range_bits: u8) -> u64 {
    const SL0_LEVEL1: u64 = 0b01 << 6;
    T0SZ | SL0_LEVEL1 | WALK_ATTRIBUTES | physical_size_field(pa_range_bits) << 16 | 1 << 31
}

/// `TCR_EL2` (non-VHE) for the EL2 stage-1 tables built here: T0SZ = 25, write-back walks,
/// inner shareable, 4 KiB granule, PS from `pa_range_bits`, RES1 bits 31 and 23.
pub const fn tcr_el2(pa_range_bits: u8) -> u64 {
    T0SZ | WALK_ATTRIBUTES | physical_size_field(pa_range_bits) << 16 | 1 << 23 | 1 << 31
}

#[cfg(test)]
mod tests;
