//! OCI bundle generation: a service definition plus its image's config become the runtime's
//! `config.json` (an [`oci_spec::runtime::Spec`]). Pure: everything about the host (hard rlimits,
//! device numbers, the init binary) comes in through [`HostFacts`], so the result is
//! snapshot-tested without root.
//!
//! Docker's rules, followed here:
//! - the command is `entrypoint + command`; an `entrypoint` given by the service (or `run
//!   --entrypoint`) drops the image's `Cmd`;
//! - the environment is the image's `Env`, then the service's (`env_file` already folded into
//!   `environment` by the loader), then `run -e`; `PATH`, `HOSTNAME` and `HOME` get defaults;
//! - the user is resolved through the image's `/etc/passwd` and `/etc/group` (see [`super::user`]);
//! - capabilities are Docker's default set with `cap_add`/`cap_drop` applied (`ALL` allowed);
//!   `privileged` gives every capability, the host's devices (as nodes, with a device cgroup that
//!   allows all), writable `/sys` and no seccomp, masked or read-only paths.
//!
//! Volumes, binds, tmpfs, secrets and configs are not read from the service here: the project
//! side (`crate::stack::storage`) checks and prepares them, and they come in as
//! [`BundleRequest::mounts`], after Docker's default mounts and the `/etc` name files.

mod blkio;
mod devices;
mod files;
mod mounts;
mod namespaces;
mod process;
mod resources;
mod security;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use berth_compose::model::Service;
use berth_compose::resolved::ResolvedService;
use oci_spec::runtime::{LinuxBuilder, LinuxCapabilities, Process, Root, Spec, User};

use super::defaults;
use super::seccomp;
use super::user::UserDb;
use devices::{devices, linux_device};
pub use files::{hosts_file, to_json};
use mounts::mounts;
use namespaces::{namespaces, sysctls};
pub use process::canonical_signal;
use process::{command, environment, rlimits};
use resources::resources;

pub use blkio::host_supports_weight;
use security::{capabilities, security_opts, SeccompMode};

/// The parts of an image's config (`config` in the config blob) a container uses.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageConfig {
    /// `User`.
    pub user: Option<String>,
    /// `Env` (`KEY=value`).
    pub env: Option<Vec<String>>,
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
    /// `StopSignal`.
    pub stop_signal: Option<String>,
    /// `Labels`.
    pub labels: Option<BTreeMap<String, String>>,
}

impl ImageConfig {
    /// Reads it from a whole image config blob (`{"config": {...}, "rootfs": ...}`).
    pub fn from_blob(blob: &serde_json::Value) -> ImageConfig {
        blob.get("config").and_then(|c| serde_json::from_value(c.clone()).ok()).unwrap_or_default()
    }
}

/// The network namespace a container joins: the seam the networking code plugs into.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkNs {
    /// A new namespace of its own with only loopback (`network_mode: none`).
    None,
    /// The host's namespace (`network_mode: host`).
    Host,
    /// A namespace berth prepared, bind-mounted at this path.
    Path(PathBuf),
}

/// What `berth run` (and later `exec`-like callers) change of the service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOverrides {
    /// `run SERVICE COMMAND...`.
    pub command: Option<Vec<String>>,
    /// `--entrypoint` (an empty string clears it).
    pub entrypoint: Option<Vec<String>>,
    /// `-e KEY=VALUE`, applied last.
    pub env: Vec<(String, String)>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub working_dir: Option<String>,
    /// Terminal (from `-T` or detection).
    pub tty: Option<bool>,
    /// Keep stdin open.
    pub stdin_open: Option<bool>,
}

/// Files berth writes for each container and bind-mounts in.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerFiles {
    /// Host path of the container's `/etc/hosts`.
    pub hosts: PathBuf,
    /// Host path of `/etc/hostname`.
    pub hostname: PathBuf,
    /// Host path of `/etc/resolv.conf`.
    pub resolv_conf: PathBuf,
}

/// A host device as `stat` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostDevice {
    /// Block (`b`) or character (`c`).
    pub block: bool,
    /// Major number.
    pub major: i64,
    /// Minor number.
    pub minor: i64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// Facts about the host the bundle depends on.
pub struct HostFacts<'a> {
    /// Hard rlimits of the process that starts the runtime, by Compose name (`nofile`, `nproc`, ...).
    pub hard_limits: &'a dyn Fn(&str) -> Option<u64>,
    /// A host device node by path.
    pub device: &'a dyn Fn(&Path) -> Option<HostDevice>,
    /// Every device node of the host's `/dev` a `privileged` container gets, by path (asked only
    /// for privileged containers).
    pub all_devices: &'a dyn Fn() -> Vec<(PathBuf, HostDevice)>,
    /// A static init to run as pid 1 for `init: true`.
    pub init_binary: Option<PathBuf>,
    /// The capabilities berth itself may hand out (its bounding set, bit per capability number).
    pub bounding: u64,
    /// The kernel can weigh block I/O (a CFQ or BFQ scheduler; see [`host_supports_weight`]).
    pub block_weight: bool,
}

