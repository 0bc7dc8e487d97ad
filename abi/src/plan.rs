//! The boot plan: the binary description of a system that the kernel decodes at boot.
//!
//! The host tool turns a validated system description into a plan; the kernel never parses
//! text. A plan is a fixed 64-byte header followed by fixed-size records, in this order:
//! cells, regions, IRQs, channels, endpoints, notifications, capabilities. All integers are
//! little-endian.
//!
//! Header (64 bytes; bytes not listed are zero):
//!
//! | offset | field | notes |
//! |---|---|---|
//! | 0 | magic `[u8; 8]` | [`MAGIC`] |
//! | 8 | version `u16` | [`VERSION`]; a kernel refuses any other |
//! | 10 | header length `u16` | [`HEADER_LEN`] |
//! | 12 | total length `u32` | header + records |
//! | 16 | checksum `u32` | CRC-32 (IEEE) of the whole plan with this field zeroed |
//! | 20 | cell, region, IRQ, channel counts `u16` ×4 | |
//! | 28 | core count `u8` | cores the plan uses (highest core + 1) |
//! | 32 | RAM base `u64`, RAM size `u64` | the board memory the plan was laid out for |
//! | 48 | payload length `u64` | bytes from the plan's start to the end of the last cell image |
//! | 56 | endpoint, notification, capability counts `u16` ×3 | |
//!
//! Records: [`CellRecord`] (80 bytes), [`RegionRecord`] (32), [`IrqRecord`] (8),
//! [`ChannelRecord`] (8), [`EndpointRecord`] (4), [`NotificationRecord`] (8),
//! [`CapabilityRecord`] (12). A cell owns the contiguous run of regions
//! `first_region .. first_region + region_count`, and the contiguous run of capabilities
//! `first_capability .. first_capability + capability_count`: its slot *i* is capability
//! record `first_capability + i`. The cells' capability runs follow each other in cell
//! order and cover the whole capability table.
//!
//! Cell record (80 bytes; bytes not listed are zero):
//!
//! | offset | field | notes |
//! |---|---|---|
//! | 0 | name `[u8; 16]` | UTF-8, NUL-padded |
//! | 16 | kind `u8` | [`CellKind`] |
//! | 17 | priority `u8` | 0..=[`MAX_PRIORITY`] |
//! | 18 | vCPU count `u8` | 1..=[`MAX_VCPUS_PER_CELL`] |
//! | 19 | fault policy `u8` | [`FaultPolicy`] |
//! | 20 | restart limit `u8` | |
//! | 21 | flags `u8` | [`CellFlags`]; unknown bits are refused |
//! | 22 | supervisor `u16` | cell index or [`NO_SUPERVISOR`] |
//! | 24 | vCPU cores `[u8; 8]` | core or [`ANY_CORE`] |
//! | 32 | first region `u16`, region count `u16` | |
//! | 36 | image offset `u32`, image size `u32` | from the plan's start |
//! | 44 | controls `u32` | bit *i*: may control cell *i* (each bit also has a [`CapabilityKind::CellControl`] capability) |
//! | 48 | entry IPA `u64`, load IPA `u64` | |
//! | 64 | budget `u32`, period `u32` | microseconds; both 0 = unlimited |
//! | 72 | first capability `u16`, capability count `u16` | count ≤ [`MAX_CAPABILITIES_PER_CELL`] |
//! | 76 | reserved `[u8; 4]` | zero |
//!
//! Endpoint record (4 bytes): server `u16` (the cell that serves it), reserved `u16`.
//!
//! Notification record (8 bytes): waiter `u16` (the cell that waits on it), virtual
//! interrupt `u16` ([`NO_VIRTUAL_IRQ`] or [`MIN_VIRTUAL_IRQ`]..=[`MAX_VIRTUAL_IRQ`], raised
//! in the waiter when a signal sets bits), vCPU `u8` (the waiter's vCPU that receives the
//! interrupt; 0 without one), reserved `[u8; 3]`.
//!
//! Capability record (12 bytes):
//!
//! | offset | field | notes |
//! |---|---|---|
//! | 0 | kind `u8` | [`CapabilityKind`] code (1..=5) |
//! | 1 | rights `u8` | see below |
//! | 2 | reserved `u16` | zero |
//! | 4 | object `u32` | see below |
//! | 8 | badge `u32` | the badge a server sees for calls through an endpoint call capability; 0 otherwise |
//!
//! | kind | rights | object |
//! |---|---|---|
//! | `Endpoint` | exactly `ENDPOINT_CALL` or `ENDPOINT_SERVE` | endpoint index |
//! | `Notification` | non-empty subset of `NOTIFICATION_SIGNAL`, `NOTIFICATION_WAIT` | notification index |
//! | `SharedMemory` | non-empty subset of the region's [`Rights`] | global index of one of this cell's [`RegionKind::Shared`] or [`RegionKind::Foreign`] regions |
//! | `Interrupt` | 0 | INTID of an IRQ record routed to this cell |
//! | `CellControl` | `CONTROL` | index of another cell, whose bit is set in `controls` |
//!
//! (Rights are the `abi::hvc` constants.) A cell holds at most one capability per object;
//! each endpoint's server holds its serve capability and no other cell does; each
//! notification's waiter holds its wait capability and no other cell does; a server never
//! holds a call capability to its own endpoint.
//!
//! [`Plan::decode`] checks the format: magic, version, lengths, checksum, limits, and that
//! every index and enum in a record is in range and the capability rules above hold.
//! Whether the plan fits the board (memory, cores, overlap with the kernel) is checked by
//! the kernel against the device tree.

