//! Assembling the guest initramfs from an unpacked kernel package and busybox.
//!
//! The archive holds: `/bin/busybox` (static) with symlinks for the applets `/init` needs
//! before `busybox --install` runs, `/dev/console` (the kernel opens it for `/init`'s
//! standard streams before anything is mounted), the requested kernel modules and every
//! module they depend on flattened into `/lib/modules/<name>.ko`, the file
//! `/lib/modules/load-order` listing them so each comes after its dependencies, further
//! programs (`/bin/cvbench`, the guest benchmark), and `/init`.
//! Modules built into the kernel (`modules.builtin`) are left out, as are their loads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection};

use super::cpio::{Archive, Kind};
use super::GuestError;

/// Applets linked by name in `/bin` (the rest come from `busybox --install -s` in `/init`).
const APPLETS: &[&str] = &[
    "sh", "mount", "mkdir", "insmod", "nproc", "sleep", "poweroff", "cat", "grep", "awk", "echo",
];

/// The input of one initramfs.
pub struct Inputs<'a> {
    /// The statically linked busybox binary.
    pub busybox: &'a Path,
    /// The kernel's `lib/modules/<version>` directory.
    pub modules: &'a Path,
    /// Modules to load, by name; their dependencies are added.
    pub wanted: &'a [&'a str],
    /// The text of `/init`.
    pub init: &'a [u8],
    /// Further executables: path in the archive, bytes.
    pub programs: &'a [(&'a str, &'a [u8])],
}

/// Builds the initramfs; returns its bytes and the module load order.
pub fn build(inputs: &Inputs<'_>) -> Result<(Vec<u8>, Vec<String>), GuestError> {
    let busybox = read(inputs.busybox)?;
    let order = load_order(inputs.modules, inputs.wanted)?;

    let mut archive = Archive::new();
    for directory in ["bin", "dev", "lib", "lib/modules", "proc", "sys"] {
        archive.directory(directory, 0o755)?;
    }
    archive.character_device("dev/console", 0o600, 5, 1)?;
    archive.file("bin/busybox", 0o755, &busybox)?;
    for applet in APPLETS {
        archive.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    let mut list = String::new();
    for (name, path) in &order {
        archive.file(&format!("lib/modules/{name}.ko"), 0o644, &read(path)?)?;
        list.push_str(&format!("{name}.ko\n"));
    }
    archive.file("lib/modules/load-order", 0o644, list.as_bytes())?;
    for (path, bytes) in inputs.programs {
        archive.file(path, 0o755, bytes)?;
    }
    archive.file("init", 0o755, inputs.init)?;
    let bytes = archive.finish();
    verify(&bytes, inputs.init)?;
    Ok((bytes, order.into_iter().map(|(name, _)| name).collect()))
}

/// Reads the archive back: it must parse to its trailer and hold an executable `/init`
/// with the given text and the console device.
fn verify(bytes: &[u8], init: &[u8]) -> Result<(), GuestError> {
    let entries = super::cpio::read(bytes)?;
    let has_init = entries.iter().any(|e| {
        e.name == "init" && e.permissions & 0o111 != 0 && e.kind == Kind::File(init.to_vec())
    });
    let has_console = entries
        .iter()
        .any(|e| e.name == "dev/console" && e.kind == Kind::CharacterDevice { major: 5, minor: 1 });
    if has_init && has_console {
        Ok(())
    } else {
        Err(GuestError::InitramfsIncomplete)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, GuestError> {
    std::fs::read(path).map_err(|source| GuestError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A module name as the kernel compares them: `-` and `_` are the same.
fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a `.ko` path.
fn module_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    file.strip_suffix(".ko").map(normalize)
}

/// Every `.ko` under `directory`, by module name.
fn index_modules(directory: &Path) -> Result<BTreeMap<String, PathBuf>, GuestError> {
    let mut found = BTreeMap::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let entries = std::fs::read_dir(&directory).map_err(|source| GuestError::Io {
            path: directory.clone(),
            source,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|source| GuestError::Io {
                    path: directory.clone(),
                    source,
                })?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if let Some(name) = module_name(&path) {
                found.insert(name, path);
            }
        }
    }
    Ok(found)
}

/// Names of the modules built into the kernel, from `modules.builtin`.
fn builtin_modules(modules: &Path) -> Result<BTreeSet<String>, GuestError> {
    let path = modules.join("modules.builtin");
    let text = std::fs::read_to_string(&path).map_err(|source| GuestError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(text
        .lines()
        .filter_map(|line| module_name(Path::new(line.trim())))
        .collect())
}

/// The `depends=` list of a module's `.modinfo` section.
fn dependencies(path: &Path) -> Result<Vec<String>, GuestError> {
    let bytes = read(path)?;
    let bad = |reason: &str| GuestError::BadModule {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let file = object::File::parse(&*bytes).map_err(|e| bad(&e.to_string()))?;
    let section = file
        .section_by_name(".modinfo")
        .ok_or_else(|| bad("no .modinfo section"))?;
    let data = section.data().map_err(|e| bad(&e.to_string()))?;
    Ok(data
        .split(|&b| b == 0)
        .filter_map(|field| field.strip_prefix(b"depends="))
        .flat_map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .map(normalize)
                .collect::<Vec<_>>()
        })
        .filter(|name| !name.is_empty())
        .collect())
}

/// The modules to load, each after its dependencies, without built-in ones.
fn load_order(modules: &Path, wanted: &[&str]) -> Result<Vec<(String, PathBuf)>, GuestError> {
    let index = index_modules(&modules.join("kernel"))?;
    let builtin = builtin_modules(modules)?;
    let mut order = Vec::new();
    let mut visiting = BTreeSet::new();
    for name in wanted {
        visit(
            &normalize(name),
            &index,
            &builtin,
            &mut visiting,
            &mut order,
        )?;
    }
    Ok(order)
}

/// Depth-first: dependencies first. A cycle cannot be loaded, so it is an error.
fn visit(
    name: &str,
    index: &BTreeMap<String, PathBuf>,
    builtin: &BTreeSet<String>,
    visiting: &mut BTreeSet<String>,
    order: &mut Vec<(String, PathBuf)>,
) -> Result<(), GuestError> {
    if builtin.contains(name) || order.iter().any(|(done, _)| done == name) {
        return Ok(());
    }
    let path = index
        .get(name)
        .ok_or_else(|| GuestError::ModuleNotFound(name.to_owned()))?;
    if !visiting.insert(name.to_owned()) {
        return Err(GuestError::BadModule {
            path: path.clone(),
            reason: "circular module dependencies".to_owned(),
        });
    }
    for dependency in dependencies(path)? {
        visit(&dependency, index, builtin, visiting, order)?;
    }
    visiting.remove(name);
    order.push((name.to_owned(), path.clone()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_are_normalized() {
        assert_eq!(
            module_name(Path::new("kernel/drivers/virtio/virtio-mmio.ko")),
            Some("virtio_mmio".to_owned())
        );
        assert_eq!(module_name(Path::new("modules.builtin")), None);
        assert_eq!(module_name(Path::new("a/b.ko.xz")), None);
    }
}
