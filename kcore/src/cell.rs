//! Rules about one cell that do not need the hardware: which of its IPAs the kernel may
//! touch on its behalf, how a fault is described, and what its fault policy decides.
//!
//! Invariants: [`translate`] only ever returns a physical address inside one of the cell's
//! own RAM or shared regions that carries the requested rights, and the whole requested
//! range lies in that one region; device regions are never accessed by the kernel for a
//! cell.

use abi::hvc::HvcError;
use abi::plan::{CellRecord, FaultPolicy, Plan, RegionKind, Rights};
use core::fmt;

/// Finds the physical address of `[ipa, ipa + len)` in `cell`'s memory, which must lie
/// entirely inside one RAM or shared region that grants `rights`.
pub fn translate(
    plan: &Plan<'_>,
    cell: &CellRecord,
    ipa: u64,
    len: u64,
    rights: Rights,
) -> Result<u64, HvcError> {
    let end = ipa.checked_add(len).ok_or(HvcError::InvalidAddress)?;
    for region in plan.regions_of(cell) {
        if region.kind == RegionKind::Device || !region.rights.contains(rights) {
            continue;
        }
        let region_end = region.ipa.saturating_add(region.size);
        if ipa >= region.ipa && end <= region_end {
            return Ok(region.pa + (ipa - region.ipa));
        }
    }
    Err(HvcError::InvalidAddress)
}

/// A fault of a cell, as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellFault {
    /// An access to an IPA the cell has no (suitable) mapping for, or (not `stage2`) another
    /// abort that reaches the kernel, such as an EL0 cell's alignment fault.
    Stage2Abort {
        /// The faulting IPA; for an abort that is not `stage2`, the virtual address (the IPA
        /// too for a native cell, whose stage 1 is off).
        ipa: u64,
        /// Whether stage 2 raised it (`kcore::esr::is_stage2_fault`).
        stage2: bool,
        /// Where the cell was executing.
        pc: u64,
        /// Whether it was a write (data aborts only).
        write: bool,
        /// Whether it was an instruction fetch.
        instruction_fetch: bool,
        /// Description of the fault status code.
        status: &'static str,
    },
    /// An instruction that traps to EL2 and that the kernel does not emulate.
    Undefined {
        /// Exception class of the syndrome.
        exception_class: u8,
        /// Where the cell was executing.
        pc: u64,
    },
    /// A hypercall the cell is not allowed to make in a way that counts as a fault.
    IllegalHypercall {
        /// The call number.
        number: u64,
        /// Where the cell was executing.
        pc: u64,
    },
    /// An asynchronous error (SError) or FIQ from the cell.
    Asynchronous {
        /// Where the cell was executing.
        pc: u64,
    },
}

impl fmt::Display for CellFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Stage2Abort {
                ipa,
                stage2,
                pc,
                write,
                instruction_fetch,
                status,
            } => {
                let access = if instruction_fetch {
                    "instruction fetch"
                } else if write {
                    "write"
                } else {
                    "read"
                };
                let (kind, space) = if stage2 {
                    ("stage-2 abort", "IPA")
                } else {
                    ("abort", "address")
                };
                write!(
                    f,
                    "{kind}: {access} at {space} {ipa:#x} ({status}), pc {pc:#x}"
                )
            }
            Self::Undefined {
                exception_class,
                pc,
            } => {
                // Widened: the kernel then needs only its u64 hex formatter.
                let exception_class = u64::from(exception_class);
                write!(
                    f,
                    "trapped instruction not emulated (class {exception_class:#04x}), pc {pc:#x}"
                )
            }
            Self::IllegalHypercall { number, pc } => {
                write!(f, "illegal hypercall {number:#x}, pc {pc:#x}")
            }
            Self::Asynchronous { pc } => write!(f, "asynchronous error, pc {pc:#x}"),
        }
    }
}

/// What to do with a cell that faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// Reload and start again; this is restart number `attempt` of at most `limit`.
    Restart {
        /// 1-based restart count after this one.
        attempt: u8,
        /// The policy's limit.
        limit: u8,
    },
    /// Stop the cell for good.
    Stop {
        /// Restarts it had before this fault.
        restarts: u8,
    },
}

