//! Repairs to the board's flattened device tree before the kernel parses it.
//!
//! The devicetree format lets a structure block hold `FDT_NOP` tokens anywhere between
//! other tokens; firmware and loaders leave them where they delete a node or a property
//! (QEMU's `-dtb` does, and so does U-Boot). The `fdt` crate the kernel parses with (0.1.5)
//! loses the nodes that follow some of them: with QEMU's `-dtb`, `/cpus` is not found.
//! [`remove_nops`] compacts the structure block in place so that no `FDT_NOP` is left.
//!
//! Invariant: the tree is changed only if the whole structure block is well formed (every
//! token known, every node name and property inside the block, an `FDT_END`); otherwise
//! nothing is written and the parser reports the tree as it is.

/// The header's magic number.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// Header offsets (bytes) of `off_dt_struct` and `size_dt_struct`.
const STRUCTURE_OFFSET_AT: usize = 8;
const STRUCTURE_SIZE_AT: usize = 36;

/// Removes every `FDT_NOP` token from the structure block of the tree in `blob` and shrinks
/// the header's `size_dt_struct` to match. Returns how many were removed, or `None` (the
/// tree left as it was) if `blob` is not a well-formed tree.
pub fn remove_nops(blob: &mut [u8]) -> Option<usize> {
    let start = word(blob, STRUCTURE_OFFSET_AT)? as usize;
    let end = start.checked_add(word(blob, STRUCTURE_SIZE_AT)? as usize)?;
    if word(blob, 0)? != FDT_MAGIC || end > blob.len() || end > word(blob, 4)? as usize {
        return None;
    }
    // The first pass only checks, so a malformed tree is never half rewritten.
    for compact in [false, true] {
        let (mut read, mut write, mut removed) = (start, start, 0);
        loop {
            let token = word(blob, read)?;
            let length = match token {
                FDT_BEGIN_NODE => 5 + blob.get(read + 4..end)?.iter().position(|&b| b == 0)?,
                FDT_PROP => (word(blob, read + 4)? as usize).checked_add(12)?,
                FDT_END_NODE | FDT_NOP | FDT_END => 4,
                _ => return None,
            };
            let next = read
                .checked_add(length.checked_add(3)? & !3)
                .filter(|&n| n <= end)?;
            if token == FDT_NOP {
                removed += 1;
            } else {
                if compact {
                    blob.copy_within(read..next, write);
                }
                write += next - read;
            }
            read = next;
            if token == FDT_END {
                break;
            }
        }
        if removed == 0 {
            return Some(0);
        }
        if compact {
            let size = u32::try_from(end - start - 4 * removed).ok()?.to_be_bytes();
            blob[STRUCTURE_SIZE_AT..STRUCTURE_SIZE_AT + 4].copy_from_slice(&size);
            return Some(removed);
        }
    }
    None
}

/// The big-endian word at byte `at`.
fn word(blob: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        blob.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests;
