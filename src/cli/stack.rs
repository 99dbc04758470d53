//! What `up` and `down` share: observing the project and running a plan with progress lines.

use std::time::Duration;

use anyhow::bail;
use berth::plan::{Observed, Plan};

use super::containers::Ctx;

/// Reads what exists for the project.
pub fn observe(ctx: &Ctx) -> anyhow::Result<Observed> {
    let images = berth::image::ImageStore::open(&ctx.roots.root)?;
    let volumes = berth_volumes::store::VolumeStore::open(ctx.roots.root.join("volumes"))?;
    let project = &ctx.project;
    let exists = |name: &str| {
        project
            .networks
            .iter()
            .find(|(k, n)| berth::stack::netmodel::network_name(k, n) == name)
            .is_some_and(|(k, _)| berth::stack::engine::network_exists(project, k))
    };
    let src = berth::observe::Sources { db: &ctx.db, images: &images, volumes: &volumes, network_exists: &exists };
    berth::observe::observe(project, &src)
}

/// What `execute` does with anonymous volumes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Anonymous {
    /// New containers get new ones (`up -V`).
    pub renew: bool,
    /// Removed containers take theirs along (`down -v`).
    pub remove: bool,
}

/// Runs `plan` and fails with every step that failed or was skipped. `supervised`: the
/// project's supervisor runs and is told about containers as they start.
pub fn execute(ctx: &Ctx, plan: &Plan, runtime: &str, anonymous: Anonymous, supervised: bool) -> anyhow::Result<()> {
    // What new containers need from the host is checked before any network or volume is made.
    let env = |k: &str| std::env::var(k).ok();
    berth::stack::storage::preflight(&ctx.project, plan, &ctx.db, &env)?;
    let progress = super::progress::Progress::new(ctx.progress);
    let engine = berth::stack::engine::StackEngine::new(&ctx.project, ctx.roots.clone(), runtime, &progress)?
        .renew_anonymous_volumes(anonymous.renew)
        .remove_anonymous_volumes(anonymous.remove)
        .supervised(supervised);
    let readiness = berth::execute::readiness(&ctx.project);
    let report = berth::execute::run(plan, &engine, &readiness, 4, &progress);
    if supervised {
        let _ = berth::supervise::client::request(&ctx.roots, &ctx.project.name, "refresh", Duration::from_secs(10));
    }
    if let Err(e) = engine.tidy_firewall() {
        berth::output::warn(&format!("{e:#}"));
    }
    for w in &report.warnings {
        berth::output::warn(w);
    }
    if !report.ok() {
        let mut lines: Vec<String> = report
            .failed
            .iter()
            .map(|(id, e)| format!("{} {}: {e}", plan.steps[id - 1].kind, plan.steps[id - 1].name))
            .collect();
        if !report.skipped.is_empty() {
            lines.push(format!("{} step(s) not run because of the failures above", report.skipped.len()));
        }
        bail!("{}", lines.join("\n"));
    }
    Ok(())
}