use core::fmt;

/// First eight bytes of every plan.
pub const MAGIC: [u8; 8] = *b"CVPLAN\0\0";
/// The plan format this crate writes and reads.
pub const VERSION: u16 = 3;
/// Length of the header.
pub const HEADER_LEN: usize = 64;
/// Length of one encoded [`CellRecord`].
pub const CELL_RECORD_LEN: usize = 80;
/// Length of one encoded [`RegionRecord`].
pub const REGION_RECORD_LEN: usize = 32;
/// Length of one encoded [`IrqRecord`].
pub const IRQ_RECORD_LEN: usize = 8;
/// Length of one encoded [`ChannelRecord`].
pub const CHANNEL_RECORD_LEN: usize = 8;
/// Length of one encoded [`EndpointRecord`].
pub const ENDPOINT_RECORD_LEN: usize = 4;
/// Length of one encoded [`NotificationRecord`].
pub const NOTIFICATION_RECORD_LEN: usize = 8;
/// Length of one encoded [`CapabilityRecord`].
pub const CAPABILITY_RECORD_LEN: usize = 12;

/// Most cells in one system (a cell's `controls` holds one bit per cell).
pub const MAX_CELLS: usize = 32;
const _: () = assert!(MAX_CELLS <= u32::BITS as usize);
/// Most memory regions, counted over all cells.
pub const MAX_REGIONS: usize = 256;
/// Most IRQ assignments.
pub const MAX_IRQS: usize = 128;
/// Most channels.
pub const MAX_CHANNELS: usize = 128;
/// Most IPC endpoints.
pub const MAX_ENDPOINTS: usize = 64;
/// Most notifications.
pub const MAX_NOTIFICATIONS: usize = 64;
/// Most capabilities in one cell's table.
pub const MAX_CAPABILITIES_PER_CELL: usize = 64;
/// Most capabilities, counted over all cells.
pub const MAX_CAPABILITIES: usize = 1024;
/// Most vCPUs in one cell.
pub const MAX_VCPUS_PER_CELL: usize = 8;
/// Most physical cores the kernel drives.
pub const MAX_CORES: usize = 8;
/// Highest (most urgent) priority; 0 is the lowest.
pub const MAX_PRIORITY: u8 = 31;
/// Longest cell name in bytes.
pub const MAX_NAME_LEN: usize = 16;
/// `vcpu_cores` entry meaning "the kernel chooses the core".
pub const ANY_CORE: u8 = 0xff;
/// `supervisor` value meaning "no cell receives this cell's fault reports".
pub const NO_SUPERVISOR: u16 = 0xffff;
/// Shortest CPU budget period in microseconds.
pub const MIN_PERIOD_US: u32 = 100;
/// Notification `virtual_irq` meaning "raise no interrupt".
pub const NO_VIRTUAL_IRQ: u16 = 0;
/// Lowest virtual interrupt a notification may raise (the first PPI).
pub const MIN_VIRTUAL_IRQ: u16 = 16;
/// Highest virtual interrupt a notification may raise (the last SPI).
pub const MAX_VIRTUAL_IRQ: u16 = 1019;

pub use crate::hvc::CapabilityKind;
pub use capability::{CapabilityRecord, EndpointRecord, NotificationRecord};
#[cfg(any(test, feature = "host"))]
pub use encode::{encode, PlanParts};

/// What runs in a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// A native component built with the SDK; entered at `entry_ipa` with the MMU off.
    Native = 0,
    /// A guest OS booted by the Linux arm64 boot protocol.
    Guest = 1,
}

