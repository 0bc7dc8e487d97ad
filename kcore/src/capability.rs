//! Capability lookup rules: may this cell use slot N for this operation?
//!
//! Each cell has a fixed capability table built from the boot plan; a hypercall names a
//! capability by its slot (an untrusted `u64` from a register). This module owns the one
//! rule every capability-taking hypercall applies, independent of how the table is stored:
//! [`check`] takes the table's length and a lookup function, so the kernel can read the
//! plan's records directly and tests can use plain slices.
//!
//! The rule, in order (the first failure wins):
//! 1. `slot < table_len`, else [`CapabilityError::OutOfRange`]
//!    ([`HvcError::InvalidCapability`]); the lookup is then never called;
//! 2. the slot holds a capability, else [`CapabilityError::Empty`];
//! 3. it is of the requested kind, else [`CapabilityError::WrongKind`];
//! 4. it holds every requested right bit, else [`CapabilityError::MissingRight`].
//!
//! Failures 2–4 are [`HvcError::Denied`]. Every failure counts a denial for the cell
//! (the kernel keeps one saturating count per cell, reported by `CELL_STATUS` in `x4`) and has no other effect.
//! [`describe`] applies rules 1 and 2 only, for `CAP_INFO`.
//!
//! [`IpcRoutes`] is the same rule decided ahead of time for the fast paths: a vCPU's endpoint
//! and notification capabilities in its first [`ROUTE_SLOTS`] slots, decoded once at boot
//! (the table never changes), so that a call or a reply-and-wait finds its endpoint, badge and
//! server cell, and a signal or a wait its notification, with one load. It only ever answers
//! `Some` where [`check`] would grant; where it answers `None` the kernel takes its general
//! path, which applies [`check`] and counts any denial.
//!
//! Invariant, checked by a randomized test: `check` returns `Ok` only if the slot is in the
//! table, the kind matches and the held rights include every requested bit. Nothing here
//! panics, whatever the slot (a `u64` that does not fit `usize` is out of range).

use abi::hvc::{CapabilityKind, HvcError};
#[cfg(test)]
use core::fmt;

/// One capability as the rule sees it, whatever the plan's record layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilityView {
    /// What it designates.
    pub kind: CapabilityKind,
    /// Right bits (`abi::hvc::ENDPOINT_CALL`, ...; their meaning depends on `kind`).
    pub rights: u64,
    /// Index of the designated object (endpoint, notification, region, interrupt or cell)
    /// in the kernel's table for that kind.
    pub object: u32,
    /// The badge a call through this capability carries (0 for other kinds).
    pub badge: u32,
}

/// Why a capability may not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapabilityError {
    /// The slot is beyond the cell's table.
    OutOfRange,
    /// The slot holds no capability.
    Empty,
    /// The capability is of another kind.
    WrongKind,
    /// The capability lacks a requested right.
    MissingRight,
}

impl CapabilityError {
    /// The hypercall error code: [`HvcError::InvalidCapability`] for a slot beyond the
    /// table, [`HvcError::Denied`] otherwise.
    pub const fn to_hvc(self) -> HvcError {
        match self {
            Self::OutOfRange => HvcError::InvalidCapability,
            Self::Empty | Self::WrongKind | Self::MissingRight => HvcError::Denied,
        }
    }
}

// The kernel returns these as hypercall codes and never renders them: the text is
// for the tests.
#[cfg(test)]
impl fmt::Display for CapabilityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::OutOfRange => "the capability slot is beyond the cell's table",
            Self::Empty => "the capability slot is empty",
            Self::WrongKind => "the capability is of another kind",
            Self::MissingRight => "the capability lacks a requested right",
        };
        f.write_str(text)
    }
}

