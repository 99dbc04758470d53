//! `create`: resolve the image (pulling it when missing), generate the bundle and record the
//! container. Nothing runs yet; `start` spawns the monitor.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use berth_compose::model::Service;
use berth_compose::resolved::{NamespaceMode, ResolvedService};
use berth_network::files::{DnsSettings, ResolvConf, Resolver};

use super::{record_event, ContainerConfig, LogOptions, PortBinding, Roots};
use crate::events::{Event, EventSink};
use crate::image::{self, ImageError, ImageStore, PullOptions, Reference};
use crate::leftover::Undone;
use crate::runtime::bundle::RunOverrides;
use crate::runtime::bundle::{self, BundleRequest, ContainerFiles, HostDevice, HostFacts, ImageConfig, NetworkNs};
use crate::runtime::user::UserDb;
use crate::state::{now_millis, ContainerRecord, StateDb, Status};

/// What to create.
pub struct CreateRequest<'a> {
    /// The project.
    pub project: &'a berth_compose::Project,
    /// The service (its `name` set).
    pub service: &'a Service,
    /// Replica number (ignored for one-off containers, which are numbered separately).
    pub number: u32,
    /// A `berth run` container.
    pub oneoff: bool,
    /// `run --name`.
    pub name: Option<String>,
    /// `run` options.
    pub overrides: RunOverrides,
    /// Runtime name to record (`runc`, `crun`).
    pub runtime: &'a str,
    /// `run --rm`.
    pub auto_remove: bool,
    /// What the whole-project side prepared (network namespace, name files, mounts); `None`
    /// for containers made on their own, which get `network_mode` none/host and may have no
    /// volumes, tmpfs, secrets or configs (those are prepared by `crate::stack`).
    pub provided: Option<Provided>,
    /// The image to make it from, by id, instead of the one the service's reference names now
    /// (`rollback` returns to a known-good image whose tag may have moved since).
    pub image_id: Option<&'a str>,
}

/// A container's network and storage, prepared by the project side (`crate::stack`).
#[derive(Debug, Clone, Default)]
pub struct Provided {
    /// The network namespace to join.
    pub network: Option<NetworkNs>,
    /// `/etc/resolv.conf`.
    pub resolv_conf: Option<String>,
    /// `/etc/hosts`.
    pub hosts: Option<String>,
    /// Every mount of the service (volumes, binds, tmpfs, secrets), replacing the service's own.
    pub mounts: Vec<berth_volumes::Mount>,
    /// Volumes it uses (kept in its config, so `volume rm` refuses while it exists).
    pub volumes: Vec<String>,
}

