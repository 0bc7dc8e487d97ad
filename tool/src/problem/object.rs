//! Mistakes in IPC objects (endpoints, notifications), in object names, and in a cell's
//! `caps` list, and how each is shown: the same three parts as every [`super::Problem`]
//! (message, help, labels).

use super::{quote_list, Span};

/// What kind of object a name designates, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// `[[endpoint]]` (or a `[[channel]]`).
    Endpoint,
    /// `[[notification]]`.
    Notification,
    /// `[[memory]]`.
    Memory,
    /// `cell:<name>` in `caps`.
    Cell,
    /// `irq:<intid>` in `caps`.
    Interrupt,
}

impl ObjectKind {
    fn noun(self) -> &'static str {
        match self {
            Self::Endpoint => "endpoint",
            Self::Notification => "notification",
            Self::Memory => "memory region",
            Self::Cell => "cell",
            Self::Interrupt => "interrupt",
        }
    }
}

/// A mistake in an endpoint, a notification, an object name or a `caps` list.
#[derive(Debug)]
pub enum ObjectProblem {
    /// An endpoint's server also listed among its clients.
    ServerIsClient {
        /// The client entry.
        span: Span,
        /// The `server` value.
        server_span: Span,
        /// The endpoint.
        endpoint: String,
        /// The cell.
        cell: String,
    },
    /// A cell listed twice among an endpoint's clients or a notification's signallers.
    ListedTwice {
        /// The first entry.
        first: Span,
        /// The second entry.
        second: Span,
        /// The object.
        object: String,
        /// Its kind.
        kind: ObjectKind,
        /// The cell.
        cell: String,
    },
    /// Two objects of different kinds with one name (`caps` names objects by name alone).
    NameTaken {
        /// The name.
        name: String,
        /// The first object's kind.
        first_kind: ObjectKind,
        /// Its name.
        first: Span,
        /// The second object's kind.
        second_kind: ObjectKind,
        /// Its name.
        second: Span,
    },
    /// A memory region with both or neither of `size` and `cell-ram`.
    MemorySize {
        /// The region's table.
        span: Span,
        /// The region.
        memory: String,
        /// Both were given (else neither).
        both: bool,
    },
    /// A memory region that is a cell's RAM mapped into that same cell.
    OwnRam {
        /// The map entry.
        span: Span,
        /// The region.
        memory: String,
        /// The cell.
        cell: String,
    },
    /// A guest's endpoint capability in a slot that is no virtio-mmio slot of the guest.
    GuestEndpointSlot {
        /// The `caps` entry.
        span: Span,
        /// The guest.
        cell: String,
        /// The capability slot.
        slot: usize,
        /// The guest's virtio-mmio slot count.
        virtio_mmio: u8,
    },
    /// A notification's `vcpu` beyond its waiter's vCPUs.
    VcpuBeyondWaiter {
        /// The `vcpu` value.
        span: Span,
        /// The vCPU given.
        vcpu: i64,
        /// The waiter.
        waiter: String,
        /// Its vCPU count.
        vcpus: u8,
    },
    /// A notification's `vcpu` without `virtual-irq`.
    VcpuWithoutIrq {
        /// The `vcpu` value.
        span: Span,
    },
    /// A virtual interrupt the waiter already receives for something else.
    VirtualIrqTaken {
        /// The `virtual-irq` value.
        span: Span,
        /// The interrupt.
        irq: u16,
        /// The waiter.
        waiter: String,
        /// What already uses it, and where it is declared (none for the virtual timer).
        other: (String, Option<Span>),
    },
    /// A `caps` entry that names no object.
    UnknownName {
        /// The entry.
        span: Span,
        /// The cell.
        cell: String,
        /// The entry's text.
        name: String,
        /// The object names the cell could use.
        known: Vec<String>,
    },
    /// A `caps` entry naming an object the cell holds no authority over.
    NotGranted {
        /// The entry.
        span: Span,
        /// The cell.
        cell: String,
        /// The object's name as written.
        name: String,
        /// Its kind.
        kind: ObjectKind,
        /// Where the object is declared, if it is.
        declared: Option<Span>,
    },
    /// An object listed twice in one `caps`.
    CapsTwice {
        /// The first entry.
        first: Span,
        /// The second entry.
        second: Span,
        /// The cell.
        cell: String,
        /// The object.
        name: String,
    },
    /// A cell holding more capabilities than its table has slots.
    TooManyCapabilities {
        /// The cell's name.
        span: Span,
        /// The cell.
        cell: String,
        /// Capabilities it holds.
        count: usize,
    },
}

