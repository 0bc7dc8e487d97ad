//! End-to-end builds into temporary folders with a generated kernel and cell images; the
//! written plan is decoded with `abi::plan::Plan::decode` and checked record by record.

use std::fs;
use std::path::{Path, PathBuf};

use abi::image::{CELL_IMAGE_ALIGN, CELL_RAM_ALIGN, CELL_RAM_IPA};
use abi::plan::{
    CapabilityKind, CellFlags, CellKind, FaultPolicy, Plan, RegionKind, Rights, ANY_CORE,
    NO_SUPERVISOR,
};
use cellvisor::elf::{write_elf, SegmentSpec};
use cellvisor::{build, Error, KernelError, LayoutError};

const RAM_BASE: u64 = 0x4000_0000;
const TEXT_OFFSET: u64 = 0x20_0000;
const KERNEL_BASE: u64 = RAM_BASE + TEXT_OFFSET;
const AARCH64: u16 = object::elf::EM_AARCH64.0;

/// A kernel ELF at `base` whose first segment starts with an arm64 Image header.
fn kernel_elf(base: u64, image_size: u64, memory_size: u64) -> Vec<u8> {
    let mut header = vec![0u8; 0x100];
    header[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes());
    header[8..16].copy_from_slice(&TEXT_OFFSET.to_le_bytes());
    header[16..24].copy_from_slice(&image_size.to_le_bytes());
    header[56..60].copy_from_slice(b"ARM\x64");
    header[0xf0..].copy_from_slice(&[0xab; 16]);
    write_elf(
        AARCH64,
        base,
        &[SegmentSpec {
            address: base,
            bytes: header,
            memory_size,
        }],
    )
}

fn cell_elf(fill: u8, file_size: usize, memory_size: u64, entry_offset: u64) -> Vec<u8> {
    write_elf(
        AARCH64,
        CELL_RAM_IPA + entry_offset,
        &[
            SegmentSpec {
                address: CELL_RAM_IPA,
                bytes: vec![fill; file_size],
                memory_size,
            },
            SegmentSpec {
                address: CELL_RAM_IPA + 0x4000,
                bytes: vec![fill ^ 0xff; 8],
                memory_size: 8,
            },
        ],
    )
}

const DESCRIPTION: &str = r#"
[board]
name = "qemu-virt"
ram-base = 0x4000_0000
ram-size = "1 GiB"
cores = 4

[[cell]]
name = "ping"
kind = "native"
image = "ping.elf"
memory = "2 MiB"
priority = 10
cores = [0]
budget = "2 ms"
period = "10 ms"
fp = false
fault = "report"
supervisor = "pong"

[[cell]]
name = "pong"
kind = "native"
image = "pong.elf"
memory = "4 MiB"
vcpus = 2
priority = 31
fault = "restart"
restart-limit = 5

[[memory]]
name = "shm0"
size = "64 KiB"
map = [ { cell = "ping", rights = "rw" }, { cell = "pong", rights = "r", ipa = 0x5000_0000 } ]

[[device]]
name = "uart1"
base = 0x0904_0000
size = "4 KiB"
cell = "ping"
irqs = [40, 41]

[[channel]]
from = "ping"
to = "pong"
"#;

struct Fixture {
    folder: tempfile::TempDir,
}

impl Fixture {
    fn new(kernel: &[u8]) -> Fixture {
        let folder = tempfile::tempdir().unwrap();
        fs::write(folder.path().join("system.toml"), DESCRIPTION).unwrap();
        fs::write(
            folder.path().join("ping.elf"),
            cell_elf(0x11, 0x100, 0x200, 0x10),
        )
        .unwrap();
        fs::write(
            folder.path().join("pong.elf"),
            cell_elf(0x22, 0x1800, 0x1800, 0),
        )
        .unwrap();
        fs::write(folder.path().join("kernel.elf"), kernel).unwrap();
        Fixture { folder }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.folder.path().join(name)
    }
    fn build(&self) -> Result<cellvisor::Built, Error> {
        build(
            &self.path("system.toml"),
            &self.path("kernel.elf"),
            &self.path("out"),
        )
    }
}

