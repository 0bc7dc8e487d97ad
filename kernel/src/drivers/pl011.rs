//! The PL011 UART: the kernel console (transmit, polled).

use crate::arch::mmio::DeviceWindow;

const UARTDR: usize = 0x000;
const UARTFR: usize = 0x018;
const UARTCR: usize = 0x030;
const UARTFR_TXFF: u32 = 1 << 5;
const UARTCR_ENABLE_TX_RX: u32 = (1 << 0) | (1 << 8) | (1 << 9);

/// A PL011 used for output.
#[derive(Clone, Copy, Debug)]
pub struct Pl011 {
    registers: DeviceWindow,
}

impl Pl011 {
    /// Takes the UART in `registers` and enables it (keeping the firmware's line settings).
    pub fn new(registers: DeviceWindow) -> Self {
        let uart = Self { registers };
        let control = uart.registers.read32(UARTCR);
        uart.registers
            .write32(UARTCR, control | UARTCR_ENABLE_TX_RX);
        uart
    }

    /// Writes one byte, waiting while the transmit FIFO is full.
    pub fn write_byte(&self, byte: u8) {
        while self.registers.read32(UARTFR) & UARTFR_TXFF != 0 {
            core::hint::spin_loop();
        }
        self.registers.write32(UARTDR, byte as u32);
    }

    /// Writes `bytes`, turning `\n` into `\r\n`.
    pub fn write_bytes(&self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
    }
}

impl core::fmt::Write for Pl011 {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        self.write_bytes(text.as_bytes());
        Ok(())
    }
}
