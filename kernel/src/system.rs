//! The system the boot plan describes, built once by the boot core: the plan located and
//! checked, each cell's stage-2 tables built and its image loaded, and the run-time state
//! of every cell (running or stopped, restarts, console line).
//!
//! Invariants: [`System`] is immutable after boot and shared by all cores; a cell's mutable
//! state lives in [`CellRuntime`], changed only through atomics or its own lock. The plan
//! and the cell images stay in memory (they sit just after the kernel, reserved), so a cell
//! can be restarted from its pristine image.

use crate::arch::entry;
use crate::arch::mmu;
use crate::cellmem::{CellRam, LoadError};
use crate::platform::Platform;
use abi::plan::{CellRecord, Plan, PlanError, RegionKind, MAX_CELLS};
use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use kcore::console::LineBuffer;
use kcore::fault_queue::FaultQueue;
use kcore::pagetable::{Access, MapError, MemoryType, PageTable, Regime, TablePool};
use kcore::platform_check::{check_plan, Board, PlanMismatch};
use spin::{Mutex, Once};

/// Why the system could not be built from the plan.
#[derive(Debug)]
pub enum BootError {
    /// The plan is missing, corrupt or of another version.
    Plan(PlanError),
    /// The plan does not fit this board.
    Board(PlanMismatch<'static>),
    /// The cell images run past the end of RAM.
    PayloadOutsideRam {
        /// Where the payload ends.
        end: u64,
    },
    /// A cell's stage-2 tables could not be built.
    Stage2 {
        /// The cell's name.
        cell: &'static str,
        /// Why.
        error: MapError,
    },
    /// A cell's image could not be loaded.
    Load {
        /// The cell's name.
        cell: &'static str,
        /// Why.
        error: LoadError,
    },
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plan(error) => write!(f, "{error}"),
            Self::Board(mismatch) => write!(f, "{mismatch}"),
            Self::PayloadOutsideRam { end } => {
                write!(f, "the cell images end at {end:#x}, beyond the board's RAM (the image is truncated or built for more RAM)")
            }
            Self::Stage2 { cell, error } => {
                write!(f, "cell {cell}: cannot build its stage-2 tables: {error}")
            }
            Self::Load { cell, error } => {
                write!(f, "cell {cell}: cannot load its image: {error:?}")
            }
        }
    }
}

/// The immutable, boot-time view of one cell.
#[derive(Clone, Copy, Debug)]
pub struct CellInfo {
    /// The plan's record.
    pub record: CellRecord,
    /// VTTBR_EL2 value: VMID and stage-2 root.
    pub vttbr: u64,
    /// Its RAM.
    pub ram: CellRam,
}

/// The system: the plan and every cell's boot-time facts.
pub struct System {
    /// The decoded plan (it lives in reserved memory after the kernel).
    pub plan: Plan<'static>,
    /// The plan and the cell images: `payload[image_offset..][..image_size]` is an image.
    pub payload: &'static [u8],
    cells: [Option<CellInfo>; MAX_CELLS],
}

impl System {
    /// Cell `index`, if it exists.
    // Out of line: looked up at a dozen places, none on the IPC fast path.
    #[inline(never)]
    pub fn cell(&self, index: usize) -> Option<&CellInfo> {
        self.cells.get(index)?.as_ref()
    }

    /// The name of cell `index`, or "?" if there is no such cell (for messages).
    // Out of line: for messages only.
    #[inline(never)]
    pub fn cell_name(&self, index: usize) -> &str {
        self.cell(index).map_or("?", |info| info.record.name())
    }

    /// The pristine image of `cell`.
    pub fn image(&self, cell: &CellRecord) -> &'static [u8] {
        let start = cell.image_offset as usize;
        // The plan decoder checked image_offset + image_size <= payload_len, and the payload
        // slice is exactly payload_len long, so this never falls back.
        self.payload
            .get(start..start + cell.image_size as usize)
            .unwrap_or(&[])
    }

    /// Reloads `cell`'s RAM from its pristine image (a guest's with a fresh boot seed).
    // A cold function (boot and restarts) of the right size to fill the gap the vectors'
    // 2 KiB alignment leaves (kernel/link.ld); the link fails if it no longer fits.
    #[link_section = ".text.before_vectors"]
    pub fn reload(&self, index: usize) -> Result<(), LoadError> {
        let info = self.cell(index).ok_or(LoadError::NoRam)?;
        let image = self.image(&info.record);
        info.ram.load(image, info.record.load_ipa)?;
        if info.record.kind == abi::plan::CellKind::Guest {
            let tree_ipa = crate::guest::device_tree_ipa(self, &info.record);
            let offset = tree_ipa.saturating_sub(info.record.load_ipa) as usize;
            if let Some(tree) = image.get(offset..) {
                crate::entropy::seed_guest(tree, &info.ram, tree_ipa);
            }
        }
        Ok(())
    }
}

