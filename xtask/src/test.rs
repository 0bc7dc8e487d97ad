//! `cargo xtask test`: host tests and lints, `cellvisor check` fixtures, QEMU boots.
//!
//! Every check is reported as `ok` or `FAILED` as it finishes, and the last line is
//! `N passed, M failed`, counting the check fixtures and the QEMU tests; a failed host step
//! (cargo test, fmt, clippy) or a failed build also counts as one failure, so that line
//! never says `0 failed` when the command fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::build::{cargo_in, CELLS_TARGET, KERNEL_PACKAGE, KERNEL_TARGET};
use crate::qemu::{self, Ending, Progress, Watch};
use crate::qemu_tests::{self, QemuTest};
use crate::workspace::{io_error, run, write_atomically, Error, Result, Workspace};
use crate::{board_tree, image};

/// Options of `cargo xtask test`.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Run only fixtures and QEMU tests whose name contains this.
    pub filter: Option<String>,
    /// Skip `cargo test`, fmt and clippy.
    pub no_host: bool,
    /// Write the actual `cellvisor check` output of failing fixtures to their `.expected`.
    pub bless: bool,
}

/// Passed and failed checks.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
}

impl Tally {
    fn record(&mut self, name: &str, outcome: std::result::Result<(), String>) {
        match outcome {
            Ok(()) => {
                println!("test {name} ... ok");
                self.passed += 1;
            }
            Err(reason) => {
                println!("test {name} ... FAILED\n{reason}");
                self.failed.push(name.to_owned());
            }
        }
    }
}

/// Everything `cargo xtask test` does.
pub fn test(workspace: &Workspace, options: &Options) -> Result<()> {
    let mut tally = Tally::default();
    let filter = options.filter.as_deref();
    if !options.no_host {
        for (name, mut command) in host_steps(workspace) {
            if let Err(error) = run(&mut command) {
                tally.record(name, Err(error.to_string()));
            }
        }
    }
    // Systems with a Linux guest name its images in the cache: make them before any check.
    if let Err(error) = crate::guest::guest_images(workspace) {
        tally.record("guest-images", Err(error.to_string()));
    }
    match crate::build::firmware(workspace).and_then(|f| Ok((f, crate::build::tool(workspace)?))) {
        Err(error) => tally.record("build", Err(error.to_string())),
        Ok((firmware, tool)) => {
            check_fixtures(workspace, &tool, filter, options.bless, &mut tally)?;
            qemu_tests(workspace, &tool, &firmware.kernel, filter, &mut tally)?;
        }
    }
    native_linux_tests(workspace, filter, &mut tally)?;
    if !tally.failed.is_empty() {
        println!("\nfailures:");
        for name in &tally.failed {
            println!("    {name}");
        }
    }
    println!("\n{} passed, {} failed", tally.passed, tally.failed.len());
    if tally.failed.is_empty() {
        Ok(())
    } else {
        Err(Error::TestsFailed {
            failed: tally.failed.len(),
        })
    }
}

/// The host steps: unit tests, formatting, and clippy for host and bare-metal crates.
fn host_steps(workspace: &Workspace) -> Vec<(&'static str, Command)> {
    let cargo = |args: &[&str]| {
        let mut command = cargo_in(workspace);
        command.args(args);
        command
    };
    vec![
        ("cargo test", cargo(&["test"])),
        // The SDK is not a default member (its bare-metal build needs the cell target); its
        // unit tests run against the in-process fake kernel.
        ("cargo test (sdk)", cargo(&["test", "-p", "cellvisor-sdk"])),
        ("cargo fmt --check", cargo(&["fmt", "--all", "--check"])),
        (
            "clippy (host)",
            cargo(&[
                "clippy",
                "--workspace",
                "--exclude",
                KERNEL_PACKAGE,
                "--exclude",
                "cellvisor-sdk",
                "--exclude",
                crate::workspace::CELLS_PACKAGE,
                "--",
                "-D",
                "warnings",
            ]),
        ),
        (
            "clippy (kernel)",
            cargo(&[
                "clippy",
                "-p",
                KERNEL_PACKAGE,
                "--target",
                KERNEL_TARGET,
                "--",
                "-D",
                "warnings",
            ]),
        ),
        (
            "clippy (sdk, cells, guest bench)",
            cargo(&[
                "clippy",
                "-p",
                "cellvisor-sdk",
                "-p",
                crate::workspace::CELLS_PACKAGE,
                "-p",
                crate::build::GUEST_BENCH_PACKAGE,
                "--target",
                CELLS_TARGET,
                "--",
                "-D",
                "warnings",
            ]),
        ),
    ]
}

