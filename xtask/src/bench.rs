//! `cargo xtask bench`: measure, then merge into `target/bench/report.json` and `report.md`.
//!
//! The report is a flat JSON object, key → number; later work adds keys, so an existing
//! report is merged into, never replaced. Nothing is written unless every key could be
//! measured: a missing measurement is an error, never a made-up number.
//!
//! Keys measured here:
//! - `kernel_text_bytes`: size of the kernel ELF's `.text` section;
//! - `kernel_loc`: counted lines of the kernel's Rust (rule in [`crate::loc`]);
//! - every `BENCH key=value` console line of each boot in
//!   [`crate::qemu_tests::BENCH_BOOTS`] (run under `-icount shift=0,sleep=off`);
//! - `boot_to_first_cell_insns`: `boot_to_first_cell_ticks * 1e9 / counter_frequency_hz`.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Number, Value};

use crate::qemu::{self, Progress, Watch};
use crate::qemu_tests::{BenchBoot, BENCH_BOOTS};
use crate::workspace::{io_error, write_atomically, Error, Result, Workspace};

/// Why a benchmark could not be measured or recorded.
#[derive(Debug)]
pub enum BenchError {
    /// The kernel ELF could not be parsed.
    Elf(object::read::Error),
    /// The kernel ELF has no `.text` section.
    NoTextSection,
    /// A bench boot did not report a required key.
    MissingKey {
        /// The system booted.
        system: &'static str,
        /// The key not reported.
        key: &'static str,
    },
    /// A bench boot printed a forbidden pattern (e.g. a panic).
    Forbidden {
        /// The system booted.
        system: &'static str,
        /// The pattern seen.
        pattern: String,
    },
    /// The counter frequency was reported as zero.
    ZeroFrequency,
    /// The existing report is not a flat JSON object of numbers.
    BadReport {
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Elf(error) => write!(f, "kernel ELF: {error}"),
            Self::NoTextSection => write!(f, "kernel ELF has no .text section"),
            Self::MissingKey { system, key } => {
                write!(f, "{system} did not print `BENCH {key}=<number>`")
            }
            Self::Forbidden { system, pattern } => write!(f, "{system} printed `{pattern}`"),
            Self::ZeroFrequency => write!(f, "counter_frequency_hz is 0"),
            Self::BadReport { reason } => write!(f, "existing report.json: {reason}"),
        }
    }
}

impl From<BenchError> for Error {
    fn from(error: BenchError) -> Self {
        Error::Bench(error)
    }
}

/// What the report says about a key.
#[derive(Clone, Copy, Debug)]
pub struct KeyInfo {
    /// The JSON key.
    pub key: &'static str,
    /// Unit of the value.
    pub unit: &'static str,
    /// How it is measured.
    pub method: &'static str,
    /// The goal, where one is set.
    pub target: Option<&'static str>,
}