/// Looks up `slot` in a table of `table_len` entries and checks that it is a capability of
/// `kind` holding every bit of `right` (`right == 0` checks the kind only).
///
/// `lookup(index)` returns the capability in slot `index` (`index < table_len`), or `None`
/// for an empty slot; it is called at most once, and only for an index in range.
pub fn check(
    table_len: usize,
    slot: u64,
    lookup: impl FnOnce(usize) -> Option<CapabilityView>,
    kind: CapabilityKind,
    right: u64,
) -> Result<CapabilityView, CapabilityError> {
    let capability = describe(table_len, slot, lookup)?;
    if capability.kind != kind {
        return Err(CapabilityError::WrongKind);
    }
    if capability.rights & right != right {
        return Err(CapabilityError::MissingRight);
    }
    Ok(capability)
}

/// Looks up `slot` whatever its kind and rights (for `CAP_INFO`): rules 1 and 2 of the
/// module documentation.
pub fn describe(
    table_len: usize,
    slot: u64,
    lookup: impl FnOnce(usize) -> Option<CapabilityView>,
) -> Result<CapabilityView, CapabilityError> {
    let index = usize::try_from(slot)
        .ok()
        .filter(|&index| index < table_len)
        .ok_or(CapabilityError::OutOfRange)?;
    lookup(index).ok_or(CapabilityError::Empty)
}

/// How many capability slots of a vCPU's table [`IpcRoutes`] pre-decodes.
pub const ROUTE_SLOTS: usize = 8;

/// An endpoint capability as the IPC fast path uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpcRoute {
    /// Index of the endpoint.
    pub endpoint: u8,
    /// The cell that serves the endpoint.
    pub server_cell: u16,
    /// The badge a call through this capability carries.
    pub badge: u32,
}

/// The endpoint and notification capabilities of a cell's first [`ROUTE_SLOTS`] slots,
/// pre-decoded: one word per slot, `rights | object << 8 | server cell << 16 | badge << 32`,
/// the rights of an endpoint in bits 0..4 and those of a notification in bits 4..8 (so the
/// right tested also tests the kind); zero for a slot that holds neither (or one whose
/// object index does not fit a byte, or whose rights do not fit four bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpcRoutes([u64; ROUTE_SLOTS]);

/// The right bits a route keeps for its kind.
const ROUTE_RIGHTS: u64 = 0x0f;
/// Where a notification's right bits sit in a route word.
const NOTIFICATION_RIGHTS_SHIFT: u32 = 4;

impl IpcRoutes {
    /// The routes of a table of `table_len` slots whose capability in slot `index` is
    /// `lookup(index)` (as for [`check`]), the server of endpoint `object` being
    /// `server_of(object)`. Boot time only. (The default routes route nothing.)
    pub fn decode(
        table_len: usize,
        lookup: impl Fn(usize) -> Option<CapabilityView>,
        server_of: impl Fn(u32) -> u16,
    ) -> Self {
        let mut routes = Self::default();
        for (slot, word) in routes.0.iter_mut().enumerate().take(table_len) {
            let Some(cap) = lookup(slot).filter(|cap| cap.object <= 0xff) else {
                continue;
            };
            let (rights, object) = (cap.rights & ROUTE_RIGHTS, u64::from(cap.object) << 8);
            let server = u64::from(server_of(cap.object)) << 16;
            *word = match cap.kind {
                CapabilityKind::Endpoint => rights | object | server | u64::from(cap.badge) << 32,
                CapabilityKind::Notification => rights << NOTIFICATION_RIGHTS_SHIFT | object,
                _ => 0,
            };
        }
        routes
    }

    /// The endpoint capability in `slot` if it holds every bit of `right` (a right of the
    /// endpoint kind, not 0): what [`check`] for [`CapabilityKind::Endpoint`] grants, or
    /// `None`, also for a slot beyond [`ROUTE_SLOTS`] (the general path then decides).
    #[inline(always)]
    pub fn endpoint(&self, slot: u64, right: u64) -> Option<IpcRoute> {
        let word = self.holding(slot, right, 0)?;
        Some(IpcRoute {
            endpoint: (word >> 8) as u8,
            server_cell: (word >> 16) as u16,
            badge: (word >> 32) as u32,
        })
    }

    /// The index of the notification whose capability is in `slot` if that holds every bit
    /// of `right` (not 0), as [`endpoint`](Self::endpoint) for an endpoint.
    #[inline(always)]
    pub fn notification(&self, slot: u64, right: u64) -> Option<u8> {
        let word = self.holding(slot, right, NOTIFICATION_RIGHTS_SHIFT)?;
        Some((word >> 8) as u8)
    }

