//! Developer commands for Cellvisor: `cargo xtask setup | build | run | test | bench |
//! guest-images`.
//!
//! xtask owns the developer workflow: installing what is missing ([`setup`]), building the
//! kernel, cells, host tool and image ([`build`]), booting in QEMU ([`qemu`]), the test
//! harness ([`test`], with the QEMU tests declared as data in [`qemu_tests`]), the
//! benchmark report ([`bench`]) and the Linux guest images ([`guest`]).
//!
//! Invariants: everything xtask writes is under `<workspace>/target/`, except the downloaded
//! guest images, cached in `${XDG_CACHE_HOME:-$HOME/.cache}/cellvisor/guest/`; a QEMU boot always
//! has a timeout and is always killed; a benchmark key is never written unless measured.

mod bench;
mod board_tree;
mod build;
mod guest;
mod guest_bench;
mod image;
mod loc;
mod qemu;
mod qemu_tests;
mod setup;
mod test;
mod workspace;

use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::workspace::{io_error, Error, Result, Workspace};

/// The system `build` and `run` use when none is given.
const DEFAULT_SYSTEM: &str = "systems/evoke.toml";

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Cellvisor developer commands"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what is missing: QEMU, the bare-metal Rust targets, rustfmt and clippy.
    Setup,
    /// Build the kernel, the cells, the host tool and the bootable image of a system.
    Build {
        /// The system description.
        #[arg(long, default_value = DEFAULT_SYSTEM)]
        system: PathBuf,
    },
    /// Set up, build, and boot a system in QEMU (Ctrl-A then X quits).
    Run {
        /// The system description.
        #[arg(long, default_value = DEFAULT_SYSTEM)]
        system: PathBuf,
        /// QEMU CPU model.
        #[arg(long, default_value = "cortex-a72")]
        cpu: String,
        /// Number of cores.
        #[arg(long, default_value_t = 4)]
        smp: u32,
    },
    /// Host unit tests and lints, `cellvisor check` fixtures, QEMU integration tests.
    Test {
        /// Run only the fixtures and QEMU tests whose name contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Skip cargo test, fmt and clippy.
        #[arg(long)]
        no_host: bool,
        /// Accept the current `cellvisor check` output of failing invalid fixtures.
        #[arg(long)]
        bless: bool,
    },
    /// Measure and write target/bench/report.json and report.md.
    Bench,
    /// Fetch Debian's arm64 kernel and busybox, build the guest initramfs (cached outside
    /// the source tree; does nothing when up to date) and print the two paths.
    GuestImages,
}

/// Why a command failed.
enum Failure {
    Workspace(Error),
    Guest(guest::GuestError),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self::Workspace(error)
    }
}

impl From<guest::GuestError> for Failure {
    fn from(error: guest::GuestError) -> Self {
        Self::Guest(error)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Workspace(Error::TestsFailed { .. })) => ExitCode::FAILURE,
        Err(Failure::Workspace(error)) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
        Err(Failure::Guest(error)) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn execute(task: Task) -> std::result::Result<(), Failure> {
    let workspace = Workspace::discover()?;
    match task {
        Task::Setup => Ok(setup::setup(&workspace)?),
        Task::Build { system } => {
            let system = resolve(&workspace, &system)?;
            fetch_guest_images_for(&workspace, &system)?;
            let image = build::build(&workspace, &system)?;
            println!("{}", image.display());
            Ok(())
        }
        Task::Run { system, cpu, smp } => {
            setup::setup(&workspace)?;
            let system = resolve(&workspace, &system)?;
            fetch_guest_images_for(&workspace, &system)?;
            let image = build::build(&workspace, &system)?;
            Ok(boot(&workspace, &system, &image, &cpu, smp)?)
        }
        Task::Test {
            filter,
            no_host,
            bless,
        } => {
            setup::setup(&workspace)?;
            let options = test::Options {
                filter,
                no_host,
                bless,
            };
            Ok(test::test(&workspace, &options)?)
        }
        Task::Bench => {
            setup::setup(&workspace)?;
            let images = guest::guest_images(&workspace)?;
            Ok(bench::bench(&workspace, &images)?)
        }
        Task::GuestImages => {
            let images = guest::guest_images(&workspace)?;
            println!(
                "{}\n{}",
                images.kernel.display(),
                images.initramfs.display()
            );
            Ok(())
        }
    }
}

/// Fetches and caches Debian's guest images (`guest-images`) if the description `system`
/// uses them (it names `${CELLVISOR_GUEST}`); a no-op once they are cached.
fn fetch_guest_images_for(
    workspace: &Workspace,
    system: &Path,
) -> std::result::Result<(), Failure> {
    let text = std::fs::read_to_string(workspace.path(&system.to_string_lossy()))
        .or_else(|_| std::fs::read_to_string(system))
        .unwrap_or_default();
    if text.contains("${CELLVISOR_GUEST}") {
        guest::guest_images(workspace)?;
    }
    Ok(())
}

/// A system path as given (relative to the current directory) or relative to the
/// workspace root; shown and passed relative to the root when it is inside it.
fn resolve(workspace: &Workspace, system: &Path) -> Result<PathBuf> {
    let candidates = [
        std::env::current_dir()
            .map_err(io_error(Path::new(".")))?
            .join(system),
        workspace.path(&system.to_string_lossy()),
    ];
    let found = candidates
        .iter()
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Io {
            path: system.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such system description"),
        })?;
    let found = found.canonicalize().map_err(io_error(found))?;
    Ok(found
        .strip_prefix(&workspace.root)
        .map(Path::to_path_buf)
        .unwrap_or(found))
}

/// Replaces xtask with QEMU booting `image`.
fn boot(workspace: &Workspace, system: &Path, image: &Path, cpu: &str, smp: u32) -> Result<()> {
    let bytes = std::fs::read(image).map_err(io_error(image))?;
    let ram_megabytes = image::ram_megabytes(&bytes).map_err(|reason| Error::BadImage {
        path: image.to_path_buf(),
        reason,
    })?;
    let machine = qemu::Machine {
        cpu,
        smp,
        ram_megabytes,
        icount: None,
    };
    let console = if std::io::stdin().is_terminal() {
        qemu::Console::Terminal
    } else {
        qemu::Console::Plain
    };
    let relative_image = image.strip_prefix(&workspace.root).unwrap_or(image);
    let mut command = qemu::command(relative_image, &machine, console);
    command.current_dir(&workspace.root);
    println!(
        "Booting {} in QEMU — press Ctrl-A then X to quit.",
        system.display()
    );
    let line = workspace::describe(&command);
    let source = command.exec();
    Err(Error::Spawn {
        command: line,
        source,
    })
}
