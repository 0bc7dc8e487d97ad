//! The plan's IPC objects (endpoints, notifications) and the cells' capability tables:
//! their records, their accessors on [`Plan`], and the decoder's checks of the rules in the
//! parent module's documentation.
//!
//! Invariant: once [`check`] accepts a plan, every capability names an existing object of
//! its kind with rights valid for that kind, each cell holds at most one capability per
//! object, and the holders of serve and wait rights are exactly the objects' servers and
//! waiters, so the kernel may index its tables with a capability's object unchecked.

use super::{
    bad, le_u16, le_u32, CapabilityKind, CellRecord, Plan, PlanError, RegionKind, Rights,
    MAX_CAPABILITIES_PER_CELL, MAX_VIRTUAL_IRQ, MIN_VIRTUAL_IRQ, NO_VIRTUAL_IRQ,
};
use crate::hvc::{CONTROL, ENDPOINT_CALL, ENDPOINT_SERVE, NOTIFICATION_SIGNAL, NOTIFICATION_WAIT};

/// An IPC endpoint: cells holding a call capability call it, its server serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointRecord {
    /// Index of the cell that serves it (and holds its only serve capability).
    pub server: u16,
}

/// A notification word: signallers set bits, its waiter waits for and takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotificationRecord {
    /// Index of the cell that waits on it (and holds its only wait capability).
    pub waiter: u16,
    /// Virtual interrupt raised in the waiter when bits are set: [`NO_VIRTUAL_IRQ`] or
    /// [`MIN_VIRTUAL_IRQ`]..=[`MAX_VIRTUAL_IRQ`].
    pub virtual_irq: u16,
    /// The waiter's vCPU that receives `virtual_irq` (0 when there is none).
    pub vcpu: u8,
}

impl NotificationRecord {
    /// The virtual interrupt raised in the waiter, if any.
    pub fn virtual_irq(&self) -> Option<u16> {
        (self.virtual_irq != NO_VIRTUAL_IRQ).then_some(self.virtual_irq)
    }
}

/// One slot of a cell's capability table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilityRecord {
    /// What it designates.
    pub kind: CapabilityKind,
    /// The rights it grants: `abi::hvc` right bits for endpoints, notifications and cell
    /// control, [`Rights`] bits for shared memory, 0 for interrupts.
    pub rights: u8,
    /// The object: endpoint index, notification index, global region index, INTID or cell
    /// index, by `kind`.
    pub object: u32,
    /// For an endpoint call capability, the badge the server receives with each call; 0
    /// for every other capability.
    pub badge: u32,
}

impl CapabilityRecord {
    /// Whether the capability grants every bit of `right` (an `abi::hvc` right constant).
    pub fn grants(&self, right: u64) -> bool {
        right != 0 && u64::from(self.rights) & right == right
    }
}

