//! From a [`RawSystem`] to a checked [`System`], reporting every mistake at once.
//!
//! Checks run table by table; a value that is wrong is reported once and then left out of
//! the checks that depend on it, so one mistake does not cause a cascade of others.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use abi::image::{CELL_RAM_ALIGN, CELL_RAM_IPA};
use abi::plan::{self, CellKind, FaultPolicy, Rights, ANY_CORE};
use toml::Spanned;

use crate::elf::{self, Flat, ImageError};
use crate::guest::Boot;
use crate::problem::{
    CellProblem, Choice, Field, Item, Placed, Problem, Quantity, Reference, Span,
};
use crate::raw::{RawCell, RawSize, RawSystem};
use crate::size::{parse_size, size_from_integer};
use crate::system::{Board, Budget, Cell, Channel, Device, Guest, Map, SharedMemory, System};

/// Board RAM that `check` sets aside for the device tree, the kernel, the plan and the cell
/// images before cell memory; `build` checks the exact layout.
pub const KERNEL_RESERVE: u64 = 16 << 20;
/// Restarts allowed when `fault = "restart"` has no `restart-limit`.
pub const DEFAULT_RESTART_LIMIT: u8 = 3;
/// Shortest budget period in microseconds (the boot plan's limit).
pub const MIN_PERIOD_US: u64 = plan::MIN_PERIOD_US as u64;
/// Longest budget period in microseconds (10 s): longer periods make a budget meaningless
/// for isolation, and keep every budget within the plan's 32-bit fields.
pub const MAX_PERIOD_US: u64 = 10_000_000;

const PAGE: u64 = abi::addr::PAGE_SIZE;

/// A checked system and, when asked for, its loaded cell images (one per cell; a guest's
/// is its whole memory image from the kernel to the initrd) and each guest's boot pieces
/// (`None` for native cells; empty without images).
pub type Validated = (System, Vec<Flat>, Vec<Option<Boot>>);

/// Checks `raw`; image paths are resolved against `base_dir`, and loaded and checked only
/// when `load_images` is true.
pub fn validate(
    raw: &RawSystem,
    base_dir: &Path,
    load_images: bool,
) -> Result<Validated, Vec<Problem>> {
    let mut checker = Checker::default();
    let result = checker.system(raw, base_dir, load_images);
    let mut problems = checker.problems;
    if problems.is_empty() {
        if let Some(validated) = result {
            return Ok(validated);
        }
    }
    problems.sort_by_key(|problem| {
        problem
            .labels()
            .first()
            .map_or(usize::MAX, |(span, _)| span.start)
    });
    Err(problems)
}

