//! The device tree a guest cell boots with: the QEMU `virt` subset the EL2 kernel
//! presents to a guest (GICv3, the generic timer, one PL011, PSCI by HVC, virtio-mmio slots).
//!
//! Invariants: the GIC (phandle [`GIC_PHANDLE`]) is the root's interrupt parent; every
//! interrupt specifier has 3 cells; `/chosen` carries the bootargs, the console path and,
//! with an initrd, its IPA range; shared memory mapped into the guest is listed under
//! `/reserved-memory` with `no-map`, so Linux leaves it to a driver.

use abi::image::CELL_RAM_IPA;
use vm_fdt::{Error, FdtWriter};

/// Phandle of the interrupt controller.
pub const GIC_PHANDLE: u32 = 1;
/// Phandle of the PL011's fixed clock.
pub const CLOCK_PHANDLE: u32 = 2;
/// The guest's GIC distributor (IPA) and its size.
pub const GIC_DISTRIBUTOR: (u64, u64) = (0x0800_0000, 0x1_0000);
/// The guest's first GIC redistributor (IPA); each vCPU has [`GIC_REDISTRIBUTOR_SIZE`].
pub const GIC_REDISTRIBUTOR: u64 = 0x080a_0000;
/// One redistributor's size (RD and SGI frames).
pub const GIC_REDISTRIBUTOR_SIZE: u64 = 0x2_0000;
/// The guest's PL011 (IPA) and its size.
pub const UART: (u64, u64) = (0x0900_0000, 0x1000);
/// The PL011's SPI (INTID 33).
pub const UART_SPI: u32 = 1;
pub use abi::device::{MAX_VIRTIO_MMIO, VIRTIO_MMIO_BASE, VIRTIO_MMIO_FIRST_SPI, VIRTIO_MMIO_SIZE};
/// The PL011 clock's rate.
pub const UART_CLOCK_HZ: u32 = 24_000_000;

const SPI: u32 = 0;
const PPI: u32 = 1;
const LEVEL_HIGH: u32 = 4;
const EDGE_RISING: u32 = 1;

/// What a guest's device tree describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeSpec<'a> {
    /// vCPU count (MPIDRs 0..vcpus).
    pub vcpus: u8,
    /// Guest RAM size from `CELL_RAM_IPA`.
    pub memory: u64,
    /// The kernel command line.
    pub bootargs: &'a str,
    /// The initrd's IPA range, if any.
    pub initrd: Option<(u64, u64)>,
    /// Number of virtio-mmio slots.
    pub virtio_mmio: u8,
    /// Shared memory mapped into the guest: name, IPA, size.
    pub reserved: Vec<(&'a str, u64, u64)>,
}

fn reg(writer: &mut FdtWriter, ranges: &[(u64, u64)]) -> Result<(), Error> {
    let cells: Vec<u64> = ranges
        .iter()
        .flat_map(|&(base, size)| [base, size])
        .collect();
    writer.property_array_u64("reg", &cells)
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| value.to_string()).collect()
}

