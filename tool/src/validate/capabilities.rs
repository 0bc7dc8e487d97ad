//! Each cell's capability table: every authority the description grants the cell, one slot
//! each, in a fixed order.
//!
//! Slot order: first the entries of the cell's `caps` list, in that order; then every other
//! authority it holds, by kind and within a kind in declaration order: endpoints it serves
//! or calls (`[[endpoint]]` tables, then channels), notifications it waits on or signals,
//! memory regions it maps, interrupts of its devices, cells it controls or supervises
//! (ascending). A `caps` entry names an endpoint, a notification or a memory region,
//! `cell:<name>` or `irq:<intid>`; it must name an authority the cell holds, at most once.

use std::collections::HashMap;

use abi::hvc::CONTROL;
use abi::plan::{MAX_CAPABILITIES, MAX_CAPABILITIES_PER_CELL};

use super::objects::{EndpointDraft, NotificationDraft};
use super::{Checker, DeviceDraft, MemoryDraft};
use crate::problem::{ObjectKind, ObjectProblem, Problem, Span};
use crate::raw::RawSystem;
use crate::system::{Capability, Object};

/// Everything that grants authority, as checked so far.
pub(super) struct Grants<'a> {
    /// Endpoints, channel endpoints last.
    pub endpoints: &'a [EndpointDraft],
    /// Notifications.
    pub notifications: &'a [NotificationDraft],
    /// Shared memory regions.
    pub memories: &'a [MemoryDraft],
    /// Devices.
    pub devices: &'a [DeviceDraft],
    /// Per cell, the cells it controls or supervises (`None`: its `controls` was wrong).
    pub controlled: &'a [Option<Vec<usize>>],
    /// Cell indices by name.
    pub cells: &'a HashMap<String, usize>,
}

/// A `caps` entry resolved to an object: the object, its kind, where it is declared and
/// whether every reference that decides who holds it resolved.
type Resolved = (Object, ObjectKind, Option<Span>, bool);

impl Grants<'_> {
    /// Every authority `cell` holds, in default order.
    fn held(&self, cell: usize) -> Vec<Capability> {
        let mut held = Vec::new();
        for (index, endpoint) in self.endpoints.iter().enumerate() {
            let (rights, badge) = endpoint.rights_of(cell);
            if rights != 0 {
                held.push(Capability {
                    object: Object::Endpoint(index),
                    rights: rights as u8,
                    badge,
                });
            }
        }
        for (index, notification) in self.notifications.iter().enumerate() {
            let rights = notification.rights_of(cell);
            if rights != 0 {
                held.push(Capability {
                    object: Object::Notification(index),
                    rights: rights as u8,
                    badge: 0,
                });
            }
        }
        for (index, (_, _, maps, _)) in self.memories.iter().enumerate() {
            for (map_cell, rights, _, _) in maps {
                if *map_cell == Some(cell) {
                    held.push(Capability {
                        object: Object::Memory(index),
                        rights: rights.map_or(0, |rights| rights.0),
                        badge: 0,
                    });
                }
            }
        }
        for (_, _, device_cell, irqs) in self.devices {
            if *device_cell == Some(cell) {
                held.extend(irqs.iter().map(|&intid| Capability {
                    object: Object::Interrupt(intid),
                    rights: 0,
                    badge: 0,
                }));
            }
        }
        if let Some(Some(controlled)) = self.controlled.get(cell) {
            held.extend(controlled.iter().map(|&other| Capability {
                object: Object::Cell(other),
                rights: CONTROL as u8,
                badge: 0,
            }));
        }
        held
    }

    /// The object a `caps` entry names, if any.
    fn resolve(&self, cell: usize, name: &str) -> Option<Resolved> {
        if let Some(target) = name.strip_prefix("cell:") {
            let index = *self.cells.get(target)?;
            let certain = self.controlled.get(cell).is_some_and(Option::is_some);
            return Some((Object::Cell(index), ObjectKind::Cell, None, certain));
        }
        if let Some(intid) = name.strip_prefix("irq:") {
            let intid: u32 = intid.parse().ok()?;
            let certain = self.devices.iter().all(|(_, _, cell, _)| cell.is_some());
            return Some((
                Object::Interrupt(intid),
                ObjectKind::Interrupt,
                None,
                certain,
            ));
        }
        if let Some(index) = self.endpoints.iter().position(|e| e.name == name) {
            let endpoint = &self.endpoints[index];
            let span = Some(endpoint.span.clone());
            return Some((
                Object::Endpoint(index),
                ObjectKind::Endpoint,
                span,
                endpoint.complete(),
            ));
        }
        if let Some(index) = self.notifications.iter().position(|n| n.name == name) {
            let notification = &self.notifications[index];
            let span = Some(notification.span.clone());
            let certain = notification.complete();
            return Some((
                Object::Notification(index),
                ObjectKind::Notification,
                span,
                certain,
            ));
        }
        let index = self
            .memories
            .iter()
            .position(|(memory, _, _, _)| memory == name)?;
        let certain = self.memories[index]
            .2
            .iter()
            .all(|(cell, ..)| cell.is_some());
        Some((Object::Memory(index), ObjectKind::Memory, None, certain))
    }

    /// Names a `caps` list may use for objects, in declaration order.
    fn object_names(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .map(|e| e.name.clone())
            .chain(self.notifications.iter().map(|n| n.name.clone()))
            .chain(self.memories.iter().map(|(name, _, _, _)| name.clone()))
            .collect()
    }
}

