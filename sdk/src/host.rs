//! An in-process fake kernel standing in for `hvc #0` and the system registers off bare metal.
//!
//! It exists so that `cargo test -p cellvisor-sdk` tests the SDK's wrappers on a workstation;
//! it cannot run a cell. State is per thread, so tests run in parallel. What it models:
//! - hypercalls: the console records what it is given, `VCPU_INFO`, `TIME`, `NULL`,
//!   `CELL_STATUS`, `CELL_CONTROL` and `FAULT_WAIT` answer from [`FakeKernel`]'s fields; EXIT
//!   unwinds with an [`Exited`] payload (catch it with `std::panic::catch_unwind`); every
//!   call is recorded in [`FakeKernel::calls`];
//! - IPC: `CALL` is answered by a fake server that adds 1 to every message word;
//!   `REPLY_WAIT` records the reply in [`FakeKernel::replies`] and receives the next of
//!   [`FakeKernel::incoming`], or is refused with `Denied` when none is left (which ends a
//!   serve loop); `CAP_INFO` answers from [`FakeKernel::capabilities`] (`InvalidCapability`
//!   beyond the table, `Denied` for an empty slot);
//! - notifications: one word of bits per slot in [`FakeKernel::notification_bits`]; `SIGNAL`
//!   sets bits, `POLL` takes them, `WAIT` takes them or, when none are set, first runs the
//!   peer installed with [`set_peer`] (standing in for another cell), and panics if there is
//!   still nothing to take (a real kernel would block forever);
//! - the counter advances by [`FakeKernel::counter_step`] on every read;
//! - the virtual timer and the virtual GIC CPU interface: `wfi` with the timer enabled moves
//!   the counter to the timer's compare value and makes INTID 27 pending, as a blocking
//!   kernel would; acknowledging pops [`FakeKernel::pending`];
//! - the PMU cycle counter advances by [`FakeKernel::cycles_step`] on every read.
extern crate std;

use crate::hvc::Return;
use abi::hvc::{
    HvcError, CALL, CAP_INFO, CELL_CONTROL, CELL_STATUS, CONSOLE_WRITE, EXIT, FAULT_WAIT, NULL,
    POLL, REPLY_WAIT, SIGNAL, STATUS_OK, TIME, VCPU_INFO, WAIT, YIELD,
};
use std::boxed::Box;
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
    /// Results (`x1..=x5`) the next call returns instead of its own (then reset to `None`).
    pub next_results: Option<[u64; 5]>,
    /// The counter's value.
    pub counter: u64,
    /// How far the counter moves on each read.
    pub counter_step: u64,
    /// The counter frequency in Hz.
    pub frequency: u64,
    /// Number of YIELD calls.
    pub yields: usize,
    /// What CELL_STATUS answers in `x1..=x4` (state code, restarts, faults, denials).
    pub status: [u64; 4],
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
    /// The capability table as CAP_INFO describes it: per slot, `None` for an empty slot or
    /// `x1..=x4` (kind code, rights, and the kind's two values).
    pub capabilities: Vec<Option<[u64; 4]>>,
    /// Calls waiting for a REPLY_WAIT: badge and message words.
    pub incoming: VecDeque<(u64, [u64; 4])>,
    /// The reply words of every REPLY_WAIT, in order.
    pub replies: Vec<[u64; 4]>,
    /// Bits set in each notification slot's word.
    pub notification_bits: Vec<u64>,
}

std::thread_local! {
    static PEER: RefCell<Option<Box<dyn FnMut()>>> = RefCell::new(None);
}

/// Installs `peer`, run whenever a WAIT finds no bits: it stands in for another cell, and may
/// use the fake kernel (for example to signal).
pub fn set_peer(peer: impl FnMut() + 'static) {
    PEER.with(|slot| *slot.borrow_mut() = Some(Box::new(peer)));
}

