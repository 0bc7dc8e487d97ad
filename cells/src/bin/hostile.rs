//! `hostile`: abuses the hypercall ABI, then makes one attack per run; its restarts (by the
//! kernel's `restart` policy or a supervisor) walk it through every attack.
//!
//! Every run first calls, without faulting:
//! - every undefined call number in `0..0x400` and a few huge ones (some of which a kernel
//!   that truncated the number to 32 or 8 bits would mistake for a defined call), each with
//!   random arguments: each must answer `UnknownCall`;
//! - the capability calls (CALL, REPLY_WAIT, SIGNAL, WAIT, POLL, CAP_INFO) with random
//!   arguments: this cell holds no capability, so each must answer `Denied` or
//!   `InvalidCapability` (on a kernel without them, which answers CAP_INFO with
//!   `UnknownCall`, they count as undefined calls instead);
//! - the defined calls that take arguments, with random arguments from a xorshift generator:
//!   CONSOLE_WRITE must succeed exactly when the range is inside this cell's RAM and the
//!   length is 1..=256, and otherwise answer `InvalidAddress` (bad range) or `InvalidLength`
//!   (bad length; either when both are bad); CELL_CONTROL and CELL_STATUS of another cell
//!   must be refused (`Denied`, or `InvalidArgument` for an index the plan lacks);
//!   CELL_STATUS of itself, VCPU_INFO, TIME, NULL and YIELD ignore extra arguments and must
//!   succeed;
//!
//! and prints `hostile run <r>: <n> undefined calls refused, <m> bad arguments refused`. Any
//! other answer is printed as `hostile run <r>: UNEXPECTED ...` (a test forbids that word).
//!
//! It then tries to set up a hardware watchpoint on one of its own words (the OS Lock
//! unlocked, DBGWVR0/DBGWCR0_EL1 written, MDSCR_EL1.KDE and MDE set, debug exceptions
//! unmasked) and loads that word. Debug state is the core's, shared with the other cells, so
//! the kernel must ignore all of it: the watchpoint registers must read back as zero, the OS
//! Lock as unlocked, MDSCR_EL1 as written (it is virtual), and no debug exception may be
//! taken. It prints `hostile run <r>: debug registers refused`, or `UNEXPECTED`.
//! EXIT and FAULT_WAIT are not called (they would end or block the run).
//!
//! Then, with r = [`sdk::start::restarts`], it prints `hostile run <r>: attack <what>` and:
//! 0 reads the IPA just past its RAM; 1 writes one page further; 2 reads the GIC distributor;
//! 3 writes the UART; 4 jumps to an unmapped IPA; 5 executes `hvc #1` (an illegal
//! hypercall); 6 and later prints `hostile: spinning forever` and spins without yielding
//! (its budget must limit it). Attacks 0 to 5 must each fault; if one does not, the cell
//! prints `hostile run <r>: UNEXPECTED: the attack did not fault` and exits with
//! [`EXIT_CODE_NOT_CONTAINED`].
#![no_std]
#![no_main]

use sdk::abi::hvc::{
    HvcError, CALL, CAP_INFO, CELL_CONTROL, CELL_STATUS, CONSOLE_WRITE, CONSOLE_WRITE_MAX, NULL,
    POLL, REPLY_WAIT, SIGNAL, STATUS_OK, TIME, VCPU_INFO, WAIT, YIELD,
};
use sdk::abi::image::CELL_RAM_IPA;
use sdk::hvc::call_unchecked;

/// This cell's RAM size: must equal `memory` of the hostile cell in the system descriptions.
const RAM_SIZE: u64 = 2 * 1024 * 1024;
/// First IPA after this cell's RAM.
const RAM_END: u64 = CELL_RAM_IPA + RAM_SIZE;
/// The GIC distributor on QEMU `virt`, never granted to a native cell.
const GIC_DISTRIBUTOR_IPA: u64 = 0x0800_0000;
/// The PL011 UART on QEMU `virt`, owned by the kernel.
const UART_IPA: u64 = 0x0900_0000;
/// An IPA no system maps.
const UNMAPPED_IPA: u64 = 0x1000_0000;
/// Random argument sets tried per defined call.
const RANDOM_TRIES: u32 = 256;
/// Exit code when an attack did not fault.
const EXIT_CODE_NOT_CONTAINED: u64 = 1;

/// Bytes that valid random console writes print: harmless, no line end.
static HARMLESS: [u8; 2 * CONSOLE_WRITE_MAX as usize] = [b'~'; 2 * CONSOLE_WRITE_MAX as usize];

