//! `cargo xtask build`: kernel ELF, cell ELFs, host tool, then the bootable image.
//!
//! Outputs:
//! - `<cargo target>/aarch64-unknown-none-softfloat/firmware/cellvisor-kernel` (kernel ELF);
//! - `<workspace>/target/cells/<bin>.elf`, one per binary of `cellvisor-cells` (the system
//!   descriptions refer to `../target/cells/NAME.elf`);
//! - `<workspace>/target/images/<system stem>/cellvisor.img`, written by `cellvisor build`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace::{cargo, io_error, run, Result, Workspace};

/// Target of the EL2 kernel (no floating point or SIMD registers to save).
pub const KERNEL_TARGET: &str = "aarch64-unknown-none-softfloat";
/// Target of native cells.
pub const CELLS_TARGET: &str = "aarch64-unknown-none";
/// Cargo profile of bare-metal builds.
pub const FIRMWARE_PROFILE: &str = "firmware";
/// The kernel package.
pub const KERNEL_PACKAGE: &str = "cellvisor-kernel";
/// The host tool's package (its binary is `cellvisor`).
pub const TOOL_PACKAGE: &str = "cellvisor";

/// The kernel and cells, built.
#[derive(Clone, Debug)]
pub struct Firmware {
    /// The kernel ELF.
    pub kernel: PathBuf,
}

/// Builds the kernel and every cell, and copies the cells to `target/cells/`.
pub fn firmware(workspace: &Workspace) -> Result<Firmware> {
    run(cargo_in(workspace).args([
        "build",
        "-p",
        KERNEL_PACKAGE,
        "--target",
        KERNEL_TARGET,
        "--profile",
        FIRMWARE_PROFILE,
    ]))?;
    run(cargo_in(workspace).args([
        "build",
        "-p",
        crate::workspace::CELLS_PACKAGE,
        "--target",
        CELLS_TARGET,
        "--profile",
        FIRMWARE_PROFILE,
        "--bins",
    ]))?;
    let kernel = workspace
        .cargo_target
        .join(KERNEL_TARGET)
        .join(FIRMWARE_PROFILE)
        .join(KERNEL_PACKAGE);
    let built_cells = workspace
        .cargo_target
        .join(CELLS_TARGET)
        .join(FIRMWARE_PROFILE);
    let cells_dir = cells_dir(workspace);
    std::fs::create_dir_all(&cells_dir).map_err(io_error(&cells_dir))?;
    for bin in &workspace.cell_bins {
        let from = built_cells.join(bin);
        let to = cells_dir.join(format!("{bin}.elf"));
        let bytes = std::fs::read(&from).map_err(io_error(&from))?;
        crate::workspace::write_atomically(&to, &bytes)?;
    }
    Ok(Firmware { kernel })
}

/// The package of the guest benchmark program (`guest-bench/`).
pub const GUEST_BENCH_PACKAGE: &str = "cellvisor-guest-bench";

/// Builds `cvbench`, the static Linux/arm64 benchmark program put in the guest initramfs;
/// returns its bytes.
pub fn guest_bench(workspace: &Workspace) -> Result<Vec<u8>> {
    run(cargo_in(workspace).args([
        "build",
        "-p",
        GUEST_BENCH_PACKAGE,
        "--target",
        CELLS_TARGET,
        "--profile",
        FIRMWARE_PROFILE,
    ]))?;
    let binary = workspace
        .cargo_target
        .join(CELLS_TARGET)
        .join(FIRMWARE_PROFILE)
        .join("cvbench");
    std::fs::read(&binary).map_err(io_error(&binary))
}

/// `<workspace>/target/cells`.
pub fn cells_dir(workspace: &Workspace) -> PathBuf {
    workspace.out().join("cells")
}

/// Builds the host tool and returns its binary.
pub fn tool(workspace: &Workspace) -> Result<PathBuf> {
    run(cargo_in(workspace).args(["build", "-p", TOOL_PACKAGE, "--release"]))?;
    Ok(workspace.cargo_target.join("release").join(TOOL_PACKAGE))
}

/// `<workspace>/target/images/<stem of system>/`.
pub fn image_dir(workspace: &Workspace, system: &Path) -> PathBuf {
    let stem = system.file_stem().unwrap_or(system.as_os_str());
    workspace.out().join("images").join(stem)
}

/// Runs `cellvisor build` for `system` and returns the image it wrote.
pub fn image(workspace: &Workspace, tool: &Path, kernel: &Path, system: &Path) -> Result<PathBuf> {
    let out = image_dir(workspace, system);
    run(Command::new(tool)
        .current_dir(&workspace.root)
        .arg("build")
        .arg(system)
        .arg("--kernel")
        .arg(kernel)
        .arg("-o")
        .arg(&out))?;
    Ok(out.join("cellvisor.img"))
}

/// Everything `cargo xtask build --system SYSTEM` does; returns the image.
pub fn build(workspace: &Workspace, system: &Path) -> Result<PathBuf> {
    let firmware = firmware(workspace)?;
    let tool = tool(workspace)?;
    image(workspace, &tool, &firmware.kernel, system)
}

/// Cargo, run in the workspace root.
pub fn cargo_in(workspace: &Workspace) -> Command {
    let mut command = Command::new(cargo());
    command.current_dir(&workspace.root);
    command
}
