//! The PL011 UART: the kernel console (transmit polled, receive by interrupt).

use crate::arch::mmio::DeviceWindow;

const UARTDR: usize = 0x000;
const UARTFR: usize = 0x018;
const UARTCR: usize = 0x030;
const UARTIMSC: usize = 0x038;
const UARTFR_TXFF: u32 = 1 << 5;
const UARTFR_RXFE: u32 = 1 << 4;
/// Receive and receive-timeout interrupts (UARTIMSC bits).
const RECEIVE_INTERRUPTS: u32 = (1 << 4) | (1 << 6);
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

    /// Interrupts when input arrives (receive and receive timeout).
    // Out of line: one copy for the console's three places.
    #[inline(never)]
    pub fn enable_receive_interrupt(&self) {
        let mask = self.registers.read32(UARTIMSC);
        self.registers.write32(UARTIMSC, mask | RECEIVE_INTERRUPTS);
    }

    /// Stops interrupting for input (it stays in the FIFO, and QEMU holds back the rest).
    pub fn disable_receive_interrupt(&self) {
        let mask = self.registers.read32(UARTIMSC);
        self.registers.write32(UARTIMSC, mask & !RECEIVE_INTERRUPTS);
    }

    /// The next received byte, if any. Reading the FIFO empty is what ends the receive and
    /// receive-timeout interrupts; clearing them through UARTICR instead could clear the
    /// interrupt of a byte that arrived just after the FIFO was seen empty, and lose it.
    pub fn read_byte(&self) -> Option<u8> {
        if self.registers.read32(UARTFR) & UARTFR_RXFE != 0 {
            return None;
        }
        Some(self.registers.read32(UARTDR) as u8)
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
