//! Decoding a guest's trapped access to an emulated device from its data-abort syndrome.
//!
//! This module owns turning a stage-2 data abort with a valid instruction syndrome (a single
//! load or store of one general register) into an [`Access`]: where, how wide, and for a
//! store the value, already truncated to the access size. For a load, [`load_result`] turns
//! the device's answer into the value the destination register receives (zero- or
//! sign-extended, 32-bit W registers zero their upper half).
//!
//! Invariants: [`access`] is total over its inputs (it never panics); an [`Access`] it
//! returns has `size` 1, 2, 4 or 8 and a `write` value that fits in `size` bytes. Register
//! 31 means XZR here: a store of it writes 0, a load into it is discarded by the kernel.

use crate::esr::DataAbort;
#[cfg(test)]
use core::fmt;

/// The general register number that means XZR in a data-abort syndrome.
pub const ZERO_REGISTER: u8 = 31;

/// One decoded guest load or store to an emulated device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// The intermediate physical address accessed.
    pub address: u64,
    /// The access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// For a store, the value stored, truncated to `size` bytes; `None` for a load.
    pub write: Option<u64>,
    /// The general register transferred (31 means XZR).
    pub register: u8,
    /// A load sign-extends the value.
    pub sign_extend: bool,
    /// The register is accessed as 64 bits (X) rather than 32 (W).
    pub sixty_four: bool,
}

/// Why a data abort cannot be emulated as a device access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioError {
    /// ISV is clear: the instruction (a load/store pair, a vector or atomic access, a
    /// writeback form) cannot be emulated from the syndrome alone.
    NoValidSyndrome,
    /// The syndrome's access size is not 1, 2, 4 or 8 bytes.
    BadSize,
}

// The kernel returns these as hypercall codes and never renders them: the text is
// for the tests.
#[cfg(test)]
impl fmt::Display for MmioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoValidSyndrome => "the data abort carries no valid instruction syndrome",
            Self::BadSize => "the access size is not 1, 2, 4 or 8 bytes",
        })
    }
}

/// The mask of the low `size` bytes (all ones for 8 or more).
pub const fn size_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size as u32 * 8)) - 1
    }
}

/// Decodes a trapped access to `ipa`; `register_value` is the current value of the
/// transferred general register (ignored for loads and for XZR).
pub fn access(abort: &DataAbort, ipa: u64, register_value: u64) -> Result<Access, MmioError> {
    if !abort.valid_syndrome {
        return Err(MmioError::NoValidSyndrome);
    }
    if !matches!(abort.size_bytes, 1 | 2 | 4 | 8) {
        return Err(MmioError::BadSize);
    }
    let register = abort.register & 0x1f;
    let write = abort.write.then(|| {
        if register == ZERO_REGISTER {
            0
        } else {
            register_value & size_mask(abort.size_bytes)
        }
    });
    Ok(Access {
        address: ipa,
        size: abort.size_bytes,
        write,
        register,
        sign_extend: abort.sign_extend,
        sixty_four: abort.sixty_four_bit_register,
    })
}

/// The value a load's destination register receives when the device answered `value`:
/// truncated to the access size, sign-extended if the instruction asks for it, then cut to
/// 32 bits (upper half zero) for a W register.
pub fn load_result(access: &Access, value: u64) -> u64 {
    let size = access.size.clamp(1, 8);
    let mut result = value & size_mask(size);
    if access.sign_extend && size < 8 {
        let bits = u32::from(size) * 8;
        let sign = 1u64 << (bits - 1);
        if result & sign != 0 {
            result |= !size_mask(size);
        }
    }
    if !access.sixty_four {
        result &= 0xffff_ffff;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esr::{decode, Exit};

    fn abort_of(esr: u64) -> DataAbort {
        match decode(esr) {
            Exit::DataAbort(abort) => abort,
            other => panic!("not a data abort: {other:?}"),
        }
    }

    #[test]
    fn word_store_is_truncated_to_its_size() {
        // str w1, [x0]
        let access = access(&abort_of(0x9381_0047), 0x0900_0000, 0xdead_beef_1234_5678).unwrap();
        assert_eq!(
            access,
            Access {
                address: 0x0900_0000,
                size: 4,
                write: Some(0x1234_5678),
                register: 1,
                sign_extend: false,
                sixty_four: false,
            }
        );
    }

    #[test]
    fn store_of_the_zero_register_writes_zero() {
        // str xzr, [x?]: SAS=doubleword, SRT=31, write.
        let access = access(&abort_of(0x93df_8047), 0x1000, 0xffff).unwrap();
        assert_eq!(access.write, Some(0));
        assert_eq!(access.size, 8);
    }

    #[test]
    fn sign_extending_byte_load_into_an_x_register() {
        // ldrsb x5, [x2]
        let access = access(&abort_of(0x9325_8006), 0x2000, 0).unwrap();
        assert_eq!(access.write, None);
        assert_eq!(load_result(&access, 0x80), 0xffff_ffff_ffff_ff80);
        assert_eq!(load_result(&access, 0x17f), 0x7f);
    }

    #[test]
    fn sign_extending_halfword_load_into_a_w_register_zeroes_the_top() {
        let access = Access {
            address: 0,
            size: 2,
            write: None,
            register: 3,
            sign_extend: true,
            sixty_four: false,
        };
        assert_eq!(load_result(&access, 0x8001), 0xffff_8001);
        let unsigned = Access {
            sign_extend: false,
            ..access
        };
        assert_eq!(load_result(&unsigned, 0xffff_8001), 0x8001);
    }

    #[test]
    fn doubleword_and_word_loads() {
        let doubleword = Access {
            address: 0,
            size: 8,
            write: None,
            register: 0,
            sign_extend: false,
            sixty_four: true,
        };
        assert_eq!(load_result(&doubleword, u64::MAX), u64::MAX);
        let word = Access {
            size: 4,
            sixty_four: false,
            ..doubleword
        };
        assert_eq!(load_result(&word, 0x1_2345_6789), 0x2345_6789);
        let signed_word = Access {
            sign_extend: true,
            sixty_four: true,
            ..word
        };
        assert_eq!(
            load_result(&signed_word, 0x8000_0000),
            0xffff_ffff_8000_0000
        );
    }

    #[test]
    fn aborts_without_syndrome_or_with_a_bad_size_are_refused() {
        assert_eq!(
            access(&abort_of(0x9200_008f), 0, 0),
            Err(MmioError::NoValidSyndrome)
        );
        let mut abort = abort_of(0x9381_0047);
        abort.size_bytes = 3;
        assert_eq!(access(&abort, 0, 0), Err(MmioError::BadSize));
        let bad = Access {
            address: 0,
            size: 0,
            write: None,
            register: 0,
            sign_extend: true,
            sixty_four: true,
        };
        // A hand-made access with a nonsense size does not panic.
        assert_eq!(load_result(&bad, 0x1ff), 0xffff_ffff_ffff_ffff);
    }
}
