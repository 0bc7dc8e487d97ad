//! IPC objects while checking: `[[endpoint]]` and `[[notification]]` tables, the endpoints
//! that `[[channel]]`s stand for, and the rule that endpoints, notifications and memory
//! regions have distinct names (a `caps` list names them by name alone).

use std::collections::HashMap;

use abi::hvc::{ENDPOINT_CALL, ENDPOINT_SERVE, NOTIFICATION_SIGNAL, NOTIFICATION_WAIT};
use toml::Spanned;

use super::{Checker, DeviceDraft};
use crate::problem::{Field, Item, ObjectKind, ObjectProblem, Problem, Reference, Span};
use crate::raw::{RawClient, RawSystem};
use crate::system::{Channel, Client, Endpoint, Notification};

/// The virtual timer's INTID, which every cell receives (`kernel::vcpu::VIRTUAL_TIMER_INTID`).
pub const VIRTUAL_TIMER_INTID: u16 = 27;

/// An endpoint while checking; `None` marks a reference that was wrong.
pub(super) struct EndpointDraft {
    /// Object name.
    pub name: String,
    /// Where it is declared (the channel, for a channel's endpoint).
    pub span: Span,
    /// The serving cell.
    pub server: Option<usize>,
    /// Each client: cell and badge.
    pub clients: Vec<(Option<usize>, Option<u32>)>,
}

impl EndpointDraft {
    /// Whether every cell reference resolved.
    pub fn complete(&self) -> bool {
        self.server.is_some()
            && self
                .clients
                .iter()
                .all(|(cell, badge)| cell.is_some() && badge.is_some())
    }

    /// The rights `cell` holds over it, and the badge of its call right.
    pub fn rights_of(&self, cell: usize) -> (u64, u32) {
        if self.server == Some(cell) {
            return (ENDPOINT_SERVE, 0);
        }
        match self
            .clients
            .iter()
            .find(|(client, _)| *client == Some(cell))
        {
            Some((_, badge)) => (ENDPOINT_CALL, badge.unwrap_or(0)),
            None => (0, 0),
        }
    }

    /// The checked endpoint (after every check passed).
    pub fn finish(&self) -> Option<Endpoint> {
        Some(Endpoint {
            name: self.name.clone(),
            server: self.server?,
            clients: self
                .clients
                .iter()
                .map(|(cell, badge)| {
                    Some(Client {
                        cell: (*cell)?,
                        badge: (*badge)?,
                    })
                })
                .collect::<Option<Vec<_>>>()?,
        })
    }
}

/// A notification while checking; `None` marks a value that was wrong.
pub(super) struct NotificationDraft {
    /// Object name.
    pub name: String,
    /// Where its name is.
    pub span: Span,
    /// The waiting cell.
    pub waiter: Option<usize>,
    /// The signalling cells.
    pub signallers: Vec<Option<usize>>,
    /// `Some(None)`: no virtual interrupt.
    pub virtual_irq: Option<Option<u16>>,
    /// The vCPU receiving the virtual interrupt.
    pub vcpu: Option<u8>,
}

impl NotificationDraft {
    /// Whether every cell reference resolved.
    pub fn complete(&self) -> bool {
        self.waiter.is_some() && self.signallers.iter().all(Option::is_some)
    }

    /// The rights `cell` holds over it.
    pub fn rights_of(&self, cell: usize) -> u64 {
        let wait = if self.waiter == Some(cell) {
            NOTIFICATION_WAIT
        } else {
            0
        };
        let signal = if self.signallers.contains(&Some(cell)) {
            NOTIFICATION_SIGNAL
        } else {
            0
        };
        wait | signal
    }

    /// The checked notification (after every check passed).
    pub fn finish(&self) -> Option<Notification> {
        Some(Notification {
            name: self.name.clone(),
            waiter: self.waiter?,
            signallers: self
                .signallers
                .iter()
                .copied()
                .collect::<Option<Vec<_>>>()?,
            virtual_irq: self.virtual_irq?,
            vcpu: self.vcpu?,
        })
    }
}

