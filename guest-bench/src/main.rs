//! `cvbench`: a static Linux/arm64 program measuring guest operating-system costs, run
//! both under Linux booted natively by QEMU and under Linux inside a Cellvisor cell so the
//! two sets of figures can be compared (the L4Linux / Xen-on-ARM experiment).
//!
//! This crate owns the `cvbench` binary only: its entry point, its raw Linux system calls
//! (`linux`), its allocation-free output (`out`), the benchmarks and the load generator
//! (`bench`), and the linker script `cvbench.ld` that `build.rs` passes to the linker.
//!
//! Invariants:
//! - `#![no_std]`, no allocator, no libc: every system call is a raw `svc #0` in
//!   `linux.rs`, the only module with `unsafe` code (and the only `asm!`).
//! - Single-threaded: `clone` is only ever used as `fork` (`SIGCHLD`, no `CLONE_VM`).
//! - The executable is `ET_EXEC`, statically linked at 0x40_0000, no `PT_INTERP`, with
//!   separate R+X, R and RW `PT_LOAD` segments on 64 KiB boundaries.
//! - Time comes only from `CNTVCT_EL0` / `CNTFRQ_EL0` (read at EL0, `isb` first) and is
//!   reported in nanoseconds (`ticks * 1e9 / freq` in `u128`).
//!
//! Usage: `cvbench [all | <name>...]` (default `all`: every benchmark but `virtio`, which
//! needs the modem cell's port open as descriptor 3), or `cvbench load <seconds>`.
//!
//! Output (stdout, one `write` per line):
//! - `BENCH guest_start_ns=<n>`: the counter, in ns, when the program started;
//! - `BENCH guest_<key>=<n>` per benchmark (see `bench::BENCHMARKS`);
//! - `BENCH-ERROR <key> <syscall> errno=<n>` when a system call fails, or
//!   `BENCH-ERROR <key> child status=<n>` when a child process does not exit with 0
//!   (`n` is its exit code, or 128 + the signal that killed it); the run goes on with the
//!   next benchmark and `cvbench` exits with status 1 at the end;
//! - `BENCH guest_done=1` last.
//!
//! `load` forks two children that mix system calls, pipe traffic, small mappings and
//! integer work for the given number of seconds, then prints `cvbench: load done`.
//!
//! Exit status: 0 on success, 1 if anything failed, 2 on a usage error, 111 on a panic.
//!
//! Only a build for `aarch64-unknown-none` (where `build.rs` sets `cfg(cvbench_guest)`) is
//! the real program; on any other target the crate is a stub `main` that says so, so that a
//! host-wide `cargo clippy --workspace` or `cargo build --workspace` still works.

#![cfg_attr(cvbench_guest, no_std, no_main)]

#[cfg(cvbench_guest)]
mod bench;
#[cfg(cvbench_guest)]
mod linux;
#[cfg(cvbench_guest)]
mod out;

#[cfg(cvbench_guest)]
use out::{Line, STDERR};

/// The host stub: `cvbench` only runs as a Linux/arm64 program.
#[cfg(not(cvbench_guest))]
fn main() {
    eprintln!("cvbench: build it with --target aarch64-unknown-none and run it on Linux/arm64");
    std::process::exit(2);
}

/// The program proper, called by `linux::main_entry` with the command-line arguments.
#[cfg(cvbench_guest)]
fn main(mut args: linux::Args) -> ! {
    let start = linux::counter();
    let first = args.next();
    if first == Some(b"load".as_slice()) {
        let seconds = args.next().and_then(parse_u64);
        match (seconds, args.next()) {
            (Some(seconds), None) => linux::exit(bench::load(seconds)),
            _ => usage(),
        }
    }

    let mut selected = [false; bench::BENCHMARKS.len()];
    let mut any = false;
    for arg in first.into_iter().chain(args) {
        if arg == b"all" {
            for (chosen, benchmark) in selected.iter_mut().zip(&bench::BENCHMARKS) {
                *chosen |= benchmark.in_all;
            }
        } else if let Some(index) = bench::find(arg) {
            selected[index] = true;
        } else {
            Line::new()
                .str("cvbench: unknown benchmark ")
                .bytes(arg)
                .emit(STDERR);
            usage();
        }
        any = true;
    }
    if !any {
        for (chosen, benchmark) in selected.iter_mut().zip(&bench::BENCHMARKS) {
            *chosen = benchmark.in_all;
        }
    }
    linux::exit(bench::run(start, &selected))
}

#[cfg(cvbench_guest)]
fn usage() -> ! {
    let mut line = Line::new();
    line.str("usage: cvbench [all");
    for benchmark in bench::BENCHMARKS {
        line.str(" | ").str(benchmark.name);
    }
    line.str("]... | cvbench load <seconds>").emit(STDERR);
    linux::exit(2)
}

#[cfg(cvbench_guest)]
fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 18 {
        return None;
    }
    text.iter().try_fold(0u64, |value, &digit| {
        digit
            .is_ascii_digit()
            .then(|| value * 10 + u64::from(digit - b'0'))
    })
}

#[cfg(cvbench_guest)]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut line = Line::new();
    line.str("cvbench: panic");
    if let Some(location) = info.location() {
        line.str(" at ")
            .str(location.file())
            .str(":")
            .u64(u64::from(location.line()));
    }
    if let Some(message) = info.message().as_str() {
        line.str(": ").str(message);
    }
    line.emit(STDERR);
    linux::exit(111)
}
