//! `history` and `rollback`: what each service ran, and returning a service to its last
//! known-good deployment other than the current one. A rollback is an `up` of the service alone
//! whose definition is the one stored with that deployment (the part the config hash covers;
//! replicas, dependencies and profiles stay as the project has them now), its new containers
//! made from the stored image by id, never pulled or built: the same plan as any change, so a
//! `start-first` service is rolled back without downtime.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use berth_compose::model::Service;
use berth_compose::resolved::PullPolicy;

use crate::app::Session;
use crate::plan::up::UpOptions;
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
    let mut svc: Service = serde_json::from_value(d.config.clone())
        .with_context(|| format!("service `{name}`: the stored configuration of deployment {} cannot be read", d.seq))?;
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
    let names: Vec<String> = if services.is_empty() {
        s.project.services.keys().cloned().collect()
    } else {
        services.to_vec()
    };
    let store = crate::image::ImageStore::open(&s.roots.root)?;
    let mut project = s.project.clone();
    let mut done = Vec::new();
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
        store.resolve(&to.image_digest).with_context(|| {
            format!("service `{name}`: the image {} of its known-good deployment is no longer stored", to.image_digest)
        })?;
        let svc = restored(name, to, s.project.services.get(name))?;
        project.services.insert(name.clone(), svc);
        let from = h.deployments.iter().find(|d| Some(d.seq) == h.current).cloned();
        done.push(RolledBack { service: name.clone(), from, to: to.clone() });
    }
    if done.is_empty() {
        bail!("no service has a known-good deployment to return to (see `berth history SERVICE`)");
    }
    let pinned: BTreeMap<String, String> =
        done.iter().map(|r| (r.service.clone(), r.to.image_digest.clone())).collect();
    let session = Session { project: &project, pinned: pinned.clone(), ..*s };
    let mut observed = super::stack::observe(&session, true)?;
    for r in &done {
        let image = project.services[&r.service].image_name(&project.name);
        observed.images.insert(image, r.to.image_digest.clone());
    }
    let opts = UpOptions {
        services: done.iter().map(|r| r.service.clone()).collect(),
        no_deps: true,
        pull: Some(PullPolicy::Never),
        no_build: true,
        // As many replicas as the project has now.
        scale: done.iter().map(|r| (r.service.clone(), s.project.services.get(&r.service).map_or(1, Service::replicas))).collect(),
        ..Default::default()
    };
    let plan = crate::plan::up::reconcile(&project, &observed, &opts)?;
    for w in &plan.warnings {
        session.warn(w.clone());
    }
    super::up::apply(&session, &plan, runtime, true)?;
    Ok(done)
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
