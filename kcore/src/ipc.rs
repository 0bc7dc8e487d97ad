//! IPC endpoints: who calls, who serves, and who gets which reply.
//!
//! An [`Endpoint`] is the kernel object behind an endpoint capability. Callers (`CALL`) send
//! a [`Message`] and block until the reply; servers (`REPLY_WAIT`) reply to the call they
//! serve and block until the next one. The kernel calls these methods under its lock; they
//! only decide who is delivered to, queued, replied to or failed, and the kernel moves the
//! registers and blocks or wakes the vCPUs.
//!
//! Each server vCPU known to the endpoint (at most [`MAX_SERVERS`]) is in one state:
//! *waiting* (blocked in `REPLY_WAIT` with no call to take), *serving* a caller (running,
//! the caller blocked until the reply), or *serving a lost caller* (its caller's cell stopped:
//! the reply goes nowhere). A server that replies without waiting ([`Endpoint::reply`]) is
//! forgotten. Callers that find no waiting server wait in a FIFO queue of at most
//! [`MAX_QUEUED_CALLERS`].
//!
//! Invariants, checked against a reference model by a randomized test:
//! - queued callers are served first in, first out; waiting servers take calls in the order
//!   they started waiting (a ring of their entries keeps that order, so the longest-waiting
//!   server is found without a scan);
//! - a caller is in at most one place: queued, or being served by exactly one server; a vCPU
//!   blocked here (queued, served or waiting) cannot call or wait again
//!   ([`IpcError::AlreadyBlocked`]);
//! - a call is delivered only to a server of this endpoint that is waiting, and a waiting
//!   server exists only while the queue is empty;
//! - a reply goes only to the caller that server is serving, and at most once;
//! - a server that waits again without a call in between just keeps waiting (and keeps its
//!   place among the waiting servers);
//! - after [`Endpoint::server_cell_lost`] nobody waits forever: every caller that cell was
//!   serving and every queued caller is returned, to be failed with
//!   [`HvcError::PeerFault`]. An endpoint is served by one cell in the plan; if several cells
//!   held the serve right, losing one would still fail the whole queue (the callers may
//!   call again). Calls made by the lost cell itself are dropped, not returned (its vCPUs
//!   are stopping), wherever they wait.
//!
//! The kernel's fast path uses the O(1) forms [`Endpoint::first_waiting`] and
//! [`Endpoint::reply_and_wait_for_running`]: the vCPU that makes a call is running, so it is
//! blocked nowhere, and the general forms' scans that prove it is not blocked here are not
//! needed. The randomized test checks that for such a vCPU both forms decide the same.
//! A call commits through the guard [`Endpoint::first_waiting`] returns: it holds the
//! endpoint borrowed between the decision and the commit, so the commit repeats none of the
//! decision's checks (the test checks it leaves the endpoint as the general call does).
//!
//! Nothing here panics, whatever the vCPU references or the order of calls.

use abi::hvc::{HvcError, MESSAGE_WORDS};
#[cfg(test)]
use core::fmt;

/// A vCPU anywhere in the system: its cell's index in the boot plan and its index in the cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VcpuRef {
    /// Index of the cell in the boot plan.
    pub cell: u16,
    /// Index of the vCPU in its cell.
    pub vcpu: u8,
}

impl VcpuRef {
    /// vCPU `vcpu` of cell `cell` (a boot-plan index, below `abi::plan::MAX_CELLS`).
    pub const fn new(cell: usize, vcpu: u8) -> Self {
        VcpuRef {
            cell: cell as u16,
            vcpu,
        }
    }
}

/// Most callers one endpoint queues while all its servers are busy.
pub const MAX_QUEUED_CALLERS: usize = 32;
/// Most server vCPUs one endpoint knows (waiting or serving) at a time.
pub const MAX_SERVERS: usize = 8;
/// Most callers [`Endpoint::server_cell_lost`] can return: every queued and every served one.
pub const MAX_FAILED_CALLERS: usize = MAX_QUEUED_CALLERS + MAX_SERVERS;

/// The words of a call or a reply (`x2..=x5` of `CALL` and `REPLY_WAIT`).
pub type Message = [u64; MESSAGE_WORDS];

