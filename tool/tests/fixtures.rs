//! Snapshot tests: every `systems/invalid/*.toml` renders exactly its `.expected` file, and
//! the shipped systems are valid (apart from their images, which xtask builds).
//!
//! Run with `CELLVISOR_BLESS=1` to rewrite the expected files and the fixture image after
//! a deliberate change, then review the diff.

use std::fs;
use std::path::{Path, PathBuf};

use abi::image::CELL_RAM_IPA;
use abi::plan::{FaultPolicy, ANY_CORE};
use cellvisor::elf::{write_elf, SegmentSpec};
use cellvisor::{check_source, CheckOptions, Style};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bless() -> bool {
    std::env::var_os("CELLVISOR_BLESS").is_some()
}

/// The fixtures' cell image: one page at the cell's RAM, entry on a branch-to-self.
fn tiny_elf() -> Vec<u8> {
    write_elf(
        object::elf::EM_AARCH64.0,
        CELL_RAM_IPA,
        &[SegmentSpec {
            address: CELL_RAM_IPA,
            bytes: 0x1400_0000u32.to_le_bytes().to_vec(),
            memory_size: 0x1000,
        }],
    )
}

#[test]
fn fixture_image_is_the_generated_one() {
    let path = repository().join("systems/invalid/images/tiny.elf");
    if bless() && fs::read(&path).ok() != Some(tiny_elf()) {
        // Rename into place: the snapshot test reads this file concurrently.
        let temporary = path.with_extension("elf.partial");
        fs::write(&temporary, tiny_elf()).unwrap();
        fs::rename(&temporary, &path).unwrap();
    }
    assert_eq!(fs::read(&path).unwrap(), tiny_elf());
}

#[test]
fn every_invalid_fixture_renders_its_expected_message() {
    let folder = repository().join("systems/invalid");
    let mut fixtures: Vec<PathBuf> = fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 19, "fixtures missing: {fixtures:?}");
    let mut failures = Vec::new();
    for fixture in &fixtures {
        let file = fixture.file_name().unwrap().to_string_lossy().into_owned();
        let name = format!("systems/invalid/{file}");
        let text = fs::read_to_string(fixture).unwrap();
        let rendered = match check_source(&name, &text, &folder, CheckOptions::default()) {
            Ok(_) => {
                failures.push(format!("{name}: accepted, but it is in systems/invalid"));
                continue;
            }
            Err(diagnostics) => diagnostics.render(Style::Plain),
        };
        let expected_path = fixture.with_extension("expected");
        if bless() {
            fs::write(&expected_path, &rendered).unwrap();
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if rendered != expected {
            failures.push(format!(
                "{name}: rendered message differs from {}\n--- rendered ---\n{rendered}\n--- expected ---\n{expected}",
                expected_path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn several_mistakes_are_all_reported() {
    let folder = repository().join("systems/invalid");
    let text = fs::read_to_string(folder.join("several-mistakes.toml")).unwrap();
    let diagnostics = check_source(
        "several-mistakes.toml",
        &text,
        &folder,
        CheckOptions::default(),
    )
    .unwrap_err();
    let messages: Vec<String> = diagnostics.problems.iter().map(|p| p.message()).collect();
    assert_eq!(
        messages,
        [
            "priority 99 is out of range",
            "duplicate cell name `ping`",
            "invalid size: `MB` is not a size unit",
            "core 3 is beyond the board's 2 cores",
            "channel to a missing cell `ghost`",
        ]
    );
}

fn check_shipped(file: &str) -> cellvisor::Checked {
    let path = repository().join("systems").join(file);
    let text = fs::read_to_string(&path).unwrap();
    let options = CheckOptions { load_images: false };
    match check_source(file, &text, path.parent().unwrap(), options) {
        Ok(checked) => checked,
        Err(diagnostics) => panic!("{}", diagnostics.render(Style::Plain)),
    }
}

#[test]
fn hello_is_valid_apart_from_its_images() {
    let checked = check_shipped("hello.toml");
    let system = &checked.system;
    assert_eq!(system.board.ram_base, 0x4000_0000);
    assert_eq!(system.board.ram_size, 1 << 30);
    assert_eq!(system.board.cores, 4);
    let names: Vec<&str> = system.cells.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["ping", "pong"]);
    for cell in &system.cells {
        assert_eq!(cell.memory, 2 << 20);
        assert_eq!((cell.vcpus, cell.priority), (1, 10));
        assert_eq!(cell.cores, [0]);
        assert_eq!(cell.fault, FaultPolicy::Stop);
        assert_eq!(cell.restart_limit, 0);
    }
    assert!(system.cells[0].image.ends_with("target/cells/ping.elf"));
    assert_eq!(system.channels.len(), 1);
    assert_eq!((system.channels[0].from, system.channels[0].to), (0, 1));
    assert_eq!(
        checked.summary(),
        "hello.toml: ok — 2 cells, 4 cores, 4 MiB of cell memory"
    );
}

#[test]
fn fault_and_bench_systems_are_valid_apart_from_their_images() {
    let fault = check_shipped("fault.toml");
    let names: Vec<&str> = fault.system.cells.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["ping", "crasher"]);
    assert!(fault.system.cells[1]
        .image
        .ends_with("target/cells/crasher.elf"));
    assert!(fault.system.cells.iter().all(|c| c.cores == [0]));
    let bench = check_shipped("bench-boot.toml");
    assert_eq!(bench.system.cells.len(), 1);
    assert_eq!(bench.system.cells[0].name, "bench");
    assert!(bench.system.cells[0]
        .image
        .ends_with("target/cells/bench_boot.elf"));
    assert_ne!(bench.system.cells[0].cores, [ANY_CORE]);
}
