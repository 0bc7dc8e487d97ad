//! `cargo xtask guest-images`: Debian's arm64 Linux kernel and a busybox initramfs, the
//! guest images of issue 5, cached outside the source tree; and the QEMU command that boots
//! them natively (the baseline the Cellvisor-guest runs compare with).
//!
//! The cache is `${XDG_CACHE_HOME:-$HOME/.cache}/cellvisor/guest/`: `debs/` holds the
//! downloaded packages, `unpacked/` their contents, and the outputs are `Image` (the raw arm64
//! kernel) and `initramfs.cpio` (uncompressed newc). Invariant: `stamp` is written last and
//! names the packages and the hash of the `/init` script the outputs were built from, so a
//! run that finds a matching stamp and both outputs does nothing, and an interrupted run is
//! redone. Root is needed only to add the arm64 architecture and fetch its package lists;
//! without it the exact commands are printed instead.

mod cpio;
mod initramfs;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace::{self, Workspace};

pub use cpio::CpioError;

/// The meta-package whose dependency names the current kernel package.
const KERNEL_META_PACKAGE: &str = "linux-image-arm64:arm64";
/// The statically linked busybox package.
const BUSYBOX_PACKAGE: &str = "busybox-static:arm64";
/// Modules `/init` loads (their dependencies are added).
const GUEST_MODULES: &[&str] = &["virtio_mmio", "virtio_console"];
/// The `/init` script, relative to the workspace root.
const INIT_SCRIPT: &str = "guest/init.sh";
/// Bumped when the way the outputs are built changes, so old caches are rebuilt.
const BUILDER_VERSION: u32 = 1;
/// The arm64 Image header magic `ARM\x64`, at byte 56.
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";
const IMAGE_MAGIC_OFFSET: usize = 56;

/// Why the guest images could not be made.
#[derive(Debug)]
pub enum GuestError {
    /// Setting up apt for arm64 needs root; these are the commands to run.
    NeedsRoot(Vec<String>),
    /// A command could not run or failed.
    Command(workspace::Error),
    /// Reading or writing a file failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Neither `XDG_CACHE_HOME` nor `HOME` is set.
    NoCacheDirectory,
    /// `apt-cache depends` did not name a versioned kernel package.
    NoKernelPackage(String),
    /// An unpacked package lacks a file it should hold.
    Missing {
        /// What was looked for.
        what: &'static str,
        /// Where.
        directory: PathBuf,
    },
    /// The kernel file is not a raw arm64 Image (e.g. it is compressed).
    NotAnArm64Image {
        /// The file.
        path: PathBuf,
        /// Its first bytes and the bytes where the magic should be.
        found: String,
    },
    /// A module is neither in the package nor built into the kernel.
    ModuleNotFound(String),
    /// A module file cannot be used.
    BadModule {
        /// The `.ko` file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The initramfs could not be written, or read back.
    Cpio(CpioError),
    /// The initramfs read back lacks `/init` or `/dev/console`.
    InitramfsIncomplete,
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NeedsRoot(commands) => {
                writeln!(
                    f,
                    "fetching the arm64 guest packages needs apt set up for arm64, which needs root.\n\
                     Run this, then try again:\n"
                )?;
                for command in commands {
                    writeln!(f, "    {command}")?;
                }
                Ok(())
            }
            Self::Command(error) => write!(f, "{error}"),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::NoCacheDirectory => write!(f, "neither XDG_CACHE_HOME nor HOME is set"),
            Self::NoKernelPackage(output) => write!(
                f,
                "`apt-cache depends {KERNEL_META_PACKAGE}` names no linux-image-<version>-arm64:\n{output}"
            ),
            Self::Missing { what, directory } => {
                write!(f, "{what} not found in {}", directory.display())
            }
            Self::NotAnArm64Image { path, found } => write!(
                f,
                "{} is not an uncompressed arm64 Image (no ARM\\x64 magic at byte 56): {found}",
                path.display()
            ),
            Self::ModuleNotFound(name) => write!(f, "kernel module {name} not found"),
            Self::BadModule { path, reason } => write!(f, "{}: {reason}", path.display()),
            Self::Cpio(error) => write!(f, "{error}"),
            Self::InitramfsIncomplete => {
                write!(f, "the initramfs read back lacks /init or /dev/console")
            }
        }
    }
}

