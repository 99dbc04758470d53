//! The typed Compose model, in its long (canonical) form.
//!
//! Short syntaxes are expanded before these types are read (see `canonical`), so each field
//! has one shape. Keys a type does not declare are errors, except `x-` extensions, which are
//! kept in `extensions` (serialized inline again by `output`). Maps whose order Compose does
//! not keep are `BTreeMap`s so output is sorted like `docker compose config`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::units::{Bytes, Duration};

mod build;
mod deploy;
mod mounts;
mod parts;
mod resources;

pub use build::*;
pub use deploy::*;
pub use mounts::*;
pub use parts::*;
pub use resources::*;

/// `x-` keys of an object.
pub type Extensions = serde_json::Map<String, serde_json::Value>;
/// `KEY: value` pairs where a value may be absent (`environment`, build `args`).
pub type OptMap = BTreeMap<String, Option<String>>;
/// `KEY: value` pairs (`labels`, `sysctls`, `driver_opts`).
pub type StrMap = BTreeMap<String, String>;

fn is_false(b: &bool) -> bool {
    !*b
}

/// A whole project after loading.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Project {
    /// The project name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Networks by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Network>,
    /// Volumes by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Volume>,
    /// Secrets by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, Secret>,
    /// Configs by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, Secret>,
    /// Models by key (kept as written).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, serde_json::Value>,
    /// Top-level `x-` keys.
    #[serde(rename = "__ext", default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
    /// Compose v1's names (`--compatibility`, `COMPOSE_COMPATIBILITY`): `_` joins the parts of
    /// container and image names instead of `-`.
    #[serde(skip)]
    pub compatibility: bool,
}

impl Project {
    /// What joins the project, service and number in the names berth makes.
    pub fn separator(&self) -> &'static str {
        if self.compatibility {
            "_"
        } else {
            "-"
        }
    }

    /// The name of replica `number` of `service`: its `container_name`, else
    /// `<project>-<service>-<number>` (`_` with `--compatibility`).
    pub fn container_name(&self, service: &Service, number: u32) -> String {
        match &service.container_name {
            Some(n) => n.clone(),
            None => [self.name.as_str(), &service.name, &number.to_string()].join(self.separator()),
        }
    }

    /// The name of a one-off container of `service`: `<project>-<service>-run-<id>`.
    pub fn oneoff_name(&self, service: &Service, id: &str) -> String {
        [self.name.as_str(), &service.name, "run", id].join(self.separator())
    }
}

/// One service.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Service {
    /// Set by the loader from the map key; not read from the file.
    #[serde(skip)]
    pub name: String,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub annotations: StrMap,
    pub attach: Option<bool>,
    pub blkio_config: Option<BlkioConfig>,
    pub build: Option<Build>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    pub cgroup: Option<String>,
    pub cgroup_parent: Option<String>,
    /// `None` when not set; `Some(vec![])` when explicitly empty.
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileRef>,
    pub container_name: Option<String>,
    pub cpu_count: Option<i64>,
    pub cpu_percent: Option<f64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_rt_period: Option<String>,
    pub cpu_rt_runtime: Option<String>,
    pub cpu_shares: Option<i64>,
    pub cpus: Option<f64>,
    pub cpuset: Option<String>,
    pub credential_spec: Option<CredentialSpec>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, Dependency>,
    pub deploy: Option<Deploy>,
    pub develop: Option<Develop>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    pub domainname: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "OptMap::is_empty")]
    pub environment: OptMap,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<EnvFile>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    /// Resolved by the loader; kept only in `--no-normalize` style output.
    pub extends: Option<Extends>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_links: Vec<String>,
    /// `host=address` entries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    pub gpus: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    pub hostname: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    pub image: Option<String>,
    pub init: Option<bool>,
    pub ipc: Option<String>,
    pub isolation: Option<String>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub labels: StrMap,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub label_file: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    pub logging: Option<Logging>,
    pub mac_address: Option<String>,
    pub mem_limit: Option<Bytes>,
    pub mem_reservation: Option<Bytes>,
    pub mem_swappiness: Option<i64>,
    pub memswap_limit: Option<Bytes>,
    pub models: Option<serde_json::Value>,
    pub network_mode: Option<String>,
    /// Networks by key; `None` means attached with no options.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Option<ServiceNetwork>>,
    pub oom_kill_disable: Option<bool>,
    pub oom_score_adj: Option<i64>,
    pub pid: Option<String>,
    pub pids_limit: Option<i64>,
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_start: Vec<Hook>,
    /// Containers run to completion before the service starts (not run by berth yet).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pre_start: Vec<PreStartHook>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pre_stop: Vec<Hook>,
    pub privileged: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    pub provider: Option<serde_json::Value>,
    pub pull_policy: Option<String>,
    pub pull_refresh_after: Option<String>,
    pub read_only: Option<bool>,
    pub restart: Option<String>,
    pub runtime: Option<String>,
    pub scale: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    pub shm_size: Option<Bytes>,
    pub stdin_open: Option<bool>,
    pub stop_grace_period: Option<Duration>,
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub storage_opt: StrMap,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub sysctls: StrMap,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    pub tty: Option<bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, Ulimit>,
    pub use_api_socket: Option<bool>,
    pub user: Option<String>,
    pub userns_mode: Option<String>,
    pub uts: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ServiceVolume>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    pub working_dir: Option<String>,
    #[serde(rename = "__ext", default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

fn yes() -> bool {
    true
}

impl Service {
    /// The image this service runs: `image:`, or `<project>-<service>` for built images (`_`
    /// with `--compatibility`).
    pub fn image_name(&self, project: &Project) -> String {
        self.image.clone().unwrap_or_else(|| format!("{}{}{}", project.name, project.separator(), self.name))
    }

    /// How many containers the service wants (`scale`, else `deploy.replicas`, else 1).
    pub fn replicas(&self) -> u64 {
        self.scale.or_else(|| self.deploy.as_ref().and_then(|d| d.replicas)).unwrap_or(1)
    }
}