/// Everything one container's bundle is made from.
pub struct BundleRequest<'a> {
    /// The service.
    pub service: &'a Service,
    /// Its image's config.
    pub image: &'a ImageConfig,
    /// The image's users and groups.
    pub users: &'a UserDb,
    /// `berth run` options.
    pub overrides: &'a RunOverrides,
    /// Container id (the hostname defaults to its first 12 characters).
    pub id: &'a str,
    /// Container name.
    pub name: &'a str,
    /// Project name.
    pub project: &'a str,
    /// Replica number.
    pub number: u32,
    /// Made by `berth run`.
    pub oneoff: bool,
    /// Absolute path of the root file system mount point.
    pub rootfs: PathBuf,
    /// Network namespace.
    pub network: NetworkNs,
    /// `linux.cgroupsPath`.
    pub cgroups_path: String,
    /// The per-container `/etc` files.
    pub files: ContainerFiles,
    /// The service's volumes, binds, tmpfs, secrets and configs, as the project side prepared
    /// them (in order).
    pub mounts: &'a [berth_volumes::Mount],
    /// Host facts.
    pub host: HostFacts<'a>,
}

/// A generated bundle config and what else came out of reading the service.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The runtime spec.
    pub spec: Spec,
    /// Things the user should know (clamped limits, ignored options).
    pub warnings: Vec<String>,
    /// The signal `stop` sends first (`SIGTERM` unless the service or image says otherwise).
    pub stop_signal: String,
    /// Runs with a terminal.
    pub tty: bool,
    /// Keeps stdin open.
    pub stdin_open: bool,
}

/// Path inside the container where the init binary is mounted for `init: true`.
pub const INIT_PATH: &str = "/sbin/berth-init";

/// Errors of bundle generation: bad input the user must fix.
#[derive(Debug, thiserror::Error)]
#[error("service `{service}`: {message}")]
pub struct BundleError {
    /// Service name.
    pub service: String,
    /// What is wrong.
    pub message: String,
}

