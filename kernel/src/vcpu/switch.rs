//! The vCPU switch: what moves between the CPU and the vCPUs' records when a core changes
//! the vCPU it runs.
//!
//! Invariants (with those of [`super`]): after `switch_to(next)` the CPU holds `next`'s EL1
//! state (for an EL1 vCPU) or the EL0 context and `next`'s SP_EL0 and TPIDR_EL0 (for an EL0
//! vCPU), its stage-2 root, HCR_EL2, VMPIDR_EL2 and FP trap; the previous vCPU's state is in
//! its record, except FP/SIMD registers, which move lazily with `CoreState::fp_owner`.

use super::{CoreState, Vcpu, CPTR_EL2_NO_TRAPS, CPTR_EL2_TRAP_FP};
use crate::arch::{context, sysreg, vgic};
use kcore::sched::VcpuId;

/// What a switch between EL0 vCPUs needs of the vCPU it switches to, read while its record
/// is at hand.
#[derive(Clone, Copy)]
pub(super) struct Incoming {
    /// The vCPU's `el0_class`, or 0 while it has interrupts active.
    class: u8,
    vttbr: u64,
    sp_el0: u64,
    tpidr_el0: u64,
}

impl Incoming {
    #[inline(always)]
    pub(super) fn of(vcpu: &Vcpu) -> Self {
        Self {
            class: vcpu.el0_class * u8::from(!vcpu.interrupts_active),
            vttbr: vcpu.vttbr,
            sp_el0: vcpu.el1.sp_el0,
            tpidr_el0: vcpu.el1.tpidr_el0,
        }
    }
}

impl CoreState {
    /// The loaded vCPU `from` blocked in IPC and `next` (described by `incoming`) runs
    /// instead: records `from`'s wait and switches as [`switch_to`](Self::switch_to) would,
    /// looking `from` up once for both.
    #[inline(always)]
    pub(super) fn switch_from_blocked(&mut self, from: VcpuId, next: VcpuId, incoming: Incoming) {
        if !self.switch_from(from, next, incoming, true) {
            self.switch_in(next);
        }
    }

    /// Makes `next` the loaded vCPU, saving the previous one's EL1 and virtual-interface
    /// state. General registers are not moved: they are in the records already, and the
    /// exception returns from `next`'s ([`CoreState::resume_frame`]).
    #[inline(always)]
    pub(super) fn switch_to(&mut self, next: VcpuId) {
        if self.loaded != next && !self.switch_between_el0(next) {
            self.switch_in(next);
        }
    }

    /// [`switch_to`](Self::switch_to) another vCPU, in every case but the one
    /// [`switch_between_el0`](Self::switch_between_el0) takes.
    #[inline(never)]
    fn switch_in(&mut self, next: VcpuId) {
        if let Some(previous) = self.loaded_id() {
            if self.live_list_registers > 0 {
                self.take_list_registers(previous);
            }
            if let Some(vcpu) = self
                .vcpus
                .get_mut(previous as usize)
                .and_then(Option::as_mut)
            {
                if vcpu.el0 {
                    context::save_el0(&mut vcpu.el1);
                } else {
                    context::save_el1(&mut vcpu.el1, vcpu.guest);
                    vgic::save_control(&mut vcpu.interface);
                }
            }
        }
        self.loaded = kcore::sched::NO_VCPU;
        let Some(vcpu) = self.vcpus.get_mut(next as usize).and_then(Option::as_mut) else {
            return;
        };
        if vcpu.interrupts_active || self.live_list_registers > 0 {
            self.give_list_registers(next);
        } else if !(vcpu.el0 && self.el0_context_live) {
            // Nothing to load and nothing to clear: only the interface's control.
            vgic::enable(false, vcpu.guest);
        }
        let Some(vcpu) = self.vcpus.get_mut(next as usize).and_then(Option::as_mut) else {
            return;
        };
        if vcpu.el0 {
            if !self.el0_context_live {
                // After a native vCPU, SCTLR_EL1 holds the reset value the EL0 context uses.
                self.el1_world_pmuserenr =
                    context::enter_el0_context(!self.native_translation_live);
                self.el0_context_live = true;
            }
            context::restore_el0(&vcpu.el1);
        } else {
            if self.el0_context_live {
                context::leave_el0_context(self.el1_world_pmuserenr);
                self.el0_context_live = false;
            }
            context::restore_el1(&vcpu.el1, vcpu.guest || !self.native_translation_live);
            self.native_translation_live = !vcpu.guest;
            vgic::restore_control(&vcpu.interface);
        }
        let uses_fp = vcpu.uses_fp;
        // The stage-2 root and VMID were built at boot for exactly this cell; CPTR_EL2 traps
        // FP for a cell that declared it does not use it.
        // SAFETY: VTTBR/HCR/VMPIDR/CPTR configure how the cell runs at EL1, not EL2.
        unsafe {
            sysreg::vttbr_el2::write(vcpu.vttbr);
            sysreg::hcr_el2::write(vcpu.hcr);
            sysreg::vmpidr_el2::write(vcpu.vmpidr);
            sysreg::cptr_el2::write(if uses_fp {
                CPTR_EL2_NO_TRAPS
            } else {
                CPTR_EL2_TRAP_FP
            });
        }
        if uses_fp && self.fp_owner != next {
            sysreg::isb();
            self.take_fp(next);
        }
        self.loaded = next;
    }

