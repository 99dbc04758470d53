//! `deploy:` (replicas, resources, restart policy, placement) and `develop:` (watch rules).

use serde::{Deserialize, Serialize};

use super::*;

/// `deploy:`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Deploy {
    pub mode: Option<String>,
    pub replicas: Option<u64>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub labels: StrMap,
    pub update_config: Option<UpdateConfig>,
    pub rollback_config: Option<UpdateConfig>,
    pub resources: Option<Resources>,
    pub restart_policy: Option<RestartPolicy>,
    pub placement: Option<Placement>,
    pub endpoint_mode: Option<String>,
    #[serde(rename = "__ext", default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

/// `deploy.update_config` / `rollback_config`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateConfig {
    pub parallelism: Option<u64>,
    pub delay: Option<Duration>,
    pub failure_action: Option<String>,
    pub monitor: Option<Duration>,
    pub max_failure_ratio: Option<f64>,
    pub order: Option<String>,
}

/// `deploy.resources`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub limits: Option<Resource>,
    pub reservations: Option<Resource>,
}

/// Limits or reservations.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resource {
    pub cpus: Option<f64>,
    pub memory: Option<Bytes>,
    pub pids: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generic_resources: Vec<GenericResource>,
}

/// A device request under `deploy.resources.reservations.devices`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceRequest {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    pub count: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub options: StrMap,
}

/// A swarm generic resource.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenericResource {
    pub discrete_resource_spec: Option<DiscreteResource>,
}

/// A discrete generic resource.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscreteResource {
    pub kind: String,
    pub value: i64,
}

/// `deploy.restart_policy`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartPolicy {
    pub condition: Option<String>,
    pub delay: Option<Duration>,
    pub max_attempts: Option<u64>,
    pub window: Option<Duration>,
}

/// `deploy.placement`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Placement {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<StrMap>,
    pub max_replicas_per_node: Option<u64>,
}

/// `develop:`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Develop {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<WatchRule>,
    #[serde(rename = "__ext", default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

/// One `develop.watch` rule.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchRule {
    pub path: String,
    pub action: WatchAction,
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    pub initial_sync: Option<bool>,
    pub exec: Option<Hook>,
    #[serde(rename = "__ext", default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

/// What a watch rule does on change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WatchAction {
    /// Copy changed files into the container.
    #[default]
    Sync,
    /// Rebuild the image and recreate.
    Rebuild,
    /// Restart the container.
    Restart,
    /// Sync, then restart.
    #[serde(rename = "sync+restart")]
    SyncRestart,
    /// Sync, then run a command.
    #[serde(rename = "sync+exec")]
    SyncExec,
}