/// A call not yet taken by a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Who called (blocked until the reply).
    pub caller: VcpuRef,
    /// The message words.
    pub message: Message,
    /// The badge of the caller's capability, given to the server in `x1`.
    pub badge: u32,
}

impl Pending {
    const EMPTY: Pending = Pending {
        caller: VcpuRef { cell: 0, vcpu: 0 },
        message: [0; MESSAGE_WORDS],
        badge: 0,
    };
}

/// What [`Endpoint::call`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// `server` was waiting: the kernel copies the caller's message and badge into it and
    /// runs it (directly, if on the same core). The caller blocks; it is now served by
    /// `server`.
    Deliver {
        /// The server that takes the call.
        server: VcpuRef,
    },
    /// No server was waiting: the caller blocks in the queue.
    Queued,
}

/// What [`Endpoint::reply_wait`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyWait {
    /// The caller the server was serving, to be woken with the reply words; `None` if it
    /// served nobody or its caller's cell stopped.
    pub reply_to: Option<VcpuRef>,
    /// The next call, taken from the queue: the server gets its badge and words and keeps
    /// running. `None`: the server blocks, recorded as waiting.
    pub next: Option<Pending>,
}

/// Why an endpoint operation was refused. None of them changes the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpcError {
    /// [`MAX_QUEUED_CALLERS`] callers are already queued.
    QueueFull,
    /// The server's cell is stopped.
    ServerStopped,
    /// The vCPU replied without serving a call.
    NotServing,
    /// [`MAX_SERVERS`] other server vCPUs are already waiting or serving.
    TooManyServers,
    /// The vCPU is already blocked on this endpoint (queued, served or waiting): a kernel
    /// that only lets running vCPUs make hypercalls never sees this.
    AlreadyBlocked,
}

impl IpcError {
    /// The hypercall error code: [`HvcError::PeerStopped`] for a stopped server,
    /// [`HvcError::InvalidArgument`] for the limits and the misuses.
    pub const fn to_hvc(self) -> HvcError {
        match self {
            Self::ServerStopped => HvcError::PeerStopped,
            Self::QueueFull | Self::NotServing | Self::TooManyServers | Self::AlreadyBlocked => {
                HvcError::InvalidArgument
            }
        }
    }
}

// The kernel returns these as hypercall codes and never renders them: the text is
// for the tests.
#[cfg(test)]
impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::QueueFull => "too many callers are queued on the endpoint",
            Self::ServerStopped => "the endpoint's server cell is stopped",
            Self::NotServing => "the vCPU serves no call on the endpoint",
            Self::TooManyServers => "too many server vCPUs on the endpoint",
            Self::AlreadyBlocked => "the vCPU is already blocked on the endpoint",
        };
        f.write_str(text)
    }
}

/// The callers [`Endpoint::server_cell_lost`] returns, to be failed with
/// [`HvcError::PeerFault`]: served callers first (in server-table order), then the queue in
/// FIFO order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailedCallers {
    callers: [VcpuRef; MAX_FAILED_CALLERS],
    len: usize,
}

impl FailedCallers {
    const fn new() -> Self {
        FailedCallers {
            callers: [VcpuRef { cell: 0, vcpu: 0 }; MAX_FAILED_CALLERS],
            len: 0,
        }
    }

    fn push(&mut self, caller: VcpuRef) {
        if let Some(slot) = self.callers.get_mut(self.len) {
            *slot = caller;
            self.len += 1;
        }
    }

    /// The callers.
    pub fn as_slice(&self) -> &[VcpuRef] {
        self.callers.get(..self.len).unwrap_or(&[])
    }

    /// The callers, one by one.
    pub fn iter(&self) -> core::slice::Iter<'_, VcpuRef> {
        self.as_slice().iter()
    }

    /// Number of callers.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no caller must be failed.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<'a> IntoIterator for &'a FailedCallers {
    type Item = &'a VcpuRef;
    type IntoIter = core::slice::Iter<'a, VcpuRef>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerState {
    /// Blocked in `REPLY_WAIT`; [`Endpoint`]'s `waiting` ring orders the waiting servers.
    Waiting,
    /// Running with `caller` blocked until its reply.
    Serving { caller: VcpuRef },
    /// Running with a call whose caller's cell stopped: the reply goes nowhere.
    ServingLostCaller,
}

