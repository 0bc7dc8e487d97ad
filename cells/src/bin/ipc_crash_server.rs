//! `ipc_crash_server`: serves `echo` (capability slot 0, adds 1 to every word) but, on its
//! first run, faults on purpose while holding its 5th call: an exclusive load from an odd
//! address of its own RAM, an alignment fault (whatever the memory type). It runs at EL0,
//! so the stage-1 fault comes to the kernel (`HCR_EL2.TGE`), which must report the
//! address the cell used.
//!
//! Its system restarts it; from the second run on (`sdk::start::restarts() > 0`) it serves
//! normally. Prints `server: serving echo (run <r>)`, and `server: faulting on call 5`
//! just before the fault.
#![no_std]
#![no_main]

use sdk::ipc::Server;

/// The `echo` endpoint: the first name of this cell's `caps`.
const ECHO: Server = Server::new(0);
/// The call the first run faults on (counting from 1).
const FAULTING_CALL: u64 = 5;
/// An odd address inside the cell's RAM (2 MiB from 0x4000_0000).
const MISALIGNED: usize = 0x4001_0001;

sdk::entry!(main);

fn main() {
    let run = sdk::start::restarts();
    sdk::println!("server: serving echo (run {run})");
    let mut calls = 0;
    let error = ECHO.serve(|_badge, message| {
        calls += 1;
        if run == 0 && calls == FAULTING_CALL {
            sdk::println!("server: faulting on call {FAULTING_CALL}");
            fault();
        }
        message.map(|word| word.wrapping_add(1))
    });
    sdk::println!("server: refused: {error:?}");
    sdk::hvc::exit(1);
}

/// An exclusive load from [`MISALIGNED`]: an alignment fault the kernel's fault policy
/// handles.
fn fault() {
    // SAFETY: a deliberate fault for the IPC fault test. An exclusive load must be aligned to
    // its size, so this one faults before it reads memory; it changes only the exclusive
    // monitor, which nothing in this cell uses.
    unsafe {
        core::arch::asm!("ldxr {value}, [{address}]", address = in(reg) MISALIGNED,
            value = out(reg) _, options(nostack));
    }
}
