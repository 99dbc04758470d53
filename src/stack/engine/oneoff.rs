//! One-off containers (`berth run`), made by the same path as `up`'s: a network namespace on the
//! service's networks with leased addresses and a DNS entry, named and anonymous volumes, binds
//! and tmpfs checked by `stack::storage`, secrets and configs, an intent recorded first so a
//! killed `run` is reclaimed by the next `up` or `down`. What differs is Compose's: the name is
//! `<project>-<service>-run-<12 hex>`, the container answers to that name only unless
//! `--use-aliases` (then to the service's names and aliases too), it publishes only what `run`
//! asks for, and no restart policy applies.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use berth_compose::model::{Service, VolumeType};
use berth_compose::resolved::ResolvedService;

use super::{Make, StackEngine};
use crate::container;
use crate::events::Event;
use crate::execute::{Engine, Readiness};
use crate::image::{PullDecision, PullPolicy};
use crate::plan::{Kind, Op};
use crate::runtime::bundle::RunOverrides;
use crate::state::ContainerRecord;
use crate::supervise::ports::HostPort;
use crate::supervise::reserve;

/// A one-off container as `berth run` asks for it.
#[derive(Debug, Clone)]
pub struct OneOff {
    /// The service with `run`'s changes applied (published ports, extra volumes, labels,
    /// capabilities; see [`run_service`]).
    pub service: Service,
    /// `--name` (default: `<project>-<service>-run-<12 hex>`).
    pub name: Option<String>,
    /// Command, entrypoint, environment, user, working directory, terminal.
    pub overrides: RunOverrides,
    /// `--rm`: removed, with its anonymous volumes, network namespace, leases and secrets, once
    /// it exits (by its monitor).
    pub auto_remove: bool,
    /// `--use-aliases`: known by the service's name and aliases on its networks too.
    pub use_aliases: bool,
    /// `--pull` (`always`, `missing`, `never`); `None` follows the service's `pull_policy`.
    pub pull: Option<PullPolicy>,
}

/// `run`'s changes to a service, as Compose makes them: no restart policy; the service's ports
/// only with `service_ports`, else the `publish` ones; `volumes` added; labels set; capabilities
/// added and dropped (an added one is no longer dropped and the other way round).
#[derive(Debug, Clone, Default)]
pub struct RunChanges {
    /// `--service-ports`.
    pub service_ports: bool,
    /// `-p`, parsed.
    pub publish: Vec<berth_compose::model::Port>,
    /// `-v`, parsed (bind sources absolute).
    pub volumes: Vec<berth_compose::model::ServiceVolume>,
    /// `-l KEY=VALUE`.
    pub labels: Vec<(String, String)>,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
}

/// The service a one-off container of `svc` is made from (see [`RunChanges`]).
pub fn run_service(svc: &Service, changes: &RunChanges) -> Service {
    let mut s = svc.clone();
    s.restart = None;
    if let Some(d) = &mut s.deploy {
        d.restart_policy = None;
    }
    if !changes.service_ports {
        s.ports = changes.publish.clone();
    }
    s.volumes.extend(changes.volumes.iter().cloned());
    for (k, v) in &changes.labels {
        s.labels.insert(k.clone(), v.clone());
    }
    let same = |a: &str, b: &str| a.trim_start_matches("CAP_").eq_ignore_ascii_case(b.trim_start_matches("CAP_"));
    if !changes.cap_add.is_empty() {
        s.cap_drop.retain(|d| !changes.cap_add.iter().any(|a| same(a, d)));
        s.cap_add.extend(changes.cap_add.iter().cloned());
    }
    if !changes.cap_drop.is_empty() {
        s.cap_add.retain(|a| !changes.cap_drop.iter().any(|d| same(a, d)));
        s.cap_drop.extend(changes.cap_drop.iter().cloned());
    }
    s
}

