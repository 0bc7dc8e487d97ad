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
const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// Header offsets (bytes) of `totalsize`, `off_dt_struct` and `size_dt_struct`.
const TOTAL_SIZE_AT: usize = 4;
const STRUCTURE_OFFSET_AT: usize = 8;
const STRUCTURE_SIZE_AT: usize = 36;

/// Removes every `FDT_NOP` token from the structure block of the tree in `blob` and shrinks
/// the header's `size_dt_struct` to match. Returns how many were removed, or `None` (the
/// tree left as it was) if `blob` is not a well-formed tree.
pub fn remove_nops(blob: &mut [u8]) -> Option<usize> {
    if word(blob, 0)? != FDT_MAGIC {
        return None;
    }
    let total = (word(blob, TOTAL_SIZE_AT)? as usize).min(blob.len());
    let start = word(blob, STRUCTURE_OFFSET_AT)? as usize;
    let end = start.checked_add(word(blob, STRUCTURE_SIZE_AT)? as usize)?;
    if end > total {
        return None;
    }
    // A first pass only checks, so a malformed tree is never half rewritten.
    let removed = walk(blob, start, end, false)?;
    if removed > 0 {
        let written = walk(blob, start, end, true)?;
        debug_assert_eq!(written, removed);
        let size = u32::try_from(end - start - 4 * removed).ok()?;
        blob[STRUCTURE_SIZE_AT..STRUCTURE_SIZE_AT + 4].copy_from_slice(&size.to_be_bytes());
    }
    Some(removed)
}

/// Walks the tokens of `blob[start..end]` up to `FDT_END`, moving each one other than
/// `FDT_NOP` down over the removed ones if `compact`; returns how many `FDT_NOP` it met.
fn walk(blob: &mut [u8], start: usize, end: usize, compact: bool) -> Option<usize> {
    let (mut read, mut write, mut removed) = (start, start, 0);
    loop {
        let token = word(blob, read)?;
        let length = match token {
            FDT_BEGIN_NODE => {
                let name = blob.get(read + 4..end)?;
                aligned(4 + name.iter().position(|&byte| byte == 0)? + 1)?
            }
            FDT_PROP => aligned((word(blob, read + 4)? as usize).checked_add(12)?)?,
            FDT_END_NODE | FDT_NOP | FDT_END => 4,
            _ => return None,
        };
        let next = read.checked_add(length).filter(|&next| next <= end)?;
        if token == FDT_NOP {
            removed += 1;
        } else {
            if compact {
                blob.copy_within(read..next, write);
            }
            write += length;
        }
        read = next;
        if token == FDT_END {
            return Some(removed);
        }
    }
}

/// The big-endian word at byte `at`.
fn word(blob: &[u8], at: usize) -> Option<u32> {
    let bytes = blob.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// `length` rounded up to the structure block's 4-byte alignment.
fn aligned(length: usize) -> Option<usize> {
    Some(length.checked_add(3)? & !3)
}

#[cfg(test)]
mod tests;
