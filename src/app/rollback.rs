//! `history` and `rollback`: what each service ran, and returning a service to its last
//! known-good deployment other than the current one. A rollback is an `up` of the service alone
//! whose definition is the one stored with that deployment (the part the config hash covers;
//! replicas, dependencies and profiles stay as the project has them now), its new containers
//! made from the stored image by id, never pulled or built: the same plan as any change, so a
//! `start-first` service is rolled back without downtime.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use berth_compose::model::Service;
use berth_compose::resolved::{FailureAction, PullPolicy, ResolvedService};

use crate::app::Session;
use crate::plan::hash::config_hash;
use crate::plan::up::UpOptions;
use crate::plan::{Operation, Plan};
use crate::state::{rollback_target, ContainerRecord, Deployment};

/// A service's history and which of its deployments runs now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct History {
    /// The service.
    pub service: String,
    /// Oldest first.
    pub deployments: Vec<Deployment>,
    /// The `seq` of the deployment its containers were made from, when any runs.
    pub current: Option<i64>,
    /// The `seq` of the deployment `rollback` would return to.
    pub rollback: Option<i64>,
}

/// The deployment of `history` that the service's containers `rows` were made from: the latest
/// one a container of it matches.
pub fn current<'d>(history: &'d [Deployment], rows: &[ContainerRecord]) -> Option<&'d Deployment> {
    let live: Vec<&ContainerRecord> = rows.iter().filter(|c| !c.oneoff && c.status.is_alive()).collect();
    let rows: Vec<&ContainerRecord> = if live.is_empty() { rows.iter().filter(|c| !c.oneoff).collect() } else { live };
    history.iter().rev().find(|d| rows.iter().any(|c| d.made(c)))
}

/// The history of `service` in the session's project.
pub fn history(s: &Session<'_>, service: &str) -> anyhow::Result<History> {
    let deployments = s.db.deployments(&s.project.name, service)?;
    if deployments.is_empty() && !s.project.services.contains_key(service) {
        bail!("no such service: `{service}`");
    }
    let rows = crate::container::select(s.db, &s.project.name, &[service.to_string()], false)?;
    let current = current(&deployments, &rows);
    let rollback = rollback_target(&deployments, current).map(|d| d.seq);
    let current = current.map(|d| d.seq);
    Ok(History { service: service.to_string(), deployments, current, rollback })
}

/// The definition a service gets back from deployment `d`: the stored configuration, with
/// what the config hash leaves out (build, pull policy, replicas, dependencies, profiles,
/// `develop`) as the project has it now (`now`; none when the service is gone from it).
pub fn restored(name: &str, d: &Deployment, now: Option<&Service>) -> anyhow::Result<Service> {
    let mut svc: Service = serde_json::from_value(d.config.clone()).with_context(|| {
        format!("service `{name}`: the stored configuration of deployment {} cannot be read", d.seq)
    })?;
    svc.name = name.to_string();
    if let Some(now) = now {
        svc.depends_on = now.depends_on.clone();
        svc.profiles = now.profiles.clone();
        svc.develop = now.develop.clone();
    }
    Ok(svc)
}

/// One service returned to a known-good deployment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RolledBack {
    /// The service.
    pub service: String,
    /// The deployment it ran (none known).
    pub from: Option<Deployment>,
    /// The deployment it runs now.
    pub to: Deployment,
}

/// Returns each of `services` (all with a known-good deployment to return to, when empty) to
/// its last known-good deployment other than the current one, under the project's lock (held
/// by the caller). `runtime` makes the new containers.
pub fn rollback(s: &Session<'_>, services: &[String], runtime: &str) -> anyhow::Result<Vec<RolledBack>> {
    let names: Vec<String> =
        if services.is_empty() { s.project.services.keys().cloned().collect() } else { services.to_vec() };
    let mut targets = Vec::new();
    for name in &names {
        let h = history(s, name)?;
        let Some(to) = h.deployments.iter().find(|d| Some(d.seq) == h.rollback) else {
            if services.is_empty() {
                continue;
            }
            match h.current {
                Some(_) => bail!("service `{name}` has no known-good deployment other than the one it runs"),
                None => bail!("service `{name}` has no known-good deployment (see `berth history {name}`)"),
            }
        };
        let from = h.deployments.iter().find(|d| Some(d.seq) == h.current).cloned();
        targets.push(RolledBack { service: name.clone(), from, to: to.clone() });
    }
    if targets.is_empty() {
        bail!("no service has a known-good deployment to return to (see `berth history SERVICE`)");
    }
    return_to(s, &targets, runtime)?;
    Ok(targets)
}

/// After an `up` of `plan` failed: the services whose start-first update failed under
/// `failure_action: rollback` with some replicas already replaced get those replicas back on the
/// version the others still run (paced by `rollback_config`). Returns what was rolled back.
pub fn revert_failed_updates(s: &Session<'_>, plan: &Plan, runtime: &str) -> anyhow::Result<Vec<RolledBack>> {
    let mut services: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|step| match &step.operation {
            Operation::SwitchContainer { from, failure_action: FailureAction::Rollback, .. } => {
                Some(from.service.as_str())
            }
            _ => None,
        })
        .collect();
    services.dedup();
    let mut targets = Vec::new();
    for name in services {
        let Some(svc) = s.project.services.get(name) else { continue };
        let history = s.db.deployments(&s.project.name, name)?;
        // The replicas replaced are those made from the deployment this update recorded.
        let Some(latest) = history.last().filter(|d| d.config_hash == config_hash(svc)) else { continue };
        let rows = crate::container::select(s.db, &s.project.name, &[name.to_string()], false)?;
        let (new, old): (Vec<ContainerRecord>, Vec<ContainerRecord>) = rows.into_iter().partition(|c| latest.made(c));
        if new.is_empty() || old.is_empty() {
            continue;
        }
        // The version the replicas not replaced run; what the replaced ones were made from.
        let (Some(to), from) = (current(&history, &old), current(&history, &new)) else { continue };
        targets.push(RolledBack { service: name.to_string(), from: from.cloned(), to: to.clone() });
    }
    if !targets.is_empty() {
        return_to(s, &targets, runtime)?;
    }
    Ok(targets)
}

