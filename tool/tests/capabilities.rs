//! Capability tables from descriptions: slot order, rights, badges, channels as endpoints,
//! the mistakes that have no fixture of their own, and `cellvisor caps` (its output is
//! compared with `tests/snapshots/caps.txt`; `CELLVISOR_BLESS=1` rewrites it).

use std::fs;
use std::path::Path;
use std::process::Command;

use abi::hvc::{CONTROL, ENDPOINT_CALL, ENDPOINT_SERVE, NOTIFICATION_SIGNAL, NOTIFICATION_WAIT};
use abi::plan::Rights;
use cellvisor::system::{Capability, Object};
use cellvisor::{check_source, CheckOptions, Checked};

/// Cells ping (0), pong (1, 2 vCPUs, owns uart1 with INTIDs 40 and 41, supervised by
/// ping) and ping2 (2); every kind of object.
const SYSTEM: &str = r#"
[board]
ram-base = 0x4000_0000
ram-size = "1 GiB"
cores = 2

[[cell]]
name = "ping"
kind = "native"
image = "x.elf"
memory = "2 MiB"
priority = 1
caps = ["ready", "cell:pong", "echo"]

[[cell]]
name = "pong"
kind = "native"
image = "x.elf"
memory = "2 MiB"
vcpus = 2
priority = 1
fault = "report"
supervisor = "ping"
caps = ["irq:41"]

[[cell]]
name = "ping2"
kind = "native"
image = "x.elf"
memory = "2 MiB"
priority = 1

[[endpoint]]
name = "echo"
server = "pong"
clients = ["ping", { cell = "ping2", badge = 7 }]

[[notification]]
name = "ready"
waiter = "pong"
signallers = ["ping", "pong"]
virtual-irq = 48
vcpu = 1

[[memory]]
name = "shm0"
size = "64 KiB"
map = [ { cell = "ping", rights = "rw" }, { cell = "pong", rights = "r" } ]

[[device]]
name = "uart1"
base = 0x0904_0000
size = "4 KiB"
cell = "pong"
irqs = [40, 41]

[[channel]]
from = "ping2"
to = "ping"
"#;

fn check(text: &str) -> Result<Checked, Vec<String>> {
    let options = CheckOptions { load_images: false };
    check_source("t.toml", text, Path::new("."), options)
        .map_err(|diagnostics| diagnostics.problems.iter().map(|p| p.message()).collect())
}

fn capability(object: Object, rights: u64, badge: u32) -> Capability {
    Capability {
        object,
        rights: rights as u8,
        badge,
    }
}

#[test]
fn tables_list_the_caps_entries_first_then_every_other_authority() {
    let checked = check(SYSTEM).unwrap();
    let system = &checked.system;
    let names: Vec<&str> = system.endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["echo", "ping2->ping"]);
    assert_eq!(
        system.endpoints[0].clients[0].badge, 0,
        "default badge: cell index"
    );
    assert_eq!(system.endpoints[0].clients[1].badge, 7);
    assert_eq!(system.endpoints[1].server, 0);
    assert_eq!(system.endpoints[1].clients[0].badge, 2);
    assert_eq!(system.notifications[0].virtual_irq, Some(48));
    assert_eq!(system.notifications[0].vcpu, 1);
    let r = u64::from(Rights::R.0);
    let rw = u64::from(Rights::R.union(Rights::W).0);
    assert_eq!(
        system.cells[0].capabilities,
        [
            capability(Object::Notification(0), NOTIFICATION_SIGNAL, 0),
            capability(Object::Cell(1), CONTROL, 0),
            capability(Object::Endpoint(0), ENDPOINT_CALL, 0),
            capability(Object::Endpoint(1), ENDPOINT_SERVE, 0),
            capability(Object::Memory(0), rw, 0),
        ]
    );
    assert_eq!(
        system.cells[1].capabilities,
        [
            capability(Object::Interrupt(41), 0, 0),
            capability(Object::Endpoint(0), ENDPOINT_SERVE, 0),
            capability(
                Object::Notification(0),
                NOTIFICATION_WAIT | NOTIFICATION_SIGNAL,
                0
            ),
            capability(Object::Memory(0), r, 0),
            capability(Object::Interrupt(40), 0, 0),
        ]
    );
    assert_eq!(
        system.cells[2].capabilities,
        [
            capability(Object::Endpoint(0), ENDPOINT_CALL, 7),
            capability(Object::Endpoint(1), ENDPOINT_CALL, 2),
        ]
    );
}