/// Creates one container and returns its state row.
pub fn create_container(
    roots: &Roots,
    db: &StateDb,
    req: &CreateRequest<'_>,
    events: &dyn EventSink,
) -> anyhow::Result<ContainerRecord> {
    let svc = req.service;
    let image_name = svc.image_name(req.project);
    let store = ImageStore::open(&roots.root).context("cannot open the image store")?;
    let record = match store.resolve(req.image_id.unwrap_or(&image_name)) {
        Ok(r) => r,
        Err(e) if req.image_id.is_some() => {
            return Err(e).with_context(|| format!("service `{}`: image `{image_name}`", svc.name))
        }
        Err(ImageError::NotFound(_)) => {
            pull(&store, &image_name, events).with_context(|| format!("service `{}`: pull `{image_name}`", svc.name))?
        }
        Err(e) => return Err(e).with_context(|| format!("service `{}`", svc.name)),
    };
    // One read of the image index: the record has the layers and the config's digest.
    let layers = store.layer_dirs_of(&record, &image_name)?;
    let image = ImageConfig::from_blob(&store.config_of(&record, &image_name)?);

    let id = super::new_id();
    let number = if req.oneoff { db.next_number(&req.project.name, &svc.name, true)? } else { req.number };
    let name = match (&req.name, &svc.container_name, req.oneoff) {
        (Some(n), _, _) => n.clone(),
        (None, _, true) => req.project.oneoff_name(svc, &id[..12]),
        (None, Some(n), false) => n.clone(),
        (None, None, false) => req.project.container_name(svc, number),
    };
    if !super::paths::valid_container_name(&name) {
        bail!("invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed");
    }
    if db.container_by_name(&name)?.is_some() {
        bail!("container name `{name}` is already in use");
    }

    let provided = match &req.provided {
        Some(p) => p.clone(),
        None => {
            // The service's own mounts are the project side's to check and prepare.
            let mounted = !svc.volumes.is_empty() || !svc.tmpfs.is_empty();
            if mounted || !svc.secrets.is_empty() || !svc.configs.is_empty() {
                bail!(
                    "service `{}`: volumes, tmpfs, secrets and configs are prepared by the project side \
                     (`berth::stack`)",
                    svc.name
                );
            }
            Provided::default()
        }
    };
    let resolved = ResolvedService::new(svc)?;
    let network = match (&provided.network, &resolved.network_mode) {
        (Some(ns), _) => ns.clone(),
        (None, Some(NamespaceMode::Host)) => NetworkNs::Host,
        (None, Some(NamespaceMode::None) | None) => NetworkNs::None,
        (None, Some(_)) => {
            let other = svc.network_mode.as_deref().unwrap_or_default();
            events.emit(Event::Warning {
                message: format!(
                    "service `{}`: network_mode `{other}` is not supported yet; using an isolated network namespace",
                    svc.name
                ),
            });
            NetworkNs::None
        }
    };
    let dir = roots.container_dir(&id);
    let files = ContainerFiles {
        hosts: dir.join("hosts"),
        hostname: dir.join("hostname"),
        resolv_conf: dir.join("resolv.conf"),
    };
    let resolv = match &provided.resolv_conf {
        Some(text) => text.clone(),
        None => resolv_conf(svc, &network)?,
    };
    let mut upper_first: Vec<PathBuf> = vec![dir.join("upper")];
    upper_first.extend(layers.iter().rev().cloned());
    let users = UserDb::from_layers(&upper_first);
    let hard = |name: &str| hard_limit(name);
    let device = |p: &Path| host_device(p);
    let all_devices = || host_devices(Path::new("/dev"));
    let init_binary =
        ["/usr/bin/tini-static", "/usr/sbin/tini-static"].map(PathBuf::from).into_iter().find(|p| p.is_file());
    // A cgroup of its own at the top of each hierarchy: no shared parent to create or remove.
    // `cgroup_parent` (checked at load: a relative path without `..`) places it under that cgroup.
    let cgroups_path = match svc.cgroup_parent.as_deref().map(|p| p.trim_matches('/')) {
        Some(parent) if !parent.is_empty() => format!("/{parent}/berth-{id}"),
        _ => format!("/berth-{id}"),
    };
    let generated = bundle::generate(&BundleRequest {
        service: svc,
        image: &image,
        users: &users,
        overrides: &req.overrides,
        id: &id,
        name: &name,
        project: &req.project.name,
        number,
        oneoff: req.oneoff,
        rootfs: roots.rootfs(&id),
        network: network.clone(),
        cgroups_path: cgroups_path.clone(),
        files: files.clone(),
        mounts: &provided.mounts,
        host: HostFacts {
            hard_limits: &hard,
            device: &device,
            all_devices: &all_devices,
            init_binary,
            bounding: crate::runtime::defaults::host_bounding_set(),
            block_weight: crate::runtime::bundle::host_supports_weight(std::path::Path::new("/sys/fs/cgroup")),
        },
    })?;
    // Each warning once per command, however many containers it concerns.
    static SAID: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
    for w in &generated.warnings {
        if SAID.lock().map(|mut said| said.insert(w.clone())).unwrap_or(true) {
            events.emit(Event::Warning { message: w.clone() });
        }
    }
    let hostname = generated.spec.hostname().clone().unwrap_or_default();
    let config = ContainerConfig {
        command: generated.spec.process().as_ref().and_then(|p| p.args().clone()).unwrap_or_default(),
        stop_signal: generated.stop_signal.clone(),
        stop_grace_secs: svc.stop_grace_period.map(|d| d.0.as_secs_f64()).unwrap_or(10.0),
        tty: generated.tty,
        stdin_open: generated.stdin_open,
        log: log_options(svc)?,
        layers,
        cgroups_path,
        network: Some(network),
        ports: declared_ports(svc, &resolved),
        labels: svc.labels.clone(),
        auto_remove: req.auto_remove,
        mounts: provided.mounts.clone(),
        service: serde_json::to_value(crate::plan::hash::hashed_config(svc))?,
        key: None,
        replaces: None,
        supervise: None,
    };
    let rec = ContainerRecord {
        id: id.clone(),
        name,
        project: req.project.name.clone(),
        service: svc.name.clone(),
        number,
        oneoff: req.oneoff,
        image: image_name,
        image_digest: record.id.to_string(),
        config_hash: crate::plan::hash::config_hash(svc),
        runtime: req.runtime.into(),
        status: Status::Created,
        pid: None,
        monitor_pid: None,
        exit_code: None,
        oom_killed: false,
        restart_count: 0,
        created_at: now_millis(),
        started_at: None,
        finished_at: None,
        config,
        published: Vec::new(),
        volumes: provided.volumes.clone(),
    };
    db.insert_container(&rec)?;
    let written = (|| -> anyhow::Result<()> {
        std::fs::create_dir_all(roots.rootfs(&id))?;
        std::fs::create_dir_all(dir.join("logs"))?;
        let hosts = match &provided.hosts {
            // The names file of a networked container names its addresses; its hostname (the
            // short id by default, known only now) goes with them, as Docker writes it.
            Some(h) => with_hostname(h, &rec.name, &hostname),
            None => bundle::hosts_file(&hostname, &svc.extra_hosts),
        };
        std::fs::write(&files.hosts, hosts)?;
        std::fs::write(&files.hostname, format!("{hostname}\n"))?;
        std::fs::write(&files.resolv_conf, resolv)?;
        // Bind-mounted into /etc: every user in the container reads them.
        for f in [&files.hosts, &files.hostname, &files.resolv_conf] {
            std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        }
        let json = serde_json::to_vec_pretty(&bundle::to_json(&generated.spec))?;
        std::fs::write(roots.bundle(&id).join("config.json"), json)?;
        Ok(())
    })();
    if let Err(e) = written {
        let e = e.context(format!("cannot write the bundle of `{}`", rec.name));
        let e = e.undone(|| format!("`{}`", dir.display()), super::paths::remove_tree(&roots.containers_dir(), &dir));
        return Err(e.undone(|| format!("the state row of `{}`", rec.name), db.delete_container(&id)));
    }
    record_event(db, &rec, "create", &[]);
    Ok(rec)
}