/// Every key with a known meaning (keys from bench cells not listed here are reported
/// with "reported by a bench cell").
pub const KEYS: &[KeyInfo] = &[
    KeyInfo {
        key: "kernel_text_bytes",
        unit: "bytes",
        method: "size of `.text` in the kernel ELF (firmware profile), read with `object`",
        target: Some("< 65536"),
    },
    KeyInfo {
        key: "kernel_loc",
        unit: "lines",
        method: "non-blank, non-comment Rust lines in kernel/src, kcore/src, abi/src; \
                 excluding tests.rs, tests/ and `#[cfg(test)]` items",
        target: Some("< 10000"),
    },
    KeyInfo {
        key: "boot_to_first_cell_insns",
        unit: "instructions",
        method: "systems/bench-boot.toml, `-icount shift=0,sleep=off -smp 4`: \
                 ticks × 1e9 / counter frequency (1 instruction = 1 ns); \
                 the 62.5 MHz counter ticks every 16 instructions",
        target: None,
    },
    KeyInfo {
        key: "boot_to_first_cell_ticks",
        unit: "counter ticks",
        method: "printed by the bench cell: CNTVCT_EL0 when the first cell runs",
        target: None,
    },
    KeyInfo {
        key: "counter_frequency_hz",
        unit: "Hz",
        method: "printed by the bench cell: CNTFRQ_EL0",
        target: None,
    },
    KeyInfo {
        key: "hypercall_roundtrip_insns",
        unit: "instructions",
        method: "systems/bench-hvc.toml: median over 1000 null hypercalls of the cycle counter \
                 (1 per instruction under icount, EL2 counted) minus two counter reads. \
                 OKL4 reports about 0.3 µs per hypercall on ARMv7",
        target: Some("< 100"),
    },
    KeyInfo {
        key: "cell_switch_insns",
        unit: "instructions",
        method: "systems/bench-switch.toml: two FP-free cells yielding to each other on one \
                 core; half the median round trip (each half: a YIELD hypercall, the \
                 round-robin hand-off and the switch)",
        target: Some("< 400"),
    },
    KeyInfo {
        key: "timer_irq_latency_insns_median",
        unit: "instructions",
        method: "systems/bench-timer.toml: virtual timer expiry to the cell's IRQ handler, \
                 200 samples; expiry placed on the cycle counter from CNTVCT (±16)",
        target: None,
    },
    KeyInfo {
        key: "timer_irq_latency_insns_max",
        unit: "instructions",
        method: "as timer_irq_latency_insns_median, the largest sample",
        target: None,
    },
    KeyInfo {
        key: "timer_irq_latency_loaded_insns_median",
        unit: "instructions",
        method: "systems/bench-timer-loaded.toml: the same beside a higher-priority spinner \
                 limited to 1 ms per 10 ms",
        target: None,
    },
    KeyInfo {
        key: "timer_irq_latency_loaded_insns_max",
        unit: "instructions",
        method: "as timer_irq_latency_loaded_insns_median, the largest sample",
        target: None,
    },
    KeyInfo {
        key: "ipc_roundtrip_insns",
        unit: "instructions",
        method: "systems/bench-ipc.toml: median of 1000 CALL round trips to a \
                 higher-priority server on the same core (the IPC fast path both ways); \
                 the cells' own share is about 30 instructions. \
                 OKL4 reports one-way IPC under 200 cycles on ARM",
        target: Some("< 300"),
    },
    KeyInfo {
        key: "ipc_oneway_insns",
        unit: "instructions",
        method: "systems/bench-ipc.toml: client's counter in the message to the server's \
                 counter on receipt, median of 1000",
        target: Some("< 150"),
    },
    KeyInfo {
        key: "notify_wake_insns",
        unit: "instructions",
        method: "systems/bench-notify.toml: SIGNAL by a low-priority cell to the \
                 higher-priority waiter running, median",
        target: None,
    },
    KeyInfo {
        key: "ring_bytes_per_kinsn",
        unit: "bytes per 1000 instructions",
        method: "systems/bench-ring.toml: 4 MiB through the SDK ring over shared memory, \
                 producer and consumer on one core with data-ready/space-free notifications",
        target: None,
    },
    KeyInfo {
        key: "linux_boot_ratio",
        unit: "ratio",
        method: "Linux in a cell / booted natively by QEMU (`-smp 2`, 256 MiB, icount; the median of 5 runs each, as for every guest figure: random seeds in both move single runs): guest counter when /bin/cvbench starts (kernel boot, /init, module loads)",
        target: Some("≤ 1.05"),
    },
    KeyInfo {
        key: "null_syscall_ratio",
        unit: "ratio",
        method: "cvbench: getppid × 20000, cell / native",
        target: Some("≤ 1.05"),
    },
    KeyInfo {
        key: "ctx_switch_ratio",
        unit: "ratio",
        method: "cvbench: pipe ping-pong between two processes × 2000, cell / native",
        target: Some("≤ 1.05"),
    },
    KeyInfo {
        key: "fork_exit_ratio",
        unit: "ratio",
        method: "cvbench: fork + exit + wait × 200, cell / native",
        target: Some("≤ 1.05"),
    },
    KeyInfo {
        key: "fork_exec_ratio",
        unit: "ratio",
        method: "cvbench: fork + exec of busybox `true` + wait × 50, cell / native",
        target: Some("≤ 1.05"),
    },
    KeyInfo {
        key: "page_fault_ratio",
        unit: "ratio",
        method: "cvbench: first touch of each page of 8 MiB of anonymous memory × 4, cell / native",
        target: Some("≤ 1.05"),
    },
    KeyInfo {
        key: "pipe_bw_ratio",
        unit: "ratio",
        method: "cvbench: 16 MiB through a pipe in 64 KiB writes, native / cell (higher is worse)",
        target: Some("≤ 1.05"),
    },
    KeyInfo {
        key: "cpu_bound_ratio",
        unit: "ratio",
        method: "cvbench: 20 million rounds of an integer loop, cell / native",
        target: Some("≤ 1.05"),
    },
    KeyInfo {
        key: "virtio_console_roundtrip_insns",
        unit: "instructions",
        method: "systems/bench-linux.toml: cvbench writes `AT` on /dev/hvc0 and reads the modem cell's `OK` back (virtio-console served by the vconsole cell), ns per round trip = instructions under icount",
        target: None,
    },
];