impl std::error::Error for GuestError {}

impl From<workspace::Error> for GuestError {
    fn from(error: workspace::Error) -> Self {
        Self::Command(error)
    }
}

impl From<CpioError> for GuestError {
    fn from(error: CpioError) -> Self {
        Self::Cpio(error)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> GuestError + '_ {
    move |source| GuestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The built guest images.
#[derive(Clone, Debug)]
pub struct GuestImages {
    /// The raw arm64 kernel Image.
    pub kernel: PathBuf,
    /// The newc initramfs.
    pub initramfs: PathBuf,
}

/// The cache directory: `${XDG_CACHE_HOME:-$HOME/.cache}/cellvisor/guest`.
pub fn cache_directory() -> Result<PathBuf, GuestError> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(cache) => PathBuf::from(cache),
        None => PathBuf::from(std::env::var_os("HOME").ok_or(GuestError::NoCacheDirectory)?)
            .join(".cache"),
    };
    Ok(base.join("cellvisor").join("guest"))
}

/// Makes the guest images if they are missing or stale; prints what it does.
pub fn guest_images(workspace: &Workspace) -> Result<GuestImages, GuestError> {
    let cache = cache_directory()?;
    let images = GuestImages {
        kernel: cache.join("Image"),
        initramfs: cache.join("initramfs.cpio"),
    };
    let init_path = workspace.path(INIT_SCRIPT);
    let init = std::fs::read(&init_path).map_err(io(&init_path))?;
    let bench = crate::build::guest_bench(workspace)?;
    // The stamp's content hash covers everything from this tree: /init and the program.
    let content_hash = fnv1a(&[init.as_slice(), bench.as_slice()].concat());
    let stamp_path = cache.join("stamp");
    let old_stamp = std::fs::read_to_string(&stamp_path).ok();
    let outputs_exist = images.kernel.is_file() && images.initramfs.is_file();
    if let Some(old) = old_stamp.as_deref().and_then(Stamp::parse) {
        if outputs_exist && old.init_hash == content_hash && old.builder == BUILDER_VERSION {
            return Ok(images);
        }
    }
    std::fs::create_dir_all(&cache).map_err(io(&cache))?;
    let _stale = std::fs::remove_file(&stamp_path);

    ensure_arm64_lists()?;
    let kernel_package = kernel_package()?;
    let debs = cache.join("debs");
    let kernel_deb = download(&debs, &format!("{kernel_package}:arm64"), &kernel_package)?;
    let busybox_deb = download(&debs, BUSYBOX_PACKAGE, "busybox-static")?;
    let kernel_root = unpack(&cache, &kernel_deb)?;
    let busybox_root = unpack(&cache, &busybox_deb)?;

    let (vmlinuz, version) = find_kernel(&kernel_root)?;
    let kernel = std::fs::read(&vmlinuz).map_err(io(&vmlinuz))?;
    check_image(&vmlinuz, &kernel)?;
    workspace::write_atomically(&images.kernel, &kernel)?;

    let busybox = busybox_root.join("bin/busybox");
    let modules = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|base| kernel_root.join(base).join(&version))
        .find(|path| path.is_dir())
        .ok_or(GuestError::Missing {
            what: "lib/modules/<version>",
            directory: kernel_root.clone(),
        })?;
    let (archive, loaded) = initramfs::build(&initramfs::Inputs {
        busybox: &busybox,
        modules: &modules,
        wanted: GUEST_MODULES,
        init: &init,
        programs: &[("bin/cvbench", &bench)],
    })?;
    workspace::write_atomically(&images.initramfs, &archive)?;

    let stamp = Stamp {
        builder: BUILDER_VERSION,
        init_hash: content_hash,
        kernel: file_name(&kernel_deb),
        busybox: file_name(&busybox_deb),
    };
    workspace::write_atomically(&stamp_path, stamp.render().as_bytes())?;
    println!(
        "guest images from {} and {} (modules: {}):\n  {}\n  {}",
        stamp.kernel,
        stamp.busybox,
        loaded.join(", "),
        images.kernel.display(),
        images.initramfs.display()
    );
    Ok(images)
}

/// What the outputs were built from.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    builder: u32,
    init_hash: u64,
    kernel: String,
    busybox: String,
}

