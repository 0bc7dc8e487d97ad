//! The QEMU integration tests, declared as data: one row per boot.
//!
//! Every console text the tests rely on is in this file. When the kernel or a cell changes
//! what it prints, change the patterns here (and nowhere else). Each test boots its system
//! once with a timeout; `expect` patterns must all appear, in this order; `forbid` patterns
//! (plus `PANIC` and `kernel panic`, always) must not appear at all.

use crate::board_tree::BoardTreeChange;
use crate::image::Mutation;

/// One QEMU integration test.
#[derive(Clone, Copy, Debug)]
pub struct QemuTest {
    /// Test name: `--filter` matches it, and the console log is `target/qemu-tests/<name>.log`.
    pub name: &'static str,
    /// System description, relative to the workspace root.
    pub system: &'static str,
    /// QEMU `-cpu` model.
    pub cpu: &'static str,
    /// Deterministic time (`-icount shift=N,sleep=off`), for tests that judge timing from
    /// the cells' own timestamps; `None` lets guest time follow the host.
    pub icount: Option<u8>,
    /// Cores (`-smp`).
    pub smp: u32,
    /// Seconds before the test fails as timed out.
    pub timeout_seconds: u64,
    /// Damage done to the built image before booting it.
    pub mutation: Option<Mutation>,
    /// A change to QEMU's device tree, passed with `-dtb` (`crate::board_tree`).
    pub board_tree: Option<BoardTreeChange>,
    /// Console patterns that must all appear, in this order.
    pub expect: &'static [&'static str],
    /// Console patterns that must not appear.
    pub forbid: &'static [&'static str],
    /// Keys typed on the console: `(after, keys)`, each once `after` has appeared.
    pub keys: &'static [(&'static str, &'static str)],
}

/// What every boot of `systems/hello.toml` shows once both cells talk.
const HELLO_RUNNING: &[&str] = &[
    "Cellvisor",
    "cell ping: started",
    "cell pong: started",
    "core 3: online",
    "[ping] ping 3",
    "[pong] pong 3",
];

/// What the kernel prints when it refuses a boot plan.
const PLAN_REJECTED: &str = "boot plan rejected";

