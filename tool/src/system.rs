//! A checked system description: every name resolved to an index, every value in range.
//!
//! Only `validate` builds these types, so code that receives a [`System`] may rely on:
//! names are unique and valid; each cell has 1..=8 vCPUs and one core entry per vCPU;
//! sizes are non-zero and aligned (cell memory to `CELL_RAM_ALIGN`, the rest to 4 KiB);
//! every index points into the right table; no two regions of one cell overlap in IPA space;
//! devices overlap neither each other nor board RAM; a supervisor or controlled cell is
//! another cell; budgets lie within their periods.

use std::path::PathBuf;

use abi::plan::{CellKind, FaultPolicy, Rights};

use crate::problem::Span;

/// The whole system.
#[derive(Clone, Debug)]
pub struct System {
    /// The board.
    pub board: Board,
    /// Cells in description order (their index is their `CellId`).
    pub cells: Vec<Cell>,
    /// Shared memory regions.
    pub memories: Vec<SharedMemory>,
    /// Passed-through devices.
    pub devices: Vec<Device>,
    /// Permitted communication paths.
    pub channels: Vec<Channel>,
}

/// The board the system runs on.
#[derive(Clone, Debug)]
pub struct Board {
    /// Informational name.
    pub name: String,
    /// Physical base of RAM.
    pub ram_base: u64,
    /// RAM size in bytes.
    pub ram_size: u64,
    /// Cores used.
    pub cores: u8,
}

/// One cell.
#[derive(Clone, Debug)]
pub struct Cell {
    /// Unique name.
    pub name: String,
    /// What runs in it.
    pub kind: CellKind,
    /// Image path, resolved against the description's folder.
    pub image: PathBuf,
    /// Where `image` is written, for image errors.
    pub image_span: Span,
    /// RAM size in bytes.
    pub memory: u64,
    /// Number of vCPUs.
    pub vcpus: u8,
    /// Scheduling priority.
    pub priority: u8,
    /// Physical core of each vCPU or `ANY_CORE` (length `vcpus`).
    pub cores: Vec<u8>,
    /// What happens on a fault.
    pub fault: FaultPolicy,
    /// Restarts allowed (0 unless [`FaultPolicy::Restart`]).
    pub restart_limit: u8,
    /// Index of the cell that receives fault reports: set exactly with
    /// [`FaultPolicy::Report`], never the cell itself.
    pub supervisor: Option<usize>,
    /// CPU budget, `None` for unlimited.
    pub budget: Option<Budget>,
    /// Whether the cell uses floating point and SIMD.
    pub fp: bool,
    /// Indices of the cells this cell may control, ascending, without itself: those listed
    /// in `controls` and those it supervises.
    pub controls: Vec<usize>,
}

/// A CPU budget: at most `budget_us` of CPU time in every `period_us`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// CPU time per period in microseconds, 1..=`period_us`.
    pub budget_us: u32,
    /// Period in microseconds, `MIN_PERIOD_US`..=`MAX_PERIOD_US` (see `validate`).
    pub period_us: u32,
}

/// A shared memory region.
#[derive(Clone, Debug)]
pub struct SharedMemory {
    /// Unique name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// The cells that map it.
    pub maps: Vec<Map>,
}

/// A shared memory region mapped into one cell.
#[derive(Clone, Debug)]
pub struct Map {
    /// Index of the cell.
    pub cell: usize,
    /// What the cell may do.
    pub rights: Rights,
    /// Where the cell sees it (given or allocated).
    pub ipa: u64,
}

/// A device passed through to a cell.
#[derive(Clone, Debug)]
pub struct Device {
    /// Unique name.
    pub name: String,
    /// Physical base (also its IPA).
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    /// Index of the cell.
    pub cell: usize,
    /// GIC INTIDs routed to the cell's vCPU 0.
    pub irqs: Vec<u32>,
}

/// A permitted communication path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Index of the initiating cell.
    pub from: usize,
    /// Index of the serving cell.
    pub to: usize,
}

impl System {
    /// Sum of all cells' memory.
    pub fn cell_memory(&self) -> u64 {
        self.cells.iter().map(|cell| cell.memory).sum()
    }
}
