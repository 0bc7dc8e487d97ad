//! Decoding `ESR_EL2` for synchronous exceptions taken from a cell.
//!
//! This module owns the meaning of the syndrome bits the kernel acts on: the exception
//! class (bits `[31:26]`) and, per class, the instruction-specific syndrome (bits `[24:0]`).
//! [`decode`] is total: every 64-bit value decodes to some [`Exit`] (unknown classes to
//! [`Exit::Other`]), so a cell cannot make the kernel panic through what it traps on.
//! Bits above 31 (ISS2 on newer cores) are ignored.

/// Exception class: trapped WFI or WFE.
pub const EC_WFX: u8 = 0x01;
/// Exception class: access to SIMD or floating point trapped by `CPTR_EL2`.
pub const EC_FLOATING_POINT: u8 = 0x07;
/// Exception class: SVC from AArch64. Taken to EL2 only from a cell running at EL0 with
/// `HCR_EL2.TGE` set, for which `svc #0` is the hypercall instruction (HVC is undefined at EL0).
pub const EC_SVC64: u8 = 0x15;
/// Exception class: HVC from AArch64.
pub const EC_HVC64: u8 = 0x16;
/// Exception class: SMC from AArch64 (trapped by `HCR_EL2.TSC`).
pub const EC_SMC64: u8 = 0x17;
/// Exception class: MSR, MRS or system instruction from AArch64.
pub const EC_SYSTEM_REGISTER: u8 = 0x18;
/// Exception class: instruction abort from a lower exception level.
pub const EC_INSTRUCTION_ABORT_LOWER: u8 = 0x20;
/// Exception class: data abort from a lower exception level.
pub const EC_DATA_ABORT_LOWER: u8 = 0x24;
/// Exception class: unknown reason (for example an undefined instruction).
pub const EC_UNKNOWN: u8 = 0x00;

/// Why a cell's vCPU left the cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `hvc #imm`, or `svc #imm` from a cell at EL0; the kernel's hypercalls use `imm` 0.
    /// `ELR_EL2` is already past it.
    Hvc {
        /// The immediate.
        imm: u16,
    },
    /// `smc #imm`, trapped; `ELR_EL2` points at the SMC itself.
    Smc {
        /// The immediate.
        imm: u16,
    },
    /// A stage-2 (or stage-1 walk) data abort.
    DataAbort(DataAbort),
    /// A stage-2 instruction abort.
    InstructionAbort {
        /// Instruction fault status code, see [`describe_fault_status`].
        fault_status: u8,
    },
    /// A trapped WFI (`wfe == false`) or WFE.
    Wfx {
        /// Whether it was WFE (or WFET).
        wfe: bool,
    },
    /// A trapped MSR, MRS or system instruction.
    SystemRegister {
        /// Whether it reads the register into `register` (MRS) rather than writes it.
        read: bool,
        /// Op0.
        op0: u8,
        /// Op1.
        op1: u8,
        /// CRn.
        crn: u8,
        /// CRm.
        crm: u8,
        /// Op2.
        op2: u8,
        /// The general register transferred (31 means XZR).
        register: u8,
    },
    /// A trapped SIMD or floating-point access.
    FloatingPoint,
    /// Any other exception class, including 0x00 (unknown reason).
    Other {
        /// The exception class.
        ec: u8,
    },
}

/// The syndrome of a data abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAbort {
    /// ISV: whether `write`, `size_bytes`, `register`, `sign_extend` and
    /// `sixty_four_bit_register` are valid (a single general-register load or store).
    pub valid_syndrome: bool,
    /// WnR: the access was a write.
    pub write: bool,
    /// SAS: access size, 1, 2, 4 or 8 bytes.
    pub size_bytes: u8,
    /// SRT: the general register transferred (31 means XZR).
    pub register: u8,
    /// SSE: a load must sign-extend the value.
    pub sign_extend: bool,
    /// DFSC: data fault status code, see [`describe_fault_status`].
    pub fault_status: u8,
    /// S1PTW: the fault happened on a stage-2 access made by the cell's own stage-1 walk.
    pub stage1_walk: bool,
    /// SF: the register is accessed as 64 bits (X) rather than 32 (W).
    pub sixty_four_bit_register: bool,
}

