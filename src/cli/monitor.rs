//! `berth __monitor ID`: the hidden per-container monitor (see `berth::monitor`).

use clap::Args;

/// Arguments of the monitor.
#[derive(Args, Debug)]
pub struct MonitorArgs {
    /// Container id
    pub id: String,
    /// Wait for an attach client before starting the process
    #[arg(long)]
    pub wait_attach: bool,
}

/// Runs the monitor; never returns.
pub fn run(args: MonitorArgs) -> anyhow::Result<()> {
    // SAFETY: `berth __monitor` starts no thread before this: `main` only parsed the arguments.
    unsafe { berth::monitor::main(&berth::container::Roots::from_env(), &args.id, args.wait_attach) }
}

/// Arguments of the project supervisor.
#[derive(Args, Debug)]
pub struct SuperviseArgs {
    /// Project name
    pub project: String,
}

/// Runs a project's supervisor until the project is gone or it is told to stop; its warnings
/// go to standard error (its log file).
pub fn supervise(args: SuperviseArgs) -> anyhow::Result<()> {
    let log = std::sync::Arc::new(berth::output::PlainRenderer);
    berth::supervise::daemon::main(berth::container::Roots::from_env(), args.project, log)
}
