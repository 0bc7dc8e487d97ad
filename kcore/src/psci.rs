//! PSCI 1.1 and SMCCC 1.1 calls made by a guest cell, and what the kernel does about them.
//!
//! This module owns the decisions for the firmware interface a guest OS (Linux) expects
//! through `smc #0` or `hvc #0` (function ID in `w0`, arguments in `x1`–`x3`): the version
//! and feature queries, starting and stopping vCPUs, and powering the cell off or resetting
//! it. A [`Psci`] tracks each vCPU's power state; [`Psci::call`] answers with the value for
//! the guest's `x0` and an [`Action`] the kernel must perform.
//!
//! The guest's vCPU `n` has the MPIDR affinity `Aff0 = n` and all other affinity fields 0
//! ([`virtual_mpidr`]); the kernel programs `VMPIDR_EL2` accordingly.
//!
//! Invariants: every 64-bit function ID and argument decodes to an answer (unknown calls to
//! [`NOT_SUPPORTED`]); the state of a vCPU index outside the cell is never touched; vCPU 0
//! starts on, every other vCPU off. A vCPU goes from off to on-pending at `CPU_ON`, and to
//! on when the kernel reports it running ([`Psci::vcpu_started`]).

/// `PSCI_VERSION`.
pub const PSCI_VERSION: u32 = 0x8400_0000;
/// `CPU_SUSPEND`, SMC32.
pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
/// `CPU_SUSPEND`, SMC64.
pub const CPU_SUSPEND_64: u32 = 0xc400_0001;
/// `CPU_OFF`.
pub const CPU_OFF: u32 = 0x8400_0002;
/// `CPU_ON`, SMC32.
pub const CPU_ON_32: u32 = 0x8400_0003;
/// `CPU_ON`, SMC64.
pub const CPU_ON_64: u32 = 0xc400_0003;
/// `AFFINITY_INFO`, SMC32.
pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
/// `AFFINITY_INFO`, SMC64.
pub const AFFINITY_INFO_64: u32 = 0xc400_0004;
/// `MIGRATE_INFO_TYPE`.
pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
/// `SYSTEM_OFF`.
pub const SYSTEM_OFF: u32 = 0x8400_0008;
/// `SYSTEM_RESET`.
pub const SYSTEM_RESET: u32 = 0x8400_0009;
/// `PSCI_FEATURES`.
pub const PSCI_FEATURES: u32 = 0x8400_000a;
/// `SMCCC_VERSION`.
pub const SMCCC_VERSION: u32 = 0x8000_0000;
/// `SMCCC_ARCH_FEATURES`.
pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;

/// PSCI 1.1 and SMCCC 1.1: major 1 in bits `[30:16]`, minor 1 in `[15:0]`.
pub const VERSION_1_1: i64 = 0x1_0001;

/// Return code: success.
pub const SUCCESS: i64 = 0;
/// Return code: the function is not implemented.
pub const NOT_SUPPORTED: i64 = -1;
/// Return code: an argument is invalid (for example no such vCPU).
pub const INVALID_PARAMETERS: i64 = -2;
/// Return code: the target vCPU is already on.
pub const ALREADY_ON: i64 = -4;
/// Return code: the target vCPU is already being started.
pub const ON_PENDING: i64 = -5;

/// `AFFINITY_INFO` answer: the vCPU is on.
pub const AFFINITY_ON: i64 = 0;
/// `AFFINITY_INFO` answer: the vCPU is off.
pub const AFFINITY_OFF: i64 = 1;
/// `AFFINITY_INFO` answer: the vCPU is being started.
pub const AFFINITY_ON_PENDING: i64 = 2;

/// `MIGRATE_INFO_TYPE` answer: no trusted OS needing migration.
pub const MIGRATION_NOT_REQUIRED: i64 = 2;

/// Most vCPUs a cell may have.
pub const MAX_VCPUS: usize = 8;

