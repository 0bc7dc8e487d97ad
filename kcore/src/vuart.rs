//! An emulated Arm PL011 UART for a guest cell: enough for Linux's `amba-pl011` driver and
//! its `earlycon`.
//!
//! This module owns the UART's register state. Output is immediate: a write to `UARTDR`
//! hands the byte to the caller's sink, so the transmit FIFO is always empty (`TXFE` set,
//! `TXFF` and `BUSY` clear). Input comes from [`Pl011::push_input`] into a
//! [`INPUT_CAPACITY`]-byte receive FIFO; a byte pushed into a full FIFO is dropped and sets
//! the overrun interrupt.
//!
//! Interrupts are modelled as levels: `TXRIS` is set while the transmitter is enabled (the
//! FIFO is always empty), `RXRIS` while the receive FIFO holds at least its trigger level
//! (one byte with FIFOs disabled), `RTRIS` while it holds anything (input arrives all at
//! once, so the receive timeout has always expired). Writing `UARTICR` clears only the
//! latched overrun bit; the level conditions end when their cause ends (the guest drains
//! the FIFO or masks the interrupt). [`Pl011::interrupt_level`] says whether the UART's
//! interrupt line is high (`UARTMIS != 0`); the kernel raises or lowers the guest's SPI.
//!
//! Invariants: no value written by the guest can panic the model; every register keeps
//! only its implemented bits.

/// Data register.
pub const UARTDR: u64 = 0x000;
/// Receive status / error clear register.
pub const UARTRSR: u64 = 0x004;
/// Flag register.
pub const UARTFR: u64 = 0x018;
/// IrDA low-power counter register.
pub const UARTILPR: u64 = 0x020;
/// Integer baud rate divisor.
pub const UARTIBRD: u64 = 0x024;
/// Fractional baud rate divisor.
pub const UARTFBRD: u64 = 0x028;
/// Line control register.
pub const UARTLCR_H: u64 = 0x02c;
/// Control register.
pub const UARTCR: u64 = 0x030;
/// Interrupt FIFO level select.
pub const UARTIFLS: u64 = 0x034;
/// Interrupt mask set/clear.
pub const UARTIMSC: u64 = 0x038;
/// Raw interrupt status.
pub const UARTRIS: u64 = 0x03c;
/// Masked interrupt status.
pub const UARTMIS: u64 = 0x040;
/// Interrupt clear (write only).
pub const UARTICR: u64 = 0x044;
/// DMA control.
pub const UARTDMACR: u64 = 0x048;
/// First peripheral identification register; four PeriphID then four CellID follow.
pub const PERIPHERAL_ID_0: u64 = 0xfe0;

/// Flag: UART busy transmitting.
pub const FR_BUSY: u32 = 1 << 3;
/// Flag: receive FIFO empty.
pub const FR_RXFE: u32 = 1 << 4;
/// Flag: transmit FIFO full.
pub const FR_TXFF: u32 = 1 << 5;
/// Flag: receive FIFO full.
pub const FR_RXFF: u32 = 1 << 6;
/// Flag: transmit FIFO empty.
pub const FR_TXFE: u32 = 1 << 7;

/// Interrupt bit: receive.
pub const INTERRUPT_RX: u32 = 1 << 4;
/// Interrupt bit: transmit.
pub const INTERRUPT_TX: u32 = 1 << 5;
/// Interrupt bit: receive timeout.
pub const INTERRUPT_RECEIVE_TIMEOUT: u32 = 1 << 6;
/// Interrupt bit: overrun.
pub const INTERRUPT_OVERRUN: u32 = 1 << 10;
const INTERRUPT_MASK: u32 = 0x7ff;

/// Control: UART enable.
pub const CR_UARTEN: u32 = 1 << 0;
/// Control: transmit enable.
pub const CR_TXE: u32 = 1 << 8;
/// Control: receive enable.
pub const CR_RXE: u32 = 1 << 9;
/// Line control: FIFOs enabled.
pub const LCR_H_FEN: u32 = 1 << 4;

/// Bytes the receive FIFO holds (a PL011's FIFO depth).
pub const INPUT_CAPACITY: usize = 32;