/// Every QEMU integration test, in the order they run.
pub const QEMU_TESTS: &[QemuTest] = &[
    QemuTest {
        name: "hello-a72",
        system: "systems/hello.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 60,
        mutation: None,
        board_tree: None,
        expect: HELLO_RUNNING,
        forbid: &[],
        keys: &[],
    },
    QemuTest {
        name: "hello-a53",
        system: "systems/hello.toml",
        cpu: "cortex-a53",
        smp: 4,
        icount: None,
        timeout_seconds: 60,
        mutation: None,
        board_tree: None,
        expect: HELLO_RUNNING,
        forbid: &[],
        keys: &[],
    },
    QemuTest {
        // A board whose device tree lists the boot CPU last: it must still come first in the
        // kernel's core numbering and every core comes online.
        name: "board-boot-cpu-last",
        system: "systems/hello.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 60,
        mutation: None,
        board_tree: Some(BoardTreeChange::BootCpuLast),
        expect: HELLO_RUNNING,
        forbid: &["does not name the boot CPU"],
        keys: &[],
    },
    QemuTest {
        // A device tree without /cpus: the kernel says so on the console and stops, rather
        // than fault inside the device-tree parser.
        name: "board-without-cpus",
        system: "systems/hello.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 30,
        mutation: None,
        board_tree: Some(BoardTreeChange::WithoutCpus),
        expect: &["the device tree has no usable /cpus node: cannot boot"],
        forbid: &["Cellvisor"],
        keys: &[],
    },
    QemuTest {
        name: "fault-contained",
        system: "systems/fault.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 60,
        mutation: None,
        board_tree: None,
        expect: &[
            "[crasher] crasher: about to write",
            "cell crasher: stopped",
            "[ping] ping 10",
        ],
        forbid: &[],
        keys: &[],
    },
    QemuTest {
        name: "timeslice",
        system: "systems/timeslice.toml",
        cpu: "cortex-a53",
        smp: 4,
        icount: None,
        timeout_seconds: 60,
        mutation: None,
        board_tree: None,
        // The spinner never yields: ping only progresses because the kernel's timer
        // preempts it.
        expect: &[
            "cell spinner: started",
            "[spinner] spinner 2",
            "[ping] ping 5",
        ],
        forbid: &[],
        keys: &[],
    },
    QemuTest {
        name: "restart-policy",
        system: "systems/restart.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 60,
        mutation: None,
        board_tree: None,
        expect: &[
            "[restarter] restarter: run 1",
            "cell restarter: restarting (restart 1 of 2)",
            "[restarter] restarter: run 2",
            "cell restarter: restarting (restart 2 of 2)",
            "[restarter] restarter: run 3",
            "cell restarter: stopped after 2 restarts (limit reached)",
            "[ping] ping 5",
        ],
        forbid: &["restarter: run 4"],
        keys: &[],
    },
    QemuTest {
        name: "supervised-restart",
        system: "systems/supervised.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 60,
        mutation: None,
        board_tree: None,
        expect: &[
            "cell crasher: stopped; fault reported to cell supervisor",
            "[supervisor] supervisor: cell 1 faulted: data abort at 0x10000000",
            "cell crasher: restarted by cell supervisor",
            "[crasher] crasher: about to write",
            "cell crasher: stopped; fault reported to cell supervisor",
            "[supervisor] supervisor: leaving cell 1 stopped",
            "[ping] ping 10",
        ],
        forbid: &[],
        keys: &[],
    },
    QemuTest {
        name: "realtime-beside-spinner",
        system: "systems/realtime.toml",
        cpu: "cortex-a72",
        smp: 2,
        // Deterministic time (4 ns per instruction): the verdict comes from the cell's own
        // timestamps and must not depend on how busy the host is.
        icount: Some(2),
        timeout_seconds: 180,
        mutation: None,
        board_tree: None,
        expect: &[
            "[rt] rt: 500 periods, 0 missed",
            "[rt] rt: 1000 periods, 0 missed",
        ],
        forbid: &[],
        keys: &[],
    },
    QemuTest {
        name: "hostile-contained",
        system: "systems/hostile.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 90,
        mutation: None,
        board_tree: None,
        // Every run abuses the hypercall ABI, then attacks: other memory, devices it was not
        // given, an unmapped jump, an illegal hypercall; finally it spins at high priority
        // and its budget lets the victim run. Its debug-register writes must all be ignored.
        expect: &[
            "[hostile] hostile run 0: 1017 undefined calls refused",
            "[hostile] hostile run 0: debug registers refused",
            "cell hostile: vCPU 0 faulted: stage-2 abort: read at IPA 0x40200000",
            "cell hostile: restarting (restart 1 of 6)",
            "cell hostile: vCPU 0 faulted: stage-2 abort: write at IPA 0x40201000",
            "cell hostile: vCPU 0 faulted: stage-2 abort: read at IPA 0x8000000",
            "cell hostile: vCPU 0 faulted: stage-2 abort: write at IPA 0x9000000",
            "cell hostile: vCPU 0 faulted: stage-2 abort: instruction fetch at IPA 0x10000000",
            "cell hostile: vCPU 0 faulted: illegal hypercall",
            "cell hostile: restarting (restart 6 of 6)",
            "[hostile] hostile: spinning forever",
            "[victim] victim 10: memory intact",
        ],
        forbid: &["CANARY CORRUPTED", "UNEXPECTED"],
        keys: &[],
    },
    QemuTest {
        name: "ipc-call-reply",
        system: "systems/ipc.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 60,
        mutation: None,
        board_tree: None,
        expect: &[
            "[server] server: serving echo",
            "[client] client: 1000 calls ok",
            "cell client: exited with code 0",
        ],
        forbid: &["MISMATCH", "failed"],
        keys: &[],
    },
    QemuTest {
        name: "notification-ping-pong",
        system: "systems/notify.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 60,
        mutation: None,
        board_tree: None,
        expect: &[
            "[ping] notify: 100 rounds ok",
            "cell ping: exited with code 0",
        ],
        forbid: &["MISMATCH", "failed"],
        keys: &[],
    },
    QemuTest {
        name: "ring-transfer",
        system: "systems/ring.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 90,
        mutation: None,
        board_tree: None,
        // The consumer compares its checksum with the producer's and says `ok` only if
        // they agree.
        expect: &[
            "[consumer] ring: received 1048576 bytes, checksum",
            "cell consumer: exited with code 0",
        ],
        forbid: &["MISMATCH", "failed", "corrupted"],
        keys: &[],
    },
    QemuTest {
        name: "ring-corrupted-by-peer",
        system: "systems/ring-corrupt.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 60,
        mutation: None,
        board_tree: None,
        expect: &[
            "[consumer] ring: peer corrupted the indices",
            "cell consumer: exited with code 0",
        ],
        forbid: &["cell consumer: vCPU 0 faulted", "failed"],
        keys: &[],
    },
    QemuTest {
        name: "capabilities-denied",
        system: "systems/denied.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 60,
        mutation: None,
        board_tree: None,
        expect: &[
            "[denied] denied: 58 operations refused",
            "[denied] denied: kernel counted 56 denials",
            "[client] client: 1000 calls ok",
        ],
        forbid: &["UNEXPECTED", "MISMATCH"],
        keys: &[],
    },
    QemuTest {
        name: "ipc-server-crash",
        system: "systems/ipc-crash.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 60,
        mutation: None,
        board_tree: None,
        expect: &[
            "cell server: vCPU 0 faulted: abort: read at address 0x40010001 (alignment fault)",
            "cell server: restarting (restart 1 of 3)",
            "[client] client: server fault reported (PeerFault)",
            "[client] client: call after restart ok",
            "[client] client: done",
        ],
        forbid: &["UNEXPECTED"],
        keys: &[],
    },
    QemuTest {
        name: "device-interrupt",
        system: "systems/device-irq.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 60,
        mutation: None,
        board_tree: None,
        expect: &[
            "interrupt 34 routed to cell rtc",
            "[rtc] rtc: alarm 1",
            "[rtc] rtc: alarm 3",
            "[rtc] rtc: 3 alarms received",
            "[ping] ping 5",
        ],
        forbid: &["TIMEOUT", "has no owner"],
        keys: &[],
    },
    QemuTest {
        name: "linux-guest",
        system: "systems/linux.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 120,
        mutation: None,
        board_tree: None,
        // Debian's unmodified arm64 kernel in a cell with 2 vCPUs (PSCI CPU_ON, the emulated
        // GICv3 distributor and PL011, virtual timer and SGIs): its /init checks the CPU
        // count, memory, console, timer accuracy and per-CPU timer interrupts, then powers
        // off, which stops only the Linux cell while the native cells keep running. The
        // spinner at EL0 preempts the guest's first vCPU every 10 ms throughout.
        expect: &[
            "[linux] [    0.000000] Booting Linux on physical CPU",
            "[linux] [    0.000000] psci: PSCIv1.1 detected in firmware.",
            "smp: Brought up 1 node, 2 CPUs",
            "printk: console [ttyAMA0] enabled",
            "[linux] init: reached",
            "[spinner] spinner ",
            "[linux] guest-check: nproc=2 mem_kib=",
            "verdict=PASS",
            "[linux] [",
            "reboot: Power down",
            "cell linux: powered off by its guest (PSCI SYSTEM_OFF); stopped",
            "[ping] ping 40",
        ],
        forbid: &[
            "Kernel panic",
            "cell linux: vCPU",
            "verdict=FAIL",
            "cell spinner: vCPU",
        ],
        keys: &[],
    },
    QemuTest {
        name: "linux-isolation",
        system: "systems/linux-probe.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 120,
        mutation: None,
        board_tree: None,
        // The guest's /init reads, through /dev/mem, a device it was not given: a stage-2
        // fault handled by the cell's policy; the native cell keeps running.
        expect: &[
            "verdict=PASS",
            "[linux] guest-probe: reading 0x09010000",
            // Either vCPU may run the probe.
            "faulted: stage-2 abort: read at IPA 0x9010000",
            "cell linux: stopped (fault policy: stop)",
            "[ping] ping 40",
        ],
        forbid: &["UNEXPECTED", "Kernel panic"],
        keys: &[],
    },
    QemuTest {
        name: "realtime-beside-linux",
        system: "systems/linux-rt.toml",
        cpu: "cortex-a72",
        smp: 4,
        // Deterministic time: the verdict comes from the real-time cell's own timestamps.
        icount: Some(2),
        timeout_seconds: 240,
        mutation: None,
        board_tree: None,
        // A 1 ms periodic cell shares core 2 with both vCPUs of a Linux guest that boots
        // (device traps, timer and IPI interrupts), runs a CPU- and syscall-heavy load for
        // 2 s (forks, pipes, page faults) and powers off: no period is missed throughout.
        expect: &[
            "[linux] [    0.000000] Booting Linux on physical CPU",
            "[rt] rt: 1000 periods, 0 missed",
            "[linux] init: load for 2 s",
            "[linux] cvbench: load done",
            "cell linux: powered off by its guest",
            "[rt] rt: ",
            " periods, 0 missed",
        ],
        forbid: &["Kernel panic", "rt: MISSED", "verdict=FAIL"],
        keys: &[],
    },
    QemuTest {
        name: "linux-reboot",
        system: "systems/linux-reboot.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 180,
        mutation: None,
        board_tree: None,
        // `reboot` in the guest (PSCI SYSTEM_RESET) restarts only its cell from the pristine
        // image, after both its vCPUs stopped; Linux boots again with both CPUs.
        expect: &[
            "verdict=PASS",
            "cell linux: reset by its guest (PSCI SYSTEM_RESET); restarting",
            "[linux] [    0.000000] Booting Linux on physical CPU",
            "smp: Brought up 1 node, 2 CPUs",
            "verdict=PASS",
            "cell linux: reset by its guest (PSCI SYSTEM_RESET); restarting",
            "[ping] ping 30",
        ],
        forbid: &["Kernel panic", "verdict=FAIL", "cell linux: vCPU"],
        keys: &[],
    },
    QemuTest {
        name: "linux-virtio-modem",
        system: "systems/evoke.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 240,
        mutation: None,
        board_tree: None,
        // The demo system: Linux's virtio_mmio and virtio_console drivers find the device
        // that the native `vconsole` cell models (its register accesses forwarded by the
        // kernel as IPC calls, its interrupt raised through a notification, its queues in
        // Linux's RAM mapped into the model); /init talks to the native `modem` cell over
        // the port and moves a block each way through the reserved-memory region, checking
        // both checksums. Then a shell takes the console: keys typed on the board's UART
        // reach it, the focus key answers, and `poweroff` stops only the Linux cell.
        expect: &[
            "console input goes to linux",
            "[vconsole] vconsole: serving virtio-console",
            "[modem] modem: ready",
            "[linux] init: reached",
            "[vconsole] vconsole: driver ready",
            "verdict=PASS",
            "[modem] modem: AT",
            "[linux] modem-check: at=ok ati=ok to-linux=ok from-linux=ok words=256 verdict=PASS",
            "[linux] init: starting a shell",
            "[linux] typed-42",
            "[linux] CELLVISOR MODEM 1",
            "console input goes to linux",
            "cell linux: powered off by its guest (PSCI SYSTEM_OFF); stopped",
        ],
        forbid: &[
            "Kernel panic",
            "verdict=FAIL",
            "cell linux: vCPU",
            "needs reset",
        ],
        keys: &[
            ("[linux] / # ", "echo typed-$((6*7))\r"),
            ("[linux] typed-42", "modem ATI\r"),
            ("[linux] CELLVISOR MODEM 1", "\x14?"),
            ("console input goes to linux", "poweroff -f\r"),
        ],
    },
    QemuTest {
        name: "corrupt-plan",
        system: "systems/hello.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 30,
        mutation: Some(Mutation::CorruptPlanByte),
        board_tree: None,
        expect: &[PLAN_REJECTED],
        forbid: &["[ping]"],
        keys: &[],
    },
    QemuTest {
        name: "plan-version",
        system: "systems/hello.toml",
        cpu: "cortex-a72",
        smp: 4,
        icount: None,
        timeout_seconds: 30,
        mutation: Some(Mutation::PlanVersion(99)),
        board_tree: None,
        expect: &[PLAN_REJECTED, "version 99"],
        forbid: &["[ping]"],
        keys: &[],
    },
];

