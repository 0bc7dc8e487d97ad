//! Hypercalls and counter reads: the SDK's only `unsafe` besides the start-up assembly.
//!
//! One private function, `raw_call`, executes `hvc #0` following [`abi::hvc`]: call number in
//! `x0`, arguments in `x1..=x5`; status back in `x0`, results in `x1..=x3`; every other
//! general register preserved. The public functions wrap it, one per call, and decode the
//! status into [`HvcError`]. A status the ABI does not allow (an unknown error code, an error
//! from a call that cannot fail, an out-of-range result) means the kernel and this SDK were
//! built from different ABIs: the cell prints a fixed message and exits with
//! [`EXIT_CODE_ABI_MISMATCH`] rather than guess.
//!
//! `raw_call` stays private because its soundness rests on the current set of calls: none of
//! them writes the cell's memory (results come back only in registers), so no Rust reference
//! can be changed behind the compiler's back. A call that fills a buffer must get a wrapper
//! that takes `&mut [u8]`.
//!
//! The counter reads (`CNTVCT_EL0`, `CNTFRQ_EL0`) live here too, so that every instruction
//! the compiler cannot check is in this file.
//!
//! Off bare-metal AArch64 (host unit tests, `cargo check` on a workstation) the same
//! functions talk to an in-process fake kernel, `host`; it exists to test the wrappers and
//! cannot run a cell.

use crate::start::EXIT_CODE_ABI_MISMATCH;
use abi::hvc::{CONSOLE_WRITE, CONSOLE_WRITE_MAX, EXIT, STATUS_OK, TIME, VCPU_INFO, YIELD};

pub use abi::hvc::HvcError;

/// The registers a hypercall hands back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Return {
    /// `x0`: [`STATUS_OK`] or an [`HvcError`] code.
    status: u64,
    /// `x1..=x3`: the call's results (meaningless on error).
    results: [u64; 3],
}

/// Executes `hvc #0` with `number` in `x0` and `arguments` in `x1..=x5`.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
fn raw_call(number: u64, arguments: [u64; 5]) -> Return {
    let status: u64;
    let result1: u64;
    let result2: u64;
    let result3: u64;
    // SAFETY: `hvc #0` traps to the Cellvisor kernel, which follows `abi::hvc`: it reads
    // x0..=x5, writes x0..=x3 and preserves every other general register, SP, and the FP/SIMD
    // registers (the kernel saves a vCPU's full register file whenever it switches vCPUs).
    // The operands declare exactly that: x0..=x3 in and out, x4..=x5 in only. The kernel may
    // read the cell's memory (CONSOLE_WRITE), so the block is not `nomem`/`readonly` and the
    // compiler completes earlier stores first; no current call writes the cell's memory (see
    // the module docs), so no Rust-visible value changes. It does not touch the stack
    // (`nostack`). The condition flags are not promised by the ABI, so they count as
    // clobbered (no `preserves_flags`). EXIT does not return, which is sound: `exit` loops.
    unsafe {
        core::arch::asm!(
            "hvc #0",
            inlateout("x0") number => status,
            inlateout("x1") arguments[0] => result1,
            inlateout("x2") arguments[1] => result2,
            inlateout("x3") arguments[2] => result3,
            in("x4") arguments[3],
            in("x5") arguments[4],
            options(nostack),
        );
    }
    Return {
        status,
        results: [result1, result2, result3],
    }
}

/// Reads the virtual counter `CNTVCT_EL0` (equal to the physical counter for native cells:
/// the kernel leaves `CNTVOFF_EL2` at 0).
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub(crate) fn counter() -> u64 {
    let value: u64;
    // SAFETY: reading CNTVCT_EL0 has no side effect and is allowed at EL1 (EL2 does not trap
    // it for native cells). The `isb` keeps the read from being hoisted above earlier
    // instructions, so successive reads in program order never go backwards. No memory or
    // stack is touched and no flags are changed.
    unsafe {
        core::arch::asm!(
            "isb",
            "mrs {value}, cntvct_el0",
            value = out(reg) value,
            options(nomem, nostack, preserves_flags),
        );
    }
    value
}

/// Reads the counter frequency `CNTFRQ_EL0` in Hz, as the firmware programmed it.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub(crate) fn counter_frequency() -> u64 {
    let value: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effect and is allowed at EL1; no memory, stack
    // or flags are touched.
    unsafe {
        core::arch::asm!(
            "mrs {value}, cntfrq_el0",
            value = out(reg) value,
            options(nomem, nostack, preserves_flags),
        );
    }
    value
}

#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
use host::raw_call;
#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
pub(crate) use host::{counter, counter_frequency};

