//! The benchmarks and the `load` generator.
//!
//! Each benchmark times a whole loop with the virtual counter and divides by the number of
//! iterations; the counts are chosen so that each takes roughly 20-100 ms of guest time
//! on a ~1 GHz machine (under QEMU `-icount shift=0`, 1 ns = 1 instruction, and the
//! 62.5 MHz counter ticks every 16 ns, far below that).

use core::ffi::CStr;
use core::hint::black_box;

use crate::linux::{self, counter, Errno, Fork, Mapping, SysResult};
use crate::out::{Line, STDERR, STDOUT};

/// One benchmark: reported as `BENCH guest_<key>=<value>`; selectable by `name` or `key`.
pub struct Benchmark {
    /// Short name, e.g. `null_syscall`.
    pub name: &'static str,
    /// Key with its unit, e.g. `null_syscall_ns`.
    pub key: &'static str,
    /// Whether `all` runs it (the others need something only some systems have).
    pub in_all: bool,
    run: fn(&Clock) -> Result<u64, Failure>,
}

/// Every benchmark, in the order `all` runs them.
pub const BENCHMARKS: [Benchmark; 8] = [
    Benchmark {
        name: "null_syscall",
        key: "null_syscall_ns",
        in_all: true,
        run: null_syscall,
    },
    Benchmark {
        name: "ctx_switch",
        key: "ctx_switch_ns",
        in_all: true,
        run: ctx_switch,
    },
    Benchmark {
        name: "fork_exit",
        key: "fork_exit_ns",
        in_all: true,
        run: fork_exit,
    },
    Benchmark {
        name: "fork_exec",
        key: "fork_exec_ns",
        in_all: true,
        run: fork_exec,
    },
    Benchmark {
        name: "page_fault",
        key: "page_fault_ns",
        in_all: true,
        run: page_fault,
    },
    Benchmark {
        name: "pipe_bw",
        key: "pipe_bw_kib_per_s",
        in_all: true,
        run: pipe_bw,
    },
    Benchmark {
        name: "cpu_bound",
        key: "cpu_bound_ns",
        in_all: true,
        run: cpu_bound,
    },
    Benchmark {
        name: "virtio",
        key: "virtio_roundtrip_ns",
        in_all: false,
        run: virtio_roundtrip,
    },
];

/// The index in [`BENCHMARKS`] of the benchmark called `arg` (by name or key).
pub fn find(arg: &[u8]) -> Option<usize> {
    BENCHMARKS
        .iter()
        .position(|b| arg == b.name.as_bytes() || arg == b.key.as_bytes())
}

/// Runs the selected benchmarks and prints their lines; returns the exit status.
pub fn run(start: u64, selected: &[bool; BENCHMARKS.len()]) -> i32 {
    let frequency = linux::counter_frequency();
    if frequency == 0 {
        Line::new()
            .str("BENCH-ERROR start_ns cntfrq errno=0")
            .emit(STDOUT);
        return 1;
    }
    let clock = Clock { frequency };
    Line::new()
        .str("BENCH guest_start_ns=")
        .u64(clock.ns(start))
        .emit(STDOUT);

    let mut status = 0;
    for (benchmark, _) in BENCHMARKS.iter().zip(selected).filter(|(_, &on)| on) {
        match (benchmark.run)(&clock) {
            Ok(value) => Line::new()
                .str("BENCH guest_")
                .str(benchmark.key)
                .str("=")
                .u64(value)
                .emit(STDOUT),
            Err(failure) => {
                failure.report(benchmark.key);
                status = 1;
            }
        }
    }
    Line::new().str("BENCH guest_done=1").emit(STDOUT);
    status
}

/// Converts counter ticks to nanoseconds.
pub struct Clock {
    frequency: u64,
}

impl Clock {
    fn ns(&self, ticks: u64) -> u64 {
        (u128::from(ticks) * 1_000_000_000 / u128::from(self.frequency)) as u64
    }

    /// Nanoseconds from `start` (a counter value) to now.
    fn since(&self, start: u64) -> u64 {
        self.ns(counter().wrapping_sub(start))
    }
}

