//! Device-model messages: how the kernel hands a guest's access to a virtual device window
//! to the native cell that models the device, and how that cell completes it.
//!
//! A guest cell's virtio-mmio slot *i* (IPA [`VIRTIO_MMIO_BASE`] + *i* × [`VIRTIO_MMIO_SIZE`],
//! SPI [`VIRTIO_MMIO_FIRST_SPI`] + *i*) is served through the guest's capability slot *i*
//! when that slot holds an endpoint call capability. A load or store by the guest in that
//! window blocks the guest's vCPU and becomes an IPC call on the endpoint, made by the kernel
//! on the vCPU's behalf: the server receives the capability's badge and an [`Access`]
//! encoded in the four message words ([`Access::encode`]). Its reply's word 0 is the value a
//! load returns (truncated to the access size by the kernel); the reply to a store is
//! ignored. The guest's vCPU then resumes after the instruction.
//!
//! If the device-model cell faults, stops or restarts while it holds the access, or is
//! stopped when the access is made, the access still completes: a load returns all ones
//! (as a bus with nothing behind it would) and a store is dropped. A slot with no endpoint
//! capability reads as zero and ignores stores, so a guest probing an empty slot finds no
//! device (virtio's magic value is missing).
//!
//! Invariant: [`Access::decode`] is total: any four words give an access with `size` 1, 2,
//! 4 or 8 and an offset inside one slot, or `None`.

/// IPA of a guest's first virtio-mmio slot (as on QEMU `virt`).
pub const VIRTIO_MMIO_BASE: u64 = 0x0a00_0000;
/// Size of one virtio-mmio slot's register window.
pub const VIRTIO_MMIO_SIZE: u64 = 0x200;
/// The SPI number (INTID − 32) of slot 0; slot *i* uses `VIRTIO_MMIO_FIRST_SPI + i`.
pub const VIRTIO_MMIO_FIRST_SPI: u32 = 16;
/// Most virtio-mmio slots a guest may have (INTIDs 48..=79).
pub const MAX_VIRTIO_MMIO: u8 = 32;

/// The INTID a guest sees for virtio-mmio slot `slot`.
#[cfg(test)]
pub const fn virtio_intid(slot: u8) -> u32 {
    32 + VIRTIO_MMIO_FIRST_SPI + slot as u32
}

/// One guest load or store in a device window, as the device model receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Byte offset from the start of the slot's window (below [`VIRTIO_MMIO_SIZE`]).
    pub offset: u16,
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// For a store, the value stored (already truncated to `size` bytes); `None` for a load.
    pub write: Option<u64>,
    /// The guest vCPU that made the access.
    pub vcpu: u8,
}

/// Bit of message word 0 that marks a store.
const WRITE_BIT: u64 = 1 << 40;

impl Access {
    /// The four message words: word 0 = offset | size << 32 | store << 40 | vCPU << 48,
    /// word 1 = the stored value (0 for a load), words 2 and 3 = 0.
    pub const fn encode(&self) -> [u64; 4] {
        let (write, value) = match self.write {
            Some(value) => (WRITE_BIT, value),
            None => (0, 0),
        };
        [
            self.offset as u64 | (self.size as u64) << 32 | write | (self.vcpu as u64) << 48,
            value,
            0,
            0,
        ]
    }

    /// Decodes the message words of a device-model call; `None` if they are not an access.
    pub fn decode(words: [u64; 4]) -> Option<Self> {
        let offset = (words[0] & 0xffff_ffff) as u16;
        let size = ((words[0] >> 32) & 0xff) as u8;
        if (words[0] & 0xffff_ffff) >= VIRTIO_MMIO_SIZE || !matches!(size, 1 | 2 | 4 | 8) {
            return None;
        }
        let mask = u64::MAX >> (64 - 8 * u32::from(size));
        Some(Self {
            offset,
            size,
            write: (words[0] & WRITE_BIT != 0).then_some(words[1] & mask),
            vcpu: (words[0] >> 48) as u8,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_round_trip() {
        for access in [
            Access {
                offset: 0x70,
                size: 4,
                write: Some(0xf),
                vcpu: 1,
            },
            Access {
                offset: 0,
                size: 4,
                write: None,
                vcpu: 0,
            },
            Access {
                offset: 0x1f8,
                size: 8,
                write: Some(u64::MAX),
                vcpu: 7,
            },
        ] {
            assert_eq!(Access::decode(access.encode()), Some(access));
        }
    }

    #[test]
    fn nonsense_is_refused() {
        assert_eq!(Access::decode([0x200 | 4 << 32, 0, 0, 0]), None);
        assert_eq!(Access::decode([3 << 32, 0, 0, 0]), None);
        assert_eq!(Access::decode([0, 0, 0, 0]), None);
        let store = Access::decode([1 << 32 | WRITE_BIT, 0x1ff, 0, 0]).unwrap();
        assert_eq!(store.write, Some(0xff));
    }

    #[test]
    fn intids_follow_the_slots() {
        assert_eq!(virtio_intid(0), 48);
        assert_eq!(virtio_intid(MAX_VIRTIO_MMIO - 1), 79);
    }
}
