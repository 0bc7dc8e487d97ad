//! Decoding a hypercall from a vCPU's registers into a typed request.
//!
//! The kernel's trap handler passes x0..x5 exactly as the cell left them; `decode` turns
//! them into a [`Call`] or an [`HvcError`] without trusting any value. Executing the call
//! (which needs the hardware) is the kernel's job; everything that can be decided from the
//! registers alone is decided here so it is tested on the host.

use abi::hvc::{self, HvcError};

/// A well-formed hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Write `len` bytes at `ipa` to the console (1 ≤ len ≤ CONSOLE_WRITE_MAX).
    ConsoleWrite {
        /// Start of the bytes in the cell's address space.
        ipa: u64,
        /// Number of bytes.
        len: u64,
    },
    /// Give up the rest of the time slice.
    Yield,
    /// Stop the calling cell.
    Exit {
        /// Code reported on the console.
        code: u64,
    },
    /// Identify the calling vCPU.
    VcpuInfo,
    /// Read the counter and its frequency.
    Time,
    /// Do nothing.
    Null,
    /// Stop, start or restart another cell (`operation` not yet decoded: the kernel checks
    /// the right first, so that a denied call is reported as such).
    CellControl {
        /// Target cell index, as passed.
        cell: u64,
        /// The operation code, as passed.
        operation: u64,
    },
    /// Read a cell's state.
    CellStatus {
        /// Target cell index, as passed.
        cell: u64,
    },
    /// Wait for a fault report.
    FaultWait,
    /// Call an endpoint.
    Call {
        /// Capability slot, as passed.
        slot: u64,
        /// Message words (x2..x5).
        message: [u64; abi::hvc::MESSAGE_WORDS],
    },
    /// Reply to the call being served and wait for the next.
    ReplyWait {
        /// Capability slot, as passed.
        slot: u64,
        /// Reply words (x2..x5).
        reply: [u64; abi::hvc::MESSAGE_WORDS],
    },
    /// Set bits in a notification (never zero bits).
    Signal {
        /// Capability slot, as passed.
        slot: u64,
        /// The bits.
        bits: u64,
    },
    /// Wait for a notification's bits.
    Wait {
        /// Capability slot, as passed.
        slot: u64,
    },
    /// Take a notification's bits without waiting.
    Poll {
        /// Capability slot, as passed.
        slot: u64,
    },
    /// Describe a capability.
    CapInfo {
        /// Capability slot, as passed.
        slot: u64,
    },
}

/// SIGNAL's bits (x2), checked: an empty signal is refused.
pub fn signal_bits(bits: u64) -> Result<u64, HvcError> {
    if bits == 0 {
        return Err(HvcError::InvalidArgument);
    }
    Ok(bits)
}