/// Takes the bits of notification `slot`.
fn take_bits(kernel: &mut FakeKernel, slot: u64) -> u64 {
    usize::try_from(slot)
        .ok()
        .and_then(|slot| kernel.notification_bits.get_mut(slot))
        .map_or(0, core::mem::take)
}

/// A fake WAIT: runs the peer while no bit is set (at most once per wait).
fn wait(slot: u64) -> u64 {
    let bits = with(|kernel| take_bits(kernel, slot));
    if bits != 0 {
        return bits;
    }
    let mut peer = PEER.with(|peer| peer.borrow_mut().take());
    if let Some(peer) = peer.as_mut() {
        peer();
    }
    PEER.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = peer;
        }
    });
    match with(|kernel| take_bits(kernel, slot)) {
        0 => panic!("fake kernel: WAIT on slot {slot} would block forever"),
        bits => bits,
    }
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
    if number == WAIT {
        // Answered outside the kernel's borrow: it may run the peer, which uses the kernel.
        let overridden = with(|kernel| {
            kernel.calls.push((number, arguments));
            match (kernel.next_status.take(), kernel.next_results.take()) {
                (Some(status), _) => Some(Return {
                    status,
                    results: [0; 5],
                }),
                (None, Some(results)) => Some(Return {
                    status: STATUS_OK,
                    results,
                }),
                (None, None) => None,
            }
        });
        return overridden.unwrap_or_else(|| Return {
            status: STATUS_OK,
            results: [wait(arguments[0]), 0, 0, 0, 0],
        });
    }
    let answer = with(|kernel| {
        kernel.calls.push((number, arguments));
        if let Some(status) = kernel.next_status.take() {
            return Ok(Return {
                status,
                results: [0; 5],
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
                [length as u64, 0, 0, 0, 0]
            }
            YIELD => {
                kernel.yields += 1;
                [0; 5]
            }
            EXIT => return Err(Exited(arguments[0])),
            VCPU_INFO => [2, 0, 1, kernel.restarts, 0],
            TIME => [kernel.counter, kernel.frequency, 0, 0, 0],
            NULL | CELL_CONTROL => [0; 5],
            CELL_STATUS => {
                let [state, restarts, faults, denials] = kernel.status;
                [state, restarts, faults, denials, 0]
            }
            FAULT_WAIT => {
                let [cell, kind, address, pc] = kernel.fault;
                [cell, kind, address, pc, 0]
            }
            CALL => {
                let [_, message @ ..] = arguments;
                let [word0, word1, word2, word3] = message.map(|word| word.wrapping_add(1));
                [word0, word1, word2, word3, 0]
            }
            REPLY_WAIT => {
                let [_, reply @ ..] = arguments;
                kernel.replies.push(reply);
                match kernel.incoming.pop_front() {
                    Some((badge, [word0, word1, word2, word3])) => {
                        [badge, word0, word1, word2, word3]
                    }
                    None => return Ok(refusal(HvcError::Denied)),
                }
            }
            SIGNAL => {
                let slot = usize::try_from(arguments[0]).expect("fake slots are small");
                if kernel.notification_bits.len() <= slot {
                    kernel.notification_bits.resize(slot + 1, 0);
                }
                kernel.notification_bits[slot] |= arguments[1];
                [0; 5]
            }
            POLL => [take_bits(kernel, arguments[0]), 0, 0, 0, 0],
            CAP_INFO => {
                let entry = usize::try_from(arguments[0])
                    .ok()
                    .and_then(|slot| kernel.capabilities.get(slot));
                match entry {
                    None => return Ok(refusal(HvcError::InvalidCapability)),
                    Some(None) => return Ok(refusal(HvcError::Denied)),
                    Some(Some([kind, rights, value3, value4])) => {
                        [*kind, *rights, *value3, *value4, 0]
                    }
                }
            }
            _ => return Ok(refusal(HvcError::UnknownCall)),
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

/// The answer of a refused call.
fn refusal(error: HvcError) -> Return {
    Return {
        status: error.code(),
        results: [0; 5],
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