/// Whether a cell runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CellState {
    /// Its vCPUs are scheduled.
    Running = 0,
    /// Being restarted: the core of its vCPU 0 reloads it, the others drop their vCPUs.
    Restarting = 1,
    /// Stopped for good.
    Stopped = 2,
}

/// Fault reports a supervisor cell has not collected yet.
pub const FAULT_QUEUE_LENGTH: usize = 8;

/// The run-time state of one cell. 512 bytes, the state first: the IPC fast path finds a
/// cell's state with a shift, not a multiplication.
#[repr(C, align(512))]
pub struct CellRuntime {
    state: AtomicU8,
    /// Restarts so far.
    pub restarts: AtomicU8,
    /// Faults so far.
    pub faults: AtomicU32,
    /// Capability denials so far.
    pub denials: AtomicU32,
    /// Bit `i` set while vCPU `i` is scheduled on its core: a restart reloads the cell's
    /// memory only once this is empty.
    pub active_vcpus: AtomicU8,
    /// Bumped on every stop, start or restart; vCPUs of an older generation are stale.
    pub generation: AtomicU32,
    /// The cell's partial console line.
    pub console: Mutex<LineBuffer>,
    /// Fault reports for this cell as a supervisor.
    pub fault_reports: Mutex<FaultQueue<FAULT_QUEUE_LENGTH>>,
}

impl CellRuntime {
    const fn new() -> Self {
        Self {
            state: AtomicU8::new(CellState::Running as u8),
            restarts: AtomicU8::new(0),
            faults: AtomicU32::new(0),
            denials: AtomicU32::new(0),
            active_vcpus: AtomicU8::new(0),
            generation: AtomicU32::new(0),
            console: Mutex::new(LineBuffer::new()),
            fault_reports: Mutex::new(FaultQueue::new()),
        }
    }

    /// The cell's state.
    pub fn state(&self) -> CellState {
        match self.state.load(Ordering::Acquire) {
            0 => CellState::Running,
            1 => CellState::Restarting,
            _ => CellState::Stopped,
        }
    }

    /// Moves a running cell to `to` and bumps its generation; false if it was not running
    /// (another vCPU of the cell got there first).
    pub fn leave_running(&self, to: CellState) -> bool {
        self.move_state(CellState::Running, to)
    }

    /// Moves the cell from state `from` to `to` and bumps its generation; false if it was
    /// not in `from`. Out of line: it sits on every stop, start, restart and fault path.
    #[inline(never)]
    fn move_state(&self, from: CellState, to: CellState) -> bool {
        let moved = self
            .state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if moved {
            self.generation.fetch_add(1, Ordering::AcqRel);
            bump_epoch();
        }
        moved
    }

    /// Moves a stopped cell to restarting (a start) and bumps its generation; false if it
    /// was not stopped.
    pub fn start_stopped(&self) -> bool {
        self.move_state(CellState::Stopped, CellState::Restarting)
    }

    /// Prints what is left of the cell's partial console line, under its `name`.
    pub fn flush_console(&self, name: &str) {
        let mut line = self.console.lock();
        line.flush(&mut |line| crate::console::cell_line(name, line));
    }

    /// Counts one capability denial (saturating). Inlined on purpose: as a call, it costs
    /// the allowed notification path 6 instructions (measured: `notify_wake_insns`).
    pub fn count_denial(&self) {
        let _ = self
            .denials
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                count.checked_add(1)
            });
    }

    /// Marks a restarting cell as running again.
    pub fn finish_restart(&self) {
        self.state
            .store(CellState::Running as u8, Ordering::Release);
        bump_epoch();
    }
}

static SYSTEM: Once<System> = Once::new();
/// Bumped after every change of any cell's state, so that a core can tell in one load
/// whether it must look at its vCPUs' cells again.
static EPOCH: AtomicU32 = AtomicU32::new(0);

/// The current state epoch (see [`EPOCH`]).
pub fn epoch() -> u32 {
    EPOCH.load(Ordering::Acquire)
}

/// Announces a change other cores must look at (a vCPU of a restarting cell stopped).
pub fn state_changed() {
    bump_epoch();
}

