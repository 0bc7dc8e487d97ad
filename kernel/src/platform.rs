//! What the board is, read from the device tree the firmware (QEMU) passes in x0: RAM,
//! cores, the UART, the GIC, the timer's interrupts and how to reach PSCI.
//!
//! Invariant: after [`Platform::from_device_tree`] returns, the kernel never looks at the
//! device tree again (its memory may be handed to cells).

use crate::arch::entry::MAX_CORES;
use fdt::Fdt;

/// Most RAM ranges the kernel keeps track of.
pub const MAX_RAM_RANGES: usize = 4;

/// A physical address range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

/// The board, as far as the kernel needs it.
#[derive(Clone, Copy, Debug)]
pub struct Platform {
    /// RAM ranges.
    pub ram: [(u64, u64); MAX_RAM_RANGES],
    /// How many entries of `ram` are valid.
    pub ram_count: usize,
    /// MPIDR of each core, in the kernel's core numbering: after `kcore::psci::boot_core_first`,
    /// the boot core first, then the others in device-tree order.
    pub cores: [u64; MAX_CORES],
    /// How many entries of `cores` are valid.
    pub core_count: usize,
    /// The console UART's registers.
    pub uart: Range,
    /// The console UART's interrupt (an SPI), if the device tree names one.
    pub uart_intid: Option<u32>,
    /// The GIC distributor's registers.
    pub gic_distributor: Range,
    /// The GIC redistributors' registers (all cores).
    pub gic_redistributors: Range,
    /// INTID of the EL2 physical timer.
    pub hypervisor_timer_intid: u32,
    /// INTID of the EL1 virtual timer.
    pub virtual_timer_intid: u32,
    /// INTID of the GIC maintenance interrupt.
    pub maintenance_intid: u32,
    /// Whether PSCI is reachable by SMC (the only conduit usable from EL2).
    pub psci_smc: bool,
    /// 32 bytes folded from `/chosen/rng-seed` and `kaslr-seed` (randomness the firmware
    /// took from a hardware source), if the tree has either; taken once to seed
    /// `crate::entropy`.
    pub random_seed: Option<[u8; 32]>,
    /// Where the device tree itself is.
    pub device_tree: Range,
}

/// Why the device tree could not be used.
#[derive(Clone, Copy, Debug)]
pub enum PlatformError {
    /// No valid device tree at the address in x0.
    NoDeviceTree,
    /// A node the kernel needs is missing or malformed.
    Missing {
        /// What is missing.
        what: &'static str,
        /// The console UART's registers, if the tree names them: where to report it.
        uart: Option<Range>,
    },
}

impl core::fmt::Display for PlatformError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoDeviceTree => write!(f, "no valid device tree at the address in x0"),
            Self::Missing { what, .. } => write!(f, "the device tree has no usable {what}"),
        }
    }
}

