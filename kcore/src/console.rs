//! Console lines: a cell's arbitrary writes become whole, sanitised, name-prefixed lines.
//!
//! Each cell has one [`LineBuffer`]. Bytes a cell writes are collected until a newline
//! arrives, the buffer holds [`LINE_MAX`] bytes, or the kernel flushes it; then the line
//! body goes to the kernel's `emit` callback, which prints it with [`format_line`] as
//! `[name] body`. Lines of different cells therefore never interleave mid-line.
//!
//! Invariants: a body handed to `emit` is at most [`LINE_MAX`] bytes of printable ASCII
//! and tabs, without the newline. Carriage returns are dropped; every other control
//! character, DEL and every non-ASCII byte become `.`, so a cell can neither send escape
//! sequences to the terminal (C1 controls are reachable through UTF-8 on some terminals)
//! nor pass off its output as another cell's by rewriting the line.

/// Longest line body; a longer line is emitted in pieces of this length.
pub const LINE_MAX: usize = 160;

/// One cell's partial console line.
pub struct LineBuffer {
    bytes: [u8; LINE_MAX],
    len: usize,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuffer {
    /// An empty buffer.
    pub const fn new() -> Self {
        LineBuffer {
            bytes: [0; LINE_MAX],
            len: 0,
        }
    }

    /// Bytes waiting for the end of their line.
    pub fn pending(&self) -> usize {
        self.len
    }

    /// The partial line waiting for its end (already sanitised).
    pub fn partial(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// Adds a cell's bytes, emitting every line they complete. A line that reaches
    /// [`LINE_MAX`] bytes is emitted when its next byte arrives, and that byte starts a new
    /// line, so a full line followed by a newline is emitted once.
    pub fn push(&mut self, bytes: &[u8], emit: &mut dyn FnMut(&[u8])) {
        for &byte in bytes {
            match byte {
                b'\n' => self.flush_line(emit),
                b'\r' => {}
                _ => {
                    if self.len >= LINE_MAX {
                        self.flush_line(emit);
                    }
                    if let Some(slot) = self.bytes.get_mut(self.len) {
                        *slot = sanitize(byte);
                        self.len += 1;
                    }
                }
            }
        }
    }

    /// Emits the pending partial line, if any (an empty buffer emits nothing).
    pub fn flush(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if self.len > 0 {
            self.flush_line(emit);
        }
    }

    // Out of line: `push` and `flush`, inlined where the kernel uses them, end lines at seven
    // places.
    #[inline(never)]
    fn flush_line(&mut self, emit: &mut dyn FnMut(&[u8])) {
        emit(self.bytes.get(..self.len).unwrap_or(&[]));
        self.len = 0;
    }
}

/// The byte to print for `byte`: itself if printable ASCII or tab, `.` otherwise.
pub const fn sanitize(byte: u8) -> u8 {
    match byte {
        b'\t' | 0x20..=0x7e => byte,
        _ => b'.',
    }
}

/// Writes `[name] body\n` to `out`, sanitising `name` and `body` as [`LineBuffer`] does.
/// A line of up to `LINE_MAX` body bytes and a name of up to 32 bytes reaches `out` in a
/// single call, so a console lock held around `out` cannot split it.
pub fn format_line(name: &str, body: &[u8], out: &mut dyn FnMut(&[u8])) {
    format_prefixed(name, body, true, out);
}

/// Writes `[name] body` to `out` as [`format_line`] does, without the newline: the start of
/// a line whose end is still to come.
pub fn format_open_line(name: &str, body: &[u8], out: &mut dyn FnMut(&[u8])) {
    format_prefixed(name, body, false, out);
}

fn format_prefixed(name: &str, body: &[u8], end_line: bool, out: &mut dyn FnMut(&[u8])) {
    let mut writer = ChunkWriter {
        buffer: [0; CHUNK],
        len: 0,
        out,
    };
    writer.put(b'[');
    writer.put_all(name.as_bytes());
    writer.put(b']');
    writer.put(b' ');
    writer.put_all(body);
    if end_line {
        writer.put(b'\n');
    }
    writer.finish();
}

/// Room for the longest line: name, brackets, space, body, newline.
const CHUNK: usize = LINE_MAX + 32 + 4;

/// Collects sanitised bytes and hands them to `out` in as few calls as possible.
struct ChunkWriter<'a> {
    buffer: [u8; CHUNK],
    len: usize,
    out: &'a mut dyn FnMut(&[u8]),
}

impl ChunkWriter<'_> {
    fn put_all(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.put(sanitize(byte));
        }
    }

    /// Appends `byte` as is (callers sanitise).
    // Out of line: one copy for the five calls that write a line's prefix, body and end.
    #[inline(never)]
    fn put(&mut self, byte: u8) {
        if self.len >= CHUNK {
            self.finish();
        }
        if let Some(slot) = self.buffer.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn finish(&mut self) {
        if self.len > 0 {
            (self.out)(self.buffer.get(..self.len).unwrap_or(&[]));
            self.len = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(writes: &[&[u8]], flush: bool) -> Vec<Vec<u8>> {
        let mut buffer = LineBuffer::new();
        let mut lines = Vec::new();
        for write in writes {
            buffer.push(write, &mut |line| lines.push(line.to_vec()));
        }
        if flush {
            buffer.flush(&mut |line| lines.push(line.to_vec()));
        }
        lines
    }

    #[test]
    fn lines_are_assembled_across_writes() {
        let lines = lines_of(&[b"hel", b"lo\nwor", b"ld\n\nlast"], false);
        assert_eq!(lines, [b"hello".to_vec(), b"world".to_vec(), b"".to_vec()]);
        let lines = lines_of(&[b"hel", b"lo\nwor", b"ld\n\nlast"], true);
        assert_eq!(lines.last().unwrap(), b"last");
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn flush_of_an_empty_buffer_emits_nothing() {
        assert!(lines_of(&[], true).is_empty());
        assert_eq!(lines_of(&[b"a\n"], true), [b"a".to_vec()]);
    }

    #[test]
    fn carriage_returns_are_dropped_and_controls_replaced() {
        let lines = lines_of(&[b"ok\r\n\x1b[2Jclear\ttab\x07\x7f\xc2\x9b\x00\n"], false);
        assert_eq!(lines, [b"ok".to_vec(), b".[2Jclear\ttab.....".to_vec()]);
    }

    #[test]
    fn long_lines_are_split_at_line_max() {
        let long = [b'x'; LINE_MAX * 2 + 5];
        let mut buffer = LineBuffer::new();
        let mut lines = Vec::new();
        buffer.push(&long, &mut |line| lines.push(line.to_vec()));
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() == LINE_MAX));
        assert_eq!(buffer.pending(), 5);

        // Exactly LINE_MAX bytes then a newline: one line, no empty one after it.
        let mut exact = vec![b'y'; LINE_MAX];
        exact.push(b'\n');
        let lines = lines_of(&[&exact], true);
        assert_eq!(lines, [vec![b'y'; LINE_MAX]]);
    }

    #[test]
    fn format_line_prefixes_the_name_in_one_call() {
        let mut calls = Vec::new();
        format_line("uart", b"hello", &mut |chunk| calls.push(chunk.to_vec()));
        assert_eq!(calls, [b"[uart] hello\n".to_vec()]);

        let body = [b'z'; LINE_MAX];
        let mut calls = Vec::new();
        format_line("sixteen-bytes-nm", &body, &mut |chunk| {
            calls.push(chunk.to_vec())
        });
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].len(), LINE_MAX + 16 + 4);
    }

    #[test]
    fn an_open_line_has_the_prefix_and_no_newline() {
        let mut calls = Vec::new();
        format_open_line("li\x1bnux", b"/ # ", &mut |chunk| {
            calls.push(chunk.to_vec())
        });
        assert_eq!(calls, [b"[li.nux] / # ".to_vec()]);
    }

    #[test]
    fn format_line_sanitises_and_survives_oversized_input() {
        let mut text = Vec::new();
        format_line("ev\x1bil", b"a\x1bb\n", &mut |chunk| {
            text.extend_from_slice(chunk)
        });
        assert_eq!(text, b"[ev.il] a.b.\n");

        let body = [b'q'; 3 * CHUNK];
        let mut text = Vec::new();
        let mut calls = 0;
        format_line("n", &body, &mut |chunk| {
            calls += 1;
            text.extend_from_slice(chunk)
        });
        assert_eq!(text.len(), 3 * CHUNK + 5);
        assert_eq!(calls, 4);
        assert_eq!(&text[..4], b"[n] ");
        assert_eq!(text.last(), Some(&b'\n'));
    }
}