/// What the kernel does when a cell faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPolicy {
    /// Stop the cell and report the fault.
    Stop = 0,
    /// Reload the cell's pristine image and start it again, up to `restart_limit` times.
    Restart = 1,
    /// Stop the cell and send a fault report to its `supervisor` cell, which decides:
    /// restart it (through `CELL_CONTROL`) or leave it stopped.
    Report = 2,
}

/// What a memory region is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// Normal memory private to the cell.
    Ram = 0,
    /// A device's registers, mapped Device-nGnRE.
    Device = 1,
    /// Normal memory that several cells map.
    Shared = 2,
    /// Another cell's whole RAM region (same base and size), mapped into a device-model
    /// cell so that it can read and write the buffers that cell's guest gives its devices.
    Foreign = 3,
}

/// Access rights of a region, as a bit set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rights(pub u8);

impl Rights {
    /// Read.
    pub const R: Rights = Rights(1);
    /// Write.
    pub const W: Rights = Rights(2);
    /// Execute.
    pub const X: Rights = Rights(4);
    /// Read, write and execute.
    pub const RWX: Rights = Rights(7);
    /// Whether every right in `other` is in `self`.
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }
    /// The union of two sets.
    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }
}

/// Promises a cell makes about itself, as a bit set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CellFlags(pub u8);

impl CellFlags {
    /// No flag.
    #[cfg(any(test, feature = "host"))]
    pub const NONE: CellFlags = CellFlags(0);
    /// The cell does not use floating point or SIMD: the kernel traps FP/SIMD for it and
    /// neither saves nor restores its FP registers.
    pub const NO_FP: CellFlags = CellFlags(1);
    /// The native cell runs at EL0 (`privilege = "el0"`): it takes no interrupts, its
    /// hypercalls are `svc #0`, and it owns no EL1 system register. Never on a guest.
    pub const EL0: CellFlags = CellFlags(2);
    /// Every flag this format defines; other bits are refused.
    pub const KNOWN: CellFlags = CellFlags(3);
    /// Whether every flag in `other` is in `self`.
    pub const fn contains(self, other: CellFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// The union of two sets.
    #[cfg(any(test, feature = "host"))]
    pub const fn union(self, other: CellFlags) -> CellFlags {
        CellFlags(self.0 | other.0)
    }
}

/// One cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellRecord {
    /// Name, UTF-8, NUL-padded.
    pub name: [u8; MAX_NAME_LEN],
    /// What runs in it.
    pub kind: CellKind,
    /// Scheduling priority, 0..=[`MAX_PRIORITY`], higher is more urgent.
    pub priority: u8,
    /// Number of vCPUs, 1..=[`MAX_VCPUS_PER_CELL`].
    pub vcpu_count: u8,
    /// What happens on a fault.
    pub fault_policy: FaultPolicy,
    /// How many restarts [`FaultPolicy::Restart`] allows before stopping the cell.
    pub restart_limit: u8,
    /// Promises the cell makes ([`CellFlags::NO_FP`]).
    pub flags: CellFlags,
    /// Index of the cell that receives this cell's fault reports, or [`NO_SUPERVISOR`];
    /// set exactly when `fault_policy` is [`FaultPolicy::Report`], never the cell itself.
    pub supervisor: u16,
    /// Physical core of each vCPU, or [`ANY_CORE`]; entries past `vcpu_count` are ignored.
    pub vcpu_cores: [u8; MAX_VCPUS_PER_CELL],
    /// Index of the cell's first region.
    pub first_region: u16,
    /// Number of regions the cell owns.
    pub region_count: u16,
    /// Offset of the cell's image from the plan's start.
    pub image_offset: u32,
    /// Length of the cell's image in bytes.
    pub image_size: u32,
    /// Control rights: bit *i* set means this cell may stop, start, restart and read the
    /// status of cell *i*. Never its own bit, never a bit at or past the cell count.
    pub controls: u32,
    /// IPA where the first vCPU starts.
    pub entry_ipa: u64,
    /// IPA where the image is loaded.
    pub load_ipa: u64,
    /// CPU time the cell may use per period, in microseconds (0 with `period_us` 0:
    /// unlimited).
    pub budget_us: u32,
    /// Length of the budget period in microseconds: 0 (unlimited) or at least
    /// [`MIN_PERIOD_US`], and at least `budget_us`.
    pub period_us: u32,
    /// Index of the cell's first capability (its slot 0) in the capability table.
    pub first_capability: u16,
    /// Number of capabilities (slots) the cell holds, at most
    /// [`MAX_CAPABILITIES_PER_CELL`].
    pub capability_count: u16,
}

impl CellRecord {
    /// The name as text (the encoder and decoder guarantee valid UTF-8).
    pub fn name(&self) -> &str {
        name_text(&self.name)
    }

