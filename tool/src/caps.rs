//! `cellvisor caps`: each cell's capability table as a designer audits it for least
//! authority — one line per slot with the kind, the object, the rights and who is on the
//! other side. `layout.txt` lists the same tables.

use abi::hvc::{ENDPOINT_CALL, NOTIFICATION_SIGNAL, NOTIFICATION_WAIT};
use abi::plan::Rights;

use crate::size::Size;
use crate::system::{Capability, Object, System};

/// Width of the slot column.
const SLOT_WIDTH: usize = 6;
/// Width of the kind column.
const KIND_WIDTH: usize = 15;
/// Least width of the object column.
const OBJECT_WIDTH: usize = 15;
/// Width of the rights column.
const RIGHTS_WIDTH: usize = 14;

/// Every cell's capability table, cell after cell, each headed by its name and index.
pub fn tables(system: &System) -> String {
    let rows: Vec<Vec<[String; 4]>> = system
        .cells
        .iter()
        .enumerate()
        .map(|(holder, cell)| {
            cell.capabilities
                .iter()
                .map(|capability| row(system, holder, capability))
                .collect()
        })
        .collect();
    let object_width = rows
        .iter()
        .flatten()
        .map(|row| row[1].len() + 2)
        .max()
        .unwrap_or(0)
        .max(OBJECT_WIDTH);
    let mut out = String::new();
    for (index, (cell, rows)) in system.cells.iter().zip(&rows).enumerate() {
        out.push_str(&format!("{}  (cell {index})\n", cell.name));
        if rows.is_empty() {
            out.push_str("  no capabilities\n");
            continue;
        }
        let line = |slot: &str, [kind, object, rights, detail]: &[String; 4]| {
            format!(
                "  {slot:<SLOT_WIDTH$}{kind:<KIND_WIDTH$}{object:<object_width$}{rights:<RIGHTS_WIDTH$}{detail}"
            )
            .trim_end()
            .to_string()
        };
        let header = ["kind", "object", "rights", "detail"].map(str::to_string);
        out.push_str(&line("slot", &header));
        out.push('\n');
        for (slot, row) in rows.iter().enumerate() {
            out.push_str(&line(&slot.to_string(), row));
            out.push('\n');
        }
    }
    out
}

/// Kind, object, rights and detail of one capability of cell `holder`.
fn row(system: &System, holder: usize, capability: &Capability) -> [String; 4] {
    let cell_name = |index: usize| system.cells[index].name.as_str();
    let names = |cells: &mut dyn Iterator<Item = usize>| {
        let names: Vec<&str> = cells.map(cell_name).collect();
        if names.is_empty() {
            "nobody".to_string()
        } else {
            names.join(", ")
        }
    };
    let rights = u64::from(capability.rights);
    match capability.object {
        Object::Endpoint(index) => {
            let endpoint = &system.endpoints[index];
            let (rights, detail) = if rights == ENDPOINT_CALL {
                let server = cell_name(endpoint.server);
                let detail = format!("badge {}, served by {server}", capability.badge);
                ("call", detail)
            } else {
                let clients: Vec<String> = endpoint
                    .clients
                    .iter()
                    .map(|client| format!("{} (badge {})", cell_name(client.cell), client.badge))
                    .collect();
                let detail = if clients.is_empty() {
                    "called by nobody".to_string()
                } else {
                    format!("called by {}", clients.join(", "))
                };
                ("serve", detail)
            };
            row_of("endpoint", &endpoint.name, rights, detail)
        }
        Object::Notification(index) => {
            let notification = &system.notifications[index];
            let text = match (
                rights & NOTIFICATION_WAIT != 0,
                rights & NOTIFICATION_SIGNAL != 0,
            ) {
                (true, true) => "wait, signal",
                (true, false) => "wait",
                _ => "signal",
            };
            let mut detail = if rights & NOTIFICATION_WAIT != 0 {
                let signallers = names(&mut notification.signallers.iter().copied());
                format!("signalled by {signallers}")
            } else {
                format!("waited on by {}", cell_name(notification.waiter))
            };
            if let (true, Some(irq)) = (rights & NOTIFICATION_WAIT != 0, notification.virtual_irq) {
                detail.push_str(&format!(
                    ", raises virtual IRQ {irq} on vCPU {}",
                    notification.vcpu
                ));
            }
            row_of("notification", &notification.name, text, detail)
        }
        Object::Memory(index) => {
            let memory = &system.memories[index];
            let rights = Rights(capability.rights);
            let letters: String = [(Rights::R, 'r'), (Rights::W, 'w'), (Rights::X, 'x')]
                .iter()
                .filter(|(bit, _)| rights.contains(*bit))
                .map(|(_, letter)| letter)
                .collect();
            // The holder maps the region exactly once; its map gives the IPA.
            let ipa = memory
                .maps
                .iter()
                .find(|map| map.cell == holder)
                .map_or(0, |map| map.ipa);
            let mut detail = format!("IPA {ipa:#x}, {}", Size(memory.size));
            if let Some(owner) = memory.cell_ram {
                detail.push_str(&format!(", the RAM of {}", system.cells[owner].name));
            }
            row_of("memory", &memory.name, &letters, detail)
        }
        Object::Interrupt(intid) => {
            let device = system
                .devices
                .iter()
                .find(|device| device.irqs.contains(&intid))
                .map_or("?", |device| device.name.as_str());
            row_of(
                "interrupt",
                &format!("irq:{intid}"),
                "-",
                format!("device {device}, vCPU 0"),
            )
        }
        Object::Cell(index) => {
            let controlled = &system.cells[index];
            let mut detail = "stop, start, restart, status".to_string();
            if controlled.supervisor == Some(holder) {
                detail.push_str("; receives its fault reports");
            }
            row_of(
                "cell-control",
                &format!("cell:{}", controlled.name),
                "control",
                detail,
            )
        }
    }
}

fn row_of(kind: &str, object: &str, rights: &str, detail: String) -> [String; 4] {
    [
        kind.to_string(),
        object.to_string(),
        rights.to_string(),
        detail,
    ]
}
