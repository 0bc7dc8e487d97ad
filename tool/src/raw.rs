//! The system description as written: serde types that keep every value's source span.
//!
//! These types accept anything well-typed; ranges, names and cross-references are checked
//! in `validate`, which turns a [`RawSystem`] into a checked `System` and reports every
//! mistake at once. Unknown keys are refused here (serde's `deny_unknown_fields`).

use serde::Deserialize;
use toml::Spanned;

/// A size: an integer number of bytes or a string such as `"2 MiB"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum RawSize {
    /// Bytes.
    Bytes(i64),
    /// Text with a unit.
    Text(String),
}

/// A duration: a string such as `"2 ms"`. A bare integer is kept so that `validate` can
/// say it lacks a unit.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum RawDuration {
    /// A number without a unit.
    Number(i64),
    /// Text with a unit.
    Text(String),
}

/// A whole description file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSystem {
    /// `[board]`.
    pub board: Spanned<RawBoard>,
    /// `[[cell]]` tables.
    #[serde(default)]
    pub cell: Vec<Spanned<RawCell>>,
    /// `[[memory]]` tables.
    #[serde(default)]
    pub memory: Vec<Spanned<RawMemory>>,
    /// `[[device]]` tables.
    #[serde(default)]
    pub device: Vec<Spanned<RawDevice>>,
    /// `[[channel]]` tables.
    #[serde(default)]
    pub channel: Vec<Spanned<RawChannel>>,
    /// `[[endpoint]]` tables.
    #[serde(default)]
    pub endpoint: Vec<Spanned<RawEndpoint>>,
    /// `[[notification]]` tables.
    #[serde(default)]
    pub notification: Vec<Spanned<RawNotification>>,
}

/// `[board]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawBoard {
    /// Informational name.
    pub name: Option<Spanned<String>>,
    /// Physical base of RAM.
    pub ram_base: Spanned<i64>,
    /// Size of RAM.
    pub ram_size: Spanned<RawSize>,
    /// Physical cores the system uses.
    pub cores: Spanned<i64>,
}

/// `[[cell]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCell {
    /// Unique name.
    pub name: Spanned<String>,
    /// `"native"` or `"guest"`.
    pub kind: Spanned<String>,
    /// Image path (`${VARIABLE}`s expanded), relative to the description file.
    pub image: Spanned<String>,
    /// RAM size.
    pub memory: Spanned<RawSize>,
    /// vCPU count.
    pub vcpus: Option<Spanned<i64>>,
    /// Priority.
    pub priority: Spanned<i64>,
    /// Physical core of each vCPU.
    pub cores: Option<Spanned<Vec<Spanned<i64>>>>,
    /// `"stop"`, `"restart"` or `"report"`.
    pub fault: Option<Spanned<String>>,
    /// Restarts allowed with `fault = "restart"`.
    pub restart_limit: Option<Spanned<i64>>,
    /// The cell that receives fault reports, with `fault = "report"`.
    pub supervisor: Option<Spanned<String>>,
    /// CPU time per `period`.
    pub budget: Option<Spanned<RawDuration>>,
    /// The budget's period.
    pub period: Option<Spanned<RawDuration>>,
    /// Whether the cell uses floating point and SIMD (default true).
    pub fp: Option<Spanned<bool>>,
    /// A native cell's exception level: `"el1"` (default) or `"el0"`.
    pub privilege: Option<Spanned<String>>,
    /// Cells this cell may stop, start, restart and query.
    pub controls: Option<Spanned<Vec<Spanned<String>>>>,
    /// The first slots of the cell's capability table, by object name.
    pub caps: Option<Spanned<Vec<Spanned<String>>>>,
    /// A guest's initrd path (`${VARIABLE}`s expanded), relative to the description file.
    pub initrd: Option<Spanned<String>>,
    /// A guest's kernel command line.
    pub bootargs: Option<Spanned<String>>,
    /// A guest's number of virtio-mmio slots.
    pub virtio_mmio: Option<Spanned<i64>>,
}

