//! Hypercalls: the one place the SDK executes `hvc #0` (or `svc #0` in a cell at EL0).
//!
//! One private function, `raw_call`, executes `hvc #0` (`svc #0` when
//! [`crate::start::at_el0`]) following [`abi::hvc`]: call number in
//! `x0`, arguments in `x1..=x5`; status back in `x0`, results in `x1..=x5` (only
//! `REPLY_WAIT` returns five: the badge and four message words); every other general
//! register preserved. The public functions wrap it, one per call (the cell-control
//! calls are wrapped in [`crate::cell`], the IPC calls in [`crate::ipc`],
//! [`crate::notification`] and [`crate::caps`]), and decode the status into [`HvcError`]. A status
//! the ABI does not allow (an unknown error code, an error from a call that cannot fail, an
//! out-of-range result) means the kernel and this SDK were built from different ABIs: the
//! cell prints a fixed message and exits with [`EXIT_CODE_ABI_MISMATCH`] rather than guess.
//!
//! `raw_call` is sound because of the current set of calls: none of them writes the cell's
//! memory (results come back only in registers; IPC messages travel in registers too), so
//! no Rust reference can be changed behind the compiler's back. Shared memory regions are
//! written by other cells at any time, which is why [`crate::ring`] sees them only as
//! atomics. [`call_unchecked`] exposes it for cells that test the kernel's
//! argument checking with any call number; a call that fills a buffer must get a wrapper
//! that takes `&mut [u8]`, and must then be refused by `call_unchecked`.
//!
//! The system registers (counter, timer, interrupt interface, PMU) are in
//! `registers.rs`. Off bare-metal AArch64 (host unit tests, `cargo check` on a
//! workstation) the same functions talk to the in-process fake kernel of `sdk::host`.

use crate::start::EXIT_CODE_ABI_MISMATCH;
use abi::hvc::{CONSOLE_WRITE, CONSOLE_WRITE_MAX, EXIT, STATUS_OK, TIME, VCPU_INFO, YIELD};

pub use abi::hvc::HvcError;

/// The registers a hypercall hands back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Return {
    /// `x0`: [`STATUS_OK`] or an [`HvcError`] code.
    pub status: u64,
    /// `x1..=x5`: the call's results (meaningless on error; `x5` is a result only of
    /// `REPLY_WAIT`, other calls leave it as it was).
    pub results: [u64; 5],
}

/// Executes `hvc #0` with `number` in `x0` and `arguments` in `x1..=x5`.
// Always inlined, like `call` and `infallible_call`: the arguments then go straight into
// x1..=x5 instead of through an array on the stack, which the compiler would zero with SIMD
// stores (cells with FP/SIMD trapped must not execute those).
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[inline(always)]
fn raw_call(number: u64, arguments: [u64; 5]) -> Return {
    let status: u64;
    let result1: u64;
    let result2: u64;
    let result3: u64;
    let result4: u64;
    let result5: u64;
    // A cell at EL0 traps with `svc #0` instead (HVC is undefined at EL0); the kernel
    // treats both alike.
    macro_rules! trap {
        ($instruction:literal) => {
            // SAFETY: `hvc #0` (or `svc #0` at EL0) traps to the Cellvisor kernel, which follows
            // `abi::hvc`: it reads x0..=x5, writes x0..=x5 (x5 only for REPLY_WAIT) and preserves
            // every other general register, SP, and the FP/SIMD registers (the kernel saves a
            // vCPU's full register file whenever it switches vCPUs). The operands declare exactly
            // that: x0..=x5 in and out. The kernel may read the cell's memory (CONSOLE_WRITE), so
            // the block is not `nomem`/`readonly` and the compiler completes earlier stores first;
            // no current call writes the cell's memory (see the module docs), so no Rust-visible
            // value changes. It does not touch the stack (`nostack`). The condition flags are not
            // promised by the ABI, so they count as clobbered (no `preserves_flags`). EXIT does not
            // return, which is sound: `exit` loops.
            unsafe {
                core::arch::asm!(
                    $instruction,
                    inlateout("x0") number => status,
                    inlateout("x1") arguments[0] => result1,
                    inlateout("x2") arguments[1] => result2,
                    inlateout("x3") arguments[2] => result3,
                    inlateout("x4") arguments[3] => result4,
                    inlateout("x5") arguments[4] => result5,
                    options(nostack),
                )
            }
        };
    }
    if crate::start::at_el0() {
        trap!("svc #0");
    } else {
        trap!("hvc #0");
    }
    Return {
        status,
        results: [result1, result2, result3, result4, result5],
    }
}

#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
use crate::host::raw_call;

