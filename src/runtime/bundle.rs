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

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use berth_compose::model::Service;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilities, LinuxCpu, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType,
    LinuxMemory, LinuxNamespace, LinuxNamespaceType, LinuxPids, LinuxResources, Mount, PosixRlimit, PosixRlimitBuilder,
    PosixRlimitType, Process, Root, Spec, User,
};

use super::defaults::{self, parse_capability};
use super::seccomp;
use super::user::UserDb;

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
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(svc, &req.network))
        .cgroups_path(PathBuf::from(&req.cgroups_path))
        .resources(resources)
        .devices(devices)
        .sysctl(sysctls(svc))
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

/// `entrypoint + command`, Docker's way.
fn command(req: &BundleRequest<'_>) -> Option<Vec<String>> {
    let svc = req.service;
    let (entrypoint, entry_overridden) = match (&req.overrides.entrypoint, &svc.entrypoint) {
        (Some(e), _) => (e.clone(), true),
        (None, Some(e)) => (e.clone(), true),
        (None, None) => (req.image.entrypoint.clone().unwrap_or_default(), false),
    };
    let entrypoint: Vec<String> = entrypoint.into_iter().filter(|s| !(s.is_empty() && entry_overridden)).collect();
    let cmd = match (&req.overrides.command, &svc.command) {
        (Some(c), _) if !c.is_empty() => c.clone(),
        (_, Some(c)) => c.clone(),
        _ if entry_overridden => Vec::new(),
        _ => req.image.cmd.clone().unwrap_or_default(),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    (!args.is_empty()).then_some(args)
}

fn environment(req: &BundleRequest<'_>, hostname: &str, home: &str, tty: bool) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| match env.iter_mut().find(|(ek, _)| ek == k) {
        Some(e) => e.1 = v.to_string(),
        None => env.push((k.to_string(), v.to_string())),
    };
    for kv in req.image.env.iter().flatten() {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        set(k, v);
    }
    for (k, v) in &req.service.environment {
        if let Some(v) = v {
            set(k, v);
        }
    }
    for (k, v) in &req.overrides.env {
        set(k, v);
    }
    let has = |env: &[(String, String)], k: &str| env.iter().any(|(ek, _)| ek == k);
    let mut out = Vec::new();
    if !has(&env, "PATH") {
        out.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOSTNAME") {
        out.push(format!("HOSTNAME={hostname}"));
    }
    if tty && !has(&env, "TERM") {
        out.push("TERM=xterm".into());
    }
    out.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    if !has(&env, "HOME") {
        out.push(format!("HOME={home}"));
    }
    out
}

fn capabilities(svc: &Service, privileged: bool) -> Result<Vec<Capability>, String> {
    if privileged {
        return Ok(defaults::ALL_CAPS.to_vec());
    }
    let is_all = |s: &String| s.trim().eq_ignore_ascii_case("all") || s.trim().eq_ignore_ascii_case("cap_all");
    let mut caps: Vec<Capability> =
        if svc.cap_add.iter().any(is_all) { defaults::ALL_CAPS.to_vec() } else { defaults::DEFAULT_CAPS.to_vec() };
    for c in svc.cap_add.iter().filter(|c| !is_all(c)) {
        let cap = parse_capability(c).ok_or_else(|| format!("unknown capability `{c}` in cap_add"))?;
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    if svc.cap_drop.iter().any(is_all) {
        // `cap_drop: [ALL]` keeps only what cap_add names explicitly.
        caps.retain(|c| svc.cap_add.iter().filter_map(|a| parse_capability(a)).any(|a| a == *c));
    }
    for c in svc.cap_drop.iter().filter(|c| !is_all(c)) {
        let cap = parse_capability(c).ok_or_else(|| format!("unknown capability `{c}` in cap_drop"))?;
        caps.retain(|x| *x != cap);
    }
    caps.sort_by_key(|c| c.to_string());
    Ok(caps)
}

enum SeccompMode {
    Default,
    Unconfined,
    Profile(oci_spec::runtime::LinuxSeccomp),
}

fn security_opts(svc: &Service, warnings: &mut Vec<String>) -> Result<(bool, SeccompMode), String> {
    let mut nnp = false;
    let mut mode = SeccompMode::Default;
    for opt in &svc.security_opt {
        let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), ""));
        match key {
            "no-new-privileges" => nnp = value.is_empty() || value == "true",
            "seccomp" if value == "unconfined" => mode = SeccompMode::Unconfined,
            "seccomp" => {
                let text = std::fs::read_to_string(value).map_err(|e| format!("seccomp profile `{value}`: {e}"))?;
                let profile = serde_json::from_str(&text)
                    .map_err(|e| format!("seccomp profile `{value}` is not an OCI seccomp profile: {e}"))?;
                mode = SeccompMode::Profile(profile);
            }
            "apparmor" | "label" | "systempaths" => {
                warnings.push(format!("service `{}`: security_opt `{opt}` is not supported and ignored", svc.name))
            }
            _ => return Err(format!("unknown security_opt `{opt}`")),
        }
    }
    Ok((nnp, mode))
}