/// A server's entry in an endpoint, as [`Endpoint::reply_and_wait_for_running`] names it
/// for the step that commits its decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerIndex(usize);

#[derive(Clone, Copy, Debug)]
struct Server {
    vcpu: VcpuRef,
    /// Where the kernel runs `vcpu`, as its REPLY_WAIT said (opaque here: the kernel's place
    /// word, fixed for a vCPU), so that a call finds the server without looking it up.
    place: u16,
    state: ServerState,
}

/// One endpoint's queued calls and servers. See the module documentation.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Ring of queued calls: `len` entries from `head`, oldest first.
    queue: [Pending; MAX_QUEUED_CALLERS],
    head: usize,
    len: usize,
    servers: [Option<Server>; MAX_SERVERS],
    /// Entries of `servers` from this index on are all `None` (scans stop here).
    known: usize,
    /// Ring of the indices in `servers` of the waiting servers: `waiting_len` entries from
    /// `waiting_head`, longest-waiting first. Exactly the entries in state `Waiting` are in
    /// it, each once.
    waiting: [u8; MAX_SERVERS],
    waiting_head: usize,
    waiting_len: usize,
    /// The entry of `servers` that took the last call delivered from a caller: where
    /// [`Endpoint::reply_and_wait_for_running`] looks first.
    last_served: usize,
}

/// An endpoint's longest-waiting server, from [`Endpoint::first_waiting`]: it is the head
/// of the waiting ring and in state `Waiting`, and the borrow keeps it so.
pub struct FirstWaiting<'a> {
    endpoint: &'a mut Endpoint,
    index: usize,
    server: VcpuRef,
    place: u16,
}

impl FirstWaiting<'_> {
    /// The server's vCPU.
    #[inline(always)]
    pub fn server(&self) -> VcpuRef {
        self.server
    }

    /// Where the server runs, as its [`Endpoint::reply_wait`] gave it.
    #[inline(always)]
    pub fn place(&self) -> u16 {
        self.place
    }

    /// Delivers `caller`'s call to it: it serves `caller` and leaves the head of the
    /// waiting ring (which holds at least this server).
    #[inline(always)]
    pub fn deliver(self, caller: VcpuRef) {
        let endpoint = self.endpoint;
        if let Some(known) = endpoint.servers[self.index].as_mut() {
            known.state = ServerState::Serving { caller };
        }
        endpoint.waiting_head = (endpoint.waiting_head + 1) % MAX_SERVERS;
        endpoint.waiting_len -= 1;
        endpoint.last_served = self.index;
    }
}

impl Default for Endpoint {
    fn default() -> Self {
        Self::new()
    }
}

impl Endpoint {
    /// No caller, no server.
    pub const fn new() -> Self {
        Endpoint {
            queue: [Pending::EMPTY; MAX_QUEUED_CALLERS],
            head: 0,
            len: 0,
            servers: [None; MAX_SERVERS],
            known: 0,
            waiting: [0; MAX_SERVERS],
            waiting_head: 0,
            waiting_len: 0,
            last_served: 0,
        }
    }

    /// `caller` calls with `message` and the `badge` of its capability. `server_running`
    /// says whether the endpoint's server cell is running; if not, the call fails at once.
    pub fn call(
        &mut self,
        caller: VcpuRef,
        message: Message,
        badge: u32,
        server_running: bool,
    ) -> Result<CallOutcome, IpcError> {
        if !server_running {
            return Err(IpcError::ServerStopped);
        }
        if self.blocked_here(caller) {
            return Err(IpcError::AlreadyBlocked);
        }
        if let Some(first) = self.first_waiting() {
            let server = first.server();
            first.deliver(caller);
            return Ok(CallOutcome::Deliver { server });
        }
        if self.len >= MAX_QUEUED_CALLERS {
            return Err(IpcError::QueueFull);
        }
        let tail = (self.head + self.len) % MAX_QUEUED_CALLERS;
        self.queue[tail] = Pending {
            caller,
            message,
            badge,
        };
        self.len += 1;
        Ok(CallOutcome::Queued)
    }

    /// Whether `caller` is blocked here already (waiting as a server, served or queued):
    /// then it may not call.
    fn blocked_here(&self, caller: VcpuRef) -> bool {
        let blocked = |known: &Server| match known.state {
            ServerState::Waiting => known.vcpu == caller,
            ServerState::Serving { caller: served } => served == caller,
            ServerState::ServingLostCaller => false,
        };
        self.known_servers().iter().flatten().any(blocked) || self.is_queued(caller)
    }

