//! Physical interrupts the plan gives to cells: routed at boot to the core of the vCPU that
//! owns each, and looked up when one arrives.
//!
//! Invariant: an interrupt is enabled at the GIC only if the plan names an owner for it (or
//! the kernel uses it itself); everything else stays disabled, and an interrupt that arrives
//! without an owner is counted and disabled again by `trap`.

use crate::arch::gic::Gic;
use crate::platform::Platform;
use crate::system::System;
use crate::vcpu::{self, CoreState};
use kcore::sched::VcpuId;

/// Routes every interrupt in the plan to the core that runs its vCPU, and enables it.
pub fn route(system: &System, platform: &Platform, gic: &Gic, core_count: usize) {
    for index in 0..system.plan.irq_count() {
        let irq = system.plan.irq(index);
        let core = vcpu::placement(system, core_count)
            .find(|&(cell, vcpu_index, _)| cell == irq.cell as usize && vcpu_index == irq.vcpu)
            .map(|(_, _, core)| core);
        let (Some(core), Some(name)) = (
            core,
            system
                .cell(irq.cell as usize)
                .map(|info| info.record.name()),
        ) else {
            continue;
        };
        gic.route_shared(irq.intid, platform.cores[core % platform.core_count.max(1)]);
        crate::info!(
            "interrupt {} routed to cell {name} (vCPU {} on core {core})",
            irq.intid,
            irq.vcpu
        );
    }
}

/// The vCPU on `core` that owns physical interrupt `intid`, if any.
pub fn owner_on_core(core: &CoreState, intid: u32) -> Option<VcpuId> {
    let system = crate::system::system()?;
    (0..system.plan.irq_count())
        .map(|index| system.plan.irq(index))
        .find(|irq| irq.intid == intid)
        .and_then(|irq| core.slot_of(irq.cell as usize, irq.vcpu))
}
