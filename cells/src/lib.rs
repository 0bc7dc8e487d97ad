//! Native cells shipped with Cellvisor: one binary per cell under `src/bin/`.
//!
//! Each binary is a `#![no_std]`, `#![no_main]` program built with the SDK for
//! `aarch64-unknown-none` (`--profile firmware`) and linked by `build.rs` with
//! `sdk/cell.ld`. The cells:
//! - `ping`, `pong`: print a numbered line every 100 ms (scheduling and console demo);
//! - `crasher`: stores to an unmapped address to exercise the kernel's fault handling;
//! - `spinner`: never yields, prints `spinner <n>` every 100 ms (a greedy neighbour);
//! - `victim`: keeps a 64 KiB canary and re-checks it every 100 ms (memory isolation);
//! - `hostile`: abuses the hypercall ABI, then attacks memory, devices and the ABI with one
//!   fault per run (fault containment);
//! - `restarter`: prints its run number and faults after 50 ms (restart policy);
//! - `supervisor`: waits for faults of the cells it supervises and restarts them twice;
//! - `rt_periodic`, `rt_forever`: a 1 ms periodic task measuring its wake-up lateness (real
//!   time), for 2000 periods or without end;
//! - `ipc_client`, `ipc_server`: 1000 checked calls of an `echo` endpoint;
//! - `notify_ping`, `notify_pong`: 100 rounds of notification ping-pong;
//! - `ring_producer`, `ring_consumer`: 1 MiB through a shared-memory ring, checksummed;
//!   `ring_vandal`: a producer that writes garbage into the ring's indices;
//! - `denied`: a cell without capabilities trying every capability call (all refused);
//! - `ipc_crash_server`, `ipc_crash_client`: a server that faults on its 5th call, and a
//!   client that sees `PeerFault` and calls the restarted server;
//! - `vconsole`: the device model of a guest's virtio-console (`sdk::virtio`), forwarding
//!   what the guest writes to `modem` and the answers back (`systems/evoke.toml`);
//! - `modem`: answers `AT`-style commands and fills or checksums a shared region;
//! - `bench_boot`, `bench_hvc`, `bench_switch_a`/`bench_switch_b`, `bench_timer`,
//!   `bench_ipc_client`/`bench_ipc_server`, `bench_notify_waiter`/`bench_notify_signaller`,
//!   `bench_ring_producer`/`bench_ring_consumer`: print `BENCH <key>=<integer>` lines for
//!   `xtask bench`.
//!
//! This library holds what several cells share: the periodic printer, the benchmark
//! statistics, and the ring cells' data, checksum and capability slots. Like the SDK, it contains no `unsafe` (the deliberate faults of `crasher`,
//! `restarter` and `hostile` are in their own files). [`median`] and [`print_bench`] use
//! integer operations only (no `core::fmt`), so that cells running with FP/SIMD trapped can
//! use them.
#![no_std]
#![forbid(unsafe_code)]

use sdk::console::Line;
use sdk::notification::Notification;
use sdk::ring::{Doorbells, Ring, RingError};
use sdk::time::{self, Duration};

