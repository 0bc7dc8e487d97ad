//! Running QEMU: the command line, and a bounded run that watches the console.
//!
//! A boot is watched by a [`Watch`]: expected patterns must appear in order, forbidden ones
//! must not appear at all. The run stops as soon as the outcome is known (every expected
//! pattern seen, a forbidden one seen, QEMU exited) or at the timeout, and QEMU is killed.
//! The kernel halts all cores on a fatal boot error while QEMU keeps running, which is why
//! a run never waits for QEMU to exit by itself.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::workspace::{Error, Result};

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-aarch64";

/// Patterns no boot may print, whatever the test.
pub const ALWAYS_FORBIDDEN: &[&str] = &["PANIC", "kernel panic"];

/// How long a run keeps reading after the last expected pattern, to catch a forbidden
/// pattern printed right behind it.
const SETTLE: Duration = Duration::from_millis(250);

/// The machine to boot.
#[derive(Clone, Debug)]
pub struct Machine<'a> {
    /// `-cpu` model, e.g. `cortex-a72`.
    pub cpu: &'a str,
    /// Number of cores (`-smp`).
    pub smp: u32,
    /// RAM in MiB (`-m`).
    pub ram_megabytes: u64,
    /// Deterministic instruction counting, `-icount shift=N,sleep=off`: virtual time advances
    /// 2^N ns per instruction (0 for benchmarks: one instruction per nanosecond).
    pub icount: Option<u8>,
}

/// How the console is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    /// `-nographic`: serial and monitor on the terminal, Ctrl-A X quits.
    Terminal,
    /// Serial on stdio only, no monitor, no display: for pipes, files and tests.
    Plain,
}

/// QEMU with `machine`'s options (`-machine` with `machine_extra` appended, `-cpu`, ...).
fn machine_command(machine: &Machine<'_>, machine_extra: &str) -> Command {
    let mut command = Command::new(QEMU);
    command
        .args([
            "-machine",
            &format!("virt,virtualization=on,gic-version=3{machine_extra}"),
        ])
        .args(["-cpu", machine.cpu])
        .args(["-smp", &machine.smp.to_string()])
        .args(["-m", &format!("{}M", machine.ram_megabytes)]);
    if let Some(shift) = machine.icount {
        command.args(["-icount", &format!("shift={shift},sleep=off")]);
    }
    command
}

/// Writes to `path` the device tree QEMU passes to what `machine` boots (QEMU's `dumpdtb`,
/// after which it exits).
pub fn dump_device_tree(machine: &Machine<'_>, path: &Path) -> Result<(), String> {
    let mut command = machine_command(machine, &format!(",dumpdtb={}", path.display()));
    let output = command
        .args(["-display", "none"])
        .output()
        .map_err(|error| format!("{QEMU}: {error}"))?;
    if !output.status.success() || !path.exists() {
        return Err(format!(
            "{QEMU} did not dump its device tree to {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// The QEMU command that boots `image` on `machine`.
pub fn command(image: &Path, machine: &Machine<'_>, console: Console) -> Command {
    let mut command = machine_command(machine, "");
    match console {
        Console::Terminal => {
            command.arg("-nographic");
        }
        Console::Plain => {
            command.args(["-display", "none", "-serial", "stdio", "-monitor", "none"]);
        }
    }
    command.arg("-no-reboot").arg("-kernel").arg(image);
    command
}

/// Watches console output for expected (in order) and forbidden patterns.
#[derive(Clone, Debug)]
pub struct Watch<'a> {
    expect: &'a [&'a str],
    forbid: Vec<&'a str>,
    /// Everything seen so far.
    text: String,
    /// How many expected patterns have been found.
    found: usize,
    /// Where the search for the next expected pattern starts.
    cursor: usize,
    /// The first forbidden pattern seen, if any.
    forbidden: Option<&'a str>,
    /// Keys to type: `(after, keys)`, each typed once `after` appears (searching on from
    /// where the previous one was found).
    keys: &'a [(&'a str, &'a str)],
    /// How many entries of `keys` were typed.
    typed: usize,
    /// Where the search for the next `after` starts.
    keys_cursor: usize,
}

/// Where a watched run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Still waiting for expected patterns.
    Waiting,
    /// Every expected pattern has appeared, in order, and nothing forbidden.
    Complete,
    /// A forbidden pattern appeared.
    Forbidden,
}

impl<'a> Watch<'a> {
    /// A watch for `expect` (in order) and `forbid` plus [`ALWAYS_FORBIDDEN`].
    pub fn new(expect: &'a [&'a str], forbid: &'a [&'a str]) -> Self {
        let mut all_forbidden: Vec<&'a str> = ALWAYS_FORBIDDEN.to_vec();
        all_forbidden.extend_from_slice(forbid);
        Self {
            expect,
            forbid: all_forbidden,
            text: String::new(),
            found: 0,
            cursor: 0,
            forbidden: None,
            keys: &[],
            typed: 0,
            keys_cursor: 0,
        }
    }

    /// The same watch, typing `keys` (`(after, keys)` pairs, in order) on the console.
    pub fn with_keys(mut self, keys: &'a [(&'a str, &'a str)]) -> Self {
        self.keys = keys;
        self
    }

    /// The next keys to type, if the text they wait for has appeared.
    pub fn keys_due(&mut self) -> Option<&'a str> {
        let &(after, keys) = self.keys.get(self.typed)?;
        let at = self.text[self.keys_cursor..].find(after)?;
        self.keys_cursor += at + after.len();
        self.typed += 1;
        Some(keys)
    }

    /// Adds console output and reports where the run stands.
    pub fn feed(&mut self, chunk: &str) -> Progress {
        // Patterns may straddle chunks: rescan the tail that could hold a partial one.
        let longest = self.forbid.iter().map(|p| p.len()).max().unwrap_or(0);
        let mut rescan_from = self.text.len().saturating_sub(longest);
        while !self.text.is_char_boundary(rescan_from) {
            rescan_from -= 1;
        }
        self.text.push_str(chunk);
        if self.forbidden.is_none() {
            let tail = &self.text[rescan_from..];
            self.forbidden = self.forbid.iter().copied().find(|p| tail.contains(p));
        }
        while let Some(pattern) = self.expect.get(self.found) {
            match self.text[self.cursor..].find(pattern) {
                Some(at) => {
                    self.cursor += at + pattern.len();
                    self.found += 1;
                }
                None => break,
            }
        }
        self.progress()
    }

    /// Where the run stands.
    pub fn progress(&self) -> Progress {
        if self.forbidden.is_some() {
            Progress::Forbidden
        } else if self.found == self.expect.len() {
            Progress::Complete
        } else {
            Progress::Waiting
        }
    }

    /// The first expected pattern not yet seen (in order).
    pub fn missing(&self) -> Option<&'a str> {
        self.expect.get(self.found).copied()
    }

    /// The forbidden pattern that was seen, if any.
    pub fn forbidden(&self) -> Option<&'a str> {
        self.forbidden
    }

    /// The console output so far.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The last `count` lines of console text, without carriage returns.