/// MPIDR bit 31 (RES1).
const MPIDR_RES1: u64 = 1 << 31;
/// The affinity fields of an MPIDR: Aff3 `[39:32]`, Aff2–Aff0 `[23:0]`.
const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// The MPIDR a guest vCPU reads: `Aff0 = vcpu`, other affinity 0, bit 31 set.
pub const fn virtual_mpidr(vcpu: usize) -> u64 {
    MPIDR_RES1 | (vcpu as u64 & 0xff)
}

/// The vCPU index of the affinity in `mpidr` (only affinity bits are compared), if the cell
/// with `vcpu_count` vCPUs has it.
pub fn vcpu_of_mpidr(mpidr: u64, vcpu_count: usize) -> Option<usize> {
    let affinity = mpidr & MPIDR_AFFINITY_MASK;
    if affinity > 0xff {
        return None;
    }
    let vcpu = affinity as usize;
    (vcpu < vcpu_count.min(MAX_VCPUS)).then_some(vcpu)
}

/// Renumbers the board's cores (`cores`, MPIDRs in device-tree order) so that the core the
/// kernel booted on (`boot`, its MPIDR) is core 0 and the others follow in device-tree
/// order: the kernel's core index is then a core's position in `cores`, on every core.
/// Returns false if `cores` does not name the boot core (compared by affinity): `cores[0]`
/// is then set to `boot`, and only it is known.
pub fn boot_core_first(cores: &mut [u64], boot: u64) -> bool {
    let affinity = boot & MPIDR_AFFINITY_MASK;
    let Some(position) = cores
        .iter()
        .position(|&core| core & MPIDR_AFFINITY_MASK == affinity)
    else {
        cores.iter_mut().take(1).for_each(|first| *first = boot);
        return false;
    };
    cores[..=position].rotate_right(1);
    true
}

/// A vCPU's power state as PSCI sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerState {
    /// Not running; `CPU_ON` may start it.
    Off,
    /// `CPU_ON` accepted; the kernel has not yet started it.
    OnPending,
    /// Running (or blocked).
    On,
}

/// What the kernel must do after a call, besides writing the answer to `x0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing: return to the caller.
    None,
    /// Start `vcpu` at `entry` with `x0 = context`, MMU off, at EL1h with DAIF masked, then
    /// call [`Psci::vcpu_started`].
    StartVcpu {
        /// The vCPU index.
        vcpu: usize,
        /// The guest's entry point (IPA).
        entry: u64,
        /// The value for the started vCPU's `x0`.
        context: u64,
    },
    /// Stop the calling vCPU; it does not return from the call. Its state is already off.
    StopVcpu,
    /// Suspend the calling vCPU until an interrupt is pending for it, like WFI; then return
    /// [`SUCCESS`] (the answer in this case).
    Suspend,
    /// Power the whole cell off.
    StopCell,
    /// Reset the whole cell (as a restart).
    RestartCell,
}

/// The answer to one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The value for the caller's `x0` (sign-extended return code or result).
    pub result: i64,
    /// What the kernel must do.
    pub action: Action,
}

impl Outcome {
    const fn answer(result: i64) -> Self {
        Outcome {
            result,
            action: Action::None,
        }
    }

    const fn success(action: Action) -> Self {
        Outcome {
            result: SUCCESS,
            action,
        }
    }
}

/// The PSCI view of one cell's vCPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Psci {
    states: [PowerState; MAX_VCPUS],
    vcpu_count: usize,
}

impl Psci {
    /// A cell with `vcpu_count` vCPUs (clamped to 1..=[`MAX_VCPUS`]); vCPU 0 is on.
    pub fn new(vcpu_count: usize) -> Self {
        let mut psci = Psci {
            states: [PowerState::Off; MAX_VCPUS],
            vcpu_count: vcpu_count.clamp(1, MAX_VCPUS),
        };
        psci.states[0] = PowerState::On;
        psci
    }

