//! `up`'s own use cases: carrying out a plan with the project's supervisor and its port
//! reservations, and the checks made before anything is changed.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::app::Session;
use crate::plan::up::UpOptions;
use crate::plan::{Observed, Plan};
use crate::state::{Health, Status};
use crate::supervise::{client, reserve};

/// Carries out an `up` plan ([`apply_once`]); when a start-first update failed under
/// `failure_action: rollback`, the replicas it had already replaced go back to the version the
/// others run (paced by `rollback_config`), and `up` still fails, saying so.
pub fn apply(s: &Session<'_>, plan: &Plan, runtime: &str, start: bool) -> anyhow::Result<()> {
    let result = apply_once(s, plan, runtime, start);
    let Err(failed) = result else { return Ok(()) };
    match super::rollback::revert_failed_updates(s, plan, runtime) {
        Ok(reverted) if reverted.is_empty() => Err(failed),
        Ok(reverted) => {
            let names: Vec<String> = reverted.iter().map(|r| format!("{:?}", r.service)).collect();
            Err(failed.context(format!(
                "the replicas already updated of service {} were rolled back to the version the others run",
                names.join(", ")
            )))
        }
        Err(e) => Err(failed.context(format!("rolling back the replicas already updated failed: {e:#}"))),
    }
}

/// Carries out an `up` plan: checks the host, starts the project's supervisor (when containers
/// are to run), has it reserve the fixed host ports of the containers to start (a port another
/// project took meanwhile fails here, before anything is made) and runs the plan.
pub fn apply_once(s: &Session<'_>, plan: &Plan, runtime: &str, start: bool) -> anyhow::Result<()> {
    super::stack::check_host(s, plan, runtime)?;
    let name = &s.project.name;
    let supervised = start && plan.steps.iter().any(|step| step.container().is_some()) || any_running(s)?;
    crate::supervise::metrics::record_address(s.roots, s.project)?;
    if supervised {
        client::ensure(s.roots, name)?;
    }
    let wanted =
        if start && supervised { reserve::wanted(s.project, plan, &s.db.containers(name)?)? } else { Vec::new() };
    let result = reserve::reserve(s.roots, s.db, name, &wanted, &reserve::frees(plan))
        .and_then(|()| super::stack::execute(s, plan, Some(runtime), start));
    if !wanted.is_empty() {
        // The containers that started have their ports served; the rest are let go.
        reserve::release(s.roots, name);
    }
    // Bad input makes nothing: no supervisor either, when the project has no container.
    if result.is_err() && s.db.containers(name)?.is_empty() {
        client::shutdown(s.roots, name)?;
    }
    result
}

/// Brings the project as `opts` asks (under the project's lock, held by the caller): observes
/// (repairing what an interrupted command left), plans, warns what the plan says, and applies it.
pub fn converge(s: &Session<'_>, opts: &UpOptions, runtime: &str, start: bool) -> anyhow::Result<()> {
    let observed = super::stack::observe(s, true)?;
    let plan = plan(s, &observed, opts, runtime, false)?;
    for w in &plan.warnings {
        s.warn(w.clone());
    }
    apply(s, &plan, runtime, start)
}

/// Plans `up` as `opts` asks from what is `observed`. When the plan builds images, they are
/// built first (unless `dry_run`: then the plan shows the builds) and the rest is planned again,
/// so that a container whose image changed is recreated and one whose image came out the same
/// is left alone.
pub fn plan(
    s: &Session<'_>,
    observed: &Observed,
    opts: &UpOptions,
    runtime: &str,
    dry_run: bool,
) -> anyhow::Result<Plan> {
    let plan = crate::plan::up::reconcile(s.project, observed, opts)?;
    let builds = plan.builds();
    if dry_run || builds.is_empty() {
        return Ok(plan);
    }
    super::stack::execute(s, &builds, Some(runtime), false)?;
    let observed = super::stack::observe(s, false)?;
    let again = UpOptions { build: false, no_build: true, ..opts.clone() };
    Ok(crate::plan::up::reconcile(s.project, &observed, &again)?)
}