pub fn last_lines(text: &str, count: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    lines[lines.len().saturating_sub(count)..].to_vec()
}

/// How a watched run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The watch reached a verdict ([`Progress::Complete`] or [`Progress::Forbidden`]).
    Decided,
    /// QEMU exited by itself first.
    Exited,
    /// The timeout passed first.
    TimedOut,
}

/// Something that reads a boot's console and says when the outcome is known.
pub trait Observer {
    /// Takes more console output; returns where the run stands.
    fn feed(&mut self, chunk: &str) -> Progress;

    /// Keys to type on the console now, if any.
    fn keys_due(&mut self) -> Option<&str> {
        None
    }
}

impl Observer for Watch<'_> {
    fn feed(&mut self, chunk: &str) -> Progress {
        Watch::feed(self, chunk)
    }

    fn keys_due(&mut self) -> Option<&str> {
        Watch::keys_due(self)
    }
}

/// Runs `command` (a QEMU boot), feeding its output to `watch` until the verdict is known,
/// QEMU exits, or `timeout` passes; QEMU is killed in any case.
pub fn run_observed(
    mut command: Command,
    watch: &mut dyn Observer,
    timeout: Duration,
) -> Result<Ending> {
    let line = crate::workspace::describe(&command);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            command: line,
            source,
        })?;
    let (sender, receiver) = mpsc::channel::<Vec<u8>>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut stream| {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 || sender.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(sender);
    let mut keyboard = child.stdin.take();

    let deadline = Instant::now() + timeout;
    let mut settle_until: Option<Instant> = None;
    let mut pending = Vec::new();
    let ending = loop {
        let now = Instant::now();
        let wait_until = settle_until.map_or(deadline, |s| s.min(deadline));
        if now >= wait_until {
            break if settle_until.is_some() {
                Ending::Decided
            } else {
                Ending::TimedOut
            };
        }
        match receiver.recv_timeout(wait_until - now) {
            Ok(bytes) => {
                pending.extend_from_slice(&bytes);
                let text = take_utf8(&mut pending);
                let progress = watch.feed(&text);
                while let Some(keys) = watch.keys_due() {
                    if let Some(stdin) = keyboard.as_mut() {
                        // A QEMU that stopped reading fails the test by its output.
                        let _ = stdin
                            .write_all(keys.as_bytes())
                            .and_then(|()| stdin.flush());
                    }
                }
                match progress {
                    Progress::Forbidden => break Ending::Decided,
                    Progress::Complete if settle_until.is_none() => {
                        settle_until = Some(Instant::now() + SETTLE);
                    }
                    _ => {}
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break if settle_until.is_some() {
                    Ending::Decided
                } else {
                    Ending::Exited
                };
            }
        }
    };
    // QEMU is a single process; killing it closes the pipes and ends the readers.
    let _already_exited = child.kill();
    let _status = child.wait();
    for reader in readers {
        let _ = reader.join();
    }
    // Output that arrived while we were stopping still belongs to the log.
    while let Ok(bytes) = receiver.try_recv() {
        pending.extend_from_slice(&bytes);
    }
    if !pending.is_empty() {
        watch.feed(&String::from_utf8_lossy(&pending));
    }
    Ok(ending)
}

/// Removes and returns the longest valid UTF-8 prefix of `pending` (invalid bytes become
/// U+FFFD; an incomplete character at the end waits for the next chunk).
fn take_utf8(pending: &mut Vec<u8>) -> String {
    let keep_from = match std::str::from_utf8(pending) {
        Ok(_) => pending.len(),
        Err(error) if error.error_len().is_none() => error.valid_up_to(),
        Err(_) => pending.len(),
    };
    let rest = pending.split_off(keep_from);
    let text = String::from_utf8_lossy(pending).into_owned();
    *pending = rest;
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_patterns_must_appear_in_order() {
        let expect = ["one", "two", "three"];
        let mut watch = Watch::new(&expect, &[]);
        assert_eq!(watch.feed("two\none\n"), Progress::Waiting);
        assert_eq!(watch.missing(), Some("two"));
        assert_eq!(watch.feed("three\n"), Progress::Waiting);
        assert_eq!(watch.feed("two three"), Progress::Complete);
        assert_eq!(watch.missing(), None);
    }

    #[test]
    fn one_occurrence_satisfies_one_pattern_only() {
        let expect = ["ping", "ping"];
        let mut watch = Watch::new(&expect, &[]);
        assert_eq!(watch.feed("ping\n"), Progress::Waiting);
        assert_eq!(watch.feed("ping\n"), Progress::Complete);
    }

    #[test]
    fn patterns_may_straddle_chunks() {
        let expect = ["cell ping: started"];
        let forbid = ["[ping]"];
        let mut watch = Watch::new(&expect, &forbid);
        assert_eq!(watch.feed("cell pi"), Progress::Waiting);
        assert_eq!(watch.feed("ng: started\n[pi"), Progress::Complete);
        assert_eq!(watch.feed("ng] hello"), Progress::Forbidden);
        assert_eq!(watch.forbidden(), Some("[ping]"));
    }

    #[test]
    fn forbidden_patterns_win_and_panic_is_always_forbidden() {
        let expect = ["ok"];
        let mut watch = Watch::new(&expect, &[]);
        assert_eq!(watch.feed("kernel PANIC at x\nok\n"), Progress::Forbidden);
        assert_eq!(watch.forbidden(), Some("PANIC"));
        let mut watch = Watch::new(&expect, &[]);
        assert_eq!(watch.feed("kernel pa"), Progress::Waiting);
        assert_eq!(watch.feed("nic: oops"), Progress::Forbidden);
    }

    #[test]
    fn last_lines_drops_carriage_returns() {
        let text = "a\r\nb\r\nc\r\nd";
        assert_eq!(last_lines(text, 2), ["c", "d"]);
        assert_eq!(last_lines(text, 10), ["a", "b", "c", "d"]);
    }

    #[test]
    fn utf8_split_across_chunks_is_kept_whole() {
        let bytes = "é".as_bytes();
        let mut pending = vec![b'a', bytes[0]];
        assert_eq!(take_utf8(&mut pending), "a");
        pending.push(bytes[1]);
        assert_eq!(take_utf8(&mut pending), "é");
        assert!(pending.is_empty());
    }

    #[test]
    fn run_observed_stops_early_and_on_timeout() {
        // `sh` stands in for QEMU: prints, then would sleep for a long time.
        let expect = ["ready"];
        let mut watch = Watch::new(&expect, &[]);
        let mut command = Command::new("sh");
        command.args(["-c", "echo ready; exec sleep 30"]);
        let started = Instant::now();
        let ending = run_observed(command, &mut watch, Duration::from_secs(20)).unwrap();
        assert_eq!(ending, Ending::Decided);
        assert!(started.elapsed() < Duration::from_secs(5));

        let expect = ["never"];
        let mut watch = Watch::new(&expect, &[]);
        let mut command = Command::new("sh");
        command.args(["-c", "echo something; exec sleep 30"]);
        let ending = run_observed(command, &mut watch, Duration::from_millis(300)).unwrap();
        assert_eq!(ending, Ending::TimedOut);
        assert_eq!(watch.missing(), Some("never"));
        assert!(watch.text().contains("something"));
    }
}