fn pull(store: &ImageStore, name: &str, events: &dyn EventSink) -> anyhow::Result<crate::image::ImageRecord> {
    let reference = Reference::parse(name)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(image::pull(store, &reference, &PullOptions::default(), events))?;
    Ok(store.resolve(name)?)
}

/// `hosts` with `hostname` added to the lines that name the container `name` (its own
/// addresses), unless it is there already.
fn with_hostname(hosts: &str, name: &str, hostname: &str) -> String {
    let mut out = String::new();
    for line in hosts.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        out.push_str(line);
        if !line.starts_with('#') && words.iter().skip(1).any(|w| *w == name) && !words.contains(&hostname) {
            out.push(' ');
            out.push_str(hostname);
        }
        out.push('\n');
    }
    out
}

fn log_options(svc: &Service) -> anyhow::Result<LogOptions> {
    let mut o = LogOptions::default();
    let Some(logging) = &svc.logging else { return Ok(o) };
    if let Some(Some(s)) = logging.options.get("max-size") {
        let b = berth_compose::units::Bytes::parse(s)
            .map_err(|e| anyhow::anyhow!("service `{}`: logging max-size: {e}", svc.name))?;
        o.max_size = b.0.max(0) as u64;
    }
    if let Some(Some(n)) = logging.options.get("max-file") {
        o.max_file = n
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .with_context(|| format!("service `{}`: logging max-file `{n}` is not a positive number", svc.name))?;
    }
    Ok(o)
}