/// Decodes the registers x0..x5 of a vCPU that executed `hvc #0`.
pub fn decode(registers: &[u64; 6]) -> Result<Call, HvcError> {
    match registers[0] {
        hvc::CONSOLE_WRITE => {
            let (ipa, len) = (registers[1], registers[2]);
            if len == 0 || len > hvc::CONSOLE_WRITE_MAX {
                return Err(HvcError::InvalidLength);
            }
            if ipa.checked_add(len).is_none() {
                return Err(HvcError::InvalidAddress);
            }
            Ok(Call::ConsoleWrite { ipa, len })
        }
        hvc::YIELD => Ok(Call::Yield),
        hvc::EXIT => Ok(Call::Exit { code: registers[1] }),
        hvc::VCPU_INFO => Ok(Call::VcpuInfo),
        hvc::TIME => Ok(Call::Time),
        hvc::NULL => Ok(Call::Null),
        hvc::CELL_CONTROL => Ok(Call::CellControl {
            cell: registers[1],
            operation: registers[2],
        }),
        hvc::CELL_STATUS => Ok(Call::CellStatus { cell: registers[1] }),
        hvc::FAULT_WAIT => Ok(Call::FaultWait),
        hvc::CALL => Ok(Call::Call {
            slot: registers[1],
            message: [registers[2], registers[3], registers[4], registers[5]],
        }),
        hvc::REPLY_WAIT => Ok(Call::ReplyWait {
            slot: registers[1],
            reply: [registers[2], registers[3], registers[4], registers[5]],
        }),
        hvc::SIGNAL => signal_bits(registers[2]).map(|bits| Call::Signal {
            slot: registers[1],
            bits,
        }),
        hvc::WAIT => Ok(Call::Wait { slot: registers[1] }),
        hvc::POLL => Ok(Call::Poll { slot: registers[1] }),
        hvc::CAP_INFO => Ok(Call::CapInfo { slot: registers[1] }),
        _ => Err(HvcError::UnknownCall),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(number: u64, a1: u64, a2: u64) -> Result<Call, HvcError> {
        decode(&[number, a1, a2, 0, 0, 0])
    }

    #[test]
    fn console_write_bounds() {
        assert_eq!(
            call(hvc::CONSOLE_WRITE, 0x4000_0000, 5),
            Ok(Call::ConsoleWrite {
                ipa: 0x4000_0000,
                len: 5
            })
        );
        assert_eq!(
            call(hvc::CONSOLE_WRITE, 0x4000_0000, 0),
            Err(HvcError::InvalidLength)
        );
        assert_eq!(
            call(hvc::CONSOLE_WRITE, 0x4000_0000, hvc::CONSOLE_WRITE_MAX + 1),
            Err(HvcError::InvalidLength)
        );
        assert_eq!(
            call(hvc::CONSOLE_WRITE, u64::MAX - 2, 5),
            Err(HvcError::InvalidAddress)
        );
    }

    #[test]
    fn every_undefined_number_is_refused() {
        let defined = [
            hvc::CONSOLE_WRITE,
            hvc::YIELD,
            hvc::EXIT,
            hvc::VCPU_INFO,
            hvc::TIME,
            hvc::NULL,
            hvc::CELL_CONTROL,
            hvc::CELL_STATUS,
            hvc::FAULT_WAIT,
            hvc::CALL,
            hvc::REPLY_WAIT,
            hvc::SIGNAL,
            hvc::WAIT,
            hvc::POLL,
            hvc::CAP_INFO,
        ];
        for number in (0..0x1000u64).chain([u64::MAX, 1 << 63, 0x8400_0000]) {
            if !defined.contains(&number) {
                assert_eq!(
                    call(number, 1, 2),
                    Err(HvcError::UnknownCall),
                    "call {number:#x}"
                );
            }
        }
    }

    #[test]
    fn ipc_calls_carry_their_words_and_refuse_empty_signals() {
        let registers = [hvc::CALL, 3, 10, 11, 12, 13];
        assert_eq!(
            decode(&registers),
            Ok(Call::Call {
                slot: 3,
                message: [10, 11, 12, 13]
            })
        );
        let registers = [hvc::REPLY_WAIT, 1, 20, 21, 22, 23];
        assert_eq!(
            decode(&registers),
            Ok(Call::ReplyWait {
                slot: 1,
                reply: [20, 21, 22, 23]
            })
        );
        assert_eq!(call(hvc::SIGNAL, 2, 0), Err(HvcError::InvalidArgument));
        assert_eq!(
            call(hvc::SIGNAL, 2, 0b101),
            Ok(Call::Signal {
                slot: 2,
                bits: 0b101
            })
        );
        assert_eq!(call(hvc::WAIT, 4, 0), Ok(Call::Wait { slot: 4 }));
        assert_eq!(call(hvc::POLL, 4, 0), Ok(Call::Poll { slot: 4 }));
        assert_eq!(call(hvc::CAP_INFO, 9, 0), Ok(Call::CapInfo { slot: 9 }));
    }

    #[test]
    fn simple_calls_decode() {
        assert_eq!(call(hvc::YIELD, 9, 9), Ok(Call::Yield));
        assert_eq!(call(hvc::EXIT, 7, 0), Ok(Call::Exit { code: 7 }));
        assert_eq!(call(hvc::VCPU_INFO, 0, 0), Ok(Call::VcpuInfo));
        assert_eq!(call(hvc::TIME, 0, 0), Ok(Call::Time));
        assert_eq!(call(hvc::NULL, 0, 0), Ok(Call::Null));
        assert_eq!(
            call(hvc::CELL_CONTROL, 3, 2),
            Ok(Call::CellControl {
                cell: 3,
                operation: 2
            })
        );
        assert_eq!(
            call(hvc::CELL_STATUS, 7, 0),
            Ok(Call::CellStatus { cell: 7 })
        );
        assert_eq!(call(hvc::FAULT_WAIT, 0, 0), Ok(Call::FaultWait));
    }
}
