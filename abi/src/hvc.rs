//! The hypercall ABI: how a cell asks the kernel for something.
//!
//! A cell executes `hvc #0` with the call number in `x0` and up to five arguments in
//! `x1..=x5`. On return `x0` holds [`STATUS_OK`] or an [`HvcError`] code, and `x1..=x4` hold
//! the call's results (undefined on error; IPC calls also use `x5`). Every other general register, the FP/SIMD
//! registers and the EL1 system registers are preserved; the condition flags are not.
//! Unknown call numbers and bad arguments get an error code; they never stop the kernel.
//! An `hvc` with an immediate other than 0 is an illegal hypercall: a fault of the cell,
//! handled by its fault policy.
//!
//! | call | number | arguments | results |
//! |---|---|---|---|
//! | [`CONSOLE_WRITE`] | 0x01 | x1 = IPA of bytes, x2 = length (≤ [`CONSOLE_WRITE_MAX`]) | x1 = bytes written |
//! | [`YIELD`] | 0x02 | – | – |
//! | [`EXIT`] | 0x03 | x1 = exit code | does not return |
//! | [`VCPU_INFO`] | 0x04 | – | x1 = cell index, x2 = vCPU index, x3 = physical core, x4 = restarts of the cell |
//! | [`TIME`] | 0x05 | – | x1 = counter value, x2 = counter frequency in Hz |
//! | [`NULL`] | 0x06 | – | – (does nothing: for measuring the round trip) |
//! | [`CELL_CONTROL`] | 0x07 | x1 = cell index, x2 = [`ControlOperation`] | – (needs the control right over that cell) |
//! | [`CELL_STATUS`] | 0x08 | x1 = cell index | x1 = [`CellStatus`], x2 = restarts, x3 = faults, x4 = capability denials (own cell, or needs the control right) |
//! | [`FAULT_WAIT`] | 0x09 | – | blocks until a cell this cell supervises faults: x1 = cell index, x2 = [`FaultKind`], x3 = faulting address (IPA for aborts, else pc), x4 = pc |
//!
//! | [`CALL`] | 0x10 | x1 = endpoint capability slot (call right), x2..x5 = message words | blocks until the server replies: x1..x4 = reply words |
//! | [`REPLY_WAIT`] | 0x11 | x1 = endpoint capability slot (serve right), x2..x5 = reply to the caller being served (ignored if none) | replies, then blocks until the next call: x1 = the caller's badge, x2..x5 = message words |
//! | [`SIGNAL`] | 0x12 | x1 = notification capability slot (signal right), x2 = bits to set (non-zero) | – |
//! | [`WAIT`] | 0x13 | x1 = notification capability slot (wait right) | blocks until a bit is set: x1 = the bits (now cleared) |
//! | [`POLL`] | 0x14 | x1 = notification capability slot (wait right) | x1 = the bits (now cleared), possibly 0 |
//! | [`CAP_INFO`] | 0x15 | x1 = capability slot | x1 = [`CapabilityKind`], x2 = rights, x3 and x4 = what the kind says |
//!
//! Capabilities: each cell has a fixed table built from the boot plan; calls name a
//! capability by its slot. A slot that is empty, of the wrong kind or without the right gets
//! [`HvcError::Denied`] (or [`HvcError::InvalidCapability`] for a slot beyond the table)
//! and counts a denial for the cell; it never has an effect. A call's server runs at its own
//! priority; the caller waits, blocked, until the reply. If the server's cell faults, stops
//! or restarts while it holds the call, the caller gets [`HvcError::PeerFault`]; a call to a
//! stopped server gets [`HvcError::PeerStopped`] at once.
//!
//! A native cell's first vCPU starts at the image's entry with x0 = vCPU index and x1 = the
//! number of times the cell was restarted (0 on the first run).

/// Value of `x0` after a successful call.
pub const STATUS_OK: u64 = 0;

/// Write bytes from the cell's memory to the console, prefixed per line by the cell's name.
pub const CONSOLE_WRITE: u64 = 0x01;
/// Give up the rest of this time slice to another vCPU of the same priority.
pub const YIELD: u64 = 0x02;
/// Stop the calling cell (all its vCPUs); the kernel reports the exit code.
pub const EXIT: u64 = 0x03;
/// Identify the calling vCPU.
pub const VCPU_INFO: u64 = 0x04;
/// Read the system counter and its frequency.
pub const TIME: u64 = 0x05;

/// Do nothing (the cheapest possible round trip).
pub const NULL: u64 = 0x06;
/// Stop, start or restart another cell.
pub const CELL_CONTROL: u64 = 0x07;
/// Read a cell's state and counters.
pub const CELL_STATUS: u64 = 0x08;
/// Wait for a fault report from a supervised cell.
pub const FAULT_WAIT: u64 = 0x09;

/// Call an endpoint and wait for the reply.
pub const CALL: u64 = 0x10;
/// Reply to the call being served (if any) and wait for the next one.
pub const REPLY_WAIT: u64 = 0x11;
/// Set bits in a notification.
pub const SIGNAL: u64 = 0x12;
/// Wait for bits in a notification.
pub const WAIT: u64 = 0x13;
/// Take a notification's bits without waiting.
pub const POLL: u64 = 0x14;
/// Describe a capability.
pub const CAP_INFO: u64 = 0x15;

/// Number of message words in a call or a reply.
pub const MESSAGE_WORDS: usize = 4;