    /// The number of vCPUs.
    #[cfg(test)]
    pub const fn vcpu_count(&self) -> usize {
        self.vcpu_count
    }

    /// The power state of `vcpu` (off for an index outside the cell).
    pub fn state(&self, vcpu: usize) -> PowerState {
        if vcpu < self.vcpu_count {
            self.states.get(vcpu).copied().unwrap_or(PowerState::Off)
        } else {
            PowerState::Off
        }
    }

    /// The kernel started `vcpu` after [`Action::StartVcpu`].
    pub fn vcpu_started(&mut self, vcpu: usize) {
        self.set(vcpu, PowerState::On);
    }

    /// The kernel stopped `vcpu` for another reason (a fault): `CPU_ON` may start it again.
    #[cfg(test)]
    pub fn vcpu_stopped(&mut self, vcpu: usize) {
        self.set(vcpu, PowerState::Off);
    }

    /// Back to the state at cell start (vCPU 0 on, the others off).
    pub fn reset(&mut self) {
        *self = Self::new(self.vcpu_count);
    }

    /// Handles the call with function ID `function` (`w0`; the upper half of `x0` is
    /// ignored) and arguments `x1`–`x3` from vCPU `caller`.
    pub fn call(&mut self, caller: usize, function: u64, arguments: [u64; 3]) -> Outcome {
        let [first, second, third] = arguments;
        match function as u32 {
            PSCI_VERSION | SMCCC_VERSION => Outcome::answer(VERSION_1_1),
            PSCI_FEATURES => Outcome::answer(Self::features(first as u32)),
            SMCCC_ARCH_FEATURES => Outcome::answer(Self::arch_features(first as u32)),
            CPU_ON_32 => self.cpu_on(
                first & 0xffff_ffff,
                second & 0xffff_ffff,
                third & 0xffff_ffff,
            ),
            CPU_ON_64 => self.cpu_on(first, second, third),
            CPU_OFF => {
                self.set(caller, PowerState::Off);
                Outcome::success(Action::StopVcpu)
            }
            CPU_SUSPEND_32 | CPU_SUSPEND_64 => Outcome::success(Action::Suspend),
            AFFINITY_INFO_32 => self.affinity_info(first & 0xffff_ffff, second & 0xffff_ffff),
            AFFINITY_INFO_64 => self.affinity_info(first, second),
            MIGRATE_INFO_TYPE => Outcome::answer(MIGRATION_NOT_REQUIRED),
            SYSTEM_OFF => Outcome::success(Action::StopCell),
            SYSTEM_RESET => Outcome::success(Action::RestartCell),
            _ => Outcome::answer(NOT_SUPPORTED),
        }
    }

    fn features(function: u32) -> i64 {
        match function {
            // CPU_SUSPEND: original power-state format, no OS-initiated mode.
            CPU_SUSPEND_32 | CPU_SUSPEND_64 => 0,
            PSCI_VERSION | CPU_OFF | CPU_ON_32 | CPU_ON_64 | AFFINITY_INFO_32
            | AFFINITY_INFO_64 | MIGRATE_INFO_TYPE | SYSTEM_OFF | SYSTEM_RESET | PSCI_FEATURES
            | SMCCC_VERSION => SUCCESS,
            _ => NOT_SUPPORTED,
        }
    }

    fn arch_features(function: u32) -> i64 {
        match function {
            SMCCC_VERSION | SMCCC_ARCH_FEATURES => SUCCESS,
            // The Spectre workarounds (0x8000_8000, 0x8000_7fff, 0x8000_3fff) and anything
            // else: not implemented.
            _ => NOT_SUPPORTED,
        }
    }