/// A 1 ms periodic real-time task: `periods` periods on the
/// fixed grid `start + k × 1 ms`; for each, `sleep_until(deadline)`, then lateness = now −
/// deadline. A period is missed when the wake-up came after the next period had begun
/// (lateness ≥ one period); each miss prints `rt: MISSED period <k> (lateness <ticks>
/// ticks)`. Every 500 periods it prints `rt: <k> periods, <missed> missed, max lateness <us>
/// us (<ticks> ticks)`, and after the last `rt: done: <k> periods, ...` in the same form.
/// Lateness is measured on the system counter (16 ns per tick at 62.5 MHz); the
/// microseconds are rounded down.
pub fn periodic_task(periods: u64) {
    const PERIOD: Duration = Duration::from_millis(1);
    const REPORT_EVERY: u64 = 500;
    let frequency = time::frequency();
    let period_ticks = time::ticks_from_duration(PERIOD, frequency).unwrap_or(u64::MAX);
    let mut missed: u64 = 0;
    let mut max_lateness_ticks: u64 = 0;
    let mut deadline = time::now();
    let mut period: u64 = 0;
    while period < periods {
        period += 1;
        deadline += PERIOD;
        time::sleep_until(deadline);
        let lateness = time::now().ticks().saturating_sub(deadline.ticks());
        if lateness >= period_ticks {
            missed += 1;
            sdk::println!("rt: MISSED period {period} (lateness {lateness} ticks)");
        }
        max_lateness_ticks = max_lateness_ticks.max(lateness);
        let micros = time::duration_from_ticks(max_lateness_ticks, frequency).as_micros();
        if period == periods {
            sdk::println!(
                "rt: done: {period} periods, {missed} missed, max lateness {micros} us \
                 ({max_lateness_ticks} ticks)"
            );
        } else if period.is_multiple_of(REPORT_EVERY) {
            sdk::println!(
                "rt: {period} periods, {missed} missed, max lateness {micros} us \
                 ({max_lateness_ticks} ticks)"
            );
        }
    }
}

/// Prints `<label> <n>` for n = 1, 2, 3, ... once per `period` of counter time, forever.
///
/// First prints `<label>: cell <cell> vcpu <vcpu> on core <core>`. The deadlines are
/// `start + n × period`, so printing time does not accumulate as drift; between lines the
/// cell sleeps (see [`time::sleep_until`]).
pub fn tick_forever(label: &str, period: Duration) -> ! {
    let info = sdk::hvc::vcpu_info();
    sdk::println!(
        "{label}: cell {} vcpu {} on core {}",
        info.cell,
        info.vcpu,
        info.core
    );
    let mut deadline = time::now();
    let mut count: u64 = 0;
    loop {
        deadline += period;
        time::sleep_until(deadline);
        count += 1;
        sdk::println!("{label} {count}");
    }
}

/// Sorts `samples` in place (insertion sort: integer compares and moves only) and returns the
/// median: the middle element, or the lower of the two middle elements for an even count.
/// Returns 0 for no samples.
pub fn median(samples: &mut [u64]) -> u64 {
    for sorted in 1..samples.len() {
        let mut index = sorted;
        while index > 0 && samples[index - 1] > samples[index] {
            samples.swap(index - 1, index);
            index -= 1;
        }
    }
    match samples.len() {
        0 => 0,
        length => samples[(length - 1) / 2],
    }
}

/// Prints `BENCH <key>=<value>`, the line `xtask bench` parses.
pub fn print_bench(key: &str, value: u64) {
    Line::new()
        .text("BENCH ")
        .text(key)
        .text("=")
        .decimal(value)
        .print();
}

/// Fills `samples` with the cycle-counter interval around each run of `operation` (the two
/// counter reads included: subtract [`cycle_counter_read_cost`]).
pub fn measure(samples: &mut [u64], mut operation: impl FnMut()) {
    for sample in samples.iter_mut() {
        let before = sdk::pmu::cycles();
        operation();
        let after = sdk::pmu::cycles();
        *sample = after.wrapping_sub(before);
    }
}

/// Measures the cost of reading the cycle counter twice in a row (`isb; mrs` each): the
/// median over `samples.len()` tries, to subtract from intervals measured between two reads.
pub fn cycle_counter_read_cost(samples: &mut [u64]) -> u64 {
    measure(samples, || {});
    median(samples)
}

/// Capability slot of the ring's shared memory in the ring cells (`caps = ["ring",
/// "data-ready", "space-free"]`).
pub const RING_MEMORY_SLOT: u32 = 0;

/// The ring cells' doorbells: `data-ready` in slot 1, `space-free` in slot 2.
pub const RING_DOORBELLS: Doorbells = Doorbells {
    data_ready: Notification::new(1),
    space_free: Notification::new(2),
};

