//! Cellvisor's EL2 kernel: a capability-based microvisor for AArch64.
//!
//! The kernel owns the hardware that isolation depends on (translation, exceptions,
//! interrupts, the scheduling timer) and nothing else. Boot runs on one core: read the
//! device tree, bring up the console, the EL2 MMU (W^X) and the GIC, decode and re-check
//! the boot plan that `cellvisor build` appended to the image, build every cell's stage-2
//! tables and load its image, then start the other cores through PSCI; every core then
//! runs the vCPUs pinned to it.
//!
//! Invariants: the kernel never parses text and never allocates; every `unsafe` block
//! lives under `arch/` or in `cellmem`/`platform`, each with its reason; nothing a cell
//! does makes the kernel panic (see `trap`).
#![no_std]
#![no_main]

mod arch;
mod cellmem;
mod console;
mod drivers;
mod entropy;
mod guest;
mod interrupts;
mod ipc;
mod platform;
mod system;
mod trap;
mod vcpu;

use arch::exception;
use arch::gic::Gic;
use arch::mmio::DeviceWindow;
use arch::mmu::{self, El2Translation};
use arch::{entry, psci, sysreg, timer};
use core::sync::atomic::{AtomicBool, Ordering};
use drivers::pl011::Pl011;
use platform::{Platform, PlatformError};
use spin::Once;

/// Scheduling time slice: 10 ms.
const TIMESLICE_PER_SECOND: u64 = 100;

static PLATFORM: Once<Platform> = Once::new();
static GIC: Once<Gic> = Once::new();
static EL2_TRANSLATION: Once<El2Translation> = Once::new();
static HALTING: AtomicBool = AtomicBool::new(false);

/// The GIC, once the boot core brought it up.
pub fn gic() -> Option<&'static Gic> {
    GIC.get()
}

/// The board, once read from the device tree.
pub fn platform() -> Option<&'static Platform> {
    PLATFORM.get()
}

/// The boot core's Rust entry, from `entry.rs`, with the DTB address and the address of the
/// core block reserved at the top of its stack.
pub extern "C" fn kernel_main(device_tree: u64, block: usize) -> ! {
    let mut platform = match Platform::from_device_tree(device_tree) {
        Ok(platform) => platform,
        Err(
            error @ PlatformError::Missing {
                uart: Some(uart), ..
            },
        ) => {
            // SAFETY: the device tree names this range as the PL011's registers; the MMU is
            // off, so it is accessed as Device memory.
            let uart = unsafe { DeviceWindow::new(uart.base, uart.size) };
            console::init(Pl011::new(uart));
            error!("{error}: cannot boot");
            halt_this_core();
        }
        // Without the UART there is no console to report on.
        Err(_) => halt_this_core(),
    };
    let cores = &mut platform.cores[..platform.core_count];
    let boot_core_named = kcore::psci::boot_core_first(cores, sysreg::mpidr_el1::read());
    if !boot_core_named {
        platform.core_count = 1;
    }
    let random_seed = platform.random_seed.take();
    if let Some(seed) = random_seed {
        entropy::seed(seed);
    }
    let platform = PLATFORM.call_once(|| platform);
    // SAFETY: the device tree names this range as the PL011's registers; the MMU is off,
    // so it is accessed as Device memory, and later the EL2 map maps it Device-nGnRE.
    let uart = unsafe { DeviceWindow::new(platform.uart.base, platform.uart.size) };
    console::init(Pl011::new(uart));
    info!(
        "Cellvisor {} (EL2 microvisor): {} cores, {} MiB RAM at {:#x}",
        env!("CARGO_PKG_VERSION"),
        platform.core_count,
        platform.ram().iter().map(|&(_, size)| size).sum::<u64>() >> 20,
        platform.ram()[0].0
    );
    if !boot_core_named {
        warning!("the device tree's /cpus does not name the boot CPU: only it can be used");
    }
    if random_seed.is_none() {
        warning!(
            "the device tree has no rng-seed or kaslr-seed: guests start without fresh randomness"
        );
    }
    debug!(
        "device tree at {:#x} ({} bytes); UART {:#x}, GIC distributor {:#x}, redistributors {:#x}",
        platform.device_tree.base,
        platform.device_tree.size,
        platform.uart.base,
        platform.gic_distributor.base,
        platform.gic_redistributors.base
    );

    let devices = [
        platform.uart,
        platform.gic_distributor,
        platform.gic_redistributors,
    ]
    .map(|range| (range.base, range.size));
    let translation = match mmu::build_el2_map(platform.ram(), &devices) {
        Ok(translation) => EL2_TRANSLATION.call_once(|| translation),
        Err(error) => panic!("cannot build the EL2 page tables: {error}"),
    };
    // SAFETY: the map identity-maps the kernel (text, data, stacks), RAM and the devices
    // in use, so execution continues unchanged with the MMU on.
    unsafe { mmu::enable(translation) };

    // SAFETY: the device tree names these ranges as the GIC's registers, mapped Device.
    let gic = GIC.call_once(|| unsafe {
        Gic::new(
            DeviceWindow::new(platform.gic_distributor.base, platform.gic_distributor.size),
            DeviceWindow::new(
                platform.gic_redistributors.base,
                platform.gic_redistributors.size,
            ),
        )
    });
    gic.init_distributor();
    prepare_core(platform, gic);

    let system = match system::build(platform) {
        Ok(system) => system,
        Err(error) => {
            error!("boot plan rejected: {error}");
            error!("stopping: nothing to run");
            halt_this_core();
        }
    };
    let timeslice = timer::frequency() / TIMESLICE_PER_SECOND;
    let cores = (system.plan.core_count() as usize).min(platform.core_count);
    ipc::cache_capabilities(system);
    let vcpus = vcpu::populate(system, cores, timeslice);
    interrupts::route(system, platform, gic, cores);
    accept_console_input(system, platform, gic);
    info!(
        "{} cells, {vcpus} vCPUs on {cores} cores; starting the cores",
        system.plan.cell_count()
    );
    start_secondaries(platform, cores);
    run(0, block)
}