/// Executes any hypercall, `number` in `x0` and `arguments` in `x1..=x5`, and returns the
/// registers as the kernel left them, without decoding the status.
///
/// For cells that test the kernel's checking of call numbers and arguments (the `hostile`
/// cell). Sound for every number because no call of this ABI writes the cell's memory; EXIT
/// stops the cell and FAULT_WAIT may block, as their documentation says.
pub fn call_unchecked(number: u64, arguments: [u64; 5]) -> Return {
    raw_call(number, arguments)
}

/// Performs a call whose errors the caller handles; returns `x1..=x4` on success.
#[inline(always)]
pub(crate) fn call(number: u64, arguments: [u64; 5]) -> Result<[u64; 4], HvcError> {
    let [result1, result2, result3, result4, _] = call_with_five_results(number, arguments)?;
    Ok([result1, result2, result3, result4])
}

/// Performs a call whose errors the caller handles; returns `x1..=x5` on success (for
/// `REPLY_WAIT`, the only call with five results).
#[inline(always)]
pub(crate) fn call_with_five_results(
    number: u64,
    arguments: [u64; 5],
) -> Result<[u64; 5], HvcError> {
    let answer = raw_call(number, arguments);
    if answer.status == STATUS_OK {
        return Ok(answer.results);
    }
    match HvcError::from_code(answer.status) {
        Some(error) => Err(error),
        None => abi_mismatch(),
    }
}

/// Performs a call the ABI says cannot fail; any error is an ABI mismatch.
#[inline(always)]
pub(crate) fn infallible_call(number: u64, arguments: [u64; 5]) -> [u64; 4] {
    call(number, arguments).unwrap_or_else(|_| abi_mismatch())
}

/// Reports that the kernel answered outside the ABI and stops the cell.
///
/// Uses `raw_call` directly and ignores its status: the console wrappers could themselves be
/// what failed.
#[cold]
pub(crate) fn abi_mismatch() -> ! {
    const MESSAGE: &[u8] = b"sdk: the kernel answered a hypercall outside the ABI; exiting\n";
    let _ignored = raw_call(
        CONSOLE_WRITE,
        [
            MESSAGE.as_ptr() as usize as u64,
            MESSAGE.len() as u64,
            0,
            0,
            0,
        ],
    );
    exit(EXIT_CODE_ABI_MISMATCH)
}

/// Writes `bytes` to the console; returns how many bytes the kernel accepted.
///
/// Splits `bytes` into calls of at most [`CONSOLE_WRITE_MAX`] bytes. The kernel prefixes
/// each line with the cell's name, so callers should write whole lines (as
/// [`println!`](crate::println) does). If the kernel accepts fewer bytes than offered, the
/// rest is offered again; if it accepts none, the count so far is returned. An error ends the
/// write (earlier chunks may already be on the console). Writing nothing makes no call.
pub fn console_write(bytes: &[u8]) -> Result<usize, HvcError> {
    let mut written = 0;
    while let Some(rest) = bytes.get(written..).filter(|rest| !rest.is_empty()) {
        let length = rest.len().min(CONSOLE_WRITE_MAX as usize);
        let [accepted, _, _, _] = call(
            CONSOLE_WRITE,
            [rest.as_ptr() as usize as u64, length as u64, 0, 0, 0],
        )?;
        let accepted = usize::try_from(accepted)
            .ok()
            .filter(|&accepted| accepted <= length)
            .unwrap_or_else(|| abi_mismatch());
        if accepted == 0 {
            break;
        }
        written += accepted;
    }
    Ok(written)
}

/// Gives the rest of this time slice to another vCPU of the same priority.
pub fn yield_now() {
    infallible_call(YIELD, [0; 5]);
}

/// Stops the cell (all its vCPUs) with `code`, which the kernel reports.
pub fn exit(code: u64) -> ! {
    loop {
        // EXIT does not return; if a broken kernel resumed us, ask again rather than run on.
        raw_call(EXIT, [code, 0, 0, 0, 0]);
    }
}

/// Who the calling vCPU is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuInfo {
    /// Index of the cell in the boot plan.
    pub cell: u16,
    /// Index of the vCPU within its cell.
    pub vcpu: u16,
    /// Physical core the vCPU is running on now.
    pub core: u16,
    /// How many times the cell has been restarted (0 on its first run).
    pub restarts: u64,
}

/// Identifies the calling vCPU.
pub fn vcpu_info() -> VcpuInfo {
    let [cell, vcpu, core, restarts] = infallible_call(VCPU_INFO, [0; 5]);
    let narrow = |value: u64| u16::try_from(value).unwrap_or_else(|_| abi_mismatch());
    VcpuInfo {
        cell: narrow(cell),
        vcpu: narrow(vcpu),
        core: narrow(core),
        restarts,
    }
}