/// Call numbers the ABI defines (all below 0x400), apart from the capability calls.
const DEFINED_CALLS: core::ops::RangeInclusive<u64> = 0x01..=0x09;
/// The capability calls (all below 0x400).
const CAPABILITY_CALLS: [u64; 6] = [CALL, REPLY_WAIT, SIGNAL, WAIT, POLL, CAP_INFO];

/// Call numbers beyond `0..0x400`, each undefined (the low bits of some of them would name a
/// defined call after truncation).
const HUGE_CALLS: [u64; 8] = [
    0x400,
    0x1_0000_0001,
    0x1_0000_0004,
    0x8000_0000_0000_0006,
    0xffff_ffff,
    0xffff_ffff_ffff_ff02,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// A xorshift64 pseudo-random generator (fixed seed per run: reproducible).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..bound` (slightly biased; fine for test inputs).
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn arguments(&mut self) -> [u64; 5] {
        [
            self.next(),
            self.next(),
            self.next(),
            self.next(),
            self.next(),
        ]
    }
}

/// What the kernel must answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expected {
    /// Success.
    Success,
    /// One of these errors.
    Refusal(HvcError, HvcError),
}

/// Counts of the ABI abuse.
struct Tally {
    run: u64,
    /// Whether the kernel implements the capability calls.
    capabilities: bool,
    undefined_refused: u64,
    bad_arguments_refused: u64,
}

impl Tally {
    /// Makes one call and checks the answer against `expected`.
    fn check(&mut self, number: u64, arguments: [u64; 5], expected: Expected) {
        let answer = call_unchecked(number, arguments);
        let as_expected = match expected {
            Expected::Success => answer.status == STATUS_OK,
            Expected::Refusal(first, second) => {
                answer.status == first.code() || answer.status == second.code()
            }
        };
        if !as_expected {
            sdk::println!(
                "hostile run {}: UNEXPECTED status {} from call {number:#x} with arguments \
                 {arguments:x?}",
                self.run,
                answer.status
            );
        } else if let Expected::Refusal(..) = expected {
            if self.defines(number) {
                self.bad_arguments_refused += 1;
            } else {
                self.undefined_refused += 1;
            }
        }
    }
}

impl Tally {
    /// Whether `number` is a call of the kernel's ABI.
    fn defines(&self, number: u64) -> bool {
        DEFINED_CALLS.contains(&number) || (self.capabilities && CAPABILITY_CALLS.contains(&number))
    }
}

/// A CONSOLE_WRITE address: anywhere, around either end of the RAM, or inside [`HARMLESS`].
fn console_address(random: &mut Random) -> u64 {
    match random.below(4) {
        0 => random.next(),
        1 => CELL_RAM_IPA - 1 - random.below(0x1000),
        2 => RAM_END - 0x200 + random.below(0x1200),
        _ => HARMLESS.as_ptr() as u64 + random.below(CONSOLE_WRITE_MAX),
    }
}

/// A CONSOLE_WRITE length: 0, valid (mostly short, to keep the console readable, sometimes the
/// maximum), slightly too long, or anything.
fn console_length(random: &mut Random) -> u64 {
    match random.below(4) {
        0 => 0,
        1 if random.below(8) == 0 => CONSOLE_WRITE_MAX,
        1 => 1 + random.below(4),
        2 => CONSOLE_WRITE_MAX + 1 + random.below(1000),
        _ => random.next(),
    }
}

/// What CONSOLE_WRITE must answer for `address` and `length`.
fn console_expectation(address: u64, length: u64) -> Expected {
    let length_valid = (1..=CONSOLE_WRITE_MAX).contains(&length);
    let range_valid = address >= CELL_RAM_IPA
        && address
            .checked_add(length)
            .is_some_and(|end| end <= RAM_END);
    match (range_valid, length_valid) {
        (true, true) => Expected::Success,
        (true, false) => Expected::Refusal(HvcError::InvalidLength, HvcError::InvalidLength),
        (false, true) => Expected::Refusal(HvcError::InvalidAddress, HvcError::InvalidAddress),
        (false, false) => Expected::Refusal(HvcError::InvalidAddress, HvcError::InvalidLength),
    }
}

/// A cell index other than `own`: a small one (likely a real cell) or anything.
fn other_cell(random: &mut Random, own: u64) -> u64 {
    loop {
        let cell = match random.below(2) {
            0 => random.below(8),
            _ => random.next(),
        };
        if cell != own {
            return cell;
        }
    }
}

