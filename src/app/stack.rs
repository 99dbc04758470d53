//! What `up`, `down`, `create`, `scale` and `run` share: observing the project, checking a plan
//! against the host before anything is made, and running it.

use crate::app::Session;
use crate::execute::StepError;
use crate::exit::PlanFailed;
use crate::plan::{Observed, Operation, Plan};
use crate::stack::engine::StackEngine;

/// Reads what exists for the project, with each container's status brought up to date first
/// (a monitor that died, a container gone since). With `repair` (under the project's lock), what
/// an interrupted `up` left half-made is taken back first, so the plan starts from what is whole.
/// A container row that cannot be read is an error.
pub fn observe(s: &Session<'_>, repair: bool) -> anyhow::Result<Observed> {
    observe_rows(s, repair, false)
}

/// [`observe`] for `down`: a container row that cannot be read is said in a warning and its
/// container left as it is, so that the rest of the project is still taken down.
pub fn observe_past_unreadable(s: &Session<'_>, repair: bool) -> anyhow::Result<Observed> {
    observe_rows(s, repair, true)
}

fn observe_rows(s: &Session<'_>, repair: bool, past_unreadable: bool) -> anyhow::Result<Observed> {
    if repair {
        StackEngine::new(s.project, s.roots.clone(), s.events)?.reclaim_interrupted()?;
    }
    let rows =
        if past_unreadable { s.db.scan_containers(&s.project.name)?.0 } else { s.db.containers(&s.project.name)? };
    for c in rows {
        crate::container::refresh(s.roots, s.db, &c)?;
    }
    let warn_unreadable = |e: &crate::state::StateError| {
        s.warn(format!("{e}\nhint: that container is left as it is; the rest is taken down"));
    };
    let images = crate::image::ImageStore::open(&s.roots.root)?;
    let volumes = berth_volumes::store::VolumeStore::open(s.roots.root.join("volumes"))?;
    let project = s.project;
    let exists = |name: &str| {
        project
            .networks
            .iter()
            .find(|(k, n)| crate::stack::netmodel::network_name(k, n) == name)
            .is_some_and(|(k, _)| crate::stack::engine::network_exists(project, k))
    };
    let bundle_exists = |id: &str| s.roots.bundle(id).join("config.json").exists();
    let src = crate::observe::Sources {
        db: s.db,
        images: &images,
        volumes: &volumes,
        network_exists: &exists,
        bundle_exists: &bundle_exists,
        unreadable: past_unreadable.then_some(&warn_unreadable as &dyn Fn(&crate::state::StateError)),
    };
    crate::observe::observe(project, &src)
}

/// Everything `up` checks on this host before it makes anything, so that `up --dry-run` that
/// passes means the plan can run: what new containers need (bind sources, secret and config
/// sources, external secrets, mount types, `volumes_from`), the drivers of networks and volumes
/// to create, the OCI runtime, and fixed host ports free.
pub fn check_host(s: &Session<'_>, plan: &Plan, runtime: &str) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    crate::stack::storage::preflight(s.project, plan, s.db, &env)?;
    for step in &plan.steps {
        match &step.operation {
            Operation::CreateNetwork(network) => {
                if let Some(net) = s.project.networks.get(&network.key) {
                    crate::stack::netmodel::network_spec(&network.key, net)?;
                }
            }
            Operation::CreateVolume(volume) => {
                let key = &volume.key;
                let spec = crate::stack::volmodel::volume_spec(s.project, key);
                berth_volumes::store::check_driver(&spec).map_err(|e| anyhow::anyhow!("volumes.{key}: {e}"))?;
            }
            _ => {}
        }
    }
    if plan.creates().next().is_some() {
        crate::runtime::by_name(runtime, &s.roots.run)?;
    }
    let mut made: Vec<&str> = plan.creates().map(|(_, t)| t.service.as_str()).collect();
    made.dedup();
    for name in made {
        let Some(svc) = s.project.services.get(name) else { continue };
        let logging = serde_json::json!({ "logging": svc.logging });
        if let Some(warning) = crate::monitor::forward::check(name, &logging) {
            s.warn(warning);
        }
    }
    for (_, target) in plan.creates() {
        let svc = s.project.services.get(&target.service);
        if let Some((name, own)) = svc.and_then(|s| Some((&s.name, s.runtime.as_deref()?))) {
            crate::runtime::by_name(own, &s.roots.run).map_err(|e| anyhow::anyhow!("services.{name}.runtime: {e}"))?;
        }
    }
    super::up::check_ports(s, plan)
}

/// Runs `plan` (checked by [`check_host`] when it makes containers) and fails with every step
/// that failed or was skipped ([`PlanFailed`]). `runtime` makes new containers (a plan that
/// makes none needs none); `supervised`: the project's supervisor runs and is told about
/// containers as they start.
pub fn execute(s: &Session<'_>, plan: &Plan, runtime: Option<&str>, supervised: bool) -> anyhow::Result<()> {
    let mut engine = StackEngine::new(s.project, s.roots.clone(), s.events)?;
    if let Some(runtime) = runtime {
        engine = engine.runtime(runtime);
    }
    let engine = engine.supervised(supervised).stop_timeout(s.stop_timeout).leaving_with(plan).pinned(s.pinned.clone());
    let readiness = crate::execute::readiness(s.project);
    let report = crate::execute::run(plan, &engine, &readiness, s.parallel.unwrap_or(usize::MAX), s.events);
    if supervised {
        // The supervisor was told as containers started; this catches what stopped or went.
        let refreshed = crate::supervise::client::refresh(s.roots, &s.project.name, std::time::Duration::from_secs(10));
        if let Err(e) = refreshed {
            s.warn(format!("the project's supervisor did not take in the last changes: {e:#}"));
        }
    }
    if let Err(e) = engine.tidy_firewall() {
        s.warn(format!("{e:#}"));
    }
    for w in &report.warnings {
        s.warn(w.clone());
    }
    let given_up = engine.update_failures();
    if report.ok() && given_up.is_empty() {
        return Ok(());
    }
    let mut lines: Vec<String> = given_up;
    lines.extend(
        report.failed.iter().map(|(id, e)| format!("{} {}: {e}", plan.steps[id - 1].kind(), plan.steps[id - 1].name())),
    );
    if !report.skipped.is_empty() {
        lines.push(format!("{} step(s) not run because of the failures above", report.skipped.len()));
    }
    let operational = report.failed.iter().any(|(_, e)| matches!(e, StepError::Failed(_)));
    Err(PlanFailed { lines, operational }.into())
}