/// Why a benchmark failed.
enum Failure {
    /// A system call failed (errno 0: it returned end of file or a short count).
    Syscall(&'static str, Errno),
    /// A child exited with this code (128 + signal if a signal killed it).
    Child(i32),
}

impl Failure {
    fn report(&self, key: &str) {
        let mut line = Line::new();
        line.str("BENCH-ERROR ").str(key).str(" ");
        match self {
            Failure::Syscall(syscall, errno) => line.str(syscall).str(" errno=").i64(errno.0),
            Failure::Child(code) => line.str("child status=").i64(i64::from(*code)),
        };
        line.emit(STDOUT);
    }
}

/// Names the system call in a failure.
trait OrFail<T> {
    fn or_fail(self, syscall: &'static str) -> Result<T, Failure>;
}

impl<T> OrFail<T> for SysResult<T> {
    fn or_fail(self, syscall: &'static str) -> Result<T, Failure> {
        self.map_err(|errno| Failure::Syscall(syscall, errno))
    }
}

/// A file descriptor, closed when dropped.
struct Fd(i32);

impl Drop for Fd {
    fn drop(&mut self) {
        let _ = linux::close(self.0);
    }
}

fn pipe() -> Result<(Fd, Fd), Failure> {
    let (read, write) = linux::pipe().or_fail("pipe2")?;
    Ok((Fd(read), Fd(write)))
}

/// Forks; the child runs `child` and exits with what it returns. Returns the child's pid.
fn spawn(child: impl FnOnce() -> i32) -> Result<i32, Failure> {
    match linux::fork().or_fail("clone")? {
        Fork::Child => linux::exit(child()),
        Fork::Parent(pid) => Ok(pid),
    }
}

/// Waits for `pid` and checks that it exited with status 0.
fn reap(pid: i32) -> Result<(), Failure> {
    let status = linux::wait4(pid).or_fail("wait4")?;
    let code = if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        128 + (status & 0x7f)
    };
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::Child(code))
    }
}

/// Writes all of `buf` to `fd`.
fn write_all(fd: i32, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        match linux::write(fd, buf)? {
            0 => return Err(Errno(0)),
            n => buf = &buf[n..],
        }
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes from `fd` (errno 0 at an early end of file).
fn read_exact(fd: i32, mut buf: &mut [u8]) -> SysResult<()> {
    while !buf.is_empty() {
        match linux::read(fd, buf)? {
            0 => return Err(Errno(0)),
            n => buf = &mut buf[n..],
        }
    }
    Ok(())
}

const NULL_SYSCALLS: u64 = 20_000;

/// `getppid` × 20000: ns per call.
fn null_syscall(clock: &Clock) -> Result<u64, Failure> {
    let start = counter();
    for _ in 0..NULL_SYSCALLS {
        black_box(linux::getppid());
    }
    let ns = clock.since(start);
    let ppid = linux::getppid();
    if ppid < 0 {
        return Err(Failure::Syscall("getppid", Errno(-(ppid as i64))));
    }
    Ok(ns / NULL_SYSCALLS)
}

const ROUND_TRIPS: u64 = 2_000;

/// One byte to a child and back through two pipes × 2000: ns per round trip (two
/// context switches on one CPU).
fn ctx_switch(clock: &Clock) -> Result<u64, Failure> {
    let (to_child_r, to_child_w) = pipe()?;
    let (to_parent_r, to_parent_w) = pipe()?;
    let pid = spawn(|| {
        let _ = linux::close(to_child_w.0);
        let _ = linux::close(to_parent_r.0);
        let mut byte = [0u8; 1];
        for _ in 0..ROUND_TRIPS {
            if read_exact(to_child_r.0, &mut byte).is_err()
                || write_all(to_parent_w.0, &byte).is_err()
            {
                return 1;
            }
        }
        0
    })?;
    drop(to_child_r);
    drop(to_parent_w);

    let mut byte = [0x42u8; 1];
    let start = counter();
    let mut result = Ok(());
    for _ in 0..ROUND_TRIPS {
        result = write_all(to_child_w.0, &byte)
            .or_fail("write")
            .and_then(|()| read_exact(to_parent_r.0, &mut byte).or_fail("read"));
        if result.is_err() {
            break;
        }
    }
    let ns = clock.since(start);
    drop(to_child_w);
    drop(to_parent_r);
    // A dead child explains a failed read better than the read does.
    reap(pid)?;
    result?;
    Ok(ns / ROUND_TRIPS)
}

const FORK_EXITS: u64 = 200;

/// `fork` + child `exit_group(0)` + `wait4` × 200: ns per iteration.
fn fork_exit(clock: &Clock) -> Result<u64, Failure> {
    let start = counter();
    for _ in 0..FORK_EXITS {
        reap(spawn(|| 0)?)?;
    }
    Ok(clock.since(start) / FORK_EXITS)
}

const FORK_EXECS: u64 = 50;
const EXEC_PATH: &CStr = c"/bin/busybox";

/// `fork` + child `execve("/bin/busybox", ["true"], [])` + `wait4` × 50: ns per
/// iteration. A child whose `execve` fails reports it and exits 127.
fn fork_exec(clock: &Clock) -> Result<u64, Failure> {
    let start = counter();
    for _ in 0..FORK_EXECS {
        reap(spawn(|| {
            let errno = linux::execve(EXEC_PATH, &[c"true"]);
            Failure::Syscall("execve", errno).report("fork_exec_ns");
            127
        })?)?;
    }
    Ok(clock.since(start) / FORK_EXECS)
}

const FAULT_MAPPING: usize = 8 << 20;
const FAULT_ROUNDS: u64 = 4;
const PAGE: usize = 4096;

/// `mmap` 8 MiB, write a byte per 4 KiB page, `munmap`, × 4: ns per page touched.
fn page_fault(clock: &Clock) -> Result<u64, Failure> {
    let mut pages = 0u64;
    let start = counter();
    for round in 0..FAULT_ROUNDS {
        let mut mapping = Mapping::anonymous(FAULT_MAPPING).or_fail("mmap")?;
        pages += mapping.touch(PAGE, round as u8 + 1) as u64;
        mapping.unmap().or_fail("munmap")?;
    }
    Ok(clock.since(start) / pages.max(1))
}

const PIPE_CHUNK: usize = 64 << 10;
const PIPE_TOTAL: usize = 16 << 20;

/// 16 MiB through a pipe to a child reading 64 KiB at a time: KiB per second.
fn pipe_bw(clock: &Clock) -> Result<u64, Failure> {
    let (read_end, write_end) = pipe()?;
    let pid = spawn(|| {
        let _ = linux::close(write_end.0);
        let mut buf = [0u8; PIPE_CHUNK];
        let mut total = 0;
        loop {
            match linux::read(read_end.0, &mut buf) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(_) => return 2,
            }
        }
        i32::from(total != PIPE_TOTAL)
    })?;
    drop(read_end);

    let buf = [0x5au8; PIPE_CHUNK];
    let start = counter();
    let mut result = Ok(());
    for _ in 0..PIPE_TOTAL / PIPE_CHUNK {
        result = write_all(write_end.0, black_box(&buf)).or_fail("write");
        if result.is_err() {
            break;
        }
    }
    drop(write_end);
    let reaped = reap(pid);
    let ns = clock.since(start).max(1);
    reaped?;
    result?;
    let kib = (PIPE_TOTAL / 1024) as u128;
    Ok((kib * 1_000_000_000 / u128::from(ns)) as u64)
}

