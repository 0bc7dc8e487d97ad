use super::*;
use crate::test_random::Random;
use std::collections::{HashMap, VecDeque};

const fn vcpu(cell: u16, vcpu: u8) -> VcpuRef {
    VcpuRef { cell, vcpu }
}

const SERVER: VcpuRef = vcpu(0, 0);
const SERVER_2: VcpuRef = vcpu(0, 1);
const CLIENT: VcpuRef = vcpu(1, 0);
const CLIENT_2: VcpuRef = vcpu(2, 0);
const CLIENT_3: VcpuRef = vcpu(2, 1);

/// The place word a test gives each server: distinct per vCPU, as the kernel's are.
fn place_of(server: VcpuRef) -> u16 {
    server.cell << 8 | server.vcpu as u16
}

fn message(first: u64) -> Message {
    [first, first + 1, first + 2, first + 3]
}

fn pending(caller: VcpuRef, first: u64, badge: u32) -> Pending {
    Pending {
        caller,
        message: message(first),
        badge,
    }
}

#[test]
fn a_waiting_server_takes_the_call_and_replies() {
    let mut endpoint = Endpoint::new();
    let first = endpoint.reply_wait(SERVER, place_of(SERVER)).unwrap();
    assert_eq!(
        first,
        ReplyWait {
            reply_to: None,
            next: None
        }
    );
    assert!(endpoint.is_waiting(SERVER));
    assert_eq!(endpoint.waiting_servers(), 1);

    let outcome = endpoint.call(CLIENT, message(10), 7, true).unwrap();
    assert_eq!(outcome, CallOutcome::Deliver { server: SERVER });
    assert!(!endpoint.is_waiting(SERVER));
    assert_eq!(endpoint.serving(SERVER), Some(CLIENT));
    assert_eq!(endpoint.queued(), 0);

    let second = endpoint.reply_wait(SERVER, place_of(SERVER)).unwrap();
    assert_eq!(
        second,
        ReplyWait {
            reply_to: Some(CLIENT),
            next: None
        }
    );
    assert!(endpoint.is_waiting(SERVER));
    assert_eq!(endpoint.serving(SERVER), None);
}

#[test]
fn callers_queue_in_order_while_no_server_waits() {
    let mut endpoint = Endpoint::new();
    for (caller, first) in [(CLIENT, 10), (CLIENT_2, 20), (CLIENT_3, 30)] {
        assert_eq!(
            endpoint.call(caller, message(first), first as u32, true),
            Ok(CallOutcome::Queued)
        );
    }
    assert_eq!(endpoint.queued(), 3);
    assert!(endpoint.is_queued(CLIENT_2));
    let order: Vec<VcpuRef> = endpoint.queued_callers().map(|p| p.caller).collect();
    assert_eq!(order, [CLIENT, CLIENT_2, CLIENT_3]);

    // The server takes them one by one, replying to each as it takes the next.
    let taken = endpoint.reply_wait(SERVER, place_of(SERVER)).unwrap();
    assert_eq!(taken.reply_to, None);
    assert_eq!(taken.next, Some(pending(CLIENT, 10, 10)));
    let taken = endpoint.reply_wait(SERVER, place_of(SERVER)).unwrap();
    assert_eq!(taken.reply_to, Some(CLIENT));
    assert_eq!(taken.next, Some(pending(CLIENT_2, 20, 20)));
    // A second server takes the third call while the first is still serving.
    let taken = endpoint.reply_wait(SERVER_2, place_of(SERVER_2)).unwrap();
    assert_eq!(taken.next, Some(pending(CLIENT_3, 30, 30)));
    assert_eq!(endpoint.serving(SERVER), Some(CLIENT_2));
    assert_eq!(endpoint.serving(SERVER_2), Some(CLIENT_3));
    assert_eq!(endpoint.reply(SERVER_2), Ok(Some(CLIENT_3)));
    assert_eq!(endpoint.reply(SERVER_2), Err(IpcError::NotServing));
    assert_eq!(
        endpoint.reply_wait(SERVER, place_of(SERVER)).unwrap(),
        ReplyWait {
            reply_to: Some(CLIENT_2),
            next: None
        }
    );
    assert_eq!(endpoint.queued(), 0);
}

