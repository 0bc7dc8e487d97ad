//! The hypercall ABI: how a cell asks the kernel for something.
//!
//! A cell executes `hvc #0` with the call number in `x0` and up to five arguments in
//! `x1..=x5`. On return `x0` holds [`STATUS_OK`] or an [`HvcError`] code, and `x1..=x3` hold
//! the call's results (undefined on error). Every other general register is preserved.
//! Unknown call numbers and bad arguments get an error code; they never stop the kernel.
//!
//! | call | number | arguments | results |
//! |---|---|---|---|
//! | [`CONSOLE_WRITE`] | 0x01 | x1 = IPA of bytes, x2 = length (≤ [`CONSOLE_WRITE_MAX`]) | x1 = bytes written |
//! | [`YIELD`] | 0x02 | – | – |
//! | [`EXIT`] | 0x03 | x1 = exit code | does not return |
//! | [`VCPU_INFO`] | 0x04 | – | x1 = cell index, x2 = vCPU index, x3 = physical core |
//! | [`TIME`] | 0x05 | – | x1 = counter value, x2 = counter frequency in Hz |

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

/// Largest length one [`CONSOLE_WRITE`] accepts.
pub const CONSOLE_WRITE_MAX: u64 = 256;

/// Why a hypercall failed. The discriminant is the code returned in `x0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
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
}

impl HvcError {
    /// Decodes the `x0` of a failed call; `None` for [`STATUS_OK`] or an unknown code.
    pub const fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            1 => Self::UnknownCall,
            2 => Self::InvalidAddress,
            3 => Self::InvalidLength,
            4 => Self::Denied,
            5 => Self::InvalidArgument,
            _ => return None,
        })
    }

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
        ] {
            assert_eq!(HvcError::from_code(e.code()), Some(e));
        }
        assert_eq!(HvcError::from_code(STATUS_OK), None);
    }
}