/// Whether any container of the project runs (a supervisor must serve it).
fn any_running(s: &Session<'_>) -> anyhow::Result<bool> {
    Ok(s.db.containers(&s.project.name)?.iter().any(|c| c.status.is_alive()))
}

/// Compose refuses `start_interval` without `start_period` for the services it brings up.
pub fn check_health_checks(s: &Session<'_>, services: &[String]) -> anyhow::Result<()> {
    for name in services {
        let Some(h) = s.project.services.get(name).and_then(|svc| svc.healthcheck.as_ref()) else { continue };
        if h.start_interval.is_some() && h.start_period.is_none_or(|p| p.0.is_zero()) {
            anyhow::bail!(
                "services.{name}.healthcheck: healthcheck.start_interval requires healthcheck.start_period to be set"
            );
        }
    }
    Ok(())
}

/// Fails before anything starts when a fixed host port a container of the plan publishes is
/// taken: by a container of this project that keeps running or starts earlier in the plan, or
/// outside the project (who has it is named).
pub fn check_ports(s: &Session<'_>, plan: &Plan) -> anyhow::Result<()> {
    use crate::supervise::ports::HostPort;
    let rows = s.db.containers(&s.project.name)?;
    let wanted = reserve::wanted(s.project, plan, &rows)?;
    let outside = |p: &HostPort| reserve::holder(s.roots, s.db, &s.project.name, p);
    let frees = reserve::frees(plan);
    let free = reserve::free_for(s.roots, &s.project.name, &frees);
    reserve::check(&wanted, &rows, &frees, free, outside).map_err(anyhow::Error::msg)
}

/// Which services a foreground `up` shows the logs of.
#[derive(Clone, Debug, Default)]
pub struct Attach {
    /// `--attach`: these only.
    pub only: Vec<String>,
    /// `--no-attach`: not these.
    pub not: Vec<String>,
    /// `--attach-dependencies`: the named services' dependencies too.
    pub dependencies: bool,
}

/// The services whose logs a foreground `up` of `named` (all when empty; `selected` with their
/// dependencies) shows.
pub fn attached(s: &Session<'_>, attach: &Attach, named: &[String], selected: &[String]) -> Vec<String> {
    let mut out: Vec<String> = if !attach.only.is_empty() {
        attach.only.clone()
    } else if !named.is_empty() && !attach.dependencies {
        named.to_vec()
    } else {
        selected.to_vec()
    };
    // `attach: false` keeps a service's logs out of a foreground `up` unless `--attach` names it.
    let attach_off = |name: &String| s.project.services.get(name).is_some_and(|svc| svc.attach == Some(false));
    out.retain(|name| !attach.not.contains(name) && s.project.services.contains_key(name));
    out.retain(|name| attach.only.contains(name) || !attach_off(name));
    out
}

/// `up --wait`: returns once every container of `services` runs (healthy when it has a health
/// check) or exited successfully; fails naming the first that exited with an error or turned
/// unhealthy, or when `timeout` passes.
pub fn wait_ready(s: &Session<'_>, services: &[String], timeout: Option<Duration>) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let mut ready = true;
        for rec in crate::container::select(s.db, &s.project.name, services, false)? {
            let rec = crate::container::refresh(s.roots, s.db, &rec).unwrap_or(rec);
            let checked = rec.config.supervise.as_ref().is_some_and(|spec| spec.health.is_some());
            match rec.status {
                Status::Running if !checked => {}
                Status::Running => match s.db.supervision(&rec.id)?.health {
                    Some(Health::Healthy) => {}
                    Some(Health::Unhealthy) => bail!("container {} is unhealthy", rec.name),
                    _ => ready = false,
                },
                Status::Exited if rec.exit_code == Some(0) => {}
                Status::Exited | Status::Dead => {
                    bail!("container {} exited ({})", rec.name, rec.exit_code.unwrap_or(-1))
                }
                _ => ready = false,
            }
        }
        if ready {
            return Ok(());
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            bail!("application not healthy after {}s", timeout.unwrap_or_default().as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