impl Platform {
    /// Reads the device tree at `address`.
    pub fn from_device_tree(address: u64) -> Result<Self, PlatformError> {
        if address == 0 || !address.is_multiple_of(8) {
            return Err(PlatformError::NoDeviceTree);
        }
        // SAFETY: the boot protocol puts an 8-byte aligned device tree at this address in
        // RAM; reading its 8-byte header (magic and total size) is in bounds of any tree.
        let (magic, size) = unsafe {
            let header = address as *const u32;
            (
                u32::from_be(core::ptr::read_volatile(header)),
                u32::from_be(core::ptr::read_volatile(header.add(1))),
            )
        };
        if magic != kcore::device_tree::FDT_MAGIC || !(40..=(2 << 20)).contains(&size) {
            return Err(PlatformError::NoDeviceTree);
        }
        // The firmware wrote the tree there; nothing else reads or writes it while the kernel
        // repairs and parses it (before any cell or other core runs).
        // SAFETY: the checked header says the tree is `size` bytes long at `address`, in RAM
        // the boot protocol hands to the kernel; this is the only reference to it.
        let bytes = unsafe { core::slice::from_raw_parts_mut(address as *mut u8, size as usize) };
        // The parser loses nodes after FDT_NOP tokens, which loaders leave (QEMU's `-dtb`).
        let _nops_removed = kcore::device_tree::remove_nops(bytes);
        let tree = Fdt::new(bytes).map_err(|_| PlatformError::NoDeviceTree)?;
        let platform = Self::parse(
            &tree,
            Range {
                base: address,
                size: size as u64,
            },
        )?;
        // The seeds must not outlive the parse: the tree's memory may be handed to a cell,
        // which could then predict the randomness other guests get.
        let seeds = seed_properties(&tree)
            .map(|value| value.map(|value| (value.as_ptr() as u64 - address, value.len())));
        for (offset, len) in seeds.into_iter().flatten() {
            // `[offset, offset + len)` was found by the parse above, whose borrows have ended.
            // SAFETY: it lies in the tree's `size` bytes, firmware data no Rust object occupies.
            unsafe { core::ptr::write_bytes((address + offset) as *mut u8, 0, len) };
        }
        Ok(platform)
    }
    // Only the `fdt` crate's lookups that answer `None` are used: its `memory()`, `cpus()`,
    // `chosen()`, `Chosen::stdout()` and `Cpu::ids()` panic on a tree without those nodes
    // or properties.
    fn parse(tree: &Fdt<'_>, device_tree: Range) -> Result<Self, PlatformError> {
        let missing = |what| PlatformError::Missing { what, uart: None };
        // `/chosen/stdout-path` is a node path, maybe followed by `:options`.
        let stdout = tree
            .find_node("/chosen")
            .and_then(|chosen| chosen.property("stdout-path"))
            .and_then(|path| core::str::from_utf8(path.value).ok())
            .and_then(|path| path.trim_end_matches('\0').split(':').next())
            .and_then(|path| tree.find_node(path));
        let uart_node = stdout
            .filter(|node| {
                node.compatible()
                    .is_some_and(|c| c.all().any(|c| c == "arm,pl011"))
            })
            .or_else(|| tree.find_compatible(&["arm,pl011"]))
            .ok_or(missing("PL011 UART"))?;
        let uart = first_range(uart_node.reg()).ok_or(missing("UART registers"))?;
        let uart_intid = uart_node
            .property("interrupts")
            .and_then(|property| shared_interrupt(property.value, 0));
        // From here on, what is missing can be reported on the console.
        let report = Some(uart);
        let missing = |what| PlatformError::Missing { what, uart: report };

        let mut ram = [(0, 0); MAX_RAM_RANGES];
        let mut ram_count = 0;
        if let Some(mut memory) = tree.find_node("/memory").and_then(|node| node.reg()) {
            while let Some(region) = next_region(&mut memory) {
                let size = region.size.unwrap_or(0) as u64;
                if size > 0 && ram_count < MAX_RAM_RANGES {
                    ram[ram_count] = (region.starting_address as u64, size);
                    ram_count += 1;
                }
            }
        }
        if ram_count == 0 {
            return Err(missing("memory node"));
        }

        let mut cores = [0; MAX_CORES];
        let mut core_count = 0;
        let cpus = tree.find_node("/cpus").into_iter().flat_map(|cpus| {
            cpus.children()
                .filter(|child| child.name.split('@').next() == Some("cpu"))
        });
        for cpu in cpus {
            // A cpu node's `reg` is its MPIDR affinity (no size cells).
            let mpidr = cpu.reg().and_then(|mut reg| next_region(&mut reg));
            if let (Some(mpidr), true) = (mpidr, core_count < MAX_CORES) {
                cores[core_count] = mpidr.starting_address as u64;
                core_count += 1;
            }
        }
        if core_count == 0 {
            return Err(missing("/cpus node"));
        }

        let gic = tree
            .find_compatible(&["arm,gic-v3"])
            .ok_or(missing("GICv3"))?;
        let mut gic_ranges = gic.reg().ok_or(missing("GICv3 registers"))?;
        let gic_distributor = next_region(&mut gic_ranges)
            .and_then(range_of)
            .ok_or(missing("GIC distributor registers"))?;
        let gic_redistributors = next_region(&mut gic_ranges)
            .and_then(range_of)
            .ok_or(missing("GIC redistributor registers"))?;

        let timer = tree
            .find_compatible(&["arm,armv8-timer"])
            .ok_or(missing("arm,armv8-timer node"))?;
        let interrupts = timer
            .property("interrupts")
            .map(|property| property.value)
            .ok_or(missing("timer interrupts"))?;
        // Four <type number flags> triples: secure, non-secure, virtual, hypervisor.
        let hypervisor_timer_intid =
            private_interrupt(interrupts, 3).ok_or(missing("hypervisor timer interrupt"))?;
        let virtual_timer_intid =
            private_interrupt(interrupts, 2).ok_or(missing("virtual timer interrupt"))?;
        let maintenance_intid = gic
            .property("interrupts")
            .and_then(|property| private_interrupt(property.value, 0))
            .ok_or(missing("GIC maintenance interrupt"))?;

        let psci_smc = tree
            .find_node("/psci")
            .and_then(|node| node.property("method"))
            .and_then(|method| method.as_str())
            .is_some_and(|method| method == "smc");

        let seeds = seed_properties(tree).into_iter().flatten();
        Ok(Self {
            ram,
            ram_count,
            cores,
            core_count,
            uart,
            uart_intid,
            gic_distributor,
            gic_redistributors,
            hypervisor_timer_intid,
            virtual_timer_intid,
            maintenance_intid,
            psci_smc,
            random_seed: kcore::boot_seed::fold_board_seeds(seeds),
            device_tree,
        })
    }