/// `sysctls`, plus `kernel.domainname` for `domainname`: runc before 1.2 ignores the spec's
/// `domainname`, and the sysctl sets it in the container's own UTS namespace with any runtime.
fn sysctls(svc: &Service) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = svc.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(d) = svc.domainname.as_ref().filter(|_| svc.uts.as_deref() != Some("host")) {
        out.entry("kernel.domainname".into()).or_insert_with(|| d.clone());
    }
    out
}

/// Maps a Compose ulimit name to the OCI rlimit type.
fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    use PosixRlimitType::*;
    Some(match name {
        "core" => RlimitCore,
        "cpu" => RlimitCpu,
        "data" => RlimitData,
        "fsize" => RlimitFsize,
        "locks" => RlimitLocks,
        "memlock" => RlimitMemlock,
        "msgqueue" => RlimitMsgqueue,
        "nice" => RlimitNice,
        "nofile" => RlimitNofile,
        "nproc" => RlimitNproc,
        "rss" => RlimitRss,
        "rtprio" => RlimitRtprio,
        "rttime" => RlimitRttime,
        "sigpending" => RlimitSigpending,
        "stack" => RlimitStack,
        "as" => RlimitAs,
        _ => return None,
    })
}

fn rlimits(
    svc: &Service,
    hard_limits: &dyn Fn(&str) -> Option<u64>,
    warnings: &mut Vec<String>,
) -> Result<Vec<PosixRlimit>, String> {
    let mut out = Vec::new();
    for (name, u) in &svc.ulimits {
        let typ = rlimit_type(name).ok_or_else(|| format!("unknown ulimit `{name}`"))?;
        let to_u64 = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
        let soft = to_u64(u.single.or(u.soft).unwrap_or(0));
        let hard = to_u64(u.single.or(u.hard).or(u.soft).unwrap_or(0));
        if soft > hard {
            return Err(format!("ulimit `{name}`: soft limit {soft} is above the hard limit {hard}"));
        }
        let (mut s, mut h) = (soft, hard);
        if let Some(max) = hard_limits(name) {
            if h > max {
                warnings.push(format!(
                    "service `{}`: ulimit `{name}` {hard} is above the host's hard limit {max}; using {max}",
                    svc.name
                ));
                h = max;
                s = s.min(max);
            }
        }
        let r = PosixRlimitBuilder::default().typ(typ).soft(s).hard(h).build();
        out.push(r.map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn bind(dest: &str, source: &Path, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(dest.into());
    m.set_typ(Some("bind".into()));
    m.set_source(Some(source.to_path_buf()));
    m.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    m
}

fn mounts(req: &BundleRequest<'_>, privileged: bool) -> Vec<Mount> {
    let svc = req.service;
    let shm = svc.shm_size.map(|b| b.0).filter(|b| *b > 0).unwrap_or(defaults::DEFAULT_SHM_SIZE);
    let mut mounts = defaults::default_mounts(shm, privileged);
    let ro = svc.read_only.unwrap_or(false);
    let etc_opts: &[&str] = if ro { &["rbind", "rprivate", "ro"] } else { &["rbind", "rprivate"] };
    mounts.push(bind("/etc/hosts", &req.files.hosts, etc_opts));
    mounts.push(bind("/etc/hostname", &req.files.hostname, etc_opts));
    mounts.push(bind("/etc/resolv.conf", &req.files.resolv_conf, etc_opts));
    if let Some(init) = &req.host.init_binary {
        if svc.init.unwrap_or(false) {
            mounts.push(bind(INIT_PATH, init, &["rbind", "rprivate", "ro"]));
        }
    }
    for m in req.mounts {
        let mut mount = Mount::default();
        mount.set_destination(PathBuf::from(&m.destination));
        mount.set_typ(Some(
            match m.kind {
                berth_volumes::MountKind::Bind => "bind",
                berth_volumes::MountKind::Tmpfs => "tmpfs",
            }
            .into(),
        ));
        mount.set_source(Some(PathBuf::from(&m.source)));
        mount.set_options(Some(m.options.clone()));
        mounts.push(mount);
    }
    mounts
}

fn namespaces(svc: &Service, network: &NetworkNs) -> Vec<LinuxNamespace> {
    let ns = |typ: LinuxNamespaceType, path: Option<PathBuf>| {
        let mut n = LinuxNamespace::default();
        n.set_typ(typ);
        n.set_path(path);
        n
    };
    let mut out = Vec::new();
    if svc.pid.as_deref() != Some("host") {
        out.push(ns(LinuxNamespaceType::Pid, None));
    }
    if svc.ipc.as_deref() != Some("host") {
        out.push(ns(LinuxNamespaceType::Ipc, None));
    }
    if svc.uts.as_deref() != Some("host") {
        out.push(ns(LinuxNamespaceType::Uts, None));
    }
    out.push(ns(LinuxNamespaceType::Mount, None));
    match network {
        NetworkNs::None => out.push(ns(LinuxNamespaceType::Network, None)),
        NetworkNs::Host => {}
        NetworkNs::Path(p) => out.push(ns(LinuxNamespaceType::Network, Some(p.clone()))),
    }
    out
}

type DeviceLookup<'a> = &'a dyn Fn(&Path) -> Option<HostDevice>;

fn devices(svc: &Service, lookup: DeviceLookup<'_>) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), String> {
    let mut devices = Vec::new();
    let mut rules = defaults::default_device_rules();
    for d in &svc.devices {
        let host = lookup(Path::new(&d.source)).ok_or_else(|| format!("device `{}` does not exist", d.source))?;
        let dev = linux_device(Path::new(d.target.as_deref().unwrap_or(&d.source)), &host);
        let typ = dev.typ();
        devices.push(dev);
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(typ));
        rule.set_major(Some(host.major));
        rule.set_minor(Some(host.minor));
        rule.set_access(Some(d.permissions.clone().unwrap_or_else(|| "rwm".into())));
        rules.push(rule);
    }
    for r in &svc.device_cgroup_rules {
        rules.push(parse_device_rule(r).ok_or_else(|| format!("invalid device_cgroup_rules entry `{r}`"))?);
    }
    Ok((devices, rules))
}

/// The runtime creates `path` in the container as a node like the host's `host`.
fn linux_device(path: &Path, host: &HostDevice) -> LinuxDevice {
    let mut dev = LinuxDevice::default();
    dev.set_path(path.to_path_buf());
    dev.set_typ(if host.block { LinuxDeviceType::B } else { LinuxDeviceType::C });
    dev.set_major(host.major);
    dev.set_minor(host.minor);
    dev.set_file_mode(Some(host.mode & 0o7777));
    dev.set_uid(Some(host.uid));
    dev.set_gid(Some(host.gid));
    dev
}

/// Parses `c 1:3 rwm`, `a *:* m`, `b 8:* r`.
fn parse_device_rule(s: &str) -> Option<LinuxDeviceCgroup> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [typ, nums, access] = parts[..] else { return None };
    let typ = match typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return None,
    };
    let (maj, min) = nums.split_once(':')?;
    let num = |n: &str| if n == "*" { Some(None) } else { n.parse::<i64>().ok().map(Some) };
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_typ(Some(typ));
    r.set_major(num(maj)?);
    r.set_minor(num(min)?);
    r.set_access(Some(access.to_string()));
    Some(r)
}

