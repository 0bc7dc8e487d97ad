//! The kernel console: kernel log lines with levels, and cells' output lines, each
//! prefixed by who wrote it (`[kernel]`, `[ping]`), one whole line at a time.
//!
//! Invariant: every line is written under one lock, so lines from different cores never
//! interleave. A panic may write without the lock (the lock may be held by the core that
//! panicked), so a panic message always gets out.

use crate::drivers::pl011::Pl011;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};
use spin::Mutex;

/// Importance of a kernel log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Details for kernel developers.
    Debug = 0,
    /// What a system designer wants to see: cells starting and stopping.
    Info = 1,
    /// Something is wrong with a cell.
    Warning = 2,
    /// Something is wrong with the system.
    Error = 3,
}

static UART: Mutex<Option<Pl011>> = Mutex::new(None);
static THRESHOLD: AtomicU8 = AtomicU8::new(Level::Info as u8);
static EMERGENCY_UART: spin::Once<Pl011> = spin::Once::new();

/// Makes `uart` the console.
pub fn init(uart: Pl011) {
    EMERGENCY_UART.call_once(|| uart);
    *UART.lock() = Some(uart);
}

/// Writes one kernel log line at `level`.
pub fn log(level: Level, arguments: fmt::Arguments<'_>) {
    if (level as u8) < THRESHOLD.load(Ordering::Relaxed) {
        return;
    }
    let tag = match level {
        Level::Debug => "debug: ",
        Level::Info => "",
        Level::Warning => "warning: ",
        Level::Error => "error: ",
    };
    if let Some(uart) = UART.lock().as_mut() {
        let _ = writeln!(uart, "[kernel] {tag}{arguments}");
    }
}

/// Writes one line of a cell's output: `[name] body`.
pub fn cell_line(name: &str, body: &[u8]) {
    if let Some(uart) = UART.lock().as_mut() {
        kcore::console::format_line(name, body, &mut |bytes| uart.write_bytes(bytes));
    }
}

/// Writes a panic report, taking the lock if it can and going around it if not.
pub fn panic_report(arguments: fmt::Arguments<'_>) {
    for _ in 0..1_000_000 {
        if let Some(mut guard) = UART.try_lock() {
            if let Some(uart) = guard.as_mut() {
                let _ = writeln!(uart, "{arguments}");
            }
            return;
        }
        core::hint::spin_loop();
    }
    if let Some(&uart) = EMERGENCY_UART.get() {
        let mut uart = uart;
        let _ = writeln!(uart, "{arguments}");
    }
}

/// Logs a line at info level.
#[macro_export]
macro_rules! info {
    ($($argument:tt)*) => { $crate::console::log($crate::console::Level::Info, format_args!($($argument)*)) };
}

/// Logs a line at warning level.
#[macro_export]
macro_rules! warning {
    ($($argument:tt)*) => { $crate::console::log($crate::console::Level::Warning, format_args!($($argument)*)) };
}

/// Logs a line at error level.
#[macro_export]
macro_rules! error {
    ($($argument:tt)*) => { $crate::console::log($crate::console::Level::Error, format_args!($($argument)*)) };
}

/// Logs a line at debug level.
#[macro_export]
macro_rules! debug {
    ($($argument:tt)*) => { $crate::console::log($crate::console::Level::Debug, format_args!($($argument)*)) };
}
