//! Boot randomness in device trees: folding the seeds the board's tree carries into the
//! kernel generator's seed, and finding the seed properties of a guest's tree that the
//! kernel fills (or removes) at every start of the guest.
//!
//! A guest's tree comes from `cellvisor build` with `/chosen/rng-seed` and `kaslr-seed`
//! present and zeroed ([`abi::image::GUEST_SEED_PROPERTIES`]). Removing a property from a
//! flattened tree without moving anything means overwriting it (token, header and padded
//! value) with `FDT_NOP` tokens, which every reader skips (devicetree specification 5.4.1).
//!
//! Nothing here panics, whatever the bytes.

use fdt::Fdt;

/// The token that starts a property, and the one every reader skips.
pub const FDT_PROP: u32 = 3;
/// See [`FDT_PROP`].
pub const FDT_NOP: u32 = 4;

/// A seed property's place in a tree (byte offsets from the tree's start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedProperty {
    /// Where its value starts and how long it is: where fresh randomness goes.
    pub value: (usize, usize),
    /// Where the property starts (its `FDT_PROP` token) and how many bytes it takes with
    /// its padded value: what `FDT_NOP`s overwrite to remove it.
    pub whole: (usize, usize),
}

/// The seed properties of `/chosen` in `tree`, in the order of
/// [`abi::image::GUEST_SEED_PROPERTIES`]; `None` for one the tree lacks (or an invalid tree).
pub fn guest_seed_properties(tree: &[u8]) -> [Option<SeedProperty>; 2] {
    let parsed = Fdt::new(tree).ok();
    let chosen = parsed
        .as_ref()
        .and_then(|parsed| parsed.find_node("/chosen"));
    abi::image::GUEST_SEED_PROPERTIES.map(|name| {
        let value = chosen.as_ref()?.property(name)?.value;
        let offset = (value.as_ptr() as usize).checked_sub(tree.as_ptr() as usize)?;
        let start = offset.checked_sub(12)?;
        let token = tree.get(start..start + 4)?;
        (token == FDT_PROP.to_be_bytes()).then_some(SeedProperty {
            value: (offset, value.len()),
            whole: (start, 12 + value.len().div_ceil(4) * 4),
        })
    })
}

/// The seeds of a board's tree (`/chosen/rng-seed` and `kaslr-seed`, as `parts`) folded into
/// 32 bytes (XOR by position); `None` if there are none or they are all zero.
pub fn fold_board_seeds<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Option<[u8; 32]> {
    let mut seed = [0u8; 32];
    for (index, &byte) in parts.into_iter().flatten().enumerate() {
        seed[index % seed.len()] ^= byte;
    }
    seed.iter().any(|&byte| byte != 0).then_some(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_fdt::FdtWriter;

    fn guest_tree(with_seeds: bool) -> Vec<u8> {
        let mut writer = FdtWriter::new().unwrap();
        let root = writer.begin_node("").unwrap();
        let chosen = writer.begin_node("chosen").unwrap();
        writer
            .property_string("bootargs", "console=ttyAMA0")
            .unwrap();
        if with_seeds {
            writer
                .property("rng-seed", &[0; abi::image::GUEST_RNG_SEED_BYTES])
                .unwrap();
            writer.property_u64("kaslr-seed", 0).unwrap();
        }
        writer
            .property_string("stdout-path", "/pl011@9000000")
            .unwrap();
        writer.end_node(chosen).unwrap();
        writer.end_node(root).unwrap();
        writer.finish().unwrap()
    }

    #[test]
    fn finds_the_zeroed_seeds_of_a_guest_tree() {
        let tree = guest_tree(true);
        let [rng, kaslr] = guest_seed_properties(&tree);
        let (rng, kaslr) = (rng.unwrap(), kaslr.unwrap());
        assert_eq!(rng.value.1, abi::image::GUEST_RNG_SEED_BYTES);
        assert_eq!(kaslr.value.1, 8);
        for property in [rng, kaslr] {
            let (offset, len) = property.value;
            assert!(tree[offset..offset + len].iter().all(|&byte| byte == 0));
            assert_eq!(tree[property.whole.0..][..4], FDT_PROP.to_be_bytes());
        }
    }

    #[test]
    fn filled_seeds_read_back_and_removed_ones_vanish() {
        let mut tree = guest_tree(true);
        let [rng, kaslr] = guest_seed_properties(&tree).map(Option::unwrap);
        let (offset, len) = rng.value;
        tree[offset..offset + len].fill(0xa5);
        let (start, len) = kaslr.whole;
        for word in tree[start..start + len].chunks_mut(4) {
            word.copy_from_slice(&FDT_NOP.to_be_bytes());
        }
        let parsed = Fdt::new(&tree).unwrap();
        let chosen = parsed.find_node("/chosen").unwrap();
        assert!(chosen
            .property("rng-seed")
            .unwrap()
            .value
            .iter()
            .all(|&byte| byte == 0xa5));
        assert!(chosen.property("kaslr-seed").is_none());
        // The properties after the removed one are intact.
        assert_eq!(
            chosen.property("stdout-path").unwrap().as_str(),
            Some("/pl011@9000000")
        );
        assert_eq!(parsed.chosen().bootargs(), Some("console=ttyAMA0"));
    }

    #[test]
    fn trees_without_seeds_or_garbage_give_nothing() {
        assert_eq!(guest_seed_properties(&guest_tree(false)), [None, None]);
        assert_eq!(
            guest_seed_properties(&[0xd0, 0x0d, 0xfe, 0xed, 0, 0]),
            [None, None]
        );
        assert_eq!(guest_seed_properties(&[]), [None, None]);
    }

    #[test]
    fn board_seeds_fold_and_zeros_are_no_seed() {
        assert_eq!(fold_board_seeds([&[0u8; 32][..], &[0; 8]]), None);
        assert_eq!(fold_board_seeds([]), None);
        let rng: Vec<u8> = (1..=32).collect();
        let kaslr = [0xff; 8];
        let seed = fold_board_seeds([&rng[..], &kaslr[..]]).unwrap();
        assert_eq!(seed[0], 1 ^ 0xff);
        assert_eq!(seed[7], 8 ^ 0xff);
        assert_eq!(seed[8], 9);
        assert_eq!(seed[31], 32);
    }
}
