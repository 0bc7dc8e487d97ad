//! Re-checking a decoded boot plan against the board the kernel actually booted on.
//!
//! The tool validated the system description against the board it was told about, and
//! `abi::plan::Plan::decode` checked the plan's format. This module owns the last check
//! before the kernel builds anything from the plan: that the plan fits *this* board and
//! keeps cells apart. [`check_plan`] verifies, in this order, and reports the first
//! mismatch:
//!
//! 1. the RAM the plan was laid out for lies inside one bank of the board's RAM;
//! 2. the plan uses no more cores than the board has;
//! 3. no region record is claimed by two cells;
//! 4. every RAM or shared region lies inside one bank of the board's RAM, every device
//!    region lies outside the board's RAM, and no region overlaps a reserved range (the
//!    kernel's image, plan and payload, and the kernel's own devices);
//! 5. a RAM region overlaps no other region's physical memory except identical foreign
//!    mappings of it in other cells (device models), and shared regions overlap other
//!    shared regions only when identical (same base and size);
//! 6. within one cell, no two regions overlap in IPA space;
//! 7. each cell has a RAM region at [`abi::image::CELL_RAM_IPA`] that contains the cell's
//!    image (`[load_ipa, load_ipa + image_size)`) and its entry point.
//!
//! Invariants: nothing here panics on any plan that decoded, even one with inconsistent
//! indices; arithmetic on addresses is done in `u128` or checked. Region numbers in
//! messages count from 0 within their cell.

use abi::image::CELL_RAM_IPA;
use abi::plan::{CellRecord, Plan, RegionKind, RegionRecord};
use core::fmt::{self, Write};

/// What the kernel knows about the board, from the device tree and its own layout.
#[derive(Clone, Copy, Debug)]
pub struct Board<'a> {
    /// RAM banks as `(base, size)`.
    pub ram: &'a [(u64, u64)],
    /// Number of usable cores.
    pub cores: usize,
    /// Ranges no cell may map, as `(base, size, name)`: the kernel image, plan and
    /// payload, and the kernel's own devices (GIC distributor, redistributors, UART).
    pub reserved: &'a [(u64, u64, &'static str)],
}

/// A range of addresses, displayed as `0xbase-0xend` with the end exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First address.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Span {
    const fn new(base: u64, size: u64) -> Self {
        Span { base, size }
    }

    fn end(&self) -> u128 {
        u128::from(self.base) + u128::from(self.size)
    }

    fn contains(&self, inner: Span) -> bool {
        inner.base >= self.base && inner.end() <= self.end()
    }

    fn overlaps(&self, other: Span) -> bool {
        abi::addr::ranges_overlap(self.base, self.size, other.base, other.size)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}-{:#x}", self.base, self.end())
    }
}

/// A cell, named in messages (by the plan's name, not a copy of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellRef<'a> {
    name: &'a str,
}

impl<'a> CellRef<'a> {
    fn new(plan: &Plan<'a>, index: usize) -> Self {
        let name = plan.cell_name(index);
        CellRef { name }
    }
}

impl fmt::Display for CellRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cell '")?;
        for byte in self.name.bytes() {
            // Names are UTF-8 from the plan; print only printable ASCII, as the console does.
            f.write_char(char::from(crate::console::sanitize(byte)))?;
        }
        f.write_str("'")
    }
}

/// One region of one cell, named in messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionRef<'a> {
    /// The owning cell.
    pub cell: CellRef<'a>,
    /// The owning cell's index in the plan.
    pub cell_index: u16,
    /// Number of the region within its cell, from 0.
    pub number: u16,
    /// What the region is.
    pub kind: RegionKind,
    /// Where the cell sees it.
    pub ipa: Span,
    /// Where it is on the board.
    pub pa: Span,
}

impl<'a> RegionRef<'a> {
    fn new(plan: &Plan<'a>, cell_index: usize, number: usize, region: &RegionRecord) -> Self {
        RegionRef {
            cell: CellRef::new(plan, cell_index),
            cell_index: u16::try_from(cell_index).unwrap_or(u16::MAX),
            number: u16::try_from(number).unwrap_or(u16::MAX),
            kind: region.kind,
            ipa: Span::new(region.ipa, region.size),
            pa: Span::new(region.pa, region.size),
        }
    }
}

