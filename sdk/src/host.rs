//! An in-process fake kernel standing in for `hvc #0` and the system registers off bare metal.
//!
//! It exists so that `cargo test -p cellvisor-sdk` tests the SDK's wrappers on a workstation;
//! it cannot run a cell. State is per thread, so tests run in parallel. What it models:
//! - hypercalls: the console records what it is given, `VCPU_INFO`, `TIME`, `NULL`,
//!   `CELL_STATUS`, `CELL_CONTROL` and `FAULT_WAIT` answer from [`FakeKernel`]'s fields; EXIT
//!   unwinds with an [`Exited`] payload (catch it with `std::panic::catch_unwind`); every
//!   call is recorded in [`FakeKernel::calls`];
//! - the counter advances by [`FakeKernel::counter_step`] on every read;
//! - the virtual timer and the virtual GIC CPU interface: `wfi` with the timer enabled moves
//!   the counter to the timer's compare value and makes INTID 27 pending, as a blocking
//!   kernel would; acknowledging pops [`FakeKernel::pending`];
//! - the PMU cycle counter advances by [`FakeKernel::cycles_step`] on every read.
extern crate std;

use crate::hvc::Return;
use abi::hvc::{
    CELL_CONTROL, CELL_STATUS, CONSOLE_WRITE, EXIT, FAULT_WAIT, NULL, STATUS_OK, TIME, VCPU_INFO,
    YIELD,
};
use std::cell::RefCell;
use std::collections::VecDeque;
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
    pub next_results: Option<[u64; 4]>,
    /// The counter's value.
    pub counter: u64,
    /// How far the counter moves on each read.
    pub counter_step: u64,
    /// The counter frequency in Hz.
    pub frequency: u64,
    /// Number of YIELD calls.
    pub yields: usize,
    /// What CELL_STATUS answers in `x1..=x3` (state code, restarts, faults).
    pub status: [u64; 3],
    /// What FAULT_WAIT answers in `x1..=x4` (cell, kind code, address, pc).
    pub fault: [u64; 4],
    /// Restarts VCPU_INFO reports in `x4`.
    pub restarts: u64,
    /// `CNTV_CTL_EL0` as last written.
    pub timer_control: u64,
    /// `CNTV_CVAL_EL0` as last written.
    pub timer_compare: u64,
    /// `ICC_PMR_EL1` as last written.
    pub priority_mask: u64,
    /// `ICC_IGRPEN1_EL1` as last written.
    pub group1_enable: u64,
    /// Whether `DAIF.I` is set (IRQs masked); the fake never takes an IRQ by itself.
    pub irqs_masked: bool,
    /// INTIDs waiting to be acknowledged, highest priority first.
    pub pending: VecDeque<u64>,
    /// INTIDs acknowledged through `ICC_IAR1_EL1`, in order (1023 for "none").
    pub acknowledged: Vec<u64>,
    /// INTIDs written to `ICC_EOIR1_EL1`, in order.
    pub ended: Vec<u64>,
    /// Number of `wfi` executed.
    pub waits: usize,
    /// `PMCR_EL0`.
    pub performance_monitor_control: u64,
    /// `PMCNTENSET_EL0` bits set so far.
    pub counter_enable: u64,
    /// `PMCCFILTR_EL0` as last written.
    pub cycle_counter_filter: u64,
    /// `PMCCNTR_EL0`.
    pub cycles: u64,
    /// How far the cycle counter moves on each read.
    pub cycles_step: u64,
}

/// The panic payload of a fake EXIT.
#[derive(Debug, PartialEq, Eq)]
pub struct Exited(pub u64);

std::thread_local! {
    static KERNEL: RefCell<FakeKernel> = RefCell::new(FakeKernel {
        counter_step: 1,
        frequency: 1_000_000,
        irqs_masked: true,
        cycles_step: 1,
        ..FakeKernel::default()
    });
}

/// Runs `f` on this thread's fake kernel.
pub fn with<R>(f: impl FnOnce(&mut FakeKernel) -> R) -> R {
    KERNEL.with(|kernel| f(&mut kernel.borrow_mut()))
}