    /// The index of the cell that receives this cell's fault reports, if any.
    pub fn supervisor(&self) -> Option<usize> {
        (self.supervisor != NO_SUPERVISOR).then_some(self.supervisor as usize)
    }

    /// Whether this cell may stop, start, restart and read the status of cell `index`.
    pub fn may_control(&self, index: usize) -> bool {
        index < MAX_CELLS && self.controls & (1 << index) != 0
    }

    /// The CPU budget as `(budget_us, period_us)`, or `None` when the cell is unlimited.
    #[cfg(any(test, feature = "host"))]
    pub fn budget(&self) -> Option<(u32, u32)> {
        (self.period_us != 0).then_some((self.budget_us, self.period_us))
    }

    /// The capability-table index of the cell's slot `slot`, or `None` for a slot beyond
    /// the cell's table.
    pub fn capability_index(&self, slot: usize) -> Option<usize> {
        (slot < self.capability_count as usize).then(|| self.first_capability as usize + slot)
    }

    /// Whether the cell may use floating point and SIMD.
    #[cfg(any(test, feature = "host"))]
    pub fn uses_fp(&self) -> bool {
        !self.flags.contains(CellFlags::NO_FP)
    }

    /// Whether the cell's vCPUs run at EL0 ([`CellFlags::EL0`]).
    pub fn runs_at_el0(&self) -> bool {
        self.flags.contains(CellFlags::EL0)
    }

    /// Builds the NUL-padded name field; `None` if `name` is empty, too long or contains NUL.
    #[cfg(any(test, feature = "host"))]
    pub fn name_field(name: &str) -> Option<[u8; MAX_NAME_LEN]> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_NAME_LEN || bytes.contains(&0) {
            return None;
        }
        let mut field = [0u8; MAX_NAME_LEN];
        field[..bytes.len()].copy_from_slice(bytes);
        Some(field)
    }
}

/// One memory region mapped into one cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionRecord {
    /// Where the cell sees it.
    pub ipa: u64,
    /// Where it is on the board.
    pub pa: u64,
    /// Length in bytes (a multiple of 4 KiB).
    pub size: u64,
    /// What it is.
    pub kind: RegionKind,
    /// What the cell may do with it.
    pub rights: Rights,
}

/// One physical interrupt routed to a vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqRecord {
    /// GIC interrupt ID.
    pub intid: u32,
    /// Owning cell.
    pub cell: u16,
    /// vCPU of that cell that receives it.
    pub vcpu: u8,
}

/// A permitted communication path between two cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelRecord {
    /// The cell that initiates.
    pub from: u16,
    /// The cell that serves.
    pub to: u16,
}

/// How many records of each kind a plan holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Cell records.
    pub cells: usize,
    /// Region records.
    pub regions: usize,
    /// IRQ records.
    pub irqs: usize,
    /// Channel records.
    pub channels: usize,
    /// Endpoint records.
    pub endpoints: usize,
    /// Notification records.
    pub notifications: usize,
    /// Capability records.
    pub capabilities: usize,
}

impl Counts {
    /// Length of the encoded plan with these counts.
    pub const fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self.cells * CELL_RECORD_LEN
            + self.regions * REGION_RECORD_LEN
            + self.irqs * IRQ_RECORD_LEN
            + self.channels * CHANNEL_RECORD_LEN
            + self.endpoints * ENDPOINT_RECORD_LEN
            + self.notifications * NOTIFICATION_RECORD_LEN
            + self.capabilities * CAPABILITY_RECORD_LEN
    }

    fn check(&self) -> Result<(), PlanError> {
        let limits = [
            ("cells", self.cells, MAX_CELLS),
            ("regions", self.regions, MAX_REGIONS),
            ("IRQs", self.irqs, MAX_IRQS),
            ("channels", self.channels, MAX_CHANNELS),
            ("endpoints", self.endpoints, MAX_ENDPOINTS),
            ("notifications", self.notifications, MAX_NOTIFICATIONS),
            ("capabilities", self.capabilities, MAX_CAPABILITIES),
        ];
        for (what, count, max) in limits {
            if count > max {
                return Err(PlanError::TooMany { what, count, max });
            }
        }
        if self.cells == 0 {
            return bad("header", 0, "no cells");
        }
        Ok(())
    }
}