impl Checker {
    /// The `[[endpoint]]` tables, then one endpoint per channel (`<from>-><to>`, served by
    /// `to`, called by `from` with its cell index as badge).
    pub(super) fn endpoints(
        &mut self,
        raw: &RawSystem,
        channels: &[(Channel, Span)],
        cells: &HashMap<String, usize>,
        known: &[String],
    ) -> Vec<EndpointDraft> {
        let mut seen = HashMap::new();
        let mut drafts = Vec::new();
        for endpoint in &raw.endpoint {
            let endpoint = endpoint.get_ref();
            let name = endpoint.name.get_ref().clone();
            self.name(&endpoint.name, Item::Endpoint, &mut seen);
            let reference = Reference::EndpointServer(name.clone());
            let server = self.cell_ref(&endpoint.server, reference, cells, known);
            let mut clients = Vec::new();
            let mut listed: Vec<(usize, Span)> = Vec::new();
            for client in &endpoint.clients {
                let cell_name = Spanned::new(client.span(), client.get_ref().cell().to_string());
                let reference = Reference::EndpointClient(name.clone());
                let cell = self.cell_ref(&cell_name, reference, cells, known);
                let badge = match client.get_ref() {
                    RawClient::Cell(_) => cell.map(|cell| cell as u32),
                    RawClient::Badged(badged) => {
                        let badge = Spanned::new(client.span(), badged.badge);
                        self.in_range(&badge, Field::Badge)
                            .map(|badge| badge as u32)
                    }
                };
                if let Some(cell) = cell {
                    if server == Some(cell) {
                        self.report(Problem::Object(ObjectProblem::ServerIsClient {
                            span: client.span(),
                            server_span: endpoint.server.span(),
                            endpoint: name.clone(),
                            cell: cell_name.get_ref().clone(),
                        }));
                    } else if let Some((_, first)) = listed.iter().find(|(seen, _)| *seen == cell) {
                        self.report(Problem::Object(ObjectProblem::ListedTwice {
                            first: first.clone(),
                            second: client.span(),
                            object: name.clone(),
                            kind: ObjectKind::Endpoint,
                            cell: cell_name.get_ref().clone(),
                        }));
                    } else {
                        listed.push((cell, client.span()));
                    }
                }
                clients.push((cell, badge));
            }
            drafts.push(EndpointDraft {
                name,
                span: endpoint.name.span(),
                server,
                clients,
            });
        }
        for (channel, span) in channels {
            if channel.from == channel.to {
                continue;
            }
            let (from, to) = (
                &known_name(known, cells, channel.from),
                &known_name(known, cells, channel.to),
            );
            drafts.push(EndpointDraft {
                name: format!("{from}->{to}"),
                span: span.clone(),
                server: Some(channel.to),
                clients: vec![(Some(channel.from), Some(channel.from as u32))],
            });
        }
        drafts
    }