/// The fake `hvc #0`.
pub(crate) fn raw_call(number: u64, arguments: [u64; 5]) -> Return {
    let answer = with(|kernel| {
        kernel.calls.push((number, arguments));
        if let Some(status) = kernel.next_status.take() {
            return Ok(Return {
                status,
                results: [0; 4],
            });
        }
        let results = match number {
            CONSOLE_WRITE => {
                let limit = match kernel.console_accepts {
                    0 => usize::MAX,
                    limit => limit,
                };
                let length = (arguments[1] as usize).min(limit);
                // SAFETY: in this fake, CONSOLE_WRITE's address is always a pointer the SDK
                // took from a live `&[u8]` at least `arguments[1]` bytes long (see
                // `console_write` and `abi_mismatch`), and `length` is not larger.
                let bytes =
                    unsafe { core::slice::from_raw_parts(arguments[0] as *const u8, length) };
                kernel.console.extend_from_slice(bytes);
                [length as u64, 0, 0, 0]
            }
            YIELD => {
                kernel.yields += 1;
                [0; 4]
            }
            EXIT => return Err(Exited(arguments[0])),
            VCPU_INFO => [2, 0, 1, kernel.restarts],
            TIME => [kernel.counter, kernel.frequency, 0, 0],
            NULL | CELL_CONTROL => [0; 4],
            CELL_STATUS => {
                let [state, restarts, faults] = kernel.status;
                [state, restarts, faults, 0]
            }
            FAULT_WAIT => kernel.fault,
            _ => {
                return Ok(Return {
                    status: abi::hvc::HvcError::UnknownCall.code(),
                    results: [0; 4],
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

/// The fake system registers, with the names and signatures of `crate::registers`.
pub(crate) mod registers {
    use super::with;

    /// Timer interrupt the fake raises on `wfi`.
    const TIMER_INTID: u64 = 27;
    /// What `ICC_IAR1_EL1` reads when nothing is pending.
    const SPURIOUS_INTID: u64 = 1023;

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

    pub(crate) fn set_timer_control(value: u64) {
        with(|kernel| kernel.timer_control = value);
    }

    pub(crate) fn set_timer_compare(value: u64) {
        with(|kernel| kernel.timer_compare = value);
    }

    pub(crate) fn set_priority_mask(value: u64) {
        with(|kernel| kernel.priority_mask = value);
    }

    pub(crate) fn set_group1_enable(value: u64) {
        with(|kernel| kernel.group1_enable = value);
    }

    pub(crate) fn acknowledge_interrupt() -> u64 {
        with(|kernel| {
            let intid = if kernel.group1_enable & 1 == 1 {
                kernel.pending.pop_front().unwrap_or(SPURIOUS_INTID)
            } else {
                SPURIOUS_INTID
            };
            kernel.acknowledged.push(intid);
            intid
        })
    }

    pub(crate) fn end_of_interrupt(intid: u64) {
        with(|kernel| kernel.ended.push(intid));
    }

    pub(crate) fn mask_irqs() {
        with(|kernel| kernel.irqs_masked = true);
    }

    pub(crate) fn unmask_irqs() {
        with(|kernel| kernel.irqs_masked = false);
    }

    /// Blocks like the kernel would: with the timer enabled and unmasked, time moves on to
    /// the compare value and the timer interrupt becomes pending.
    pub(crate) fn wait_for_interrupt() {
        with(|kernel| {
            kernel.waits += 1;
            if kernel.timer_control & 0b11 == 0b01 {
                kernel.counter = kernel.counter.max(kernel.timer_compare);
                if !kernel.pending.contains(&TIMER_INTID) {
                    kernel.pending.push_back(TIMER_INTID);
                }
            }
        });
    }

    pub(crate) fn performance_monitor_control() -> u64 {
        with(|kernel| kernel.performance_monitor_control)
    }

    pub(crate) fn set_performance_monitor_control(value: u64) {
        with(|kernel| {
            if value & 0b100 != 0 {
                kernel.cycles = 0;
            }
            // C (bit 2) is write-only: it reads as zero.
            kernel.performance_monitor_control = value & !0b100;
        });
    }

    pub(crate) fn set_counter_enable(value: u64) {
        with(|kernel| kernel.counter_enable |= value);
    }

    pub(crate) fn set_cycle_counter_filter(value: u64) {
        with(|kernel| kernel.cycle_counter_filter = value);
    }

    pub(crate) fn cycle_counter() -> u64 {
        with(|kernel| {
            let value = kernel.cycles;
            kernel.cycles = kernel.cycles.wrapping_add(kernel.cycles_step);
            value
        })
    }
}
