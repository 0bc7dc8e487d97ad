//! Every mistake a system description can contain, and how each is shown to a person.
//!
//! A [`Problem`] carries the source spans of everything involved (both sides of a conflict),
//! so [`Diagnostics::render`] can print rustc-style reports: the file, line and column, the
//! offending line with the text underlined, and a `help:` line saying how to fix it.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode,
};

use crate::elf::ImageError;
use crate::size::{Size, SizeError};

mod cell;
mod guest;
mod object;
pub use cell::{CellProblem, Timing};
pub use guest::GuestProblem;
pub use object::{ObjectKind, ObjectProblem};

/// Byte range in the description file.
pub type Span = Range<usize>;

/// A kind of named item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// `[[cell]]`.
    Cell,
    /// `[[memory]]`.
    Memory,
    /// `[[device]]`.
    Device,
    /// `[[endpoint]]`.
    Endpoint,
    /// `[[notification]]`.
    Notification,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cell => "cell",
            Self::Memory => "memory region",
            Self::Device => "device",
            Self::Endpoint => "endpoint",
            Self::Notification => "notification",
        })
    }
}

/// Where a cell is named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// `from` of a channel.
    ChannelFrom,
    /// `to` of a channel.
    ChannelTo,
    /// A `map` entry of the named memory region.
    Map(String),
    /// `cell-ram` of the named memory region.
    CellRam(String),
    /// `cell` of the named device.
    Device(String),
    /// `supervisor` of the named cell.
    Supervisor(String),
    /// An entry of the named cell's `controls`.
    Controls(String),
    /// `server` of the named endpoint.
    EndpointServer(String),
    /// A client of the named endpoint.
    EndpointClient(String),
    /// `waiter` of the named notification.
    NotificationWaiter(String),
    /// A signaller of the named notification.
    NotificationSignaller(String),
}

/// A field with a closed set of textual values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// A cell's `kind`.
    Kind,
    /// A cell's `fault`.
    Fault,
    /// A map's `rights`.
    Rights,
}

/// An integer field with a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `board.cores`.
    BoardCores,
    /// A cell's `vcpus`.
    Vcpus,
    /// A cell's `priority`.
    Priority,
    /// A cell's `restart-limit`.
    RestartLimit,
    /// An entry of a cell's `cores`.
    Core,
    /// A device's IRQ.
    Irq,
    /// A base address or IPA.
    Address,
    /// A notification's `virtual-irq`.
    VirtualIrq,
    /// A notification's `vcpu`.
    Vcpu,
    /// A client's `badge`.
    Badge,
}

impl Field {
    /// The inclusive range the field accepts.
    pub fn range(self) -> (i64, i64) {
        match self {
            Self::BoardCores => (1, abi::plan::MAX_CORES as i64),
            Self::Vcpus => (1, abi::plan::MAX_VCPUS_PER_CELL as i64),
            Self::Priority => (0, abi::plan::MAX_PRIORITY as i64),
            Self::RestartLimit => (1, 255),
            Self::Core => (0, abi::plan::MAX_CORES as i64 - 1),
            Self::Irq => (32, 1019),
            Self::Address => (0, i64::MAX),
            Self::VirtualIrq => (
                abi::plan::MIN_VIRTUAL_IRQ.into(),
                abi::plan::MAX_VIRTUAL_IRQ.into(),
            ),
            Self::Vcpu => (0, abi::plan::MAX_VCPUS_PER_CELL as i64 - 1),
            Self::Badge => (0, u32::MAX.into()),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::BoardCores => "board core count",
            Self::Vcpus => "vCPU count",
            Self::Priority => "priority",
            Self::RestartLimit => "restart limit",
            Self::Core => "core",
            Self::Irq => "interrupt",
            Self::Address => "address",
            Self::VirtualIrq => "virtual interrupt",
            Self::Vcpu => "vCPU",
            Self::Badge => "badge",
        }
    }