/// Makes each target service's containers from its deployment `to` (the stored configuration,
/// the image by id), replacing them as its `rollback_config` says (else its `update_config`).
fn return_to(s: &Session<'_>, targets: &[RolledBack], runtime: &str) -> anyhow::Result<()> {
    let store = crate::image::ImageStore::open(&s.roots.root)?;
    let mut project = s.project.clone();
    let mut policies = BTreeMap::new();
    for RolledBack { service: name, to, .. } in targets {
        store.resolve(&to.image_digest).with_context(|| {
            format!(
                "service `{name}`: the image {} of the deployment to return to is no longer stored",
                to.image_digest
            )
        })?;
        let now = s.project.services.get(name);
        let svc = restored(name, to, now)?;
        let own = now.map(ResolvedService::new).transpose()?;
        let resolved = ResolvedService::new(&svc)?;
        let policy = own.as_ref().and_then(|r| r.rollback).or(resolved.rollback).unwrap_or(resolved.update);
        policies.insert(name.clone(), policy);
        project.services.insert(name.clone(), svc);
    }
    let pinned: BTreeMap<String, String> =
        targets.iter().map(|r| (r.service.clone(), r.to.image_digest.clone())).collect();
    let session = Session { project: &project, pinned, ..*s };
    let mut observed = super::stack::observe(&session, true)?;
    for r in targets {
        let image = project.services[&r.service].image_name(&project);
        observed.images.insert(image, r.to.image_digest.clone());
    }
    let replicas = |name: &String| s.project.services.get(name).map_or(1, Service::replicas);
    let opts = UpOptions {
        services: targets.iter().map(|r| r.service.clone()).collect(),
        no_deps: true,
        pull: Some(PullPolicy::Never),
        no_build: true,
        // As many replicas as the project has now.
        scale: targets.iter().map(|r| (r.service.clone(), replicas(&r.service))).collect(),
        policies,
        ..Default::default()
    };
    let plan = crate::plan::up::reconcile(&project, &observed, &opts)?;
    for w in &plan.warnings {
        session.warn(w.clone());
    }
    super::up::apply_once(&session, &plan, runtime, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::hash::{config_hash, hashed_config};
    use crate::state::Outcome;

    fn deployment(svc: &Service) -> Deployment {
        Deployment {
            seq: 1,
            project: "p".into(),
            service: svc.name.clone(),
            deployed_at: 0,
            config_hash: config_hash(svc),
            config: hashed_config(svc),
            image: "busybox".into(),
            image_digest: "sha256:1".into(),
            outcome: Outcome::KnownGood,
            good_at: Some(1),
        }
    }

    #[test]
    fn a_restored_service_hashes_as_its_deployment_and_keeps_todays_replicas_and_dependencies() {
        let yaml = "services:\n  web:\n    image: busybox\n    environment: {V: '1'}\n    deploy: {update_config: {order: start-first}}\n";
        let old = berth_compose::load_str(yaml, &std::env::temp_dir()).unwrap().project.services["web"].clone();
        let d = deployment(&old);
        let yaml = "services:\n  db: {image: busybox}\n  web:\n    build: .\n    image: busybox\n    environment: {V: '2'}\n    scale: 3\n    depends_on: [db]\n";
        let now = berth_compose::load_str(yaml, &std::env::temp_dir()).unwrap().project.services["web"].clone();
        let svc = restored("web", &d, Some(&now)).unwrap();
        assert_eq!(config_hash(&svc), d.config_hash);
        assert_eq!(svc.environment, old.environment);
        assert!(svc.depends_on.contains_key("db") && svc.build.is_none());
    }

    #[test]
    fn the_current_deployment_is_the_one_running_containers_match() {
        let svc = Service { name: "web".into(), image: Some("busybox".into()), ..Default::default() };
        let mut a = deployment(&svc);
        let mut b = a.clone();
        (b.seq, b.image_digest, b.outcome) = (2, "sha256:2".into(), Outcome::Failed);
        a.seq = 1;
        let history = vec![a.clone(), b.clone()];
        let mut running = crate::supervise::testing::record("p-web-1", crate::state::Status::Running);
        (running.config_hash, running.image_digest) = (b.config_hash.clone(), b.image_digest.clone());
        let mut exited = running.clone();
        (exited.status, exited.image_digest) = (crate::state::Status::Exited, a.image_digest.clone());
        assert_eq!(current(&history, &[exited.clone(), running.clone()]).map(|d| d.seq), Some(2));
        assert_eq!(current(&history, &[exited]).map(|d| d.seq), Some(1), "none runs: what exists");
        assert_eq!(rollback_target(&history, current(&history, &[running])).map(|d| d.seq), Some(1));
    }
}
