//! Physical memory layout and lowering to boot-plan records.
//!
//! The image is the kernel (padded to `plan_offset`), then the plan, then each cell image
//! aligned to `CELL_IMAGE_ALIGN`. Cell RAM is allocated after the whole image, each cell
//! aligned to `CELL_RAM_ALIGN` (2 MiB), in description order; shared memory regions follow,
//! each aligned to 4 KiB. The layout is a pure function of its inputs: the same description
//! and kernel always give the same addresses.

use std::fmt;

use abi::addr::{align_up, PAGE_SIZE};
use abi::image::{plan_offset, CELL_IMAGE_ALIGN, CELL_RAM_ALIGN, CELL_RAM_IPA};
use abi::plan::{
    CapabilityRecord, CellFlags, CellRecord, ChannelRecord, Counts, EndpointRecord, IrqRecord,
    NotificationRecord, PlanError, PlanParts, RegionKind, RegionRecord, Rights, ANY_CORE,
    MAX_VCPUS_PER_CELL, NO_SUPERVISOR, NO_VIRTUAL_IRQ,
};

use crate::elf::Flat;
use crate::size::Size;
use crate::system::{Object, System};

/// Why a checked system does not fit the board with this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The image and all cell and shared memory need more RAM than the board has.
    DoesNotFit {
        /// Bytes from board RAM base to the end of the last allocation.
        needed: u64,
        /// Board RAM size.
        ram_size: u64,
    },
    /// A cell image offset or size does not fit the plan's 32-bit fields.
    PayloadTooLarge,
    /// An address computation overflowed.
    Overflow,
    /// The plan encoder refused the records.
    Plan(PlanError),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DoesNotFit { needed, ram_size } => write!(
                f,
                "the system needs {} of board RAM ({needed:#x} bytes: kernel, plan, cell images, cell RAM, shared memory) but the board has {}",
                Size(*needed),
                Size(*ram_size)
            ),
            Self::PayloadTooLarge => write!(f, "the cell images exceed the plan's 4 GiB limit"),
            Self::Overflow => write!(f, "an address overflows 64 bits"),
            Self::Plan(error) => write!(f, "the boot plan cannot be encoded: {error}"),
        }
    }
}

/// Where everything goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Physical address of the kernel (the image's first byte).
    pub kernel_base: u64,
    /// Offset of the plan from `kernel_base`.
    pub plan_offset: u64,
    /// Length of the encoded plan.
    pub plan_len: u64,
    /// Bytes from the plan's start to the end of the last cell image.
    pub payload_len: u64,
    /// Physical address of each cell's RAM.
    pub cell_ram: Vec<u64>,
    /// Physical address of each shared memory region.
    pub shared: Vec<u64>,
    /// One past the last byte allocated.
    pub end: u64,
    /// Cell records.
    pub cells: Vec<CellRecord>,
    /// Region records.
    pub regions: Vec<RegionRecord>,
    /// IRQ records.
    pub irqs: Vec<IrqRecord>,
    /// Channel records.
    pub channels: Vec<ChannelRecord>,
    /// Endpoint records.
    pub endpoints: Vec<EndpointRecord>,
    /// Notification records.
    pub notifications: Vec<NotificationRecord>,
    /// Capability records, cell after cell.
    pub capabilities: Vec<CapabilityRecord>,
}

impl Layout {
    /// The records as the encoder takes them.
    pub fn parts(&self, system: &System) -> PlanParts<'_> {
        PlanParts {
            ram_base: system.board.ram_base,
            ram_size: system.board.ram_size,
            core_count: system.board.cores,
            payload_len: self.payload_len,
            cells: &self.cells,
            regions: &self.regions,
            irqs: &self.irqs,
            channels: &self.channels,
            endpoints: &self.endpoints,
            notifications: &self.notifications,
            capabilities: &self.capabilities,
        }
    }
}