impl ObjectProblem {
    /// What is wrong, in one sentence.
    pub fn message(&self) -> String {
        match self {
            Self::ServerIsClient { endpoint, cell, .. } => {
                format!("cell `{cell}` serves endpoint `{endpoint}` and is also one of its clients")
            }
            Self::ListedTwice {
                object, kind, cell, ..
            } => {
                let list = match kind {
                    ObjectKind::Endpoint => "clients",
                    _ => "signallers",
                };
                format!("cell `{cell}` is listed twice in the {list} of {} `{object}`", kind.noun())
            }
            Self::NameTaken {
                name,
                first_kind,
                second_kind,
                ..
            } => format!(
                "{} `{name}` has the name of {} `{name}`",
                second_kind.noun(),
                with_article(first_kind.noun())
            ),
            Self::MemorySize { memory, both, .. } => format!(
                "memory region `{memory}` has {}",
                if *both {
                    "both `size` and `cell-ram`"
                } else {
                    "neither `size` nor `cell-ram`"
                }
            ),
            Self::OwnRam { memory, cell, .. } => {
                format!("memory region `{memory}` maps `{cell}`'s RAM into `{cell}` itself")
            }
            Self::GuestEndpointSlot { cell, slot, .. } => format!(
                "guest `{cell}` holds an endpoint in capability slot {slot}, which is no virtio-mmio slot"
            ),
            Self::VcpuBeyondWaiter {
                vcpu,
                waiter,
                vcpus,
                ..
            } => format!(
                "vCPU {vcpu} is beyond waiter `{waiter}`'s {vcpus} vCPU{}",
                if *vcpus == 1 { "" } else { "s" }
            ),
            Self::VcpuWithoutIrq { .. } => "`vcpu` is set without `virtual-irq`".to_string(),
            Self::VirtualIrqTaken {
                irq, waiter, other, ..
            } => format!(
                "virtual interrupt {irq} of cell `{waiter}` is already {}",
                other.0
            ),
            Self::UnknownName { cell, name, .. } => {
                format!("cell `{cell}` lists `{name}` in `caps`, but no object has that name")
            }
            Self::NotGranted {
                cell, name, kind, ..
            } => match kind {
                ObjectKind::Endpoint => format!(
                    "cell `{cell}` lists endpoint `{name}` in `caps` but neither serves nor calls it"
                ),
                ObjectKind::Notification => format!(
                    "cell `{cell}` lists notification `{name}` in `caps` but neither waits on nor signals it"
                ),
                ObjectKind::Memory => format!(
                    "cell `{cell}` lists memory region `{name}` in `caps` but does not map it"
                ),
                ObjectKind::Cell => format!(
                    "cell `{cell}` lists `{name}` in `caps` but has no control right over that cell"
                ),
                ObjectKind::Interrupt => format!(
                    "cell `{cell}` lists `{name}` in `caps` but none of its devices has that interrupt"
                ),
            },
            Self::CapsTwice { cell, name, .. } => {
                format!("cell `{cell}` lists `{name}` twice in `caps`")
            }
            Self::TooManyCapabilities { cell, count, .. } => format!(
                "cell `{cell}` holds {count} capabilities, more than the {} slots of a capability table",
                abi::plan::MAX_CAPABILITIES_PER_CELL
            ),
        }
    }