/// The `resolv.conf` of a container without project networks: the host's servers (the loopback
/// ones only on the host's network) unless the service names its own.
fn resolv_conf(svc: &Service, network: &NetworkNs) -> anyhow::Result<String> {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolver = match network {
        NetworkNs::Host => Resolver::Host(&host),
        _ => Resolver::Isolated(&host),
    };
    let servers = svc
        .dns
        .iter()
        .map(|d| d.parse().with_context(|| format!("service `{}`: dns `{d}` is not an IP address", svc.name)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let dns = DnsSettings { servers: &servers, search: &svc.dns_search, options: &svc.dns_opt };
    Ok(ResolvConf::for_container(resolver, dns).render())
}

/// The hard limit of this process for a Compose ulimit name.
pub(crate) fn hard_limit(name: &str) -> Option<u64> {
    use nix::sys::resource::{getrlimit, Resource};
    let r = match name {
        "core" => Resource::RLIMIT_CORE,
        "cpu" => Resource::RLIMIT_CPU,
        "data" => Resource::RLIMIT_DATA,
        "fsize" => Resource::RLIMIT_FSIZE,
        "locks" => Resource::RLIMIT_LOCKS,
        "memlock" => Resource::RLIMIT_MEMLOCK,
        "msgqueue" => Resource::RLIMIT_MSGQUEUE,
        "nice" => Resource::RLIMIT_NICE,
        "nofile" => Resource::RLIMIT_NOFILE,
        "nproc" => Resource::RLIMIT_NPROC,
        "rss" => Resource::RLIMIT_RSS,
        "rtprio" => Resource::RLIMIT_RTPRIO,
        "rttime" => Resource::RLIMIT_RTTIME,
        "sigpending" => Resource::RLIMIT_SIGPENDING,
        "stack" => Resource::RLIMIT_STACK,
        "as" => Resource::RLIMIT_AS,
        _ => return None,
    };
    getrlimit(r).ok().map(|(_, hard)| hard)
}

pub(crate) fn host_device(p: &Path) -> Option<HostDevice> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(p).ok()?;
    let ft = m.file_type();
    if !ft.is_block_device() && !ft.is_char_device() {
        return None;
    }
    let rdev = m.rdev();
    Some(HostDevice {
        block: ft.is_block_device(),
        major: nix::sys::stat::major(rdev) as i64,
        minor: nix::sys::stat::minor(rdev) as i64,
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
    })
}

/// The character and block devices under `dir` (`/dev`), as runc's `GetDevices` lists them for
/// Docker's `privileged`: recursively, but not into `pts`, `shm`, `fd`, `mqueue` (the container
/// gets its own) or LXC's and udev's private directories; without `console` (the runtime sets up
/// the container's own), symbolic links, FIFOs and sockets. Sorted by path.
pub(crate) fn host_devices(dir: &Path) -> Vec<(PathBuf, HostDevice)> {
    use std::os::unix::fs::FileTypeExt;
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, HostDevice)>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            // `file_type` does not follow symbolic links.
            let Ok(ft) = entry.file_type() else { continue };
            let name = entry.file_name();
            let path = entry.path();
            if ft.is_dir() {
                let private = [".lxc", ".lxd-mounts", ".udev", "fd", "mqueue", "pts", "shm"];
                if !private.iter().any(|p| name == *p) {
                    walk(&path, out);
                }
            } else if (ft.is_char_device() || ft.is_block_device()) && name != "console" {
                if let Some(d) = host_device(&path) {
                    out.push((path, d));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The ports `svc` declares, as a container's config keeps them.
pub fn declared_ports(svc: &Service, resolved: &ResolvedService) -> Vec<PortBinding> {
    let ports = svc.ports.iter().zip(&resolved.ports);
    ports
        .map(|(p, r)| PortBinding {
            target: p.target,
            protocol: r.protocol.to_string(),
            host_ip: p.host_ip.clone().unwrap_or_default(),
            published: p.published.clone().unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_devices_are_the_nodes_of_dev_without_links_and_private_dirs() {
        let devs = host_devices(Path::new("/dev"));
        let null = devs.iter().find(|(p, _)| p == Path::new("/dev/null")).expect("/dev/null is listed");
        assert_eq!((null.1.block, null.1.major, null.1.minor), (false, 1, 3));
        for (p, _) in &devs {
            assert!(!p.starts_with("/dev/pts") && !p.starts_with("/dev/shm"), "{p:?}");
            assert_ne!(p, Path::new("/dev/console"));
            // `/dev/stdin` and the like are links to devices, not devices.
            assert!(!std::fs::symlink_metadata(p).unwrap().file_type().is_symlink(), "{p:?}");
        }
        assert!(devs.windows(2).all(|w| w[0].0 < w[1].0), "sorted");

        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.path().join("null")).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/file"), "").unwrap();
        assert!(host_devices(dir.path()).is_empty());
    }
}