#[test]
fn waiting_twice_keeps_waiting_and_keeps_its_place() {
    let mut endpoint = Endpoint::new();
    endpoint.reply_wait(SERVER, place_of(SERVER)).unwrap();
    endpoint.reply_wait(SERVER_2, place_of(SERVER_2)).unwrap();
    let again = endpoint.reply_wait(SERVER, place_of(SERVER)).unwrap();
    assert_eq!(
        again,
        ReplyWait {
            reply_to: None,
            next: None
        }
    );
    assert_eq!(endpoint.waiting_servers(), 2);
    // SERVER waited first, and waiting again did not move it behind SERVER_2.
    assert_eq!(
        endpoint.call(CLIENT, message(0), 0, true),
        Ok(CallOutcome::Deliver { server: SERVER })
    );
    assert_eq!(
        endpoint.call(CLIENT_2, message(0), 0, true),
        Ok(CallOutcome::Deliver { server: SERVER_2 })
    );
    assert_eq!(
        endpoint.call(CLIENT_3, message(0), 0, true),
        Ok(CallOutcome::Queued)
    );
}

#[test]
fn refusals_change_nothing() {
    let mut endpoint = Endpoint::new();
    assert_eq!(
        endpoint.call(CLIENT, message(0), 0, false),
        Err(IpcError::ServerStopped)
    );
    assert_eq!(endpoint.queued(), 0);
    assert_eq!(endpoint.reply(SERVER), Err(IpcError::NotServing));
    endpoint.reply_wait(SERVER, place_of(SERVER)).unwrap();
    assert_eq!(endpoint.reply(SERVER), Err(IpcError::NotServing));
    assert!(endpoint.is_waiting(SERVER));
    // A waiting server cannot call; a served or queued caller cannot call or serve again.
    assert_eq!(
        endpoint.call(SERVER, message(0), 0, true),
        Err(IpcError::AlreadyBlocked)
    );
    endpoint.call(CLIENT, message(0), 0, true).unwrap();
    endpoint.call(CLIENT_2, message(0), 0, true).unwrap();
    for blocked in [CLIENT, CLIENT_2] {
        assert_eq!(
            endpoint.call(blocked, message(0), 0, true),
            Err(IpcError::AlreadyBlocked)
        );
        assert_eq!(
            endpoint.reply_wait(blocked, place_of(blocked)),
            Err(IpcError::AlreadyBlocked)
        );
    }
    assert_eq!(endpoint.serving(SERVER), Some(CLIENT));
    assert_eq!(endpoint.queued(), 1);
}

#[test]
fn the_queue_and_the_server_table_are_bounded() {
    let mut endpoint = Endpoint::new();
    for index in 0..MAX_QUEUED_CALLERS {
        let caller = vcpu(1 + (index / 8) as u16, (index % 8) as u8);
        assert_eq!(
            endpoint.call(caller, message(index as u64), 0, true),
            Ok(CallOutcome::Queued)
        );
    }
    assert_eq!(
        endpoint.call(vcpu(99, 0), message(0), 0, true),
        Err(IpcError::QueueFull)
    );
    assert_eq!(endpoint.queued(), MAX_QUEUED_CALLERS);
    for index in 0..MAX_SERVERS {
        let taken = endpoint
            .reply_wait(vcpu(0, index as u8), place_of(vcpu(0, index as u8)))
            .unwrap();
        assert_eq!(taken.next.map(|p| p.message[0]), Some(index as u64));
    }
    assert_eq!(
        endpoint.reply_wait(
            vcpu(0, MAX_SERVERS as u8),
            place_of(vcpu(0, MAX_SERVERS as u8))
        ),
        Err(IpcError::TooManyServers)
    );
    // A server that leaves with `reply` makes room.
    assert_eq!(endpoint.reply(vcpu(0, 0)), Ok(Some(vcpu(1, 0))));
    let taken = endpoint
        .reply_wait(
            vcpu(0, MAX_SERVERS as u8),
            place_of(vcpu(0, MAX_SERVERS as u8)),
        )
        .unwrap();
    assert_eq!(taken.next.map(|p| p.message[0]), Some(MAX_SERVERS as u64));
    // The ring wrapped around and still keeps order.
    endpoint.call(vcpu(99, 0), message(1000), 0, true).unwrap();
    let order: Vec<u64> = endpoint.queued_callers().map(|p| p.message[0]).collect();
    let expected: Vec<u64> = ((MAX_SERVERS as u64 + 1)..MAX_QUEUED_CALLERS as u64)
        .chain([1000])
        .collect();
    assert_eq!(order, expected);
}

