//! `berth boot`: after a reboot, brings back every project under the state root that has
//! containers to restart (`restart: always`, or `unless-stopped` not stopped by the user). The
//! init system runs it (see `berth systemd install`). A project that fails is reported and the
//! others still come back; the exit code says whether all did.

use clap::Args;

use super::containers::{progress, Ctx};
use super::ProjectArgs;

/// Arguments of `berth boot`.
#[derive(Args, Debug)]
pub struct BootArgs {
    /// Only these projects (default: every project berth knows)
    #[arg(long = "project", value_name = "NAME")]
    projects: Vec<String>,
}

/// Runs `berth boot`.
pub fn run(base: &ProjectArgs, args: BootArgs) -> anyhow::Result<()> {
    let roots = berth::container::Roots::from_env();
    let names = if args.projects.is_empty() { berth::container::open_db(&roots)?.projects()? } else { args.projects };
    let mut failed = Vec::new();
    for name in names {
        let project = ProjectArgs { project_name: Some(name.clone()), files: Vec::new(), ..base.clone() };
        let brought = Ctx::load(&project).and_then(|ctx| {
            let _lock = ctx.lock("boot")?;
            let events = ctx.progress();
            berth::app::boot::boot(&ctx.session(&events), &mut |c| progress(c, "Started"))
        });
        match brought {
            Ok(0) => {}
            Ok(n) => eprintln!("Project {name}: {n} container{} back", if n == 1 { "" } else { "s" }),
            Err(e) => {
                berth::output::report_error(&e.context(format!("project {name:?} did not come back")));
                failed.push(name);
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("{} project(s) did not come back: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}
