use super::*;
use vm_fdt::FdtWriter;

/// A tree with a `cpus` node after `deleted`, a property loaders typically remove (its
/// value 0xdead_beef is unique), and after `gone`, a node they remove.
fn tree() -> Vec<u8> {
    let mut writer = FdtWriter::new().unwrap();
    let root = writer.begin_node("").unwrap();
    writer.property_u32("#address-cells", 2).unwrap();
    writer.property_u32("deleted", 0xdead_beef).unwrap();
    let gone = writer.begin_node("gone@0").unwrap();
    writer.property_string("status", "okay").unwrap();
    writer.end_node(gone).unwrap();
    let cpus = writer.begin_node("cpus").unwrap();
    let cpu = writer.begin_node("cpu@0").unwrap();
    writer.property_u32("reg", 0).unwrap();
    writer.end_node(cpu).unwrap();
    writer.end_node(cpus).unwrap();
    writer.end_node(root).unwrap();
    writer.finish().unwrap()
}

fn find(blob: &[u8], pattern: &[u8]) -> usize {
    blob.windows(pattern.len())
        .position(|window| window == pattern)
        .unwrap()
}

/// Overwrites `range` with FDT_NOP words, as libfdt's `fdt_nop_property`/`fdt_nop_node` do.
fn nop_out(blob: &mut [u8], range: core::ops::Range<usize>) {
    for at in range.step_by(4) {
        blob[at..at + 4].copy_from_slice(&FDT_NOP.to_be_bytes());
    }
}

fn structure(blob: &[u8]) -> &[u8] {
    let start = word(blob, STRUCTURE_OFFSET_AT).unwrap() as usize;
    &blob[start..start + word(blob, STRUCTURE_SIZE_AT).unwrap() as usize]
}

#[test]
fn removed_property_and_node_leave_no_nop_and_every_other_token() {
    let original = tree();
    let mut blob = original.clone();
    let value = find(&blob, &0xdead_beef_u32.to_be_bytes());
    let property = value - 12..value + 4;
    // The node: from its FDT_BEGIN_NODE ("gone@0" padded to 8 bytes) to its FDT_END_NODE.
    let name = find(&blob, b"gone@0");
    let status = find(&blob[name..], b"okay") + name;
    let node = name - 4..status + 8 + 4;
    assert_eq!(word(&blob, node.end - 4), Some(FDT_END_NODE));
    nop_out(&mut blob, property.clone());
    nop_out(&mut blob, node.clone());
    let nops = (property.len() + node.len()) / 4;

    assert_eq!(remove_nops(&mut blob), Some(nops));

    let mut expected = structure(&original).to_vec();
    let start = word(&original, STRUCTURE_OFFSET_AT).unwrap() as usize;
    expected.drain(node.start - start..node.end - start);
    expected.drain(property.start - start..property.end - start);
    assert_eq!(structure(&blob), &expected[..]);
    // The header and the strings block are as they were, but for the structure's size.
    assert_eq!(blob.len(), original.len());
    assert_eq!(blob[..STRUCTURE_SIZE_AT], original[..STRUCTURE_SIZE_AT]);
    let strings = word(&original, 12).unwrap() as usize;
    assert_eq!(blob[strings..], original[strings..]);
    // Compacted once, there is nothing left to do.
    assert_eq!(remove_nops(&mut blob), Some(0));
}

#[test]
fn a_tree_without_nops_is_untouched() {
    let original = tree();
    let mut blob = original.clone();
    assert_eq!(remove_nops(&mut blob), Some(0));
    assert_eq!(blob, original);
}

#[test]
fn malformed_trees_are_left_as_they_are() {
    let mut with_nop = tree();
    let value = find(&with_nop, &0xdead_beef_u32.to_be_bytes());
    nop_out(&mut with_nop, value - 12..value + 4);

    // An unknown token after the NOPs.
    let mut blob = with_nop.clone();
    let cpus = find(&blob, b"cpus") - 4;
    blob[cpus..cpus + 4].copy_from_slice(&7u32.to_be_bytes());
    let before = blob.clone();
    assert_eq!(remove_nops(&mut blob), None);
    assert_eq!(blob, before);

    // A property whose length runs past the structure block.
    let mut blob = with_nop.clone();
    let reg = find(&blob, b"cpu@0") + 8;
    assert_eq!(word(&blob, reg), Some(FDT_PROP));
    blob[reg + 4..reg + 8].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
    let before = blob.clone();
    assert_eq!(remove_nops(&mut blob), None);
    assert_eq!(blob, before);

    // No FDT_END inside the block (its size cut short), a bad magic, a short buffer.
    let mut blob = with_nop.clone();
    let size = word(&blob, STRUCTURE_SIZE_AT).unwrap() - 4;
    blob[STRUCTURE_SIZE_AT..STRUCTURE_SIZE_AT + 4].copy_from_slice(&size.to_be_bytes());
    let before = blob.clone();
    assert_eq!(remove_nops(&mut blob), None);
    assert_eq!(blob, before);
    let mut blob = with_nop.clone();
    blob[0] = 0;
    assert_eq!(remove_nops(&mut blob), None);
    assert_eq!(remove_nops(&mut with_nop[..20]), None);
}
