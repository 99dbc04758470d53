//! Plans: what must change to bring a project to its desired state, decided in pure code.
//!
//! `reconcile` (in [`up`] and [`down`]) compares the desired [`Project`] with the
//! [`Observed`] state and returns a [`Plan`]: single operations, each with the steps it waits
//! for and a human cause. It does no I/O. A plan prints one deterministic line per step,
//! `[deps] #id resource name op (cause)`, which is what `berth up --dry-run` shows and what
//! the plan snapshot tests compare.
//!
//! [`Project`]: berth_compose::Project

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub mod down;
pub mod hash;
pub mod inplace;
mod operation;
pub mod up;

pub use crate::state::Status;

/// A container berth knows about.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedContainer {
    /// Container name.
    pub name: String,
    /// The name its network namespace, secrets and leases go by, when not its name (a
    /// start-first successor that took its predecessor's name).
    pub key: Option<String>,
    /// Its service.
    pub service: String,
    /// Replica number (1-based).
    pub number: u32,
    /// A one-off container from `berth run`.
    pub one_off: bool,
    /// [`hash::config_hash`] of the definition it was created from.
    pub config_hash: String,
    /// [`hash::hashed_config`] it was created from, when recorded (to say what changed).
    pub config: Option<serde_json::Value>,
    /// The digest of the image it was created from.
    pub image_digest: Option<String>,
    /// Its state.
    pub status: Status,
    /// Its files are gone (a create or remove was interrupted): it cannot start and is made anew.
    pub broken: bool,
}

/// What exists now, as far as a plan needs to know.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// The project's containers.
    pub containers: Vec<ObservedContainer>,
    /// Networks that exist (by name).
    pub networks: BTreeSet<String>,
    /// Networks still used by containers of other projects (by name).
    pub networks_in_use_elsewhere: BTreeSet<String>,
    /// Volumes that exist (by name).
    pub volumes: BTreeSet<String>,
    /// Images in the local store: reference → digest.
    pub images: BTreeMap<String, String>,
    /// How long ago each local image was pulled, when known (for `pull_policy: daily`, ...).
    pub image_ages: BTreeMap<String, std::time::Duration>,
}

pub use operation::{ContainerTarget, Kind, Op, Operation, Resource, Subject};

/// A step of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// 1-based id, unique in the plan.
    pub id: usize,
    /// Steps that must finish first.
    pub deps: Vec<usize>,
    /// What it does, with everything the engine needs to do it.
    pub operation: Operation,
    /// Why, in words.
    pub cause: String,
}

impl Step {
    /// The kind of object it acts on.
    pub fn kind(&self) -> Kind {
        self.operation.kind()
    }

    /// The verb.
    pub fn op(&self) -> Op {
        self.operation.op()
    }

    /// The object's name (network, volume, image reference or container name).
    pub fn name(&self) -> &str {
        self.operation.name()
    }

    /// The service it belongs to, for containers and images.
    pub fn service(&self) -> Option<&str> {
        self.operation.service()
    }

    /// The container it acts on, for container steps.
    pub fn container(&self) -> Option<&ContainerTarget> {
        self.operation.container()
    }

    /// What it acts on, as progress events name it.
    pub fn subject(&self) -> Subject {
        self.operation.subject()
    }
}

/// A whole plan, in an order that respects dependencies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The steps.
    pub steps: Vec<Step>,
    /// Things the user should know that need no step (orphans left alone, ...).
    pub warnings: Vec<String>,
}

impl Plan {
    /// Adds a step and returns its id.
    pub fn add(&mut self, operation: Operation, cause: impl Into<String>, mut deps: Vec<usize>) -> usize {
        deps.sort_unstable();
        deps.dedup();
        let id = self.steps.len() + 1;
        self.steps.push(Step { id, deps, operation, cause: cause.into() });
        id
    }

    /// The plan's image builds alone (they run before the rest is planned again, so that a
    /// rebuilt image is compared with what containers run).
    pub fn builds(&self) -> Plan {
        let mut out = Plan::default();
        for s in self.steps.iter().filter(|s| matches!(s.operation, Operation::BuildImage { .. })) {
            out.add(s.operation.clone(), s.cause.clone(), vec![]);
        }
        out
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The steps that create containers, with their targets.
    pub fn creates(&self) -> impl Iterator<Item = (&Step, &ContainerTarget)> {
        self.steps.iter().filter_map(|s| match &s.operation {
            Operation::CreateContainer { target, .. } => Some((s, target)),
            _ => None,
        })
    }

    /// The containers the plan removes for good (scale-down, orphans, `down`): never waited on
    /// as a dependency.
    pub fn leaving(&self) -> BTreeSet<String> {
        self.steps
            .iter()
            .filter_map(|s| match &s.operation {
                Operation::RemoveContainer { target, leaving: true, .. } => Some(target.name.clone()),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let deps: Vec<String> = self.deps.iter().map(usize::to_string).collect();
        write!(f, "[{}] #{} {} ({})", deps.join(","), self.id, self.operation, self.cause)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            writeln!(f, "{s}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}