/// A boot whose `BENCH key=value` console lines feed `cargo xtask bench`.
#[derive(Clone, Copy, Debug)]
pub struct BenchBoot {
    /// System description, relative to the workspace root.
    pub system: &'static str,
    /// QEMU `-cpu` model.
    pub cpu: &'static str,
    /// Cores (`-smp`).
    pub smp: u32,
    /// Seconds before the boot fails as timed out.
    pub timeout_seconds: u64,
    /// Keys that must be reported; the boot ends once all have been seen.
    pub required: &'static [&'static str],
    /// Keys renamed in the report, `(as printed, as reported)`: the same bench cell measures
    /// different things in different systems (e.g. beside a spinning neighbour).
    pub rename: &'static [(&'static str, &'static str)],
}

/// Every benchmark boot (always under `-icount shift=0,sleep=off`).
pub const BENCH_BOOTS: &[BenchBoot] = &[
    BenchBoot {
        system: "systems/bench-boot.toml",
        cpu: "cortex-a72",
        smp: 4,
        timeout_seconds: 60,
        required: &["boot_to_first_cell_ticks", "counter_frequency_hz"],
        rename: &[],
    },
    BenchBoot {
        system: "systems/bench-hvc.toml",
        cpu: "cortex-a72",
        smp: 4,
        timeout_seconds: 120,
        required: &["hypercall_roundtrip_insns"],
        rename: &[],
    },
    BenchBoot {
        system: "systems/bench-switch.toml",
        cpu: "cortex-a72",
        smp: 4,
        timeout_seconds: 120,
        required: &["cell_switch_insns"],
        rename: &[],
    },
    BenchBoot {
        system: "systems/bench-timer.toml",
        cpu: "cortex-a72",
        smp: 4,
        timeout_seconds: 120,
        required: &[
            "timer_irq_latency_insns_median",
            "timer_irq_latency_insns_max",
        ],
        rename: &[],
    },
    BenchBoot {
        system: "systems/bench-ipc.toml",
        cpu: "cortex-a72",
        smp: 4,
        timeout_seconds: 120,
        required: &["ipc_roundtrip_insns", "ipc_oneway_insns"],
        rename: &[],
    },
    BenchBoot {
        system: "systems/bench-notify.toml",
        cpu: "cortex-a72",
        smp: 4,
        timeout_seconds: 120,
        required: &["notify_wake_insns"],
        rename: &[],
    },
    BenchBoot {
        system: "systems/bench-ring.toml",
        cpu: "cortex-a72",
        smp: 4,
        timeout_seconds: 300,
        required: &["ring_bytes_per_kinsn"],
        rename: &[],
    },
    BenchBoot {
        system: "systems/bench-timer-loaded.toml",
        cpu: "cortex-a72",
        smp: 4,
        timeout_seconds: 300,
        required: &[
            "timer_irq_latency_insns_median",
            "timer_irq_latency_insns_max",
        ],
        rename: &[
            (
                "timer_irq_latency_insns_median",
                "timer_irq_latency_loaded_insns_median",
            ),
            (
                "timer_irq_latency_insns_max",
                "timer_irq_latency_loaded_insns_max",
            ),
        ],
    },
];

