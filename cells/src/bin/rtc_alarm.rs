//! `rtc_alarm`: drives QEMU `virt`'s PL031 real-time clock, a device passed through to this
//! cell by `systems/device-irq.toml`, and takes its alarm interrupt (SPI 2, INTID 34) as a
//! virtual interrupt routed by the kernel.
//!
//! [`ALARMS`] times: read the seconds counter (`RTCDR`), set the match register one second
//! ahead, clear any old interrupt, unmask the device interrupt and wait (`wfi`) until the
//! handler has seen INTID 34. The handler clears and masks the device interrupt before it
//! returns, so the level on the line is low by the time the SDK's IRQ vector writes the EOI
//! (which, the interrupt being hardware-linked, also deactivates the physical interrupt).
//! Prints `rtc: alarm <n> at <seconds> (interrupt 34)` for each, then
//! `rtc: 3 alarms received`, and exits with 0.
//!
//! The virtual timer guards each wait: armed [`TIMEOUT`] ahead, it wakes the `wfi` if the
//! alarm never comes, and the cell prints `rtc: TIMEOUT waiting for interrupt 34` and exits
//! with 1.
//!
//! Invariants: the device window is mapped by the system description at IPA = PA
//! [`RTC_BASE`] (4 KiB, Device-nGnRE); this file touches only the PL031 registers inside it.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use sdk::time::{self, Duration};
use sdk::{interrupts, timer};

/// Physical (and intermediate physical) base of the PL031.
const RTC_BASE: usize = 0x0901_0000;
/// `RTCDR`: the seconds counter (read-only).
const DATA_REGISTER: usize = 0x00;
/// `RTCMR`: the match register; the alarm fires when the counter reaches it.
const MATCH_REGISTER: usize = 0x04;
/// `RTCCR`: control; bit 0 starts the counter.
const CONTROL_REGISTER: usize = 0x0C;
/// `RTCIMSC`: interrupt mask set/clear; 1 enables the alarm interrupt.
const INTERRUPT_MASK_REGISTER: usize = 0x10;
/// `RTCICR`: interrupt clear; writing 1 clears the alarm interrupt.
const INTERRUPT_CLEAR_REGISTER: usize = 0x1C;

/// The PL031's interrupt: SPI 2.
const RTC_INTID: u32 = 34;
/// Alarms to take.
const ALARMS: u32 = 3;
/// How long each alarm may take before the cell gives up (the alarm is at most ~1 s away).
const TIMEOUT: Duration = Duration::from_secs(3);

/// Exit code when an alarm did not arrive in time.
const EXIT_CODE_TIMEOUT: u64 = 1;

/// Alarm interrupts the handler has taken.
static ALARMS_TAKEN: AtomicU32 = AtomicU32::new(0);
/// The seconds counter when the handler took the last alarm.
static ALARM_SECONDS: AtomicU64 = AtomicU64::new(0);
/// Interrupts other than the alarm and the timer that reached the handler.
static OTHER_INTERRUPTS: AtomicU32 = AtomicU32::new(0);

/// Reads the PL031 register at `offset`.
fn read_register(offset: usize) -> u32 {
    // SAFETY: the system description maps exactly the 4 KiB PL031 window at IPA = PA
    // RTC_BASE into this cell as device memory; every offset used here is a 4-byte aligned
    // PL031 register inside that window, and reading it has no effect on this cell's memory.
    unsafe { core::ptr::read_volatile((RTC_BASE + offset) as *const u32) }
}

/// Writes `value` to the PL031 register at `offset`.
fn write_register(offset: usize, value: u32) {
    // SAFETY: as in `read_register`: a 4-byte aligned PL031 register inside the device window
    // the system description maps into this cell; the write only changes device state.
    unsafe { core::ptr::write_volatile((RTC_BASE + offset) as *mut u32, value) }
}

/// The IRQ handler: takes the alarm (silences the device before returning, so the line is low
/// before the EOI), disarms the watchdog timer, and counts anything else.
fn handler(intid: u32) {
    match intid {
        RTC_INTID => {
            write_register(INTERRUPT_CLEAR_REGISTER, 1);
            write_register(INTERRUPT_MASK_REGISTER, 0);
            ALARM_SECONDS.store(u64::from(read_register(DATA_REGISTER)), Ordering::Relaxed);
            ALARMS_TAKEN.fetch_add(1, Ordering::Release);
        }
        timer::INTID => timer::cancel(),
        _ => {
            OTHER_INTERRUPTS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Waits until the handler has taken `count` alarms, or until `TIMEOUT` has passed. IRQs are
/// masked while the count is checked, so an alarm between the check and the `wfi` still ends
/// the `wfi` (it stays pending); unmasking lets the IRQ vector take it. Returns whether the
/// alarm came.
fn wait_for_alarm(count: u32) -> bool {
    let deadline = time::now().checked_add(TIMEOUT);
    if let Some(deadline) = deadline {
        timer::set_deadline(deadline);
    }
    let arrived = loop {
        interrupts::disable();
        if ALARMS_TAKEN.load(Ordering::Acquire) >= count {
            break true;
        }
        if deadline.is_some_and(|deadline| time::now() >= deadline) {
            break false;
        }
        interrupts::wait_for_interrupt();
        interrupts::enable();
    };
    timer::cancel();
    interrupts::enable();
    arrived
}

sdk::entry!(main);

fn main() {
    interrupts::set_handler(handler);
    interrupts::enable();
    write_register(CONTROL_REGISTER, 1);
    for alarm in 1..=ALARMS {
        let now = read_register(DATA_REGISTER);
        write_register(MATCH_REGISTER, now.wrapping_add(1));
        write_register(INTERRUPT_CLEAR_REGISTER, 1);
        write_register(INTERRUPT_MASK_REGISTER, 1);
        if !wait_for_alarm(alarm) {
            write_register(INTERRUPT_MASK_REGISTER, 0);
            sdk::println!("rtc: TIMEOUT waiting for interrupt {RTC_INTID}");
            sdk::hvc::exit(EXIT_CODE_TIMEOUT);
        }
        let seconds = ALARM_SECONDS.load(Ordering::Relaxed);
        sdk::println!("rtc: alarm {alarm} at {seconds} (interrupt {RTC_INTID})");
    }
    interrupts::disable();
    let others = OTHER_INTERRUPTS.load(Ordering::Relaxed);
    if others > 0 {
        sdk::println!("rtc: {others} unexpected interrupts");
    }
    sdk::println!("rtc: {ALARMS} alarms received");
}