fn leftovers(folder: &Path) -> Vec<String> {
    fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect()
}

#[test]
fn build_writes_an_image_whose_plan_decodes_to_the_description() {
    let fixture = Fixture::new(&kernel_elf(KERNEL_BASE, 0x3_2000, 0x2_0000));
    let built = fixture.build().unwrap();
    let image = fs::read(fixture.path("out/cellvisor.img")).unwrap();
    let report = fs::read_to_string(fixture.path("out/layout.txt")).unwrap();

    // The kernel is at the start; the plan at align_up(image_size, 64 KiB).
    assert_eq!(&image[56..60], b"ARM\x64");
    assert_eq!(&image[0xf0..0x100], &[0xab; 16]);
    let plan_offset = 0x4_0000;
    assert_eq!(built.layout.plan_offset, plan_offset);
    assert!(image[0x100..plan_offset as usize].iter().all(|&b| b == 0));
    let plan = Plan::decode(&image[plan_offset as usize..]).unwrap();
    assert_eq!((plan.ram_base(), plan.ram_size()), (RAM_BASE, 1 << 30));
    assert_eq!(plan.core_count(), 4);
    assert_eq!(plan_offset + plan.payload_len(), image.len() as u64);

    // Cells.
    let cells: Vec<_> = plan.cells().collect();
    assert_eq!(cells.len(), 2);
    let (ping, pong) = (cells[0], cells[1]);
    assert_eq!((ping.name(), pong.name()), ("ping", "pong"));
    assert_eq!(ping.kind, CellKind::Native);
    assert_eq!((ping.priority, ping.vcpu_count), (10, 1));
    assert_eq!(
        (ping.fault_policy, ping.restart_limit),
        (FaultPolicy::Report, 0)
    );
    assert_eq!((ping.supervisor, pong.supervisor), (1, NO_SUPERVISOR));
    // The supervisor gets the control right over the cell it supervises.
    assert_eq!((ping.controls, pong.controls), (0, 0b01));
    assert_eq!((ping.budget_us, ping.period_us), (2_000, 10_000));
    assert_eq!((pong.budget_us, pong.period_us), (0, 0));
    assert_eq!(
        (ping.flags, pong.flags),
        (CellFlags::NO_FP, CellFlags::NONE)
    );
    assert_eq!(
        ping.vcpu_cores,
        [0, ANY_CORE, ANY_CORE, ANY_CORE, ANY_CORE, ANY_CORE, ANY_CORE, ANY_CORE]
    );
    assert_eq!((pong.priority, pong.vcpu_count), (31, 2));
    assert_eq!(
        (pong.fault_policy, pong.restart_limit),
        (FaultPolicy::Restart, 5)
    );
    assert_eq!(pong.vcpu_cores, [ANY_CORE; 8]);
    assert_eq!(
        (ping.load_ipa, ping.entry_ipa),
        (CELL_RAM_IPA, CELL_RAM_IPA + 0x10)
    );
    assert_eq!(
        (pong.load_ipa, pong.entry_ipa),
        (CELL_RAM_IPA, CELL_RAM_IPA)
    );

    // Cell images follow the plan, each page-aligned, flattened with zero fill.
    assert_eq!(ping.image_offset as u64, CELL_IMAGE_ALIGN);
    assert_eq!(ping.image_size, 0x4008);
    assert_eq!(pong.image_offset, 0x6000);
    assert_eq!(pong.image_size, 0x4008);
    assert_eq!(plan.payload_len(), 0x6000 + 0x4008);
    let at = |offset: u32| (plan_offset + offset as u64) as usize;
    assert!(image[at(ping.image_offset)..][..0x100]
        .iter()
        .all(|&b| b == 0x11));
    assert!(image[at(ping.image_offset) + 0x100..][..0x3f00]
        .iter()
        .all(|&b| b == 0));
    assert_eq!(&image[at(ping.image_offset) + 0x4000..][..8], &[0xee; 8]);
    assert!(image[at(pong.image_offset)..][..0x1800]
        .iter()
        .all(|&b| b == 0x22));

    // Regions: per cell RAM, then shared maps, then devices.
    let ram_start = 0x4040_0000;
    assert_eq!(ram_start % CELL_RAM_ALIGN, 0);
    let ping_regions: Vec<_> = plan.regions_of(&ping).collect();
    assert_eq!(ping_regions.len(), 3);
    assert_eq!(
        (
            ping_regions[0].ipa,
            ping_regions[0].pa,
            ping_regions[0].size
        ),
        (CELL_RAM_IPA, ram_start, 2 << 20)
    );
    assert_eq!(
        (ping_regions[0].kind, ping_regions[0].rights),
        (RegionKind::Ram, Rights::RWX)
    );
    let shared_pa = ram_start + (6 << 20);
    assert_eq!(
        (
            ping_regions[1].ipa,
            ping_regions[1].pa,
            ping_regions[1].size
        ),
        (CELL_RAM_IPA + (2 << 20), shared_pa, 64 << 10)
    );
    assert_eq!(
        (ping_regions[1].kind, ping_regions[1].rights),
        (RegionKind::Shared, Rights(3))
    );
    assert_eq!(
        (
            ping_regions[2].ipa,
            ping_regions[2].pa,
            ping_regions[2].kind
        ),
        (0x0904_0000, 0x0904_0000, RegionKind::Device)
    );
    let pong_regions: Vec<_> = plan.regions_of(&pong).collect();
    assert_eq!(pong_regions.len(), 2);
    assert_eq!(
        (pong_regions[0].pa, pong_regions[0].size),
        (ram_start + (2 << 20), 4 << 20)
    );
    assert_eq!(
        (pong_regions[1].ipa, pong_regions[1].pa),
        (0x5000_0000, shared_pa)
    );
    assert_eq!(pong_regions[1].rights, Rights::R);

    // IRQs and channels.
    assert_eq!(plan.irq_count(), 2);
    assert_eq!(
        (plan.irq(0).intid, plan.irq(0).cell, plan.irq(0).vcpu),
        (40, 0, 0)
    );
    assert_eq!(plan.irq(1).intid, 41);
    assert_eq!(plan.channel_count(), 1);
    assert_eq!((plan.channel(0).from, plan.channel(0).to), (0, 1));

    // The channel's endpoint and the capability tables: ping calls `ping->pong`, maps
    // shm0 (its region 1) and owns INTIDs 40 and 41; pong serves the endpoint, maps shm0
    // read-only (its region 1, global 4) and controls the ping it supervises.
    assert_eq!((plan.endpoint_count(), plan.notification_count()), (1, 0));
    assert_eq!(plan.endpoint(0).server, 1);
    let kinds = |cell: usize| -> Vec<(CapabilityKind, u8, u32, u32)> {
        plan.capabilities_of(&plan.cell(cell))
            .map(|c| (c.kind, c.rights, c.object, c.badge))
            .collect()
    };
    assert_eq!(
        kinds(0),
        [
            (CapabilityKind::Endpoint, 1, 0, 0),
            (CapabilityKind::SharedMemory, 3, 1, 0),
            (CapabilityKind::Interrupt, 0, 40, 0),
            (CapabilityKind::Interrupt, 0, 41, 0),
        ]
    );
    assert_eq!(
        kinds(1),
        [
            (CapabilityKind::Endpoint, 2, 0, 0),
            (CapabilityKind::SharedMemory, 1, 4, 0),
            (CapabilityKind::CellControl, 1, 0, 0),
        ]
    );

    // The report names every allocation.
    for needle in [
        "kernel   PA 0x40200000..0x40232000",
        "plan     PA 0x40240000",
        "0x40400000..0x40600000    2 MiB RAM of cell `ping`",
        "0x40a00000..0x40a10000   64 KiB shared memory `shm0`",
        "shared  IPA 0x50000000..0x50010000 -> PA 0x40a00000   64 KiB r--",
        "device  IPA 0x9040000..0x9041000 -> PA 0x9040000    4 KiB rw-",
        "INTID 40 of device `uart1` -> cell `ping` vCPU 0",
        "ping -> pong",
        "[0] ping: Native, priority 10, 1 vCPU on cores [0], fault report to `pong`",
        "budget 2 ms every 10 ms; FP/SIMD off (trapped); controls none",
        "fault restart (limit 5)",
        "budget unlimited; FP/SIMD on; controls `ping`",
        "capability tables",
        "  0     endpoint       ping->pong     call          badge 0, served by pong",
        "  2     cell-control   cell:ping      control       stop, start, restart, status; receives its fault reports",
    ] {
        assert!(
            report.contains(needle),
            "layout.txt lacks {needle:?}:\n{report}"
        );
    }
    assert!(leftovers(fixture.folder.path()).is_empty());
}

