//! A checked system description: every name resolved to an index, every value in range.
//!
//! Only `validate` builds these types, so code that receives a [`System`] may rely on:
//! names are unique and valid; each cell has 1..=8 vCPUs and one core entry per vCPU;
//! sizes are non-zero and aligned (cell memory to `CELL_RAM_ALIGN`, the rest to 4 KiB);
//! every index points into the right table; no two regions of one cell overlap in IPA space;
//! devices overlap neither each other nor board RAM; a supervisor or controlled cell is
//! another cell; budgets lie within their periods.

use std::path::PathBuf;

use abi::hvc::CapabilityKind;
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
    /// Permitted communication paths (each also an endpoint, after the declared ones).
    pub channels: Vec<Channel>,
    /// IPC endpoints: the `[[endpoint]]` tables in order, then one per `[[channel]]`.
    pub endpoints: Vec<Endpoint>,
    /// Notifications.
    pub notifications: Vec<Notification>,
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
    /// Image path, `${VARIABLE}`s expanded, resolved against the description's folder.
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
    /// Whether the cell runs at EL0 (`privilege = "el0"`, native cells only).
    pub el0: bool,
    /// Indices of the cells this cell may control, ascending, without itself: those listed
    /// in `controls` and those it supervises.
    pub controls: Vec<usize>,
    /// The cell's capability table: slot *i* is entry *i*. Every authority the cell holds
    /// appears exactly once: first the `caps` list's entries, then the rest (see
    /// `validate::capabilities`).
    pub capabilities: Vec<Capability>,
    /// A guest's boot settings (`Some` exactly for guest cells).
    pub guest: Option<Guest>,
}

/// How a guest cell boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guest {
    /// The kernel command line.
    pub bootargs: String,
    /// The initrd, resolved against the description's folder.
    pub initrd: Option<PathBuf>,
    /// Number of virtio-mmio slots in the device tree, 0..=`MAX_VIRTIO_MMIO`.
    pub virtio_mmio: u8,
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
    /// `Some(cell)`: the region is that cell's whole RAM (`cell-ram`), mapped into device
    /// models; `None`: memory of its own.
    pub cell_ram: Option<usize>,
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

/// An IPC endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Unique object name (`<from>-><to>` for a channel).
    pub name: String,
    /// Index of the serving cell.
    pub server: usize,
    /// The calling cells, none of them the server, each once.
    pub clients: Vec<Client>,
}

/// A cell allowed to call an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// Index of the cell.
    pub cell: usize,
    /// The badge the server receives with its calls (default: the cell's index).
    pub badge: u32,
}

/// A notification word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Unique object name.
    pub name: String,
    /// Index of the cell that waits on it.
    pub waiter: usize,
    /// Indices of the cells that may signal it, each once (the waiter may be one).
    pub signallers: Vec<usize>,
    /// A virtual interrupt (16..=1019) also raised in the waiter, on vCPU `vcpu`.
    pub virtual_irq: Option<u16>,
    /// The waiter's vCPU that receives `virtual_irq` (0 without one).
    pub vcpu: u8,
}

/// What a capability designates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// An index into [`System::endpoints`].
    Endpoint(usize),
    /// An index into [`System::notifications`].
    Notification(usize),
    /// An index into [`System::memories`] (a region the holder maps).
    Memory(usize),
    /// A GIC INTID of one of the holder's devices.
    Interrupt(u32),
    /// Another cell's index (control over it).
    Cell(usize),
}

/// One slot of a cell's capability table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    /// What it designates.
    pub object: Object,
    /// The rights: `abi::hvc` right bits, or [`Rights`] bits for memory, 0 for interrupts.
    pub rights: u8,
    /// The badge of an endpoint call capability, else 0.
    pub badge: u32,
}

impl Capability {
    /// The kind the boot plan records.
    pub fn kind(&self) -> CapabilityKind {
        match self.object {
            Object::Endpoint(_) => CapabilityKind::Endpoint,
            Object::Notification(_) => CapabilityKind::Notification,
            Object::Memory(_) => CapabilityKind::SharedMemory,
            Object::Interrupt(_) => CapabilityKind::Interrupt,
            Object::Cell(_) => CapabilityKind::CellControl,
        }
    }
}

impl System {
    /// Sum of all cells' memory.
    pub fn cell_memory(&self) -> u64 {
        self.cells.iter().map(|cell| cell.memory).sum()
    }
}