    /// The word of `slot` if it holds every bit of `right` at `shift` (its kind's place).
    #[inline(always)]
    fn holding(&self, slot: u64, right: u64, shift: u32) -> Option<u64> {
        let word = *self.0.get(usize::try_from(slot).ok()?)?;
        let wanted = right << shift;
        (right != 0 && right <= ROUTE_RIGHTS && word & wanted == wanted).then_some(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_random::Random;
    use abi::hvc::{ENDPOINT_CALL, ENDPOINT_SERVE, NOTIFICATION_SIGNAL, NOTIFICATION_WAIT};

    impl CapabilityError {
        /// Every error, in declaration order.
        const ALL: [Self; 4] = [
            Self::OutOfRange,
            Self::Empty,
            Self::WrongKind,
            Self::MissingRight,
        ];

        fn index(self) -> usize {
            self as usize
        }
    }

    fn view(kind: CapabilityKind, rights: u64) -> CapabilityView {
        CapabilityView {
            kind,
            rights,
            object: 3,
            badge: 0x42,
        }
    }

    fn table_check(
        table: &[Option<CapabilityView>],
        slot: u64,
        kind: CapabilityKind,
        right: u64,
    ) -> Result<CapabilityView, CapabilityError> {
        check(
            table.len(),
            slot,
            |index| table.get(index).copied().flatten(),
            kind,
            right,
        )
    }

    #[test]
    fn each_rule_in_order() {
        let endpoint = view(CapabilityKind::Endpoint, ENDPOINT_CALL);
        let table = [Some(endpoint), None];
        assert_eq!(
            table_check(&table, 0, CapabilityKind::Endpoint, ENDPOINT_CALL),
            Ok(endpoint)
        );
        assert_eq!(
            table_check(&table, 0, CapabilityKind::Endpoint, 0),
            Ok(endpoint)
        );
        assert_eq!(
            table_check(&table, 0, CapabilityKind::Endpoint, ENDPOINT_SERVE),
            Err(CapabilityError::MissingRight)
        );
        assert_eq!(
            table_check(
                &table,
                0,
                CapabilityKind::Endpoint,
                ENDPOINT_CALL | ENDPOINT_SERVE
            ),
            Err(CapabilityError::MissingRight)
        );
        // The kind is checked before the rights.
        assert_eq!(
            table_check(&table, 0, CapabilityKind::Notification, NOTIFICATION_WAIT),
            Err(CapabilityError::WrongKind)
        );
        assert_eq!(
            table_check(&table, 1, CapabilityKind::Endpoint, ENDPOINT_CALL),
            Err(CapabilityError::Empty)
        );
        for slot in [2, 3, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(
                table_check(&table, slot, CapabilityKind::Endpoint, ENDPOINT_CALL),
                Err(CapabilityError::OutOfRange)
            );
        }
        assert_eq!(
            table_check(&[], 0, CapabilityKind::Endpoint, 0),
            Err(CapabilityError::OutOfRange)
        );
    }

    #[test]
    fn the_lookup_is_never_asked_for_a_slot_out_of_range() {
        let result = check(
            4,
            4,
            |_| panic!("looked up beyond the table"),
            CapabilityKind::Interrupt,
            0,
        );
        assert_eq!(result, Err(CapabilityError::OutOfRange));
        // A lookup claiming more than the table holds cannot widen it.
        let result = describe(0, 0, |_| Some(view(CapabilityKind::CellControl, 1)));
        assert_eq!(result, Err(CapabilityError::OutOfRange));
        let mut asked = None;
        let result = describe(8, 7, |index| {
            asked = Some(index);
            None
        });
        assert_eq!((result, asked), (Err(CapabilityError::Empty), Some(7)));
    }

    #[test]
    fn describe_ignores_kind_and_rights() {
        let notification = view(CapabilityKind::Notification, NOTIFICATION_SIGNAL);
        let table = [None, Some(notification)];
        let lookup = |index: usize| table.get(index).copied().flatten();
        assert_eq!(describe(2, 1, lookup), Ok(notification));
        assert_eq!(describe(2, 0, lookup), Err(CapabilityError::Empty));
        assert_eq!(describe(2, 2, lookup), Err(CapabilityError::OutOfRange));
    }

    #[test]
    fn errors_map_to_hypercall_codes() {
        assert_eq!(
            CapabilityError::OutOfRange.to_hvc(),
            HvcError::InvalidCapability
        );
        for error in [
            CapabilityError::Empty,
            CapabilityError::WrongKind,
            CapabilityError::MissingRight,
        ] {
            assert_eq!(error.to_hvc(), HvcError::Denied);
        }
        for error in CapabilityError::ALL {
            assert!(!error.to_string().is_empty());
        }
    }

    impl Random {
        fn kind(&mut self) -> CapabilityKind {
            CapabilityKind::from_code(1 + self.below(5)).expect("codes 1..=5 are kinds")
        }

        /// Few right bits, so that matches and misses are both common.
        fn rights(&mut self) -> u64 {
            match self.below(6) {
                0 => 0,
                1 => self.next(),
                2 => u64::MAX,
                _ => self.below(8),
            }
        }
    }

    #[test]
    fn randomized_never_ok_without_slot_kind_and_rights() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        let mut outcomes = [0usize; 5];
        for _ in 0..300 {
            let table: Vec<Option<CapabilityView>> = (0..random.below(12))
                .map(|_| {
                    (random.below(4) != 0).then(|| CapabilityView {
                        kind: random.kind(),
                        rights: random.rights(),
                        object: random.next() as u32,
                        badge: random.next() as u32,
                    })
                })
                .collect();
            for _ in 0..200 {
                let slot = match random.below(8) {
                    0 => random.next(),
                    _ => random.below(table.len() as u64 + 3),
                };
                let kind = random.kind();
                let right = random.rights();
                let result = table_check(&table, slot, kind, right);
                let expected = match usize::try_from(slot).ok().and_then(|i| table.get(i)) {
                    None => Err(CapabilityError::OutOfRange),
                    Some(None) => Err(CapabilityError::Empty),
                    Some(Some(held)) if held.kind != kind => Err(CapabilityError::WrongKind),
                    Some(Some(held)) if held.rights & right != right => {
                        Err(CapabilityError::MissingRight)
                    }
                    Some(Some(held)) => Ok(*held),
                };
                assert_eq!(result, expected, "slot {slot} of {table:?}");
                if let Ok(granted) = result {
                    assert!((slot as usize) < table.len());
                    assert_eq!(granted.kind, kind);
                    assert_eq!(granted.rights & right, right);
                    outcomes[0] += 1;
                }
                if let Err(error) = result {
                    outcomes[1 + error.index()] += 1;
                }
            }
        }
        // Every outcome was exercised.
        assert!(outcomes.iter().all(|&n| n > 0), "{outcomes:?}");
    }

    #[test]
    fn routes_grant_only_what_the_check_grants() {
        let mut random = Random(0x2545_f491_4f6c_dd1d);
        let server_of = |object: u32| (object as u16).wrapping_mul(7) ^ 0x55;
        let (mut routed, mut refused, mut general) = ([0; 2], [0; 2], [0; 2]);
        for _ in 0..300 {
            let table: Vec<Option<CapabilityView>> = (0..random.below(12))
                .map(|_| {
                    (random.below(4) != 0).then(|| CapabilityView {
                        kind: match random.below(3) {
                            0 => CapabilityKind::Endpoint,
                            1 => CapabilityKind::Notification,
                            _ => random.kind(),
                        },
                        rights: random.rights(),
                        object: match random.below(4) {
                            0 => random.next() as u32,
                            _ => random.below(64) as u32,
                        },
                        badge: random.next() as u32,
                    })
                })
                .collect();
            let routes = IpcRoutes::decode(
                table.len(),
                |index| table.get(index).copied().flatten(),
                server_of,
            );
            for _ in 0..100 {
                let slot = match random.below(8) {
                    0 => random.next(),
                    _ => random.below(table.len() as u64 + 3),
                };
                let right = match random.below(4) {
                    0 => random.rights(),
                    1 => ENDPOINT_CALL | ENDPOINT_SERVE,
                    2 => ENDPOINT_SERVE,
                    _ => ENDPOINT_CALL,
                };
                let notification = random.below(2) == 0;
                let (kind, outcome) = if notification {
                    let index = routes.notification(slot, right);
                    (
                        CapabilityKind::Notification,
                        index.map(|index| (index, 0, 0)),
                    )
                } else {
                    let route = routes.endpoint(slot, right);
                    let fields = |route: IpcRoute| (route.endpoint, route.server_cell, route.badge);
                    (CapabilityKind::Endpoint, route.map(fields))
                };
                let checked = table_check(&table, slot, kind, right);
                let k = usize::from(notification);
                match (outcome, checked) {
                    (Some((object, server, badge)), Ok(cap)) => {
                        assert_ne!(right, 0);
                        assert!((slot as usize) < ROUTE_SLOTS);
                        assert_eq!(u32::from(object), cap.object);
                        if !notification {
                            assert_eq!(badge, cap.badge);
                            assert_eq!(server, server_of(cap.object));
                        }
                        routed[k] += 1;
                    }
                    (Some(route), Err(error)) => {
                        panic!("slot {slot} right {right:#x} {kind:?} routed {route:?}, check: {error:?}")
                    }
                    (None, Err(_)) => refused[k] += 1,
                    // Allowed only where the routes do not look: the general path decides.
                    (None, Ok(cap)) => {
                        assert!(
                            slot as usize >= ROUTE_SLOTS
                                || right == 0
                                || right > ROUTE_RIGHTS
                                || cap.object > 0xff,
                            "slot {slot} right {right:#x}: {cap:?} not routed"
                        );
                        general[k] += 1;
                    }
                }
            }
        }
        for k in 0..2 {
            assert!(
                routed[k] > 0 && refused[k] > 0 && general[k] > 0,
                "{routed:?} {refused:?} {general:?}"
            );
        }
    }

    #[test]
    fn no_routes_route_nothing() {
        for slot in [0, 1, ROUTE_SLOTS as u64, u64::MAX] {
            assert_eq!(IpcRoutes::default().endpoint(slot, ENDPOINT_CALL), None);
        }
        let endpoint = view(CapabilityKind::Endpoint, ENDPOINT_CALL | ENDPOINT_SERVE);
        let table = [Some(endpoint); ROUTE_SLOTS + 2];
        let routes = IpcRoutes::decode(table.len(), |index| table[index], |_| 9);
        let route = IpcRoute {
            endpoint: 3,
            server_cell: 9,
            badge: 0x42,
        };
        assert_eq!(routes.endpoint(0, ENDPOINT_SERVE), Some(route));
        assert_eq!(
            routes.endpoint(ROUTE_SLOTS as u64 - 1, ENDPOINT_CALL),
            Some(route)
        );
        assert_eq!(routes.endpoint(ROUTE_SLOTS as u64, ENDPOINT_CALL), None);
        // A table shorter than the routes leaves the rest empty, whatever the lookup says.
        let routes = IpcRoutes::decode(1, |_| Some(endpoint), |_| 9);
        assert_eq!(routes.endpoint(1, ENDPOINT_CALL), None);
        // An endpoint's right is not a notification's, nor the other way round.
        let notification = view(CapabilityKind::Notification, NOTIFICATION_SIGNAL);
        let table = [Some(endpoint), Some(notification)];
        let routes = IpcRoutes::decode(2, |index| table[index], |_| 9);
        assert_eq!(routes.notification(0, NOTIFICATION_SIGNAL), None);
        assert_eq!(routes.endpoint(1, ENDPOINT_CALL), None);
        assert_eq!(routes.notification(1, NOTIFICATION_SIGNAL), Some(3));
        assert_eq!(routes.notification(1, NOTIFICATION_WAIT), None);
    }
}