    fn help(self) -> String {
        match self {
            Self::BoardCores => format!(
                "the kernel drives 1 to {} cores: set `cores` in that range",
                abi::plan::MAX_CORES
            ),
            Self::Vcpus => format!(
                "a cell has 1 to {} vCPUs: set `vcpus` in that range",
                abi::plan::MAX_VCPUS_PER_CELL
            ),
            Self::Priority => format!(
                "priorities run from 0 (lowest) to {} (most urgent): pick one in that range",
                abi::plan::MAX_PRIORITY
            ),
            Self::RestartLimit => "allow 1 to 255 restarts".to_string(),
            Self::Core => "cores are numbered from 0".to_string(),
            Self::Irq => "devices' interrupts are shared peripheral interrupts: INTIDs 32 to 1019"
                .to_string(),
            Self::Address => "an address cannot be negative".to_string(),
            Self::VirtualIrq => "a notification raises a PPI or SPI in its waiter: use 16 to 1019, or remove `virtual-irq`".to_string(),
            Self::Vcpu => "vCPUs are numbered from 0".to_string(),
            Self::Badge => "a badge is a 32-bit unsigned number".to_string(),
        }
    }
}

/// A quantity that has an alignment rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    /// `board.ram-base`.
    RamBase,
    /// `board.ram-size`.
    RamSize,
    /// A cell's `memory`.
    CellMemory,
    /// A memory region's `size`.
    MemorySize,
    /// A map's `ipa`.
    MapIpa,
    /// A device's `base`.
    DeviceBase,
    /// A device's `size`.
    DeviceSize,
}

impl Quantity {
    fn name(self) -> &'static str {
        match self {
            Self::RamBase => "board RAM base",
            Self::RamSize => "board RAM size",
            Self::CellMemory => "cell memory",
            Self::MemorySize => "shared memory size",
            Self::MapIpa => "map IPA",
            Self::DeviceBase => "device base",
            Self::DeviceSize => "device size",
        }
    }

    fn is_address(self) -> bool {
        matches!(self, Self::RamBase | Self::MapIpa | Self::DeviceBase)
    }

    fn show(self, value: u64) -> String {
        if self.is_address() {
            format!("{value:#x}")
        } else {
            Size(value).to_string()
        }
    }
}

/// One side of an address-space conflict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// What it is, for people (`device \`uart1\``, `RAM of \`ping\``).
    pub what: String,
    /// Where it is declared.
    pub span: Span,
    /// First address.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Placed {
    fn range(&self) -> String {
        format!(
            "{:#x}..{:#x}",
            self.start,
            self.start.saturating_add(self.size)
        )
    }
}

