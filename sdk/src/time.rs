//! Time from the system counter: instants, durations, spinning and sleeping.
//!
//! [`now`] reads `CNTVCT_EL0` directly (no hypercall). For a native cell the kernel leaves
//! `CNTVOFF_EL2` at 0, so the virtual counter equals the physical one: instants are
//! comparable across cells and with the kernel's own timestamps. Durations are
//! [`core::time::Duration`]; conversions to ticks round up, so a deadline computed from a
//! duration is never early.
//!
//! [`sleep`] and [`sleep_until`] block: they arm the EL1 virtual timer ([`crate::timer`]) for
//! the deadline and execute `wfi`, which the kernel turns into "this vCPU is blocked until a
//! virtual interrupt is pending for it", so a sleeping cell uses no processor time. IRQs may
//! stay masked (they are, unless the cell called [`crate::interrupts::enable`]): a pending
//! virtual interrupt ends `wfi` whether or not the core would take it. [`spin_until`] is the
//! busy-waiting alternative.

use crate::{interrupts, registers, timer};
use core::ops::{Add, AddAssign};

pub use core::time::Duration;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// A point in time: a value of the system counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    ticks: u64,
}

impl Instant {
    /// The instant at which the counter read `ticks`.
    pub const fn from_ticks(ticks: u64) -> Self {
        Self { ticks }
    }

    /// The counter value of this instant.
    pub const fn ticks(self) -> u64 {
        self.ticks
    }

    /// `self + duration`, or `None` if the counter would wrap.
    pub fn checked_add(self, duration: Duration) -> Option<Self> {
        let ticks = ticks_from_duration(duration, frequency())?;
        self.ticks.checked_add(ticks).map(Self::from_ticks)
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    pub fn duration_since(self, earlier: Instant) -> Duration {
        duration_from_ticks(self.ticks.saturating_sub(earlier.ticks), frequency())
    }

    /// Time since `self`.
    pub fn elapsed(self) -> Duration {
        now().duration_since(self)
    }
}

/// Adds a duration, saturating at the last representable instant.
impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, duration: Duration) -> Instant {
        self.checked_add(duration)
            .unwrap_or(Instant::from_ticks(u64::MAX))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, duration: Duration) {
        *self = *self + duration;
    }
}

/// The current instant.
pub fn now() -> Instant {
    Instant::from_ticks(registers::counter())
}

/// The counter frequency in Hz (`CNTFRQ_EL0`; 62.5 MHz on QEMU `virt`).
pub fn frequency() -> u64 {
    registers::counter_frequency()
}

/// The counter value read by the cell's very first instruction (`_start`), in ticks.
///
/// Since the counter starts at 0 when the board resets, this is how long the board took from
/// reset to running this cell.
pub fn boot_counter() -> u64 {
    crate::start::boot_counter()
}

/// Number of ticks at `frequency` Hz lasting at least `duration` (rounded up); `None` if it
/// does not fit in a `u64`. A frequency of 0 gives 0.
pub fn ticks_from_duration(duration: Duration, frequency: u64) -> Option<u64> {
    let frequency = u128::from(frequency);
    let whole = u128::from(duration.as_secs()).checked_mul(frequency)?;
    let fraction = (u128::from(duration.subsec_nanos()) * frequency).div_ceil(NANOS_PER_SECOND);
    u64::try_from(whole.checked_add(fraction)?).ok()
}

/// How long `ticks` ticks last at `frequency` Hz (rounded down to a nanosecond). A frequency
/// of 0 gives zero.
pub fn duration_from_ticks(ticks: u64, frequency: u64) -> Duration {
    if frequency == 0 {
        return Duration::ZERO;
    }
    let seconds = ticks / frequency;
    let remainder = u128::from(ticks % frequency);
    // remainder < frequency, so the quotient is below one second and fits in a u32.
    let nanos = (remainder * NANOS_PER_SECOND / u128::from(frequency)) as u32;
    Duration::new(seconds, nanos)
}

/// Busy-waits until `deadline`, without giving up the core.
pub fn spin_until(deadline: Instant) {
    while now() < deadline {
        core::hint::spin_loop();
    }
}

/// Blocks this vCPU until the counter reaches `deadline`; returns at once if it has.
///
/// How: enable the virtual CPU interface, arm the virtual timer for `deadline`, then `wfi`
/// until [`now`] reaches it (a `wfi` may end early for another interrupt, or for a stale
/// timer interrupt, so the counter decides). Afterwards the timer is cancelled and a timer
/// interrupt left pending in the virtual CPU interface is acknowledged and ended, so the next
/// `wfi` blocks again; any other interrupt found pending then is passed to the handler of
/// [`crate::interrupts`] and ended. With IRQs unmasked the timer interrupt is taken by the IRQ
/// vector instead, and the handler sees INTID [`timer::INTID`] too.
///
/// The timer is this function's while it runs: a deadline the cell armed with
/// [`timer::set_deadline`] is cancelled.
pub fn sleep_until(deadline: Instant) {
    if now() >= deadline {
        return;
    }
    interrupts::enable_cpu_interface();
    timer::set_deadline(deadline);
    while now() < deadline {
        registers::wait_for_interrupt();
        // A timer interrupt pending now is stale or from this deadline: clear it, so that the
        // next `wfi` (if the counter is not there yet) blocks instead of returning at once.
        interrupts::drain_pending(timer::INTID);
    }
    timer::cancel();
    interrupts::drain_pending(timer::INTID);
}