/// Declares an enum of ABI codes (`#[repr(u64)]`, each variant's discriminant is its
/// code) with `from_code`, which decodes a code and refuses one no variant has.
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $code:literal,)*
        }
        $(#[$decode_meta:meta])*
        fn from_code;
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u64)]
        pub enum $name {
            $($(#[$variant_meta])* $variant = $code,)*
        }

        impl $name {
            $(#[$decode_meta])*
            pub const fn from_code(code: u64) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

code_enum! {
    /// What a capability designates, as [`CAP_INFO`] reports it.
    pub enum CapabilityKind {
        /// An IPC endpoint; rights [`ENDPOINT_CALL`] / [`ENDPOINT_SERVE`]; x3 = badge (for a
        /// call capability).
        Endpoint = 1,
        /// A notification word; rights [`NOTIFICATION_SIGNAL`] / [`NOTIFICATION_WAIT`]; x3 =
        /// the virtual interrupt it raises in the waiter (0 = none).
        Notification = 2,
        /// A shared memory region mapped into the cell; rights are `plan::Rights` bits; x3 =
        /// IPA, x4 = size in bytes.
        SharedMemory = 3,
        /// A physical interrupt routed to the cell; x3 = INTID.
        Interrupt = 4,
        /// Control over another cell; right [`CONTROL`]; x3 = the cell's index.
        CellControl = 5,
    }
    /// Decodes the `x1` result of [`CAP_INFO`].
    fn from_code;
}

/// Endpoint right: call it.
pub const ENDPOINT_CALL: u64 = 1;
/// Endpoint right: serve it (receive calls, reply).
pub const ENDPOINT_SERVE: u64 = 2;
/// Notification right: set bits.
pub const NOTIFICATION_SIGNAL: u64 = 1;
/// Notification right: wait for and take bits.
pub const NOTIFICATION_WAIT: u64 = 2;
/// Cell-control right: stop, start, restart, read status.
pub const CONTROL: u64 = 1;

code_enum! {
    /// What [`CELL_CONTROL`] does to the target cell.
    pub enum ControlOperation {
        /// Stop all its vCPUs.
        Stop = 0,
        /// Start a stopped cell from its pristine image (restart counter unchanged).
        Start = 1,
        /// Reload its pristine image and start it again, counting a restart.
        Restart = 2,
    }
    /// Decodes the `x2` argument.
    fn from_code;
}

code_enum! {
    /// A cell's state as [`CELL_STATUS`] reports it.
    pub enum CellStatus {
        /// Its vCPUs are scheduled.
        Running = 0,
        /// Being restarted.
        Restarting = 1,
        /// Stopped (by a fault, its own exit or a controller).
        Stopped = 2,
    }
    /// Decodes the `x1` result.
    fn from_code;
}

code_enum! {
    /// What kind of fault [`FAULT_WAIT`] reports.
    pub enum FaultKind {
        /// A data access to an IPA without a suitable mapping.
        DataAbort = 1,
        /// An instruction fetch from an IPA without an executable mapping.
        InstructionAbort = 2,
        /// A trapped instruction the kernel does not emulate.
        Undefined = 3,
        /// An `hvc` with a non-zero immediate.
        IllegalHypercall = 4,
        /// An SError or FIQ.
        Asynchronous = 5,
    }
    /// Decodes the `x2` result.
    fn from_code;
}

/// Largest length one [`CONSOLE_WRITE`] accepts.
pub const CONSOLE_WRITE_MAX: u64 = 256;

code_enum! {
    /// Why a hypercall failed. The discriminant is the code returned in `x0`.
    pub enum HvcError {
        /// The call number is not defined.
        UnknownCall = 1,
        /// An address argument is outside the cell's memory or lacks the needed right.
        InvalidAddress = 2,
        /// A length argument is zero where not allowed, or too large.
        InvalidLength = 3,
        /// The cell holds no capability for this operation.
        Denied = 4,
        /// Another argument is out of range.
        InvalidArgument = 5,
        /// The server faulted, stopped or restarted while it held this call.
        PeerFault = 6,
        /// The server's cell is stopped.
        PeerStopped = 7,
        /// The capability slot is beyond the cell's table.
        InvalidCapability = 8,
    }
    /// Decodes the `x0` of a failed call; `None` for [`STATUS_OK`] or an unknown code.
    fn from_code;
}

impl HvcError {
    /// The code placed in `x0`.
    pub const fn code(self) -> u64 {
        self as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip() {
        for e in [
            HvcError::UnknownCall,
            HvcError::InvalidAddress,
            HvcError::InvalidLength,
            HvcError::Denied,
            HvcError::InvalidArgument,
            HvcError::PeerFault,
            HvcError::PeerStopped,
            HvcError::InvalidCapability,
        ] {
            assert_eq!(HvcError::from_code(e.code()), Some(e));
        }
        assert_eq!(HvcError::from_code(STATUS_OK), None);
    }

    #[test]
    fn enumerations_round_trip_and_refuse_unknown_codes() {
        for op in [
            ControlOperation::Stop,
            ControlOperation::Start,
            ControlOperation::Restart,
        ] {
            assert_eq!(ControlOperation::from_code(op as u64), Some(op));
        }
        assert_eq!(ControlOperation::from_code(3), None);
        for status in [
            CellStatus::Running,
            CellStatus::Restarting,
            CellStatus::Stopped,
        ] {
            assert_eq!(CellStatus::from_code(status as u64), Some(status));
        }
        assert_eq!(CellStatus::from_code(3), None);
        for kind in 1..=5 {
            assert_eq!(FaultKind::from_code(kind).map(|k| k as u64), Some(kind));
        }
        assert_eq!(FaultKind::from_code(0), None);
        assert_eq!(FaultKind::from_code(6), None);
    }
}