/// Why a plan could not be encoded or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The bytes do not start with [`MAGIC`].
    BadMagic,
    /// The plan has another format version.
    UnsupportedVersion {
        /// Version in the plan.
        found: u16,
    },
    /// Fewer bytes than the plan needs.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The header's lengths disagree with its counts.
    LengthMismatch {
        /// Length stated in the header.
        stated: usize,
        /// Length the counts imply.
        implied: usize,
    },
    /// The checksum does not match the content.
    ChecksumMismatch {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum of the content.
        computed: u32,
    },
    /// More items than the kernel supports.
    TooMany {
        /// Kind of item.
        what: &'static str,
        /// How many the plan has.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A record has a field out of range.
    BadRecord {
        /// Kind of record.
        what: &'static str,
        /// Its index.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The output buffer is too small.
    #[cfg(any(test, feature = "host"))]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadMagic => write!(f, "no boot plan found (bad magic)"),
            // The versions are printed as u32, the width the kernel's other numbers use, so
            // that no formatter for u16 is linked in.
            Self::UnsupportedVersion { found } => write!(
                f,
                "boot plan version {} does not match this kernel (version {}); rebuild the image with the matching tool",
                u32::from(found),
                u32::from(VERSION)
            ),
            Self::Truncated { needed, available } => {
                write!(f, "boot plan truncated: needs {needed} bytes, {available} present")
            }
            Self::LengthMismatch { stated, implied } => write!(
                f,
                "boot plan length {stated} disagrees with its record counts ({implied})"
            ),
            // Widened: the kernel then needs only its u64 hex formatter.
            Self::ChecksumMismatch { stored, computed } => write!(
                f,
                "boot plan checksum mismatch: stored {:#010x}, computed {:#010x} (the image is corrupt)",
                u64::from(stored),
                u64::from(computed)
            ),
            Self::TooMany { what, count, max } => {
                write!(f, "boot plan has {count} {what}, at most {max} supported")
            }
            Self::BadRecord { what, index, reason } => {
                write!(f, "boot plan {what} record {index}: {reason}")
            }
            #[cfg(any(test, feature = "host"))]
            Self::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
        }
    }
}

/// A decoded, format-checked plan borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Plan<'a> {
    bytes: &'a [u8],
    counts: Counts,
}

impl<'a> Plan<'a> {
    /// Checks and decodes a plan at the start of `bytes` (which may run on past its end).
    pub fn decode(bytes: &'a [u8]) -> Result<Self, PlanError> {
        let header = bytes.get(..HEADER_LEN).ok_or(PlanError::Truncated {
            needed: HEADER_LEN,
            available: bytes.len(),
        })?;
        if header[..8] != MAGIC {
            return Err(PlanError::BadMagic);
        }
        let version = le_u16(header, 8);
        if version != VERSION {
            return Err(PlanError::UnsupportedVersion { found: version });
        }
        let header_len = le_u16(header, 10) as usize;
        let total = le_u32(header, 12) as usize;
        let counts = Counts {
            cells: le_u16(header, 20) as usize,
            regions: le_u16(header, 22) as usize,
            irqs: le_u16(header, 24) as usize,
            channels: le_u16(header, 26) as usize,
            endpoints: le_u16(header, 56) as usize,
            notifications: le_u16(header, 58) as usize,
            capabilities: le_u16(header, 60) as usize,
        };
        counts.check()?;
        let implied = counts.encoded_len();
        if header_len != HEADER_LEN || total != implied {
            return Err(PlanError::LengthMismatch {
                stated: total,
                implied,
            });
        }
        let bytes = bytes.get(..total).ok_or(PlanError::Truncated {
            needed: total,
            available: bytes.len(),
        })?;
        let stored = le_u32(bytes, 16);
        let computed = crc32_with_zeroed_checksum(bytes);
        if stored != computed {
            return Err(PlanError::ChecksumMismatch { stored, computed });
        }
        let plan = Plan { bytes, counts };
        plan.check_records()?;
        Ok(plan)
    }

    fn check_records(&self) -> Result<(), PlanError> {
        if self.core_count() == 0 || self.core_count() as usize > MAX_CORES {
            return bad("header", 0, "core count out of range");
        }
        let header = self.header();
        if header[29..32].iter().chain(&header[62..]).any(|&b| b != 0) {
            return bad("header", 0, "reserved bytes not zero");
        }
        for index in 0..self.counts.cells {
            self.check_cell(index)
                .or_else(|reason| bad("cell", index, reason))?;
        }
        for index in 0..self.counts.regions {
            self.check_region(index)
                .or_else(|reason| bad("region", index, reason))?;
        }
        for index in 0..self.counts.irqs {
            let irq = self.irq(index);
            let Some(cell) = self.cell_checked(irq.cell as usize) else {
                return bad("irq", index, "unknown cell");
            };
            if irq.vcpu >= cell.vcpu_count {
                return bad("irq", index, "vCPU beyond the cell's vCPU count");
            }
        }
        for index in 0..self.counts.channels {
            let channel = self.channel(index);
            if channel.from as usize >= self.counts.cells
                || channel.to as usize >= self.counts.cells
            {
                return bad("channel", index, "unknown cell");
            }
        }
        capability::check(self)
    }