/// cgroup resources, in the runtime spec's terms, which are the same for cgroup v1 and v2: the
/// runtime writes the files (runc's and crun's `cgroups` code; runtime-spec `config-linux.md`).
///
/// | Compose | spec | v1 file | v2 file |
/// |---|---|---|---|
/// | `mem_limit` | `memory.limit` | `memory.limit_in_bytes` | `memory.max` |
/// | `memswap_limit` (memory + swap; default 2 × `mem_limit`, `-1` unlimited) | `memory.swap` | `memory.memsw.limit_in_bytes` | `memory.swap.max` = swap − limit |
/// | `mem_reservation` | `memory.reservation` | `memory.soft_limit_in_bytes` | `memory.low` |
/// | `cpus` | `cpu.quota` / `cpu.period` (100 ms) | `cpu.cfs_quota_us` / `cpu.cfs_period_us` | `cpu.max` "quota period" |
/// | `cpu_shares` | `cpu.shares` | `cpu.shares` | `cpu.weight` = 1 + (shares − 2) × 9999 / 262142 |
/// | `cpuset` | `cpu.cpus` | `cpuset.cpus` | `cpuset.cpus` |
/// | `pids_limit` (`0`/`-1` unlimited) | `pids.limit` (`-1` unlimited) | `pids.max` | `pids.max` |
///
/// As Docker does, a `memswap_limit` of 0 counts as not set.
fn resources(svc: &Service) -> Result<LinuxResources, String> {
    let limits = svc.deploy.as_ref().and_then(|d| d.resources.as_ref()).and_then(|r| r.limits.as_ref());
    let reservations = svc.deploy.as_ref().and_then(|d| d.resources.as_ref()).and_then(|r| r.reservations.as_ref());
    let mut res = LinuxResources::default();

    let mem_limit = svc.mem_limit.map(|b| b.0).or_else(|| limits.and_then(|l| l.memory).map(|b| b.0));
    let mem_reservation = svc.mem_reservation.map(|b| b.0).or_else(|| reservations.and_then(|l| l.memory).map(|b| b.0));
    let swap = svc.memswap_limit.map(|b| b.0).filter(|s| *s != 0);
    if mem_limit.is_some() || mem_reservation.is_some() || swap.is_some() || svc.mem_swappiness.is_some() {
        if let (Some(m), Some(s)) = (mem_limit, swap) {
            if s > 0 && s < m {
                return Err(format!("memswap_limit ({s}) must not be below mem_limit ({m})"));
            }
        }
        let mut mem = LinuxMemory::default();
        mem.set_limit(mem_limit.filter(|m| *m > 0));
        mem.set_reservation(mem_reservation.filter(|m| *m > 0));
        // Docker: without memswap_limit, a container may use as much swap as memory.
        mem.set_swap(swap.or_else(|| mem_limit.filter(|m| *m > 0).map(|m| m * 2)));
        mem.set_swappiness(svc.mem_swappiness.map(|s| s.clamp(0, 100) as u64));
        mem.set_disable_oom_killer(svc.oom_kill_disable);
        res.set_memory(Some(mem));
    }

    let cpus = svc.cpus.filter(|c| *c > 0.0).or_else(|| limits.and_then(|l| l.cpus).filter(|c| *c > 0.0));
    if cpus.is_some() || svc.cpu_shares.is_some() || svc.cpuset.is_some() || svc.cpu_quota.is_some() {
        let mut cpu = LinuxCpu::default();
        if let Some(c) = cpus {
            cpu.set_period(Some(100_000));
            cpu.set_quota(Some((c * 100_000.0).round() as i64));
        } else if let Some(q) = svc.cpu_quota {
            cpu.set_quota(Some(q));
            cpu.set_period(svc.cpu_period.map(|p| p as u64));
        }
        cpu.set_shares(svc.cpu_shares.filter(|s| *s > 0).map(|s| s as u64));
        cpu.set_cpus(svc.cpuset.clone());
        res.set_cpu(Some(cpu));
    }

    if let Some(p) = svc.pids_limit.or_else(|| limits.and_then(|l| l.pids)) {
        let mut pids = LinuxPids::default();
        pids.set_limit(if p <= 0 { -1 } else { p });
        res.set_pids(Some(pids));
    }
    Ok(res)
}

