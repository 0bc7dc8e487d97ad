//! Output without an allocator or `core::fmt`: a fixed-size line built on the stack and
//! written with a single `write` system call (so lines from different processes never
//! interleave within a line).

use crate::linux;

/// Standard output.
pub const STDOUT: i32 = 1;
/// Standard error.
pub const STDERR: i32 = 2;

/// A line of at most 200 bytes; anything longer is cut off.
pub struct Line {
    buf: [u8; 200],
    len: usize,
}

impl Line {
    /// An empty line.
    pub fn new() -> Self {
        Self {
            buf: [0; 200],
            len: 0,
        }
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        let room = self.buf.len() - self.len;
        let take = bytes.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
        self
    }

    /// Appends a string.
    pub fn str(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }

    /// Appends an unsigned integer in decimal.
    pub fn u64(&mut self, mut value: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.bytes(&digits[start..])
    }

    /// Appends a signed integer in decimal.
    pub fn i64(&mut self, value: i64) -> &mut Self {
        if value < 0 {
            self.str("-");
        }
        self.u64(value.unsigned_abs())
    }

    /// Appends a newline and writes the line to `fd` with one `write`. Output errors are
    /// ignored: there is nowhere left to report them.
    pub fn emit(&mut self, fd: i32) {
        if self.len == self.buf.len() {
            self.len -= 1;
        }
        self.buf[self.len] = b'\n';
        let _ = linux::write(fd, &self.buf[..self.len + 1]);
        self.len = 0;
    }
}