/// Performs a call whose errors the caller handles; returns `x1..=x3` on success.
fn call(number: u64, arguments: [u64; 5]) -> Result<[u64; 3], HvcError> {
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
fn infallible_call(number: u64, arguments: [u64; 5]) -> [u64; 3] {
    call(number, arguments).unwrap_or_else(|_| abi_mismatch())
}

/// Reports that the kernel answered outside the ABI and stops the cell.
///
/// Uses `raw_call` directly and ignores its status: the console wrappers could themselves be
/// what failed.
#[cold]
fn abi_mismatch() -> ! {
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
        let [accepted, _, _] = call(
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
}

/// Identifies the calling vCPU.
pub fn vcpu_info() -> VcpuInfo {
    let [cell, vcpu, core] = infallible_call(VCPU_INFO, [0; 5]);
    let narrow = |value: u64| u16::try_from(value).unwrap_or_else(|_| abi_mismatch());
    VcpuInfo {
        cell: narrow(cell),
        vcpu: narrow(vcpu),
        core: narrow(core),
    }
}

/// Asks the kernel for the system counter and its frequency in Hz: `(counter, frequency)`.
///
/// [`crate::time::now`] reads the same counter without a hypercall; this call exists for
/// cells that cannot read the counter registers directly.
pub fn time() -> Result<(u64, u64), HvcError> {
    let [counter, frequency, _] = call(TIME, [0; 5])?;
    Ok((counter, frequency))
}

#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
pub mod host {
    //! An in-process fake kernel standing in for `hvc #0` and the counter off bare metal.
    //!
    //! State is per thread, so tests run in parallel. The console records what it is given;
    //! the counter advances by [`FakeKernel::counter_step`] on every read; EXIT unwinds with
    //! an [`Exited`] payload (catch it with `std::panic::catch_unwind`).
    extern crate std;

    use super::Return;
    use abi::hvc::{CONSOLE_WRITE, EXIT, STATUS_OK, TIME, VCPU_INFO, YIELD};
    use std::cell::RefCell;
    use std::vec::Vec;

    /// The state of the fake kernel.
    #[derive(Debug, Default)]
    pub struct FakeKernel {
        /// Every call made, in order: number and arguments.
        pub calls: Vec<(u64, [u64; 5])>,
        /// Bytes written to the console.
        pub console: Vec<u8>,
        /// Most bytes one CONSOLE_WRITE accepts (0 means the ABI's maximum).
        pub console_accepts: usize,
        /// Status the next call returns instead of running it (then reset to `None`).
        pub next_status: Option<u64>,
        /// Results the next call returns instead of its own (then reset to `None`).
        pub next_results: Option<[u64; 3]>,
        /// The counter's value.
        pub counter: u64,
        /// How far the counter moves on each read.
        pub counter_step: u64,
        /// The counter frequency in Hz.
        pub frequency: u64,
        /// Number of YIELD calls.
        pub yields: usize,
    }

    /// The panic payload of a fake EXIT.
    #[derive(Debug, PartialEq, Eq)]
    pub struct Exited(pub u64);

    std::thread_local! {
        static KERNEL: RefCell<FakeKernel> = RefCell::new(FakeKernel {
            counter_step: 1,
            frequency: 1_000_000,
            ..FakeKernel::default()
        });
    }

    /// Runs `f` on this thread's fake kernel.
    pub fn with<R>(f: impl FnOnce(&mut FakeKernel) -> R) -> R {
        KERNEL.with(|kernel| f(&mut kernel.borrow_mut()))
    }

    pub(super) fn raw_call(number: u64, arguments: [u64; 5]) -> Return {
        let answer = with(|kernel| {
            kernel.calls.push((number, arguments));
            if let Some(status) = kernel.next_status.take() {
                return Ok(Return {
                    status,
                    results: [0; 3],
                });
            }
            let results = match number {
                CONSOLE_WRITE => {
                    let limit = match kernel.console_accepts {
                        0 => usize::MAX,
                        limit => limit,
                    };
                    let length = (arguments[1] as usize).min(limit);
                    // SAFETY: in this fake, CONSOLE_WRITE's address is always a pointer the
                    // SDK took from a live `&[u8]` at least `arguments[1]` bytes long (see
                    // `console_write` and `abi_mismatch`), and `length` is not larger.
                    let bytes =
                        unsafe { core::slice::from_raw_parts(arguments[0] as *const u8, length) };
                    kernel.console.extend_from_slice(bytes);
                    [length as u64, 0, 0]
                }
                YIELD => {
                    kernel.yields += 1;
                    [0; 3]
                }
                EXIT => return Err(Exited(arguments[0])),
                VCPU_INFO => [2, 0, 1],
                TIME => [kernel.counter, kernel.frequency, 0],
                _ => {
                    return Ok(Return {
                        status: abi::hvc::HvcError::UnknownCall.code(),
                        results: [0; 3],
                    })
                }
            };
            Ok(Return {
                status: STATUS_OK,
                results: kernel.next_results.take().unwrap_or(results),
            })
        });
        match answer {
            Ok(answer) => answer,
            Err(exited) => std::panic::panic_any(exited),
        }
    }

    pub(crate) fn counter() -> u64 {
        with(|kernel| {
            let value = kernel.counter;
            kernel.counter = kernel.counter.wrapping_add(kernel.counter_step);
            value
        })
    }

    pub(crate) fn counter_frequency() -> u64 {
        with(|kernel| kernel.frequency)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;

    use super::host::{with, Exited};
    use super::*;
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
        with(|kernel| kernel.next_results = Some([2, 0, 0]));
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
    fn vcpu_info_decodes_x1_to_x3() {
        assert_eq!(
            vcpu_info(),
            VcpuInfo {
                cell: 2,
                vcpu: 0,
                core: 1
            }
        );
        with(|kernel| kernel.next_results = Some([1 << 16, 0, 0]));
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
    fn exit_passes_the_code_in_x1() {
        assert_eq!(exit_code_of(|| exit(42)), 42);
        with(|kernel| assert_eq!(kernel.calls, [(EXIT, [42, 0, 0, 0, 0])]));
    }
}