/// Size of the `.text` section of an ELF.
pub fn text_section_bytes(elf: &[u8]) -> Result<u64, BenchError> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(elf).map_err(BenchError::Elf)?;
    let section = file
        .section_by_name(".text")
        .ok_or(BenchError::NoTextSection)?;
    Ok(section.size())
}

/// Every `BENCH key=value` on the console (the line may have a prefix such as
/// `[bench] `); a later line overrides an earlier one with the same key.
pub fn parse_bench_lines(console: &str) -> Vec<(String, Number)> {
    let mut found: Vec<(String, Number)> = Vec::new();
    for line in console.lines() {
        let Some((_, rest)) = line.split_once("BENCH ") else {
            continue;
        };
        let Some((key, value)) = rest.trim().split_once('=') else {
            continue;
        };
        let key_ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let Some(number) = parse_number(value.trim()) else {
            continue;
        };
        if key_ok {
            found.retain(|(k, _)| k != key);
            found.push((key.to_owned(), number));
        }
    }
    found
}

fn parse_number(text: &str) -> Option<Number> {
    if let Ok(integer) = text.parse::<u64>() {
        return Some(integer.into());
    }
    text.parse::<f64>().ok().and_then(number_from_f64)
}

/// A JSON number, integral when the value is a whole number.
pub fn number_from_f64(value: f64) -> Option<Number> {
    if value.fract() == 0.0 && value >= 0.0 && value < u64::MAX as f64 {
        Some((value as u64).into())
    } else {
        Number::from_f64(value)
    }
}

/// `boot_to_first_cell_insns` from the cell's ticks and counter frequency.
pub fn instructions_from_ticks(ticks: f64, frequency_hz: f64) -> Result<Number, BenchError> {
    if frequency_hz <= 0.0 {
        return Err(BenchError::ZeroFrequency);
    }
    number_from_f64(ticks * 1e9 / frequency_hz).ok_or(BenchError::ZeroFrequency)
}

/// Merges `new` into an existing report (its JSON text, if any).
pub fn merge(
    existing: Option<&str>,
    new: &[(String, Number)],
) -> Result<Map<String, Value>, BenchError> {
    let mut report = match existing {
        None => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(BenchError::BadReport {
                    reason: "not an object",
                })
            }
            Err(_) => return Err(BenchError::BadReport { reason: "not JSON" }),
        },
    };
    if report.values().any(|v| !v.is_number()) {
        return Err(BenchError::BadReport {
            reason: "a value is not a number",
        });
    }
    for (key, value) in new {
        report.insert(key.clone(), Value::Number(value.clone()));
    }
    Ok(report)
}

/// The readable report: one row per key, sorted.
pub fn render_markdown(report: &Map<String, Value>) -> String {
    let mut text = String::from(
        "# Cellvisor benchmark report\n\n\
         Written by `cargo xtask bench`; the numbers are in `report.json` beside this file.\n\
         Boot figures are measured under `-icount shift=0,sleep=off`, where QEMU's virtual \
         time advances one nanosecond per instruction: they are deterministic. The generic \
         counter runs at 62.5 MHz, so tick-based figures have a granularity of 16 \
         instructions.\n\n\
         | key | value | unit | how it is measured | target |\n\
         |---|---|---|---|---|\n",
    );
    let mut keys: Vec<&String> = report.keys().collect();
    keys.sort();
    for key in keys {
        let info = KEYS.iter().find(|k| k.key == key);
        text.push_str(&format!(
            "| `{key}` | {} | {} | {} | {} |\n",
            report[key.as_str()],
            info.map_or("", |i| i.unit),
            info.map_or("reported by a bench cell", |i| i.method),
            info.and_then(|i| i.target).unwrap_or("—"),
        ));
    }
    text
}

