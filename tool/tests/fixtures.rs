//! Snapshot tests: every `systems/invalid/*.toml` renders exactly its `.expected` file, and
//! the shipped systems are valid (apart from their images, which xtask builds).
//!
//! Run with `CELLVISOR_BLESS=1` to rewrite the expected files and the fixture image after
//! a deliberate change, then review the diff.

use std::fs;
use std::path::{Path, PathBuf};

use abi::image::CELL_RAM_IPA;
use abi::plan::{FaultPolicy, Rights, ANY_CORE};
use cellvisor::elf::{write_elf, SegmentSpec};
use cellvisor::system::Budget;
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
    assert!(fixtures.len() >= 32, "fixtures missing: {fixtures:?}");
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

fn cell<'a>(checked: &'a cellvisor::Checked, name: &str) -> (usize, &'a cellvisor::system::Cell) {
    checked
        .system
        .cells
        .iter()
        .enumerate()
        .find(|(_, cell)| cell.name == name)
        .unwrap_or_else(|| panic!("{}: no cell `{name}`", checked.name))
}

fn budget(us: u32, period: u32) -> Option<Budget> {
    Some(Budget {
        budget_us: us,
        period_us: period,
    })
}

#[test]
fn issue_three_systems_are_valid_apart_from_their_images() {
    let timeslice = check_shipped("timeslice.toml");
    for name in ["ping", "spinner"] {
        let (_, cell) = cell(&timeslice, name);
        assert_eq!((cell.cores.as_slice(), cell.priority), (&[0u8][..], 10));
    }

    let hostile = check_shipped("hostile.toml");
    assert_eq!(hostile.system.board.cores, 4);
    let (_, victim) = cell(&hostile, "victim");
    assert_eq!((victim.cores.as_slice(), victim.priority), (&[1u8][..], 10));
    let (_, attacker) = cell(&hostile, "hostile");
    assert_eq!(
        (attacker.cores.as_slice(), attacker.priority),
        (&[1u8][..], 20)
    );
    assert_eq!(attacker.budget, budget(2_000, 10_000));
    assert_eq!(
        (attacker.fault, attacker.restart_limit),
        (FaultPolicy::Restart, 6)
    );

    let restart = check_shipped("restart.toml");
    let (_, restarter) = cell(&restart, "restarter");
    assert_eq!(
        (restarter.fault, restarter.restart_limit),
        (FaultPolicy::Restart, 2)
    );
    assert!(restarter.image.ends_with("target/cells/restarter.elf"));
    cell(&restart, "ping");

    let realtime = check_shipped("realtime.toml");
    assert_eq!(realtime.system.board.cores, 2);
    let (_, rt) = cell(&realtime, "rt");
    assert!(rt.image.ends_with("target/cells/rt_periodic.elf"));
    assert_eq!((rt.priority, rt.budget), (20, budget(500, 1_000)));
    let (_, spinner) = cell(&realtime, "spinner");
    assert_eq!((spinner.priority, spinner.budget), (5, None));

    let supervised = check_shipped("supervised.toml");
    let (supervisor_index, supervisor) = cell(&supervised, "supervisor");
    let (crasher_index, crasher) = cell(&supervised, "crasher");
    assert_eq!(
        (crasher.fault, crasher.supervisor),
        (FaultPolicy::Report, Some(supervisor_index))
    );
    assert_eq!(supervisor.priority, 15);
    assert_eq!(supervisor.controls, [crasher_index]);
    assert_eq!(cell(&supervised, "ping").1.cores, [1]);

    let hvc = check_shipped("bench-hvc.toml");
    assert!(cell(&hvc, "bench")
        .1
        .image
        .ends_with("target/cells/bench_hvc.elf"));
    let switch = check_shipped("bench-switch.toml");
    let (_, a) = cell(&switch, "switch-a");
    let (_, b) = cell(&switch, "switch-b");
    assert!(!a.fp && !b.fp);
    assert_eq!(
        (a.cores.as_slice(), a.priority),
        (b.cores.as_slice(), b.priority)
    );
    assert!(b.image.ends_with("target/cells/bench_switch_b.elf"));
    let timer = check_shipped("bench-timer.toml");
    assert!(cell(&timer, "bench").1.fp);
    let loaded = check_shipped("bench-timer-loaded.toml");
    let (_, bench) = cell(&loaded, "bench");
    let (_, spinner) = cell(&loaded, "spinner");
    assert!(bench.image.ends_with("target/cells/bench_timer.elf"));
    assert_eq!((bench.priority, spinner.priority), (10, 20));
    assert_eq!(spinner.budget, budget(1_000, 10_000));
    assert_eq!(bench.cores, spinner.cores);
}

