//! The shared grammar of quantities with units (`"2 ms"`, `"64 KiB"`): a whole decimal
//! number, underscores allowed inside it, then an optional space and a unit name. The
//! `duration` and `size` modules give the units and their own error wording.

/// Why the number part of a quantity was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberError {
    /// Nothing but whitespace.
    Empty,
    /// The number part is missing or not a decimal integer.
    BadNumber,
    /// A negative number.
    Negative,
    /// The number does not fit in 64 bits.
    TooLarge,
}

/// Splits `text` into its number and its unit (trimmed, possibly empty).
pub fn split(text: &str) -> Result<(u64, &str), NumberError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(NumberError::Empty);
    }
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: String = number.chars().filter(|&c| c != '_').collect();
    if number.is_empty() {
        return Err(if text.starts_with('-') {
            NumberError::Negative
        } else {
            NumberError::BadNumber
        });
    }
    let number: u64 = number.parse().map_err(|_| NumberError::TooLarge)?;
    Ok((number, unit.trim()))
}

/// The multiplier of unit `name` in `units`, if it is one of them.
pub fn multiplier(units: &[(&'static str, u64)], name: &str) -> Option<u64> {
    units
        .iter()
        .find(|&&(unit, _)| unit == name)
        .map(|&(_, multiplier)| multiplier)
}

/// The largest of `units` (listed smallest first, the first one 1) that divides `value`
/// exactly; the smallest for 0.
pub fn largest_exact_unit(units: &[(&'static str, u64)], value: u64) -> (&'static str, u64) {
    units
        .iter()
        .rev()
        .find(|&&(_, multiplier)| value != 0 && value.is_multiple_of(multiplier))
        .copied()
        .unwrap_or(units[0])
}
