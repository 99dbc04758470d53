//! What `up` and `down` share: observing the project and running a plan with progress lines.

use std::time::Duration;

use berth::plan::{Observed, Plan};

use super::containers::Ctx;

/// Reads what exists for the project, with each container's status brought up to date first
/// (a monitor that died, a container gone since). With `repair` (under the project's lock), what
/// an interrupted `up` left half-made is taken back first, so the plan starts from what is whole.
pub fn observe(ctx: &Ctx, repair: bool) -> anyhow::Result<Observed> {
    if repair {
        let progress = super::progress::Progress::new(ctx.progress);
        berth::stack::engine::StackEngine::new(&ctx.project, ctx.roots.clone(), &progress)?.reclaim_interrupted()?;
    }
    for c in ctx.db.containers(&ctx.project.name)? {
        berth::container::refresh(&ctx.roots, &ctx.db, &c)?;
    }
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
    let bundle_exists = |id: &str| ctx.roots.bundle(id).join("config.json").exists();
    let src = berth::observe::Sources {
        db: &ctx.db,
        images: &images,
        volumes: &volumes,
        network_exists: &exists,
        bundle_exists: &bundle_exists,
    };
    berth::observe::observe(project, &src)
}

/// Everything `up` checks on this host before it makes anything, so that `up --dry-run` that
/// passes means the plan can run: what new containers need (bind sources, secret and config
/// sources, external secrets, mount types, `volumes_from`), the drivers of networks and volumes
/// to create, the OCI runtime, and fixed host ports free.
pub fn check_host(ctx: &Ctx, plan: &Plan, runtime: &str) -> anyhow::Result<()> {
    use berth::plan::Operation;
    let env = |k: &str| std::env::var(k).ok();
    berth::stack::storage::preflight(&ctx.project, plan, &ctx.db, &env)?;
    for step in &plan.steps {
        match &step.operation {
            Operation::CreateNetwork(network) => {
                if let Some(net) = ctx.project.networks.get(&network.key) {
                    berth::stack::netmodel::network_spec(&network.key, net)?;
                }
            }
            Operation::CreateVolume(volume) => {
                let key = &volume.key;
                let spec = berth::stack::volmodel::volume_spec(&ctx.project, key);
                berth_volumes::store::check_driver(&spec).map_err(|e| anyhow::anyhow!("volumes.{key}: {e}"))?;
            }
            _ => {}
        }
    }
    if plan.creates().next().is_some() {
        berth::runtime::by_name(runtime, &ctx.roots.run)?;
    }
    for (_, target) in plan.creates() {
        let svc = ctx.project.services.get(&target.service);
        if let Some((name, own)) = svc.and_then(|s| Some((&s.name, s.runtime.as_deref()?))) {
            berth::runtime::by_name(own, &ctx.roots.run)
                .map_err(|e| anyhow::anyhow!("services.{name}.runtime: {e}"))?;
        }
    }
    super::up::check_ports(ctx, plan)
}

/// Runs `plan` (checked by [`check_host`] when it makes containers) and fails with every step
/// that failed or was skipped. `runtime` makes new containers (a plan that makes none needs
/// none); `stop_timeout` replaces each service's `stop_grace_period`
/// (`-t`); `supervised`: the project's supervisor runs and is told about containers as they
/// start.
pub fn execute(
    ctx: &Ctx,
    plan: &Plan,
    runtime: Option<&str>,
    stop_timeout: Option<Duration>,
    supervised: bool,
) -> anyhow::Result<()> {
    let progress = super::progress::Progress::new(ctx.progress);
    let mut engine = berth::stack::engine::StackEngine::new(&ctx.project, ctx.roots.clone(), &progress)?;
    if let Some(runtime) = runtime {
        engine = engine.runtime(runtime);
    }
    let engine = engine.supervised(supervised).stop_timeout(stop_timeout).leaving_with(plan);
    let readiness = berth::execute::readiness(&ctx.project);
    let parallel = match ctx.parallel {
        Some(n) if n > 0 => n as usize,
        Some(_) => usize::MAX,
        None => 4,
    };
    let report = berth::execute::run(plan, &engine, &readiness, parallel, &progress);
    if supervised {
        let _ = berth::supervise::client::refresh(&ctx.roots, &ctx.project.name, Duration::from_secs(10));
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
            .map(|(id, e)| format!("{} {}: {e}", plan.steps[id - 1].kind(), plan.steps[id - 1].name()))
            .collect();
        if !report.skipped.is_empty() {
            lines.push(format!("{} step(s) not run because of the failures above", report.skipped.len()));
        }
        return Err(berth::exit::PlanFailed { lines }.into());
    }
    Ok(())
}