/// The tests whose name contains `filter` (all when `None`).
pub fn selected(filter: Option<&str>) -> Vec<&'static QemuTest> {
    QEMU_TESTS
        .iter()
        .filter(|t| filter.is_none_or(|f| t.name.contains(f)))
        .collect()
}

/// A QEMU test that boots the Linux guest images of `cargo xtask guest-images` natively
/// (plain `virt`, no Cellvisor): the baseline for Linux as a guest cell. `cargo xtask test`
/// makes the images first; if they cannot be made, each selected test fails with the reason.
#[derive(Clone, Copy, Debug)]
pub struct NativeLinuxTest {
    /// Test name: `--filter` matches it, and the console log is `target/qemu-tests/<name>.log`.
    pub name: &'static str,
    /// QEMU `-cpu` model.
    pub cpu: &'static str,
    /// Cores (`-smp`); the guest's `/init` checks that `nproc` reports this.
    pub smp: u32,
    /// RAM in MiB (`-m`); the guest's `/init` checks MemTotal against it.
    pub ram_megabytes: u64,
    /// Seconds before the test fails as timed out.
    pub timeout_seconds: u64,
    /// Console patterns that must all appear, in this order.
    pub expect: &'static [&'static str],
    /// Console patterns that must not appear.
    pub forbid: &'static [&'static str],
}