/// `*.toml` files directly in `dir`, sorted.
fn system_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// `cellvisor check` on every fixture: invalid ones must fail with exactly their
/// `.expected` text, valid ones must pass.
fn check_fixtures(
    workspace: &Workspace,
    tool: &Path,
    filter: Option<&str>,
    bless: bool,
    tally: &mut Tally,
) -> Result<()> {
    let selected = |name: &str| filter.is_none_or(|f| name.contains(f));
    for path in system_files(&workspace.path("systems/invalid"))? {
        let name = format!("check-invalid/{}", stem(&path));
        if selected(&name) {
            let outcome = check_invalid(workspace, tool, &path, bless);
            tally.record(&name, outcome);
        }
    }
    for path in system_files(&workspace.path("systems"))? {
        let name = format!("check/{}", stem(&path));
        if selected(&name) {
            let outcome = check_valid(workspace, tool, &path);
            tally.record(&name, outcome);
        }
    }
    Ok(())
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs `cellvisor check` with the path relative to the workspace root (as the fixtures'
/// messages show it); returns success and stdout followed by stderr.
fn run_check(
    workspace: &Workspace,
    tool: &Path,
    system: &Path,
) -> std::result::Result<(bool, String), String> {
    let relative = system.strip_prefix(&workspace.root).unwrap_or(system);
    let output = Command::new(tool)
        .current_dir(&workspace.root)
        .env("NO_COLOR", "1")
        .arg("check")
        .arg(relative)
        .output()
        .map_err(|error| format!("cannot run {}: {error}", tool.display()))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok((output.status.success(), text))
}

fn check_invalid(
    workspace: &Workspace,
    tool: &Path,
    system: &Path,
    bless: bool,
) -> std::result::Result<(), String> {
    let (success, actual) = run_check(workspace, tool, system)?;
    if success {
        return Err(format!("`cellvisor check` accepted it:\n{actual}"));
    }
    let expected_path = system.with_extension("expected");
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if same_output(&expected, &actual) {
        return Ok(());
    }
    if bless {
        std::fs::write(&expected_path, &actual).map_err(|e| e.to_string())?;
        return Ok(());
    }
    Err(format!(
        "output differs from {} (rerun with --bless to accept it)\n--- expected\n{expected}\n--- actual\n{actual}",
        expected_path.display()
    ))
}

/// Whether `cellvisor check` printed exactly the expected text (a missing final newline
/// in the fixture file is forgiven).
fn same_output(expected: &str, actual: &str) -> bool {
    !expected.is_empty() && expected.trim_end_matches('\n') == actual.trim_end_matches('\n')
}

fn check_valid(
    workspace: &Workspace,
    tool: &Path,
    system: &Path,
) -> std::result::Result<(), String> {
    let (success, output) = run_check(workspace, tool, system)?;
    if success {
        Ok(())
    } else {
        Err(format!("`cellvisor check` rejected it:\n{output}"))
    }
}

/// Builds the images the selected tests need (once per system) and runs the tests.
fn qemu_tests(
    workspace: &Workspace,
    tool: &Path,
    kernel: &Path,
    filter: Option<&str>,
    tally: &mut Tally,
) -> Result<()> {
    let logs = workspace.out().join("qemu-tests");
    std::fs::create_dir_all(&logs).map_err(io_error(&logs))?;
    let mut images: BTreeMap<&str, std::result::Result<PathBuf, String>> = BTreeMap::new();
    for test in qemu_tests::selected(filter) {
        let image = images
            .entry(test.system)
            .or_insert_with(|| {
                crate::build::image(workspace, tool, kernel, &workspace.path(test.system))
                    .map_err(|e| e.to_string())
            })
            .clone();
        let outcome = image.and_then(|image| run_qemu_test(test, &image, &logs));
        tally.record(test.name, outcome);
    }
    Ok(())
}

/// Boots one test and judges its console.
fn run_qemu_test(test: &QemuTest, built: &Path, logs: &Path) -> std::result::Result<(), String> {
    let mut bytes = std::fs::read(built).map_err(|e| format!("{}: {e}", built.display()))?;
    let ram_megabytes =
        image::ram_megabytes(&bytes).map_err(|e| format!("{}: {e}", built.display()))?;
    let image = match test.mutation {
        None => built.to_path_buf(),
        Some(mutation) => {
            image::mutate(&mut bytes, mutation).map_err(|e| e.to_string())?;
            let path = logs.join(format!("{}.img", test.name));
            write_atomically(&path, &bytes).map_err(|e| e.to_string())?;
            path
        }
    };
    let machine = qemu::Machine {
        cpu: test.cpu,
        smp: test.smp,
        ram_megabytes,
        icount: test.icount,
    };
    let mut command = qemu::command(&image, &machine, qemu::Console::Plain);
    if let Some(change) = test.board_tree {
        let path = logs.join(format!("{}.dtb", test.name));
        qemu::dump_device_tree(&machine, &path)?;
        let mut tree = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        board_tree::apply(&mut tree, change).map_err(|e| format!("{}: {e}", path.display()))?;
        write_atomically(&path, &tree).map_err(|e| e.to_string())?;
        command.arg("-dtb").arg(&path);
    }
    let boot = WatchedBoot {
        name: test.name,
        expect: test.expect,
        forbid: test.forbid,
        keys: test.keys,
        timeout_seconds: test.timeout_seconds,
    };
    watch_boot(&boot, command, logs)
}

/// What a watched boot must show, for [`watch_boot`].
struct WatchedBoot<'a> {
    name: &'a str,
    expect: &'a [&'a str],
    forbid: &'a [&'a str],
    keys: &'a [(&'a str, &'a str)],
    timeout_seconds: u64,
}