impl Stamp {
    fn render(&self) -> String {
        format!(
            "builder={}\ninit-fnv1a={:016x}\nkernel={}\nbusybox={}\n",
            self.builder, self.init_hash, self.kernel, self.busybox
        )
    }

    fn parse(text: &str) -> Option<Self> {
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        };
        Some(Self {
            builder: value("builder")?.parse().ok()?,
            init_hash: u64::from_str_radix(value("init-fnv1a")?, 16).ok()?,
            kernel: value("kernel")?.to_owned(),
            busybox: value("busybox")?.to_owned(),
        })
    }
}

/// FNV-1a, 64 bits: a stable hash for the stamp (std's hasher may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Makes sure dpkg knows arm64 and apt has its package lists (root only when they are not).
fn ensure_arm64_lists() -> Result<(), GuestError> {
    let foreign = workspace::output_of(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    let has_architecture = String::from_utf8_lossy(&foreign)
        .split_whitespace()
        .any(|a| a == "arm64");
    let has_lists = std::fs::read_dir("/var/lib/apt/lists").is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .contains("binary-arm64_Packages")
        })
    });
    if has_architecture && has_lists {
        return Ok(());
    }
    let mut needed = Vec::new();
    if !has_architecture {
        needed.push(vec!["dpkg", "--add-architecture", "arm64"]);
    }
    needed.push(vec!["apt-get", "update"]);
    if !is_root() {
        return Err(GuestError::NeedsRoot(
            needed
                .iter()
                .map(|words| format!("sudo {}", words.join(" ")))
                .collect(),
        ));
    }
    for words in needed {
        let mut command = Command::new(words[0]);
        command
            .args(&words[1..])
            .env("DEBIAN_FRONTEND", "noninteractive");
        workspace::run(&mut command)?;
    }
    Ok(())
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

/// The exact current kernel package, e.g. `linux-image-6.1.0-56-arm64`.
fn kernel_package() -> Result<String, GuestError> {
    let output =
        workspace::output_of(Command::new("apt-cache").args(["depends", KERNEL_META_PACKAGE]))?;
    let text = String::from_utf8_lossy(&output).into_owned();
    parse_kernel_dependency(&text).ok_or(GuestError::NoKernelPackage(text))
}

/// The first `Depends: linux-image-<digit>...-arm64` of `apt-cache depends` output.
fn parse_kernel_dependency(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.trim().trim_start_matches('|').strip_prefix("Depends:"))
        .map(|name| name.trim().trim_end_matches(":arm64"))
        .find(|name| {
            name.strip_prefix("linux-image-")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
                && name.ends_with("-arm64")
        })
        .map(str::to_owned)
}

/// Downloads `package` into `directory` unless a `.deb` of it is there; returns the file.
fn download(directory: &Path, package: &str, name: &str) -> Result<PathBuf, GuestError> {
    let find = || -> Result<Option<PathBuf>, GuestError> {
        let prefix = format!("{name}_");
        Ok(std::fs::read_dir(directory)
            .map_err(io(directory))?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let file = file_name(p);
                file.starts_with(&prefix) && file.ends_with("_arm64.deb")
            }))
    };
    std::fs::create_dir_all(directory).map_err(io(directory))?;
    if let Some(found) = find()? {
        return Ok(found);
    }
    let mut command = Command::new("apt-get");
    command.current_dir(directory).args(["download", package]);
    workspace::run(&mut command)?;
    find()?.ok_or(GuestError::Missing {
        what: "the downloaded .deb",
        directory: directory.to_path_buf(),
    })
}

/// `dpkg -x` a package into `<cache>/unpacked/<deb name>` (once); returns that directory.
fn unpack(cache: &Path, deb: &Path) -> Result<PathBuf, GuestError> {
    let target = cache
        .join("unpacked")
        .join(file_name(deb).trim_end_matches(".deb"));
    let done = target.join(".unpacked");
    if done.is_file() {
        return Ok(target);
    }
    let _partial = std::fs::remove_dir_all(&target);
    std::fs::create_dir_all(&target).map_err(io(&target))?;
    workspace::run(Command::new("dpkg").arg("-x").arg(deb).arg(&target))?;
    std::fs::write(&done, b"").map_err(io(&done))?;
    Ok(target)
}

