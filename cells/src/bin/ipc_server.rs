//! `ipc_server`: serves the `echo` endpoint (capability slot 0): every reply is the message
//! with 1 added to each word (wrapping). Prints `server: serving echo` once; should the
//! kernel refuse to let it serve, prints `server: refused: <error>` and exits with 1.
#![no_std]
#![no_main]

use sdk::ipc::Server;

/// The `echo` endpoint: the first name of this cell's `caps`.
const ECHO: Server = Server::new(0);

sdk::entry!(main);

fn main() {
    sdk::println!("server: serving echo");
    let error = ECHO.serve(|_badge, message| message.map(|word| word.wrapping_add(1)));
    sdk::println!("server: refused: {error:?}");
    sdk::hvc::exit(1);
}