/// Gives console input to the guest cells (if any): the UART's interrupt comes to the boot
/// core.
fn accept_console_input(system: &system::System, platform: &Platform, gic: &Gic) {
    let takers = system
        .plan
        .cells()
        .enumerate()
        .filter(|(_, cell)| cell.kind == abi::plan::CellKind::Guest)
        .fold(0u64, |takers, (index, _)| takers | 1 << (index % 64));
    let Some(intid) = platform.uart_intid.filter(|_| takers != 0) else {
        return;
    };
    console::accept_input(takers);
    gic.route_shared(intid, sysreg::mpidr_el1::read());
    console::tell_focus_at_boot();
}

/// A secondary core's Rust entry, from `entry.rs`.
pub extern "C" fn secondary_main(core: usize, block: usize) -> ! {
    let (Some(platform), Some(gic), Some(translation)) =
        (PLATFORM.get(), GIC.get(), EL2_TRANSLATION.get())
    else {
        halt_this_core();
    };
    // SAFETY: the boot core built this identity map (covering this core's stack and the
    // kernel) before starting this core.
    unsafe { mmu::enable(translation) };
    prepare_core(platform, gic);
    info!("core {core}: online");
    run(core, block)
}

/// MDCR_EL2.TDA, TDOSA and TDRA: debug register accesses below EL2 trap to EL2.
const MDCR_EL2_TRAP_DEBUG: u64 = 1 << 9 | 1 << 10 | 1 << 11;

/// Per-core setup shared by all cores: traps, GIC redistributor and CPU interface, timer.
fn prepare_core(platform: &Platform, gic: &Gic) {
    let pmu_counters = (sysreg::pmcr_el0::read() >> 11) & 0x1f;
    // CPTR_EL2 without traps lets cells (and the context switch) use FP/SIMD; MDCR_EL2.HPMN
    // gives cells every PMU counter, and TDA, TDOSA and TDRA trap every debug register,
    // with the OS Lock locked and MDSCR_EL1 clear for good (`kcore::debug`); HCR_EL2 routes
    // physical interrupts to EL2.
    // SAFETY: these configure traps and debug exceptions for EL1/EL0 only; EL2 execution is
    // unaffected (the kernel uses no debug feature).
    unsafe {
        sysreg::cptr_el2::write(vcpu::CPTR_EL2_NO_TRAPS);
        sysreg::mdcr_el2::write(pmu_counters | MDCR_EL2_TRAP_DEBUG);
        sysreg::oslar_el1::write(1);
        sysreg::mdscr_el1::write(0);
        sysreg::hcr_el2::write(vcpu::HCR_IDLE);
    }
    sysreg::isb();
    mmu::configure_stage2();
    arch::vgic::clear_list_registers();
    timer::init_core();
    let mpidr = sysreg::mpidr_el1::read();
    let ppis = [
        platform.hypervisor_timer_intid,
        platform.virtual_timer_intid,
        platform.maintenance_intid,
        vcpu::SGI_RESCHEDULE,
        vcpu::SGI_HALT,
        vcpu::SGI_POSTED,
    ];
    if let Err(error) = gic.init_core(mpidr, &ppis) {
        panic!("GIC: {error}");
    }
}

fn start_secondaries(platform: &Platform, cores: usize) {
    if cores <= 1 {
        return;
    }
    if !platform.psci_smc {
        warning!("PSCI is not reachable by SMC; running on the boot core only");
        return;
    }
    let entry_point = entry::secondary_entry_address();
    // The boot core is core 0 (`kcore::psci::boot_core_first`).
    for core in 1..cores {
        let status = psci::cpu_on(platform.cores[core], entry_point, core as u64);
        if status != 0 {
            warning!("core {core}: PSCI CPU_ON failed ({status})");
        }
    }
}

/// Enters the scheduler on this core; never returns (the core runs cells from now on).
fn run(core: usize, block: usize) -> ! {
    let resume = {
        let mut state = vcpu::lock_core(core);
        vcpu::schedule(&mut state);
        state.resume_frame()
    };
    exception::enter(block, vcpu::core(core), resume)
}

/// Stops this core for good: interrupts masked, waiting for events forever.
pub fn halt_this_core() -> ! {
    loop {
        sysreg::wait_for_event();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let core = trap::this_core();
    if !HALTING.swap(true, Ordering::AcqRel) && GIC.get().is_some() {
        arch::gic::send_sgi_to_others(vcpu::SGI_HALT);
    }
    // A panic's location is always known (`PanicInfo::location`); "?" would stand for none.
    let (file, line) = info
        .location()
        .map_or(("?", 0), |at| (at.file(), at.line()));
    console::panic_report(format_args!(
        "[kernel] KERNEL PANIC on core {core}: {} at {file}:{line}",
        info.message()
    ));
    halt_this_core()
}
