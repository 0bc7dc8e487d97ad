//! The guest benchmarks: Debian's Linux booted natively by QEMU and the same images in a
//! Cellvisor cell, each running `/bin/cvbench` (the `guest-bench` crate) under
//! `-icount shift=0,sleep=off`, compared as ratios (the L4Linux / Xen-on-ARM experiment).
//!
//! Both runs give Linux 2 CPUs and 256 MiB; in the cell its vCPUs have cores 2 and 3 to
//! themselves (`systems/bench-linux.toml`), beside the `vconsole` and `modem` cells on core
//! 1, which serve the virtio-console whose round trip is also measured there. Under icount
//! a run is deterministic but for the random seeds both boots get (QEMU's, the Cellvisor
//! kernel's), which move the figures a little (well under 1 %). So each side runs [`RUNS`]
//! times and every figure is the median of its runs.
//!
//! Keys: `linux_native_<figure>` and `linux_cell_<figure>` for each raw figure, and the
//! ratios Cellvisor/native (`pipe_bw_ratio` native/Cellvisor), so that 1.0 means no overhead
//! and higher is worse for all of them.

use crate::bench::{number_from_f64, observe, BenchError};
use crate::guest::{GuestImages, NativeMachine};
use crate::workspace::{Result, Workspace};
use serde_json::Number;
use std::path::Path;

/// The cell-side system.
pub const SYSTEM: &str = "systems/bench-linux.toml";

/// Each figure `cvbench` prints (`BENCH guest_<figure>=`), the ratio it feeds, and whether
/// a larger figure is better (a bandwidth) rather than worse (a time).
pub const FIGURES: &[(&str, &str, bool)] = &[
    ("start_ns", "linux_boot_ratio", false),
    ("null_syscall_ns", "null_syscall_ratio", false),
    ("ctx_switch_ns", "ctx_switch_ratio", false),
    ("fork_exit_ns", "fork_exit_ratio", false),
    ("fork_exec_ns", "fork_exec_ratio", false),
    ("page_fault_ns", "page_fault_ratio", false),
    ("pipe_bw_kib_per_s", "pipe_bw_ratio", true),
    ("cpu_bound_ns", "cpu_bound_ratio", false),
];

/// What ends a run: `cvbench` prints it last, after every figure (or `BENCH-ERROR` line),
/// and [`report`] then checks that each figure is there.
const REQUIRED: &[&str] = &["guest_done"];

/// Seconds a run may take (the native boot and benchmarks take about 10 s of host time).
const TIMEOUT_SECONDS: u64 = 400;

/// How many times each side runs; its figures are the medians.
pub const RUNS: usize = 5;

/// Runs both sides and returns the raw figures and the ratios.
pub fn compare(
    workspace: &Workspace,
    images: &GuestImages,
    tool: &Path,
    kernel: &Path,
) -> Result<Vec<(String, Number)>> {
    let machine = NativeMachine {
        cpu: "cortex-a72",
        smp: 2,
        ram_megabytes: 256,
        bootargs: "cellvisor.bench=1",
        icount: Some(0),
    };
    let image = crate::build::image(workspace, tool, kernel, &workspace.path(SYSTEM))?;
    let (mut native, mut cell) = (Vec::new(), Vec::new());
    for run in 1..=RUNS {
        native.push(observe(
            workspace,
            crate::guest::native_command(images, &machine),
            "native Linux",
            &format!("linux-native-{run}"),
            REQUIRED,
            TIMEOUT_SECONDS,
        )?);
        cell.push(observe(
            workspace,
            crate::bench::bench_command(&image, "cortex-a72", 4)?,
            SYSTEM,
            &format!("bench-linux-{run}"),
            REQUIRED,
            TIMEOUT_SECONDS,
        )?);
    }
    Ok(report(&medians(&native), &medians(&cell))?)
}

