//! `vconsole`: the device-model cell of a guest's virtio-console, connected to `modem`.
//!
//! Serves the guest's virtio-mmio slot: the kernel turns each guest load or store in the
//! slot's window into a call on this cell's endpoint ([`sdk::abi::device`]), which it applies to
//! an [`MmioDevice`] around a [`Console`] (`sdk::virtio`) and answers with the value a load
//! returns. Bytes the guest's driver transmits are forwarded to the `modem` cell; the
//! modem's answers are queued for the driver and delivered into the receive buffers it
//! posts. When the device used buffers (or needs a reset) the cell signals the notification
//! that makes the kernel raise the guest's virtio interrupt.
//!
//! Capabilities: slot 0 = the endpoint it serves (the guest's virtio-mmio slot), slot 1 =
//! the notification it signals (bit 0, once per interrupt to raise), slot 2 = the guest's
//! whole RAM as shared memory (read-write; guest-physical address *G* is at
//! `ipa + (G − 0x4000_0000)`), slot 3 = a call capability on the `modem` endpoint.
//!
//! Modem protocol (see `modem`): a request carries *n* ≤ 24 input bytes (word 0 = *n*, byte
//! *k* in word 1 + *k* / 8 at bits 8 × (*k* mod 8)), the reply up to 24 output bytes the
//! same way. After an access that left transmitted bytes, the cell calls the modem with
//! them, 24 at a time, then with none, until all were sent and a reply carried no byte
//! (at most [`MAX_MODEM_CALLS`] calls per access; the rest waits for the next access). When
//! the console's outgoing buffer has no room for a reply, the cell stops asking for output
//! and asks again once the driver took bytes; output that still does not fit is dropped
//! and counted.
//!
//! Prints `vconsole: serving virtio-console` at start, `vconsole: driver ready (features
//! <hex>)` when the driver sets DRIVER_OK, `vconsole: device needs reset (<reason>)` when
//! the driver corrupted a queue, and `vconsole: modem call failed (<error>)` for the first
//! failed modem call after a successful one; nothing else on the access path but the first
//! `vconsole: a call that is not an access (replied 0)` (such calls get reply 0 and are
//! counted), the first `vconsole: modem output dropped (console buffer full)` and the
//! first `vconsole: signalling the guest failed (<error>)`. If slot 2 is not the guest's RAM, prints
//! `vconsole: no guest RAM (<error>)` and exits with 1; if the kernel refuses to let it
//! serve, prints `vconsole: refused (<error>)` and exits with 1. No `core::fmt` is used.
#![no_std]
#![no_main]

use cellvisor_cells::chunk::{decode, encode, CHUNK_BYTES};
use cellvisor_cells::{capability_error_name, hvc_error_name};
use sdk::abi::device::Access;
use sdk::abi::image::CELL_RAM_IPA;
use sdk::caps;
use sdk::console::Line;
use sdk::ipc::{Endpoint, Message, Server};
use sdk::notification::Notification;
use sdk::virtio::console::BUFFER_CAPACITY;
use sdk::virtio::{Console, GuestMemory, GuestRam, MmioDevice, Outcome};

/// The endpoint of the guest's virtio-mmio slot.
const GUEST: Server = Server::new(0);
/// The notification that raises the guest's virtio interrupt.
const GUEST_INTERRUPT: Notification = Notification::new(1);
/// The slot of the guest's RAM.
const GUEST_RAM: u32 = 2;
/// The `modem` endpoint.
const MODEM: Endpoint = Endpoint::new(3);
/// Most modem calls made for one access.
const MAX_MODEM_CALLS: usize = 1024;
/// Console size reported in the configuration space.
const COLUMNS: u16 = 80;
/// Console size reported in the configuration space.
const ROWS: u16 = 25;

sdk::entry!(main);