    /// Decides, without changing anything, what [`call`](Self::call) by `caller` would do
    /// (its server running): `Ok(Some((index, server)))` deliver to that waiting server,
    /// `Ok(None)` queue the call, or refuse. (The tests' reference for the fast path's form.)
    #[cfg(test)]
    pub fn delivery_for(
        &self,
        caller: VcpuRef,
    ) -> Result<Option<(ServerIndex, VcpuRef)>, IpcError> {
        if self.blocked_here(caller) {
            return Err(IpcError::AlreadyBlocked);
        }
        Ok(self.delivery_for_running())
    }

    /// [`delivery_for`](Self::delivery_for) for a caller that is running, and so blocked
    /// nowhere (the kernel's fast path, for the vCPU that made the call): the
    /// longest-waiting server, found in O(1). For a caller blocked here the answer would
    /// not be `delivery_for`'s refusal; nothing else differs. (The tests' view of
    /// [`first_waiting`](Self::first_waiting)'s choice.)
    #[cfg(test)]
    pub fn delivery_for_running(&self) -> Option<(ServerIndex, VcpuRef)> {
        if self.waiting_len == 0 {
            return None;
        }
        let index = self.waiting[self.waiting_head % MAX_SERVERS] as usize;
        let server = self.servers.get(index)?.as_ref()?;
        Some((ServerIndex(index), server.vcpu))
    }