/// Builds the bundle config of one container.
pub fn generate(req: &BundleRequest<'_>) -> Result<Bundle, BundleError> {
    let svc = req.service;
    let fail = |message: String| BundleError { service: svc.name.clone(), message };
    let resolved = ResolvedService::new(svc).map_err(|e| fail(e.to_string()))?;
    let mut warnings = Vec::new();
    let privileged = svc.privileged.unwrap_or(false);
    let tty = req.overrides.tty.or(svc.tty).unwrap_or(false);
    let stdin_open = req.overrides.stdin_open.or(svc.stdin_open).unwrap_or(false);

    let mut args = command(req).ok_or_else(|| fail("no command: neither the service nor the image sets one".into()))?;
    if svc.init.unwrap_or(false) {
        if req.host.init_binary.is_none() {
            return Err(fail("`init: true` needs `tini-static` (Debian package `tini`)".into()));
        }
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
    }
    let hostname = svc.hostname.clone().unwrap_or_else(|| req.id.chars().take(12).collect());
    let user_spec = req.overrides.user.clone().or_else(|| svc.user.clone()).or_else(|| req.image.user.clone());
    let user = req.users.resolve(user_spec.as_deref().unwrap_or(""), &svc.group_add).map_err(&fail)?;
    let env = environment(req, &hostname, &user.home, tty);
    let cwd = req
        .overrides
        .working_dir
        .clone()
        .or_else(|| svc.working_dir.clone())
        .or_else(|| req.image.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(fail(format!("working directory `{cwd}` is not absolute")));
    }

    let mut caps = capabilities(svc, privileged).map_err(&fail)?;
    let missing: Vec<String> = caps
        .iter()
        .filter(|c| req.host.bounding & (1 << defaults::cap_number(**c)) == 0)
        .map(|c| c.to_string())
        .collect();
    if !missing.is_empty() {
        caps.retain(|c| req.host.bounding & (1 << defaults::cap_number(*c)) != 0);
        if !privileged && !svc.cap_add.iter().any(|c| c.trim().eq_ignore_ascii_case("all")) {
            warnings.push(format!(
                "service `{}`: capabilities this host does not grant are left out: {}",
                svc.name,
                missing.join(", ")
            ));
        }
    }
    let (no_new_privs, seccomp_mode) = security_opts(svc, &mut warnings).map_err(&fail)?;
    let rlimits = rlimits(svc, req.host.hard_limits, &mut warnings).map_err(&fail)?;

    let mut oci_user = User::default();
    oci_user.set_uid(user.uid);
    oci_user.set_gid(user.gid);
    // Docker's umask for container processes (berth's own is 077).
    oci_user.set_umask(Some(0o022));
    if !user.additional_gids.is_empty() {
        oci_user.set_additional_gids(Some(user.additional_gids.clone()));
    }
    let mut caps_set = LinuxCapabilities::default();
    let set: oci_spec::runtime::Capabilities = caps.iter().copied().collect();
    caps_set.set_bounding(Some(set.clone()));
    caps_set.set_effective(Some(set.clone()));
    caps_set.set_permitted(Some(set));
    caps_set.set_inheritable(None);
    caps_set.set_ambient(None);
    let mut process = Process::default();
    process.set_terminal(Some(tty));
    process.set_user(oci_user);
    process.set_args(Some(args));
    process.set_env(Some(env));
    process.set_cwd(PathBuf::from(&cwd));
    process.set_capabilities(Some(caps_set));
    process.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
    process.set_no_new_privileges(Some(no_new_privs));
    process.set_apparmor_profile(None);
    process.set_oom_score_adj(svc.oom_score_adj.map(|v| v.clamp(-1000, 1000) as i32));

    let mut root = Root::default();
    root.set_path(req.rootfs.clone());
    root.set_readonly(Some(svc.read_only.unwrap_or(false)));

    let mounts = mounts(req, privileged);
    let (mut devices, mut device_rules) = devices(svc, req.host.device).map_err(&fail)?;
    if privileged {
        // Docker's privileged: the host's devices (besides the service's own mappings) and a
        // device cgroup that allows everything.
        for (path, host) in (req.host.all_devices)() {
            if !devices.iter().any(|d| d.path() == &path) {
                devices.push(linux_device(&path, &host));
            }
        }
        device_rules = defaults::allow_all_devices();
    }
    let mut resources = resources(svc).map_err(&fail)?;
    resources.set_devices(Some(device_rules));
    if let Some(b) = &svc.blkio_config {
        let io = blkio::block_io(b, req.host.device, req.host.block_weight, &mut warnings).map_err(&fail)?;
        resources.set_block_io(Some(io));
    }

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(&resolved, &req.network))
        .cgroups_path(PathBuf::from(&req.cgroups_path))
        .resources(resources)
        .devices(devices)
        .sysctl(sysctls(svc, &resolved))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    linux.set_masked_paths(None);
    linux.set_readonly_paths(None);
    linux.set_seccomp(None);
    if !privileged {
        linux.set_masked_paths(Some(defaults::MASKED_PATHS.iter().map(|s| s.to_string()).collect()));
        linux.set_readonly_paths(Some(defaults::READONLY_PATHS.iter().map(|s| s.to_string()).collect()));
        match seccomp_mode {
            SeccompMode::Default => {
                linux.set_seccomp(Some(seccomp::default_profile(&caps)));
            }
            SeccompMode::Unconfined => {}
            SeccompMode::Profile(p) => {
                linux.set_seccomp(Some(p));
            }
        }
    }

    let mut spec = Spec::default();
    spec.set_version("1.0.2".into());
    spec.set_process(Some(process));
    spec.set_root(Some(root));
    spec.set_hostname(Some(hostname));
    spec.set_domainname(svc.domainname.clone());
    spec.set_mounts(Some(mounts));
    spec.set_annotations(Some(annotations(req)));
    spec.set_linux(Some(linux));

    let stop_signal = svc
        .stop_signal
        .clone()
        .or_else(|| req.image.stop_signal.clone())
        .map(|s| canonical_signal(&s).ok_or_else(|| fail(format!("unknown stop signal `{s}`"))))
        .transpose()?
        .unwrap_or_else(|| "SIGTERM".into());
    Ok(Bundle { spec, warnings, stop_signal, tty, stdin_open })
}

fn annotations(req: &BundleRequest<'_>) -> HashMap<String, String> {
    let mut a: HashMap<String, String> = req.image.labels.clone().unwrap_or_default().into_iter().collect();
    a.extend(req.service.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    // `annotations:` go to the runtime as they are (after labels, as Docker passes them).
    a.extend(req.service.annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    a.insert("com.docker.compose.project".into(), req.project.into());
    a.insert("com.docker.compose.service".into(), req.service.name.clone());
    a.insert("com.docker.compose.container-number".into(), req.number.to_string());
    a.insert("com.docker.compose.oneoff".into(), if req.oneoff { "True" } else { "False" }.into());
    a.insert("berth.container.name".into(), req.name.into());
    a
}

#[cfg(test)]
mod tests;