fn main() {
    let ram = match caps::memory(GUEST_RAM) {
        Ok(ram) => ram,
        Err(error) => {
            Line::new()
                .text("vconsole: no guest RAM (")
                .text(capability_error_name(error))
                .text(")")
                .print();
            sdk::hvc::exit(1);
        }
    };
    let memory = GuestRam::new(CELL_RAM_IPA, ram.words());
    let mut device = MmioDevice::new(Console::new(COLUMNS, ROWS));
    let mut bridge = Bridge::default();
    Line::new().text("vconsole: serving virtio-console").print();
    let mut reply: Message = [0; 4];
    loop {
        let message = match GUEST.reply_wait(reply) {
            Ok((_badge, message)) => message,
            Err(error) => {
                Line::new()
                    .text("vconsole: refused (")
                    .text(hvc_error_name(error))
                    .text(")")
                    .print();
                sdk::hvc::exit(1);
            }
        };
        reply = [0; 4];
        let Some(access) = Access::decode(message) else {
            bridge.not_accesses += 1;
            if bridge.not_accesses == 1 {
                Line::new()
                    .text("vconsole: a call that is not an access (replied 0)")
                    .print();
            }
            continue;
        };
        let outcome = device.access(&memory, access);
        reply[0] = outcome.value;
        let mut interrupt = report(&device, &outcome);
        if bridge.has_work(&device) {
            interrupt |= bridge.exchange(&mut device, &memory);
        }
        if interrupt {
            if let Err(error) = GUEST_INTERRUPT.signal(1) {
                bridge.failed_signals += 1;
                if bridge.failed_signals == 1 {
                    Line::new()
                        .text("vconsole: signalling the guest failed (")
                        .text(hvc_error_name(error))
                        .text(")")
                        .print();
                }
            }
        }
    }
}

/// Prints what the outcome reports; returns whether it asks for the guest's interrupt.
fn report(device: &MmioDevice<Console>, outcome: &Outcome) -> bool {
    if outcome.driver_ready {
        Line::new()
            .text("vconsole: driver ready (features ")
            .hexadecimal(device.driver_features())
            .text(")")
            .print();
    }
    if let Some(failure) = outcome.failure {
        Line::new()
            .text("vconsole: device needs reset (")
            .text(failure.description())
            .text(")")
            .print();
    }
    outcome.interrupt
}

/// The link between the console and the modem, with its counters.
#[derive(Default)]
struct Bridge {
    /// The last modem reply carried bytes: the modem may have more.
    modem_has_output: bool,
    /// The last modem call failed (reported once until a call succeeds).
    modem_failing: bool,
    /// Failed modem calls.
    failed_calls: u64,
    /// Modem output dropped because the console's outgoing buffer was full.
    dropped_bytes: u64,
    /// Calls on the endpoint that were not accesses.
    not_accesses: u64,
    /// Signals of the guest's interrupt the kernel refused.
    failed_signals: u64,
}

impl Bridge {
    /// Whether there is something to exchange with the modem: bytes the driver transmitted,
    /// or modem output that now fits.
    fn has_work(&self, device: &MmioDevice<Console>) -> bool {
        let console = device.device();
        console.transmitted_len() > 0
            || (self.modem_has_output && output_room(console) >= CHUNK_BYTES)
    }

    /// Sends the transmitted bytes to the modem and queues its output for the driver;
    /// returns whether the guest's interrupt must be raised.
    fn exchange(&mut self, device: &mut MmioDevice<Console>, memory: &impl GuestMemory) -> bool {
        let mut interrupt = false;
        for _ in 0..MAX_MODEM_CALLS {
            if !self.has_work(device) {
                break;
            }
            let console = device.device_mut();
            let mut input = [0; CHUNK_BYTES];
            let count = console.take_transmitted(&mut input);
            let reply = match MODEM.call(encode(&input[..count])) {
                Ok(reply) => {
                    self.modem_failing = false;
                    reply
                }
                Err(error) => {
                    self.failed_calls += 1;
                    if !self.modem_failing {
                        self.modem_failing = true;
                        Line::new()
                            .text("vconsole: modem call failed (")
                            .text(hvc_error_name(error))
                            .text(")")
                            .print();
                    }
                    self.modem_has_output = false;
                    // The input is lost; let the device take in the rest of the transmit
                    // queue so that the driver is not stuck.
                    [0; 4]
                }
            };
            let (output, length) = decode(reply);
            self.modem_has_output = length > 0;
            let accepted = console.queue_output(&output[..length]);
            if accepted < length {
                if self.dropped_bytes == 0 {
                    Line::new()
                        .text("vconsole: modem output dropped (console buffer full)")
                        .print();
                }
                self.dropped_bytes += (length - accepted) as u64;
            }
            // Deliver into posted receive buffers, take in more of the transmit queue.
            let outcome = device.process(memory);
            interrupt |= report(device, &outcome);
            if outcome.failure.is_some() {
                break;
            }
        }
        interrupt
    }
}

/// Bytes the console's outgoing buffer can still take.
fn output_room(console: &Console) -> usize {
    BUFFER_CAPACITY.saturating_sub(console.output_len())
}