/// Lays out `system` with its cell `images` (one per cell) after a kernel at `kernel_base`
/// whose footprint is `image_size` bytes.
pub fn lay_out(
    system: &System,
    images: &[Flat],
    kernel_base: u64,
    image_size: u64,
) -> Result<Layout, LayoutError> {
    let overflow = LayoutError::Overflow;
    let plan_offset = plan_offset(image_size).ok_or(LayoutError::Overflow)?;
    let region_count = system.cells.len()
        + system.memories.iter().map(|m| m.maps.len()).sum::<usize>()
        + system.devices.len();
    let irq_count = system.devices.iter().map(|d| d.irqs.len()).sum();
    let capability_count = system.cells.iter().map(|c| c.capabilities.len()).sum();
    let plan_len = Counts {
        cells: system.cells.len(),
        regions: region_count,
        irqs: irq_count,
        channels: system.channels.len(),
        endpoints: system.endpoints.len(),
        notifications: system.notifications.len(),
        capabilities: capability_count,
    }
    .encoded_len() as u64;

    // Cell images inside the payload.
    let mut cursor = plan_len;
    let mut image_offsets = Vec::new();
    for image in images {
        let offset = align_up(cursor, CELL_IMAGE_ALIGN).ok_or(overflow.clone())?;
        image_offsets.push(offset);
        cursor = offset + image.bytes.len() as u64;
    }
    let payload_len = cursor;

    // Physical memory after the image.
    let image_end = kernel_base
        .checked_add(plan_offset)
        .and_then(|a| a.checked_add(payload_len))
        .ok_or(overflow.clone())?;
    let mut next = align_up(image_end, CELL_RAM_ALIGN).ok_or(overflow.clone())?;
    let mut cell_ram = Vec::new();
    for cell in &system.cells {
        cell_ram.push(next);
        next = next.checked_add(cell.memory).ok_or(overflow.clone())?;
    }
    let mut shared = Vec::new();
    for memory in &system.memories {
        if let Some(owner) = memory.cell_ram {
            // Another cell's RAM: no memory of its own.
            shared.push(*cell_ram.get(owner).ok_or(overflow.clone())?);
            continue;
        }
        let pa = align_up(next, PAGE_SIZE).ok_or(overflow.clone())?;
        shared.push(pa);
        next = pa.checked_add(memory.size).ok_or(overflow.clone())?;
    }
    let ram_end = system.board.ram_base.saturating_add(system.board.ram_size);
    if next > ram_end {
        return Err(LayoutError::DoesNotFit {
            needed: next - system.board.ram_base,
            ram_size: system.board.ram_size,
        });
    }

    // Records.
    let mut cells = Vec::new();
    let mut regions = Vec::new();
    let mut capabilities = Vec::new();
    for (index, cell) in system.cells.iter().enumerate() {
        let first_region = regions.len();
        regions.push(RegionRecord {
            ipa: CELL_RAM_IPA,
            pa: cell_ram[index],
            size: cell.memory,
            kind: RegionKind::Ram,
            rights: Rights::RWX,
        });
        // Region index of each shared memory region mapped into this cell.
        let mut memory_regions = vec![None; system.memories.len()];
        for (memory_index, memory) in system.memories.iter().enumerate() {
            for map in memory.maps.iter().filter(|map| map.cell == index) {
                memory_regions[memory_index] = Some(regions.len());
                regions.push(RegionRecord {
                    ipa: map.ipa,
                    pa: shared[memory_index],
                    size: memory.size,
                    kind: if memory.cell_ram.is_some() {
                        RegionKind::Foreign
                    } else {
                        RegionKind::Shared
                    },
                    rights: map.rights,
                });
            }
        }
        for device in system.devices.iter().filter(|d| d.cell == index) {
            regions.push(RegionRecord {
                ipa: device.base,
                pa: device.base,
                size: device.size,
                kind: RegionKind::Device,
                rights: Rights::R.union(Rights::W),
            });
        }
        let image = &images[index];
        let mut vcpu_cores = [ANY_CORE; MAX_VCPUS_PER_CELL];
        vcpu_cores[..cell.cores.len()].copy_from_slice(&cell.cores);
        let name = CellRecord::name_field(&cell.name).ok_or(LayoutError::Overflow)?;
        let first_capability = capabilities.len();
        for capability in &cell.capabilities {
            let object = match capability.object {
                Object::Endpoint(index) | Object::Notification(index) | Object::Cell(index) => {
                    index
                }
                Object::Memory(memory) => memory_regions[memory].ok_or(LayoutError::Overflow)?,
                Object::Interrupt(intid) => intid as usize,
            };
            capabilities.push(CapabilityRecord {
                kind: capability.kind(),
                rights: capability.rights,
                object: u32::try_from(object).map_err(|_| LayoutError::Overflow)?,
                badge: capability.badge,
            });
        }
        cells.push(CellRecord {
            name,
            kind: cell.kind,
            priority: cell.priority,
            vcpu_count: cell.vcpus,
            fault_policy: cell.fault,
            restart_limit: cell.restart_limit,
            flags: match (cell.fp, cell.el0) {
                (true, false) => CellFlags::NONE,
                (false, false) => CellFlags::NO_FP,
                (true, true) => CellFlags::EL0,
                (false, true) => CellFlags::NO_FP.union(CellFlags::EL0),
            },
            supervisor: cell
                .supervisor
                .map_or(NO_SUPERVISOR, |supervisor| supervisor as u16),
            vcpu_cores,
            first_region: first_region as u16,
            region_count: (regions.len() - first_region) as u16,
            image_offset: u32::try_from(image_offsets[index])
                .map_err(|_| LayoutError::PayloadTooLarge)?,
            image_size: u32::try_from(image.bytes.len())
                .map_err(|_| LayoutError::PayloadTooLarge)?,
            controls: cell
                .controls
                .iter()
                .fold(0, |mask, &controlled| mask | 1 << controlled),
            entry_ipa: image.entry,
            load_ipa: image.base,
            budget_us: cell.budget.map_or(0, |budget| budget.budget_us),
            period_us: cell.budget.map_or(0, |budget| budget.period_us),
            first_capability: first_capability as u16,
            capability_count: (capabilities.len() - first_capability) as u16,
        });
    }
    let irqs = system
        .devices
        .iter()
        .flat_map(|device| {
            device.irqs.iter().map(|&intid| IrqRecord {
                intid,
                cell: device.cell as u16,
                vcpu: 0,
            })
        })
        .collect();
    let channels = system
        .channels
        .iter()
        .map(|channel| ChannelRecord {
            from: channel.from as u16,
            to: channel.to as u16,
        })
        .collect();
    let endpoints = system
        .endpoints
        .iter()
        .map(|endpoint| EndpointRecord {
            server: endpoint.server as u16,
        })
        .collect();
    let notifications = system
        .notifications
        .iter()
        .map(|notification| NotificationRecord {
            waiter: notification.waiter as u16,
            virtual_irq: notification.virtual_irq.unwrap_or(NO_VIRTUAL_IRQ),
            vcpu: notification.vcpu,
        })
        .collect();
    if u32::try_from(payload_len).is_err() {
        return Err(LayoutError::PayloadTooLarge);
    }
    Ok(Layout {
        kernel_base,
        plan_offset,
        plan_len,
        payload_len,
        cell_ram,
        shared,
        end: next,
        cells,
        regions,
        irqs,
        channels,
        endpoints,
        notifications,
        capabilities,
    })
}

