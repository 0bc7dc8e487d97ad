//! Formatted console output: a line-buffering writer and the `print!`/`println!` macros.
//!
//! The kernel prefixes every console line with the cell's name, so output goes to the kernel
//! a line at a time: [`Console`] collects bytes on the stack and issues one
//! [`console_write`](crate::hvc::console_write) per line, or per
//! [`LINE_CAPACITY`] bytes of a longer line. Each `print!` uses its own `Console`, so nothing
//! is shared between callers and no lock is needed.
//!
//! [`Line`] builds a line from text and integers with integer operations only, without
//! `core::fmt`: for cells that run with FP/SIMD trapped (`fp = false` in their system
//! description), since the compiler may use SIMD registers in formatting code.

use crate::hvc::{self, HvcError};
use core::fmt;

/// Bytes buffered before a write is forced (the ABI's largest single console write).
pub const LINE_CAPACITY: usize = abi::hvc::CONSOLE_WRITE_MAX as usize;

/// Why formatted output did not fully reach the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrintError {
    /// The kernel refused a console write.
    Console(HvcError),
    /// The kernel accepted only part of the output (its console is not taking more).
    Truncated,
    /// A `Display`/`Debug` implementation reported an error while formatting.
    Format,
}

/// A console writer that buffers up to a line.
///
/// Bytes are sent when a line ends, when [`LINE_CAPACITY`] bytes are waiting, and on
/// [`Console::flush`]. After the first failed write every later write is dropped and the
/// failure is reported by [`Console::flush`].
pub struct Console {
    buffer: [u8; LINE_CAPACITY],
    length: usize,
    failure: Option<PrintError>,
}

impl Console {
    /// An empty writer.
    pub const fn new() -> Self {
        Self {
            buffer: [0; LINE_CAPACITY],
            length: 0,
            failure: None,
        }
    }

    /// Sends what is buffered; reports the first failure since this writer was created.
    pub fn flush(&mut self) -> Result<(), PrintError> {
        if self.failure.is_none() && self.length > 0 {
            let pending = &self.buffer[..self.length];
            match hvc::console_write(pending) {
                Ok(written) if written == pending.len() => {}
                Ok(_) => self.failure = Some(PrintError::Truncated),
                Err(error) => self.failure = Some(PrintError::Console(error)),
            }
        }
        self.length = 0;
        self.failure.map_or(Ok(()), Err)
    }
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for &byte in text.as_bytes() {
            if self.failure.is_some() {
                return Err(fmt::Error);
            }
            self.buffer[self.length] = byte;
            self.length += 1;
            if byte == b'\n' || self.length == LINE_CAPACITY {
                // A failure is recorded in `self.failure` and ends the loop above.
                let _recorded = self.flush();
            }
        }
        Ok(())
    }
}

/// Formats `arguments` to the console; what `print!` and `println!` expand to.
pub fn print_args(arguments: fmt::Arguments<'_>) -> Result<(), PrintError> {
    let mut console = Console::new();
    let formatted = fmt::Write::write_fmt(&mut console, arguments);
    console.flush()?;
    formatted.map_err(|fmt::Error| PrintError::Format)
}

/// Prints to the console, like `std::print!`. Console errors are dropped: output is best
/// effort (call [`console::print_args`](crate::console::print_args) to see them).
#[macro_export]
macro_rules! print {
    ($($argument:tt)*) => {{
        let _best_effort = $crate::console::print_args(::core::format_args!($($argument)*));
    }};
}

/// Prints a line to the console, like `std::println!`. Console errors are dropped: output is
/// best effort (call [`console::print_args`](crate::console::print_args) to see them).
#[macro_export]
macro_rules! println {
    () => {
        $crate::print!("\n")
    };
    ($($argument:tt)*) => {{
        let _best_effort = $crate::console::print_args(::core::format_args!(
            "{}\n",
            ::core::format_args!($($argument)*)
        ));
    }};
}

/// A console line built without `core::fmt`: text, decimal and hexadecimal integers.
///
/// Holds up to [`LINE_CAPACITY`] bytes; what does not fit is dropped and the line ends with
/// `...` instead. [`Line::print`] adds the line end and writes it in one call.
pub struct Line {
    buffer: [u8; LINE_CAPACITY],
    length: usize,
    overflowed: bool,
}

impl Line {
    /// An empty line.
    pub const fn new() -> Self {
        Self {
            buffer: [0; LINE_CAPACITY],
            length: 0,
            overflowed: false,
        }
    }