    /// The valid RAM ranges.
    pub fn ram(&self) -> &[(u64, u64)] {
        &self.ram[..self.ram_count]
    }
}

/// The INTID of entry `index` of an `interrupts` property made of `<type number flags>`
/// triples, which must be a PPI (type 1).
fn private_interrupt(property: &[u8], index: usize) -> Option<u32> {
    interrupt_of_type(property, index, 1, 16)
}

/// The INTID of entry `index` of an `interrupts` property made of `<type number flags>`
/// triples, which must be an SPI (type 0).
fn shared_interrupt(property: &[u8], index: usize) -> Option<u32> {
    interrupt_of_type(property, index, 0, 32)
}

/// Entry `index`'s number plus `first_intid`, if its type is `kind` (GIC binding: 0 SPI,
/// 1 PPI).
fn interrupt_of_type(property: &[u8], index: usize, kind: u32, first_intid: u32) -> Option<u32> {
    let cell = |at: usize| -> Option<u32> {
        let bytes = property.get(at..at + 4)?;
        Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    };
    let base = index * 12;
    (cell(base)? == kind).then_some(())?;
    cell(base + 4)?.checked_add(first_intid)
}

fn range_of(region: fdt::standard_nodes::MemoryRegion) -> Option<Range> {
    Some(Range {
        base: region.starting_address as u64,
        size: region.size? as u64,
    })
}

/// The values of `/chosen/rng-seed` and `/chosen/kaslr-seed`, where present.
fn seed_properties<'a>(tree: &Fdt<'a>) -> [Option<&'a [u8]>; 2] {
    let chosen = tree.find_node("/chosen");
    ["rng-seed", "kaslr-seed"].map(|name| {
        chosen
            .as_ref()
            .and_then(|chosen| chosen.property(name))
            .map(|property| property.value)
    })
}

fn first_range(
    mut regions: Option<impl Iterator<Item = fdt::standard_nodes::MemoryRegion>>,
) -> Option<Range> {
    next_region(regions.as_mut()?).and_then(range_of)
}

/// The next region of a `reg` property. Out of line, so that the `fdt` crate's parsing of
/// the property's cells is compiled once rather than at each of the parse's five uses.
#[inline(never)]
fn next_region(
    regions: &mut impl Iterator<Item = fdt::standard_nodes::MemoryRegion>,
) -> Option<fdt::standard_nodes::MemoryRegion> {
    regions.next()
}
