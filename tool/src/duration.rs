//! Durations as people write them: `"500 us"`, `"2 ms"`, `"1 s"`, held in microseconds.
//!
//! Only whole numbers with a unit are accepted: a bare number would leave the unit to
//! guesswork, and the boot plan counts microseconds, so fractions are never needed.

use std::fmt;

use crate::quantity::{self, NumberError};

/// Why a duration was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurationError {
    /// Nothing but whitespace.
    Empty,
    /// The number part is missing or not a decimal integer.
    BadNumber,
    /// A number without a unit.
    MissingUnit,
    /// The unit is not one of us, ms, s.
    UnknownUnit(String),
    /// The value does not fit in 64 bits of microseconds.
    TooLarge,
    /// A negative number.
    Negative,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "the duration is empty"),
            Self::BadNumber => write!(f, "the duration does not start with a whole number"),
            Self::MissingUnit => write!(f, "the duration has no unit"),
            Self::UnknownUnit(unit) => write!(f, "`{unit}` is not a time unit"),
            Self::TooLarge => write!(f, "the duration is too large"),
            Self::Negative => write!(f, "a duration cannot be negative"),
        }
    }
}

impl From<NumberError> for DurationError {
    fn from(error: NumberError) -> Self {
        match error {
            NumberError::Empty => Self::Empty,
            NumberError::BadNumber => Self::BadNumber,
            NumberError::Negative => Self::Negative,
            NumberError::TooLarge => Self::TooLarge,
        }
    }
}

/// Units and their length in microseconds, largest last.
const UNITS: [(&str, u64); 3] = [("us", 1), ("ms", 1_000), ("s", 1_000_000)];

/// Parses `"<integer> <unit>"` into microseconds. The unit is `us`, `ms` or `s`; the space
/// is optional; underscores inside the number are allowed.
pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    let (number, unit) = quantity::split(text)?;
    if unit.is_empty() {
        return Err(DurationError::MissingUnit);
    }
    let multiplier = quantity::multiplier(&UNITS, unit)
        .ok_or_else(|| DurationError::UnknownUnit(unit.to_string()))?;
    number
        .checked_mul(multiplier)
        .ok_or(DurationError::TooLarge)
}

/// A duration in microseconds, printed with the largest unit that divides it exactly
/// (`2 ms`, `500 us`, `1 s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duration(pub u64);

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, multiplier) = quantity::largest_exact_unit(&UNITS, self.0);
        write!(f, "{} {name}", self.0 / multiplier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_numbers_with_a_unit() {
        assert_eq!(parse_duration("500 us"), Ok(500));
        assert_eq!(parse_duration("2 ms"), Ok(2_000));
        assert_eq!(parse_duration("10ms"), Ok(10_000));
        assert_eq!(parse_duration(" 1 s "), Ok(1_000_000));
        assert_eq!(parse_duration("1_500 us"), Ok(1_500));
        assert_eq!(parse_duration("0 ms"), Ok(0));
    }

    #[test]
    fn refuses_bad_durations() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("ms"), Err(DurationError::BadNumber));
        assert_eq!(parse_duration("-2 ms"), Err(DurationError::Negative));
        assert_eq!(parse_duration("2000"), Err(DurationError::MissingUnit));
        assert_eq!(
            parse_duration("2 msec"),
            Err(DurationError::UnknownUnit("msec".to_string()))
        );
        assert_eq!(
            parse_duration("1.5 ms"),
            Err(DurationError::UnknownUnit(".5 ms".to_string()))
        );
        assert_eq!(
            parse_duration("99999999999999999999 us"),
            Err(DurationError::TooLarge)
        );
        assert_eq!(
            parse_duration("18446744073709552 s"),
            Err(DurationError::TooLarge)
        );
    }

    #[test]
    fn prints_the_largest_exact_unit() {
        assert_eq!(Duration(2_000).to_string(), "2 ms");
        assert_eq!(Duration(500).to_string(), "500 us");
        assert_eq!(Duration(1_000_000).to_string(), "1 s");
        assert_eq!(Duration(1_500).to_string(), "1500 us");
        assert_eq!(Duration(0).to_string(), "0 us");
    }
}
