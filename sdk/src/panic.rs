//! The panic handler: report the panic on the console, then exit with code 101.

use core::fmt;
use core::panic::Location;

/// Prints `panic: <message> at <file>:<line>` (or `panic: <message>` without a location).
// Only the bare-metal panic handler and the tests call it.
#[cfg_attr(
    not(any(test, all(target_arch = "aarch64", target_os = "none"))),
    allow(dead_code)
)]
pub(crate) fn report(message: &dyn fmt::Display, location: Option<&Location<'_>>) {
    match location {
        Some(location) => crate::println!(
            "panic: {message} at {}:{}",
            location.file(),
            location.line()
        ),
        None => crate::println!("panic: {message}"),
    }
}

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    report(&info.message(), info.location());
    crate::hvc::exit(crate::start::EXIT_CODE_PANIC)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::host::with;
    use std::format;

    #[test]
    fn the_report_names_message_file_and_line() {
        let location = Location::caller();
        report(&format_args!("index {} out of range", 9), Some(location));
        report(&"no location", None);
        let expected = format!(
            "panic: index 9 out of range at {}:{}\npanic: no location\n",
            location.file(),
            location.line()
        );
        with(|kernel| assert_eq!(kernel.console, expected.as_bytes()));
    }
}