#[test]
fn losing_the_server_cell_fails_served_and_queued_callers() {
    let mut endpoint = Endpoint::new();
    endpoint.reply_wait(SERVER, place_of(SERVER)).unwrap();
    endpoint.reply_wait(SERVER_2, place_of(SERVER_2)).unwrap();
    endpoint.call(CLIENT, message(0), 0, true).unwrap();
    endpoint.call(CLIENT_2, message(0), 0, true).unwrap();
    endpoint.call(CLIENT_3, message(0), 0, true).unwrap();
    endpoint.call(vcpu(3, 0), message(0), 0, true).unwrap();
    // A self-call of the server cell: dropped, not returned.
    endpoint.call(vcpu(0, 2), message(0), 0, true).unwrap();
    assert_eq!(endpoint.queued(), 3);
    let failed = endpoint.server_cell_lost(0);
    assert_eq!(failed.as_slice(), [CLIENT, CLIENT_2, CLIENT_3, vcpu(3, 0)]);
    assert_eq!(failed.len(), 4);
    assert!(!failed.is_empty());
    assert_eq!((&failed).into_iter().count(), 4);
    assert_eq!(endpoint.queued(), 0);
    assert_eq!(endpoint.serving(SERVER), None);
    assert_eq!(endpoint.waiting_servers(), 0);
    // The restarted server starts afresh; nothing it replies reaches the failed callers.
    assert_eq!(
        endpoint.reply_wait(SERVER, place_of(SERVER)).unwrap(),
        ReplyWait {
            reply_to: None,
            next: None
        }
    );
    // Losing a cell that serves nothing here fails nobody.
    assert!(endpoint.server_cell_lost(5).is_empty());
    assert!(endpoint.is_waiting(SERVER));
}

#[test]
fn waiting_servers_of_the_lost_cell_are_forgotten() {
    let mut endpoint = Endpoint::new();
    endpoint.reply_wait(SERVER, place_of(SERVER)).unwrap();
    endpoint
        .reply_wait(vcpu(4, 0), place_of(vcpu(4, 0)))
        .unwrap();
    assert!(endpoint.server_cell_lost(0).is_empty());
    assert!(!endpoint.is_waiting(SERVER));
    // The call goes to the other cell's server, never to the forgotten one.
    assert_eq!(
        endpoint.call(CLIENT, message(0), 0, true),
        Ok(CallOutcome::Deliver { server: vcpu(4, 0) })
    );
}