fn bump_epoch() {
    EPOCH.fetch_add(1, Ordering::AcqRel);
}
static RUNTIME: [CellRuntime; MAX_CELLS] = [const { CellRuntime::new() }; MAX_CELLS];

/// The system, once built.
pub fn system() -> Option<&'static System> {
    SYSTEM.get()
}

/// The run-time state of cell `index` (index masked into range).
pub fn runtime(index: usize) -> &'static CellRuntime {
    &RUNTIME[index % MAX_CELLS]
}

/// Finds the plan after the kernel, checks it against the board, builds every cell's
/// stage-2 tables and loads every image. Boot core only, once, before other cores start.
pub fn build(platform: &Platform) -> Result<&'static System, BootError> {
    let layout = entry::kernel_layout();
    let ram_end = platform
        .ram()
        .iter()
        .find(|&&(base, size)| layout.start >= base && layout.start < base + size)
        .map(|&(base, size)| base + size)
        .unwrap_or(layout.end);
    let plan_base =
        layout.start + abi::image::plan_offset(layout.end - layout.start).unwrap_or(u64::MAX);
    if plan_base >= ram_end {
        return Err(BootError::Plan(PlanError::Truncated {
            needed: abi::plan::HEADER_LEN,
            available: 0,
        }));
    }
    // The range holds the rest of the image QEMU loaded and is never written (the plan check
    // keeps cells' memory out of it).
    // SAFETY: [plan_base, ram_end) is mapped RAM after the kernel, holding no kernel object.
    let after_kernel = unsafe {
        core::slice::from_raw_parts(plan_base as *const u8, (ram_end - plan_base) as usize)
    };
    let plan = Plan::decode(after_kernel).map_err(BootError::Plan)?;
    let payload =
        after_kernel
            .get(..plan.payload_len() as usize)
            .ok_or(BootError::PayloadOutsideRam {
                end: plan_base + plan.payload_len(),
            })?;

    let device = |range: crate::platform::Range, name| (range.base, range.size, name);
    let start = layout.start;
    let size = plan_base + plan.payload_len() - start;
    let reserved = [
        (start, size, "the kernel, the plan and the cell images"),
        device(platform.gic_distributor, "the GIC distributor"),
        device(platform.gic_redistributors, "the GIC redistributors"),
        device(platform.uart, "the kernel console UART"),
    ];
    let board = Board {
        ram: platform.ram(),
        cores: platform.core_count,
        reserved: &reserved,
    };
    check_plan(&plan, &board).map_err(BootError::Board)?;

    let mut cells = [None; MAX_CELLS];
    for (index, record) in plan.cells().enumerate() {
        let root = build_stage2(&plan, index, &record).map_err(|error| BootError::Stage2 {
            cell: plan.cell_name(index),
            error,
        })?;
        let ram = CellRam::of(&plan, &record).map_err(|error| BootError::Load {
            cell: plan.cell_name(index),
            error,
        })?;
        let vmid = (index as u64 + 1) << 48;
        cells[index] = Some(CellInfo {
            record,
            vttbr: vmid | root,
            ram,
        });
    }
    mmu::invalidate_guest_tlbs();
    let system = SYSTEM.call_once(|| System {
        plan,
        payload,
        cells,
    });
    for index in 0..plan.cell_count() {
        system.reload(index).map_err(|error| BootError::Load {
            cell: plan.cell_name(index),
            error,
        })?;
    }
    Ok(system)
}

fn build_stage2(plan: &Plan<'_>, index: usize, cell: &CellRecord) -> Result<u64, MapError> {
    // SAFETY: called once per cell on the boot core before any core runs cells, so this
    // cell's table storage has no other user.
    let (tables, base) = unsafe { mmu::stage2_tables(index) }.ok_or(MapError::OutOfTables)?;
    let mut table = PageTable::new(TablePool::new(tables, base), Regime::Stage2)?;
    for region in plan.regions_of(cell) {
        let memory = match region.kind {
            RegionKind::Device => MemoryType::Device,
            RegionKind::Ram | RegionKind::Shared | RegionKind::Foreign => MemoryType::Normal,
        };
        let access = Access {
            read: region.rights.contains(abi::plan::Rights::R),
            write: region.rights.contains(abi::plan::Rights::W),
            execute: region.rights.contains(abi::plan::Rights::X)
                && region.kind != RegionKind::Device,
        };
        table.map(region.ipa, region.pa, region.size, memory, access)?;
    }
    Ok(table.root_pa())
}
