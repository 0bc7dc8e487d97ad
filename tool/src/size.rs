//! Byte sizes as people write them: `4096`, `"64 KiB"`, `"2 MiB"`, `"1 GiB"`.

use std::fmt;

use crate::quantity::{self, NumberError};

/// Why a size string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeError {
    /// Nothing but whitespace.
    Empty,
    /// The number part is missing or not a decimal integer.
    BadNumber,
    /// The unit is not one of B, KiB, MiB, GiB, TiB.
    UnknownUnit(String),
    /// The value does not fit in 64 bits.
    TooLarge,
    /// A negative integer.
    Negative,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "the size is empty"),
            Self::BadNumber => write!(f, "the size does not start with a whole number"),
            Self::UnknownUnit(unit) => write!(f, "`{unit}` is not a size unit"),
            Self::TooLarge => write!(f, "the size does not fit in 64 bits"),
            Self::Negative => write!(f, "a size cannot be negative"),
        }
    }
}

impl From<NumberError> for SizeError {
    fn from(error: NumberError) -> Self {
        match error {
            NumberError::Empty => Self::Empty,
            NumberError::BadNumber => Self::BadNumber,
            NumberError::Negative => Self::Negative,
            NumberError::TooLarge => Self::TooLarge,
        }
    }
}

/// Units and their size in bytes, smallest first.
const UNITS: [(&str, u64); 5] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// Parses `"<integer> <unit>"` (the space is optional; units are binary: KiB, MiB, GiB, TiB,
/// or B; a bare integer means bytes). Underscores inside the number are allowed.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let (number, unit) = quantity::split(text)?;
    let multiplier = if unit.is_empty() {
        1
    } else {
        quantity::multiplier(&UNITS, unit)
            .ok_or_else(|| SizeError::UnknownUnit(unit.to_string()))?
    };
    number.checked_mul(multiplier).ok_or(SizeError::TooLarge)
}

/// Converts a TOML integer to a size.
pub fn size_from_integer(value: i64) -> Result<u64, SizeError> {
    u64::try_from(value).map_err(|_| SizeError::Negative)
}

/// A size printed with the largest binary unit that divides it exactly (`2 MiB`, `12 KiB`,
/// `100 B`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, multiplier) = quantity::largest_exact_unit(&UNITS, self.0);
        write!(f, "{} {name}", self.0 / multiplier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_plain_numbers() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size(" 1 GiB "), Ok(1 << 30));
        assert_eq!(parse_size("1_024 B"), Ok(1024));
        assert_eq!(parse_size("3 TiB"), Ok(3 << 40));
    }

    #[test]
    fn refuses_bad_sizes() {
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(parse_size("MiB"), Err(SizeError::BadNumber));
        assert_eq!(parse_size("-4 KiB"), Err(SizeError::Negative));
        assert_eq!(
            parse_size("2 MB"),
            Err(SizeError::UnknownUnit("MB".to_string()))
        );
        assert_eq!(
            parse_size("1.5 GiB"),
            Err(SizeError::UnknownUnit(".5 GiB".to_string()))
        );
        assert_eq!(parse_size("99999999999 TiB"), Err(SizeError::TooLarge));
        assert_eq!(size_from_integer(-1), Err(SizeError::Negative));
    }

    #[test]
    fn prints_the_largest_exact_unit() {
        assert_eq!(Size(2 << 20).to_string(), "2 MiB");
        assert_eq!(Size(12 << 10).to_string(), "12 KiB");
        assert_eq!(Size(100).to_string(), "100 B");
        assert_eq!(Size(0).to_string(), "0 B");
        assert_eq!(Size(1 << 30).to_string(), "1 GiB");
    }
}