/// Blocks this vCPU for at least `duration` (see [`sleep_until`]).
pub fn sleep(duration: Duration) {
    sleep_until(now() + duration);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::with;

    #[test]
    fn ticks_round_up_and_saturate() {
        let qemu = 62_500_000;
        assert_eq!(
            ticks_from_duration(Duration::from_millis(100), qemu),
            Some(6_250_000)
        );
        assert_eq!(ticks_from_duration(Duration::from_nanos(1), qemu), Some(1));
        assert_eq!(ticks_from_duration(Duration::from_nanos(17), qemu), Some(2));
        assert_eq!(ticks_from_duration(Duration::from_secs(3), 0), Some(0));
        assert_eq!(ticks_from_duration(Duration::MAX, qemu), None);
        assert_eq!(
            ticks_from_duration(Duration::from_secs(u64::MAX / 1000), 1000),
            Some(u64::MAX / 1000 * 1000)
        );
    }

    #[test]
    fn durations_from_ticks_round_down() {
        let qemu = 62_500_000;
        assert_eq!(
            duration_from_ticks(6_250_000, qemu),
            Duration::from_millis(100)
        );
        assert_eq!(duration_from_ticks(1, qemu), Duration::from_nanos(16));
        assert_eq!(duration_from_ticks(62_500_001, qemu), Duration::new(1, 16));
        assert_eq!(duration_from_ticks(5, 0), Duration::ZERO);
        assert_eq!(
            duration_from_ticks(u64::MAX, 1),
            Duration::from_secs(u64::MAX)
        );
    }

    #[test]
    fn instant_arithmetic_uses_the_counter_frequency() {
        with(|kernel| kernel.frequency = 1000);
        let start = Instant::from_ticks(5000);
        assert_eq!((start + Duration::from_millis(250)).ticks(), 5250);
        assert_eq!(
            Instant::from_ticks(5250).duration_since(start),
            Duration::from_millis(250)
        );
        assert_eq!(
            start.duration_since(Instant::from_ticks(6000)),
            Duration::ZERO
        );
        assert_eq!(
            Instant::from_ticks(u64::MAX - 1) + Duration::from_secs(1),
            Instant::from_ticks(u64::MAX)
        );
        let mut deadline = start;
        deadline += Duration::from_secs(2);
        assert_eq!(deadline.ticks(), 7000);
    }

    #[test]
    fn sleep_blocks_on_the_timer_then_cancels_and_clears_it() {
        with(|kernel| {
            kernel.frequency = 1000;
            kernel.counter = 100;
            kernel.counter_step = 10;
        });
        sleep(Duration::from_millis(95));
        with(|kernel| {
            // now() read 100, so the deadline is 195; the fake wfi jumps to it.
            assert_eq!(kernel.timer_compare, 195);
            assert_eq!(kernel.waits, 1);
            assert_eq!(kernel.yields, 0);
            assert!(kernel.counter >= 195);
            assert_eq!(kernel.timer_control, 0);
            assert_eq!(kernel.group1_enable, 1);
            assert_eq!(kernel.priority_mask, 0xff);
            assert_eq!(kernel.ended, [27]);
            assert!(kernel.pending.is_empty());
            assert!(kernel.calls.is_empty());
        });
    }

    #[test]
    fn sleep_passes_other_interrupts_to_the_handler() {
        use crate::interrupts::tests::{handled, recording_handler};
        crate::interrupts::set_handler(recording_handler);
        with(|kernel| {
            kernel.frequency = 1000;
            kernel.pending.push_back(33);
        });
        sleep(Duration::from_millis(10));
        assert_eq!(handled(), [33]);
        with(|kernel| {
            assert_eq!(kernel.ended, [33, 27]);
            assert!(kernel.pending.is_empty());
        });
    }

    #[test]
    fn sleep_until_a_past_deadline_returns_at_once() {
        with(|kernel| kernel.counter = 500);
        sleep_until(Instant::from_ticks(400));
        with(|kernel| {
            assert_eq!(kernel.waits, 0);
            assert_eq!(kernel.timer_control, 0);
            assert!(kernel.acknowledged.is_empty());
        });
    }

    #[test]
    fn spin_until_does_not_yield() {
        with(|kernel| kernel.counter_step = 3);
        spin_until(Instant::from_ticks(30));
        with(|kernel| {
            assert_eq!(kernel.yields, 0);
            assert!(kernel.counter >= 30);
        });
    }
}