/// Offsets of each cell image from the plan's start, as recorded.
pub fn image_offsets(layout: &Layout) -> impl Iterator<Item = (u64, u64)> + '_ {
    layout
        .cells
        .iter()
        .map(|cell| (cell.image_offset as u64, cell.image_size as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{
        Board, Capability, Cell, Client, Endpoint, Map, Notification, SharedMemory,
    };
    use abi::plan::FaultPolicy;

    fn cell(name: &str, memory: u64) -> Cell {
        Cell {
            name: name.to_string(),
            kind: abi::plan::CellKind::Native,
            image: std::path::PathBuf::new(),
            image_span: 0..0,
            memory,
            vcpus: 1,
            priority: 1,
            cores: vec![ANY_CORE],
            fault: FaultPolicy::Stop,
            restart_limit: 0,
            supervisor: None,
            budget: None,
            fp: true,
            el0: false,
            guest: None,
            controls: Vec::new(),
            capabilities: Vec::new(),
        }
    }

    fn image(len: usize) -> Flat {
        Flat {
            base: CELL_RAM_IPA,
            bytes: vec![1; len],
            entry: CELL_RAM_IPA,
            file_end: CELL_RAM_IPA + len as u64,
        }
    }

    fn system(ram_size: u64) -> System {
        System {
            board: Board {
                name: "test".to_string(),
                ram_base: 0x4000_0000,
                ram_size,
                cores: 2,
            },
            cells: vec![cell("a", 2 << 20), cell("b", 6 << 20)],
            memories: vec![
                SharedMemory {
                    name: "m".to_string(),
                    size: 0x3000,
                    maps: vec![Map {
                        cell: 1,
                        rights: Rights::R,
                        ipa: 0x4060_0000,
                    }],
                    cell_ram: None,
                },
                SharedMemory {
                    name: "n".to_string(),
                    size: 0x1000,
                    maps: Vec::new(),
                    cell_ram: None,
                },
            ],
            devices: Vec::new(),
            channels: Vec::new(),
            endpoints: Vec::new(),
            notifications: Vec::new(),
        }
    }

    #[test]
    fn everything_is_aligned_disjoint_and_inside_ram() {
        let system = system(1 << 30);
        let images = [image(0x1234), image(0x10)];
        let layout = lay_out(&system, &images, 0x4020_0000, 0x5_0001).unwrap();
        assert_eq!(layout.plan_offset, 0x6_0000);
        // Plan: header, 2 cells, 3 regions.
        assert_eq!(layout.plan_len, 64 + 2 * 80 + 3 * 32);
        assert_eq!(layout.cells[0].image_offset, 0x1000);
        assert_eq!(layout.cells[1].image_offset, 0x3000);
        assert_eq!(layout.payload_len, 0x3010);
        // The image ends at 0x4026_3010: cell RAM starts at the next 2 MiB boundary.
        assert_eq!(layout.cell_ram, [0x4040_0000, 0x4060_0000]);
        assert_eq!(layout.shared, [0x40c0_0000, 0x40c0_3000]);
        assert_eq!(layout.end, 0x40c0_4000);
        for &pa in &layout.cell_ram {
            assert_eq!(pa % CELL_RAM_ALIGN, 0);
        }
        let mut ranges: Vec<(u64, u64)> = layout.regions.iter().map(|r| (r.pa, r.size)).collect();
        ranges.push((0x4020_0000, layout.plan_offset + layout.payload_len));
        for (i, a) in ranges.iter().enumerate() {
            assert!(a.0 >= 0x4000_0000 && a.0 + a.1 <= 0x8000_0000);
            for b in &ranges[i + 1..] {
                assert!(
                    !abi::addr::ranges_overlap(a.0, a.1, b.0, b.1),
                    "{a:x?} {b:x?}"
                );
            }
        }
        // Regions are contiguous per cell: a = [RAM], b = [RAM, shared m].
        assert_eq!(
            (layout.cells[0].first_region, layout.cells[0].region_count),
            (0, 1)
        );
        assert_eq!(
            (layout.cells[1].first_region, layout.cells[1].region_count),
            (1, 2)
        );
        assert_eq!(layout.regions[2].kind, RegionKind::Shared);
        assert_eq!(
            (layout.regions[2].ipa, layout.regions[2].pa),
            (0x4060_0000, 0x40c0_0000)
        );
        assert_eq!(
            lay_out(&system, &images, 0x4020_0000, 0x5_0001).unwrap(),
            layout
        );
        let mut plan = vec![0; layout.plan_len as usize];
        abi::plan::encode(&layout.parts(&system), &mut plan).unwrap();
    }

    #[test]
    fn a_cells_ram_maps_into_another_as_a_foreign_region() {
        let mut system = system(1 << 30);
        system.memories.push(SharedMemory {
            name: "a-ram".to_string(),
            size: 2 << 20,
            maps: vec![Map {
                cell: 1,
                rights: Rights::R.union(Rights::W),
                ipa: 0x1_0000_0000,
            }],
            cell_ram: Some(0),
        });
        let images = [image(0x1234), image(0x10)];
        let layout = lay_out(&system, &images, 0x4020_0000, 0x5_0001).unwrap();
        // No memory of its own: the same end as without it.
        assert_eq!(layout.end, 0x40c0_4000);
        let foreign = layout.regions[3];
        assert_eq!(foreign.kind, RegionKind::Foreign);
        assert_eq!(
            (foreign.ipa, foreign.pa, foreign.size),
            (0x1_0000_0000, layout.cell_ram[0], 2 << 20)
        );
        let mut plan = vec![0; layout.plan_len as usize];
        abi::plan::encode(&layout.parts(&system), &mut plan).unwrap();
    }

    #[test]
    fn a_layout_past_ram_is_refused_with_the_total() {
        let system = system(12 << 20);
        let images = [image(0x10), image(0x10)];
        assert_eq!(
            lay_out(&system, &images, 0x4020_0000, 0x1_0000),
            Err(LayoutError::DoesNotFit {
                needed: 0x40c0_4000 - 0x4000_0000,
                ram_size: 12 << 20
            })
        );
    }

    #[test]
    fn budgets_fp_supervisors_and_control_rights_are_lowered() {
        let mut system = system(1 << 30);
        system.cells[0].budget = Some(crate::system::Budget {
            budget_us: 2_000,
            period_us: 10_000,
        });
        system.cells[0].fp = false;
        system.cells[1].el0 = true;
        system.cells[0].controls = vec![1];
        system.cells[0].capabilities = vec![Capability {
            object: Object::Cell(1),
            rights: abi::hvc::CONTROL as u8,
            badge: 0,
        }];
        system.cells[1].fault = FaultPolicy::Report;
        system.cells[1].supervisor = Some(0);
        let images = [image(0x10), image(0x10)];
        let layout = lay_out(&system, &images, 0x4020_0000, 0x1_0000).unwrap();
        let (a, b) = (&layout.cells[0], &layout.cells[1]);
        assert_eq!((a.budget_us, a.period_us), (2_000, 10_000));
        assert_eq!((b.budget_us, b.period_us), (0, 0));
        assert_eq!((a.flags, b.flags), (CellFlags::NO_FP, CellFlags::EL0));
        assert_eq!((a.supervisor, b.supervisor), (NO_SUPERVISOR, 0));
        assert_eq!((a.controls, b.controls), (0b10, 0));
        let mut plan = vec![0; layout.plan_len as usize];
        abi::plan::encode(&layout.parts(&system), &mut plan).unwrap();
        let decoded = abi::plan::Plan::decode(&plan).unwrap();
        assert_eq!(decoded.cell(1).supervisor(), Some(0));
        assert!(decoded.cell(0).may_control(1));
    }

    #[test]
    fn endpoints_notifications_and_capability_tables_are_lowered() {
        use abi::hvc::{ENDPOINT_CALL, ENDPOINT_SERVE, NOTIFICATION_SIGNAL, NOTIFICATION_WAIT};
        use abi::plan::CapabilityKind;
        let mut system = system(1 << 30);
        system.endpoints = vec![Endpoint {
            name: "echo".to_string(),
            server: 1,
            clients: vec![Client { cell: 0, badge: 7 }],
        }];
        system.notifications = vec![Notification {
            name: "ready".to_string(),
            waiter: 1,
            signallers: vec![0],
            virtual_irq: Some(48),
            vcpu: 0,
        }];
        let capability = |object, rights: u64, badge| Capability {
            object,
            rights: rights as u8,
            badge,
        };
        system.cells[0].capabilities = vec![
            capability(Object::Notification(0), NOTIFICATION_SIGNAL, 0),
            capability(Object::Endpoint(0), ENDPOINT_CALL, 7),
        ];
        system.cells[1].capabilities = vec![
            capability(Object::Memory(0), Rights::R.0.into(), 0),
            capability(Object::Endpoint(0), ENDPOINT_SERVE, 0),
            capability(Object::Notification(0), NOTIFICATION_WAIT, 0),
        ];
        let images = [image(0x10), image(0x10)];
        let layout = lay_out(&system, &images, 0x4020_0000, 0x1_0000).unwrap();
        assert_eq!(
            layout.plan_len,
            64 + 2 * 80 + 3 * 32 + 4 + 8 + 5 * 12,
            "header, cells, regions, endpoint, notification, capabilities"
        );
        let mut plan = vec![0; layout.plan_len as usize];
        abi::plan::encode(&layout.parts(&system), &mut plan).unwrap();
        let plan = abi::plan::Plan::decode(&plan).unwrap();
        assert_eq!(plan.endpoint(0).server, 1);
        assert_eq!(plan.notification(0).virtual_irq(), Some(48));
        let call = plan.capability(0, 1).unwrap();
        assert_eq!(
            (call.kind, call.object, call.badge),
            (CapabilityKind::Endpoint, 0, 7)
        );
        // Cell b's regions: RAM (1), then shared `m` (2).
        let memory = plan.capability(1, 0).unwrap();
        assert_eq!(
            (memory.kind, memory.object, memory.rights),
            (CapabilityKind::SharedMemory, 2, Rights::R.0)
        );
        assert_eq!(plan.capability(1, 3), None);
        assert_eq!(plan.cell(1).first_capability, 2);
    }
}
