//! Container lifecycle: create (bundle + state row), start (a monitor per container), stop, kill,
//! remove, pause, exec, wait — for one project's containers.
//!
//! Order of side effects, so that a crash in between is repaired by the next command: the state
//! row is written before the first file of a new container and deleted after its last one; a
//! running container's row is `running` only after the runtime started it, and its monitor writes
//! the exit before it exits. [`refresh`] repairs rows whose monitor died.

mod copy;
mod create;
pub mod driver;
mod exec;
mod export;
mod launch;
mod lifecycle;
pub mod paths;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};

pub use copy::{copy, CopyEndpoint, CopyOptions};
pub use create::{create_container, declared_ports, CreateRequest, Provided};
pub(crate) use create::{hard_limit, host_device, host_devices};
pub use export::export;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use driver::{Driver, System};
pub use exec::{exec, ExecRequest};
pub(crate) use launch::pid_alive;
pub use launch::{
    berth_exe, hold_monitor_lock, launch_monitor, monitor_active, spawn_monitor, MonitorStart, StartFailed, StartMode,
};
pub use lifecycle::{
    dismantle, forget, kill, parse_signal, pause, refresh, remove, restart, start, stop, unpause, wait_exit, Lifecycle,
};
pub use paths::{is_mount_point, Roots};
pub use stats::{host_oom_killed, oom_killed, read_stats, stats, top, CgroupLayout, Stats};

use crate::runtime::bundle::NetworkNs;
use crate::state::{ContainerRecord, StateDb};
use crate::supervise::spec::SuperviseSpec;

/// Log rotation settings (`logging.options` `max-size`, `max-file`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogOptions {
    /// Rotate when the current file reaches this many bytes (0: never).
    pub max_size: u64,
    /// Files kept, the current one included.
    pub max_file: u32,
}

impl Default for LogOptions {
    /// Rotation is on by default: 10 MiB per file, 3 files.
    fn default() -> Self {
        LogOptions { max_size: 10 * 1024 * 1024, max_file: 3 }
    }
}

/// A published port as declared (publishing itself is the network module's).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortBinding {
    /// Container port.
    pub target: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Host address (empty: all).
    pub host_ip: String,
    /// Host port or range (empty: none).
    pub published: String,
}

/// What berth keeps about a container besides its bundle: the `config` column of its state row,
/// read with the row into [`ContainerRecord::config`]. Its published ports and volumes have
/// tables of their own ([`ContainerRecord::published`], [`ContainerRecord::volumes`]).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContainerConfig {
    /// The command line, for `ps`.
    pub command: Vec<String>,
    /// The first signal of `stop`.
    pub stop_signal: String,
    /// Seconds between the stop signal and SIGKILL.
    pub stop_grace_secs: f64,
    /// Runs with a terminal.
    pub tty: bool,
    /// Keeps stdin open.
    pub stdin_open: bool,
    /// Log rotation.
    pub log: LogOptions,
    /// Image layer directories, bottom first.
    pub layers: Vec<PathBuf>,
    /// `linux.cgroupsPath`.
    pub cgroups_path: String,
    /// The network namespace.
    pub network: Option<NetworkNs>,
    /// Declared ports (the host ports bound for them are [`ContainerRecord::published`]).
    pub ports: Vec<PortBinding>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Remove the container when it exits (`run --rm`).
    pub auto_remove: bool,
    /// The mounts the project side prepared for it (volumes, binds, tmpfs, secrets), each
    /// with its origin: another container's `volumes_from` takes over its volumes and binds.
    #[serde(default)]
    pub mounts: Vec<berth_volumes::Mount>,
    /// The service configuration it was made from (the part the config hash covers), so a
    /// plan can say which key changed.
    #[serde(default)]
    pub service: serde_json::Value,
    /// What the project supervisor needs to know about it; `None` for a container made outside
    /// a project's `up` or `run` (or before they recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervise: Option<SuperviseSpec>,
    /// The name its network namespace, secrets, leases and port rules were made under, when it
    /// has another name since (a start-first successor that took its predecessor's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The container (id) it replaces, while it is a start-first successor not yet switched
    /// to: the supervisor serves neither its names nor its ports until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// Opens the state database under the roots.
pub fn open_db(roots: &Roots) -> anyhow::Result<StateDb> {
    StateDb::open(&roots.root).context("cannot open the state database")
}

/// The project's containers of `services` (all when empty), one-off ones only with `oneoff`.
pub fn select(
    db: &StateDb,
    project: &str,
    services: &[String],
    include_oneoff: bool,
) -> anyhow::Result<Vec<ContainerRecord>> {
    let mut out = db.containers(project)?;
    out.retain(|c| (services.is_empty() || services.contains(&c.service)) && (include_oneoff || !c.oneoff));
    Ok(out)
}

/// The container of `service` with replica number `index` (for `exec`, `cp`, `port`).
pub fn by_index(db: &StateDb, project: &str, service: &str, index: u32) -> anyhow::Result<ContainerRecord> {
    let all = db.containers(project)?;
    if let Some(c) = all.iter().find(|c| c.service == service && c.number == index && !c.oneoff) {
        return Ok(c.clone());
    }
    if let Some(c) = all.iter().find(|c| c.name == service) {
        return Ok(c.clone());
    }
    if all.iter().any(|c| c.service == service) {
        bail!("service `{service}` has no container number {index}");
    }
    bail!("service `{service}` has no container; run `berth create` or `berth up` first")
}

/// Fails for a running container whose monitor's run directory is gone (`$BERTH_RUN` was
/// cleaned, or a cleanup raced it): an `exec` writes its process file there and an attach
/// connects to the monitor's socket in it, so neither can work, and restarting the container
/// (which starts a new monitor) is the way out.
pub fn require_run_dir(roots: &Roots, rec: &ContainerRecord) -> anyhow::Result<()> {
    let dir = roots.run_dir(&rec.id);
    if rec.status.is_alive() && !dir.is_dir() {
        bail!(
            "container `{}` runs, but its run directory `{}` is gone, so berth's monitor can no longer be reached \
             (exec and attach need it)\nhint: restart the container (`berth restart {}`) to give it a new monitor",
            rec.name,
            dir.display(),
            rec.service
        );
    }
    Ok(())
}

/// A new random container id (64 hex digits).
pub fn new_id() -> String {
    let mut buf = [0u8; 32];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf)).is_err() {
        let t = crate::state::now_nanos() as u64 ^ ((std::process::id() as u64) << 32);
        buf[..8].copy_from_slice(&t.to_le_bytes());
    }
    hex::encode(buf)
}

/// Appends an event for a container, ignoring failures (events are best effort).
pub fn record_event(db: &StateDb, c: &ContainerRecord, action: &str, attrs: &[(&str, serde_json::Value)]) {
    let mut map = serde_json::Map::new();
    map.insert("image".into(), c.image.clone().into());
    for (k, v) in attrs {
        map.insert((*k).into(), v.clone());
    }
    // The event log is informational (`berth events`); the container's own row is what counts.
    let _ = db.append_event(&c.project, &c.service, &c.id, &c.name, action, map);
}