/// Each key of the first run with the median of its values over `runs` (the upper middle
/// one of an even count).
fn medians(runs: &[Vec<(String, Number)>]) -> Vec<(String, Number)> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .filter_map(|(key, _)| {
            let mut values: Vec<f64> = runs
                .iter()
                .filter_map(|run| run.iter().find(|(k, _)| k == key)?.1.as_f64())
                .collect();
            values.sort_by(f64::total_cmp);
            let median = *values.get(values.len() / 2)?;
            Some((key.clone(), number_from_f64(median)?))
        })
        .collect()
}

/// The report's keys from the two runs' `BENCH` lines.
pub fn report(
    native: &[(String, Number)],
    cell: &[(String, Number)],
) -> std::result::Result<Vec<(String, Number)>, BenchError> {
    let figure = |lines: &[(String, Number)], system: &'static str, key: &'static str| {
        lines
            .iter()
            .find(|(printed, _)| printed.strip_prefix("guest_") == Some(key))
            .and_then(|(_, value)| value.as_f64())
            .filter(|value| *value > 0.0)
            .ok_or(BenchError::MissingKey { system, key })
    };
    let mut out = Vec::new();
    for &(name, ratio_key, larger_is_better) in FIGURES {
        let native_value = figure(native, "native Linux", name)?;
        let cell_value = figure(cell, SYSTEM, name)?;
        out.push((format!("linux_native_{name}"), integer(native_value)));
        out.push((format!("linux_cell_{name}"), integer(cell_value)));
        let ratio = if larger_is_better {
            native_value / cell_value
        } else {
            cell_value / native_value
        };
        let rounded = (ratio * 1000.0).round() / 1000.0;
        if let Some(number) = number_from_f64(rounded) {
            out.push((ratio_key.to_owned(), number));
        }
    }
    let roundtrip = figure(cell, SYSTEM, "virtio_roundtrip_ns")?;
    out.push((
        "virtio_console_roundtrip_insns".to_owned(),
        integer(roundtrip),
    ));
    Ok(out)
}

fn integer(value: f64) -> Number {
    Number::from(value.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(pairs: &[(&str, u64)]) -> Vec<(String, Number)> {
        pairs
            .iter()
            .map(|(key, value)| (format!("guest_{key}"), Number::from(*value)))
            .collect()
    }

    #[test]
    fn ratios_are_cell_over_native_and_bandwidth_inverted() {
        let mut native: Vec<(&str, u64)> = FIGURES.iter().map(|f| (f.0, 1000)).collect();
        native.push(("done", 1));
        let mut cell: Vec<(&str, u64)> = FIGURES.iter().map(|f| (f.0, 1250)).collect();
        cell.push(("virtio_roundtrip_ns", 40000));
        let out = report(&lines(&native), &lines(&cell)).unwrap();
        let get = |key: &str| out.iter().find(|(k, _)| k == key).unwrap().1.as_f64();
        assert_eq!(get("null_syscall_ratio"), Some(1.25));
        assert_eq!(get("pipe_bw_ratio"), Some(0.8));
        assert_eq!(get("linux_native_cpu_bound_ns"), Some(1000.0));
        assert_eq!(get("linux_cell_cpu_bound_ns"), Some(1250.0));
        assert_eq!(get("virtio_console_roundtrip_insns"), Some(40000.0));
    }

    #[test]
    fn medians_are_taken_per_key() {
        let runs = [
            lines(&[("guest_a", 5), ("guest_b", 1)]),
            lines(&[("guest_a", 1), ("guest_b", 2)]),
            lines(&[("guest_a", 9), ("guest_b", 3)]),
        ];
        let medians = medians(&runs);
        assert_eq!(medians, lines(&[("guest_a", 5), ("guest_b", 2)]));
    }

    #[test]
    fn a_missing_or_zero_figure_is_an_error() {
        let native = lines(&[("start_ns", 5)]);
        assert!(report(&native, &native).is_err());
        let zero: Vec<(&str, u64)> = FIGURES.iter().map(|f| (f.0, 0)).collect();
        assert!(report(&lines(&zero), &lines(&zero)).is_err());
    }
}