/// Exception class of an `ESR_EL2` value.
pub const fn exception_class(esr: u64) -> u8 {
    ((esr >> 26) & 0x3f) as u8
}

/// The register a trapped `msr icc_sgi1r_el1, <Xt>` (a guest sending an SGI) wrote, read
/// from its `ESR_EL2` alone: the guests' most frequent trap after MMIO, taken before the
/// general [`decode`]. `None` for any other exception.
pub const fn sgi1r_write_register(esr: u64) -> Option<u8> {
    // EC 0x18, IL, op0 3, op2 5, op1 0, CRn 12, CRm 11, a write; Rt ([9:5]) free.
    const SGI1R_WRITE: u64 =
        (EC_SYSTEM_REGISTER as u64) << 26 | 1 << 25 | 3 << 20 | 5 << 17 | 12 << 10 | 11 << 1;
    const RT: u64 = 0x1f << 5;
    if esr & 0xffff_ffff & !RT == SGI1R_WRITE {
        Some(((esr & RT) >> 5) as u8)
    } else {
        None
    }
}

/// Decodes an `ESR_EL2` value.
pub fn decode(esr: u64) -> Exit {
    let iss = esr & 0x1ff_ffff;
    let bit = |n: u32| (iss >> n) & 1 == 1;
    let field = |shift: u32, width: u32| ((iss >> shift) & ((1 << width) - 1)) as u8;
    match exception_class(esr) {
        EC_WFX => Exit::Wfx { wfe: bit(0) },
        EC_FLOATING_POINT => Exit::FloatingPoint,
        EC_HVC64 | EC_SVC64 => Exit::Hvc { imm: iss as u16 },
        EC_SMC64 => Exit::Smc { imm: iss as u16 },
        EC_SYSTEM_REGISTER => Exit::SystemRegister {
            read: bit(0),
            op0: field(20, 2),
            op2: field(17, 3),
            op1: field(14, 3),
            crn: field(10, 4),
            register: field(5, 5),
            crm: field(1, 4),
        },
        EC_INSTRUCTION_ABORT_LOWER => Exit::InstructionAbort {
            fault_status: field(0, 6),
        },
        EC_DATA_ABORT_LOWER => Exit::DataAbort(DataAbort {
            valid_syndrome: bit(24),
            size_bytes: 1 << field(22, 2),
            sign_extend: bit(21),
            register: field(16, 5),
            sixty_four_bit_register: bit(15),
            stage1_walk: bit(7),
            write: bit(6),
            fault_status: field(0, 6),
        }),
        ec => Exit::Other { ec },
    }
}

/// Whether an abort with fault status `fsc` (DFSC/IFSC) is of a kind stage 2 raises, and
/// `HPFAR_EL2` holds its IPA: an address size, translation, access flag or permission fault.
/// Any other (an alignment fault of an EL0 cell, whose stage-1 faults come to EL2 under
/// `HCR_EL2.TGE`; an external abort) leaves `HPFAR_EL2` unknown.
pub const fn is_stage2_fault(fsc: u8) -> bool {
    fsc & 0x3f <= 0x0f
}

/// The address to report for a cell's abort with fault status `fsc`: the IPA from
/// `HPFAR_EL2` (page) and `FAR_EL2` (offset) for a stage-2 fault ([`is_stage2_fault`]),
/// else the virtual address in `FAR_EL2` (the IPA too for a native cell, whose stage 1 is
/// off).
pub const fn abort_address(fsc: u8, far: u64, hpfar: u64) -> u64 {
    if is_stage2_fault(fsc) {
        (hpfar >> 4) << 12 | (far & 0xfff)
    } else {
        far
    }
}