impl fmt::Display for RegionRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            RegionKind::Ram => "RAM",
            RegionKind::Device => "device",
            RegionKind::Shared => "shared",
            RegionKind::Foreign => "another cell's RAM",
        };
        // The number is printed as u32 (as `abi`'s plan errors print theirs): no u16
        // formatter is linked into the kernel.
        write!(
            f,
            "{} region {} ({kind}, IPA {} at PA {})",
            self.cell,
            u32::from(self.number),
            self.ipa,
            self.pa
        )
    }
}

/// How a plan does not fit the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanMismatch<'a> {
    /// The plan's RAM is not inside one bank of the board's RAM.
    PlanRamNotOnBoard {
        /// The RAM the plan was laid out for.
        plan: Span,
        /// The board's first RAM bank, if it has any.
        board: Option<Span>,
        /// How many RAM banks the board has.
        banks: usize,
    },
    /// The plan uses more cores than the board has.
    TooManyCores {
        /// Cores the plan uses.
        plan: u8,
        /// Cores the board has.
        board: usize,
    },
    /// Two cells claim the same region record.
    RegionClaimedTwice {
        /// The first cell.
        first: CellRef<'a>,
        /// The second cell.
        second: CellRef<'a>,
    },
    /// A RAM or shared region is not inside one bank of the board's RAM.
    RegionOutsideRam {
        /// The region.
        region: RegionRef<'a>,
    },
    /// A region overlaps a range reserved for the kernel.
    RegionOverlapsReserved {
        /// The region.
        region: RegionRef<'a>,
        /// The reserved range.
        reserved: Span,
        /// What the reserved range holds.
        name: &'static str,
    },
    /// A device region overlaps the board's RAM.
    DeviceOverlapsRam {
        /// The region.
        region: RegionRef<'a>,
        /// The RAM bank it overlaps.
        ram: Span,
    },
    /// Two regions share physical memory they may not share.
    MemoryConflict {
        /// The earlier region.
        first: RegionRef<'a>,
        /// The later region.
        second: RegionRef<'a>,
    },
    /// A foreign region is not exactly another cell's RAM region.
    ForeignWithoutRam {
        /// The foreign region.
        region: RegionRef<'a>,
    },
    /// Two regions of one cell overlap in IPA space.
    IpaOverlap {
        /// The earlier region.
        first: RegionRef<'a>,
        /// The later region.
        second: RegionRef<'a>,
    },
    /// A cell has no RAM region at [`CELL_RAM_IPA`].
    NoMainRam {
        /// The cell.
        cell: CellRef<'a>,
    },
    /// A cell's image does not fit inside its main RAM.
    ImageOutsideMainRam {
        /// The cell.
        cell: CellRef<'a>,
        /// Where the image is loaded (IPA).
        image: Span,
        /// The cell's main RAM (IPA).
        ram: Span,
    },
    /// A cell's entry point is outside its main RAM.
    EntryOutsideMainRam {
        /// The cell.
        cell: CellRef<'a>,
        /// The entry point (IPA).
        entry_ipa: u64,
        /// The cell's main RAM (IPA).
        ram: Span,
    },
}