/// Writes the device tree blob for `spec`.
pub fn device_tree(spec: &TreeSpec) -> Result<Vec<u8>, Error> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", "linux,dummy-virt")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;

    let memory = fdt.begin_node(&format!("memory@{CELL_RAM_IPA:x}"))?;
    fdt.property_string("device_type", "memory")?;
    reg(&mut fdt, &[(CELL_RAM_IPA, spec.memory)])?;
    fdt.end_node(memory)?;

    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for index in 0..u32::from(spec.vcpus) {
        let cpu = fdt.begin_node(&format!("cpu@{index:x}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,cortex-a72")?;
        fdt.property_u32("reg", index)?;
        fdt.property_string("enable-method", "psci")?;
        fdt.end_node(cpu)?;
    }
    fdt.end_node(cpus)?;

    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list("compatible", strings(&["arm,psci-1.0", "arm,psci-0.2"]))?;
    fdt.property_string("method", "hvc")?;
    fdt.end_node(psci)?;

    let gic = fdt.begin_node(&format!("intc@{:x}", GIC_DISTRIBUTOR.0))?;
    fdt.property_string("compatible", "arm,gic-v3")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#redistributor-regions", 1)?;
    reg(
        &mut fdt,
        &[
            GIC_DISTRIBUTOR,
            (
                GIC_REDISTRIBUTOR,
                GIC_REDISTRIBUTOR_SIZE * u64::from(spec.vcpus),
            ),
        ],
    )?;
    fdt.property_array_u32("interrupts", &[PPI, 9, LEVEL_HIGH])?;
    fdt.property_phandle(GIC_PHANDLE)?;
    fdt.end_node(gic)?;

    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    let mut timer_interrupts = Vec::new();
    for ppi in [13, 14, 11, 10] {
        timer_interrupts.extend([PPI, ppi, LEVEL_HIGH]);
    }
    fdt.property_array_u32("interrupts", &timer_interrupts)?;
    fdt.property_null("always-on")?;
    fdt.end_node(timer)?;

    let clock = fdt.begin_node("apb-pclk")?;
    fdt.property_string("compatible", "fixed-clock")?;
    fdt.property_u32("#clock-cells", 0)?;
    fdt.property_u32("clock-frequency", UART_CLOCK_HZ)?;
    fdt.property_string("clock-output-names", "clk24mhz")?;
    fdt.property_phandle(CLOCK_PHANDLE)?;
    fdt.end_node(clock)?;

    let uart = fdt.begin_node(&format!("pl011@{:x}", UART.0))?;
    fdt.property_string_list("compatible", strings(&["arm,pl011", "arm,primecell"]))?;
    reg(&mut fdt, &[UART])?;
    fdt.property_array_u32("interrupts", &[SPI, UART_SPI, LEVEL_HIGH])?;
    fdt.property_array_u32("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE])?;
    fdt.property_string_list("clock-names", strings(&["uartclk", "apb_pclk"]))?;
    fdt.end_node(uart)?;

    for slot in 0..spec.virtio_mmio {
        let base = VIRTIO_MMIO_BASE + u64::from(slot) * VIRTIO_MMIO_SIZE;
        let virtio = fdt.begin_node(&format!("virtio_mmio@{base:x}"))?;
        fdt.property_string("compatible", "virtio,mmio")?;
        reg(&mut fdt, &[(base, VIRTIO_MMIO_SIZE)])?;
        fdt.property_array_u32(
            "interrupts",
            &[SPI, VIRTIO_MMIO_FIRST_SPI + u32::from(slot), EDGE_RISING],
        )?;
        fdt.property_null("dma-coherent")?;
        fdt.end_node(virtio)?;
    }

    if !spec.reserved.is_empty() {
        let reserved = fdt.begin_node("reserved-memory")?;
        fdt.property_u32("#address-cells", 2)?;
        fdt.property_u32("#size-cells", 2)?;
        fdt.property_null("ranges")?;
        for &(name, ipa, size) in &spec.reserved {
            let region = fdt.begin_node(&format!("{name}@{ipa:x}"))?;
            reg(&mut fdt, &[(ipa, size)])?;
            fdt.property_null("no-map")?;
            fdt.end_node(region)?;
        }
        fdt.end_node(reserved)?;
    }

    let chosen = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", spec.bootargs)?;
    fdt.property_string("stdout-path", &format!("/pl011@{:x}", UART.0))?;
    // Filled by the kernel at every start of the guest (fresh randomness for each boot).
    fdt.property("rng-seed", &[0; abi::image::GUEST_RNG_SEED_BYTES])?;
    fdt.property_u64("kaslr-seed", 0)?;
    if let Some((start, end)) = spec.initrd {
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", end)?;
    }
    fdt.end_node(chosen)?;

    fdt.end_node(root)?;
    fdt.finish()
}

#[cfg(test)]
mod tests;