#[test]
fn control_rights_are_listed_cells_and_supervised_cells() {
    let text = r#"
[board]
ram-base = 0x4000_0000
ram-size = "1 GiB"
cores = 1

[[cell]]
name = "boss"
kind = "native"
image = "x.elf"
memory = "2 MiB"
priority = 1
controls = ["c", "a"]

[[cell]]
name = "a"
kind = "native"
image = "x.elf"
memory = "2 MiB"
priority = 1
fault = "report"
supervisor = "boss"

[[cell]]
name = "b"
kind = "native"
image = "x.elf"
memory = "2 MiB"
priority = 1
fault = "report"
supervisor = "boss"

[[cell]]
name = "c"
kind = "native"
image = "x.elf"
memory = "2 MiB"
priority = 1
"#;
    let options = CheckOptions { load_images: false };
    let checked = check_source("t.toml", text, Path::new("."), options).unwrap();
    let cells = &checked.system.cells;
    assert_eq!(cells[0].controls, [1, 2, 3]);
    assert!(cells[1..].iter().all(|cell| cell.controls.is_empty()));
    assert_eq!((cells[1].supervisor, cells[3].supervisor), (Some(0), None));
    assert_eq!(cells[1].restart_limit, 0);
}

#[test]
fn issue_four_systems_are_valid_and_fix_the_documented_slots() {
    use abi::hvc::{ENDPOINT_CALL, ENDPOINT_SERVE, NOTIFICATION_SIGNAL, NOTIFICATION_WAIT};
    use cellvisor::system::Object;
    // Each cell's table as (object, rights) per slot.
    let table = |checked: &cellvisor::Checked, name: &str| -> Vec<(Object, u64)> {
        cell(checked, name)
            .1
            .capabilities
            .iter()
            .map(|c| (c.object, u64::from(c.rights)))
            .collect()
    };
    let image = |checked: &cellvisor::Checked, name: &str, file: &str| {
        let path = &cell(checked, name).1.image;
        assert!(path.ends_with(format!("target/cells/{file}")), "{path:?}");
    };
    for (file, server_image, client_image) in [
        ("ipc.toml", "ipc_server.elf", "ipc_client.elf"),
        (
            "ipc-crash.toml",
            "ipc_crash_server.elf",
            "ipc_crash_client.elf",
        ),
        (
            "bench-ipc.toml",
            "bench_ipc_server.elf",
            "bench_ipc_client.elf",
        ),
        ("denied.toml", "ipc_server.elf", "ipc_client.elf"),
    ] {
        let checked = check_shipped(file);
        image(&checked, "server", server_image);
        image(&checked, "client", client_image);
        let (client_index, client) = cell(&checked, "client");
        let (_, server) = cell(&checked, "server");
        assert_eq!((server.priority, client.priority), (12, 10), "{file}");
        assert_eq!(
            (server.cores.as_slice(), client.cores.as_slice()),
            (&[0u8][..], &[0u8][..])
        );
        assert_eq!(
            table(&checked, "server"),
            [(Object::Endpoint(0), ENDPOINT_SERVE)]
        );
        assert_eq!(
            table(&checked, "client"),
            [(Object::Endpoint(0), ENDPOINT_CALL)]
        );
        assert_eq!(checked.system.endpoints[0].name, "echo");
        assert_eq!(
            checked.system.endpoints[0].clients[0].badge,
            client_index as u32
        );
    }
    let crash = check_shipped("ipc-crash.toml");
    let (_, server) = cell(&crash, "server");
    assert_eq!(
        (server.fault, server.restart_limit),
        (FaultPolicy::Restart, 3)
    );
    let bench = check_shipped("bench-ipc.toml");
    assert!(!cell(&bench, "server").1.fp && !cell(&bench, "client").1.fp);
    let denied = check_shipped("denied.toml");
    let (_, nobody) = cell(&denied, "denied");
    assert!(nobody.image.ends_with("target/cells/denied.elf"));
    assert!(nobody.capabilities.is_empty() && nobody.controls.is_empty());

    let notify = check_shipped("notify.toml");
    image(&notify, "ping", "notify_ping.elf");
    image(&notify, "pong", "notify_pong.elf");
    let names: Vec<&str> = notify
        .system
        .notifications
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(names, ["to-pong", "to-ping"]);
    assert_eq!(
        table(&notify, "ping"),
        [
            (Object::Notification(0), NOTIFICATION_SIGNAL),
            (Object::Notification(1), NOTIFICATION_WAIT)
        ]
    );
    assert_eq!(
        table(&notify, "pong"),
        [
            (Object::Notification(1), NOTIFICATION_SIGNAL),
            (Object::Notification(0), NOTIFICATION_WAIT)
        ]
    );

    for (file, producer, consumer, consumer_core) in [
        ("ring.toml", "ring_producer.elf", "ring_consumer.elf", 1u8),
        (
            "ring-corrupt.toml",
            "ring_vandal.elf",
            "ring_consumer.elf",
            1,
        ),
        (
            "bench-ring.toml",
            "bench_ring_producer.elf",
            "bench_ring_consumer.elf",
            0,
        ),
    ] {
        let ring = check_shipped(file);
        image(&ring, "producer", producer);
        image(&ring, "consumer", consumer);
        assert_eq!(cell(&ring, "producer").1.cores, [0]);
        assert_eq!(cell(&ring, "consumer").1.cores, [consumer_core]);
        let memory = &ring.system.memories[0];
        assert_eq!((memory.name.as_str(), memory.size), ("ring", 64 << 10));
        assert!(memory
            .maps
            .iter()
            .all(|map| map.rights == Rights::R.union(Rights::W)));
        assert!(memory.maps.iter().all(|map| map.ipa == 0x4020_0000));
        let rw = u64::from(Rights::R.union(Rights::W).0);
        assert_eq!(
            table(&ring, "producer"),
            [
                (Object::Memory(0), rw),
                (Object::Notification(0), NOTIFICATION_SIGNAL),
                (Object::Notification(1), NOTIFICATION_WAIT)
            ]
        );
        assert_eq!(
            table(&ring, "consumer"),
            [
                (Object::Memory(0), rw),
                (Object::Notification(0), NOTIFICATION_WAIT),
                (Object::Notification(1), NOTIFICATION_SIGNAL)
            ]
        );
    }

    let wake = check_shipped("bench-notify.toml");
    image(&wake, "waiter", "bench_notify_waiter.elf");
    image(&wake, "signaller", "bench_notify_signaller.elf");
    assert_eq!(
        (
            cell(&wake, "waiter").1.priority,
            cell(&wake, "signaller").1.priority
        ),
        (12, 10)
    );
    assert_eq!(
        table(&wake, "waiter"),
        [(Object::Notification(0), NOTIFICATION_WAIT)]
    );
    assert_eq!(
        table(&wake, "signaller"),
        [(Object::Notification(0), NOTIFICATION_SIGNAL)]
    );

    // hello's channel is the endpoint `ping->pong`, slot 0 of both cells.
    let hello = check_shipped("hello.toml");
    assert_eq!(hello.system.endpoints[0].name, "ping->pong");
    assert_eq!(
        table(&hello, "ping"),
        [(Object::Endpoint(0), ENDPOINT_CALL)]
    );
    assert_eq!(
        table(&hello, "pong"),
        [(Object::Endpoint(0), ENDPOINT_SERVE)]
    );
}