const CPU_ITERATIONS: u64 = 5_000_000;

/// One step of xorshift64.
#[inline(always)]
fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// 5 million rounds of xorshift64 into an accumulator (about 45 M instructions): total ns.
fn cpu_bound(clock: &Clock) -> Result<u64, Failure> {
    let mut x = black_box(0x9e37_79b9_7f4a_7c15u64);
    let mut acc = 0u64;
    let start = counter();
    for i in 0..CPU_ITERATIONS {
        x = xorshift(x);
        acc = acc.wrapping_add(x ^ i);
    }
    black_box(acc);
    Ok(clock.since(start))
}

/// `cvbench load <seconds>`: two children each mix system calls, pipe traffic, small
/// mappings and integer work until `seconds` have passed; returns the exit status.
pub fn load(seconds: u64) -> i32 {
    let frequency = linux::counter_frequency();
    let deadline = counter().saturating_add(seconds.saturating_mul(frequency));
    let mut ok = true;
    let mut pids = [0i32; 2];
    for (n, pid) in pids.iter_mut().enumerate() {
        match spawn(|| load_child(deadline, n as u64 + 1)) {
            Ok(child) => *pid = child,
            Err(failure) => {
                failure.report("load");
                ok = false;
            }
        }
    }
    for pid in pids.into_iter().filter(|&pid| pid != 0) {
        if let Err(failure) = reap(pid) {
            failure.report("load");
            ok = false;
        }
    }
    if ok {
        Line::new().str("cvbench: load done").emit(STDOUT);
        0
    } else {
        Line::new().str("cvbench: load failed").emit(STDERR);
        1
    }
}

fn load_child(deadline: u64, seed: u64) -> i32 {
    match load_loop(deadline, seed) {
        Ok(()) => 0,
        Err(failure) => {
            failure.report("load");
            1
        }
    }
}

fn load_loop(deadline: u64, seed: u64) -> Result<(), Failure> {
    let (read_end, write_end) = pipe()?;
    let mut buf = [0u8; 256];
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while counter() < deadline {
        for _ in 0..64 {
            black_box(linux::getppid());
        }
        buf[0] = x as u8;
        write_all(write_end.0, &buf).or_fail("write")?;
        read_exact(read_end.0, &mut buf).or_fail("read")?;
        let mut mapping = Mapping::anonymous(64 << 10).or_fail("mmap")?;
        mapping.touch(PAGE, buf[0]);
        mapping.unmap().or_fail("munmap")?;
        for _ in 0..20_000 {
            x = xorshift(x);
        }
        x = black_box(x);
    }
    Ok(())
}

const MODEM_ROUND_TRIPS: u64 = 200;
/// The descriptor of the virtio-console port to the modem cell, opened raw by `/init`.
const MODEM_PORT: i32 = 3;

/// `AT` written on the virtio-console port (descriptor 3) and the modem cell's `OK` read
/// back, × 200: ns per round trip (Linux's virtio_console driver, the device-model cell
/// `vconsole`, the modem cell and back).
fn virtio_roundtrip(clock: &Clock) -> Result<u64, Failure> {
    let start = counter();
    for _ in 0..MODEM_ROUND_TRIPS {
        write_all(MODEM_PORT, b"AT\n").or_fail("write")?;
        let mut answer = [0u8; 3];
        read_exact(MODEM_PORT, &mut answer).or_fail("read")?;
        if &answer != b"OK\n" {
            return Err(Failure::Syscall("read", Errno(0)));
        }
    }
    Ok(clock.since(start) / MODEM_ROUND_TRIPS)
}