/// Runs one bench boot and returns its `BENCH` lines; fails if a required key is missing.
fn boot(workspace: &Workspace, image: &Path, boot: &BenchBoot) -> Result<Vec<(String, Number)>> {
    let command = bench_command(image, boot.cpu, boot.smp)?;
    let name = Path::new(boot.system)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("boot");
    observe(
        workspace,
        command,
        boot.system,
        name,
        boot.required,
        boot.timeout_seconds,
    )
}

/// The QEMU command that boots Cellvisor `image` for a benchmark: `-icount shift=0`, the
/// RAM the image asks for.
pub fn bench_command(image: &Path, cpu: &str, smp: u32) -> Result<std::process::Command> {
    let bytes = std::fs::read(image).map_err(io_error(image))?;
    let ram_megabytes = crate::image::ram_megabytes(&bytes).map_err(|reason| Error::BadImage {
        path: image.to_path_buf(),
        reason,
    })?;
    let machine = qemu::Machine {
        cpu,
        smp,
        ram_megabytes,
        icount: Some(0),
    };
    Ok(qemu::command(image, &machine, qemu::Console::Plain))
}

/// Runs a QEMU boot (`what` names it in errors, `name` its log in `target/bench/`) until
/// every key in `required` was printed on a `BENCH` line; returns every `BENCH` line.
pub fn observe(
    workspace: &Workspace,
    command: std::process::Command,
    what: &'static str,
    name: &str,
    required: &'static [&'static str],
    timeout_seconds: u64,
) -> Result<Vec<(String, Number)>> {
    eprintln!("$ {}", crate::workspace::describe(&command));
    let mut watch = Watch::new(&[], &[]);
    let mut bench = BenchWatch {
        watch: &mut watch,
        required,
    };
    qemu::run_observed(command, &mut bench, Duration::from_secs(timeout_seconds))?;
    let log = workspace.out().join("bench").join(format!("{name}.log"));
    write_atomically(&log, watch.text().as_bytes())?;
    if let Some(pattern) = watch.forbidden() {
        return Err(BenchError::Forbidden {
            system: what,
            pattern: pattern.to_owned(),
        }
        .into());
    }
    let found = parse_bench_lines(watch.text());
    for &key in required {
        if !found.iter().any(|(k, _)| k == key) {
            eprintln!("console ({}):", log.display());
            for line in qemu::last_lines(watch.text(), 40) {
                eprintln!("  {line}");
            }
            return Err(BenchError::MissingKey { system: what, key }.into());
        }
    }
    Ok(found)
}

/// Ends a bench boot once every required key has been printed on a whole line.
struct BenchWatch<'w, 'a> {
    watch: &'w mut Watch<'a>,
    required: &'static [&'static str],
}

impl qemu::Observer for BenchWatch<'_, '_> {
    fn feed(&mut self, chunk: &str) -> Progress {
        if self.watch.feed(chunk) == Progress::Forbidden {
            return Progress::Forbidden;
        }
        let text = self.watch.text();
        let whole_lines = &text[..text.rfind('\n').map_or(0, |at| at + 1)];
        let found = parse_bench_lines(whole_lines);
        if self
            .required
            .iter()
            .all(|key| found.iter().any(|(k, _)| k == key))
        {
            Progress::Complete
        } else {
            Progress::Waiting
        }
    }
}