impl StackEngine<'_> {
    /// Makes a one-off container: its image pulled as `pull` (or the service's `pull_policy`)
    /// says, the project volumes it mounts created, its networks ensured, fixed host ports
    /// checked free, then the container made as `up` makes one. Nothing is started.
    pub fn create_oneoff(&self, oneoff: &OneOff) -> anyhow::Result<ContainerRecord> {
        let svc = &oneoff.service;
        let name = match &oneoff.name {
            Some(n) => n.clone(),
            None => self.project.oneoff_name(svc, &container::new_id()[..12]),
        };
        if !container::paths::valid_container_name(&name) {
            bail!("invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed");
        }
        if self.db.lock().expect("db").container_by_name(&name)?.is_some() {
            bail!("container name `{name}` is already in use");
        }
        self.ensure_image(svc, oneoff.pull)?;
        self.ensure_volumes(svc)?;
        self.check_fixed_ports(svc, &name)?;
        let make = Make {
            name: &name,
            number: 0,
            oneoff: true,
            overrides: oneoff.overrides.clone(),
            auto_remove: oneoff.auto_remove,
            aliases: oneoff.use_aliases,
            renew_anonymous_volumes: false,
        };
        self.make(svc, &make)
    }

    /// Builds `svc`'s image when it has `build:` and the image is missing (or its pull policy is
    /// `build`), as `up` would; else pulls it when `policy` (else the service's `pull_policy`) says
    /// so; fails when it is missing and may not be pulled.
    fn ensure_image(&self, svc: &Service, policy: Option<PullPolicy>) -> anyhow::Result<()> {
        let image = svc.image_name(self.project);
        let present = self.images.resolve(&image).is_ok();
        let policy = match policy {
            Some(p) => p,
            None => ResolvedService::new(svc)?.pull_policy,
        };
        if crate::build::compose::buildable(svc) && (!present || policy == PullPolicy::Build) {
            return self.build(&svc.name).with_context(|| format!("service `{}`: build `{image}`", svc.name));
        }
        match crate::image::should_pull(policy, present, None) {
            PullDecision::MissingNever => {
                bail!("image {image:?} of service {:?} is not present and the pull policy is \"never\"", svc.name)
            }
            d if d.pulls() => {
                self.pull(&image).with_context(|| format!("service `{}`: pull `{image}`", svc.name))?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Creates the project volumes `svc` mounts that do not exist yet (an external one must).
    fn ensure_volumes(&self, svc: &Service) -> anyhow::Result<()> {
        let keys = svc.volumes.iter().filter(|v| v.kind == VolumeType::Volume).filter_map(|v| v.source.as_ref());
        for key in keys {
            let vol = self.project.volumes.get(key).ok_or_else(|| {
                anyhow!("service `{}`: volume {key:?} is not declared in the project's `volumes`", svc.name)
            })?;
            let spec = super::volume_spec(self.project, key);
            if self.volumes.get(&spec.name)?.is_some() {
                continue;
            }
            if vol.external == Some(true) {
                bail!("external volume {:?} not found", spec.name);
            }
            let step = crate::plan::Subject { kind: Kind::Volume, name: spec.name.clone(), op: Op::Create };
            self.events.emit(Event::StepStarted { step: step.clone() });
            self.volumes.create(&spec)?;
            self.events.emit(Event::StepDone { step });
        }
        Ok(())
    }

    /// Fails when a fixed host port `svc` publishes is taken: by a container of the project
    /// (named), or outside it (who has it is named), as `up` checks its plan's.
    fn check_fixed_ports(&self, svc: &Service, container: &str) -> anyhow::Result<()> {
        let wanted: Vec<reserve::Wanted> = reserve::fixed_ports(svc)?
            .into_iter()
            .map(|(index, port)| reserve::Wanted {
                container: container.to_string(),
                service: svc.name.clone(),
                index,
                port,
            })
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let db = self.db.lock().expect("db");
        let rows = db.containers(&self.project.name)?;
        let outside = |p: &HostPort| reserve::holder(&self.roots, &db, &self.project.name, p);
        let free = reserve::free_for(&self.roots, &self.project.name, &[]);
        reserve::check(&wanted, &rows, &[], free, outside).map_err(anyhow::Error::msg)
    }

    /// Waits until the dependencies of `service` are as its `depends_on` asks (started,
    /// healthy, completed successfully). An optional dependency that is not comes back as a
    /// warning; a required one fails.
    pub fn wait_dependencies(&self, service: &str) -> anyhow::Result<Vec<String>> {
        let readiness = crate::execute::readiness(self.project);
        let mut warnings = Vec::new();
        for dep in readiness.get(service).into_iter().flatten() {
            let r: &Readiness = dep;
            if let Err(e) = Engine::wait_ready(self, r) {
                if r.required {
                    bail!("{e}");
                }
                warnings.push(format!("optional dependency {:?} is not ready: {}", r.service, e.reason()));
            }
        }
        Ok(warnings)
    }

    /// Makes sure the project's supervisor serves one-off container `rec` before it starts:
    /// its address is known to the DNS server as one that asks (else its queries for the
    /// project's names would go to the host's resolvers), its published ports are reserved (held
    /// by the supervisor until the container runs; see `supervise::reserve`, and
    /// `reserve::release` once it started), and its health check is served. A container on no
    /// berth network, publishing nothing and without a health check needs none.
    pub fn supervise_oneoff(&self, rec: &ContainerRecord) -> anyhow::Result<()> {
        if !super::needs_supervisor(rec) {
            return Ok(());
        }
        let project = &self.project.name;
        crate::supervise::client::ensure(&self.roots, project)?;
        let wanted: Vec<reserve::Wanted> = rec
            .published
            .iter()
            .map(|p| reserve::Wanted {
                container: rec.name.clone(),
                service: rec.service.clone(),
                index: p.index as usize,
                port: HostPort::of(p),
            })
            .collect();
        reserve::reserve(&self.roots, &self.db.lock().expect("db"), project, &wanted, &[])?;
        crate::supervise::client::refresh(&self.roots, project, Duration::from_secs(10))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml: &str) -> Service {
        let text = format!("name: t\nservices:\n  app:\n    image: busybox\n{yaml}");
        berth_compose::load_str(&text, &std::env::temp_dir()).expect("valid").project.services["app"].clone()
    }

    #[test]
    fn a_one_off_has_no_restart_policy_and_publishes_only_what_run_asks() {
        let svc = service(
            "    restart: always\n    deploy:\n      restart_policy: {condition: any}\n    ports: [\"8080:80\"]\n",
        );
        let plain = run_service(&svc, &RunChanges::default());
        assert_eq!(plain.restart, None);
        assert!(plain.deploy.as_ref().is_some_and(|d| d.restart_policy.is_none()));
        assert_eq!(
            ResolvedService::new(&plain).unwrap().restart.condition,
            crate::supervise::restart::Condition::Never
        );
        assert!(plain.ports.is_empty(), "no ports without --service-ports or -p");
        let service_ports = run_service(&svc, &RunChanges { service_ports: true, ..Default::default() });
        assert_eq!(service_ports.ports, svc.ports);
        let publish = berth_compose::short::parse_port("127.0.0.1:9000:90").unwrap();
        let published = run_service(&svc, &RunChanges { publish: publish.clone(), ..Default::default() });
        assert_eq!(published.ports, publish);
    }

    #[test]
    fn volumes_labels_and_capabilities_are_added() {
        let svc = service(
            "    volumes: [\"/data\"]\n    labels: {a: \"1\"}\n    cap_add: [NET_ADMIN]\n    cap_drop: [CHOWN]\n",
        );
        let changes = RunChanges {
            volumes: vec![berth_compose::short::parse_volume("/srv:/srv:ro").unwrap()],
            labels: vec![("a".into(), "2".into()), ("b".into(), "3".into())],
            cap_add: vec!["CAP_CHOWN".into()],
            cap_drop: vec!["net_admin".into(), "KILL".into()],
            ..Default::default()
        };
        let s = run_service(&svc, &changes);
        let targets: Vec<&str> = s.volumes.iter().map(|v| v.target.as_str()).collect();
        assert_eq!(targets, ["/data", "/srv"]);
        assert_eq!((s.labels["a"].as_str(), s.labels["b"].as_str()), ("2", "3"));
        // An added capability is no longer dropped, and a dropped one no longer added.
        assert_eq!(s.cap_add, ["CAP_CHOWN"]);
        assert_eq!(s.cap_drop, ["net_admin", "KILL"]);
    }
}