/// Whether `name` is 1..=16 bytes of `[a-z0-9_-]`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= plan::MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Parses a rights string: a non-empty subset of `rwx`, each letter at most once.
pub fn parse_rights(text: &str) -> Option<Rights> {
    let mut rights = Rights(0);
    for letter in text.chars() {
        let bit = match letter {
            'r' => Rights::R,
            'w' => Rights::W,
            'x' => Rights::X,
            _ => return None,
        };
        if rights.contains(bit) {
            return None;
        }
        rights = rights.union(bit);
    }
    (rights.0 != 0).then_some(rights)
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

/// A device while checking: name, placement, cell index, interrupts.
type DeviceDraft = (String, Option<Placed>, Option<usize>, Vec<u32>);

/// One `map` entry while checking: cell, rights, IPA (`Some(None)`: to allocate) with its
/// span, and the entry's span.
type MapDraft = (
    Option<usize>,
    Option<Rights>,
    Option<Option<(u64, Span)>>,
    Span,
);

/// A shared memory region while checking: name, size, maps, and for `cell-ram` the cell
/// whose RAM it is.
type MemoryDraft = (String, Option<u64>, Vec<MapDraft>, Option<usize>);

/// What is known about one cell while checking (None: the value was wrong).
struct CellDraft {
    memory: Option<u64>,
    vcpus: Option<u8>,
    priority: Option<u8>,
    cores: Option<Vec<u8>>,
    kind: Option<CellKind>,
    fault: Option<(FaultPolicy, u8)>,
    /// `Some(None)`: no budget (unlimited).
    budget: Option<Option<Budget>>,
    fp: bool,
    /// `Some(true)`: the cell runs at EL0.
    el0: Option<bool>,
    /// The image path as written, `${VARIABLE}`s expanded.
    image: Option<PathBuf>,
    /// `Some(None)`: a native cell.
    guest: Option<Option<Guest>>,
}

impl Checker {
    fn report(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    fn size(&mut self, value: &Spanned<RawSize>) -> Option<u64> {
        let parsed = match value.get_ref() {
            RawSize::Bytes(bytes) => size_from_integer(*bytes),
            RawSize::Text(text) => parse_size(text),
        };
        parsed
            .map_err(|reason| {
                self.report(Problem::BadSize {
                    span: value.span(),
                    reason,
                })
            })
            .ok()
    }

    /// A size that must be non-zero and a multiple of `align`.
    fn aligned_size(
        &mut self,
        value: &Spanned<RawSize>,
        what: Quantity,
        align: u64,
    ) -> Option<u64> {
        let size = self.size(value)?;
        if size == 0 {
            self.report(Problem::EmptySize {
                span: value.span(),
                what,
            });
            return None;
        }
        self.aligned(value.span(), what, size, align)
    }

    /// `value` if it is a multiple of `align` (a power of two).
    fn aligned(&mut self, span: Span, what: Quantity, value: u64, align: u64) -> Option<u64> {
        if value & (align - 1) != 0 {
            self.report(Problem::Misaligned {
                span,
                what,
                value,
                align,
            });
            return None;
        }
        Some(value)
    }

    fn in_range(&mut self, value: &Spanned<i64>, field: Field) -> Option<i64> {
        let (min, max) = field.range();
        let number = *value.get_ref();
        if number < min || number > max {
            self.report(Problem::OutOfRange {
                span: value.span(),
                field,
                value: number,
            });
            return None;
        }
        Some(number)
    }

    fn address(&mut self, value: &Spanned<i64>, what: Quantity) -> Option<u64> {
        let address = self.in_range(value, Field::Address)? as u64;
        self.aligned(value.span(), what, address, PAGE)
    }

    /// Checks a name's form and uniqueness among `seen`; true if it may be used.
    fn name(
        &mut self,
        name: &Spanned<String>,
        item: Item,
        seen: &mut HashMap<String, Span>,
    ) -> bool {
        if !is_valid_name(name.get_ref()) {
            self.report(Problem::BadName {
                span: name.span(),
                item,
                name: name.get_ref().clone(),
            });
            return false;
        }
        if let Some(first) = seen.get(name.get_ref()) {
            self.report(Problem::DuplicateName {
                item,
                name: name.get_ref().clone(),
                first: first.clone(),
                second: name.span(),
            });
            return false;
        }
        seen.insert(name.get_ref().clone(), name.span());
        true
    }

    fn cell_ref(
        &mut self,
        name: &Spanned<String>,
        reference: Reference,
        cells: &HashMap<String, usize>,
        known: &[String],
    ) -> Option<usize> {
        let found = cells.get(name.get_ref()).copied();
        if found.is_none() {
            self.report(Problem::MissingCell {
                span: name.span(),
                reference,
                name: name.get_ref().clone(),
                known: known.to_vec(),
            });
        }
        found
    }

    fn system(&mut self, raw: &RawSystem, base_dir: &Path, load_images: bool) -> Option<Validated> {
        let board = raw.board.get_ref();
        let ram_base = self.address(&board.ram_base, Quantity::RamBase);
        let ram_size = self.aligned_size(&board.ram_size, Quantity::RamSize, PAGE);
        let board_cores = self
            .in_range(&board.cores, Field::BoardCores)
            .map(|c| c as u8);

        // Cells.
        let mut seen = HashMap::new();
        let mut cell_index = HashMap::new();
        let mut drafts = Vec::new();
        for (index, cell) in raw.cell.iter().enumerate() {
            let cell = cell.get_ref();
            if self.name(&cell.name, Item::Cell, &mut seen) {
                cell_index.insert(cell.name.get_ref().clone(), index);
            }
            drafts.push(self.cell(cell, board_cores, &board.cores, ram_size, &board.ram_size));
        }
        let mut known: Vec<String> = Vec::new();
        for cell in &raw.cell {
            let name = cell.get_ref().name.get_ref();
            if cell_index.contains_key(name) && !known.contains(name) {
                known.push(name.clone());
            }
        }
        if raw.cell.is_empty() {
            self.report(Problem::NoCells);
        }
        let mut supervisors = Vec::new();
        let mut controls = Vec::new();
        for (index, cell) in raw.cell.iter().enumerate() {
            let cell = cell.get_ref();
            let policy = drafts[index].fault.map(|(policy, _)| policy);
            supervisors.push(self.supervisor(cell, index, policy, &cell_index, &known));
            controls.push(self.controls(cell, index, &cell_index, &known));
        }
        if raw.cell.len() > plan::MAX_CELLS {
            self.report(Problem::TooMany {
                what: "cells",
                count: raw.cell.len(),
                max: plan::MAX_CELLS,
            });
        }

        // Shared memory regions: (name, size, maps with optional IPA and its span).
        let mut seen = HashMap::new();
        let mut memories: Vec<MemoryDraft> = Vec::new();
        for spanned_memory in &raw.memory {
            let memory = spanned_memory.get_ref();
            self.name(&memory.name, Item::Memory, &mut seen);
            let (size, cell_ram) = match (&memory.size, &memory.cell_ram) {
                (Some(size), None) => (self.aligned_size(size, Quantity::MemorySize, PAGE), None),
                (None, Some(owner)) => {
                    let reference = Reference::CellRam(memory.name.get_ref().clone());
                    let owner = self.cell_ref(owner, reference, &cell_index, &known);
                    (owner.and_then(|owner| drafts[owner].memory), owner)
                }
                (size, _) => {
                    self.report(Problem::Object(crate::problem::ObjectProblem::MemorySize {
                        span: spanned_memory.span(),
                        memory: memory.name.get_ref().clone(),
                        both: size.is_some(),
                    }));
                    (None, None)
                }
            };
            let mut maps = Vec::new();
            let mut mapped: HashMap<usize, Span> = HashMap::new();
            for map in &memory.map {
                let entry = map.get_ref();
                let reference = Reference::Map(memory.name.get_ref().clone());
                let cell = self.cell_ref(&entry.cell, reference, &cell_index, &known);
                let rights = parse_rights(entry.rights.get_ref());
                if rights.is_none() {
                    self.report(Problem::BadChoice {
                        span: entry.rights.span(),
                        field: Choice::Rights,
                        value: entry.rights.get_ref().clone(),
                    });
                }
                let ipa = match &entry.ipa {
                    Some(ipa) => self
                        .address(ipa, Quantity::MapIpa)
                        .map(|a| Some((a, ipa.span()))),
                    None => Some(None),
                };
                if let (Some(cell), Some(owner)) = (cell, cell_ram) {
                    if cell == owner {
                        self.report(Problem::Object(crate::problem::ObjectProblem::OwnRam {
                            span: map.span(),
                            memory: memory.name.get_ref().clone(),
                            cell: entry.cell.get_ref().clone(),
                        }));
                    }
                }
                if let Some(cell) = cell {
                    if let Some(first) = mapped.get(&cell) {
                        self.report(Problem::MapTwice {
                            memory: memory.name.get_ref().clone(),
                            cell: entry.cell.get_ref().clone(),
                            first: first.clone(),
                            second: map.span(),
                        });
                    }
                    mapped.insert(cell, map.span());
                }
                maps.push((cell, rights, ipa, map.span()));
            }
            memories.push((memory.name.get_ref().clone(), size, maps, cell_ram));
        }

        // Devices.
        let mut seen = HashMap::new();
        let mut devices = Vec::new();
        let mut irq_seen: HashMap<i64, Span> = HashMap::new();
        for device in &raw.device {
            let device = device.get_ref();
            self.name(&device.name, Item::Device, &mut seen);
            let base = self.address(&device.base, Quantity::DeviceBase);
            let size = self.aligned_size(&device.size, Quantity::DeviceSize, PAGE);
            let reference = Reference::Device(device.name.get_ref().clone());
            let cell = self.cell_ref(&device.cell, reference, &cell_index, &known);
            let mut irqs = Vec::new();
            for irq in &device.irqs {
                if let Some(intid) = self.in_range(irq, Field::Irq) {
                    if let Some(first) = irq_seen.get(&intid) {
                        self.report(Problem::IrqTwice {
                            intid: intid as u32,
                            first: first.clone(),
                            second: irq.span(),
                        });
                    } else {
                        irq_seen.insert(intid, irq.span());
                    }
                    irqs.push(intid as u32);
                }
            }
            let placed = base.zip(size).map(|(start, size)| Placed {
                what: format!("device `{}`", device.name.get_ref()),
                span: device.base.span(),
                start,
                size,
            });
            devices.push((device.name.get_ref().clone(), placed, cell, irqs));
        }
        self.device_overlaps(
            &devices,
            ram_base.zip(ram_size),
            &raw.board.get_ref().ram_base,
        );

        // Channels.
        let mut channels = Vec::new();
        let mut channel_spans = Vec::new();
        let mut channel_seen: HashMap<(usize, usize), Span> = HashMap::new();
        for channel in &raw.channel {
            let entry = channel.get_ref();
            let from = self.cell_ref(&entry.from, Reference::ChannelFrom, &cell_index, &known);
            let to = self.cell_ref(&entry.to, Reference::ChannelTo, &cell_index, &known);
            let (Some(from), Some(to)) = (from, to) else {
                continue;
            };
            if from == to {
                self.report(Problem::ChannelToSelf {
                    span: channel.span(),
                    cell: entry.from.get_ref().clone(),
                });
            } else if let Some(first) = channel_seen.get(&(from, to)) {
                self.report(Problem::ChannelTwice {
                    first: first.clone(),
                    second: channel.span(),
                    from: entry.from.get_ref().clone(),
                    to: entry.to.get_ref().clone(),
                });
            } else {
                channel_seen.insert((from, to), channel.span());
            }
            channels.push(Channel { from, to });
            channel_spans.push((Channel { from, to }, channel.span()));
        }
        if channels.len() > plan::MAX_CHANNELS {
            self.report(Problem::TooMany {
                what: "channels",
                count: channels.len(),
                max: plan::MAX_CHANNELS,
            });
        }
        // IPC objects and capability tables.
        let endpoints = self.endpoints(raw, &channel_spans, &cell_index, &known);
        let vcpus: Vec<Option<u8>> = drafts.iter().map(|d| d.vcpus).collect();
        let notifications = self.notifications(raw, &cell_index, &known, &vcpus, &devices);
        self.interrupts_at_el0(raw, &drafts, &devices, &notifications);
        self.object_names(raw);
        for (what, count, max) in [
            ("endpoints", endpoints.len(), plan::MAX_ENDPOINTS),
            (
                "notifications",
                notifications.len(),
                plan::MAX_NOTIFICATIONS,
            ),
        ] {
            if count > max {
                self.report(Problem::TooMany { what, count, max });
            }
        }
        let controlled: Vec<Option<Vec<usize>>> = controls
            .iter()
            .enumerate()
            .map(|(index, listed)| {
                let mut controlled = listed.clone()?;
                for (other, supervisor) in supervisors.iter().enumerate() {
                    if *supervisor.as_ref()? == Some(index) {
                        controlled.push(other);
                    }
                }
                controlled.sort_unstable();
                controlled.dedup();
                Some(controlled)
            })
            .collect();
        let grants = capabilities::Grants {
            endpoints: &endpoints,
            notifications: &notifications,
            memories: &memories,
            devices: &devices,
            controlled: &controlled,
            cells: &cell_index,
        };
        let tables = self.capability_tables(raw, &grants);
        self.check_guest_endpoints(raw, &drafts, &tables);

        let irq_count: usize = devices.iter().map(|d| d.3.len()).sum();
        if irq_count > plan::MAX_IRQS {
            self.report(Problem::TooMany {
                what: "interrupts",
                count: irq_count,
                max: plan::MAX_IRQS,
            });
        }

        // Total memory.
        if let Some(ram_size) = ram_size {
            let sizes: Vec<Option<u64>> = drafts.iter().map(|d| d.memory).collect();
            let single_too_large = sizes.iter().flatten().any(|&m| m > ram_size);
            let cells_memory: u64 = sizes.iter().flatten().sum();
            // A cell's RAM mapped elsewhere takes no memory of its own.
            let shared: u64 = memories
                .iter()
                .filter(|m| m.3.is_none())
                .filter_map(|m| m.1)
                .sum();
            let needed = cells_memory + shared + KERNEL_RESERVE;
            if !single_too_large && needed > ram_size {
                let cells = raw
                    .cell
                    .iter()
                    .zip(&sizes)
                    .filter_map(|(cell, size)| {
                        let cell = cell.get_ref();
                        size.map(|size| (cell.memory.span(), cell.name.get_ref().clone(), size))
                    })
                    .collect();
                self.report(Problem::MemoryExceedsBoard {
                    ram_span: board.ram_size.span(),
                    needed,
                    ram_size,
                    cells,
                });
            }
        }

        // IPA space of each cell: RAM, fixed maps, devices; then allocate the other maps.
        let mut allocated: HashMap<(usize, usize), u64> = HashMap::new();
        for (index, cell) in raw.cell.iter().enumerate() {
            let Some(memory) = drafts[index].memory else {
                continue;
            };
            let cell = cell.get_ref();
            let mut placed = vec![Placed {
                what: format!("the RAM of `{}`", cell.name.get_ref()),
                span: cell.memory.span(),
                start: CELL_RAM_IPA,
                size: memory,
            }];
            for (name, size, maps, _) in &memories {
                for (map_cell, _, ipa, _) in maps {
                    if let (Some(size), Some(Some((ipa, span)))) = (size, ipa) {
                        if *map_cell == Some(index) {
                            placed.push(Placed {
                                what: format!("shared memory `{name}`"),
                                span: span.clone(),
                                start: *ipa,
                                size: *size,
                            });
                        }
                    }
                }
            }
            for (_, device, device_cell, _) in &devices {
                if let (Some(device), Some(device_cell)) = (device, device_cell) {
                    if *device_cell == index {
                        placed.push(device.clone());
                    }
                }
            }
            placed.sort_by_key(|p| p.span.start);
            for second in 1..placed.len() {
                for first in 0..second {
                    let (a, b) = (&placed[first], &placed[second]);
                    // Devices sit at IPA == PA: their mutual overlaps are reported once,
                    // as physical conflicts.
                    let both_devices = a.what.starts_with("device") && b.what.starts_with("device");
                    if !both_devices && abi::addr::ranges_overlap(a.start, a.size, b.start, b.size)
                    {
                        self.report(Problem::IpaOverlap {
                            cell: cell.name.get_ref().clone(),
                            first: a.clone(),
                            second: b.clone(),
                        });
                    }
                }
            }
            let mut cursor = CELL_RAM_IPA + memory;
            for (memory_index, (_, size, maps, _)) in memories.iter().enumerate() {
                for (map_cell, _, ipa, _) in maps {
                    if let (Some(size), Some(None)) = (size, ipa) {
                        if *map_cell == Some(index) {
                            let ipa = allocate(cursor, *size, &placed);
                            placed.push(Placed {
                                what: String::new(),
                                span: 0..0,
                                start: ipa,
                                size: *size,
                            });
                            cursor = ipa + size;
                            allocated.insert((memory_index, index), ipa);
                        }
                    }
                }
            }
        }
        let region_count: usize =
            drafts.len() + memories.iter().map(|m| m.2.len()).sum::<usize>() + devices.len();
        if region_count > plan::MAX_REGIONS {
            self.report(Problem::TooMany {
                what: "memory regions",
                count: region_count,
                max: plan::MAX_REGIONS,
            });
        }

        // Images.
        let mut images = Vec::new();
        let mut guest_images = Vec::new();
        if load_images {
            for (index, (cell, draft)) in raw.cell.iter().zip(&drafts).enumerate() {
                let cell = cell.get_ref();
                let Some(written) = &draft.image else {
                    continue;
                };
                match &draft.guest {
                    Some(Some(guest)) => {
                        if let Some(loaded) =
                            self.guest_images(cell, base_dir, written, guest, draft.memory)
                        {
                            guest_images.push((index, loaded));
                            // Replaced by the assembled image once the system is known.
                            images.push(Flat::default());
                        }
                    }
                    _ => {
                        if let Some(flat) = self.image(cell, base_dir, written, draft.memory) {
                            images.push(flat);
                        }
                    }
                }
            }
        }

        if !self.problems.is_empty() {
            return None;
        }

        // Everything checked: assemble.
        let supervisors = supervisors.into_iter().collect::<Option<Vec<_>>>()?;
        let cells = raw
            .cell
            .iter()
            .zip(drafts)
            .enumerate()
            .map(|(index, (cell, draft))| {
                let cell = cell.get_ref();
                let (fault, restart_limit) = draft.fault?;
                Some(Cell {
                    name: cell.name.get_ref().clone(),
                    kind: draft.kind?,
                    image: base_dir.join(draft.image?),
                    image_span: cell.image.span(),
                    memory: draft.memory?,
                    vcpus: draft.vcpus?,
                    priority: draft.priority?,
                    cores: draft.cores?,
                    fault,
                    restart_limit,
                    supervisor: supervisors[index],
                    budget: draft.budget?,
                    fp: draft.fp,
                    el0: draft.el0?,
                    // Listed cells, and the cells this one supervises.
                    controls: controlled[index].clone()?,
                    capabilities: tables[index].clone(),
                    guest: draft.guest?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let memories = memories
            .into_iter()
            .enumerate()
            .map(|(memory_index, (name, size, maps, cell_ram))| {
                let maps = maps
                    .into_iter()
                    .map(|(cell, rights, ipa, _)| {
                        let cell = cell?;
                        let ipa = match ipa? {
                            Some((ipa, _)) => ipa,
                            None => *allocated.get(&(memory_index, cell))?,
                        };
                        Some(Map {
                            cell,
                            rights: rights?,
                            ipa,
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(SharedMemory {
                    name,
                    size: size?,
                    maps,
                    cell_ram,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let devices = devices
            .into_iter()
            .map(|(name, placed, cell, irqs)| {
                let placed = placed?;
                Some(Device {
                    name,
                    base: placed.start,
                    size: placed.size,
                    cell: cell?,
                    irqs,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let board = Board {
            name: board
                .name
                .as_ref()
                .map_or_else(String::new, |n| n.get_ref().clone()),
            ram_base: ram_base?,
            ram_size: ram_size?,
            cores: board_cores?,
        };
        let system = System {
            board,
            cells,
            memories,
            devices,
            channels,
            endpoints: endpoints
                .iter()
                .map(|endpoint| endpoint.finish())
                .collect::<Option<Vec<_>>>()?,
            notifications: notifications
                .iter()
                .map(|notification| notification.finish())
                .collect::<Option<Vec<_>>>()?,
        };
        let mut boots = vec![None; if load_images { system.cells.len() } else { 0 }];
        for (index, loaded) in guest_images {
            let cell = raw.cell[index].get_ref();
            if let Some((flat, boot)) = self.guest_boot(&system, index, cell, loaded) {
                images[index] = flat;
                boots[index] = Some(boot);
            }
        }
        self.problems.is_empty().then_some((system, images, boots))
    }

    fn cell(
        &mut self,
        cell: &RawCell,
        board_cores: Option<u8>,
        board_cores_value: &Spanned<i64>,
        ram_size: Option<u64>,
        ram_size_value: &Spanned<RawSize>,
    ) -> CellDraft {
        let kind = match cell.kind.get_ref().as_str() {
            "native" => Some(CellKind::Native),
            "guest" => Some(CellKind::Guest),
            other => {
                self.report(Problem::BadChoice {
                    span: cell.kind.span(),
                    field: Choice::Kind,
                    value: other.to_string(),
                });
                None
            }
        };
        let memory = self.aligned_size(&cell.memory, Quantity::CellMemory, CELL_RAM_ALIGN);
        if let (Some(memory), Some(ram_size)) = (memory, ram_size) {
            if memory > ram_size {
                self.report(Problem::CellLargerThanBoard {
                    span: cell.memory.span(),
                    cell: cell.name.get_ref().clone(),
                    memory,
                    ram_size,
                    ram_span: ram_size_value.span(),
                });
            }
        }
        let vcpus = match &cell.vcpus {
            Some(vcpus) => self.in_range(vcpus, Field::Vcpus).map(|v| v as u8),
            None => Some(1),
        };
        let priority = self
            .in_range(&cell.priority, Field::Priority)
            .map(|p| p as u8);
        let cores = self.cores(cell, vcpus, board_cores, board_cores_value);
        let fault = self.fault(cell);
        let budget = self.budget(cell);
        let image = self.expanded_path(&cell.image);
        let guest = self.guest_settings(cell, kind);
        CellDraft {
            memory,
            vcpus,
            priority,
            cores,
            kind,
            fault,
            budget,
            fp: cell.fp.as_ref().is_none_or(|fp| *fp.get_ref()),
            el0: self.privilege(cell, kind),
            image,
            guest,
        }
    }

    fn cores(
        &mut self,
        cell: &RawCell,
        vcpus: Option<u8>,
        board_cores: Option<u8>,
        board_cores_value: &Spanned<i64>,
    ) -> Option<Vec<u8>> {
        let Some(list) = &cell.cores else {
            return vcpus.map(|vcpus| vec![ANY_CORE; vcpus as usize]);
        };
        let mut cores = Vec::new();
        let mut ok = true;
        for core in list.get_ref() {
            match self.in_range(core, Field::Core) {
                Some(index) => {
                    if let Some(board_cores) = board_cores {
                        if index >= board_cores as i64 {
                            self.report(Problem::CoreBeyondBoard {
                                span: core.span(),
                                core: index,
                                board_cores,
                                board_span: board_cores_value.span(),
                            });
                            ok = false;
                        }
                    }
                    cores.push(index as u8);
                }
                None => ok = false,
            }
        }
        let vcpus = vcpus?;
        if list.get_ref().len() != vcpus as usize {
            self.report(Problem::CoreCountMismatch {
                cell: cell.name.get_ref().clone(),
                cores_span: list.span(),
                cores: list.get_ref().len(),
                vcpus,
                vcpus_span: cell.vcpus.as_ref().map(|v| v.span()),
            });
            return None;
        }
        ok.then_some(cores)
    }

    /// Whether the cell runs at EL0, from its `privilege`.
    fn privilege(&mut self, cell: &RawCell, kind: Option<CellKind>) -> Option<bool> {
        let Some(privilege) = &cell.privilege else {
            return Some(false);
        };
        let value = privilege.get_ref().as_str();
        let el0 = match value {
            "el0" => true,
            "el1" => false,
            _ => {
                self.report(Problem::Cell(CellProblem::BadPrivilege {
                    span: privilege.span(),
                    value: value.to_string(),
                    guest: false,
                }));
                return None;
            }
        };
        if el0 && kind == Some(CellKind::Guest) {
            self.report(Problem::Cell(CellProblem::BadPrivilege {
                span: privilege.span(),
                value: value.to_string(),
                guest: true,
            }));
            return None;
        }
        Some(el0)
    }

    /// Reports every interrupt that goes to a cell at EL0: a device's IRQs, a notification's
    /// `virtual-irq` (`devices` and `notifications` are the drafts of `raw`'s tables, in order).
    fn interrupts_at_el0(
        &mut self,
        raw: &RawSystem,
        drafts: &[CellDraft],
        devices: &[DeviceDraft],
        notifications: &[objects::NotificationDraft],
    ) {
        // The `privilege = "el0"` of cell `index`, if it runs at EL0.
        let privilege_at_el0 = |index: Option<usize>| -> Option<Span> {
            let index = index?;
            if drafts.get(index)?.el0 != Some(true) {
                return None;
            }
            let cell = raw.cell.get(index)?.get_ref();
            cell.privilege.as_ref().map(Spanned::span)
        };
        for (device, (name, _, cell, _)) in raw.device.iter().zip(devices) {
            let Some(privilege) = privilege_at_el0(*cell) else {
                continue;
            };
            let device = device.get_ref();
            for irq in &device.irqs {
                self.report(Problem::Cell(CellProblem::InterruptAtEl0 {
                    span: irq.span(),
                    what: format!("IRQ {} of device `{name}`", irq.get_ref()),
                    cell: device.cell.get_ref().clone(),
                    privilege: privilege.clone(),
                    notification: false,
                }));
            }
        }
        for (notification, draft) in raw.notification.iter().zip(notifications) {
            let notification = notification.get_ref();
            let (Some(privilege), Some(irq)) =
                (privilege_at_el0(draft.waiter), &notification.virtual_irq)
            else {
                continue;
            };
            self.report(Problem::Cell(CellProblem::InterruptAtEl0 {
                span: irq.span(),
                what: format!(
                    "virtual IRQ {} of notification `{}`",
                    irq.get_ref(),
                    draft.name
                ),
                cell: notification.waiter.get_ref().clone(),
                privilege,
                notification: true,
            }));
        }
    }

    fn fault(&mut self, cell: &RawCell) -> Option<(FaultPolicy, u8)> {
        let policy = match &cell.fault {
            None => Some(FaultPolicy::Stop),
            Some(fault) => match fault.get_ref().as_str() {
                "stop" => Some(FaultPolicy::Stop),
                "restart" => Some(FaultPolicy::Restart),
                "report" => Some(FaultPolicy::Report),
                other => {
                    self.report(Problem::BadChoice {
                        span: fault.span(),
                        field: Choice::Fault,
                        value: other.to_string(),
                    });
                    None
                }
            },
        };
        match (policy?, &cell.restart_limit) {
            (policy @ (FaultPolicy::Stop | FaultPolicy::Report), None) => Some((policy, 0)),
            (FaultPolicy::Stop | FaultPolicy::Report, Some(limit)) => {
                self.report(Problem::RestartLimitWithoutRestart { span: limit.span() });
                None
            }
            (FaultPolicy::Restart, None) => Some((FaultPolicy::Restart, DEFAULT_RESTART_LIMIT)),
            (FaultPolicy::Restart, Some(limit)) => self
                .in_range(limit, Field::RestartLimit)
                .map(|limit| (FaultPolicy::Restart, limit as u8)),
        }
    }

    fn image(
        &mut self,
        cell: &RawCell,
        base_dir: &Path,
        written: &Path,
        memory: Option<u64>,
    ) -> Option<Flat> {
        let written = written.to_path_buf();
        let path = base_dir.join(&written);
        let bad = |reason| Problem::BadImage {
            span: cell.image.span(),
            path: written.clone(),
            reason,
        };
        if !path.is_file() {
            self.report(Problem::MissingImage {
                span: cell.image.span(),
                path: written.clone(),
            });
            return None;
        }
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(error) => {
                self.report(bad(ImageError::Unreadable(error.to_string())));
                return None;
            }
        };
        let loaded = match memory {
            Some(memory) => elf::load_cell_image(&data, memory),
            None => elf::flatten(&data),
        };
        loaded.map_err(|reason| self.report(bad(reason))).ok()
    }

    fn device_overlaps(
        &mut self,
        devices: &[DeviceDraft],
        ram: Option<(u64, u64)>,
        ram_base_value: &Spanned<i64>,
    ) {
        let placed: Vec<&Placed> = devices.iter().filter_map(|d| d.1.as_ref()).collect();
        for (second_index, second) in placed.iter().enumerate() {
            if let Some((ram_base, ram_size)) = ram {
                if abi::addr::ranges_overlap(second.start, second.size, ram_base, ram_size) {
                    self.report(Problem::DeviceOverlapsRam {
                        device: (*second).clone(),
                        ram: Placed {
                            what: "board RAM".to_string(),
                            span: ram_base_value.span(),
                            start: ram_base,
                            size: ram_size,
                        },
                    });
                }
            }
            for first in &placed[..second_index] {
                if abi::addr::ranges_overlap(first.start, first.size, second.start, second.size) {
                    self.report(Problem::DevicesOverlap {
                        first: (*first).clone(),
                        second: (*second).clone(),
                    });
                }
            }
        }
    }
}

/// The lowest page-aligned IPA at or above `cursor` where `size` bytes overlap nothing in
/// `placed`.
fn allocate(cursor: u64, size: u64, placed: &[Placed]) -> u64 {
    let mut candidate = abi::addr::align_up(cursor, PAGE).unwrap_or(cursor);
    while let Some(blocker) = placed
        .iter()
        .find(|p| abi::addr::ranges_overlap(candidate, size, p.start, p.size))
    {
        candidate = abi::addr::align_up(blocker.start + blocker.size, PAGE).unwrap_or(u64::MAX);
    }
    candidate
}

mod capabilities;
mod guest;
mod objects;
mod runtime;

impl Checker {
    /// A guest's endpoint capability in slot *i* serves its virtio-mmio slot *i*
    /// (`abi::device`), so every endpoint a guest holds must sit below its `virtio-mmio`.
    fn check_guest_endpoints(
        &mut self,
        raw: &RawSystem,
        drafts: &[CellDraft],
        tables: &[Vec<crate::system::Capability>],
    ) {
        for ((cell, draft), table) in raw.cell.iter().zip(drafts).zip(tables) {
            let Some(Some(guest)) = &draft.guest else {
                continue;
            };
            let cell = cell.get_ref();
            for (slot, capability) in table.iter().enumerate() {
                if !matches!(capability.object, crate::system::Object::Endpoint(_))
                    || slot < usize::from(guest.virtio_mmio)
                {
                    continue;
                }
                let span = cell
                    .caps
                    .as_ref()
                    .and_then(|caps| caps.get_ref().get(slot).map(|entry| entry.span()))
                    .unwrap_or_else(|| cell.name.span());
                self.report(Problem::Object(
                    crate::problem::ObjectProblem::GuestEndpointSlot {
                        span,
                        cell: cell.name.get_ref().clone(),
                        slot,
                        virtio_mmio: guest.virtio_mmio,
                    },
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_rights() {
        assert!(is_valid_name("ping"));
        assert!(is_valid_name("uart_1-a"));
        assert!(is_valid_name("abcdefghijklmnop"));
        assert!(!is_valid_name("abcdefghijklmnopq"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("Ping"));
        assert!(!is_valid_name("pi ng"));
        assert_eq!(parse_rights("rw"), Some(Rights(3)));
        assert_eq!(parse_rights("xr"), Some(Rights(5)));
        assert_eq!(parse_rights(""), None);
        assert_eq!(parse_rights("rr"), None);
        assert_eq!(parse_rights("rq"), None);
    }

    #[test]
    fn allocation_skips_taken_ranges() {
        let taken = |start, size| Placed {
            what: String::new(),
            span: 0..0,
            start,
            size,
        };
        let placed = [taken(0x1000, 0x1000), taken(0x3000, 0x2000)];
        assert_eq!(allocate(0x800, 0x1000, &placed), 0x2000);
        assert_eq!(allocate(0x800, 0x2000, &placed), 0x5000);
        assert_eq!(allocate(0x6000, 0x1000, &placed), 0x6000);
    }
}