/// Applies the cell's fault policy, given how often it was restarted already.
pub fn fault_outcome(cell: &CellRecord, restarts_so_far: u8) -> FaultOutcome {
    match cell.fault_policy {
        FaultPolicy::Restart if restarts_so_far < cell.restart_limit => FaultOutcome::Restart {
            attempt: restarts_so_far + 1,
            limit: cell.restart_limit,
        },
        _ => FaultOutcome::Stop {
            restarts: restarts_so_far,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::plan::{
        encode, CellFlags, CellKind, PlanParts, RegionRecord, ANY_CORE, NO_SUPERVISOR,
    };
    extern crate std;
    use std::format;
    use std::vec;

    fn cell(policy: FaultPolicy, limit: u8) -> CellRecord {
        CellRecord {
            name: CellRecord::name_field("c").unwrap(),
            kind: CellKind::Native,
            priority: 1,
            vcpu_count: 1,
            fault_policy: policy,
            restart_limit: limit,
            flags: CellFlags::NONE,
            supervisor: NO_SUPERVISOR,
            vcpu_cores: [ANY_CORE; 8],
            first_region: 0,
            region_count: 3,
            image_offset: 0,
            image_size: 0x100,
            controls: 0,
            entry_ipa: 0x4000_0000,
            load_ipa: 0x4000_0000,
            budget_us: 0,
            period_us: 0,
            first_capability: 0,
            capability_count: 0,
        }
    }

    fn with_plan(check: impl FnOnce(&Plan<'_>, &CellRecord)) {
        let regions = [
            RegionRecord {
                ipa: 0x4000_0000,
                pa: 0x4800_0000,
                size: 0x20_0000,
                kind: RegionKind::Ram,
                rights: Rights::RWX,
            },
            RegionRecord {
                ipa: 0x5000_0000,
                pa: 0x4a00_0000,
                size: 0x1000,
                kind: RegionKind::Shared,
                rights: Rights::R,
            },
            RegionRecord {
                ipa: 0x0900_0000,
                pa: 0x0900_0000,
                size: 0x1000,
                kind: RegionKind::Device,
                rights: Rights(3),
            },
        ];
        let cells = [cell(FaultPolicy::Stop, 0)];
        let parts = PlanParts {
            ram_base: 0x4000_0000,
            ram_size: 0x4000_0000,
            core_count: 1,
            payload_len: 0x1000,
            cells: &cells,
            regions: &regions,
            irqs: &[],
            channels: &[],
            endpoints: &[],
            notifications: &[],
            capabilities: &[],
        };
        let mut buffer = vec![0u8; 1024];
        let len = encode(&parts, &mut buffer).unwrap();
        let plan = Plan::decode(&buffer[..len]).unwrap();
        check(&plan, &plan.cell(0));
    }

    #[test]
    fn translation_stays_inside_one_region_with_the_right() {
        with_plan(|plan, cell| {
            assert_eq!(
                translate(plan, cell, 0x4000_0010, 16, Rights::R),
                Ok(0x4800_0010)
            );
            assert_eq!(
                translate(plan, cell, 0x401f_fff0, 16, Rights::R),
                Ok(0x481f_fff0)
            );
            // Straddling the end of RAM.
            assert_eq!(
                translate(plan, cell, 0x401f_fff0, 17, Rights::R),
                Err(HvcError::InvalidAddress)
            );
            // Shared region is read-only.
            assert_eq!(
                translate(plan, cell, 0x5000_0000, 8, Rights::R),
                Ok(0x4a00_0000)
            );
            assert_eq!(
                translate(plan, cell, 0x5000_0000, 8, Rights::W),
                Err(HvcError::InvalidAddress)
            );
            // Device regions are never accessed on a cell's behalf.
            assert_eq!(
                translate(plan, cell, 0x0900_0000, 4, Rights::R),
                Err(HvcError::InvalidAddress)
            );
            // Unmapped and wrapping.
            assert_eq!(
                translate(plan, cell, 0, 4, Rights::R),
                Err(HvcError::InvalidAddress)
            );
            assert_eq!(
                translate(plan, cell, u64::MAX, 2, Rights::R),
                Err(HvcError::InvalidAddress)
            );
        });
    }

    #[test]
    fn policy_restarts_up_to_the_limit_then_stops() {
        let restartable = cell(FaultPolicy::Restart, 2);
        assert_eq!(
            fault_outcome(&restartable, 0),
            FaultOutcome::Restart {
                attempt: 1,
                limit: 2
            }
        );
        assert_eq!(
            fault_outcome(&restartable, 1),
            FaultOutcome::Restart {
                attempt: 2,
                limit: 2
            }
        );
        assert_eq!(
            fault_outcome(&restartable, 2),
            FaultOutcome::Stop { restarts: 2 }
        );
        assert_eq!(
            fault_outcome(&cell(FaultPolicy::Stop, 5), 0),
            FaultOutcome::Stop { restarts: 0 }
        );
    }

    #[test]
    fn faults_describe_themselves() {
        let fault = CellFault::Stage2Abort {
            ipa: 0x1000_0000,
            stage2: true,
            pc: 0x4000_0123,
            write: true,
            instruction_fetch: false,
            status: "translation fault, level 1",
        };
        assert_eq!(
            format!("{fault}"),
            "stage-2 abort: write at IPA 0x10000000 (translation fault, level 1), pc 0x40000123"
        );
        let fault = CellFault::Stage2Abort {
            ipa: 0x4001_0001,
            stage2: false,
            pc: 0x4000_0040,
            write: false,
            instruction_fetch: false,
            status: "alignment fault",
        };
        assert_eq!(
            format!("{fault}"),
            "abort: read at address 0x40010001 (alignment fault), pc 0x40000040"
        );
    }
}
