//! Links every cell binary with the SDK's linker script, `sdk/cell.ld`.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let script = manifest_dir.join("../sdk/cell.ld");
    let script = script
        .canonicalize()
        .unwrap_or_else(|error| panic!("cannot find {}: {error}", script.display()));
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
}
