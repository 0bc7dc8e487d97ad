//! `cellvisor`: the command line for system designers (check descriptions, audit their
//! capability tables, build images).
//!
//! A thin shell over the `cellvisor` library: parses arguments with clap, prints
//! diagnostics (plain when stderr is not a terminal or `NO_COLOR` is set) and maps failures
//! to exit code 1. It writes nothing unless a build succeeds.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use cellvisor::{CheckOptions, Error, Style};
use clap::{Parser, Subcommand};

/// Check and build Cellvisor system descriptions.
#[derive(Parser, Debug)]
#[command(name = "cellvisor", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and validate a system description, reporting every mistake.
    Check {
        /// The system description (TOML).
        system: PathBuf,
        /// Do not open the cell images (check the description alone).
        #[arg(long)]
        no_images: bool,
    },
    /// Check a description and print each cell's capability table (slot, kind, object,
    /// rights and the cells on the other side), to audit least authority.
    Caps {
        /// The system description (TOML).
        system: PathBuf,
        /// Do not open the cell images (check the description alone).
        #[arg(long)]
        no_images: bool,
    },
    /// Check a description and write a bootable image and a layout report.
    Build {
        /// The system description (TOML).
        system: PathBuf,
        /// The kernel ELF (with an arm64 Image header at its start).
        #[arg(long)]
        kernel: PathBuf,
        /// Output folder for cellvisor.img and layout.txt (replaced atomically).
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
}

fn fail(error: &Error) -> ExitCode {
    match error {
        Error::Invalid(diagnostics) => {
            let style = Style::detect(std::io::stderr().is_terminal());
            eprint!("{}", diagnostics.render(style));
        }
        other => eprintln!("error: {other}"),
    }
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { system, no_images } => {
            let options = CheckOptions {
                load_images: !no_images,
            };
            match cellvisor::check(&system, options) {
                Ok(checked) => {
                    println!("{}", checked.summary());
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error),
            }
        }
        Command::Caps { system, no_images } => {
            let options = CheckOptions {
                load_images: !no_images,
            };
            match cellvisor::check(&system, options) {
                Ok(checked) => {
                    print!("{}", cellvisor::caps::tables(&checked.system));
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error),
            }
        }
        Command::Build {
            system,
            kernel,
            out,
        } => match cellvisor::build(&system, &kernel, &out) {
            Ok(built) => {
                println!(
                    "{}: wrote {} and {}",
                    built.checked.name,
                    built.image.display(),
                    built.report.display()
                );
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error),
        },
    }
}