#[test]
fn losing_a_caller_cell_drops_its_calls_and_replies() {
    let mut endpoint = Endpoint::new();
    endpoint.reply_wait(SERVER, place_of(SERVER)).unwrap();
    endpoint.call(CLIENT_2, message(0), 0, true).unwrap(); // served
    endpoint.call(CLIENT, message(1), 0, true).unwrap(); // queued
    endpoint.call(CLIENT_3, message(2), 0, true).unwrap(); // queued, cell 2
    endpoint.call(vcpu(3, 0), message(3), 0, true).unwrap(); // queued
    endpoint.caller_cell_lost(2);
    let order: Vec<VcpuRef> = endpoint.queued_callers().map(|p| p.caller).collect();
    assert_eq!(order, [CLIENT, vcpu(3, 0)]);
    assert_eq!(endpoint.serving(SERVER), None);
    // The restarted caller may call again at once.
    assert_eq!(
        endpoint.call(CLIENT_2, message(9), 0, true),
        Ok(CallOutcome::Queued)
    );
    // The server's reply goes nowhere; it takes the next call.
    let taken = endpoint.reply_wait(SERVER, place_of(SERVER)).unwrap();
    assert_eq!(taken.reply_to, None);
    assert_eq!(taken.next.map(|p| p.caller), Some(CLIENT));
    endpoint.caller_cell_lost(1);
    assert_eq!(endpoint.reply(SERVER), Ok(None));
    assert_eq!(endpoint.reply(SERVER), Err(IpcError::NotServing));
    // Losing the server cell now fails only callers still waiting.
    let failed = endpoint.server_cell_lost(0);
    assert_eq!(failed.as_slice(), [vcpu(3, 0), CLIENT_2]);
}

#[test]
fn errors_map_to_hypercall_codes() {
    assert_eq!(IpcError::ServerStopped.to_hvc(), HvcError::PeerStopped);
    for error in [
        IpcError::QueueFull,
        IpcError::NotServing,
        IpcError::TooManyServers,
        IpcError::AlreadyBlocked,
        IpcError::ServerStopped,
    ] {
        assert!(!error.to_string().is_empty());
        assert_ne!(error.to_hvc(), HvcError::PeerFault);
    }
    assert_eq!(IpcError::QueueFull.to_hvc(), HvcError::InvalidArgument);
}

/// The reference: the same rules written the obvious way, with growable collections.
#[derive(Default)]
struct Reference {
    queue: VecDeque<Pending>,
    /// Waiting servers, in the order they started waiting.
    waiting: VecDeque<VcpuRef>,
    /// Serving servers and their callers (`None`: the caller's cell stopped).
    serving: HashMap<VcpuRef, Option<VcpuRef>>,
}

impl Reference {
    fn blocked(&self, vcpu: VcpuRef) -> bool {
        self.waiting.contains(&vcpu)
            || self.queue.iter().any(|p| p.caller == vcpu)
            || self.serving.values().any(|c| *c == Some(vcpu))
    }

    fn call(&mut self, pending: Pending, server_running: bool) -> Result<CallOutcome, IpcError> {
        if !server_running {
            return Err(IpcError::ServerStopped);
        }
        if self.blocked(pending.caller) {
            return Err(IpcError::AlreadyBlocked);
        }
        if let Some(server) = self.waiting.pop_front() {
            self.serving.insert(server, Some(pending.caller));
            return Ok(CallOutcome::Deliver { server });
        }
        if self.queue.len() == MAX_QUEUED_CALLERS {
            return Err(IpcError::QueueFull);
        }
        self.queue.push_back(pending);
        Ok(CallOutcome::Queued)
    }

    fn reply_wait(&mut self, server: VcpuRef) -> Result<ReplyWait, IpcError> {
        if self.queue.iter().any(|p| p.caller == server)
            || self.serving.values().any(|c| *c == Some(server))
        {
            return Err(IpcError::AlreadyBlocked);
        }
        if self.waiting.contains(&server) {
            assert!(self.queue.is_empty());
            return Ok(ReplyWait {
                reply_to: None,
                next: None,
            });
        }
        let reply_to = match self.serving.remove(&server) {
            Some(caller) => caller,
            None if self.waiting.len() + self.serving.len() == MAX_SERVERS => {
                return Err(IpcError::TooManyServers)
            }
            None => None,
        };
        let next = self.queue.pop_front();
        match next {
            Some(p) => {
                self.serving.insert(server, Some(p.caller));
            }
            None => self.waiting.push_back(server),
        }
        Ok(ReplyWait { reply_to, next })
    }

