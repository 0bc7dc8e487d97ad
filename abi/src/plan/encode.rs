#![cfg(any(test, feature = "host"))]
//! Encoding a plan: used by the host tools only (the `host` feature), so none of it is
//! in the kernel. The records are checked the way [`Plan::decode`] checks them (the encoder
//! ends by decoding what it wrote), so an encoded plan always decodes.

use super::*;

/// Everything a plan holds, borrowed, for encoding.
#[derive(Clone, Copy, Debug)]
pub struct PlanParts<'a> {
    /// Board RAM base the plan was laid out for.
    pub ram_base: u64,
    /// Board RAM size the plan was laid out for.
    pub ram_size: u64,
    /// Cores the plan uses.
    pub core_count: u8,
    /// Bytes from the plan's start to the end of the last cell image.
    pub payload_len: u64,
    /// Cells, in description order.
    pub cells: &'a [CellRecord],
    /// Regions of all cells.
    pub regions: &'a [RegionRecord],
    /// IRQ assignments.
    pub irqs: &'a [IrqRecord],
    /// Channels.
    pub channels: &'a [ChannelRecord],
    /// IPC endpoints.
    pub endpoints: &'a [EndpointRecord],
    /// Notifications.
    pub notifications: &'a [NotificationRecord],
    /// Every cell's capabilities, cell after cell (see [`CellRecord::first_capability`]).
    pub capabilities: &'a [CapabilityRecord],
}

impl PlanParts<'_> {
    /// How many records of each kind the parts hold.
    pub fn counts(&self) -> Counts {
        Counts {
            cells: self.cells.len(),
            regions: self.regions.len(),
            irqs: self.irqs.len(),
            channels: self.channels.len(),
            endpoints: self.endpoints.len(),
            notifications: self.notifications.len(),
            capabilities: self.capabilities.len(),
        }
    }
}

/// Encodes `parts` into `out`, returning the plan's length. The records are checked the
/// same way [`Plan::decode`] checks them, so an encoded plan always decodes.
pub fn encode(parts: &PlanParts<'_>, out: &mut [u8]) -> Result<usize, PlanError> {
    let counts = parts.counts();
    counts.check()?;
    let len = counts.encoded_len();
    let out = out
        .get_mut(..len)
        .ok_or(PlanError::BufferTooSmall { needed: len })?;
    out.fill(0);
    let mut w = Writer { buf: out, pos: 0 };
    w.bytes(&MAGIC);
    w.u16(VERSION);
    w.u16(HEADER_LEN as u16);
    w.u32(len as u32);
    w.u32(0); // checksum, filled below
    w.u16(parts.cells.len() as u16);
    w.u16(parts.regions.len() as u16);
    w.u16(parts.irqs.len() as u16);
    w.u16(parts.channels.len() as u16);
    w.u8(parts.core_count);
    w.pos = 32;
    w.u64(parts.ram_base);
    w.u64(parts.ram_size);
    w.u64(parts.payload_len);
    w.u16(parts.endpoints.len() as u16);
    w.u16(parts.notifications.len() as u16);
    w.u16(parts.capabilities.len() as u16);
    w.pos = HEADER_LEN;
    for cell in parts.cells {
        let start = w.pos;
        w.bytes(&cell.name);
        w.u8(cell.kind as u8);
        w.u8(cell.priority);
        w.u8(cell.vcpu_count);
        w.u8(cell.fault_policy as u8);
        w.u8(cell.restart_limit);
        w.u8(cell.flags.0);
        w.u16(cell.supervisor);
        w.bytes(&cell.vcpu_cores);
        w.u16(cell.first_region);
        w.u16(cell.region_count);
        w.u32(cell.image_offset);
        w.u32(cell.image_size);
        w.u32(cell.controls);
        w.u64(cell.entry_ipa);
        w.u64(cell.load_ipa);
        w.u32(cell.budget_us);
        w.u32(cell.period_us);
        w.u16(cell.first_capability);
        w.u16(cell.capability_count);
        w.pos = start + CELL_RECORD_LEN;
    }
    for region in parts.regions {
        let start = w.pos;
        w.u64(region.ipa);
        w.u64(region.pa);
        w.u64(region.size);
        w.u8(region.kind as u8);
        w.u8(region.rights.0);
        w.pos = start + REGION_RECORD_LEN;
    }
    for irq in parts.irqs {
        w.u32(irq.intid);
        w.u16(irq.cell);
        w.u8(irq.vcpu);
        w.u8(0);
    }
    for channel in parts.channels {
        w.u16(channel.from);
        w.u16(channel.to);
        w.u32(0);
    }
    for endpoint in parts.endpoints {
        w.u16(endpoint.server);
        w.u16(0);
    }
    for notification in parts.notifications {
        w.u16(notification.waiter);
        w.u16(notification.virtual_irq);
        w.u8(notification.vcpu);
        w.bytes(&[0; 3]);
    }
    for capability in parts.capabilities {
        w.u8(capability.kind as u8);
        w.u8(capability.rights);
        w.u16(0);
        w.u32(capability.object);
        w.u32(capability.badge);
    }
    let checksum = crc32(out);
    out[16..20].copy_from_slice(&checksum.to_le_bytes());
    // Encoding and decoding share one set of record checks.
    Plan::decode(out)?;
    Ok(len)
}

struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, v: &[u8]) {
        self.buf[self.pos..self.pos + v.len()].copy_from_slice(v);
        self.pos += v.len();
    }
    fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
}
