//! The smaller parts of a service: dependencies, health checks, hooks, logging, network
//! attachments, ports, ulimits, devices, env files, `extends`, block I/O.

use serde::{Deserialize, Serialize};

use super::*;

/// `blkio_config:`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioConfig {
    pub weight: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<ThrottleDevice>,
}

/// A device weight.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeightDevice {
    pub path: String,
    pub weight: u16,
}

/// A device rate limit.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThrottleDevice {
    pub path: String,
    pub rate: Bytes,
}

/// `credential_spec:`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CredentialSpec {
    pub config: Option<String>,
    pub file: Option<String>,
    pub registry: Option<String>,
}

/// A `depends_on` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    #[serde(default = "default_condition")]
    pub condition: Condition,
    #[serde(default, skip_serializing_if = "is_false")]
    pub restart: bool,
    #[serde(default = "yes")]
    pub required: bool,
}

impl Default for Dependency {
    fn default() -> Self {
        Dependency { condition: Condition::ServiceStarted, restart: false, required: true }
    }
}

fn default_condition() -> Condition {
    Condition::ServiceStarted
}

/// When a dependency counts as ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The container has started.
    ServiceStarted,
    /// The container's health check passes.
    ServiceHealthy,
    /// The container exited with status 0.
    ServiceCompletedSuccessfully,
}

/// A device mapping.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Device {
    pub source: String,
    pub target: Option<String>,
    pub permissions: Option<String>,
}

/// An `env_file` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvFile {
    pub path: String,
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// `extends:`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Extends {
    pub service: String,
    pub file: Option<String>,
}

/// `healthcheck:`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Option<Vec<String>>,
    pub timeout: Option<Duration>,
    pub interval: Option<Duration>,
    pub retries: Option<u64>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub disable: Option<bool>,
    #[serde(rename = "__ext", default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

/// A `post_start`/`pre_stop` hook, or a watch rule's `exec`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hook {
    pub command: Vec<String>,
    pub user: Option<String>,
    pub privileged: Option<bool>,
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "OptMap::is_empty")]
    pub environment: OptMap,
}

/// A `pre_start` hook: a command run in its own container before the service starts.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreStartHook {
    pub command: Option<Vec<String>>,
    /// The image to run; normalization fills in the service's image.
    pub image: Option<String>,
    pub user: Option<String>,
    pub privileged: Option<bool>,
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "OptMap::is_empty")]
    pub environment: OptMap,
    /// Run once per replica instead of once for the service.
    pub per_replica: Option<bool>,
    #[serde(rename = "__ext", default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

/// `logging:`.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Logging {
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "OptMap::is_empty")]
    pub options: OptMap,
}

/// A service's attachment to a network.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceNetwork {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "StrMap::is_empty")]
    pub driver_opts: StrMap,
    pub gw_priority: Option<i64>,
    pub interface_name: Option<String>,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
    pub mac_address: Option<String>,
    pub priority: Option<i64>,
    #[serde(rename = "__ext", default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

/// A published or exposed port, long form.
#[serde_with::skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Port {
    pub name: Option<String>,
    pub mode: Option<String>,
    pub host_ip: Option<String>,
    pub target: u16,
    /// A port or a range (`8000-8010`).
    pub published: Option<String>,
    pub protocol: Option<String>,
    pub app_protocol: Option<String>,
    #[serde(rename = "__ext", default, skip_serializing_if = "Extensions::is_empty")]
    pub extensions: Extensions,
}

/// A ulimit: one value for both, or soft and hard.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Ulimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard: Option<i64>,
}

impl Serialize for Ulimit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if let Some(v) = self.single {
            return s.serialize_i64(v);
        }
        let mut m = s.serialize_map(None)?;
        if let Some(v) = self.soft {
            m.serialize_entry("soft", &v)?;
        }
        if let Some(v) = self.hard {
            m.serialize_entry("hard", &v)?;
        }
        m.end()
    }
}