    /// How to fix it.
    pub fn help(&self) -> String {
        match self {
            Self::ServerIsClient { .. } => {
                "remove the server from `clients`: a server cannot call its own endpoint".to_string()
            }
            Self::ListedTwice { .. } | Self::CapsTwice { .. } => {
                "remove the second entry".to_string()
            }
            Self::NameTaken { .. } => "give each endpoint, notification and memory region a different name: `caps` lists them by name".to_string(),
            Self::MemorySize { .. } => "give `size` for new shared memory, or `cell-ram = \"<cell>\"` to map that cell's whole RAM (for a device model)".to_string(),
            Self::OwnRam { .. } => "map another cell's RAM: a cell's own RAM is mapped in it already".to_string(),
            Self::GuestEndpointSlot { virtio_mmio, .. } => format!(
                "a guest's endpoint in capability slot i serves its virtio-mmio slot i: list endpoints first in `caps`, or raise `virtio-mmio` (now {virtio_mmio})"
            ),
            Self::VcpuBeyondWaiter { vcpus, .. } => format!(
                "use a vCPU from 0 to {} of the waiter, or raise its `vcpus`",
                vcpus.saturating_sub(1)
            ),
            Self::VcpuWithoutIrq { .. } => {
                "remove `vcpu`, or set `virtual-irq`: the vCPU only says which one receives the interrupt".to_string()
            }
            Self::VirtualIrqTaken { .. } => {
                "pick another virtual interrupt, from 16 to 1019".to_string()
            }
            Self::UnknownName { known, .. } => {
                let names = if known.is_empty() {
                    "declare the object, or use ".to_string()
                } else {
                    format!("use an object name ({}), ", quote_list(known))
                };
                format!("{names}`cell:<name>` for a cell it controls or `irq:<intid>` for an interrupt of its devices")
            }
            Self::NotGranted {
                cell, name, kind, ..
            } => match kind {
                ObjectKind::Endpoint => format!(
                    "add \"{cell}\" to the `clients` of endpoint `{name}`, or remove `{name}` from `caps`"
                ),
                ObjectKind::Notification => format!(
                    "add \"{cell}\" to the `signallers` of notification `{name}`, or remove `{name}` from `caps`"
                ),
                ObjectKind::Memory => format!(
                    "add {{ cell = \"{cell}\", rights = \"rw\" }} to the `map` of memory region `{name}`, or remove `{name}` from `caps`"
                ),
                ObjectKind::Cell => format!(
                    "add the cell to `controls` of `{cell}` (or make `{cell}` its supervisor), or remove `{name}` from `caps`"
                ),
                ObjectKind::Interrupt => format!(
                    "route the interrupt to a [[device]] of `{cell}`, or remove `{name}` from `caps`"
                ),
            },
            Self::TooManyCapabilities { .. } => {
                "give the cell fewer endpoints, notifications, memory maps, interrupts or controlled cells, or split it".to_string()
            }
        }
    }

    /// The underlined spans, the first being the primary one.
    pub fn labels(&self) -> Vec<(Span, String)> {
        match self {
            Self::ServerIsClient {
                span, server_span, ..
            } => vec![
                (span.clone(), "listed as a client".to_string()),
                (server_span.clone(), "the server".to_string()),
            ],
            Self::ListedTwice { first, second, .. } | Self::CapsTwice { first, second, .. } => {
                vec![
                    (second.clone(), "listed again here".to_string()),
                    (first.clone(), "first listed here".to_string()),
                ]
            }
            Self::NameTaken {
                first,
                second,
                first_kind,
                ..
            } => vec![
                (second.clone(), "declared again here".to_string()),
                (
                    first.clone(),
                    format!("the {} is declared here", first_kind.noun()),
                ),
            ],
            Self::MemorySize { span, .. } => {
                vec![(
                    span.clone(),
                    "needs exactly one of `size`, `cell-ram`".to_string(),
                )]
            }
            Self::OwnRam { span, .. } => vec![(span.clone(), "its own RAM".to_string())],
            Self::GuestEndpointSlot { span, slot, .. } => {
                vec![(span.clone(), format!("slot {slot}"))]
            }
            Self::VcpuBeyondWaiter { span, .. } => vec![(span.clone(), "no such vCPU".to_string())],
            Self::VcpuWithoutIrq { span } => {
                vec![(span.clone(), "only used with `virtual-irq`".to_string())]
            }
            Self::VirtualIrqTaken { span, other, .. } => {
                let mut labels = vec![(span.clone(), "already in use".to_string())];
                if let Some(other_span) = &other.1 {
                    labels.push((other_span.clone(), "used here".to_string()));
                }
                labels
            }
            Self::UnknownName { span, .. } => vec![(span.clone(), "no such object".to_string())],
            Self::NotGranted { span, declared, .. } => {
                let mut labels = vec![(span.clone(), "not granted to this cell".to_string())];
                if let Some(declared) = declared {
                    labels.push((declared.clone(), "declared here".to_string()));
                }
                labels
            }
            Self::TooManyCapabilities { span, count, .. } => {
                vec![(span.clone(), format!("{count} capabilities"))]
            }
        }
    }
}

fn with_article(noun: &str) -> String {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {noun}")
    } else {
        format!("a {noun}")
    }
}
