//! Guest cells end to end: the shipped `systems/linux.toml`, the fixtures' fake Linux
//! images, and a build whose guest image, device tree and layout are read back from the
//! written files.

use std::fs;
use std::path::{Path, PathBuf};

use abi::image::CELL_RAM_IPA;
use abi::plan::{CellKind, Plan};
use cellvisor::elf::{write_elf, SegmentSpec};
use cellvisor::guest::{self, fake_kernel};
use cellvisor::{build, check_source, CheckOptions, Style};

const MIB: u64 = 1 << 20;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The fixtures' fake guest kernel: a 5 MiB + 1 byte footprint in a 4 KiB file.
fn fixture_kernel() -> Vec<u8> {
    fake_kernel(0, 5 * MIB + 1, 4096)
}

const FIXTURE_INITRD: &[u8] = b"070701 a fake initramfs for the cellvisor fixtures\n";

#[test]
fn fixture_guest_images_are_the_generated_ones() {
    let folder = repository().join("systems/invalid/images");
    for (name, bytes) in [
        ("fake-linux.img", fixture_kernel()),
        ("fake-initrd.cpio", FIXTURE_INITRD.to_vec()),
    ] {
        let path = folder.join(name);
        if std::env::var_os("CELLVISOR_BLESS").is_some()
            && fs::read(&path).ok().as_ref() != Some(&bytes)
        {
            let temporary = path.with_extension("partial");
            fs::write(&temporary, &bytes).unwrap();
            fs::rename(&temporary, &path).unwrap();
        }
        assert_eq!(fs::read(&path).unwrap(), bytes, "{name}");
    }
}

fn check_linux(load_images: bool) -> Result<cellvisor::Checked, String> {
    let path = repository().join("systems/linux.toml");
    let text = fs::read_to_string(&path).unwrap();
    check_source(
        "linux.toml",
        &text,
        path.parent().unwrap(),
        CheckOptions { load_images },
    )
    .map_err(|diagnostics| diagnostics.render(Style::Plain))
}

#[test]
fn linux_system_is_valid_apart_from_its_images() {
    let checked = check_linux(false).unwrap_or_else(|error| panic!("{error}"));
    let system = &checked.system;
    let names: Vec<&str> = system.cells.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["ping", "linux", "spinner"]);
    let linux = &system.cells[1];
    assert_eq!(linux.kind, CellKind::Guest);
    assert_eq!((linux.vcpus, linux.memory), (2, 256 * MIB));
    assert_eq!(linux.cores, [2, 3]);
    let settings = linux.guest.as_ref().unwrap();
    // No virtio slots until device-model cells serve them.
    assert_eq!(settings.virtio_mmio, 0);
    assert!(settings.bootargs.starts_with("console=ttyAMA0"));
    assert!(linux.image.ends_with("Image"));
    assert!(settings
        .initrd
        .as_ref()
        .unwrap()
        .ends_with("initramfs.cpio"));
    assert_eq!(system.cells[0].guest, None);
    // The EL0 neighbour of the guest's first vCPU.
    let spinner = &system.cells[2];
    assert_eq!((spinner.el0, spinner.cores.as_slice()), (true, &[2][..]));
    assert!(!linux.el0 && !system.cells[0].el0);
}

#[test]
fn linux_system_is_valid_with_its_images_when_they_are_fetched() {
    let folder = guest::lookup(guest::GUEST_VARIABLE).map(PathBuf::from);
    let fetched = folder
        .as_ref()
        .is_some_and(|f| f.join("Image").is_file() && f.join("initramfs.cpio").is_file());
    let ping = repository().join("target/cells/ping.elf");
    if !fetched || !ping.is_file() {
        eprintln!("skipped: the guest images or ping.elf are not built");
        return;
    }
    let checked = check_linux(true).unwrap_or_else(|error| panic!("{error}"));
    let boot = checked.boots[1].as_ref().unwrap();
    assert_eq!(checked.images[1].base, boot.placement.kernel_ipa);
    assert!(boot.placement.needed() <= 256 * MIB);
}

const KERNEL_BASE: u64 = 0x4020_0000;

/// A kernel ELF at `KERNEL_BASE` with an arm64 Image header.
fn kernel_elf() -> Vec<u8> {
    let mut header = vec![0u8; 0x100];
    header[8..16].copy_from_slice(&0x20_0000u64.to_le_bytes());
    header[16..24].copy_from_slice(&0x10_0000u64.to_le_bytes());
    header[56..60].copy_from_slice(b"ARM\x64");
    write_elf(
        object::elf::EM_AARCH64.0,
        KERNEL_BASE,
        &[SegmentSpec {
            address: KERNEL_BASE,
            bytes: header,
            memory_size: 0x10_0000,
        }],
    )
}