/// PeriphID0–3 (PL011 r1p5) and CellID0–3 (PrimeCell), at 0xFE0–0xFFC.
const IDENTIFICATION: [u32; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

const CR_RESET: u32 = CR_TXE | CR_RXE;
const IFLS_RESET: u32 = 0x12;

/// One emulated PL011.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pl011 {
    input: [u8; INPUT_CAPACITY],
    /// Index of the oldest byte in `input`.
    input_head: usize,
    /// Bytes in `input`.
    input_count: usize,
    integer_divisor: u32,
    fractional_divisor: u32,
    line_control: u32,
    control: u32,
    fifo_levels: u32,
    interrupt_mask: u32,
    dma_control: u32,
    /// Latched interrupt bits (only overrun); the others are levels.
    latched: u32,
    ilpr: u32,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    /// A UART in its reset state.
    pub const fn new() -> Self {
        Pl011 {
            input: [0; INPUT_CAPACITY],
            input_head: 0,
            input_count: 0,
            integer_divisor: 0,
            fractional_divisor: 0,
            line_control: 0,
            control: CR_RESET,
            fifo_levels: IFLS_RESET,
            interrupt_mask: 0,
            dma_control: 0,
            latched: 0,
            ilpr: 0,
        }
    }

    /// Queues a received byte. Returns false (and latches the overrun interrupt) if the
    /// receive FIFO is full; the byte is then dropped.
    pub fn push_input(&mut self, byte: u8) -> bool {
        if self.input_count >= INPUT_CAPACITY {
            self.latched |= INTERRUPT_OVERRUN;
            return false;
        }
        let tail = (self.input_head + self.input_count) % INPUT_CAPACITY;
        if let Some(slot) = self.input.get_mut(tail) {
            *slot = byte;
            self.input_count += 1;
        }
        true
    }

    /// Bytes waiting in the receive FIFO.
    pub const fn input_len(&self) -> usize {
        self.input_count
    }

    /// Raw interrupt status (`UARTRIS`).
    pub fn raw_interrupts(&self) -> u32 {
        let mut status = self.latched;
        if self.control & CR_TXE != 0 {
            status |= INTERRUPT_TX;
        }
        if self.input_count > 0 {
            status |= INTERRUPT_RECEIVE_TIMEOUT;
        }
        if self.input_count >= self.receive_trigger() {
            status |= INTERRUPT_RX;
        }
        status
    }

    /// Whether the UART's interrupt line is high (some unmasked interrupt is raised).
    pub fn interrupt_level(&self) -> bool {
        self.raw_interrupts() & self.interrupt_mask != 0
    }

    /// A guest read of `size` bytes at `offset` in the UART's 4 KiB window. Narrow reads
    /// return the addressed bytes of the containing 32-bit register; reading `UARTDR`
    /// takes the oldest received byte.
    pub fn read(&mut self, offset: u64, size: u8) -> u64 {
        let register = offset & !3;
        let value = match register {
            UARTDR => self.pop_input().map_or(0, u32::from),
            UARTRSR => 0,
            UARTFR => self.flags(),
            UARTILPR => self.ilpr,
            UARTIBRD => self.integer_divisor,
            UARTFBRD => self.fractional_divisor,
            UARTLCR_H => self.line_control,
            UARTCR => self.control,
            UARTIFLS => self.fifo_levels,
            UARTIMSC => self.interrupt_mask,
            UARTRIS => self.raw_interrupts(),
            UARTMIS => self.raw_interrupts() & self.interrupt_mask,
            UARTDMACR => self.dma_control,
            0xfe0..=0xffc => {
                let index = ((register - PERIPHERAL_ID_0) / 4) as usize;
                IDENTIFICATION.get(index).copied().unwrap_or(0)
            }
            _ => 0,
        };
        let shifted = u64::from(value) >> ((offset & 3) * 8);
        shifted & crate::mmio::size_mask(size)
    }

    /// A guest write of `value` at `offset`; a byte written to `UARTDR` goes to `output`.
    /// Returns false if the offset is not a writable register (the write is ignored).
    pub fn write(&mut self, offset: u64, value: u64, output: &mut dyn FnMut(u8)) -> bool {
        if offset & 3 != 0 {
            return false;
        }
        let value = value as u32;
        match offset {
            UARTDR => output(value as u8),
            UARTRSR => {}
            UARTILPR => self.ilpr = value & 0xff,
            UARTIBRD => self.integer_divisor = value & 0xffff,
            UARTFBRD => self.fractional_divisor = value & 0x3f,
            UARTLCR_H => self.line_control = value & 0xff,
            UARTCR => self.control = value & 0xff87,
            UARTIFLS => self.fifo_levels = value & 0x3f,
            UARTIMSC => self.interrupt_mask = value & INTERRUPT_MASK,
            UARTICR => self.latched &= !value,
            UARTDMACR => self.dma_control = value & 0x7,
            _ => return false,
        }
        true
    }

    /// Back to the reset state, dropping queued input.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    fn flags(&self) -> u32 {
        let mut flags = FR_TXFE;
        if self.input_count == 0 {
            flags |= FR_RXFE;
        }
        if self.input_count >= self.fifo_depth() {
            flags |= FR_RXFF;
        }
        flags
    }

    /// Receive FIFO depth as the guest sees it: 1 with FIFOs disabled.
    fn fifo_depth(&self) -> usize {
        if self.line_control & LCR_H_FEN == 0 {
            1
        } else {
            INPUT_CAPACITY
        }
    }

    /// Bytes in the receive FIFO that raise `RXRIS` (`UARTIFLS.RXIFLSEL`).
    fn receive_trigger(&self) -> usize {
        if self.line_control & LCR_H_FEN == 0 {
            return 1;
        }
        // RXIFLSEL 0-3: 1/8, 1/4, 1/2, 3/4 full; 7/8 for 4 (and the reserved 5-7).
        let level = ((self.fifo_levels >> 3) & 0x7) as usize;
        let eighths = [1, 2, 4, 6].get(level).copied().unwrap_or(7);
        INPUT_CAPACITY * eighths / 8
    }

    fn pop_input(&mut self) -> Option<u8> {
        if self.input_count == 0 {
            return None;
        }
        let byte = self.input.get(self.input_head).copied();
        self.input_head = (self.input_head + 1) % INPUT_CAPACITY;
        self.input_count -= 1;
        byte
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(uart: &mut Pl011, offset: u64, value: u64, sink: &mut [u8; 16], len: &mut usize) {
        uart.write(offset, value, &mut |byte| {
            if let Some(slot) = sink.get_mut(*len) {
                *slot = byte;
                *len += 1;
            }
        });
    }

    #[test]
    fn identification_registers() {
        let mut uart = Pl011::new();
        let ids: Vec<u64> = (0..8).map(|i| uart.read(0xfe0 + i * 4, 4)).collect();
        assert_eq!(ids, [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
        assert_eq!(uart.read(0xffd, 1), 0);
        assert_eq!(uart.read(0x1000, 4), 0);
        assert_eq!(uart.read(u64::MAX, 8), 0);
    }

    #[test]
    fn earlycon_transmits_bytes_and_sees_an_empty_fifo() {
        let mut uart = Pl011::new();
        let (mut sink, mut len) = ([0u8; 16], 0);
        for byte in b"ok\n" {
            assert_eq!(uart.read(UARTFR, 4) & u64::from(FR_TXFF | FR_BUSY), 0);
            collect(
                &mut uart,
                UARTDR,
                u64::from(*byte) | 0xff00,
                &mut sink,
                &mut len,
            );
        }
        assert_eq!(&sink[..len], b"ok\n");
        let flags = uart.read(UARTFR, 4) as u32;
        assert_eq!(flags, FR_TXFE | FR_RXFE);
        // A byte-wide read of the flags, as `readb` does.
        assert_eq!(uart.read(UARTFR, 1) as u32, FR_TXFE | FR_RXFE);
        // Unaligned writes are refused and emit nothing.
        collect(&mut uart, UARTDR + 1, 0x41, &mut sink, &mut len);
        assert_eq!(len, 3);
    }

    #[test]
    fn configuration_registers_keep_their_bits() {
        let mut uart = Pl011::new();
        assert_eq!(uart.read(UARTCR, 4) as u32, CR_TXE | CR_RXE);
        assert_eq!(uart.read(UARTIFLS, 4), 0x12);
        let mut ignore = |_| {};
        for (offset, written, kept) in [
            (UARTIBRD, 0xffff_ffff, 0xffff),
            (UARTFBRD, 0xff, 0x3f),
            (UARTLCR_H, 0x170, 0x70),
            (UARTCR, 0xffff_ffff, 0xff87),
            (UARTIFLS, 0xff, 0x3f),
            (UARTIMSC, 0xffff, 0x7ff),
            (UARTDMACR, 0xf, 0x7),
        ] {
            assert!(uart.write(offset, written, &mut ignore));
            assert_eq!(uart.read(offset, 4), kept, "offset {offset:#x}");
        }
        assert!(!uart.write(0x800, 1, &mut ignore));
        assert!(!uart.write(UARTFR, 0, &mut ignore));
        uart.reset();
        assert_eq!(uart, Pl011::new());
    }

    #[test]
    fn transmit_interrupt_follows_enable_and_mask() {
        let mut uart = Pl011::new();
        let mut ignore = |_| {};
        assert!(!uart.interrupt_level());
        uart.write(UARTIMSC, u64::from(INTERRUPT_TX), &mut ignore);
        assert!(uart.interrupt_level());
        assert_eq!(uart.read(UARTMIS, 4) as u32, INTERRUPT_TX);
        // Linux stops transmitting by masking TX; the level then drops.
        uart.write(UARTIMSC, 0, &mut ignore);
        assert!(!uart.interrupt_level());
        // Transmitter disabled: no TX interrupt.
        uart.write(UARTCR, u64::from(CR_UARTEN | CR_RXE), &mut ignore);
        uart.write(UARTIMSC, u64::from(INTERRUPT_TX), &mut ignore);
        assert!(!uart.interrupt_level());
        assert_eq!(uart.read(UARTRIS, 4), 0);
    }

    #[test]
    fn receive_with_and_without_fifos() {
        let mut uart = Pl011::new();
        let mut ignore = |_| {};
        uart.write(UARTCR, u64::from(CR_UARTEN | CR_TXE | CR_RXE), &mut ignore);
        uart.write(
            UARTIMSC,
            u64::from(INTERRUPT_RX | INTERRUPT_RECEIVE_TIMEOUT),
            &mut ignore,
        );
        assert!(!uart.interrupt_level());
        assert!(uart.push_input(b'a'));
        // FIFOs disabled: one byte reaches the trigger and fills the holding register.
        assert!(uart.interrupt_level());
        assert_eq!(
            uart.read(UARTRIS, 4) as u32,
            INTERRUPT_TX | INTERRUPT_RX | INTERRUPT_RECEIVE_TIMEOUT
        );
        assert_ne!(uart.read(UARTFR, 4) as u32 & FR_RXFF, 0);
        assert_eq!(uart.read(UARTDR, 4), u64::from(b'a'));
        assert!(!uart.interrupt_level());
        assert_eq!(uart.read(UARTDR, 4), 0);

        // FIFOs enabled, trigger at 1/2 (16 bytes): below it only the timeout is raised.
        uart.write(UARTLCR_H, u64::from(LCR_H_FEN | 0x60), &mut ignore);
        for byte in 0..15u8 {
            assert!(uart.push_input(byte));
        }
        assert_eq!(uart.read(UARTMIS, 4) as u32, INTERRUPT_RECEIVE_TIMEOUT);
        assert!(uart.push_input(15));
        assert_eq!(
            uart.read(UARTMIS, 4) as u32,
            INTERRUPT_RX | INTERRUPT_RECEIVE_TIMEOUT
        );
        for expected in 0..16u64 {
            assert_eq!(uart.read(UARTDR, 4), expected);
        }
        assert_ne!(uart.read(UARTFR, 4) as u32 & FR_RXFE, 0);
        assert!(!uart.interrupt_level());
    }

    #[test]
    fn overrun_is_latched_until_cleared() {
        let mut uart = Pl011::new();
        let mut ignore = |_| {};
        uart.write(UARTLCR_H, u64::from(LCR_H_FEN), &mut ignore);
        for byte in 0..INPUT_CAPACITY as u8 {
            assert!(uart.push_input(byte));
        }
        assert!(!uart.push_input(0xff));
        assert_eq!(uart.input_len(), INPUT_CAPACITY);
        assert_ne!(uart.read(UARTRIS, 4) as u32 & INTERRUPT_OVERRUN, 0);
        uart.write(UARTIMSC, u64::from(INTERRUPT_OVERRUN), &mut ignore);
        assert!(uart.interrupt_level());
        uart.write(UARTICR, 0x7ff, &mut ignore);
        assert!(!uart.interrupt_level());
        // The dropped byte never appears; the ring wraps correctly.
        assert_eq!(uart.read(UARTDR, 4), 0);
        assert!(uart.push_input(0xaa));
        for expected in 1..INPUT_CAPACITY as u64 {
            assert_eq!(uart.read(UARTDR, 4), expected);
        }
        assert_eq!(uart.read(UARTDR, 4), 0xaa);
        assert_eq!(uart.input_len(), 0);
    }
}