/// Every native Linux boot test, run after [`QEMU_TESTS`].
pub const NATIVE_LINUX_TESTS: &[NativeLinuxTest] = &[NativeLinuxTest {
    name: "linux-native",
    cpu: "cortex-a72",
    smp: 2,
    ram_megabytes: 1024,
    timeout_seconds: 120,
    // Printed by guest/init.sh.
    expect: &["init: reached", "guest-check: ", "verdict=PASS"],
    forbid: &["verdict=FAIL", "Kernel panic"],
}];

/// The native Linux tests whose name contains `filter` (all when `None`).
pub fn selected_native_linux(filter: Option<&str>) -> Vec<&'static NativeLinuxTest> {
    NATIVE_LINUX_TESTS
        .iter()
        .filter(|t| filter.is_none_or(|f| t.name.contains(f)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_filters_select_by_substring() {
        let mut names: Vec<_> = QEMU_TESTS.iter().map(|t| t.name).collect();
        names.extend(NATIVE_LINUX_TESTS.iter().map(|t| t.name));
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
        assert_eq!(selected_native_linux(Some("linux")).len(), 1);
        let hello: Vec<_> = selected(Some("hello")).iter().map(|t| t.name).collect();
        assert_eq!(hello, ["hello-a72", "hello-a53"]);
        assert_eq!(selected(None).len(), QEMU_TESTS.len());
        assert!(selected(Some("no-such-test")).is_empty());
    }

    #[test]
    fn every_test_expects_something_and_has_time_to_boot() {
        for test in QEMU_TESTS {
            assert!(!test.expect.is_empty(), "{} expects nothing", test.name);
            assert!(
                test.timeout_seconds >= 10,
                "{} has too short a timeout",
                test.name
            );
        }
        for test in NATIVE_LINUX_TESTS {
            assert!(!test.expect.is_empty(), "{} expects nothing", test.name);
            assert!(test.timeout_seconds >= 60, "{} boots Linux", test.name);
        }
    }
}
