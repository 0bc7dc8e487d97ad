//! Randomness for guests: a ChaCha20 generator (`kcore::chacha`) seeded once at boot from the board's device
//! tree (`/chosen/rng-seed` and `kaslr-seed`, which QEMU and boot loaders fill from a
//! hardware source), and its one use: a fresh `rng-seed` and `kaslr-seed` in a guest's device
//! tree every time the guest starts, so that each boot of a guest has its own randomness
//! (Linux credits the seed and initialises its random number generator at once, and places
//! its kernel at a random address).
//!
//! Invariants: the generator's state never leaves this module; a guest's seed is written
//! into that guest's own RAM only. Without a seed from the board the kernel has no entropy
//! to give: it then removes the properties from the guest's tree (as `FDT_NOP`s) rather than
//! hand out predictable bytes a guest would trust.

use crate::cellmem::CellRam;
use kcore::chacha::Generator;
use spin::Mutex;

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

/// Seeds the generator with `seed` (from [`crate::platform::Platform`]). Boot core, once.
pub fn seed(seed: [u8; 32]) {
    *GENERATOR.lock() = Some(Generator::new(seed));
}

/// Fills `out` with fresh random bytes; false (and `out` untouched) if the board gave no seed.
fn fill(out: &mut [u8]) -> bool {
    match GENERATOR.lock().as_mut() {
        Some(generator) => {
            generator.fill(out);
            true
        }
        None => false,
    }
}

/// Gives the guest whose pristine device tree is `tree` (as `cellvisor build` wrote it) and
/// which was just loaded into `ram` with that tree at `tree_ipa`, the randomness of this
/// boot: fills its `/chosen/rng-seed` and `kaslr-seed` or, without a seed from the board,
/// removes them.
pub fn seed_guest(tree: &[u8], ram: &CellRam, tree_ipa: u64) {
    for property in kcore::boot_seed::guest_seed_properties(tree)
        .into_iter()
        .flatten()
    {
        let (offset, len) = property.value;
        let mut bytes = [0u8; abi::image::GUEST_RNG_SEED_BYTES];
        let Some(bytes) = bytes.get_mut(..len) else {
            continue;
        };
        if fill(bytes) {
            ram.write(tree_ipa + offset as u64, bytes);
            continue;
        }
        let (start, len) = property.whole;
        for word in (start..start + len).step_by(4) {
            let nop = kcore::boot_seed::FDT_NOP.to_be_bytes();
            ram.write(tree_ipa + word as u64, &nop);
        }
    }
}