/// `boot/vmlinuz-<version>` of the unpacked kernel package, and the version.
fn find_kernel(root: &Path) -> Result<(PathBuf, String), GuestError> {
    let boot = root.join("boot");
    std::fs::read_dir(&boot)
        .map_err(io(&boot))?
        .flatten()
        .find_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version = name.strip_prefix("vmlinuz-")?.to_owned();
            Some((entry.path(), version))
        })
        .ok_or(GuestError::Missing {
            what: "boot/vmlinuz-*",
            directory: boot,
        })
}

/// Checks the arm64 Image magic (a gzip'd kernel would need unpacking first).
fn check_image(path: &Path, bytes: &[u8]) -> Result<(), GuestError> {
    if bytes.get(IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4) == Some(IMAGE_MAGIC) {
        return Ok(());
    }
    let hex = |range: std::ops::Range<usize>| -> String {
        bytes
            .get(range)
            .unwrap_or_default()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    Err(GuestError::NotAnArm64Image {
        path: path.to_path_buf(),
        found: format!(
            "starts {}, bytes 56..60 are {}",
            hex(0..4),
            hex(IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4)
        ),
    })
}

/// The machine a native boot gets.
#[derive(Clone, Copy, Debug)]
pub struct NativeMachine<'a> {
    /// `-cpu` model.
    pub cpu: &'a str,
    /// Cores (`-smp`); `/init` expects `nproc` to report this.
    pub smp: u32,
    /// RAM in MiB (`-m`); `/init` checks MemTotal against it.
    pub ram_megabytes: u64,
    /// More kernel command line (`cellvisor.*` parameters for `/init`).
    pub bootargs: &'a str,
    /// `-icount shift=N,sleep=off`, or host time.
    pub icount: Option<u8>,
}

/// The QEMU command that boots the guest images natively (no Cellvisor, no EL2), serial on
/// stdio. The kernel command line carries what `/init` checks against.
pub fn native_command(images: &GuestImages, machine: &NativeMachine<'_>) -> Command {
    let mut command = Command::new(crate::qemu::QEMU);
    command
        .args([
            // QEMU puts a random `rng-seed` and `kaslr-seed` in the device tree, as the
            // Cellvisor kernel does for a guest cell at every start.
            "-machine",
            "virt,gic-version=3",
        ])
        .args(["-cpu", machine.cpu])
        .args(["-smp", &machine.smp.to_string()])
        .args(["-m", &format!("{}M", machine.ram_megabytes)])
        .arg("-kernel")
        .arg(&images.kernel)
        .arg("-initrd")
        .arg(&images.initramfs)
        .arg("-append")
        .arg(format!(
            "console=ttyAMA0 panic=-1 cellvisor.expect_cpus={} cellvisor.expect_mem_mib={} {}",
            machine.smp, machine.ram_megabytes, machine.bootargs
        ))
        .args([
            "-no-reboot",
            "-display",
            "none",
            "-serial",
            "stdio",
            "-monitor",
            "none",
        ]);
    if let Some(shift) = machine.icount {
        command.args(["-icount", &format!("shift={shift},sleep=off")]);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_dependency_is_the_versioned_package() {
        let output = "linux-image-arm64:arm64\n  Depends: linux-image-6.1.0-56-arm64:arm64\n";
        assert_eq!(
            parse_kernel_dependency(output).as_deref(),
            Some("linux-image-6.1.0-56-arm64")
        );
        let output = "linux-image-arm64:arm64\n  Depends: linux-image-arm64-signed-template\n";
        assert_eq!(parse_kernel_dependency(output), None);
    }

    #[test]
    fn stamp_round_trips() {
        let stamp = Stamp {
            builder: BUILDER_VERSION,
            init_hash: fnv1a(b"#!/bin/sh\n"),
            kernel: "linux-image-6.1.0-56-arm64_6.1.192-2_arm64.deb".into(),
            busybox: "busybox-static_1%3a1.35.0-4_arm64.deb".into(),
        };
        assert_eq!(Stamp::parse(&stamp.render()), Some(stamp));
        assert_eq!(Stamp::parse("builder=1\n"), None);
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn image_magic_is_checked() {
        let mut bytes = vec![0u8; 64];
        assert!(check_image(Path::new("x"), &bytes).is_err());
        bytes[56..60].copy_from_slice(IMAGE_MAGIC);
        assert!(check_image(Path::new("x"), &bytes).is_ok());
        assert!(check_image(Path::new("x"), &[0x1f, 0x8b]).is_err());
    }
}