    /// The `[[notification]]` tables. `vcpus` holds each cell's vCPU count (if valid).
    pub(super) fn notifications(
        &mut self,
        raw: &RawSystem,
        cells: &HashMap<String, usize>,
        known: &[String],
        vcpus: &[Option<u8>],
        devices: &[DeviceDraft],
    ) -> Vec<NotificationDraft> {
        let mut seen = HashMap::new();
        let mut drafts: Vec<NotificationDraft> = Vec::new();
        let mut irq_spans: Vec<Option<Span>> = Vec::new();
        for notification in &raw.notification {
            let notification = notification.get_ref();
            let name = notification.name.get_ref().clone();
            self.name(&notification.name, Item::Notification, &mut seen);
            let reference = Reference::NotificationWaiter(name.clone());
            let waiter = self.cell_ref(&notification.waiter, reference, cells, known);
            let mut signallers = Vec::new();
            let mut listed: Vec<(usize, Span)> = Vec::new();
            for signaller in &notification.signallers {
                let reference = Reference::NotificationSignaller(name.clone());
                let cell = self.cell_ref(signaller, reference, cells, known);
                if let Some(cell) = cell {
                    if let Some((_, first)) = listed.iter().find(|(seen, _)| *seen == cell) {
                        self.report(Problem::Object(ObjectProblem::ListedTwice {
                            first: first.clone(),
                            second: signaller.span(),
                            object: name.clone(),
                            kind: ObjectKind::Notification,
                            cell: signaller.get_ref().clone(),
                        }));
                    } else {
                        listed.push((cell, signaller.span()));
                    }
                }
                signallers.push(cell);
            }
            let virtual_irq = match &notification.virtual_irq {
                None => Some(None),
                Some(irq) => self
                    .in_range(irq, Field::VirtualIrq)
                    .map(|irq| Some(irq as u16)),
            };
            let vcpu = match (&notification.vcpu, &notification.virtual_irq) {
                (None, _) => Some(0),
                (Some(vcpu), None) => {
                    self.report(Problem::Object(ObjectProblem::VcpuWithoutIrq {
                        span: vcpu.span(),
                    }));
                    None
                }
                (Some(vcpu), Some(_)) => self.in_range(vcpu, Field::Vcpu).and_then(|index| {
                    let waiter = waiter?;
                    let count = vcpus.get(waiter).copied().flatten()?;
                    if index >= i64::from(count) {
                        self.report(Problem::Object(ObjectProblem::VcpuBeyondWaiter {
                            span: vcpu.span(),
                            vcpu: index,
                            waiter: notification.waiter.get_ref().clone(),
                            vcpus: count,
                        }));
                        return None;
                    }
                    Some(index as u8)
                }),
            };
            if let (Some(Some(irq)), Some(waiter), Some(value)) =
                (virtual_irq, waiter, &notification.virtual_irq)
            {
                let device = devices.iter().find(|(_, _, cell, irqs)| {
                    *cell == Some(waiter) && irqs.contains(&u32::from(irq))
                });
                let other_notification = drafts.iter().zip(&irq_spans).find(|(other, _)| {
                    other.waiter == Some(waiter) && other.virtual_irq == Some(Some(irq))
                });
                let other = if irq == VIRTUAL_TIMER_INTID {
                    Some(("the virtual timer's".to_string(), None))
                } else if let Some((device, ..)) = device {
                    Some((format!("the interrupt of device `{device}`"), None))
                } else {
                    other_notification.map(|(other, span)| {
                        (
                            format!("raised by notification `{}`", other.name),
                            span.clone(),
                        )
                    })
                };
                if let Some(other) = other {
                    self.report(Problem::Object(ObjectProblem::VirtualIrqTaken {
                        span: value.span(),
                        irq,
                        waiter: notification.waiter.get_ref().clone(),
                        other,
                    }));
                }
            }
            irq_spans.push(notification.virtual_irq.as_ref().map(Spanned::span));
            drafts.push(NotificationDraft {
                name,
                span: notification.name.span(),
                waiter,
                signallers,
                virtual_irq,
                vcpu,
            });
        }
        drafts
    }

    /// Reports names shared by objects of different kinds (same-kind duplicates are
    /// reported where each table is checked).
    pub(super) fn object_names(&mut self, raw: &RawSystem) {
        let names = raw
            .memory
            .iter()
            .map(|m| (ObjectKind::Memory, &m.get_ref().name))
            .chain(
                raw.endpoint
                    .iter()
                    .map(|e| (ObjectKind::Endpoint, &e.get_ref().name)),
            )
            .chain(
                raw.notification
                    .iter()
                    .map(|n| (ObjectKind::Notification, &n.get_ref().name)),
            );
        let mut first: HashMap<&str, (ObjectKind, Span)> = HashMap::new();
        for (kind, name) in names {
            match first.get(name.get_ref().as_str()) {
                Some((first_kind, first_span)) if *first_kind != kind => {
                    self.report(Problem::Object(ObjectProblem::NameTaken {
                        name: name.get_ref().clone(),
                        first_kind: *first_kind,
                        first: first_span.clone(),
                        second_kind: kind,
                        second: name.span(),
                    }));
                }
                Some(_) => {}
                None => {
                    first.insert(name.get_ref(), (kind, name.span()));
                }
            }
        }
    }
}

/// The name of cell `index` (every resolved index has one).
fn known_name(known: &[String], cells: &HashMap<String, usize>, index: usize) -> String {
    known
        .iter()
        .find(|name| cells.get(*name) == Some(&index))
        .cloned()
        .unwrap_or_else(|| index.to_string())
}