    /// The longest-waiting server, found in O(1), held for a delivery: the endpoint stays
    /// borrowed until [`FirstWaiting::deliver`] commits the call (or the guard is dropped,
    /// changing nothing), so the commit repeats none of the checks made to find it. For a
    /// caller that runs (blocked nowhere) this is all [`call`](Self::call) decides.
    #[inline(always)]
    pub fn first_waiting(&mut self) -> Option<FirstWaiting<'_>> {
        if self.waiting_len == 0 {
            return None;
        }
        let index = self.waiting[self.waiting_head % MAX_SERVERS] as usize % MAX_SERVERS;
        let Server { vcpu, place, .. } = self.servers[index]?;
        Some(FirstWaiting {
            endpoint: self,
            index,
            server: vcpu,
            place,
        })
    }

    /// `server` (which the kernel runs at `place`) replies to the caller it serves (if any)
    /// and takes the next queued call, or blocks waiting for one if the queue is empty.
    pub fn reply_wait(&mut self, server: VcpuRef, place: u16) -> Result<ReplyWait, IpcError> {
        if self.is_queued(server) || self.server_of(server).is_some() {
            return Err(IpcError::AlreadyBlocked);
        }
        let index = match self.server_index(server) {
            Some(index) => index,
            None => self
                .servers
                .iter()
                .position(Option::is_none)
                .ok_or(IpcError::TooManyServers)?,
        };
        let previous = self.servers[index].map(|known| known.state);
        let reply_to = match previous {
            Some(ServerState::Serving { caller }) => Some(caller),
            _ => None,
        };
        let next = self.pop();
        let state = match next {
            Some(pending) => ServerState::Serving {
                caller: pending.caller,
            },
            None => ServerState::Waiting,
        };
        self.servers[index] = Some(Server {
            vcpu: server,
            place,
            state,
        });
        self.known = self.known.max(index + 1);
        let was_waiting = previous == Some(ServerState::Waiting);
        match state {
            // A server that waits again keeps its place among the waiting servers.
            ServerState::Waiting if !was_waiting => self.start_waiting(index),
            ServerState::Waiting => {}
            _ if was_waiting => self.remove_waiting(index),
            _ => {}
        }
        Ok(ReplyWait { reply_to, next })
    }

    /// `reply_and_wait_for` and `wait_after_reply` in one (for the tests).
    #[cfg(test)]
    pub fn reply_and_wait(&mut self, server: VcpuRef) -> Option<VcpuRef> {
        let (index, caller) = self.reply_and_wait_for(server)?;
        self.wait_after_reply(index);
        Some(caller)
    }

    /// The common case of [`reply_wait`](Self::reply_wait) by `server`, decided without
    /// changing anything: it serves a caller, took the last call delivered here, and no
    /// call is queued. Returns its entry and the caller to reply to;
    /// [`wait_after_reply`](Self::wait_after_reply) then makes it wait, exactly as
    /// `reply_wait` would. (The kernel uses the form for a running server; the tests check
    /// the two agree.)
    #[cfg(test)]
    pub fn reply_and_wait_for(&self, server: VcpuRef) -> Option<(ServerIndex, VcpuRef)> {
        // `reply_wait` refuses a server that is itself being served here.
        if self.server_of(server).is_some() {
            return None;
        }
        self.reply_and_wait_for_running(server)
    }

    /// `reply_and_wait_for` (the tests' form) for a server that is running, and
    /// so not itself blocked here as a caller (the kernel's fast path, for the vCPU that
    /// replies): only the entry that took the last call is looked at, so a server that
    /// replies to the call it was just given is found in O(1) and without a call; any other
    /// reply is declined (the general `reply_wait` takes it).
    #[inline(always)]
    pub fn reply_and_wait_for_running(&self, server: VcpuRef) -> Option<(ServerIndex, VcpuRef)> {
        if self.len != 0 {
            return None;
        }
        let serving = |index: usize| match self.servers.get(index) {
            Some(Some(Server {
                vcpu,
                state: ServerState::Serving { caller },
                ..
            })) if *vcpu == server => Some((ServerIndex(index), *caller)),
            _ => None,
        };
        serving(self.last_served)
    }

    /// The server that `reply_and_wait_for` (the tests' form) returned (nothing
    /// else changed in between) replied: it waits for the next call.
    #[inline(always)]
    pub fn wait_after_reply(&mut self, server: ServerIndex) {
        if let Some(known) = self.servers.get_mut(server.0).and_then(Option::as_mut) {
            if known.state != ServerState::Waiting {
                known.state = ServerState::Waiting;
                self.start_waiting(server.0);
            }
        }
    }

    /// `server` replies without waiting for the next call: returns the caller to wake with
    /// the reply (`None` if its cell stopped meanwhile), and the endpoint forgets `server`.
    pub fn reply(&mut self, server: VcpuRef) -> Result<Option<VcpuRef>, IpcError> {
        let slot = self
            .server_index(server)
            .map(|index| &mut self.servers[index])
            .ok_or(IpcError::NotServing)?;
        let reply_to = match slot.map(|known| known.state) {
            Some(ServerState::Serving { caller }) => Some(caller),
            Some(ServerState::ServingLostCaller) => None,
            Some(ServerState::Waiting) | None => return Err(IpcError::NotServing),
        };
        *slot = None;
        Ok(reply_to)
    }

    /// The server cell `cell` faulted, stopped or restarted: its servers are forgotten, and
    /// the callers they served and every queued caller are returned, to be failed with
    /// [`HvcError::PeerFault`]. The vCPUs of `cell` itself also stop being callers, as by
    /// [`caller_cell_lost`](Self::caller_cell_lost), and are not returned.
    pub fn server_cell_lost(&mut self, cell: u16) -> FailedCallers {
        self.caller_cell_lost(cell);
        let mut failed = FailedCallers::new();
        for index in 0..self.known.min(MAX_SERVERS) {
            let Some(server) = self.servers[index].filter(|server| server.vcpu.cell == cell) else {
                continue;
            };
            match server.state {
                ServerState::Serving { caller } => failed.push(caller),
                ServerState::Waiting => self.remove_waiting(index),
                ServerState::ServingLostCaller => {}
            }
            self.servers[index] = None;
        }
        while let Some(pending) = self.pop() {
            failed.push(pending.caller);
        }
        failed
    }

    /// The caller cell `cell` stopped: its vCPUs leave the queue (the others keep their
    /// order), and the calls of its vCPUs being served will have their replies dropped.
    pub fn caller_cell_lost(&mut self, cell: u16) {
        let mut kept = 0;
        for position in 0..self.len {
            let pending = self.queue[(self.head + position) % MAX_QUEUED_CALLERS];
            if pending.caller.cell != cell {
                self.queue[(self.head + kept) % MAX_QUEUED_CALLERS] = pending;
                kept += 1;
            }
        }
        self.len = kept;
        for server in self.known_servers_mut().iter_mut().flatten() {
            if matches!(server.state, ServerState::Serving { caller } if caller.cell == cell) {
                server.state = ServerState::ServingLostCaller;
            }
        }
    }

    /// Whether `server` is blocked waiting for a call on this endpoint.
    #[cfg(test)]
    pub fn is_waiting(&self, server: VcpuRef) -> bool {
        self.known_servers()
            .iter()
            .flatten()
            .any(|known| known.vcpu == server && known.state == ServerState::Waiting)
    }

    /// The waiting servers, longest-waiting first, as the `waiting` ring orders them.
    #[cfg(test)]
    pub fn waiting_in_order(&self) -> std::vec::Vec<VcpuRef> {
        (0..self.waiting_len)
            .filter_map(|position| {
                let index = self.waiting[(self.waiting_head + position) % MAX_SERVERS];
                self.servers[index as usize].map(|known| known.vcpu)
            })
            .collect()
    }

    /// The caller `server` is serving (`None` if none, or if that caller's cell stopped).
    #[cfg(test)]
    pub fn serving(&self, server: VcpuRef) -> Option<VcpuRef> {
        self.known_servers()
            .iter()
            .flatten()
            .find(|known| known.vcpu == server)
            .and_then(|known| match known.state {
                ServerState::Serving { caller } => Some(caller),
                _ => None,
            })
    }

    /// Whether `caller` is queued.
    pub fn is_queued(&self, caller: VcpuRef) -> bool {
        self.queued_callers()
            .any(|pending| pending.caller == caller)
    }

    /// Number of queued callers.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.len
    }

    /// Number of servers blocked waiting.
    #[cfg(test)]
    pub fn waiting_servers(&self) -> usize {
        self.known_servers()
            .iter()
            .flatten()
            .filter(|known| known.state == ServerState::Waiting)
            .count()
    }

    /// The queued calls, oldest first.
    pub fn queued_callers(&self) -> impl Iterator<Item = &Pending> + '_ {
        (0..self.len).map(move |position| &self.queue[(self.head + position) % MAX_QUEUED_CALLERS])
    }

    fn server_index(&self, vcpu: VcpuRef) -> Option<usize> {
        self.known_servers()
            .iter()
            .position(|slot| slot.is_some_and(|known| known.vcpu == vcpu))
    }

    /// The server serving `caller`, if any.
    fn server_of(&self, caller: VcpuRef) -> Option<VcpuRef> {
        self.known_servers()
            .iter()
            .flatten()
            .find(|known| known.state == ServerState::Serving { caller })
            .map(|known| known.vcpu)
    }

    fn known_servers(&self) -> &[Option<Server>] {
        &self.servers[..self.known.min(MAX_SERVERS)]
    }

    fn known_servers_mut(&mut self) -> &mut [Option<Server>] {
        let known = self.known.min(MAX_SERVERS);
        &mut self.servers[..known]
    }

    /// Entry `index` (not waiting until now) starts waiting: it goes to the back of the
    /// waiting servers.
    fn start_waiting(&mut self, index: usize) {
        if self.waiting_len < MAX_SERVERS {
            self.waiting[(self.waiting_head + self.waiting_len) % MAX_SERVERS] = index as u8;
            self.waiting_len += 1;
        }
    }

    /// Entry `index` leaves the waiting servers wherever it is: the others close up in
    /// their order. (Out of line: only a lost cell's servers leave it this way; a call
    /// takes the head through [`FirstWaiting::deliver`].)
    #[inline(never)]
    fn remove_waiting(&mut self, index: usize) {
        let len = self.waiting_len.min(MAX_SERVERS);
        let mut kept = 0;
        for position in 0..len {
            let entry = self.waiting[(self.waiting_head + position) % MAX_SERVERS];
            if entry as usize != index {
                self.waiting[(self.waiting_head + kept) % MAX_SERVERS] = entry;
                kept += 1;
            }
        }
        self.waiting_len = kept;
    }

    fn pop(&mut self) -> Option<Pending> {
        if self.len == 0 {
            return None;
        }
        let pending = self.queue[self.head];
        self.head = (self.head + 1) % MAX_QUEUED_CALLERS;
        self.len -= 1;
        Some(pending)
    }
}

#[cfg(test)]
mod tests;