/// Calls every undefined number and every defined call with random arguments.
fn abuse_the_abi(run: u64) {
    let own = u64::from(sdk::hvc::vcpu_info().cell);
    let mut random = Random(0x2545_f491_4f6c_dd1d ^ run);
    let capabilities =
        call_unchecked(CAP_INFO, [u64::MAX, 0, 0, 0, 0]).status != HvcError::UnknownCall.code();
    let mut tally = Tally {
        run,
        capabilities,
        undefined_refused: 0,
        bad_arguments_refused: 0,
    };
    let refused = Expected::Refusal(HvcError::UnknownCall, HvcError::UnknownCall);
    for number in 0..0x400 {
        if !tally.defines(number) {
            tally.check(number, random.arguments(), refused);
        }
    }
    for number in HUGE_CALLS {
        tally.check(number, random.arguments(), refused);
    }

    let other_refused = Expected::Refusal(HvcError::Denied, HvcError::InvalidArgument);
    for _ in 0..RANDOM_TRIES {
        let [_, _, x3, x4, x5] = random.arguments();
        let address = console_address(&mut random);
        let length = console_length(&mut random);
        tally.check(
            CONSOLE_WRITE,
            [address, length, x3, x4, x5],
            console_expectation(address, length),
        );

        let [_, operation, x3, x4, x5] = random.arguments();
        let operation = match random.below(2) {
            0 => operation % 3,
            _ => operation,
        };
        let cell = other_cell(&mut random, own);
        tally.check(CELL_CONTROL, [cell, operation, x3, x4, x5], other_refused);

        let [_, x2, x3, x4, x5] = random.arguments();
        let cell = other_cell(&mut random, own);
        tally.check(CELL_STATUS, [cell, x2, x3, x4, x5], other_refused);
        tally.check(CELL_STATUS, [own, x2, x3, x4, x5], Expected::Success);

        for number in [VCPU_INFO, TIME, NULL, YIELD] {
            tally.check(number, random.arguments(), Expected::Success);
        }

        if capabilities {
            let no_capability = Expected::Refusal(HvcError::Denied, HvcError::InvalidCapability);
            for number in CAPABILITY_CALLS {
                let mut arguments = random.arguments();
                // A slot near the start of a table, or anything; SIGNAL bits non-zero.
                if random.below(2) == 0 {
                    arguments[0] = random.below(16);
                }
                if number == SIGNAL {
                    arguments[1] |= 1;
                }
                tally.check(number, arguments, no_capability);
            }
        }
    }
    // End the line of harmless bytes the valid console writes started.
    sdk::println!();
    sdk::println!(
        "hostile run {run}: {} undefined calls refused, {} bad arguments refused",
        tally.undefined_refused,
        tally.bad_arguments_refused
    );
}

/// The word the watchpoint of [`probe_debug_registers`] would watch.
static WATCHED: u64 = 0x5eed;

/// Tries to watch [`WATCHED`] with hardware watchpoint 0 and reads the debug registers back.
fn probe_debug_registers(run: u64) {
    const KDE_AND_MDE: u64 = 1 << 13 | 1 << 15;
    // BAS = 0xff (all 8 bytes), LSC = 0b11 (loads and stores), PAC = 0b01 (EL1), enabled.
    const WATCH_LOADS_AND_STORES_AT_EL1: u64 = 0xff << 5 | 3 << 3 | 1 << 1 | 1;
    let address = core::ptr::addr_of!(WATCHED) as u64;
    let (control, value, monitor, lock_status, loaded): (u64, u64, u64, u64, u64);
    // SAFETY: writes to debug registers, which the kernel traps; had one taken effect, the
    // load could take a debug exception, which the test reports as a fault. The load reads
    // a valid static; PSTATE.D is masked again before the reads.
    unsafe {
        core::arch::asm!(
            "msr oslar_el1, xzr",
            "msr dbgwvr0_el1, {address}",
            "msr dbgwcr0_el1, {watch}",
            "msr mdscr_el1, {kde_mde}",
            "isb",
            "msr daifclr, #8",
            "ldr {loaded}, [{address}]",
            "msr daifset, #8",
            "mrs {control}, dbgwcr0_el1",
            "mrs {value}, dbgwvr0_el1",
            "mrs {monitor}, mdscr_el1",
            "mrs {lock_status}, oslsr_el1",
            address = in(reg) address,
            watch = in(reg) WATCH_LOADS_AND_STORES_AT_EL1,
            kde_mde = in(reg) KDE_AND_MDE,
            loaded = out(reg) loaded,
            control = out(reg) control,
            value = out(reg) value,
            monitor = out(reg) monitor,
            lock_status = out(reg) lock_status,
            options(nostack),
        );
    }
    let os_locked = lock_status & 2 != 0;
    if control == 0 && value == 0 && monitor == KDE_AND_MDE && !os_locked && loaded == WATCHED {
        sdk::println!("hostile run {run}: debug registers refused");
    } else {
        sdk::println!(
            "hostile run {run}: UNEXPECTED debug registers: DBGWCR0 {control:#x}, DBGWVR0 \
             {value:#x}, MDSCR {monitor:#x}, OSLSR {lock_status:#x}"
        );
    }
}