#[test]
fn caps_output_matches_its_snapshot() {
    let checked = check(SYSTEM).unwrap();
    let rendered = cellvisor::caps::tables(&checked.system);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/caps.txt");
    if std::env::var_os("CELLVISOR_BLESS").is_some() {
        fs::write(&path, &rendered).unwrap();
    }
    assert_eq!(rendered, fs::read_to_string(&path).unwrap());
}

#[test]
fn the_caps_command_prints_the_tables_or_fails_with_diagnostics() {
    let folder = std::env::temp_dir().join(format!("cellvisor-caps-{}", std::process::id()));
    fs::create_dir_all(&folder).unwrap();
    let valid = folder.join("valid.toml");
    let invalid = folder.join("invalid.toml");
    fs::write(&valid, SYSTEM).unwrap();
    fs::write(&invalid, SYSTEM.replace("\"irq:41\"", "\"irq:42\"")).unwrap();
    let run = |path: &Path| {
        Command::new(env!("CARGO_BIN_EXE_cellvisor"))
            .env("NO_COLOR", "1")
            .args(["caps", "--no-images"])
            .arg(path)
            .output()
            .unwrap()
    };
    let ok = run(&valid);
    assert!(ok.status.success());
    let expected = cellvisor::caps::tables(&check(SYSTEM).unwrap().system);
    assert_eq!(String::from_utf8_lossy(&ok.stdout), expected);
    let failed = run(&invalid);
    assert_eq!(failed.status.code(), Some(1));
    assert!(failed.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains(
            "cell `pong` lists `irq:42` in `caps` but none of its devices has that interrupt"
        ),
        "{stderr}"
    );
    fs::remove_dir_all(&folder).unwrap();
}

#[test]
fn mistakes_without_a_fixture_are_reported() {
    let errors = |from: &str, to: &str| check(&SYSTEM.replace(from, to)).unwrap_err();
    assert_eq!(
        errors("vcpu = 1", "vcpu = 2"),
        ["vCPU 2 is beyond waiter `pong`'s 2 vCPUs"]
    );
    assert_eq!(
        errors("virtual-irq = 48\n", ""),
        ["`vcpu` is set without `virtual-irq`"]
    );
    assert_eq!(
        errors("virtual-irq = 48", "virtual-irq = 40"),
        ["virtual interrupt 40 of cell `pong` is already the interrupt of device `uart1`"]
    );
    assert_eq!(
        errors("virtual-irq = 48", "virtual-irq = 27"),
        ["virtual interrupt 27 of cell `pong` is already the virtual timer's"]
    );
    assert_eq!(
        errors(
            "signallers = [\"ping\", \"pong\"]",
            "signallers = [\"ping\", \"ping\"]"
        ),
        ["cell `ping` is listed twice in the signallers of notification `ready`"]
    );
    assert_eq!(
        errors("clients = [\"ping\",", "clients = [\"ping\", \"ping\","),
        ["cell `ping` is listed twice in the clients of endpoint `echo`"]
    );
    assert_eq!(
        errors("badge = 7", "badge = -1"),
        ["badge -1 is out of range"]
    );
    assert_eq!(
        errors("\"cell:pong\"", "\"cell:ping2\""),
        ["cell `ping` lists `cell:ping2` in `caps` but has no control right over that cell"]
    );
    assert_eq!(
        errors(
            "caps = [\"irq:41\"]",
            "caps = [\"shm0\", \"echo\", \"irq:x\"]"
        ),
        ["cell `pong` lists `irq:x` in `caps`, but no object has that name"]
    );
    // A second notification raising the same virtual interrupt in the same waiter.
    let second = SYSTEM.to_string()
        + "\n[[notification]]\nname = \"again\"\nwaiter = \"pong\"\nvirtual-irq = 48\n";
    assert_eq!(
        check(&second).unwrap_err(),
        ["virtual interrupt 48 of cell `pong` is already raised by notification `ready`"]
    );
    // Two notifications with one name.
    let twice = SYSTEM.to_string() + "\n[[notification]]\nname = \"ready\"\nwaiter = \"ping\"\n";
    assert_eq!(
        check(&twice).unwrap_err(),
        ["duplicate notification name `ready`"]
    );
}

#[test]
fn a_caps_entry_of_an_object_with_a_wrong_reference_is_not_reported_again() {
    // The server's name is wrong: only that is reported, not `echo` in ping's `caps`.
    let text = SYSTEM.replace("server = \"pong\"", "server = \"pnog\"");
    assert_eq!(
        check(&text).unwrap_err(),
        ["endpoint `echo` is served by a missing cell `pnog`"]
    );
}
