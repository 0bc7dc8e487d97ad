//! Console input: which cell the bytes typed on the physical UART go to, and the key
//! sequence that moves that focus.
//!
//! Input goes to one guest cell at a time, the one with the *focus* (at boot, the first
//! guest cell). The escape key is Ctrl-T ([`ESCAPE`]); what follows it decides:
//! - `n` or Tab: the focus moves to the next guest cell (wrapping around);
//! - Ctrl-T: a literal Ctrl-T goes to the focused cell;
//! - `?`: nothing moves; the kernel says which cell has the focus and how to move it;
//! - anything else is dropped (a mistyped sequence does not reach the cell).
//!
//! (Ctrl-A is not used: QEMU's `-nographic` console keeps it for itself.)
//!
//! Invariants: [`Focus::key`] is total over every byte and every state; the focus is always
//! `None` or the index of a cell that accepts input.

/// The escape key: Ctrl-T.
pub const ESCAPE: u8 = 0x14;

/// What one typed byte does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAction {
    /// Deliver this byte to this cell.
    Deliver {
        /// The cell with the focus.
        cell: usize,
        /// The byte.
        byte: u8,
    },
    /// The focus moved to this cell (the kernel says so on the console).
    Focused(usize),
    /// Say which cell has the focus (`None`: no cell takes input).
    Tell(Option<usize>),
    /// Nothing (the escape key, a dropped sequence, or no cell takes input).
    Nothing,
}

/// The focus and the escape state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Focus {
    /// Bit *i*: cell *i* takes input (a guest cell).
    takers: u64,
    focused: Option<usize>,
    escaped: bool,
}

impl Focus {
    /// Input for the cells whose bits are set in `takers` (cells 0..64); the first has
    /// the focus.
    pub const fn new(takers: u64) -> Self {
        Self {
            takers,
            focused: if takers == 0 {
                None
            } else {
                Some(takers.trailing_zeros() as usize)
            },
            escaped: false,
        }
    }

    /// The cell with the focus, if any cell takes input.
    pub const fn focused(&self) -> Option<usize> {
        self.focused
    }

    /// One byte typed on the console.
    pub fn key(&mut self, byte: u8) -> KeyAction {
        if self.escaped {
            self.escaped = false;
            return match byte {
                b'n' | b'\t' => match self.next() {
                    Some(cell) => {
                        self.focused = Some(cell);
                        KeyAction::Focused(cell)
                    }
                    None => KeyAction::Tell(None),
                },
                b'?' => KeyAction::Tell(self.focused),
                ESCAPE => self.deliver(byte),
                _ => KeyAction::Nothing,
            };
        }
        if byte == ESCAPE {
            self.escaped = true;
            return KeyAction::Nothing;
        }
        self.deliver(byte)
    }

    fn deliver(&self, byte: u8) -> KeyAction {
        match self.focused {
            Some(cell) => KeyAction::Deliver { cell, byte },
            None => KeyAction::Nothing,
        }
    }

    /// The next cell after the focused one that takes input, wrapping around.
    fn next(&self) -> Option<usize> {
        if self.takers == 0 {
            return None;
        }
        let start = self.focused.map_or(0, |cell| cell + 1);
        (0..64)
            .map(|step| (start + step) % 64)
            .find(|&cell| self.takers & (1 << cell) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_go_to_the_first_taker() {
        let mut focus = Focus::new(0b1010);
        assert_eq!(focus.focused(), Some(1));
        assert_eq!(
            focus.key(b'x'),
            KeyAction::Deliver {
                cell: 1,
                byte: b'x'
            }
        );
    }

    #[test]
    fn escape_n_cycles_through_the_takers() {
        let mut focus = Focus::new(0b1010);
        assert_eq!(focus.key(ESCAPE), KeyAction::Nothing);
        assert_eq!(focus.key(b'n'), KeyAction::Focused(3));
        assert_eq!(
            focus.key(b'y'),
            KeyAction::Deliver {
                cell: 3,
                byte: b'y'
            }
        );
        assert_eq!(focus.key(ESCAPE), KeyAction::Nothing);
        assert_eq!(focus.key(b'\t'), KeyAction::Focused(1));
        // With one taker, the focus stays.
        let mut single = Focus::new(0b100);
        single.key(ESCAPE);
        assert_eq!(single.key(b'n'), KeyAction::Focused(2));
    }

    #[test]
    fn escape_twice_is_a_literal_escape_and_others_are_dropped() {
        let mut focus = Focus::new(1);
        focus.key(ESCAPE);
        assert_eq!(
            focus.key(ESCAPE),
            KeyAction::Deliver {
                cell: 0,
                byte: ESCAPE
            }
        );
        focus.key(ESCAPE);
        assert_eq!(focus.key(b'q'), KeyAction::Nothing);
        assert_eq!(
            focus.key(b'q'),
            KeyAction::Deliver {
                cell: 0,
                byte: b'q'
            }
        );
        focus.key(ESCAPE);
        assert_eq!(focus.key(b'?'), KeyAction::Tell(Some(0)));
    }

    #[test]
    fn without_takers_nothing_is_delivered() {
        let mut focus = Focus::new(0);
        assert_eq!(focus.focused(), None);
        for byte in 0..=255u8 {
            assert!(matches!(
                focus.key(byte),
                KeyAction::Nothing | KeyAction::Tell(None)
            ));
        }
    }

    #[test]
    fn random_keys_keep_the_focus_on_a_taker() {
        let mut random = crate::test_random::Random(7);
        for _ in 0..200 {
            let takers = random.next() & 0xffff_ffff;
            let mut focus = Focus::new(takers);
            for _ in 0..200 {
                let byte = if random.next().is_multiple_of(3) {
                    ESCAPE
                } else {
                    random.next() as u8
                };
                if let KeyAction::Deliver { cell, .. } | KeyAction::Focused(cell) = focus.key(byte)
                {
                    assert_ne!(takers & (1 << cell), 0);
                }
                if let Some(cell) = focus.focused() {
                    assert_ne!(takers & (1 << cell), 0);
                }
            }
        }
    }
}