#[test]
fn builds_are_deterministic_and_replace_the_previous_output() {
    let fixture = Fixture::new(&kernel_elf(KERNEL_BASE, 0x3_2000, 0x2_0000));
    fixture.build().unwrap();
    let first = fs::read(fixture.path("out/cellvisor.img")).unwrap();
    fs::write(fixture.path("out/stale"), b"old").unwrap();
    fixture.build().unwrap();
    assert_eq!(fs::read(fixture.path("out/cellvisor.img")).unwrap(), first);
    assert!(!fixture.path("out/stale").exists());
    assert!(leftovers(fixture.folder.path()).is_empty());
}

#[test]
fn a_kernel_linked_elsewhere_fails_and_writes_nothing() {
    let fixture = Fixture::new(&kernel_elf(KERNEL_BASE + 0x1000, 0x3_2000, 0x2_0000));
    match fixture.build() {
        Err(Error::Kernel {
            error:
                KernelError::WrongBase {
                    kernel_base,
                    expected,
                },
            ..
        }) => assert_eq!((kernel_base, expected), (KERNEL_BASE + 0x1000, KERNEL_BASE)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!fixture.path("out").exists());
    assert!(leftovers(fixture.folder.path()).is_empty());
}

#[test]
fn kernel_segments_must_fit_the_header_image_size() {
    let fixture = Fixture::new(&kernel_elf(KERNEL_BASE, 0x1000, 0x2_0000));
    let error = fixture.build().unwrap_err();
    assert!(matches!(
        error,
        Error::Kernel {
            error: KernelError::SegmentsPastImageSize {
                span: 0x2_0000,
                image_size: 0x1000
            },
            ..
        }
    ));
    assert!(error.to_string().contains("kernel.elf"));
    assert!(!fixture.path("out").exists());
}

#[test]
fn a_system_too_big_for_ram_with_this_kernel_fails_naming_the_total() {
    // A 1020 MiB kernel footprint leaves no room for 6 MiB of cells in 1 GiB.
    let fixture = Fixture::new(&kernel_elf(KERNEL_BASE, 1020 << 20, 0x1000));
    let error = fixture.build().unwrap_err();
    match &error {
        Error::Layout {
            error: LayoutError::DoesNotFit { needed, ram_size },
            ..
        } => {
            assert_eq!(*ram_size, 1 << 30);
            assert!(*needed > 1 << 30);
        }
        other => panic!("unexpected {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("system.toml") && message.contains("1 GiB"),
        "{message}"
    );
    assert!(!fixture.path("out").exists());
}

#[test]
fn an_invalid_description_fails_before_writing() {
    let fixture = Fixture::new(&kernel_elf(KERNEL_BASE, 0x3_2000, 0x2_0000));
    fs::remove_file(fixture.path("pong.elf")).unwrap();
    match fixture.build() {
        Err(Error::Invalid(diagnostics)) => {
            assert_eq!(diagnostics.problems.len(), 1);
            assert!(diagnostics
                .render(cellvisor::Style::Plain)
                .contains("pong.elf"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!fixture.path("out").exists());
}
