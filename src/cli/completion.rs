//! `berth completion SHELL`.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

/// Arguments of `berth completion`.
#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// The shell to generate completions for
    shell: Shell,
}

/// Prints the completion script for the shell.
pub fn run(args: CompletionArgs) -> anyhow::Result<()> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "berth", &mut std::io::stdout());
    Ok(())
}