impl Checker {
    /// Each cell's capability table, reporting mistakes in `caps` lists and tables that
    /// are too large.
    pub(super) fn capability_tables(
        &mut self,
        raw: &RawSystem,
        grants: &Grants<'_>,
    ) -> Vec<Vec<Capability>> {
        let mut tables = Vec::new();
        for (index, cell) in raw.cell.iter().enumerate() {
            let cell = cell.get_ref();
            let cell_name = cell.name.get_ref();
            let mut held = grants.held(index);
            let mut table = Vec::new();
            let mut listed: Vec<(Object, Span)> = Vec::new();
            let entries = cell
                .caps
                .as_ref()
                .map_or(&[][..], |caps| caps.get_ref().as_slice());
            for entry in entries {
                let name = entry.get_ref();
                let Some((object, kind, declared, certain)) = grants.resolve(index, name) else {
                    self.report(Problem::Object(ObjectProblem::UnknownName {
                        span: entry.span(),
                        cell: cell_name.clone(),
                        name: name.clone(),
                        known: grants.object_names(),
                    }));
                    continue;
                };
                if let Some((_, first)) = listed.iter().find(|(seen, _)| *seen == object) {
                    self.report(Problem::Object(ObjectProblem::CapsTwice {
                        first: first.clone(),
                        second: entry.span(),
                        cell: cell_name.clone(),
                        name: name.clone(),
                    }));
                    continue;
                }
                listed.push((object, entry.span()));
                match held
                    .iter()
                    .position(|capability| capability.object == object)
                {
                    Some(position) => table.push(held.remove(position)),
                    None if certain => {
                        self.report(Problem::Object(ObjectProblem::NotGranted {
                            span: entry.span(),
                            cell: cell_name.clone(),
                            name: name.clone(),
                            kind,
                            declared,
                        }));
                    }
                    None => {}
                }
            }
            table.extend(held);
            if table.len() > MAX_CAPABILITIES_PER_CELL {
                self.report(Problem::Object(ObjectProblem::TooManyCapabilities {
                    span: cell.name.span(),
                    cell: cell_name.clone(),
                    count: table.len(),
                }));
            }
            tables.push(table);
        }
        let total: usize = tables.iter().map(Vec::len).sum();
        if total > MAX_CAPABILITIES {
            self.report(Problem::TooMany {
                what: "capabilities",
                count: total,
                max: MAX_CAPABILITIES,
            });
        }
        tables
    }
}