impl fmt::Display for PlanMismatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PlanRamNotOnBoard { plan, board, banks } => {
                write!(f, "the plan was laid out for RAM {plan} but the board has ")?;
                match board {
                    None => write!(f, "no RAM"),
                    Some(board) if *banks > 1 => {
                        write!(f, "RAM {board} and {} more banks", banks - 1)
                    }
                    Some(board) => write!(f, "RAM {board}"),
                }
            }
            Self::TooManyCores { plan, board } => {
                write!(f, "the plan uses {plan} cores but the board has {board}")
            }
            Self::RegionClaimedTwice { first, second } => write!(
                f,
                "{first} and {second} claim the same region records; each region belongs to one cell"
            ),
            Self::RegionOutsideRam { region } => {
                write!(f, "{region} is not inside the board's RAM")
            }
            Self::RegionOverlapsReserved {
                region,
                reserved,
                name,
            } => write!(f, "{region} overlaps the kernel's {name} at {reserved}"),
            Self::DeviceOverlapsRam { region, ram } => {
                write!(f, "{region} is a device region but overlaps the board's RAM {ram}")
            }
            Self::MemoryConflict { first, second } => write!(
                f,
                "{first} overlaps {second}: RAM belongs to one region only, and shared memory may be mapped again only whole"
            ),
            Self::ForeignWithoutRam { region } => {
                write!(f, "{region} maps another cell's RAM but matches no cell's RAM region")
            }
            Self::IpaOverlap { first, second } => {
                write!(f, "{first} overlaps {second} in the cell's address space")
            }
            Self::NoMainRam { cell } => {
                write!(f, "{cell} has no RAM region at IPA {CELL_RAM_IPA:#x}")
            }
            Self::ImageOutsideMainRam { cell, image, ram } => write!(
                f,
                "{cell}: its image at IPA {image} does not fit in its RAM at IPA {ram}"
            ),
            Self::EntryOutsideMainRam {
                cell,
                entry_ipa,
                ram,
            } => write!(
                f,
                "{cell}: its entry point {entry_ipa:#x} is outside its RAM at IPA {ram}"
            ),
        }
    }
}

/// Checks that `plan` fits `board`; see the module documentation for the rules.
pub fn check_plan<'a>(plan: &Plan<'a>, board: &Board<'_>) -> Result<(), PlanMismatch<'a>> {
    let banks = || board.ram.iter().map(|&(base, size)| Span { base, size });
    let in_one_bank = |span: Span| banks().any(|bank| bank.contains(span));

    let plan_ram = Span::new(plan.ram_base(), plan.ram_size());
    if !in_one_bank(plan_ram) {
        return Err(PlanMismatch::PlanRamNotOnBoard {
            plan: plan_ram,
            board: banks().next(),
            banks: board.ram.len(),
        });
    }
    if usize::from(plan.core_count()) > board.cores {
        return Err(PlanMismatch::TooManyCores {
            plan: plan.core_count(),
            board: board.cores,
        });
    }
    check_ownership(plan)?;

    for (cell_index, cell) in plan.cells().enumerate() {
        for region in regions(plan, cell_index, &cell) {
            match region.kind {
                RegionKind::Ram | RegionKind::Shared | RegionKind::Foreign => {
                    if !in_one_bank(region.pa) {
                        return Err(PlanMismatch::RegionOutsideRam { region });
                    }
                }
                RegionKind::Device => {
                    if let Some(ram) = banks().find(|bank| bank.overlaps(region.pa)) {
                        return Err(PlanMismatch::DeviceOverlapsRam { region, ram });
                    }
                }
            }
            for &(base, size, name) in board.reserved {
                let reserved = Span { base, size };
                if reserved.overlaps(region.pa) {
                    return Err(PlanMismatch::RegionOverlapsReserved {
                        region,
                        reserved,
                        name,
                    });
                }
            }
        }
    }

    check_memory_conflicts(plan)?;
    check_foreign_regions(plan)?;

    for (cell_index, cell) in plan.cells().enumerate() {
        check_cell_layout(plan, cell_index, &cell)?;
    }
    Ok(())
}

/// The regions of cell `cell_index`, clamped to the region table.
fn regions<'p, 'a>(
    plan: &'p Plan<'a>,
    cell_index: usize,
    cell: &CellRecord,
) -> impl Iterator<Item = RegionRef<'a>> + 'p {
    let first = usize::from(cell.first_region);
    let end = first
        .saturating_add(usize::from(cell.region_count))
        .min(plan.region_count());
    (first..end)
        .map(move |index| RegionRef::new(plan, cell_index, index - first, &plan.region(index)))
}