impl Plan<'_> {
    /// Endpoint record `index`. Panics if `index >= endpoint_count()`.
    pub fn endpoint(&self, index: usize) -> EndpointRecord {
        assert!(index < self.counts.endpoints, "endpoint index out of range");
        EndpointRecord {
            server: le_u16(self.endpoint_bytes(index), 0),
        }
    }

    /// Notification record `index`. Panics if `index >= notification_count()`.
    pub fn notification(&self, index: usize) -> NotificationRecord {
        assert!(
            index < self.counts.notifications,
            "notification index out of range"
        );
        let b = self.notification_bytes(index);
        NotificationRecord {
            waiter: le_u16(b, 0),
            virtual_irq: le_u16(b, 2),
            vcpu: b[4],
        }
    }

    /// Capability record `index` of the whole table. Panics if
    /// `index >= capability_count()`.
    pub fn capability_record(&self, index: usize) -> CapabilityRecord {
        assert!(
            index < self.counts.capabilities,
            "capability index out of range"
        );
        let b = self.capability_bytes(index);
        CapabilityRecord {
            kind: CapabilityKind::from_code(b[0].into()).unwrap_or(CapabilityKind::Endpoint),
            rights: b[1],
            object: le_u32(b, 4),
            badge: le_u32(b, 8),
        }
    }

    /// Slot `slot` of cell `cell`'s capability table; `None` for a slot beyond the table.
    /// Panics if `cell >= cell_count()`.
    #[cfg(any(test, feature = "host"))]
    pub fn capability(&self, cell: usize, slot: usize) -> Option<CapabilityRecord> {
        self.cell(cell)
            .capability_index(slot)
            .map(|index| self.capability_record(index))
    }

    /// The capabilities of `cell`, slot 0 first.
    pub fn capabilities_of(
        &self,
        cell: &CellRecord,
    ) -> impl Iterator<Item = CapabilityRecord> + '_ {
        let first = cell.first_capability as usize;
        (first..first + cell.capability_count as usize).map(|i| self.capability_record(i))
    }

    /// Whether `cell` holds a capability of `kind` to `object` granting `right`.
    // Out of line: one copy for the three checks that use it.
    #[inline(never)]
    fn holds(&self, cell: &CellRecord, kind: CapabilityKind, object: usize, right: u64) -> bool {
        self.capabilities_of(cell).any(|capability| {
            capability.kind == kind
                && capability.object as usize == object
                && capability.grants(right)
        })
    }
}

/// Checks the endpoint, notification and capability records and the cells' capability
/// ranges (the cell, region and IRQ records are already checked).
pub(super) fn check(plan: &Plan<'_>) -> Result<(), PlanError> {
    for index in 0..plan.counts.endpoints {
        if le_u16(plan.endpoint_bytes(index), 2) != 0 {
            return bad("endpoint", index, "reserved bytes not zero");
        }
        if plan.endpoint(index).server as usize >= plan.counts.cells {
            return bad("endpoint", index, "server beyond the cell count");
        }
    }
    for index in 0..plan.counts.notifications {
        if plan.notification_bytes(index)[5..].iter().any(|&b| b != 0) {
            return bad("notification", index, "reserved bytes not zero");
        }
        let notification = plan.notification(index);
        let Some(waiter) = plan.cell_checked(notification.waiter as usize) else {
            return bad("notification", index, "waiter beyond the cell count");
        };
        match notification.virtual_irq() {
            None if notification.vcpu != 0 => {
                return bad("notification", index, "vCPU without a virtual interrupt");
            }
            None => {}
            Some(irq) if !(MIN_VIRTUAL_IRQ..=MAX_VIRTUAL_IRQ).contains(&irq) => {
                return bad("notification", index, "virtual interrupt out of range");
            }
            Some(_) if notification.vcpu >= waiter.vcpu_count => {
                return bad("notification", index, "vCPU beyond the waiter's vCPU count");
            }
            Some(_) => {}
        }
    }
    let mut next = 0;
    for index in 0..plan.counts.cells {
        let cell = plan.cell(index);
        let (first, count) = (
            cell.first_capability as usize,
            cell.capability_count as usize,
        );
        if count > MAX_CAPABILITIES_PER_CELL {
            return bad("cell", index, "too many capabilities");
        }
        if first != next {
            return bad(
                "cell",
                index,
                "capability range does not follow the previous cell's",
            );
        }
        if first + count > plan.counts.capabilities {
            return bad(
                "cell",
                index,
                "capability range beyond the capability table",
            );
        }
        next = first + count;
        for slot in 0..count {
            check_capability(plan, index, &cell, slot)?;
        }
        for controlled in 0..plan.counts.cells {
            // The slots are checked: a control capability grants exactly `CONTROL`.
            if cell.may_control(controlled)
                && !plan.holds(&cell, CapabilityKind::CellControl, controlled, CONTROL)
            {
                return bad("cell", index, "control right without a control capability");
            }
        }
    }
    if next != plan.counts.capabilities {
        return bad("capability", next, "held by no cell");
    }
    for index in 0..plan.counts.endpoints {
        let server = plan.cell(plan.endpoint(index).server as usize);
        if !plan.holds(&server, CapabilityKind::Endpoint, index, ENDPOINT_SERVE) {
            return bad("endpoint", index, "its server holds no serve capability");
        }
    }
    for index in 0..plan.counts.notifications {
        let waiter = plan.cell(plan.notification(index).waiter as usize);
        if !plan.holds(
            &waiter,
            CapabilityKind::Notification,
            index,
            NOTIFICATION_WAIT,
        ) {
            return bad("notification", index, "its waiter holds no wait capability");
        }
    }
    Ok(())
}

