//! Changes to the board's device tree, for the tests of how the kernel copes with boards
//! other than QEMU's default: QEMU dumps the tree it would pass (`-machine …,dumpdtb=`),
//! one [`BoardTreeChange`] is applied to the dump, and the test boots with `-dtb`.
//!
//! Only the structure block changes, and only by moving or blanking whole nodes (their bytes
//! become `FDT_NOP` tokens), so the strings and every offset stay valid. The blob is also
//! cut to its contents: QEMU dumps 1 MiB and doubles a `-dtb` file's size when it loads it,
//! which would exceed the boot protocol's 2 MiB limit.

/// A change to QEMU's device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoardTreeChange {
    /// `/cpus` is deleted (left as `FDT_NOP` tokens, as loaders delete nodes).
    WithoutCpus,
    /// The boot CPU's node (`/cpus/cpu@0`) moves after the other cpu nodes.
    BootCpuLast,
}

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// One node of the structure block: its path depth, name and byte range (from its
/// `FDT_BEGIN_NODE` to just after its `FDT_END_NODE`), relative to the whole blob.
#[derive(Clone, Debug)]
struct Node {
    depth: usize,
    name: String,
    start: usize,
    end: usize,
}

fn word(blob: &[u8], at: usize) -> Result<u32, String> {
    blob.get(at..at + 4)
        .map(|bytes| u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        .ok_or_else(|| format!("device tree truncated at byte {at}"))
}

/// Every node of the tree, in structure-block order.
fn nodes(blob: &[u8]) -> Result<Vec<Node>, String> {
    if word(blob, 0)? != FDT_MAGIC {
        return Err("not a flattened device tree (bad magic)".into());
    }
    let mut at = word(blob, 8)? as usize;
    let mut open: Vec<usize> = Vec::new();
    let mut nodes: Vec<Node> = Vec::new();
    loop {
        match word(blob, at)? {
            FDT_BEGIN_NODE => {
                let name_start = at + 4;
                let length = blob[name_start..]
                    .iter()
                    .position(|&byte| byte == 0)
                    .ok_or("node name without its terminating NUL")?;
                let name = String::from_utf8_lossy(&blob[name_start..name_start + length]);
                open.push(nodes.len());
                nodes.push(Node {
                    depth: open.len() - 1,
                    name: name.into_owned(),
                    start: at,
                    end: 0,
                });
                at = (name_start + length + 1).next_multiple_of(4);
            }
            FDT_END_NODE => {
                let index = open.pop().ok_or("FDT_END_NODE without a node")?;
                at += 4;
                nodes[index].end = at;
            }
            FDT_PROP => {
                let length = word(blob, at + 4)? as usize;
                at = (at + 12 + length).next_multiple_of(4);
            }
            FDT_NOP => at += 4,
            FDT_END if open.is_empty() => return Ok(nodes),
            token => return Err(format!("unexpected token {token:#x} at byte {at}")),
        }
    }
}

/// Applies `change` to the device tree `blob`, and cuts it to its contents.
pub fn apply(blob: &mut Vec<u8>, change: BoardTreeChange) -> Result<(), String> {
    change_nodes(blob, change)?;
    // The header's blocks: memory reservations (offset 16), structure (8, size at 36) and
    // strings (12, size at 32); the reservations end with an all-zero entry.
    let reservations = word(blob, 16)? as usize;
    let mut reservations_end = reservations;
    while word(blob, reservations_end)? != 0 || word(blob, reservations_end + 12)? != 0 {
        reservations_end += 16;
    }
    let end = [
        reservations_end + 16,
        word(blob, 8)? as usize + word(blob, 36)? as usize,
        word(blob, 12)? as usize + word(blob, 32)? as usize,
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    if end > blob.len() {
        return Err("device tree blocks end beyond the blob".into());
    }
    blob.truncate(end);
    blob[4..8].copy_from_slice(&(end as u32).to_be_bytes());
    Ok(())
}

fn change_nodes(blob: &mut [u8], change: BoardTreeChange) -> Result<(), String> {
    let nodes = nodes(blob)?;
    let cpus = nodes
        .iter()
        .find(|node| node.depth == 1 && node.name == "cpus")
        .ok_or("the device tree has no /cpus")?;
    match change {
        BoardTreeChange::WithoutCpus => {
            for at in (cpus.start..cpus.end).step_by(4) {
                blob[at..at + 4].copy_from_slice(&FDT_NOP.to_be_bytes());
            }
        }
        BoardTreeChange::BootCpuLast => {
            let cpu_nodes: Vec<&Node> = nodes
                .iter()
                .filter(|node| node.depth == 2 && (cpus.start..cpus.end).contains(&node.start))
                .filter(|node| node.name.starts_with("cpu@"))
                .collect();
            let boot = cpu_nodes
                .iter()
                .find(|node| node.name == "cpu@0")
                .ok_or("the device tree has no /cpus/cpu@0")?;
            let last = cpu_nodes.last().ok_or("the device tree has no cpu nodes")?;
            if last.start == boot.start {
                return Err("cpu@0 is already the last cpu node".into());
            }
            // Rotating the bytes from cpu@0 to the end of the last cpu node moves cpu@0 there.
            blob[boot.start..last.end].rotate_left(boot.end - boot.start);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree with `/cpus` holding cpu@0 and cpu@1 (and a cpu-map), built by vm-fdt.
    fn tree() -> Vec<u8> {
        let mut writer = vm_fdt::FdtWriter::new().unwrap();
        let root = writer.begin_node("").unwrap();
        let cpus = writer.begin_node("cpus").unwrap();
        writer.property_u32("#address-cells", 1).unwrap();
        for id in 0..2 {
            let cpu = writer.begin_node(&format!("cpu@{id}")).unwrap();
            writer.property_u32("reg", id).unwrap();
            writer.end_node(cpu).unwrap();
        }
        let map = writer.begin_node("cpu-map").unwrap();
        writer.end_node(map).unwrap();
        writer.end_node(cpus).unwrap();
        let memory = writer.begin_node("memory@40000000").unwrap();
        writer.end_node(memory).unwrap();
        writer.end_node(root).unwrap();
        writer.finish().unwrap()
    }

    fn names(blob: &[u8]) -> Vec<String> {
        nodes(blob)
            .unwrap()
            .into_iter()
            .map(|node| node.name)
            .collect()
    }

    #[test]
    fn without_cpus_leaves_the_other_nodes() {
        let mut blob = tree();
        apply(&mut blob, BoardTreeChange::WithoutCpus).unwrap();
        assert_eq!(names(&blob), ["", "memory@40000000"]);
        assert!(blob.len() <= tree().len());
        assert_eq!(word(&blob, 4).unwrap() as usize, blob.len());
    }

    #[test]
    fn boot_cpu_last_moves_only_cpu0() {
        let mut blob = tree();
        apply(&mut blob, BoardTreeChange::BootCpuLast).unwrap();
        assert_eq!(
            names(&blob),
            ["", "cpus", "cpu@1", "cpu@0", "cpu-map", "memory@40000000"]
        );
        let nodes = nodes(&blob).unwrap();
        let cpu0 = nodes.iter().find(|node| node.name == "cpu@0").unwrap();
        // Its reg property (value 0) moved with it.
        assert_eq!(word(&blob, cpu0.end - 8).unwrap(), 0);
        assert!(apply(&mut blob, BoardTreeChange::BootCpuLast).is_err());
    }

    #[test]
    fn a_damaged_tree_is_an_error() {
        let mut blob = tree();
        blob[0] = 0;
        assert!(apply(&mut blob, BoardTreeChange::WithoutCpus).is_err());
        let mut blob = tree();
        blob.truncate(blob.len() / 2);
        assert!(apply(&mut blob, BoardTreeChange::WithoutCpus).is_err());
    }
}