const DESCRIPTION: &str = r#"
[board]
ram-base = 0x4000_0000
ram-size = "1 GiB"
cores = 4

[[cell]]
name = "linux"
kind = "guest"
image = "${CELLVISOR_TEST_GUEST_FOLDER_THAT_IS_SET}/Image"
initrd = "initrd.cpio"
bootargs = "console=ttyAMA0"
memory = "64 MiB"
vcpus = 2
cores = [2, 3]
priority = 5
virtio-mmio = 1

[[memory]]
name = "ring"
size = "64 KiB"
map = [ { cell = "linux", rights = "rw", ipa = 0x5000_0000 } ]
"#;

#[test]
fn a_guest_builds_into_kernel_dtb_and_initrd_by_the_boot_protocol() {
    let folder = tempfile::tempdir().unwrap();
    let root = folder.path();
    let kernel_image = fake_kernel(0x8_0000, 3 * MIB + 5, 8192);
    let initrd = vec![0x5a; 10_000];
    fs::write(root.join("Image"), &kernel_image).unwrap();
    fs::write(root.join("initrd.cpio"), &initrd).unwrap();
    fs::write(root.join("kernel.elf"), kernel_elf()).unwrap();
    // Only this test reads the variable, so setting it races with nothing.
    std::env::set_var(
        "CELLVISOR_TEST_GUEST_FOLDER_THAT_IS_SET",
        root.display().to_string(),
    );
    fs::write(root.join("system.toml"), DESCRIPTION).unwrap();
    let out = root.join("out");
    let built = build(&root.join("system.toml"), &root.join("kernel.elf"), &out)
        .unwrap_or_else(|error| panic!("{error}"));
    let image = fs::read(&built.image).unwrap();
    let plan_offset = built.layout.plan_offset as usize;
    let plan = Plan::decode(&image[plan_offset..]).unwrap();
    let record = plan.cell(0);
    let kernel_ipa = CELL_RAM_IPA + 0x8_0000;
    assert_eq!(
        (record.load_ipa, record.entry_ipa),
        (kernel_ipa, kernel_ipa)
    );
    let start = plan_offset + record.image_offset as usize;
    let payload = &image[start..start + record.image_size as usize];

    // The convention the EL2 kernel follows: the DTB is at the end of the Image header's
    // image_size, rounded up to 2 MiB; the initrd 2 MiB after it.
    let image_size = u64::from_le_bytes(payload[16..24].try_into().unwrap());
    let dtb_ipa = guest::dtb_ipa(record.load_ipa, image_size).unwrap();
    assert_eq!(dtb_ipa, CELL_RAM_IPA + 4 * MIB);
    let initrd_ipa = dtb_ipa + guest::DTB_SLOT;
    assert_eq!(&payload[..kernel_image.len()], &kernel_image[..]);
    let dtb = fs::read(out.join("linux.dtb")).unwrap();
    let dtb_at = (dtb_ipa - kernel_ipa) as usize;
    assert_eq!(&payload[dtb_at..dtb_at + dtb.len()], &dtb[..]);
    assert!(payload[kernel_image.len()..dtb_at].iter().all(|&b| b == 0));
    let initrd_at = (initrd_ipa - kernel_ipa) as usize;
    assert_eq!(&payload[initrd_at..], &initrd[..]);

    let tree = fdt::Fdt::new(&dtb).unwrap();
    assert_eq!(tree.chosen().bootargs(), Some("console=ttyAMA0"));
    let chosen = tree.find_node("/chosen").unwrap();
    let start_value = chosen.property("linux,initrd-start").unwrap().value;
    assert_eq!(start_value, initrd_ipa.to_be_bytes());
    let end_value = chosen.property("linux,initrd-end").unwrap().value;
    assert_eq!(end_value, (initrd_ipa + initrd.len() as u64).to_be_bytes());
    assert!(tree.find_node("/reserved-memory/ring@50000000").is_some());
    assert!(tree.find_node("/virtio_mmio@a000000").is_some());
    assert_eq!(tree.cpus().count(), 2);

    let layout = fs::read_to_string(&built.report).unwrap();
    for expected in [
        format!(
            "kernel IPA {kernel_ipa:#x}..{:#x}",
            kernel_ipa + 3 * MIB + 5
        ),
        format!("dtb    IPA {dtb_ipa:#x}..{:#x}", dtb_ipa + dtb.len() as u64),
        format!(
            "initrd IPA {initrd_ipa:#x}..{:#x} (10000 bytes)",
            initrd_ipa + 10_000
        ),
    ] {
        assert!(layout.contains(&expected), "{expected} not in\n{layout}");
    }
}