/// Checks slot `slot` of cell `cell_index`.
fn check_capability(
    plan: &Plan<'_>,
    cell_index: usize,
    cell: &CellRecord,
    slot: usize,
) -> Result<(), PlanError> {
    let index = cell.first_capability as usize + slot;
    let record = plan.capability_bytes(index);
    let bad = |reason| bad("capability", index, reason);
    if CapabilityKind::from_code(record[0].into()).is_none() {
        return bad("unknown kind");
    }
    if le_u16(record, 2) != 0 {
        return bad("reserved bytes not zero");
    }
    let capability = plan.capability_record(index);
    let (rights, object) = (u64::from(capability.rights), capability.object as usize);
    match capability.kind {
        CapabilityKind::Endpoint => {
            if rights != ENDPOINT_CALL && rights != ENDPOINT_SERVE {
                return bad("endpoint rights are not exactly call or serve");
            }
            if object >= plan.counts.endpoints {
                return bad("endpoint beyond the endpoint table");
            }
            let server = plan.endpoint(object).server as usize;
            if rights == ENDPOINT_SERVE && server != cell_index {
                return bad("serve capability held by a cell other than the server");
            }
            if rights == ENDPOINT_CALL && server == cell_index {
                return bad("call capability held by the endpoint's own server");
            }
        }
        CapabilityKind::Notification => {
            let valid = NOTIFICATION_SIGNAL | NOTIFICATION_WAIT;
            if rights == 0 || rights & !valid != 0 {
                return bad("notification rights not signal and/or wait");
            }
            if object >= plan.counts.notifications {
                return bad("notification beyond the notification table");
            }
            if rights & NOTIFICATION_WAIT != 0
                && plan.notification(object).waiter as usize != cell_index
            {
                return bad("wait capability held by a cell other than the waiter");
            }
        }
        CapabilityKind::SharedMemory => {
            let first = cell.first_region as usize;
            if !(first..first + cell.region_count as usize).contains(&object) {
                return bad("memory capability names a region of another cell");
            }
            let region = plan.region(object);
            if !matches!(region.kind, RegionKind::Shared | RegionKind::Foreign) {
                return bad("memory capability names a region that is not shared memory");
            }
            let rights = Rights(capability.rights);
            if rights.0 == 0 || !region.rights.contains(rights) {
                return bad("memory rights not a non-empty subset of the region's");
            }
        }
        CapabilityKind::Interrupt => {
            if rights != 0 {
                return bad("rights on an interrupt capability");
            }
            let routed = (0..plan.counts.irqs).any(|i| {
                let irq = plan.irq(i);
                irq.intid == capability.object && irq.cell as usize == cell_index
            });
            if !routed {
                return bad("interrupt not routed to the cell");
            }
        }
        CapabilityKind::CellControl => {
            if rights != CONTROL {
                return bad("control rights are not exactly control");
            }
            if object >= plan.counts.cells {
                return bad("cell beyond the cell count");
            }
            if object == cell_index {
                return bad("control capability over the cell itself");
            }
            if !cell.may_control(object) {
                return bad("control capability without the control right");
            }
        }
    }
    if capability.badge != 0
        && !(capability.kind == CapabilityKind::Endpoint && rights == ENDPOINT_CALL)
    {
        return bad("badge on a capability other than an endpoint call");
    }
    for earlier in cell.first_capability as usize..index {
        let other = plan.capability_record(earlier);
        if other.kind == capability.kind && other.object == capability.object {
            return bad("second capability to the same object");
        }
    }
    Ok(())
}