/// Attack 0: a load from the first IPA past the RAM.
fn read_past_ram() {
    // SAFETY: a deliberate fault. RAM_END is outside every region of this cell's stage-2
    // address space, so the load traps to the kernel as a stage-2 data abort; no Rust object
    // lives there and the value is never used.
    let _ = unsafe { core::ptr::read_volatile(RAM_END as *const u64) };
}

/// Attack 1: a store one page past the RAM.
fn write_past_ram() {
    // SAFETY: a deliberate fault: as `read_past_ram`, for a store one page further; the store
    // never reaches memory.
    unsafe { core::ptr::write_volatile((RAM_END + 0x1000) as *mut u64, 0xbad) };
}

/// Attack 2: a load from the GIC distributor.
fn read_gic_distributor() {
    // SAFETY: a deliberate fault: the distributor is not mapped into any native cell's
    // stage-2 address space, so the load traps to the kernel and never reaches the device.
    let _ = unsafe { core::ptr::read_volatile(GIC_DISTRIBUTOR_IPA as *const u32) };
}

/// Attack 3: a store to the UART's data register.
fn write_uart() {
    // SAFETY: a deliberate fault: the UART belongs to the kernel and is not mapped into this
    // cell's stage-2 address space, so the store traps and never reaches the device.
    unsafe { core::ptr::write_volatile(UART_IPA as *mut u32, u32::from(b'!')) };
}

/// Attack 4: a branch to an unmapped IPA.
fn jump_to_unmapped() {
    // SAFETY: a deliberate fault: the instruction fetch at UNMAPPED_IPA traps to the kernel
    // as a stage-2 instruction abort, so no instruction there executes and control never
    // comes back (`noreturn`); `main` reports it if the kernel let it.
    unsafe { core::arch::asm!("br {target}", target = in(reg) UNMAPPED_IPA, options(noreturn)) }
}

/// Attack 5: a hypercall with immediate 1.
fn illegal_hypercall() {
    // SAFETY: a deliberate fault: the ABI defines only `hvc #0`; the kernel treats `hvc #1` as
    // an illegal hypercall and applies the fault policy. Should it return instead, it may
    // have written x0..x4 as for a call (declared clobbered); memory and stack are untouched.
    unsafe {
        core::arch::asm!(
            "hvc #1",
            out("x0") _, out("x1") _, out("x2") _, out("x3") _, out("x4") _,
            options(nostack),
        );
    }
}

sdk::entry!(main);

fn main() {
    let run = sdk::start::restarts();
    abuse_the_abi(run);
    probe_debug_registers(run);
    let attacks: [(&str, fn()); 6] = [
        ("read the IPA just past its RAM", read_past_ram),
        ("write one page past its RAM", write_past_ram),
        ("read the GIC distributor", read_gic_distributor),
        ("write the UART", write_uart),
        ("jump to an unmapped IPA", jump_to_unmapped),
        ("hvc #1 (illegal hypercall)", illegal_hypercall),
    ];
    match usize::try_from(run).ok().and_then(|run| attacks.get(run)) {
        Some((description, attack)) => {
            sdk::println!("hostile run {run}: attack {description}");
            attack();
            sdk::println!("hostile run {run}: UNEXPECTED: the attack did not fault");
            sdk::hvc::exit(EXIT_CODE_NOT_CONTAINED);
        }
        None => {
            sdk::println!("hostile run {run}: attack spin forever without yielding");
            sdk::println!("hostile: spinning forever");
            loop {
                core::hint::spin_loop();
            }
        }
    }
}