    /// Appends bytes.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &byte in bytes {
            // One byte stays free for the line end.
            if self.length + 1 >= LINE_CAPACITY {
                self.overflowed = true;
                break;
            }
            self.buffer[self.length] = byte;
            self.length += 1;
        }
        self
    }

    /// Appends text.
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }

    /// Appends `value` in decimal.
    pub fn decimal(&mut self, value: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut rest = value;
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        self.bytes(&digits[start..])
    }

    /// Appends `value` in hexadecimal with a `0x` prefix, as `{:#x}` does.
    pub fn hexadecimal(&mut self, value: u64) -> &mut Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; 16];
        let mut start = digits.len();
        let mut rest = value;
        loop {
            start -= 1;
            digits[start] = DIGITS[(rest & 0xf) as usize];
            rest >>= 4;
            if rest == 0 {
                break;
            }
        }
        self.text("0x").bytes(&digits[start..])
    }

    /// The line so far, without the line end.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer[..self.length]
    }

    /// Writes the line and a line end to the console (best effort, like [`println!`]); marks
    /// a truncated line with `...`.
    pub fn print(&mut self) {
        if self.overflowed {
            self.length = self.length.min(LINE_CAPACITY - 4);
            self.buffer[self.length..self.length + 3].copy_from_slice(b"...");
            self.length += 3;
        }
        self.buffer[self.length] = b'\n';
        let _best_effort = hvc::console_write(&self.buffer[..=self.length]);
        self.length = 0;
        self.overflowed = false;
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::host::with;
    use core::fmt::Write;
    use std::vec::Vec;

    fn write_lengths() -> Vec<u64> {
        with(|kernel| kernel.calls.iter().map(|(_, a)| a[1]).collect())
    }

    #[test]
    fn println_sends_one_write_per_line() {
        crate::println!("ping {}", 7);
        crate::print!("a\nb");
        crate::println!();
        with(|kernel| assert_eq!(kernel.console, b"ping 7\na\nb\n"));
        // Each print! is sent by the time it returns, even without a line end.
        assert_eq!(write_lengths(), [7, 2, 1, 1]);
    }

    #[test]
    fn long_lines_are_sent_in_full_buffers() {
        let mut console = Console::new();
        for _ in 0..300 {
            console.write_str("x").unwrap();
        }
        assert_eq!(write_lengths(), [256]);
        console.flush().unwrap();
        assert_eq!(write_lengths(), [256, 44]);
        console.flush().unwrap();
        assert_eq!(write_lengths(), [256, 44]);
    }

    #[test]
    fn the_first_console_error_is_reported_and_stops_output() {
        with(|kernel| kernel.next_status = Some(HvcError::InvalidAddress.code()));
        assert_eq!(
            print_args(format_args!("one\ntwo\n")),
            Err(PrintError::Console(HvcError::InvalidAddress))
        );
        assert_eq!(write_lengths(), [4]);
    }

    #[test]
    fn a_console_that_stops_accepting_is_a_truncation() {
        with(|kernel| kernel.next_results = Some([0, 0, 0, 0, 0]));
        assert_eq!(
            print_args(format_args!("lost\n")),
            Err(PrintError::Truncated)
        );
    }

    #[test]
    fn a_line_formats_integers_without_core_fmt() {
        Line::new()
            .text("BENCH x=")
            .decimal(0)
            .text(" ")
            .decimal(u64::MAX)
            .text(" ")
            .hexadecimal(0)
            .text(" ")
            .hexadecimal(0x4020_0000)
            .print();
        with(|kernel| {
            assert_eq!(
                kernel.console,
                b"BENCH x=0 18446744073709551615 0x0 0x40200000\n"
            );
        });
        assert_eq!(write_lengths().len(), 1);
    }

    #[test]
    fn an_overlong_line_is_cut_and_marked() {
        let mut line = Line::new();
        for _ in 0..30 {
            line.text("0123456789");
        }
        line.print();
        with(|kernel| {
            assert_eq!(kernel.console.len(), LINE_CAPACITY);
            assert!(kernel.console.ends_with(b"901...\n"));
        });
    }

    #[test]
    fn a_failing_display_is_a_format_error() {
        struct Broken;
        impl fmt::Display for Broken {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                Err(fmt::Error)
            }
        }
        assert_eq!(
            print_args(format_args!("before {Broken}")),
            Err(PrintError::Format)
        );
        with(|kernel| assert_eq!(kernel.console, b"before "));
    }
}
