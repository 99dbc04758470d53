//! The `berth` binary: parses the command line, runs the command, reports errors once.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    // Output piped into `head` and the like ends quietly, as other command-line tools do.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Everything berth creates is its own unless it says otherwise: state, bundles, logs and
    // secrets hold passwords. Files that containers must read get explicit modes.
    // SAFETY: umask is process-wide and no other thread exists yet.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    berth::container::Roots::from_env().restrict();
    berth::notify::take_socket_from_env();
    let cli = cli::Cli::parse_from(cli::compose_args(std::env::args_os()));
    let result = cli::run(cli);
    let waited = berth::state::deferred::take();
    if !waited.is_empty() {
        berth::output::report_deferred(&waited);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            berth::output::report_error(&e);
            ExitCode::from(berth::exit::code(&e))
        }
    }
}
