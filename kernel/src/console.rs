//! The kernel console: kernel log lines with levels, and cells' output lines, each
//! prefixed by who wrote it (`[kernel]`, `[ping]`), one whole line at a time.
//!
//! Input typed on the UART goes to the guest cell with the focus (`kcore::console_input`:
//! Ctrl-T n moves it), through that guest's emulated PL011.
//!
//! Invariant: every line is written under one lock, so lines from different cores never
//! interleave. A panic may write without the lock (the lock may be held by the core that
//! panicked), so a panic message always gets out.

use crate::drivers::pl011::Pl011;
use crate::vcpu::CoreState;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use kcore::console_input::{Focus, KeyAction};
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
/// The cell whose partial line is on the terminal without its newline, and how many of its
/// bytes are shown. Only touched with `UART` held.
static OPEN_LINE: Mutex<Option<(usize, usize)>> = Mutex::new(None);
static FOCUS: Mutex<Focus> = Mutex::new(Focus::new(0));
/// Set while typed input waits in the UART because the focused guest's FIFO is full.
static INPUT_STALLED: AtomicBool = AtomicBool::new(false);
static THRESHOLD: AtomicU8 = AtomicU8::new(Level::Info as u8);
static EMERGENCY_UART: spin::Once<Pl011> = spin::Once::new();

/// The console UART, locked. Out of line: it is taken in many places, none of them hot.
#[inline(never)]
fn lock_uart() -> spin::MutexGuard<'static, Option<Pl011>> {
    UART.lock()
}

/// The cell with the input focus, if any (out of line, like [`lock_uart`]).
#[inline(never)]
fn focused() -> Option<usize> {
    FOCUS.lock().focused()
}

/// Makes `uart` the console.
pub fn init(uart: Pl011) {
    EMERGENCY_UART.call_once(|| uart);
    *lock_uart() = Some(uart);
}

/// Takes input for the cells whose bits are set in `takers` (the guest cells) and enables
/// the UART's receive interrupt. Boot core, before cells run.
pub fn accept_input(takers: u64) {
    *FOCUS.lock() = Focus::new(takers);
    if let Some(uart) = lock_uart().as_ref() {
        uart.enable_receive_interrupt();
    }
}

/// The UART's receive interrupt: hands every byte waiting to the focused cell, or moves
/// the focus. Flow control: while the focused guest's receive FIFO is full, the bytes stay
/// in the UART (and whatever feeds it) and its receive interrupt is masked, until the guest
/// reads ([`guest_read_input`]); nothing typed is dropped.
pub fn receive(core: &mut CoreState) {
    loop {
        let focused = focused();
        if focused.is_some_and(crate::guest::input_must_wait) {
            // Mask, then mark, then look again: a guest read after the mark unmasks, and
            // one before it left room that the second look sees.
            if let Some(uart) = lock_uart().as_ref() {
                uart.disable_receive_interrupt();
            }
            INPUT_STALLED.store(true, Ordering::SeqCst);
            let still_full = focused.is_some_and(crate::guest::input_must_wait);
            if still_full || !INPUT_STALLED.swap(false, Ordering::SeqCst) {
                return;
            }
            if let Some(uart) = lock_uart().as_ref() {
                uart.enable_receive_interrupt();
            }
            continue;
        }
        let Some(byte) = lock_uart().as_ref().and_then(Pl011::read_byte) else {
            return;
        };
        let action = FOCUS.lock().key(byte);
        match action {
            KeyAction::Deliver { cell, byte } => crate::guest::push_input(core, cell, byte),
            KeyAction::Focused(cell) => tell_focus(Some(cell)),
            KeyAction::Tell(cell) => tell_focus(cell),
            KeyAction::Nothing => {}
        }
    }
}

/// A guest read a byte of its console input: if input was held back for lack of room,
/// take it again.
pub fn guest_read_input() {
    if INPUT_STALLED.swap(false, Ordering::SeqCst) {
        if let Some(uart) = lock_uart().as_ref() {
            uart.enable_receive_interrupt();
        }
    }
}

/// Says which cell has the console input, once cells exist.
pub fn tell_focus_at_boot() {
    tell_focus(focused());
}

fn tell_focus(cell: Option<usize>) {
    let name = cell
        .and_then(|cell| crate::system::system()?.cell(cell))
        .map_or("no cell", |info| info.record.name());
    log(
        Level::Info,
        format_args!(
            "console input goes to {name} (Ctrl-T n: next guest, Ctrl-T Ctrl-T: a Ctrl-T)"
        ),
    );
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
    if let Some(uart) = lock_uart().as_mut() {
        close_open_line(uart);
        let _ = writeln!(uart, "[kernel] {tag}{arguments}");
    }
}

/// Ends a partial line left on the terminal (the caller holds `UART`).
fn close_open_line(uart: &mut Pl011) {
    if OPEN_LINE.lock().take().is_some() {
        uart.write_bytes(b"\n");
    }
}

/// Output of guest `cell`'s console. For the guest with the input focus the partial line
/// is shown at once (a shell's prompt and the echo of what is typed), continued in place
/// while no other line comes between; other cells' lines are printed whole.
pub fn guest_output(
    cell: usize,
    name: &str,
    buffer: &mut kcore::console::LineBuffer,
    bytes: &[u8],
) {
    if focused() != Some(cell) {
        buffer.push(bytes, &mut |line| cell_line(name, line));
        return;
    }
    let mut guard = lock_uart();
    let Some(uart) = guard.as_mut() else { return };
    let mut open = OPEN_LINE.lock();
    buffer.push(bytes, &mut |line| {
        write_guest_line(uart, *open, cell, name, line);
        uart.write_bytes(b"\n");
        *open = None;
    });
    let partial = buffer.partial();
    if partial.is_empty() {
        return;
    }
    write_guest_line(uart, *open, cell, name, partial);
    *open = Some((cell, partial.len()));
}

/// Writes `line` of guest `cell` without its newline: the rest of it if the terminal shows
/// its first bytes already (`open`, the open line, is `cell`'s), else `[name] line` after
/// ending any other cell's open line.
fn write_guest_line(
    uart: &mut Pl011,
    open: Option<(usize, usize)>,
    cell: usize,
    name: &str,
    line: &[u8],
) {
    match open {
        Some((owner, shown)) if owner == cell => uart.write_bytes(line.get(shown..).unwrap_or(&[])),
        other => {
            if other.is_some() {
                uart.write_bytes(b"\n");
            }
            kcore::console::format_open_line(name, line, &mut |bytes| uart.write_bytes(bytes));
        }
    }
}

/// Writes one line of a cell's output: `[name] body`.
pub fn cell_line(name: &str, body: &[u8]) {
    if let Some(uart) = lock_uart().as_mut() {
        close_open_line(uart);
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
    if let Some(mut uart) = EMERGENCY_UART.get().copied() {
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