    /// Gives the FP/SIMD registers to `next` (whose FP/SIMD use is not trapped), saving
    /// them for their owner.
    #[inline(never)]
    fn take_fp(&mut self, next: VcpuId) {
        if let Some(Some(owner)) = self.vcpus.get_mut(self.fp_owner as usize) {
            context::save_fp(&mut owner.fp);
        }
        if let Some(vcpu) = self.vcpus.get(next as usize).and_then(Option::as_ref) {
            context::restore_fp(&vcpu.fp);
        }
        self.fp_owner = next;
    }

    /// The switch from an EL0 vCPU to another with the same FP/SIMD use (the IPC and cell
    /// switch common case); returns false, having changed nothing, for every other switch.
    #[inline(always)]
    fn switch_between_el0(&mut self, next: VcpuId) -> bool {
        let (Some(previous), Some(Some(to))) = (self.loaded_id(), self.vcpus.get(next as usize))
        else {
            return false;
        };
        let incoming = Incoming::of(to);
        self.switch_from(previous, next, incoming, false)
    }

    /// The switch from the loaded vCPU `previous` to `next` (described by `incoming`) when
    /// both run at EL0 with the same FP/SIMD use (first marking `previous` as waiting in IPC
    /// if `blocked`); returns false, having changed only that mark, for every other switch.
    /// Only SP_EL0, TPIDR_EL0, the stage-2 root and (lazily) the FP/SIMD registers change:
    /// the EL0 context stays loaded, HCR_EL2 is `HCR_NATIVE_EL0` and CPTR_EL2 the same
    /// for both, the virtual interface is unused (no list register live, nothing active for
    /// `next`), and VMPIDR_EL2 matters only to EL1, which reads MPIDR_EL1 (EL0 cannot).
    #[inline(always)]
    fn switch_from(
        &mut self,
        previous: VcpuId,
        next: VcpuId,
        incoming: Incoming,
        blocked: bool,
    ) -> bool {
        let live_list_registers = self.live_list_registers;
        let Some(Some(from)) = self.vcpus.get_mut(previous as usize) else {
            return false;
        };
        if blocked {
            from.wait = super::Wait::Ipc;
        }
        // A loaded EL0 vCPU means the EL0 context is live: only the switch sets `loaded`.
        if live_list_registers > 0 || incoming.class == 0 || incoming.class != from.el0_class {
            return false;
        }
        context::swap_el0(&mut from.el1, incoming.sp_el0, incoming.tpidr_el0);
        // SAFETY: the stage-2 root and VMID were built at boot for exactly `next`'s cell.
        unsafe { sysreg::vttbr_el2::write(incoming.vttbr) };
        if incoming.class & super::EL0_CLASS_FP != 0 && self.fp_owner != next {
            // CPTR_EL2 already lets both use FP/SIMD: no synchronization needed.
            self.take_fp(next);
        }
        self.loaded = next;
        true
    }
}