    // The checks of one record answer only what is wrong with it; the caller names the
    // record ([`bad`]), so that each rejection is one string, not a whole error.

    /// Checks cell record `index`.
    fn check_cell(&self, index: usize) -> Result<(), &'static str> {
        let record = self.cell_bytes(index);
        let name = &record[..MAX_NAME_LEN];
        let len = name.iter().position(|&b| b == 0).unwrap_or(MAX_NAME_LEN);
        let text = len != 0 && core::str::from_utf8(&name[..len]).is_ok();
        require(text, "name empty or not UTF-8")?;
        require(name[len..].iter().all(|&b| b == 0), "name padding not zero")?;
        let kind = cell_kind(record[16]).ok_or("unknown kind")?;
        require(record[17] <= MAX_PRIORITY, "priority out of range")?;
        let vcpus = record[18] as usize;
        require(
            (1..=MAX_VCPUS_PER_CELL).contains(&vcpus),
            "vCPU count out of range",
        )?;
        let policy = fault_policy(record[19]).ok_or("unknown fault policy")?;
        let flags = CellFlags(record[21]);
        require(flags.0 & !CellFlags::KNOWN.0 == 0, "unknown flag bits")?;
        let el0_guest = flags.contains(CellFlags::EL0) && kind == CellKind::Guest;
        require(!el0_guest, "a guest cell cannot run at EL0")?;
        let (reports, supervisor) = (policy == FaultPolicy::Report, le_u16(record, 22));
        if supervisor == NO_SUPERVISOR {
            require(!reports, "fault policy report without a supervisor")?;
        } else {
            let supervisor = supervisor as usize;
            require(reports, "supervisor without fault policy report")?;
            require(
                supervisor < self.counts.cells,
                "supervisor beyond the cell count",
            )?;
            require(supervisor != index, "cell supervises itself")?;
        }
        let on_board = |&core: &u8| core == ANY_CORE || core < self.core_count();
        let pinned = record[24..24 + vcpus].iter().all(on_board);
        require(pinned, "vCPU pinned to a core beyond the core count")?;
        let (first, count) = (le_u16(record, 32) as usize, le_u16(record, 34) as usize);
        require(
            first + count <= self.counts.regions,
            "region range beyond the region table",
        )?;
        let image_end = le_u32(record, 36) as u64 + le_u32(record, 40) as u64;
        require(image_end <= self.payload_len(), "image beyond the payload")?;
        let controls = le_u32(record, 44);
        // Bits at and past the cell count (none when there are 32 cells).
        let beyond = u32::MAX.checked_shl(self.counts.cells as u32).unwrap_or(0);
        require(
            controls & beyond == 0,
            "control right over a cell beyond the cell count",
        )?;
        require(controls & (1 << index) == 0, "control right over itself")?;
        let (budget, period) = (le_u32(record, 64), le_u32(record, 68));
        let unlimited = budget == 0 && period == 0;
        let within = budget != 0 && budget <= period && period >= MIN_PERIOD_US;
        require(unlimited || within, "budget not within its period")?;
        require(
            record[76..].iter().all(|&b| b == 0),
            "reserved bytes not zero",
        )
    }

    /// Checks region record `index`.
    fn check_region(&self, index: usize) -> Result<(), &'static str> {
        let record = self.region_bytes(index);
        require(region_kind(record[24]).is_some(), "unknown kind")?;
        require(record[25] & !Rights::RWX.0 == 0, "unknown rights bits")?;
        let (ipa, pa, size) = (le_u64(record, 0), le_u64(record, 8), le_u64(record, 16));
        let page = crate::addr::PAGE_SIZE - 1;
        require(
            size != 0 && (ipa | pa | size) & page == 0,
            "empty or not page-aligned",
        )?;
        let wraps = ipa.checked_add(size).is_none() || pa.checked_add(size).is_none();
        require(!wraps, "wraps around the address space")
    }

    /// The plan's bytes (exactly its length).
    #[cfg(any(test, feature = "host"))]
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// The stored checksum.
    #[cfg(any(test, feature = "host"))]
    pub fn checksum(&self) -> u32 {
        le_u32(self.header(), 16)
    }
    /// Board RAM base the plan was laid out for.
    pub fn ram_base(&self) -> u64 {
        le_u64(self.header(), 32)
    }
    /// Board RAM size the plan was laid out for.
    pub fn ram_size(&self) -> u64 {
        le_u64(self.header(), 40)
    }
    /// Bytes from the plan's start to the end of the last cell image.
    pub fn payload_len(&self) -> u64 {
        le_u64(self.header(), 48)
    }
    /// Cores the plan uses.
    pub fn core_count(&self) -> u8 {
        self.header()[28]
    }
    /// Number of cells.
    pub fn cell_count(&self) -> usize {
        self.counts.cells
    }
    /// Number of regions.
    pub fn region_count(&self) -> usize {
        self.counts.regions
    }
    /// Number of IRQ assignments.
    pub fn irq_count(&self) -> usize {
        self.counts.irqs
    }
    /// Number of channels.
    #[cfg(any(test, feature = "host"))]
    pub fn channel_count(&self) -> usize {
        self.counts.channels
    }
    /// Number of IPC endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.counts.endpoints
    }
    /// Number of notifications.
    pub fn notification_count(&self) -> usize {
        self.counts.notifications
    }
    /// Number of capabilities, over all cells.
    pub fn capability_count(&self) -> usize {
        self.counts.capabilities
    }

    fn cell_at(&self, index: usize) -> usize {
        HEADER_LEN + index * CELL_RECORD_LEN
    }
    fn region_at(&self, index: usize) -> usize {
        HEADER_LEN + self.counts.cells * CELL_RECORD_LEN + index * REGION_RECORD_LEN
    }
    fn irq_at(&self, index: usize) -> usize {
        self.region_at(self.counts.regions) + index * IRQ_RECORD_LEN
    }
    fn channel_at(&self, index: usize) -> usize {
        self.irq_at(self.counts.irqs) + index * CHANNEL_RECORD_LEN
    }
    fn endpoint_at(&self, index: usize) -> usize {
        self.channel_at(self.counts.channels) + index * ENDPOINT_RECORD_LEN
    }
    fn notification_at(&self, index: usize) -> usize {
        self.endpoint_at(self.counts.endpoints) + index * NOTIFICATION_RECORD_LEN
    }
    fn capability_at(&self, index: usize) -> usize {
        self.notification_at(self.counts.notifications) + index * CAPABILITY_RECORD_LEN
    }

    // The bytes of one record (or of the header). Slicing once, with the record's length
    // known, lets the fields be read at fixed offsets without a bounds check each.
    // Panics if the record is not in the plan's bytes.
    fn header(&self) -> &'a [u8] {
        &self.bytes[..HEADER_LEN]
    }
    // Out of line: one copy of the slicing for every reader of a cell record.
    #[inline(never)]
    fn cell_bytes(&self, index: usize) -> &'a [u8] {
        self.record(self.cell_at(index), CELL_RECORD_LEN)
    }
    // Always inlined: each caller's constant length is what lets its field reads skip the
    // bounds checks (out of line, the kernel grows by 2.4 KB).
    #[inline(always)]
    fn record(&self, at: usize, len: usize) -> &'a [u8] {
        &self.bytes[at..at + len]
    }
    fn region_bytes(&self, index: usize) -> &'a [u8] {
        self.record(self.region_at(index), REGION_RECORD_LEN)
    }
    fn irq_bytes(&self, index: usize) -> &'a [u8] {
        self.record(self.irq_at(index), IRQ_RECORD_LEN)
    }
    fn channel_bytes(&self, index: usize) -> &'a [u8] {
        self.record(self.channel_at(index), CHANNEL_RECORD_LEN)
    }
    fn endpoint_bytes(&self, index: usize) -> &'a [u8] {
        self.record(self.endpoint_at(index), ENDPOINT_RECORD_LEN)
    }
    fn notification_bytes(&self, index: usize) -> &'a [u8] {
        self.record(self.notification_at(index), NOTIFICATION_RECORD_LEN)
    }
    fn capability_bytes(&self, index: usize) -> &'a [u8] {
        self.record(self.capability_at(index), CAPABILITY_RECORD_LEN)
    }

    fn cell_checked(&self, index: usize) -> Option<CellRecord> {
        (index < self.counts.cells).then(|| self.cell(index))
    }

    /// Cell record `index`. Panics if `index >= cell_count()`.
    pub fn cell(&self, index: usize) -> CellRecord {
        let b = self.cell_bytes(index);
        CellRecord {
            name: bytes_at(b, 0),
            kind: cell_kind(b[16]).unwrap_or(CellKind::Native),
            priority: b[17],
            vcpu_count: b[18],
            fault_policy: fault_policy(b[19]).unwrap_or(FaultPolicy::Stop),
            restart_limit: b[20],
            flags: CellFlags(b[21]),
            supervisor: le_u16(b, 22),
            vcpu_cores: bytes_at(b, 24),
            first_region: le_u16(b, 32),
            region_count: le_u16(b, 34),
            image_offset: le_u32(b, 36),
            image_size: le_u32(b, 40),
            controls: le_u32(b, 44),
            entry_ipa: le_u64(b, 48),
            load_ipa: le_u64(b, 56),
            budget_us: le_u32(b, 64),
            period_us: le_u32(b, 68),
            first_capability: le_u16(b, 72),
            capability_count: le_u16(b, 74),
        }
    }

    /// The name of cell `index` as text (as [`CellRecord::name`]), borrowed from the plan.
    /// Panics if `index >= cell_count()`.
    pub fn cell_name(&self, index: usize) -> &'a str {
        name_text(&self.cell_bytes(index)[..MAX_NAME_LEN])
    }

    /// Region record `index`. Panics if `index >= region_count()`.
    pub fn region(&self, index: usize) -> RegionRecord {
        let b = self.region_bytes(index);
        RegionRecord {
            ipa: le_u64(b, 0),
            pa: le_u64(b, 8),
            size: le_u64(b, 16),
            kind: region_kind(b[24]).unwrap_or(RegionKind::Ram),
            rights: Rights(b[25]),
        }
    }

    /// IRQ record `index`. Panics if `index >= irq_count()`.
    pub fn irq(&self, index: usize) -> IrqRecord {
        let b = self.irq_bytes(index);
        IrqRecord {
            intid: le_u32(b, 0),
            cell: le_u16(b, 4),
            vcpu: b[6],
        }
    }

    /// Channel record `index`. Panics if `index >= channel_count()`.
    pub fn channel(&self, index: usize) -> ChannelRecord {
        let b = self.channel_bytes(index);
        ChannelRecord {
            from: le_u16(b, 0),
            to: le_u16(b, 2),
        }
    }

    /// All cells.
    pub fn cells(&self) -> impl Iterator<Item = CellRecord> + '_ {
        (0..self.counts.cells).map(|i| self.cell(i))
    }

    /// The regions of `cell`.
    pub fn regions_of(&self, cell: &CellRecord) -> impl Iterator<Item = RegionRecord> + '_ {
        let first = cell.first_region as usize;
        (first..first + cell.region_count as usize).map(|i| self.region(i))
    }
}