/// Everything `cargo xtask bench` does.
pub fn bench(workspace: &Workspace, images: &crate::guest::GuestImages) -> Result<()> {
    let firmware = crate::build::firmware(workspace)?;
    let tool = crate::build::tool(workspace)?;
    let mut measured: Vec<(String, Number)> = Vec::new();

    let elf = std::fs::read(&firmware.kernel).map_err(io_error(&firmware.kernel))?;
    measured.push(("kernel_text_bytes".into(), text_section_bytes(&elf)?.into()));
    let roots: Vec<_> = crate::loc::KERNEL_SOURCES
        .iter()
        .map(|r| workspace.path(r))
        .collect();
    measured.push((
        "kernel_loc".into(),
        (crate::loc::count_tree(&roots)? as u64).into(),
    ));

    for bench_boot in BENCH_BOOTS {
        let system = workspace.path(bench_boot.system);
        let image = crate::build::image(workspace, &tool, &firmware.kernel, &system)?;
        let found = boot(workspace, &image, bench_boot)?;
        measured.extend(found.into_iter().map(|(key, value)| {
            let renamed = bench_boot
                .rename
                .iter()
                .find(|(printed, _)| *printed == key);
            (
                renamed.map_or(key, |(_, reported)| (*reported).to_owned()),
                value,
            )
        }));
    }
    measured.extend(crate::guest_bench::compare(
        workspace,
        images,
        &tool,
        &firmware.kernel,
    )?);
    let value = |key: &'static str| -> Result<f64, BenchError> {
        measured
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_f64())
            .ok_or(BenchError::MissingKey {
                system: "systems/bench-boot.toml",
                key,
            })
    };
    let instructions = instructions_from_ticks(
        value("boot_to_first_cell_ticks")?,
        value("counter_frequency_hz")?,
    )?;
    measured.push(("boot_to_first_cell_insns".into(), instructions));

    let dir = workspace.out().join("bench");
    let json_path = dir.join("report.json");
    let existing = match std::fs::read_to_string(&json_path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(Error::Io {
                path: json_path,
                source,
            })
        }
    };
    let report = merge(existing.as_deref(), &measured)?;
    let mut json = serde_json::to_string_pretty(&Value::Object(report.clone()))
        .expect("a map of numbers always serialises");
    json.push('\n');
    let markdown = render_markdown(&report);
    write_atomically(&json_path, json.as_bytes())?;
    write_atomically(&dir.join("report.md"), markdown.as_bytes())?;
    println!("{markdown}");
    println!("wrote {} and report.md", json_path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_lines_are_found_with_any_prefix() {
        let console = "Cellvisor\n[bench] BENCH boot_to_first_cell_ticks=1234\r\n\
                       [bench] BENCH counter_frequency_hz=62500000\n\
                       BENCH ratio=0.5\nBENCH Bad-Key=1\nBENCH nonumber=abc\nBENCH ratio=2\n";
        let found = parse_bench_lines(console);
        assert_eq!(
            found,
            vec![
                ("boot_to_first_cell_ticks".to_owned(), Number::from(1234u64)),
                (
                    "counter_frequency_hz".to_owned(),
                    Number::from(62_500_000u64)
                ),
                ("ratio".to_owned(), Number::from(2u64)),
            ]
        );
        assert_eq!(
            parse_bench_lines("BENCH x=0.25"),
            vec![("x".to_owned(), Number::from_f64(0.25).unwrap())]
        );
    }

    #[test]
    fn ticks_become_instructions_at_one_per_nanosecond() {
        assert_eq!(
            instructions_from_ticks(1234.0, 62_500_000.0).unwrap(),
            Number::from(1234u64 * 16)
        );
        assert!(matches!(
            instructions_from_ticks(5.0, 0.0),
            Err(BenchError::ZeroFrequency)
        ));
    }

    #[test]
    fn merge_keeps_other_keys_and_overrides_ours() {
        let existing = r#"{"ipc_insns": 80, "kernel_loc": 1}"#;
        let new = [("kernel_loc".to_owned(), Number::from(900u64))];
        let report = merge(Some(existing), &new).unwrap();
        assert_eq!(report["ipc_insns"], 80);
        assert_eq!(report["kernel_loc"], 900);
        assert_eq!(merge(None, &new).unwrap().len(), 1);
        assert!(matches!(
            merge(Some("[1]"), &new),
            Err(BenchError::BadReport { .. })
        ));
        assert!(matches!(
            merge(Some(r#"{"a": "x"}"#), &new),
            Err(BenchError::BadReport { .. })
        ));
        assert!(matches!(
            merge(Some("{"), &new),
            Err(BenchError::BadReport { .. })
        ));
    }

    #[test]
    fn markdown_has_a_row_per_key_with_units() {
        let report = merge(
            None,
            &[
                ("kernel_loc".to_owned(), Number::from(900u64)),
                ("mystery".to_owned(), Number::from(3u64)),
            ],
        )
        .unwrap();
        let text = render_markdown(&report);
        assert!(text.contains("| `kernel_loc` | 900 | lines | non-blank"));
        assert!(text.contains("| `mystery` | 3 |  | reported by a bench cell | — |"));
    }

    #[test]
    fn text_section_of_our_own_binary_is_found() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(text_section_bytes(&exe).unwrap() > 0);
        assert!(matches!(
            text_section_bytes(b"not an elf"),
            Err(BenchError::Elf(_))
        ));
    }
}
