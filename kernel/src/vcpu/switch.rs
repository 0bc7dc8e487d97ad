//! The vCPU switch: what moves between the CPU and the vCPUs' records when a core changes
//! the vCPU it runs.
//!
//! Invariants (with those of [`super`]): after `switch_to(next)` the CPU holds `next`'s EL1
//! state (for an EL1 vCPU) or the EL0 context and `next`'s SP_EL0 and TPIDR_EL0 (for an EL0
//! vCPU), its stage-2 root, HCR_EL2, VMPIDR_EL2 and FP trap; the previous vCPU's state is in
//! its record, except FP/SIMD registers, which move lazily with `CoreState::fp_owner`.

use super::{CoreState, CPTR_EL2_NO_TRAPS, CPTR_EL2_TRAP_FP};
use crate::arch::{context, sysreg, vgic};
use kcore::sched::VcpuId;

impl CoreState {
    /// Makes `next` the loaded vCPU, saving the previous one's EL1 and virtual-interface
    /// state. General registers are not moved: they are in the records already, and the
    /// exception returns from `next`'s ([`CoreState::resume_frame`]).
    pub(super) fn switch_to(&mut self, next: VcpuId) {
        if self.loaded == Some(next) {
            return;
        }
        if let Some(previous) = self.loaded {
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
        self.loaded = None;
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
                context::enter_el0_context(&mut self.el1_world, !self.native_translation_live);
                self.el0_context_live = true;
            }
            context::restore_el0(&vcpu.el1);
        } else {
            if self.el0_context_live {
                context::leave_el0_context(&self.el1_world);
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
        if uses_fp && self.fp_owner != Some(next) {
            sysreg::isb();
            if let Some(owner) = self
                .fp_owner
                .and_then(|id| self.vcpus.get_mut(id as usize)?.as_mut())
            {
                context::save_fp(&mut owner.fp);
            }
            if let Some(vcpu) = self.vcpus.get(next as usize).and_then(Option::as_ref) {
                context::restore_fp(&vcpu.fp);
            }
            self.fp_owner = Some(next);
        }
        self.loaded = Some(next);
    }
}