fn annotations(req: &BundleRequest<'_>) -> HashMap<String, String> {
    let mut a: HashMap<String, String> = req.image.labels.clone().unwrap_or_default().into_iter().collect();
    a.extend(req.service.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    a.insert("com.docker.compose.project".into(), req.project.into());
    a.insert("com.docker.compose.service".into(), req.service.name.clone());
    a.insert("com.docker.compose.container-number".into(), req.number.to_string());
    a.insert("com.docker.compose.oneoff".into(), if req.oneoff { "True" } else { "False" }.into());
    a.insert("berth.container.name".into(), req.name.into());
    a
}

/// `SIGTERM` for `TERM`, `SIGTERM`, `sigterm` or `15`; `None` for an unknown signal.
pub fn canonical_signal(s: &str) -> Option<String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).ok().map(|sig| sig.as_str().to_string());
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<nix::sys::signal::Signal>().ok().map(|sig| sig.as_str().to_string())
}

/// The contents of `/etc/hosts` for a container.
pub fn hosts_file(hostname: &str, extra_hosts: &[String]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in extra_hosts {
        // `host=addr` (long form) or `host:addr` (Docker's short form; IPv6 addresses contain `:`).
        let (name, addr) = h.split_once('=').or_else(|| h.split_once(':')).unwrap_or((h.as_str(), ""));
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        s.push_str(&format!("{addr}\t{name}\n"));
    }
    s.push_str(&format!("127.0.1.1\t{hostname}\n"));
    s
}

/// Serializes a spec deterministically: capability sets and maps (annotations, sysctls) sorted.
pub fn to_json(spec: &Spec) -> serde_json::Value {
    let mut v = serde_json::to_value(spec).unwrap_or_default();
    if let Some(caps) = v.pointer_mut("/process/capabilities").and_then(|c| c.as_object_mut()) {
        for set in caps.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    for ptr in ["/annotations", "/linux/sysctl"] {
        if let Some(map) = v.pointer_mut(ptr).and_then(|m| m.as_object_mut()) {
            map.sort_keys();
        }
    }
    v
}

#[cfg(test)]
mod tests;
