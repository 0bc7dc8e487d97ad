//! For `aarch64-unknown-none`: sets `cfg(cvbench_guest)` and links `cvbench` with
//! `cvbench.ld` (a static, non-PIE ELF executable for Linux/arm64 at 0x40_0000 with
//! separate R+X, R and RW `PT_LOAD` segments). For any other target (a host-wide
//! `cargo clippy --workspace`) the crate builds as a stub, so nothing is linked specially.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cvbench_guest)");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if arch != "aarch64" || os != "none" {
        return;
    }
    println!("cargo::rustc-cfg=cvbench_guest");
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let script = manifest_dir.join("cvbench.ld");
    let script = script
        .canonicalize()
        .unwrap_or_else(|error| panic!("cannot find {}: {error}", script.display()));
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rustc-link-arg-bins=--no-pie");
    println!("cargo:rustc-link-arg-bins=-static");
    println!("cargo:rustc-link-arg-bins=--build-id=none");
}