/// Why a ring cell could not open its ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Slot [`RING_MEMORY_SLOT`] is not a usable shared memory capability.
    Capability(sdk::caps::CapabilityError),
    /// The region cannot carry a ring.
    Ring(RingError),
}

/// Lays a ring of `u64` over the shared memory in slot [`RING_MEMORY_SLOT`].
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub fn open_ring() -> Result<Ring<'static, u64>, OpenError> {
    let memory = sdk::caps::memory(RING_MEMORY_SLOT).map_err(OpenError::Capability)?;
    Ring::from_memory(&memory).map_err(OpenError::Ring)
}

/// The ring cells' test data: a SplitMix64 sequence from a fixed seed (the same on both
/// sides, and on every run).
pub struct TestData(u64);

impl TestData {
    /// The sequence from its start.
    pub const fn new() -> Self {
        Self(0x5EED_0FC0_FFEE)
    }

    /// The next item.
    pub fn next_item(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Default for TestData {
    fn default() -> Self {
        Self::new()
    }
}

/// A 64-bit FNV-1a checksum over the little-endian bytes of words.
pub struct Checksum(u64);

impl Checksum {
    /// The checksum of nothing (the FNV offset basis).
    pub const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// Adds the 8 bytes of `word`, least significant first.
    pub fn add(&mut self, word: u64) {
        for byte in word.to_le_bytes() {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The checksum so far.
    pub const fn value(&self) -> u64 {
        self.0
    }
}

impl Default for Checksum {
    fn default() -> Self {
        Self::new()
    }
}

/// The chunk protocol between `vconsole` and `modem`: a message carries up to
/// [`CHUNK_BYTES`] bytes, word 0 = the count, byte *k* in word 1 + *k* / 8 at bits
/// 8 × (*k* mod 8).
pub mod chunk {
    use sdk::ipc::Message;

    /// Most bytes one message carries.
    pub const CHUNK_BYTES: usize = 24;

    /// A message carrying `bytes` (at most [`CHUNK_BYTES`]; more are not sent).
    pub fn encode(bytes: &[u8]) -> Message {
        let count = bytes.len().min(CHUNK_BYTES);
        let mut message = [count as u64, 0, 0, 0];
        for (index, &byte) in bytes.iter().take(count).enumerate() {
            if let Some(word) = message.get_mut(1 + index / 8) {
                *word |= u64::from(byte) << (8 * (index % 8));
            }
        }
        message
    }

    /// The bytes a message carries and their count (a count above [`CHUNK_BYTES`] is
    /// taken as [`CHUNK_BYTES`]).
    pub fn decode(message: Message) -> ([u8; CHUNK_BYTES], usize) {
        let [count, words @ ..] = message;
        let count = usize::try_from(count).map_or(CHUNK_BYTES, |count| count.min(CHUNK_BYTES));
        let mut bytes = [0; CHUNK_BYTES];
        for (index, byte) in bytes.iter_mut().enumerate().take(count) {
            *byte = words
                .get(index / 8)
                .map_or(0, |word| (word >> (8 * (index % 8))) as u8);
        }
        (bytes, count)
    }
}

/// A kernel error's name, for messages.
pub fn hvc_error_name(error: sdk::hvc::HvcError) -> &'static str {
    use sdk::hvc::HvcError;
    match error {
        HvcError::UnknownCall => "UnknownCall",
        HvcError::InvalidAddress => "InvalidAddress",
        HvcError::InvalidLength => "InvalidLength",
        HvcError::Denied => "Denied",
        HvcError::InvalidArgument => "InvalidArgument",
        HvcError::PeerFault => "PeerFault",
        HvcError::PeerStopped => "PeerStopped",
        HvcError::InvalidCapability => "InvalidCapability",
    }
}

/// Why a memory capability was not usable, for messages.
pub fn capability_error_name(error: sdk::caps::CapabilityError) -> &'static str {
    match error {
        sdk::caps::CapabilityError::Refused(error) => hvc_error_name(error),
        sdk::caps::CapabilityError::WrongKind(_) => "not a shared memory capability",
    }
}