    fn reply(&mut self, server: VcpuRef) -> Result<Option<VcpuRef>, IpcError> {
        self.serving.remove(&server).ok_or(IpcError::NotServing)
    }

    fn server_cell_lost(&mut self, cell: u16) -> Vec<VcpuRef> {
        self.caller_cell_lost(cell);
        let mut failed: Vec<VcpuRef> = Vec::new();
        self.waiting.retain(|s| s.cell != cell);
        let lost: Vec<VcpuRef> = self
            .serving
            .keys()
            .filter(|s| s.cell == cell)
            .copied()
            .collect();
        for server in lost {
            failed.extend(self.serving.remove(&server).flatten());
        }
        failed.extend(self.queue.drain(..).map(|p| p.caller));
        failed.sort();
        failed
    }

    fn caller_cell_lost(&mut self, cell: u16) {
        self.queue.retain(|p| p.caller.cell != cell);
        for caller in self.serving.values_mut() {
            if caller.is_some_and(|c| c.cell == cell) {
                *caller = None;
            }
        }
    }
}

/// Cells 0 and 1 serve (16 vCPUs for 8 server slots); every cell calls (48 vCPUs for 32
/// queue places), so every limit is reached now and then.
const CELLS: u64 = 6;
const VCPUS_PER_CELL: u64 = 8;

fn random_vcpu(random: &mut Random, cells: u64) -> VcpuRef {
    vcpu(
        random.below(cells) as u16,
        random.below(VCPUS_PER_CELL) as u8,
    )
}

fn all_vcpus() -> impl Iterator<Item = VcpuRef> {
    (0..CELLS as u16).flat_map(|cell| (0..VCPUS_PER_CELL as u8).map(move |v| vcpu(cell, v)))
}

/// Each call's fate, from the callers' side: every call answered once, by a reply, a
/// failure, or its own cell stopping.
#[derive(Default)]
struct Ledger {
    /// The message number of each caller's outstanding call.
    outstanding: HashMap<VcpuRef, u64>,
    /// Message numbers delivered to a server.
    delivered: HashMap<u64, VcpuRef>,
}

impl Ledger {
    fn answer(&mut self, caller: VcpuRef) {
        assert!(
            self.outstanding.remove(&caller).is_some(),
            "{caller:?} answered without an outstanding call"
        );
    }

    fn deliver(&mut self, number: u64, server: VcpuRef) {
        assert!(
            self.delivered.insert(number, server).is_none(),
            "message {number} delivered twice"
        );
    }
}

fn check_agreement(endpoint: &Endpoint, reference: &Reference) {
    assert_eq!(endpoint.queued(), reference.queue.len());
    let queue: Vec<Pending> = endpoint.queued_callers().copied().collect();
    assert_eq!(queue, Vec::from(reference.queue.clone()));
    assert_eq!(endpoint.waiting_servers(), reference.waiting.len());
    // The ring of waiting servers holds exactly them, longest-waiting first.
    assert_eq!(
        endpoint.waiting_in_order(),
        Vec::from(reference.waiting.clone())
    );
    let served: Vec<VcpuRef> = all_vcpus()
        .filter_map(|server| endpoint.serving(server))
        .collect();
    for vcpu in all_vcpus() {
        assert_eq!(endpoint.is_waiting(vcpu), reference.waiting.contains(&vcpu));
        assert_eq!(
            endpoint.serving(vcpu),
            reference.serving.get(&vcpu).copied().flatten()
        );
        // A caller is in at most one place.
        let places = usize::from(endpoint.is_queued(vcpu))
            + served.iter().filter(|caller| **caller == vcpu).count();
        assert!(places <= 1, "{vcpu:?} is in {places} places");
        if endpoint.is_waiting(vcpu) {
            assert_eq!(places, 0);
        }
    }
    if endpoint.waiting_servers() > 0 {
        assert_eq!(endpoint.queued(), 0, "a server waits while callers queue");
    }
}

