//! `ipc_crash_server`: serves `echo` (capability slot 0, adds 1 to every word) but, on its
//! first run, faults on purpose while holding its 5th call: a store to an unmapped IPA.
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
/// An IPA below the cell's RAM (which starts at 0x4000_0000) that no system maps.
const UNMAPPED_IPA: usize = 0x1000_0000;

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

/// Stores to an unmapped IPA: a stage-2 fault the kernel's fault policy handles.
fn fault() {
    // SAFETY: a deliberate fault for the IPC fault test. UNMAPPED_IPA is outside every region
    // of the cell's stage-2 address space, so the store traps to the kernel as a stage-2
    // data abort and never reaches memory; no Rust object lives there.
    unsafe {
        core::ptr::write_volatile(UNMAPPED_IPA as *mut u64, 0xdead_beef);
    }
}