/// Runs a QEMU command, keeps its console log and judges it.
fn watch_boot(
    test: &WatchedBoot<'_>,
    command: Command,
    logs: &Path,
) -> std::result::Result<(), String> {
    let line = crate::workspace::describe(&command);
    let mut watch = Watch::new(test.expect, test.forbid).with_keys(test.keys);
    let started = Instant::now();
    let ending = qemu::run_observed(
        command,
        &mut watch,
        Duration::from_secs(test.timeout_seconds),
    )
    .map_err(|e| e.to_string())?;
    let log = logs.join(format!("{}.log", test.name));
    write_atomically(&log, watch.text().as_bytes()).map_err(|e| e.to_string())?;
    let verdict = match (watch.progress(), ending) {
        (Progress::Complete, _) => return Ok(()),
        (Progress::Forbidden, _) => format!(
            "forbidden pattern `{}` appeared",
            watch.forbidden().unwrap_or_default()
        ),
        (Progress::Waiting, Ending::TimedOut) => format!(
            "timed out after {} s waiting for `{}`",
            test.timeout_seconds,
            watch.missing().unwrap_or_default()
        ),
        (Progress::Waiting, _) => format!(
            "QEMU exited after {:.1} s before `{}` appeared",
            started.elapsed().as_secs_f64(),
            watch.missing().unwrap_or_default()
        ),
    };
    let mut report = format!(
        "  {verdict}\n  command: {line}\n  log: {}\n  last 40 console lines:\n",
        log.display()
    );
    for console_line in qemu::last_lines(watch.text(), 40) {
        report.push_str("  | ");
        report.push_str(console_line);
        report.push('\n');
    }
    Err(report)
}

/// Makes the guest images (once) and boots them natively for each selected test; if the
/// images cannot be made, every selected test fails with the reason (never skipped).
fn native_linux_tests(
    workspace: &Workspace,
    filter: Option<&str>,
    tally: &mut Tally,
) -> Result<()> {
    let tests = qemu_tests::selected_native_linux(filter);
    if tests.is_empty() {
        return Ok(());
    }
    let logs = workspace.out().join("qemu-tests");
    std::fs::create_dir_all(&logs).map_err(io_error(&logs))?;
    let images = crate::guest::guest_images(workspace)
        .map_err(|error| format!("  the guest images could not be made: {error}"));
    for test in tests {
        let outcome = images.clone().and_then(|images| {
            let machine = crate::guest::NativeMachine {
                cpu: test.cpu,
                smp: test.smp,
                ram_megabytes: test.ram_megabytes,
                bootargs: "",
                icount: None,
            };
            let boot = WatchedBoot {
                name: test.name,
                expect: test.expect,
                forbid: test.forbid,
                keys: &[],
                timeout_seconds: test.timeout_seconds,
            };
            watch_boot(
                &boot,
                crate::guest::native_command(&images, &machine),
                &logs,
            )
        });
        tally.record(test.name, outcome);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_output_must_match_whole() {
        assert!(same_output("a.toml:1:1: error\n", "a.toml:1:1: error\n"));
        assert!(same_output("a.toml:1:1: error", "a.toml:1:1: error\n"));
        assert!(!same_output(
            "a.toml:1:1: error\n",
            "a.toml:1:1: error\nmore\n"
        ));
        assert!(!same_output("", ""));
    }

    #[test]
    fn tally_counts_each_outcome() {
        let mut tally = Tally::default();
        tally.record("a", Ok(()));
        tally.record("b", Err("why".into()));
        tally.record("c", Ok(()));
        assert_eq!(tally.passed, 2);
        assert_eq!(tally.failed, ["b"]);
    }
}
