//! The `berth` binary: parses the command line, runs the command, reports errors once.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            berth::output::report_error(&e);
            ExitCode::from(1)
        }
    }
}