/// No region record is claimed by two cells.
fn check_ownership<'a>(plan: &Plan<'a>) -> Result<(), PlanMismatch<'a>> {
    for (a, first) in plan.cells().enumerate() {
        for (b, second) in plan.cells().enumerate().skip(a + 1) {
            if abi::addr::ranges_overlap(
                u64::from(first.first_region),
                u64::from(first.region_count),
                u64::from(second.first_region),
                u64::from(second.region_count),
            ) {
                return Err(PlanMismatch::RegionClaimedTwice {
                    first: CellRef::new(plan, a),
                    second: CellRef::new(plan, b),
                });
            }
        }
    }
    Ok(())
}

/// Whether two regions whose physical memory overlaps may do so: identical shared regions,
/// or a cell's RAM and identical foreign mappings of it in other cells.
fn may_alias(first: &RegionRef<'_>, second: &RegionRef<'_>) -> bool {
    use RegionKind::{Foreign, Ram, Shared};
    if first.pa != second.pa {
        return false;
    }
    match (first.kind, second.kind) {
        (Shared, Shared) => true,
        (Ram, Foreign) | (Foreign, Ram) | (Foreign, Foreign) => {
            first.cell_index != second.cell_index
        }
        _ => false,
    }
}

/// Every foreign region is exactly another cell's RAM region.
fn check_foreign_regions<'a>(plan: &Plan<'a>) -> Result<(), PlanMismatch<'a>> {
    for (a, cell_a) in plan.cells().enumerate() {
        for region in regions(plan, a, &cell_a).filter(|r| r.kind == RegionKind::Foreign) {
            let backed = plan.cells().enumerate().any(|(b, cell_b)| {
                b != a
                    && regions(plan, b, &cell_b)
                        .any(|ram| ram.kind == RegionKind::Ram && ram.pa == region.pa)
            });
            if !backed {
                return Err(PlanMismatch::ForeignWithoutRam { region });
            }
        }
    }
    Ok(())
}

/// RAM is aliased only by foreign mappings of it in other cells; shared regions alias only
/// identical shared regions.
fn check_memory_conflicts<'a>(plan: &Plan<'a>) -> Result<(), PlanMismatch<'a>> {
    let memory = |region: &RegionRef<'_>| region.kind != RegionKind::Device;
    for (a, cell_a) in plan.cells().enumerate() {
        for (i, first) in regions(plan, a, &cell_a)
            .enumerate()
            .filter(|(_, r)| memory(r))
        {
            for (b, cell_b) in plan.cells().enumerate().skip(a) {
                // Within the same cell, compare only with later regions.
                let skip = if a == b { i + 1 } else { 0 };
                for second in regions(plan, b, &cell_b).skip(skip).filter(memory) {
                    if !first.pa.overlaps(second.pa) {
                        continue;
                    }
                    if !may_alias(&first, &second) {
                        return Err(PlanMismatch::MemoryConflict { first, second });
                    }
                }
            }
        }
    }
    Ok(())
}

/// A cell's regions do not overlap in IPA space, and its main RAM holds its image and entry.
fn check_cell_layout<'a>(
    plan: &Plan<'a>,
    cell_index: usize,
    cell: &CellRecord,
) -> Result<(), PlanMismatch<'a>> {
    for (i, first) in regions(plan, cell_index, cell).enumerate() {
        for second in regions(plan, cell_index, cell).skip(i + 1) {
            if first.ipa.overlaps(second.ipa) {
                return Err(PlanMismatch::IpaOverlap { first, second });
            }
        }
    }
    let owner = CellRef::new(plan, cell_index);
    let ram = regions(plan, cell_index, cell)
        .find(|r| r.kind == RegionKind::Ram && r.ipa.base == CELL_RAM_IPA)
        .ok_or(PlanMismatch::NoMainRam { cell: owner })?
        .ipa;
    let image = Span::new(cell.load_ipa, u64::from(cell.image_size));
    if !ram.contains(image) {
        return Err(PlanMismatch::ImageOutsideMainRam {
            cell: owner,
            image,
            ram,
        });
    }
    if !ram.contains(Span::new(cell.entry_ipa, 1)) {
        return Err(PlanMismatch::EntryOutsideMainRam {
            cell: owner,
            entry_ipa: cell.entry_ipa,
            ram,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