/// Asks the kernel for the system counter and its frequency in Hz: `(counter, frequency)`.
///
/// [`crate::time::now`] reads the same counter without a hypercall; this call exists for
/// cells that cannot read the counter registers directly.
pub fn time() -> Result<(u64, u64), HvcError> {
    let [counter, frequency, _, _] = call(TIME, [0; 5])?;
    Ok((counter, frequency))
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;

    use super::*;
    use crate::host::{with, Exited};
    use std::vec::Vec;

    /// Runs `f`, expecting it to exit the cell; returns the exit code.
    pub(crate) fn exit_code_of(f: impl FnOnce() + std::panic::UnwindSafe) -> u64 {
        let payload = std::panic::catch_unwind(f).expect_err("the cell did not exit");
        payload
            .downcast::<Exited>()
            .map(|exited| exited.0)
            .expect("the cell panicked instead of exiting")
    }

    #[test]
    fn console_write_splits_into_abi_sized_chunks() {
        let text: Vec<u8> = (0..600u32).map(|i| b'a' + (i % 26) as u8).collect();
        assert_eq!(console_write(&text), Ok(600));
        with(|kernel| {
            assert_eq!(kernel.console, text);
            let lengths: Vec<u64> = kernel.calls.iter().map(|(_, a)| a[1]).collect();
            assert_eq!(lengths, [256, 256, 88]);
            assert!(kernel.calls.iter().all(|(n, _)| *n == CONSOLE_WRITE));
        });
    }

    #[test]
    fn console_write_offers_the_rest_after_a_short_write() {
        with(|kernel| kernel.console_accepts = 7);
        assert_eq!(console_write(b"hello, world\n"), Ok(13));
        with(|kernel| {
            assert_eq!(kernel.console, b"hello, world\n");
            assert_eq!(kernel.calls.len(), 2);
        });
    }

    #[test]
    fn console_write_of_nothing_makes_no_call() {
        assert_eq!(console_write(b""), Ok(0));
        with(|kernel| assert!(kernel.calls.is_empty()));
    }

    #[test]
    fn console_write_returns_the_kernel_error() {
        with(|kernel| kernel.next_status = Some(HvcError::Denied.code()));
        assert_eq!(console_write(b"x"), Err(HvcError::Denied));
    }

    #[test]
    fn unknown_status_exits_with_the_abi_mismatch_code() {
        with(|kernel| kernel.next_status = Some(0x77));
        assert_eq!(
            exit_code_of(|| {
                let _ = console_write(b"x");
            }),
            103
        );
        with(|kernel| {
            assert_eq!(
                kernel.console,
                b"sdk: the kernel answered a hypercall outside the ABI; exiting\n"
            );
        });
    }

    #[test]
    fn accepting_more_than_offered_is_an_abi_mismatch() {
        with(|kernel| kernel.next_results = Some([2, 0, 0, 0, 0]));
        assert_eq!(
            exit_code_of(|| {
                let _ = console_write(b"x");
            }),
            103
        );
    }

    #[test]
    fn an_error_from_an_infallible_call_is_an_abi_mismatch() {
        with(|kernel| kernel.next_status = Some(HvcError::UnknownCall.code()));
        assert_eq!(exit_code_of(yield_now), 103);
    }

    #[test]
    fn vcpu_info_decodes_x1_to_x4() {
        with(|kernel| kernel.restarts = 3);
        assert_eq!(
            vcpu_info(),
            VcpuInfo {
                cell: 2,
                vcpu: 0,
                core: 1,
                restarts: 3,
            }
        );
        with(|kernel| kernel.next_results = Some([1 << 16, 0, 0, 0, 0]));
        assert_eq!(
            exit_code_of(|| {
                let _ = vcpu_info();
            }),
            103
        );
    }

    #[test]
    fn time_returns_counter_and_frequency() {
        with(|kernel| kernel.counter = 1234);
        assert_eq!(time(), Ok((1234, 1_000_000)));
        with(|kernel| kernel.next_status = Some(HvcError::Denied.code()));
        assert_eq!(time(), Err(HvcError::Denied));
    }

    #[test]
    fn call_unchecked_hands_back_any_status_undecoded() {
        assert_eq!(
            call_unchecked(0x3ff, [1, 2, 3, 4, 5]),
            Return {
                status: HvcError::UnknownCall.code(),
                results: [0; 5]
            }
        );
        with(|kernel| kernel.next_status = Some(0x77));
        assert_eq!(call_unchecked(YIELD, [0; 5]).status, 0x77);
        with(|kernel| {
            assert_eq!(kernel.calls, [(0x3ff, [1, 2, 3, 4, 5]), (YIELD, [0; 5])]);
            assert!(kernel.console.is_empty());
        });
    }

    #[test]
    fn exit_passes_the_code_in_x1() {
        assert_eq!(exit_code_of(|| exit(42)), 42);
        with(|kernel| assert_eq!(kernel.calls, [(EXIT, [42, 0, 0, 0, 0])]));
    }
}
