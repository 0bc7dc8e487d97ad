//! Where things are (workspace root, target directory, cell binaries) and how commands run.
//!
//! Every path xtask writes to is under `<workspace>/target/` (cells, images, QEMU logs,
//! bench reports) because the system descriptions refer to `../target/cells/NAME.elf`;
//! only cargo's own output follows `CARGO_TARGET_DIR` (read from `cargo metadata`).

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// Everything that can stop an xtask command.
#[derive(Debug)]
pub enum Error {
    /// A program could not be started at all (usually: it is not installed).
    Spawn {
        /// The command line that was attempted.
        command: String,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// A program ran and exited unsuccessfully.
    CommandFailed {
        /// The command line.
        command: String,
        /// How it ended.
        status: ExitStatus,
    },
    /// Reading or writing a file failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `cargo metadata` did not say what we need.
    Metadata(&'static str),
    /// A required tool is missing and cannot be installed from here.
    MissingTool {
        /// The program that is missing.
        program: &'static str,
        /// The exact command a user should run.
        install: &'static str,
    },
    /// A built image is not what the tool should have written.
    BadImage {
        /// The image file.
        path: PathBuf,
        /// What is wrong with it.
        reason: crate::image::ImageError,
    },
    /// `bench` could not measure a key.
    Bench(crate::bench::BenchError),
    /// `test` ran and some checks failed (the details were already printed).
    TestsFailed {
        /// How many checks failed.
        failed: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spawn { command, source } => write!(f, "cannot run `{command}`: {source}"),
            Self::CommandFailed { command, status } => {
                write!(f, "`{command}` failed ({status})")
            }
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Metadata(what) => write!(f, "cargo metadata: {what}"),
            Self::MissingTool { program, install } => write!(
                f,
                "`{program}` is not installed and I cannot install it without root.\n\
                 Run this, then try again:\n\n    {install}\n"
            ),
            Self::BadImage { path, reason } => write!(f, "{}: {reason}", path.display()),
            Self::Bench(error) => write!(f, "bench: {error}"),
            Self::TestsFailed { failed } => write!(f, "{failed} check(s) failed"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for xtask results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an I/O error with the path it concerns.
pub fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The workspace as cargo describes it.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// The directory holding the root `Cargo.toml`.
    pub root: PathBuf,
    /// Cargo's target directory (honours `CARGO_TARGET_DIR`).
    pub cargo_target: PathBuf,
    /// The binary targets of package `cellvisor-cells`: one per shipped cell.
    pub cell_bins: Vec<String>,
}

/// Package whose binaries are the native cells.
pub const CELLS_PACKAGE: &str = "cellvisor-cells";

impl Workspace {
    /// Asks `cargo metadata` where the workspace and its target directory are.
    pub fn discover() -> Result<Self> {
        let mut command = Command::new(cargo());
        command.args(["metadata", "--format-version", "1", "--no-deps"]);
        let output = output_of(&mut command)?;
        let json: serde_json::Value =
            serde_json::from_slice(&output).map_err(|_| Error::Metadata("output is not JSON"))?;
        Self::from_metadata(&json)
    }

    /// Reads the fields we need from `cargo metadata`'s JSON.
    pub fn from_metadata(json: &serde_json::Value) -> Result<Self> {
        let root = json["workspace_root"]
            .as_str()
            .ok_or(Error::Metadata("no workspace_root"))?;
        let cargo_target = json["target_directory"]
            .as_str()
            .ok_or(Error::Metadata("no target_directory"))?;
        let packages = json["packages"]
            .as_array()
            .ok_or(Error::Metadata("no packages"))?;
        let cells = packages
            .iter()
            .find(|p| p["name"] == CELLS_PACKAGE)
            .ok_or(Error::Metadata("no package cellvisor-cells"))?;
        let mut cell_bins: Vec<String> = cells["targets"]
            .as_array()
            .ok_or(Error::Metadata("cellvisor-cells has no targets"))?
            .iter()
            .filter(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.contains(&"bin".into()))
            })
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect();
        cell_bins.sort();
        Ok(Self {
            root: PathBuf::from(root),
            cargo_target: PathBuf::from(cargo_target),
            cell_bins,
        })
    }

    /// `<workspace>/target`: where xtask keeps what it produces.
    pub fn out(&self) -> PathBuf {
        self.root.join("target")
    }

    /// A path given relative to the workspace root (absolute paths are kept).
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }
}

/// The cargo binary running us (so nested builds use the same toolchain).
pub fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Renders a command line for messages.
pub fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs a command with inherited stdio; fails unless it exits successfully.
pub fn run(command: &mut Command) -> Result<()> {
    let line = describe(command);
    eprintln!("$ {line}");
    let status = command.status().map_err(|source| Error::Spawn {
        command: line.clone(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::CommandFailed {
            command: line,
            status,
        })
    }
}

/// Runs a command and returns its stdout; fails unless it exits successfully.
pub fn output_of(command: &mut Command) -> Result<Vec<u8>> {
    let line = describe(command);
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|source| Error::Spawn {
            command: line.clone(),
            source,
        })?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(Error::CommandFailed {
            command: line,
            status: output.status,
        })
    }
}

/// Whether `program` can be found on `PATH`.
pub fn on_path(program: impl AsRef<OsStr>) -> bool {
    let program = program.as_ref();
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that a failure
/// never leaves a half-written file behind.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, bytes).map_err(io_error(&temporary))?;
    std::fs::rename(&temporary, path).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_gives_root_target_and_cell_bins() {
        let json = serde_json::json!({
            "workspace_root": "/w",
            "target_directory": "/t",
            "packages": [
                {"name": "xtask", "targets": [{"name": "xtask", "kind": ["bin"]}]},
                {"name": "cellvisor-cells", "targets": [
                    {"name": "pong", "kind": ["bin"]},
                    {"name": "cellvisor_cells", "kind": ["lib"]},
                    {"name": "ping", "kind": ["bin"]}
                ]}
            ]
        });
        let workspace = Workspace::from_metadata(&json).unwrap();
        assert_eq!(workspace.root, PathBuf::from("/w"));
        assert_eq!(workspace.cargo_target, PathBuf::from("/t"));
        assert_eq!(workspace.cell_bins, ["ping", "pong"]);
        assert_eq!(workspace.out(), PathBuf::from("/w/target"));
    }

    #[test]
    fn atomic_writes_leave_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("xtask-write-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("deeper/report.json");
        write_atomically(&path, b"{}").unwrap();
        write_atomically(&path, b"{\"a\": 1}").unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.join("deeper"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let content = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["report.json"]);
        assert_eq!(content, "{\"a\": 1}");
    }

    #[test]
    fn metadata_without_cells_package_is_an_error() {
        let json = serde_json::json!({
            "workspace_root": "/w", "target_directory": "/t", "packages": []
        });
        assert!(matches!(
            Workspace::from_metadata(&json),
            Err(Error::Metadata(_))
        ));
    }
}
