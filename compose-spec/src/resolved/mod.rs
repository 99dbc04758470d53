//! One resolved, typed view of a service: the values berth decides on, parsed once from the
//! normalized model. The serde model ([`crate::model`]) keeps Compose's spellings so `berth
//! config` prints what was written; [`ResolvedService`] turns the keys whose spelling carries
//! meaning (`service:`/`container:` prefixes, restart and pull policies, health check tags, port
//! protocols and ranges) into enums and numbers.
//!
//! The loader resolves every service ([`check`]), so a value that does not resolve fails at load
//! with its file, line, column and key, like the other validation errors. Code that changes a
//! service after loading (`run`'s overrides) resolves it again with [`ResolvedService::new`].

mod health;
mod namespace;
mod ports;
mod pull;
mod restart;
mod update;

use crate::error::{Error, Result};
use crate::model::{Project, Service};
use crate::validate::{key_path, span_near, value_span};
use crate::yaml::Node;
pub use health::{HealthCheck, HealthTest};
pub use namespace::{NamespaceMode, VolumesFrom, VolumesFromSource};
pub use ports::{Protocol, PublishedPort};
pub use pull::PullPolicy;
pub use restart::{RestartCondition, RestartPolicy};
pub use update::{FailureAction, UpdateOrder, UpdatePolicy};

/// A service's values in berth's terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResolvedService {
    /// `network_mode`.
    pub network_mode: Option<NamespaceMode>,
    /// `ipc`.
    pub ipc: Option<NamespaceMode>,
    /// `pid`.
    pub pid: Option<NamespaceMode>,
    /// `uts`.
    pub uts: Option<NamespaceMode>,
    /// `cgroup`.
    pub cgroup: Option<NamespaceMode>,
    /// `volumes_from`, in order.
    pub volumes_from: Vec<VolumesFrom>,
    /// `restart:` or `deploy.restart_policy`.
    pub restart: RestartPolicy,
    /// `pull_policy` (`missing` when unset).
    pub pull_policy: PullPolicy,
    /// `healthcheck:` when written.
    pub healthcheck: Option<HealthCheck>,
    /// `ports:`, in order.
    pub ports: Vec<PublishedPort>,
    /// `deploy.update_config`: how `up` replaces its containers.
    pub update: UpdatePolicy,
    /// `deploy.rollback_config`: how a rollback replaces its containers (`update` when unset).
    pub rollback: Option<UpdatePolicy>,
}

/// Where a resolution error points: at the key, or at the value written under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spot {
    /// The key (`restart:`), for a value refused as a whole.
    Key,
    /// The value (or the nearest key above it that is written).
    Value,
}

/// A value of a service that does not resolve.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", self.path())]
pub struct ResolveError {
    /// The service.
    pub service: String,
    /// The key path below the service, e.g. `["ports", "[1]", "protocol"]`.
    pub keys: Vec<String>,
    /// What is wrong.
    pub message: String,
    /// Where in the file it points.
    pub spot: Spot,
}

impl ResolveError {
    /// The whole key path, e.g. `services.web.ports[1].protocol`.
    pub fn path(&self) -> String {
        key_path(&self.full_keys())
    }

    fn full_keys(&self) -> Vec<&str> {
        ["services", self.service.as_str()].into_iter().chain(self.keys.iter().map(String::as_str)).collect()
    }

    /// The loader's error, placed in `tree`.
    fn locate(&self, tree: &Node) -> Error {
        let keys = self.full_keys();
        let span = match self.spot {
            Spot::Key => span_near(tree, &keys),
            Spot::Value => value_span(tree, &keys),
        };
        match span {
            Some(span) => Error::at(span, Some(self.path()), self.message.clone()),
            None => Error::msg(self.message.clone()).with_path(&self.path()),
        }
    }
}

/// A refused value below a service, before the service's name is known.
struct Invalid {
    keys: Vec<String>,
    message: String,
    spot: Spot,
}

type Resolved<T> = std::result::Result<T, Invalid>;

/// A refused value at `keys`, pointing at the value.
fn invalid<S: AsRef<str>>(keys: &[S], message: String) -> Invalid {
    Invalid { keys: keys.iter().map(|k| k.as_ref().to_string()).collect(), message, spot: Spot::Value }
}

/// A refused value at `keys`, pointing at the key.
fn invalid_key(keys: &[&str], message: String) -> Invalid {
    Invalid { spot: Spot::Key, ..invalid(keys, message) }
}

/// `[i]`, a list index in a key path.
fn ix(i: usize) -> String {
    format!("[{i}]")
}

impl ResolvedService {
    /// Resolves `svc` (its `name` names it in errors).
    pub fn new(svc: &Service) -> std::result::Result<ResolvedService, ResolveError> {
        Self::resolve(svc).map_err(|i| ResolveError {
            service: svc.name.clone(),
            keys: i.keys,
            message: i.message,
            spot: i.spot,
        })
    }

    fn resolve(svc: &Service) -> Resolved<ResolvedService> {
        let ns = |key, value: &Option<String>| namespace::parse(key, value.as_deref());
        Ok(ResolvedService {
            network_mode: ns(namespace::Key::Network, &svc.network_mode)?,
            ipc: ns(namespace::Key::Ipc, &svc.ipc)?,
            pid: ns(namespace::Key::Pid, &svc.pid)?,
            uts: ns(namespace::Key::Uts, &svc.uts)?,
            cgroup: ns(namespace::Key::Cgroup, &svc.cgroup)?,
            volumes_from: namespace::volumes_from(&svc.volumes_from)?,
            restart: restart::resolve(svc)?,
            pull_policy: pull::resolve(svc.pull_policy.as_deref())?,
            healthcheck: svc.healthcheck.as_ref().map(health::resolve).transpose()?,
            ports: svc.ports.iter().enumerate().map(|(i, p)| ports::resolve(i, p)).collect::<Resolved<_>>()?,
            update: update::resolve(svc)?,
            rollback: update::resolve_rollback(svc)?,
        })
    }
}

/// The services of the project `svc` refers to through `network_mode`, `ipc`, `pid`, `uts`,
/// `cgroup` (`service:NAME`) and `volumes_from`, with the key that names each. Each key is read
/// on its own, so one that does not resolve (an uninterpolated template) leaves the others.
pub fn service_refs(svc: &Service) -> Vec<(&'static str, String)> {
    let modes = [
        (namespace::Key::Network, &svc.network_mode),
        (namespace::Key::Ipc, &svc.ipc),
        (namespace::Key::Pid, &svc.pid),
        (namespace::Key::Uts, &svc.uts),
        (namespace::Key::Cgroup, &svc.cgroup),
    ];
    let mut out = Vec::new();
    for (key, value) in modes {
        if let Ok(Some(NamespaceMode::Service(s))) = namespace::parse(key, value.as_deref()) {
            out.push((key.name(), s));
        }
    }
    for entry in &svc.volumes_from {
        let parsed = namespace::volumes_from(std::slice::from_ref(entry)).ok().and_then(|v| v.into_iter().next());
        if let Some(s) = parsed.as_ref().and_then(VolumesFrom::service) {
            out.push(("volumes_from", s.to_string()));
        }
    }
    out
}

/// Resolves every service of `project`; the first that does not resolve fails, placed in `tree`.
pub fn check(project: &Project, tree: &Node) -> Result<()> {
    for svc in project.services.values() {
        ResolvedService::new(svc).map_err(|e| e.locate(tree))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