    fn cpu_on(&mut self, target: u64, entry: u64, context: u64) -> Outcome {
        let Some(vcpu) = vcpu_of_mpidr(target, self.vcpu_count) else {
            return Outcome::answer(INVALID_PARAMETERS);
        };
        match self.state(vcpu) {
            PowerState::On => Outcome::answer(ALREADY_ON),
            PowerState::OnPending => Outcome::answer(ON_PENDING),
            PowerState::Off => {
                self.set(vcpu, PowerState::OnPending);
                Outcome::success(Action::StartVcpu {
                    vcpu,
                    entry,
                    context,
                })
            }
        }
    }

    // Out of line: one copy for its three callers.
    #[inline(never)]
    fn affinity_info(&self, target: u64, lowest_level: u64) -> Outcome {
        if lowest_level != 0 {
            return Outcome::answer(INVALID_PARAMETERS);
        }
        let Some(vcpu) = vcpu_of_mpidr(target, self.vcpu_count) else {
            return Outcome::answer(INVALID_PARAMETERS);
        };
        Outcome::answer(match self.state(vcpu) {
            PowerState::On => AFFINITY_ON,
            PowerState::Off => AFFINITY_OFF,
            PowerState::OnPending => AFFINITY_ON_PENDING,
        })
    }

    fn set(&mut self, vcpu: usize, state: PowerState) {
        if vcpu < self.vcpu_count {
            if let Some(slot) = self.states.get_mut(vcpu) {
                *slot = state;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_core_becomes_core_zero_and_the_others_keep_their_order() {
        // The boot CPU is the third /cpus entry; MPIDR bit 31 and MT differ from the tree's.
        let mut cores = [0x0, 0x1, 0x100, 0x101];
        assert!(boot_core_first(&mut cores, 0x8000_0100));
        assert_eq!(cores, [0x100, 0x0, 0x1, 0x101]);
        // Already first: nothing moves.
        assert!(boot_core_first(&mut cores, 0x100));
        assert_eq!(cores, [0x100, 0x0, 0x1, 0x101]);
        // Last, and Aff3 counts.
        let mut cores = [0x1_0000_0000, 0x2_0000_0000];
        assert!(boot_core_first(&mut cores, 0x2_0000_0000));
        assert_eq!(cores, [0x2_0000_0000, 0x1_0000_0000]);
        // Not named by the tree: the boot core replaces the first entry.
        let mut cores = [0x0, 0x1];
        assert!(!boot_core_first(&mut cores, 0x8000_0002));
        assert_eq!(cores, [0x8000_0002, 0x1]);
        assert!(!boot_core_first(&mut [], 0x0));
    }

    #[test]
    fn versions_and_features() {
        let mut psci = Psci::new(2);
        assert_eq!(psci.call(0, PSCI_VERSION as u64, [0; 3]).result, 0x10001);
        assert_eq!(psci.call(0, SMCCC_VERSION as u64, [0; 3]).result, 0x10001);
        // The upper half of x0 is ignored.
        assert_eq!(
            psci.call(0, 0xffff_ffff_0000_0000 | PSCI_VERSION as u64, [0; 3])
                .result,
            0x10001
        );
        let features =
            |psci: &mut Psci, id: u32| psci.call(0, PSCI_FEATURES as u64, [id as u64, 0, 0]).result;
        assert_eq!(features(&mut psci, CPU_ON_64), SUCCESS);
        assert_eq!(features(&mut psci, CPU_SUSPEND_64), 0);
        assert_eq!(features(&mut psci, SMCCC_VERSION), SUCCESS);
        assert_eq!(features(&mut psci, 0x8400_0012), NOT_SUPPORTED);
        for workaround in [0x8000_8000u64, 0x8000_7fff, 0x8000_3fff] {
            assert_eq!(
                psci.call(0, SMCCC_ARCH_FEATURES as u64, [workaround, 0, 0])
                    .result,
                NOT_SUPPORTED
            );
        }
        assert_eq!(
            psci.call(0, MIGRATE_INFO_TYPE as u64, [0; 3]).result,
            MIGRATION_NOT_REQUIRED
        );
        assert_eq!(psci.call(0, 0xc200_0000, [0; 3]).result, NOT_SUPPORTED);
        assert_eq!(psci.call(0, 0, [0; 3]), Outcome::answer(NOT_SUPPORTED));
    }

    #[test]
    fn secondary_bring_up_as_linux_does_it() {
        let mut psci = Psci::new(4);
        assert_eq!(psci.state(0), PowerState::On);
        let info = |psci: &mut Psci, mpidr: u64| {
            psci.call(0, AFFINITY_INFO_64 as u64, [mpidr, 0, 0]).result
        };
        assert_eq!(info(&mut psci, virtual_mpidr(2)), AFFINITY_OFF);
        let outcome = psci.call(0, CPU_ON_64 as u64, [virtual_mpidr(2), 0x4008_0000, 0x1234]);
        assert_eq!(
            outcome,
            Outcome {
                result: SUCCESS,
                action: Action::StartVcpu {
                    vcpu: 2,
                    entry: 0x4008_0000,
                    context: 0x1234
                }
            }
        );
        assert_eq!(info(&mut psci, virtual_mpidr(2)), AFFINITY_ON_PENDING);
        assert_eq!(psci.call(0, CPU_ON_64 as u64, [2, 0, 0]).result, ON_PENDING);
        psci.vcpu_started(2);
        assert_eq!(info(&mut psci, 2), AFFINITY_ON);
        assert_eq!(psci.call(0, CPU_ON_32 as u64, [2, 0, 0]).result, ALREADY_ON);
        // CPU hot-unplug: the vCPU turns itself off, then may be started again.
        assert_eq!(
            psci.call(2, CPU_OFF as u64, [0; 3]).action,
            Action::StopVcpu
        );
        assert_eq!(info(&mut psci, 2), AFFINITY_OFF);
        let again = psci.call(0, CPU_ON_32 as u64, [0xffff_ffff_0000_0002, 0x8000, 7]);
        assert_eq!(
            again.action,
            Action::StartVcpu {
                vcpu: 2,
                entry: 0x8000,
                context: 7
            }
        );
    }

    #[test]
    fn bad_targets_are_invalid_parameters() {
        let mut psci = Psci::new(2);
        for target in [2u64, 0x100, 0x1_0000_0000, 0xff, u64::MAX] {
            assert_eq!(
                psci.call(0, CPU_ON_64 as u64, [target, 0, 0]).result,
                INVALID_PARAMETERS,
                "{target:#x}"
            );
            assert_eq!(
                psci.call(0, AFFINITY_INFO_64 as u64, [target, 0, 0]).result,
                INVALID_PARAMETERS
            );
        }
        assert_eq!(
            psci.call(0, AFFINITY_INFO_64 as u64, [0, 1, 0]).result,
            INVALID_PARAMETERS
        );
        // A caller index outside the cell changes nothing.
        psci.call(9, CPU_OFF as u64, [0; 3]);
        assert_eq!(psci, Psci::new(2));
        assert_eq!(Psci::new(0).vcpu_count(), 1);
        assert_eq!(Psci::new(100).vcpu_count(), MAX_VCPUS);
    }

    #[test]
    fn system_calls_and_suspend() {
        let mut psci = Psci::new(1);
        assert_eq!(
            psci.call(0, SYSTEM_OFF as u64, [0; 3]).action,
            Action::StopCell
        );
        assert_eq!(
            psci.call(0, SYSTEM_RESET as u64, [0; 3]).action,
            Action::RestartCell
        );
        assert_eq!(
            psci.call(0, CPU_SUSPEND_64 as u64, [0, 0, 0]),
            Outcome {
                result: SUCCESS,
                action: Action::Suspend
            }
        );
        psci.call(0, CPU_OFF as u64, [0; 3]);
        assert_eq!(psci.state(0), PowerState::Off);
        psci.reset();
        assert_eq!(psci.state(0), PowerState::On);
        psci.vcpu_stopped(0);
        assert_eq!(psci.state(0), PowerState::Off);
    }
}