/// A mistake in a system description.
#[derive(Debug)]
pub enum Problem {
    /// The TOML does not parse or a value has the wrong type.
    Syntax {
        /// Where, if known.
        span: Option<Span>,
        /// The parser's message.
        message: String,
    },
    /// A key that the format does not have.
    UnknownKey {
        /// The key.
        span: Option<Span>,
        /// Its text.
        key: String,
        /// The keys allowed in that table.
        valid: Vec<String>,
    },
    /// A size that does not parse.
    BadSize {
        /// The size.
        span: Span,
        /// Why.
        reason: SizeError,
    },
    /// A name with forbidden characters or length.
    BadName {
        /// The name.
        span: Span,
        /// What it names.
        item: Item,
        /// The name.
        name: String,
    },
    /// Two items of one kind with the same name.
    DuplicateName {
        /// What they are.
        item: Item,
        /// The name.
        name: String,
        /// The first definition.
        first: Span,
        /// The second definition.
        second: Span,
    },
    /// A reference to a cell that is not declared.
    MissingCell {
        /// The reference.
        span: Span,
        /// Where it is.
        reference: Reference,
        /// The name used.
        name: String,
        /// The declared cells.
        known: Vec<String>,
    },
    /// A textual value outside its set.
    BadChoice {
        /// The value.
        span: Span,
        /// Which field.
        field: Choice,
        /// The value given.
        value: String,
    },
    /// An integer outside its range.
    OutOfRange {
        /// The value.
        span: Span,
        /// Which field.
        field: Field,
        /// The value given.
        value: i64,
    },
    /// A vCPU pinned to a core the board does not use.
    CoreBeyondBoard {
        /// The core index.
        span: Span,
        /// The index given.
        core: i64,
        /// `board.cores`.
        board_cores: u8,
        /// Where `board.cores` is.
        board_span: Span,
    },
    /// `cores` does not list one core per vCPU.
    CoreCountMismatch {
        /// The cell.
        cell: String,
        /// The `cores` list.
        cores_span: Span,
        /// Its length.
        cores: usize,
        /// The vCPU count.
        vcpus: u8,
        /// Where `vcpus` is, if given.
        vcpus_span: Option<Span>,
    },
    /// `restart-limit` with `fault = "stop"`.
    RestartLimitWithoutRestart {
        /// The limit.
        span: Span,
    },
    /// A zero size.
    EmptySize {
        /// The size.
        span: Span,
        /// What it sizes.
        what: Quantity,
    },
    /// A base or size that is not a multiple of its alignment.
    Misaligned {
        /// The value.
        span: Span,
        /// What it is.
        what: Quantity,
        /// The value.
        value: u64,
        /// The alignment required.
        align: u64,
    },
    /// Two devices' register windows overlap.
    DevicesOverlap {
        /// The first device.
        first: Placed,
        /// The second device.
        second: Placed,
    },
    /// A device's window overlaps board RAM.
    DeviceOverlapsRam {
        /// The device.
        device: Placed,
        /// Board RAM.
        ram: Placed,
    },
    /// Two regions of one cell at overlapping IPAs.
    IpaOverlap {
        /// The cell.
        cell: String,
        /// One region.
        first: Placed,
        /// The other.
        second: Placed,
    },
    /// A single cell asks for more memory than the board has.
    CellLargerThanBoard {
        /// The cell's memory.
        span: Span,
        /// The cell.
        cell: String,
        /// Its memory.
        memory: u64,
        /// Board RAM size.
        ram_size: u64,
        /// Where `ram-size` is.
        ram_span: Span,
    },
    /// All cells and shared memory together do not fit in board RAM.
    MemoryExceedsBoard {
        /// Where `ram-size` is.
        ram_span: Span,
        /// Bytes needed, with the kernel reserve.
        needed: u64,
        /// Board RAM size.
        ram_size: u64,
        /// Each cell's `memory`: span, name, size.
        cells: Vec<(Span, String, u64)>,
    },
    /// A cell image path that does not exist.
    MissingImage {
        /// The `image` value.
        span: Span,
        /// The path resolved against the description's folder.
        path: PathBuf,
    },
    /// A cell image that is not a usable AArch64 ELF.
    BadImage {
        /// The `image` value.
        span: Span,
        /// The resolved path.
        path: PathBuf,
        /// Why.
        reason: ImageError,
    },
    /// One interrupt routed to two devices (or twice to one).
    IrqTwice {
        /// The INTID.
        intid: u32,
        /// The first assignment.
        first: Span,
        /// The second.
        second: Span,
    },
    /// A channel whose ends are the same cell.
    ChannelToSelf {
        /// The channel.
        span: Span,
        /// The cell.
        cell: String,
    },
    /// The same channel twice.
    ChannelTwice {
        /// The first.
        first: Span,
        /// The second.
        second: Span,
        /// `from`.
        from: String,
        /// `to`.
        to: String,
    },
    /// One memory region mapped twice into the same cell.
    MapTwice {
        /// The region.
        memory: String,
        /// The cell.
        cell: String,
        /// The first map.
        first: Span,
        /// The second.
        second: Span,
    },
    /// A mistake in a cell's budget, supervisor or control rights.
    Cell(CellProblem),
    /// A mistake in a guest cell or an image path.
    Guest(GuestProblem),
    /// A mistake in an endpoint, a notification, an object name or a `caps` list.
    Object(ObjectProblem),
    /// No `[[cell]]`.
    NoCells,
    /// More items than the boot plan holds.
    TooMany {
        /// What.
        what: &'static str,
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
}

fn quote_list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Problem {
    /// What is wrong, in one sentence.
    pub fn message(&self) -> String {
        match self {
            Self::Syntax { message, .. } => format!("invalid system description: {message}"),
            Self::UnknownKey { key, .. } => format!("unknown key `{key}`"),
            Self::BadSize { reason, .. } => format!("invalid size: {reason}"),
            Self::BadName { item, name, .. } => format!("invalid {item} name `{name}`"),
            Self::DuplicateName { item, name, .. } => format!("duplicate {item} name `{name}`"),
            Self::MissingCell {
                reference, name, ..
            } => match reference {
                Reference::ChannelFrom => format!("channel from a missing cell `{name}`"),
                Reference::ChannelTo => format!("channel to a missing cell `{name}`"),
                Reference::Map(memory) => {
                    format!("memory region `{memory}` mapped into a missing cell `{name}`")
                }
                Reference::CellRam(memory) => {
                    format!("memory region `{memory}` is the RAM of a missing cell `{name}`")
                }
                Reference::Device(device) => {
                    format!("device `{device}` passed to a missing cell `{name}`")
                }
                Reference::Supervisor(cell) => {
                    format!("cell `{cell}` is supervised by a missing cell `{name}`")
                }
                Reference::Controls(cell) => {
                    format!("cell `{cell}` controls a missing cell `{name}`")
                }
                Reference::EndpointServer(endpoint) => {
                    format!("endpoint `{endpoint}` is served by a missing cell `{name}`")
                }
                Reference::EndpointClient(endpoint) => {
                    format!("endpoint `{endpoint}` is called by a missing cell `{name}`")
                }
                Reference::NotificationWaiter(notification) => {
                    format!("notification `{notification}` is waited on by a missing cell `{name}`")
                }
                Reference::NotificationSignaller(notification) => {
                    format!("notification `{notification}` is signalled by a missing cell `{name}`")
                }
            },
            Self::BadChoice { field, value, .. } => match field {
                Choice::Kind => format!("unknown cell kind `{value}`"),
                Choice::Fault => format!("unknown fault policy `{value}`"),
                Choice::Rights => format!("invalid rights `{value}`"),
            },
            Self::OutOfRange { field, value, .. } => {
                format!("{} {value} is out of range", field.name())
            }
            Self::CoreBeyondBoard {
                core, board_cores, ..
            } => format!("core {core} is beyond the board's {board_cores} cores"),
            Self::CoreCountMismatch {
                cell, cores, vcpus, ..
            } => format!(
                "cell `{cell}` has {vcpus} vCPU{} but lists {cores} core{}",
                plural(*vcpus as usize),
                plural(*cores)
            ),
            Self::RestartLimitWithoutRestart { .. } => {
                "`restart-limit` is set but the fault policy is not \"restart\"".to_string()
            }
            Self::EmptySize { what, .. } => format!("{} is zero", what.name()),
            Self::Misaligned {
                what, value, align, ..
            } => format!(
                "{} {} is not a multiple of {}",
                what.name(),
                what.show(*value),
                Size(*align)
            ),
            Self::DevicesOverlap { first, second } => {
                format!("{} overlaps {}", second.what, first.what)
            }
            Self::DeviceOverlapsRam { device, .. } => {
                format!("{} overlaps board RAM", device.what)
            }
            Self::IpaOverlap {
                cell,
                first,
                second,
            } => format!(
                "in cell `{cell}`, {} overlaps {} at IPA {:#x}",
                second.what,
                first.what,
                first.start.max(second.start)
            ),
            Self::CellLargerThanBoard {
                cell,
                memory,
                ram_size,
                ..
            } => format!(
                "cell `{cell}` needs {}, more than the board's {} of RAM",
                Size(*memory),
                Size(*ram_size)
            ),
            Self::MemoryExceedsBoard {
                needed, ram_size, ..
            } => format!(
                "cell memory does not fit the board: {} needed (with {} kept for the kernel), {} of RAM",
                Size(*needed),
                Size(crate::validate::KERNEL_RESERVE),
                Size(*ram_size)
            ),
            Self::MissingImage { path, .. } => {
                format!("image `{}` does not exist", path.display())
            }
            Self::BadImage { path, reason, .. } => {
                format!("image `{}` is not usable: {reason}", path.display())
            }
            Self::IrqTwice { intid, .. } => format!("interrupt {intid} is routed twice"),
            Self::ChannelToSelf { cell, .. } => format!("channel from `{cell}` to itself"),
            Self::ChannelTwice { from, to, .. } => {
                format!("channel from `{from}` to `{to}` is declared twice")
            }
            Self::MapTwice { memory, cell, .. } => {
                format!("memory region `{memory}` is mapped into cell `{cell}` twice")
            }
            Self::Cell(problem) => problem.message(),
            Self::Guest(problem) => problem.message(),
            Self::Object(problem) => problem.message(),
            Self::NoCells => "the system has no cells".to_string(),
            Self::TooMany { what, count, max } => {
                format!("too many {what}: {count}, the boot plan holds at most {max}")
            }
        }
    }

    /// How to fix it.
    pub fn help(&self) -> String {
        match self {
            Self::Syntax { .. } => {
                "see docs/system-description.md for the format of each table".to_string()
            }
            Self::UnknownKey { valid, .. } => {
                format!("remove it or use a valid key: {}", quote_list(valid))
            }
            Self::BadSize { .. } => {
                "write a whole number of bytes or a number with a binary unit: \"64 KiB\", \"2 MiB\", \"1 GiB\"".to_string()
            }
            Self::BadName { .. } => format!(
                "use 1 to {} characters, each a lowercase letter, a digit, `_` or `-`",
                abi::plan::MAX_NAME_LEN
            ),
            Self::DuplicateName { item, .. } => {
                format!("give each {item} a different name")
            }
            Self::MissingCell { name, known, .. } => {
                if known.is_empty() {
                    format!("declare a [[cell]] named `{name}`")
                } else {
                    format!(
                        "declare a [[cell]] named `{name}`, or name a declared cell: {}",
                        quote_list(known)
                    )
                }
            }
            Self::BadChoice { field, .. } => match field {
                Choice::Kind => "use \"native\" or \"guest\"".to_string(),
                Choice::Fault => "use \"stop\", \"restart\" or \"report\"".to_string(),
                Choice::Rights => {
                    "use a non-empty subset of \"rwx\", each letter once, e.g. \"rw\"".to_string()
                }
            },
            Self::OutOfRange { field, .. } => field.help(),
            Self::CoreBeyondBoard { board_cores, .. } => format!(
                "use a core from 0 to {}, or raise `cores` in [board]",
                board_cores.saturating_sub(1)
            ),
            Self::CoreCountMismatch { .. } => {
                "list exactly one core per vCPU, or remove `cores` to let the kernel choose"
                    .to_string()
            }
            Self::RestartLimitWithoutRestart { .. } => {
                "remove `restart-limit`, or set `fault = \"restart\"`".to_string()
            }
            Self::EmptySize { .. } => "give it a size of at least 4 KiB".to_string(),
            Self::Misaligned { what, value, align, .. } => {
                let down = value - value % align;
                let up = down + align;
                if down == 0 {
                    format!("use a multiple of {}, such as {}", Size(*align), what.show(up))
                } else {
                    format!(
                        "use a multiple of {}: {} or {}",
                        Size(*align),
                        what.show(down),
                        what.show(up)
                    )
                }
            }
            Self::DevicesOverlap { .. } => {
                "each device needs its own address range: fix the base or size of one of them"
                    .to_string()
            }
            Self::DeviceOverlapsRam { .. } => {
                "devices lie outside board RAM: fix the device's base address".to_string()
            }
            Self::IpaOverlap { .. } => {
                "give the shared memory map a free `ipa`, or remove `ipa` to let the tool choose one".to_string()
            }
            Self::CellLargerThanBoard { .. } => {
                "reduce the cell's `memory`, or raise `ram-size` in [board]".to_string()
            }
            Self::MemoryExceedsBoard { .. } => {
                "reduce the cells' `memory`, or raise `ram-size` in [board]".to_string()
            }
            Self::MissingImage { .. } => {
                "build the cell first, or fix the path (it is relative to this file's folder)"
                    .to_string()
            }
            Self::BadImage { reason, .. } => reason.help(),
            Self::IrqTwice { .. } => "route each interrupt to exactly one device".to_string(),
            Self::ChannelToSelf { .. } => "remove the channel: a cell needs no channel to itself".to_string(),
            Self::ChannelTwice { .. } | Self::MapTwice { .. } => {
                "remove the second declaration".to_string()
            }
            Self::Cell(problem) => problem.help(),
            Self::Guest(problem) => problem.help(),
            Self::Object(problem) => problem.help(),
            Self::NoCells => "add at least one [[cell]] table".to_string(),
            Self::TooMany { .. } => "split the system or merge items".to_string(),
        }
    }

    /// The underlined spans, the first being the primary one.
    pub fn labels(&self) -> Vec<(Span, String)> {
        match self {
            Self::Syntax { span, .. } => span
                .iter()
                .map(|s| (s.clone(), "here".to_string()))
                .collect(),
            Self::UnknownKey { span, .. } => span
                .iter()
                .map(|s| (s.clone(), "not a key of this table".to_string()))
                .collect(),
            Self::BadSize { span, reason } => vec![(span.clone(), reason.to_string())],
            Self::BadName { span, .. } => vec![(span.clone(), "not a valid name".to_string())],
            Self::DuplicateName { first, second, .. } => vec![
                (second.clone(), "declared again here".to_string()),
                (first.clone(), "first declared here".to_string()),
            ],
            Self::MissingCell { span, name, .. } => {
                vec![(span.clone(), format!("no cell is named `{name}`"))]
            }
            Self::BadChoice { span, .. } => vec![(span.clone(), "not a valid value".to_string())],
            Self::OutOfRange { span, field, .. } => {
                let (min, max) = field.range();
                let text = if *field == Field::Address {
                    "negative".to_string()
                } else {
                    format!("must be {min} to {max}")
                };
                vec![(span.clone(), text)]
            }
            Self::CoreBeyondBoard {
                span,
                board_cores,
                board_span,
                ..
            } => vec![
                (span.clone(), "no such core".to_string()),
                (
                    board_span.clone(),
                    format!(
                        "the board uses cores 0 to {}",
                        board_cores.saturating_sub(1)
                    ),
                ),
            ],
            Self::CoreCountMismatch {
                cores_span,
                cores,
                vcpus,
                vcpus_span,
                ..
            } => {
                let mut labels = vec![(
                    cores_span.clone(),
                    format!("{cores} core{}", plural(*cores)),
                )];
                match vcpus_span {
                    Some(span) => labels.push((
                        span.clone(),
                        format!("{vcpus} vCPU{}", plural(*vcpus as usize)),
                    )),
                    None => labels[0].1.push_str(", but `vcpus` defaults to 1"),
                }
                labels
            }
            Self::RestartLimitWithoutRestart { span } => {
                vec![(
                    span.clone(),
                    "only used with fault = \"restart\"".to_string(),
                )]
            }
            Self::EmptySize { span, .. } => vec![(span.clone(), "zero".to_string())],
            Self::Misaligned { span, align, .. } => {
                vec![(span.clone(), format!("not {}-aligned", Size(*align)))]
            }
            Self::DevicesOverlap { first, second } => vec![
                (
                    second.span.clone(),
                    format!("{} is {}", second.what, second.range()),
                ),
                (
                    first.span.clone(),
                    format!("{} is {}", first.what, first.range()),
                ),
            ],
            Self::DeviceOverlapsRam { device, ram } => vec![
                (
                    device.span.clone(),
                    format!("{} is {}", device.what, device.range()),
                ),
                (ram.span.clone(), format!("RAM is {}", ram.range())),
            ],
            Self::IpaOverlap { first, second, .. } => vec![
                (
                    second.span.clone(),
                    format!("{} at IPA {}", second.what, second.range()),
                ),
                (
                    first.span.clone(),
                    format!("{} at IPA {}", first.what, first.range()),
                ),
            ],
            Self::CellLargerThanBoard {
                span,
                memory,
                ram_size,
                ram_span,
                ..
            } => vec![
                (span.clone(), format!("{} asked", Size(*memory))),
                (
                    ram_span.clone(),
                    format!("the board has {}", Size(*ram_size)),
                ),
            ],
            Self::MemoryExceedsBoard {
                ram_span,
                ram_size,
                cells,
                ..
            } => {
                let mut labels = vec![(
                    ram_span.clone(),
                    format!("the board has {}", Size(*ram_size)),
                )];
                labels.extend(cells.iter().map(|(span, name, size)| {
                    (span.clone(), format!("`{name}` asks {}", Size(*size)))
                }));
                labels
            }
            Self::MissingImage { span, .. } => vec![(span.clone(), "no such file".to_string())],
            Self::BadImage { span, reason, .. } => vec![(span.clone(), reason.to_string())],
            Self::IrqTwice { first, second, .. } => vec![
                (second.clone(), "routed again here".to_string()),
                (first.clone(), "first routed here".to_string()),
            ],
            Self::ChannelToSelf { span, .. } => {
                vec![(span.clone(), "same cell at both ends".to_string())]
            }
            Self::ChannelTwice { first, second, .. } => vec![
                (second.clone(), "declared again here".to_string()),
                (first.clone(), "first declared here".to_string()),
            ],
            Self::MapTwice { first, second, .. } => vec![
                (second.clone(), "mapped again here".to_string()),
                (first.clone(), "first mapped here".to_string()),
            ],
            Self::Cell(problem) => problem.labels(),
            Self::Guest(problem) => problem.labels(),
            Self::Object(problem) => problem.labels(),
            Self::NoCells | Self::TooMany { .. } => Vec::new(),
        }
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

/// How diagnostics are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Unicode, no colour, 100 columns: stable output for files, pipes and tests.
    Plain,
    /// Colours and Unicode for a terminal.
    Fancy,
}

impl Style {
    /// [`Style::Fancy`] when `terminal` is true and `NO_COLOR` is unset, else
    /// [`Style::Plain`].
    pub fn detect(terminal: bool) -> Style {
        if terminal && std::env::var_os("NO_COLOR").is_none() {
            Style::Fancy
        } else {
            Style::Plain
        }
    }
}

/// Every problem found in one description file, with its text for rendering.
#[derive(Debug)]
pub struct Diagnostics {
    /// The file's name as shown to people.
    pub name: String,
    /// Its text.
    pub text: String,
    /// The problems, in source order.
    pub problems: Vec<Problem>,
}

impl Diagnostics {
    /// Renders every problem, separated by blank lines, then a line counting them (what
    /// `cellvisor check` prints).
    pub fn render(&self, style: Style) -> String {
        let theme = match style {
            Style::Plain => GraphicalTheme::unicode_nocolor(),
            Style::Fancy => GraphicalTheme::unicode(),
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_links(false);
        let source = NamedSource::new(&self.name, self.text.clone());
        let mut out = String::new();
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                out.push('\n');
            }
            let report = Report {
                problem,
                source: &source,
                message: problem.message(),
            };
            // Writing into a String cannot fail.
            let _ = handler.render_report(&mut out, &report);
        }
        let count = self.problems.len();
        let plural = if count == 1 { "" } else { "s" };
        out.push_str(&format!(
            "error: {} has {count} problem{plural}\n",
            self.name
        ));
        out
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Style::Plain))
    }
}

/// One problem bound to its source, in the shape miette renders.
struct Report<'a> {
    problem: &'a Problem,
    source: &'a NamedSource<String>,
    message: String,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report<'_> {}

impl Diagnostic for Report<'_> {
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.problem.help()))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let labels = self.problem.labels();
        if labels.is_empty() {
            return None;
        }
        let spans = labels.into_iter().enumerate().map(|(index, (span, text))| {
            let source_span: miette::SourceSpan =
                (span.start, span.end.saturating_sub(span.start)).into();
            if index == 0 {
                LabeledSpan::new_primary_with_span(Some(text), source_span)
            } else {
                LabeledSpan::new_with_span(Some(text), source_span)
            }
        });
        Some(Box::new(spans.collect::<Vec<_>>().into_iter()))
    }
}
