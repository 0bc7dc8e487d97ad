//! `cargo xtask setup`: install what building and booting need, quickly when all is there.
//!
//! - `qemu-system-aarch64`, from Debian's `qemu-system-arm` (apt-get as root, or sudo);
//! - the rustup targets for the kernel and the cells, and rustfmt/clippy for `test`
//!   (`RUSTUP_AUTO_INSTALL=0` means `rust-toolchain.toml` alone installs nothing).

use std::io::IsTerminal;
use std::process::Command;

use crate::workspace::{on_path, output_of, run, Error, Result, Workspace};

/// The bare-metal targets: the kernel's (no FP/SIMD at EL2) and the cells'.
pub const TARGETS: &[&str] = &["aarch64-unknown-none-softfloat", "aarch64-unknown-none"];
/// The rustup components `cargo xtask test` uses.
pub const COMPONENTS: &[&str] = &["rustfmt", "clippy"];

const APT_INSTALL: &str = "apt-get update && apt-get install -y qemu-system-arm";
const SUDO_APT_INSTALL: &str = "sudo apt-get update && sudo apt-get install -y qemu-system-arm";

/// Ensures QEMU, the targets and the components are installed.
pub fn setup(workspace: &Workspace) -> Result<()> {
    ensure_qemu()?;
    let installed_targets = rustup_list(workspace, &["target", "list", "--installed"])?;
    let missing: Vec<&str> = TARGETS
        .iter()
        .copied()
        .filter(|t| !installed_targets.iter().any(|i| i == t))
        .collect();
    if !missing.is_empty() {
        run(rustup(workspace).args(["target", "add"]).args(&missing))?;
    }
    let installed_components = rustup_list(workspace, &["component", "list", "--installed"])?;
    let missing: Vec<&str> = COMPONENTS
        .iter()
        .copied()
        .filter(|c| {
            !installed_components
                .iter()
                .any(|i| i.starts_with(&format!("{c}-")))
        })
        .collect();
    if !missing.is_empty() {
        run(rustup(workspace).args(["component", "add"]).args(&missing))?;
    }
    Ok(())
}

fn rustup(workspace: &Workspace) -> Command {
    let mut command = Command::new("rustup");
    // Run in the workspace so that rust-toolchain.toml picks the toolchain.
    command.current_dir(&workspace.root);
    command
}

fn rustup_list(workspace: &Workspace, args: &[&str]) -> Result<Vec<String>> {
    let output = output_of(rustup(workspace).args(args))?;
    Ok(String::from_utf8_lossy(&output)
        .lines()
        .map(|l| l.trim().to_owned())
        .collect())
}

fn ensure_qemu() -> Result<()> {
    if on_path(crate::qemu::QEMU) {
        return Ok(());
    }
    eprintln!(
        "{} not found: installing qemu-system-arm",
        crate::qemu::QEMU
    );
    let apt = |prefix: &[&str]| -> Result<()> {
        run(&mut apt_command(prefix, &["update"]))?;
        run(&mut apt_command(
            prefix,
            &["install", "-y", "qemu-system-arm"],
        ))
    };
    if is_root() {
        apt(&[])?;
    } else if on_path("sudo") {
        // Without a terminal sudo must not ask for a password it cannot read.
        let prefix: &[&str] = if std::io::stdin().is_terminal() {
            &["sudo"]
        } else {
            &["sudo", "-n"]
        };
        apt(prefix).map_err(|_| Error::MissingTool {
            program: crate::qemu::QEMU,
            install: SUDO_APT_INSTALL,
        })?;
    } else {
        return Err(Error::MissingTool {
            program: crate::qemu::QEMU,
            install: APT_INSTALL,
        });
    }
    if on_path(crate::qemu::QEMU) {
        Ok(())
    } else {
        Err(Error::MissingTool {
            program: crate::qemu::QEMU,
            install: APT_INSTALL,
        })
    }
}

/// `apt-get ARGS`, behind `prefix` (e.g. `sudo -n`) if not empty.
fn apt_command(prefix: &[&str], args: &[&str]) -> Command {
    let mut words = prefix.iter().chain(["apt-get"].iter()).chain(args.iter());
    let mut command = Command::new(words.next().copied().unwrap_or("apt-get"));
    command.args(words).env("DEBIAN_FRONTEND", "noninteractive");
    command
}

/// Whether we run as root (read from /proc, so no libc dependency).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}
