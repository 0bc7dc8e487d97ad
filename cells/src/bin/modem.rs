//! `modem`: a native cell that answers AT-style command lines, reached through `vconsole`
//! from the guest's virtio console, and fills or checksums a memory region it shares with
//! the guest.
//!
//! Capabilities: slot 0 = the `modem` endpoint it serves, slot 1 = `modem-shared`, a shared
//! memory region (read-write; also mapped into the guest).
//!
//! Chunk protocol on the endpoint (the caller is `vconsole`): a request's word 0 is the
//! number *n* of input bytes (0 to 24) and words 1 to 3 carry them little-endian, byte *k*
//! in word 1 + *k* / 8 at bits 8 × (*k* mod 8); the reply carries up to 24 bytes of output
//! the same way. A request with *n* > 24 is ignored (its reply still carries output). The
//! caller keeps calling until it has sent all its input and a reply carried no byte.
//!
//! Input accumulates into a line of at most [`LINE_CAPACITY`] bytes (`\r` is ignored); at
//! `\n` the line runs as a command and its answer lines, each ending `\n`, join a bounded
//! output queue ([`OUTPUT_CAPACITY`] bytes; an answer line that does not fit is dropped and
//! counted). An empty line is ignored. Commands (upper case, decimal arguments separated
//! by spaces):
//! - `AT` → `OK`;
//! - `ATI` → `CELLVISOR MODEM 1`, `OK`;
//! - `FILL <seed> <count>` → sets 32-bit word *i* (little-endian) of the region, for *i* in
//!   0..count, to (seed × 2654435761 + *i* × 40503) mod 2³², then answers `SUM <c>`, `OK`
//!   with the checksum *c* of the values written (as `SUM` defines it); a count beyond the
//!   region's size / 4 → `ERROR count` (a region mapped without the write right →
//!   `ERROR read-only region`);
//! - `SUM <count>` → `SUM <c>`, `OK`, where *c* = (*c* × 31 + *w*) mod 2³² over the first
//!   *count* words *w* of the region, from *c* = 0; a count beyond the region → `ERROR
//!   count`;
//! - a line longer than [`LINE_CAPACITY`] → `ERROR line too long`;
//! - anything else (including arguments that are not decimal numbers that fit 64 bits) →
//!   `ERROR unknown command`.
//!
//! Prints `modem: ready (shared <size> bytes)` at start and one line per command, such as
//! `modem: AT`, `modem: FILL 7 1024 -> SUM 123`, `modem: SUM 1024 -> SUM 123` or
//! `modem: ERROR unknown command`. If the region is missing, prints `modem: no shared
//! memory (<error>)` and exits with 1; if the kernel refuses to let it serve, prints
//! `modem: refused (<error>)` and exits with 1.
//!
//! The region is accessed only through atomics ([`SharedMemory::words`],
//! [`SharedMemory::bytes`]); nothing here can panic on any input. No `core::fmt` is used
//! (output goes through [`Line`]).
#![no_std]
#![no_main]

use cellvisor_cells::chunk::{decode, encode, CHUNK_BYTES};
use cellvisor_cells::{capability_error_name, hvc_error_name};
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use sdk::abi::plan::Rights;
use sdk::caps::{self, SharedMemory};
use sdk::console::Line;
use sdk::ipc::{Message, Server};
use sdk::virtio::console::ByteQueue;

/// The `modem` endpoint: the first name of this cell's `caps`.
const SERVICE: Server = Server::new(0);
/// The slot of the `modem-shared` region.
const SHARED: u32 = 1;
/// Longest command line, in bytes (without its end).
const LINE_CAPACITY: usize = 128;
/// Bytes of answers waiting for the caller.
const OUTPUT_CAPACITY: usize = 2048;

sdk::entry!(main);

fn main() {
    let region = match caps::memory(SHARED) {
        Ok(region) => region,
        Err(error) => {
            Line::new()
                .text("modem: no shared memory (")
                .text(capability_error_name(error))
                .text(")")
                .print();
            sdk::hvc::exit(1);
        }
    };
    Line::new()
        .text("modem: ready (shared ")
        .decimal(region.size())
        .text(" bytes)")
        .print();
    let mut modem = Modem::new(region);
    let error = SERVICE.serve(|_badge, message| modem.exchange(message));
    Line::new()
        .text("modem: refused (")
        .text(hvc_error_name(error))
        .text(")")
        .print();
    sdk::hvc::exit(1);
}

/// The modem's state: the line being typed, the answers waiting, the shared region.
struct Modem {
    line: [u8; LINE_CAPACITY],
    length: usize,
    too_long: bool,
    output: ByteQueue<OUTPUT_CAPACITY>,
    dropped_lines: u64,
    words: &'static [AtomicU64],
    bytes: &'static [AtomicU8],
    writable: bool,
}

impl Modem {
    fn new(region: SharedMemory) -> Self {
        Self {
            line: [0; LINE_CAPACITY],
            length: 0,
            too_long: false,
            output: ByteQueue::new(),
            dropped_lines: 0,
            words: region.words(),
            bytes: region.bytes(),
            writable: region.rights().contains(Rights::W),
        }
    }

    /// Serves one request: takes its input bytes, replies with up to 24 output bytes.
    fn exchange(&mut self, request: Message) -> Message {
        // A count beyond a chunk is not a request: its bytes are ignored.
        if request[0] <= CHUNK_BYTES as u64 {
            let (input, count) = decode(request);
            for &byte in input.iter().take(count) {
                self.input(byte);
            }
        }
        let mut output = [0; CHUNK_BYTES];
        let count = self.output.pop(&mut output);
        encode(&output[..count])
    }