/// `[[memory]]`: a shared memory region.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawMemory {
    /// Unique name.
    pub name: Spanned<String>,
    /// Size.
    pub size: Option<Spanned<RawSize>>,
    /// Instead of `size`: this memory is the named cell's whole RAM (mapped into device
    /// models).
    pub cell_ram: Option<Spanned<String>>,
    /// Cells that map it.
    #[serde(default)]
    pub map: Vec<Spanned<RawMap>>,
}

/// One entry of a `[[memory]]`'s `map` list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMap {
    /// The cell that maps the region.
    pub cell: Spanned<String>,
    /// Subset of `"rwx"`.
    pub rights: Spanned<String>,
    /// Where the cell sees it; allocated after the cell's RAM when absent.
    pub ipa: Option<Spanned<i64>>,
}

/// `[[device]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    /// Unique name.
    pub name: Spanned<String>,
    /// Physical base.
    pub base: Spanned<i64>,
    /// Size of the register window.
    pub size: Spanned<RawSize>,
    /// The cell it is passed to.
    pub cell: Spanned<String>,
    /// GIC INTIDs routed to the cell's vCPU 0.
    #[serde(default)]
    pub irqs: Vec<Spanned<i64>>,
}

/// `[[channel]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    /// The initiating cell.
    pub from: Spanned<String>,
    /// The serving cell.
    pub to: Spanned<String>,
}

/// `[[endpoint]]`: an IPC endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// Unique object name.
    pub name: Spanned<String>,
    /// The cell that serves it.
    pub server: Spanned<String>,
    /// The cells that may call it.
    #[serde(default)]
    pub clients: Vec<Spanned<RawClient>>,
}

/// One entry of an endpoint's `clients`: a cell name, or a cell with its badge.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawClient {
    /// A cell, whose badge is its cell index.
    Cell(String),
    /// A cell with an explicit badge.
    Badged(RawBadgedClient),
}

/// `{ cell = "…", badge = … }` in an endpoint's `clients`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBadgedClient {
    /// The calling cell.
    pub cell: String,
    /// The badge the server sees with its calls.
    pub badge: i64,
}

impl RawClient {
    /// The client cell's name.
    pub fn cell(&self) -> &str {
        match self {
            Self::Cell(cell) => cell,
            Self::Badged(badged) => &badged.cell,
        }
    }
}

/// `[[notification]]`: a notification word.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawNotification {
    /// Unique object name.
    pub name: Spanned<String>,
    /// The cell that waits on it.
    pub waiter: Spanned<String>,
    /// The cells that may signal it.
    #[serde(default)]
    pub signallers: Vec<Spanned<String>>,
    /// A virtual interrupt also raised in the waiter when bits are set.
    pub virtual_irq: Option<Spanned<i64>>,
    /// The waiter's vCPU that receives `virtual-irq` (default 0).
    pub vcpu: Option<Spanned<i64>>,
}

/// Parses a description's text. Syntax errors, wrong types, missing and unknown keys stop
/// parsing, so this reports at most one problem.
pub fn parse(text: &str) -> Result<RawSystem, Box<crate::problem::Problem>> {
    toml::from_str(text).map_err(|error| {
        // serde names Rust types; say what the TOML should hold instead.
        let message = error
            .message()
            .trim()
            .replace("expected i64", "expected an integer");
        let span = error.span();
        Box::new(match unknown_key(&message) {
            Some((key, valid)) => crate::problem::Problem::UnknownKey { span, key, valid },
            None => crate::problem::Problem::Syntax { span, message },
        })
    })
}

/// Splits serde's "unknown field `k`, expected one of `a`, `b`" into the key and the list.
fn unknown_key(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let valid = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((key.to_string(), valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_message_is_split() {
        assert_eq!(
            unknown_key("unknown field `colour`, expected one of `name`, `kind`"),
            Some((
                "colour".to_string(),
                vec!["name".to_string(), "kind".to_string()]
            ))
        );
        assert_eq!(
            unknown_key("unknown field `x`, expected `to`"),
            Some(("x".to_string(), vec!["to".to_string()]))
        );
        assert_eq!(unknown_key("missing field `name`"), None);
    }
}