/// A short description of a data or instruction fault status code (DFSC/IFSC).
pub fn describe_fault_status(fsc: u8) -> &'static str {
    match fsc & 0x3f {
        0x00 => "address size fault, level 0",
        0x01 => "address size fault, level 1",
        0x02 => "address size fault, level 2",
        0x03 => "address size fault, level 3",
        0x04 => "translation fault, level 0",
        0x05 => "translation fault, level 1",
        0x06 => "translation fault, level 2",
        0x07 => "translation fault, level 3",
        0x08 => "access flag fault, level 0",
        0x09 => "access flag fault, level 1",
        0x0a => "access flag fault, level 2",
        0x0b => "access flag fault, level 3",
        0x0c => "permission fault, level 0",
        0x0d => "permission fault, level 1",
        0x0e => "permission fault, level 2",
        0x0f => "permission fault, level 3",
        0x10 => "synchronous external abort",
        0x11 => "synchronous tag check fault",
        0x13 => "synchronous external abort on table walk, level -1",
        0x14 => "synchronous external abort on table walk, level 0",
        0x15 => "synchronous external abort on table walk, level 1",
        0x16 => "synchronous external abort on table walk, level 2",
        0x17 => "synchronous external abort on table walk, level 3",
        0x18 => "synchronous parity or ECC error",
        0x1b => "synchronous parity or ECC error on table walk, level -1",
        0x1c => "synchronous parity or ECC error on table walk, level 0",
        0x1d => "synchronous parity or ECC error on table walk, level 1",
        0x1e => "synchronous parity or ECC error on table walk, level 2",
        0x1f => "synchronous parity or ECC error on table walk, level 3",
        0x21 => "alignment fault",
        0x23 => "granule protection fault on table walk, level -1",
        0x24 => "granule protection fault on table walk, level 0",
        0x25 => "granule protection fault on table walk, level 1",
        0x26 => "granule protection fault on table walk, level 2",
        0x27 => "granule protection fault on table walk, level 3",
        0x28 => "granule protection fault",
        0x29 => "address size fault, level -1",
        0x2a => "translation fault, level -2",
        0x2b => "translation fault, level -1",
        0x2c => "address size fault, level -2",
        0x30 => "TLB conflict abort",
        0x31 => "unsupported atomic hardware update fault",
        0x34 => "implementation defined fault (lockdown)",
        0x35 => "implementation defined fault (unsupported exclusive or atomic access)",
        _ => "unknown fault status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypercalls_and_secure_monitor_calls() {
        assert_eq!(decode(0x5a00_0000), Exit::Hvc { imm: 0 });
        assert_eq!(decode(0x5a00_1234), Exit::Hvc { imm: 0x1234 });
        // `svc #0` from a cell at EL0 is the same hypercall.
        assert_eq!(decode(0x5600_0000), Exit::Hvc { imm: 0 });
        assert_eq!(decode(0x5e00_0000), Exit::Smc { imm: 0 });
        assert_eq!(decode(0x5e00_ffff), Exit::Smc { imm: 0xffff });
    }

    #[test]
    fn data_abort_of_a_word_store_to_unmapped_ipa() {
        // str w1, [x0] to an unmapped IPA: ISV, SAS=word, SRT=1, WnR, translation L3.
        let exit = decode(0x9381_0047);
        assert_eq!(
            exit,
            Exit::DataAbort(DataAbort {
                valid_syndrome: true,
                write: true,
                size_bytes: 4,
                register: 1,
                sign_extend: false,
                fault_status: 0x07,
                stage1_walk: false,
                sixty_four_bit_register: false,
            })
        );
    }

    #[test]
    fn data_abort_of_a_sign_extending_byte_load() {
        // ldrsb x5, [x2]: SAS=byte, SSE, SRT=5, SF, read, translation fault level 2.
        let Exit::DataAbort(abort) = decode(0x9325_8006) else {
            panic!("not a data abort");
        };
        assert!(abort.valid_syndrome && abort.sign_extend && abort.sixty_four_bit_register);
        assert!(!abort.write);
        assert_eq!(
            (abort.size_bytes, abort.register, abort.fault_status),
            (1, 5, 6)
        );
        // A doubleword store of xzr.
        let Exit::DataAbort(abort) = decode(0x93df_8047) else {
            panic!("not a data abort");
        };
        assert_eq!(
            (abort.size_bytes, abort.register, abort.write),
            (8, 31, true)
        );
    }

    #[test]
    fn data_abort_without_syndrome_on_a_stage1_walk() {
        // An `ldp` (no ISV) and a permission fault met while walking the cell's tables.
        let Exit::DataAbort(abort) = decode(0x9200_008f) else {
            panic!("not a data abort");
        };
        assert!(!abort.valid_syndrome);
        assert!(abort.stage1_walk);
        assert_eq!(abort.fault_status, 0x0f);
        assert_eq!(
            describe_fault_status(abort.fault_status),
            "permission fault, level 3"
        );
    }

    #[test]
    fn instruction_abort_wfx_and_floating_point() {
        assert_eq!(
            decode(0x8200_0006),
            Exit::InstructionAbort { fault_status: 6 }
        );
        assert_eq!(decode(0x0600_0000), Exit::Wfx { wfe: false });
        assert_eq!(decode(0x0600_0001), Exit::Wfx { wfe: true });
        assert_eq!(decode(0x1e00_0000), Exit::FloatingPoint);
    }

    #[test]
    fn sgi1r_writes_are_recognised_early() {
        // msr icc_sgi1r_el1, x1 / x30, and what decode makes of the first.
        let write_x1 = 0x623a_3036;
        assert_eq!(sgi1r_write_register(write_x1), Some(1));
        assert_eq!(sgi1r_write_register(0x623a_33d6), Some(30));
        assert_eq!(
            decode(write_x1),
            Exit::SystemRegister {
                read: false,
                op0: 3,
                op1: 0,
                crn: 12,
                crm: 11,
                op2: 5,
                register: 1,
            }
        );
        // A read of it, ICC_ASGI1R_EL1 (op2 6), ICC_SGI0R_EL1 (op2 7), an HVC.
        for other in [write_x1 | 1, 0x623c_3036, 0x623e_3036, 0x5a00_0000] {
            assert_eq!(sgi1r_write_register(other), None, "{other:#x}");
        }
    }

    #[test]
    fn system_register_access() {
        // mrs x0, id_aa64mmfr0_el1 (op0 3, op1 0, CRn 0, CRm 7, op2 0).
        assert_eq!(
            decode(0x6230_000f),
            Exit::SystemRegister {
                read: true,
                op0: 3,
                op1: 0,
                crn: 0,
                crm: 7,
                op2: 0,
                register: 0,
            }
        );
        // msr cntp_ctl_el0, x3 (op0 3, op1 3, CRn 14, CRm 2, op2 1).
        assert_eq!(
            decode(0x6232_f864),
            Exit::SystemRegister {
                read: false,
                op0: 3,
                op1: 3,
                crn: 14,
                crm: 2,
                op2: 1,
                register: 3,
            }
        );
    }

    #[test]
    fn other_classes_and_high_bits() {
        assert_eq!(decode(0x0200_0000), Exit::Other { ec: EC_UNKNOWN });
        assert_eq!(decode(0xf200_0000), Exit::Other { ec: 0x3c });
        assert_eq!(decode(0xffff_ffff_5a00_0000), Exit::Hvc { imm: 0 });
        assert_eq!(decode(u64::MAX), Exit::Other { ec: 0x3f });
        assert_eq!(exception_class(0x9381_0047), EC_DATA_ABORT_LOWER);
    }

    #[test]
    fn abort_addresses_come_from_hpfar_only_for_stage2_faults() {
        // HPFAR_EL2.FIPA (bits 4 and up) holds IPA bits 12 and up.
        let (far, hpfar) = (0x4001_0001, 0x1234_5000 >> 12 << 4);
        for fsc in [0x04, 0x07, 0x0b, 0x0f, 0x00] {
            assert!(is_stage2_fault(fsc));
            assert_eq!(abort_address(fsc, far, hpfar), 0x1234_5001);
        }
        // Alignment, external abort, TLB conflict: HPFAR_EL2 is unknown.
        for fsc in [0x21, 0x10, 0x30] {
            assert!(!is_stage2_fault(fsc));
            assert_eq!(abort_address(fsc, far, hpfar), far);
        }
    }

    #[test]
    fn fault_status_descriptions() {
        assert_eq!(describe_fault_status(0x06), "translation fault, level 2");
        assert_eq!(describe_fault_status(0x0f), "permission fault, level 3");
        assert_eq!(describe_fault_status(0x0b), "access flag fault, level 3");
        assert_eq!(describe_fault_status(0x21), "alignment fault");
        assert_eq!(describe_fault_status(0x3f), "unknown fault status");
        assert_eq!(describe_fault_status(0xc7), "translation fault, level 3");
    }
}