/// A NUL-padded name field as text ("?" if not UTF-8, which the decoder rules out).
fn name_text(field: &[u8]) -> &str {
    let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    core::str::from_utf8(&field[..len]).unwrap_or("?")
}

// Each enum's variants in the order of their codes, so that code `v` is entry `v`.
fn cell_kind(v: u8) -> Option<CellKind> {
    use CellKind::*;
    [Native, Guest].get(usize::from(v)).copied()
}

fn fault_policy(v: u8) -> Option<FaultPolicy> {
    use FaultPolicy::*;
    [Stop, Restart, Report].get(usize::from(v)).copied()
}

fn region_kind(v: u8) -> Option<RegionKind> {
    use RegionKind::*;
    [Ram, Device, Shared, Foreign].get(usize::from(v)).copied()
}

/// `Err(reason)` unless `rule` holds: one line per rule of a record check.
fn require(rule: bool, reason: &'static str) -> Result<(), &'static str> {
    rule.then_some(()).ok_or(reason)
}

/// The error for record `index` of kind `what`.
fn bad(what: &'static str, index: usize, reason: &'static str) -> Result<(), PlanError> {
    Err(PlanError::BadRecord {
        what,
        index,
        reason,
    })
}

// Always inlined: every caller passes a record (or header) slice and a fixed offset, so the
// reads compile to single loads with no bounds check left.
#[inline(always)]
fn bytes_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut bytes = [0; N];
    bytes.copy_from_slice(&b[at..at + N]);
    bytes
}
#[inline(always)]
fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
#[inline(always)]
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline(always)]
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(core::array::from_fn(|i| b[at + i]))
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = (c >> 1) ^ (0xEDB8_8320 * (c & 1));
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE 802.3, as zlib) of `bytes`.
#[cfg(any(test, feature = "host"))]
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32_update(!0, bytes) ^ !0
}

fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc = CRC_TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

fn crc32_with_zeroed_checksum(plan: &[u8]) -> u32 {
    let crc = crc32_update(!0, &plan[..16]);
    let crc = crc32_update(crc, &[0; 4]);
    crc32_update(crc, &plan[20..]) ^ !0
}

mod capability;
mod encode;
#[cfg(test)]
mod tests;