#[test]
fn randomized_against_a_reference() {
    let mut random = Random(0x0123_4567_89ab_cdef);
    let mut counts = HashMap::<&str, usize>::new();
    for _ in 0..60 {
        let mut endpoint = Endpoint::new();
        let mut reference = Reference::default();
        let mut ledger = Ledger::default();
        let mut number = 0u64;
        // Some runs call much more than they serve, and some lose cells rarely, so that the
        // queue fills now and then.
        let calls = 7 + random.below(10);
        let losses_one_in = [3, 10, 60][random.below(3) as usize];
        for _ in 0..400 {
            let operation = if random.below(losses_one_in) == 0 {
                13 + random.below(3)
            } else {
                random.below(calls + 6).saturating_sub(calls - 7)
            };
            match operation {
                0..=6 => {
                    number += 1;
                    let call = Pending {
                        caller: random_vcpu(&mut random, CELLS),
                        message: message(number),
                        badge: random.next() as u32,
                    };
                    let running = random.below(20) != 0;
                    // For a caller blocked nowhere, the fast path's O(1) form decides as the
                    // general one.
                    let mut fast = None;
                    if !reference.blocked(call.caller) {
                        let general = endpoint.delivery_for(call.caller);
                        assert_eq!(general, Ok(endpoint.delivery_for_running()));
                        if general.is_ok_and(|server| server.is_some()) {
                            *counts.entry("fast deliver").or_default() += 1;
                        }
                        // The guard finds the same server, with the place its REPLY_WAIT
                        // gave; dropped, it changes nothing.
                        let mut copy = endpoint.clone();
                        let first = copy
                            .first_waiting()
                            .map(|first| (first.server(), first.place()));
                        let expected = endpoint.delivery_for_running().map(|(_, vcpu)| vcpu);
                        assert_eq!(first, expected.map(|vcpu| (vcpu, place_of(vcpu))));
                        assert_eq!(format!("{copy:?}"), format!("{endpoint:?}"));
                        if running {
                            if let Some(first) = copy.first_waiting() {
                                first.deliver(call.caller);
                                fast = Some(copy);
                            }
                        }
                    }
                    let outcome = endpoint.call(call.caller, call.message, call.badge, running);
                    // Committed through the guard, the fast path leaves the endpoint as the
                    // general call does.
                    if let Some(fast) = fast {
                        assert!(matches!(outcome, Ok(CallOutcome::Deliver { .. })));
                        assert_eq!(format!("{fast:?}"), format!("{endpoint:?}"));
                        *counts.entry("guard deliver").or_default() += 1;
                    }
                    assert_eq!(outcome, reference.call(call, running));
                    *counts.entry("call").or_default() += 1;
                    if let Err(error) = outcome {
                        *counts.entry(error_name(error)).or_default() += 1;
                    }
                    if outcome.is_ok() {
                        assert!(ledger.outstanding.insert(call.caller, number).is_none());
                    }
                    if let Ok(CallOutcome::Deliver { server }) = outcome {
                        ledger.deliver(number, server);
                        *counts.entry("deliver").or_default() += 1;
                    }
                }
                7..=11 => {
                    let server = random_vcpu(&mut random, 2);
                    let was_serving = endpoint.serving(server);
                    // The fast path decides exactly as `reply_wait`, or changes nothing.
                    if !reference.blocked(server) {
                        assert_eq!(
                            endpoint.reply_and_wait_for_running(server),
                            endpoint.reply_and_wait_for(server)
                        );
                    }
                    let mut fast = endpoint.clone();
                    let fast_reply = fast.reply_and_wait(server);
                    if fast_reply.is_none() {
                        assert_eq!(format!("{fast:?}"), format!("{endpoint:?}"));
                        // It declines a plain reply (the server serves, nothing is queued)
                        // only when another entry took the last call.
                        let plain = was_serving.is_some() && endpoint.len == 0;
                        if plain && !reference.blocked(server) {
                            let index = endpoint.server_index(server);
                            assert_ne!(index, Some(endpoint.last_served), "declined a plain reply");
                            *counts.entry("reply declined").or_default() += 1;
                        }
                    }
                    let result = endpoint.reply_wait(server, place_of(server));
                    assert_eq!(result, reference.reply_wait(server));
                    if let Some(caller) = fast_reply {
                        let expected = ReplyWait {
                            reply_to: Some(caller),
                            next: None,
                        };
                        assert_eq!(result, Ok(expected));
                        assert_eq!(format!("{fast:?}"), format!("{endpoint:?}"));
                        *counts.entry("fast reply").or_default() += 1;
                    }
                    if let Err(error) = result {
                        *counts.entry(error_name(error)).or_default() += 1;
                    }
                    if let Ok(ReplyWait { reply_to, next }) = result {
                        assert_eq!(reply_to, was_serving, "reply to the wrong caller");
                        if let Some(caller) = reply_to {
                            ledger.answer(caller);
                            *counts.entry("reply").or_default() += 1;
                        }
                        if let Some(taken) = next {
                            ledger.deliver(taken.message[0], server);
                            assert_eq!(
                                ledger.outstanding.get(&taken.caller),
                                Some(&taken.message[0])
                            );
                            *counts.entry("dequeue").or_default() += 1;
                        }
                    }
                }
                12 => {
                    let server = random_vcpu(&mut random, 2);
                    let was_serving = endpoint.serving(server);
                    let result = endpoint.reply(server);
                    assert_eq!(result, reference.reply(server));
                    if let Ok(reply_to) = result {
                        assert_eq!(reply_to, was_serving);
                        if let Some(caller) = reply_to {
                            ledger.answer(caller);
                        }
                    }
                }
                13 => {
                    let cell = random.below(3) as u16;
                    let mut failed: Vec<VcpuRef> =
                        endpoint.server_cell_lost(cell).iter().copied().collect();
                    failed.sort();
                    assert_eq!(failed, reference.server_cell_lost(cell));
                    for caller in failed {
                        ledger.answer(caller);
                        *counts.entry("failed").or_default() += 1;
                    }
                    // The lost cell's own calls vanish with it.
                    ledger.outstanding.retain(|caller, _| caller.cell != cell);
                }
                _ => {
                    let cell = random.below(CELLS) as u16;
                    endpoint.caller_cell_lost(cell);
                    reference.caller_cell_lost(cell);
                    ledger.outstanding.retain(|caller, _| caller.cell != cell);
                }
            }
            check_agreement(&endpoint, &reference);
            // Every outstanding call is queued or served: none is forgotten.
            let served: Vec<VcpuRef> = all_vcpus()
                .filter_map(|server| endpoint.serving(server))
                .collect();
            for caller in ledger.outstanding.keys() {
                assert!(
                    endpoint.is_queued(*caller) || served.contains(caller),
                    "{caller:?} forgotten"
                );
            }
        }
        // Losing both server cells answers every call still outstanding.
        for cell in [0, 1] {
            for caller in &endpoint.server_cell_lost(cell) {
                ledger.answer(*caller);
            }
            ledger.outstanding.retain(|caller, _| caller.cell != cell);
        }
        assert!(
            ledger.outstanding.is_empty(),
            "{:?} wait forever",
            ledger.outstanding
        );
    }
    for outcome in [
        "call",
        "deliver",
        "dequeue",
        "reply",
        "fast reply",
        "reply declined",
        "fast deliver",
        "guard deliver",
        "failed",
        "QueueFull",
        "ServerStopped",
        "TooManyServers",
        "AlreadyBlocked",
    ] {
        assert!(
            counts.get(outcome).copied().unwrap_or(0) > 0,
            "{outcome} never happened: {counts:?}"
        );
    }
}

fn error_name(error: IpcError) -> &'static str {
    match error {
        IpcError::QueueFull => "QueueFull",
        IpcError::ServerStopped => "ServerStopped",
        IpcError::NotServing => "NotServing",
        IpcError::TooManyServers => "TooManyServers",
        IpcError::AlreadyBlocked => "AlreadyBlocked",
    }
}