    /// Adds one input byte to the line; runs the line at its end.
    fn input(&mut self, byte: u8) {
        match byte {
            b'\r' => {}
            b'\n' => {
                if self.too_long {
                    self.answer(b"ERROR line too long");
                    Line::new().text("modem: ERROR line too long").print();
                } else {
                    let mut line = [0; LINE_CAPACITY];
                    let length = self.length;
                    line[..length].copy_from_slice(&self.line[..length]);
                    self.run(&line[..length]);
                }
                self.length = 0;
                self.too_long = false;
            }
            _ => match self.line.get_mut(self.length) {
                Some(slot) => {
                    *slot = byte;
                    self.length += 1;
                }
                None => self.too_long = true,
            },
        }
    }

    /// Runs one command line (without its end).
    fn run(&mut self, line: &[u8]) {
        let mut words = line
            .split(|&byte| byte == b' ')
            .filter(|word| !word.is_empty());
        let command = words.next();
        let first = words.next().map(decimal);
        let second = words.next().map(decimal);
        let extra = words.next().is_some();
        match (command, first, second, extra) {
            (None, ..) => {}
            (Some(b"AT"), None, None, false) => {
                self.answer(b"OK");
                Line::new().text("modem: AT").print();
            }
            (Some(b"ATI"), None, None, false) => {
                self.answer(b"CELLVISOR MODEM 1");
                self.answer(b"OK");
                Line::new().text("modem: ATI").print();
            }
            (Some(b"FILL"), Some(Some(seed)), Some(Some(count)), false) => {
                let mut report = Line::new();
                report
                    .text("modem: FILL ")
                    .decimal(seed)
                    .text(" ")
                    .decimal(count);
                match self.fill(seed, count) {
                    Ok(sum) => self.answer_sum(sum, &mut report),
                    Err(error) => self.answer_error(error, &mut report),
                }
            }
            (Some(b"SUM"), Some(Some(count)), None, false) => {
                let mut report = Line::new();
                report.text("modem: SUM ").decimal(count);
                match self.sum(count) {
                    Ok(sum) => self.answer_sum(sum, &mut report),
                    Err(error) => self.answer_error(error, &mut report),
                }
            }
            _ => {
                self.answer(b"ERROR unknown command");
                Line::new().text("modem: ERROR unknown command").print();
            }
        }
    }

    /// Answers `SUM <sum>` and `OK`, and prints `report` with ` -> SUM <sum>`.
    fn answer_sum(&mut self, sum: u32, report: &mut Line) {
        let mut answer = Line::new();
        answer.text("SUM ").decimal(u64::from(sum));
        self.answer(answer.as_bytes());
        self.answer(b"OK");
        report.text(" -> SUM ").decimal(u64::from(sum)).print();
    }

    /// Answers `error`, and prints `report` with ` -> <error>`.
    fn answer_error(&mut self, error: &str, report: &mut Line) {
        self.answer(error.as_bytes());
        report.text(" -> ").text(error).print();
    }

    /// Queues one answer line and its end, whole or not at all.
    fn answer(&mut self, text: &[u8]) {
        if self.output.free() < text.len() + 1 {
            self.dropped_lines += 1;
            return;
        }
        self.output.push(text);
        self.output.push(b"\n");
    }

    /// Words of 32 bits in the region.
    fn word_count(&self) -> u64 {
        self.words.len() as u64 * 2
    }

    /// Fills the first `count` 32-bit words; returns the checksum of the values written, or
    /// the error answer.
    fn fill(&self, seed: u64, count: u64) -> Result<u32, &'static str> {
        if count > self.word_count() {
            return Err("ERROR count");
        }
        if !self.writable {
            return Err("ERROR read-only region");
        }
        let value = |index: u64| {
            seed.wrapping_mul(2_654_435_761)
                .wrapping_add(index.wrapping_mul(40_503)) as u32
        };
        let mut sum = 0u32;
        for (index, word) in (0..count / 2).zip(self.words) {
            let low = value(2 * index);
            let high = value(2 * index + 1);
            word.store(u64::from(low) | u64::from(high) << 32, Ordering::Relaxed);
            sum = checksum_step(checksum_step(sum, low), high);
        }
        if count % 2 == 1 {
            // The last word is half of a 64-bit word: store its four bytes only.
            let last = value(count - 1);
            let start = usize::try_from(4 * (count - 1)).map_err(|_| "ERROR count")?;
            let end = start.checked_add(4).ok_or("ERROR count")?;
            let bytes = self.bytes.get(start..end).ok_or("ERROR count")?;
            for (byte, value) in bytes.iter().zip(last.to_le_bytes()) {
                byte.store(value, Ordering::Relaxed);
            }
            sum = checksum_step(sum, last);
        }
        Ok(sum)
    }

    /// The checksum of the first `count` 32-bit words, or the error answer.
    fn sum(&self, count: u64) -> Result<u32, &'static str> {
        if count > self.word_count() {
            return Err("ERROR count");
        }
        let mut sum = 0u32;
        let mut remaining = count;
        for word in self.words {
            if remaining == 0 {
                break;
            }
            let value = word.load(Ordering::Relaxed);
            sum = checksum_step(sum, value as u32);
            remaining -= 1;
            if remaining > 0 {
                sum = checksum_step(sum, (value >> 32) as u32);
                remaining -= 1;
            }
        }
        Ok(sum)
    }
}

/// One step of the region checksum: (sum × 31 + word) mod 2³².
fn checksum_step(sum: u32, word: u32) -> u32 {
    sum.wrapping_mul(31).wrapping_add(word)
}

/// A decimal number that fits 64 bits; `None` for anything else.
fn decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |value, &byte| {
        let digit = byte.checked_sub(b'0').filter(|&digit| digit < 10)?;
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}
