//! `RUN`: the command runs in a container made the way service containers are — an overlay of
//! the stage's layers with a fresh upper directory, a bundle from
//! [`crate::runtime::bundle::generate`] (Docker's capabilities, seccomp profile, masked paths;
//! the privileged profile with `build.privileged`; `build.shm_size` and `build.ulimits`) and the
//! OCI runtime — on the network [`super::network`] describes, with `build.extra_hosts` in its
//! `/etc/hosts`. Its output is streamed as [`Event::BuildOutput`]; after it exits the upper
//! directory, tidied of the mount points the runtime made, is the layer. Whatever happens, the
//! container, its network namespace and lease, its mounts and its directory are gone when [`run`]
//! returns.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use std::net::IpAddr;

use berth_compose::model::Service;
use berth_dockerfile::instruction::NetworkMode;

use super::error::{io_err, At, BuildError, Result};
use super::exec::Build;
use super::network::Attachment;
use super::tree::{missing_stubs, tidy_upper, top_first};
use crate::container::Roots;
use crate::events::{Event, EventSink};
use crate::image::LayerRecord;
use crate::runtime::bundle::{self, BundleRequest, ContainerFiles, HostFacts, ImageConfig, NetworkNs, RunOverrides};
use crate::runtime::user::UserDb;
use crate::runtime::Runtime;

/// Lines of a failing command's output kept for its error.
const TAIL_LINES: usize = 10;

/// One `RUN` to carry out.
pub struct RunSpec<'a> {
    /// The stage's layer directories, bottom first.
    pub layers: &'a [PathBuf],
    /// The command's argv.
    pub argv: Vec<String>,
    /// Its environment.
    pub env: Vec<(String, String)>,
    /// `USER`, if any.
    pub user: Option<String>,
    /// The working directory.
    pub workdir: String,
    /// `RUN --mount`s, as bundle mounts.
    pub mounts: Vec<berth_volumes::Mount>,
    /// Where the instruction is.
    pub at: At,
    /// The instruction as written (for errors).
    pub text: String,
    /// The build step number (for output events).
    pub step: usize,
    /// Its network.
    pub network: NetworkMode,
}

/// The directory of one `RUN` and what is mounted in it, removed on drop.
struct Scratch<'a> {
    dir: PathBuf,
    rootfs: PathBuf,
    mounted: bool,
    runtime: &'a dyn Runtime,
    id: String,
    started: bool,
    net: Option<(Roots, Attachment)>,
    /// Where what cannot be removed is reported.
    events: &'a dyn EventSink,
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        let mut left = Vec::new();
        if self.started {
            if let Err(e) = self.runtime.delete(&self.id, true) {
                left.push(format!("the runtime's container {}: {e}", self.id));
            }
        }
        if let Some((roots, a)) = self.net.take() {
            if let Err(e) = super::network::detach(&roots, &a) {
                left.push(format!("its network attachment: {e:#}"));
            }
        }
        if self.mounted {
            if let Err(e) = crate::image::unmount_rootfs(&self.rootfs) {
                left.push(e.to_string());
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            left.push(format!("`{}`: {e}", self.dir.display()));
        }
        for what in left {
            self.events.emit(Event::Warning { message: format!("a build step left behind {what}") });
        }
    }
}

/// Runs `spec`; returns the layer it made, `None` when it changed no file.
pub fn run(b: &Build<'_>, spec: &RunSpec<'_>) -> Result<Option<LayerRecord>> {
    let runtime = b.runtime()?;
    let id = format!("berth-build-{}", &crate::container::new_id()[..16]);
    let dir = b.work.join(&id);
    std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    let mut s = Scratch {
        rootfs: dir.join("rootfs"),
        dir: dir.clone(),
        mounted: false,
        runtime,
        id: id.clone(),
        started: false,
        net: None,
        events: b.events,
    };
    let mut layers = spec.layers.to_vec();
    if layers.is_empty() {
        let empty = dir.join("empty");
        std::fs::create_dir(&empty).map_err(io_err("create", &empty))?;
        layers.push(empty);
    }
    let upper = dir.join("upper");
    crate::image::mount_rootfs(&layers, &upper, &dir.join("work"), &s.rootfs)?;
    s.mounted = true;

    let files = ContainerFiles {
        hosts: dir.join("hosts"),
        hostname: dir.join("hostname"),
        resolv_conf: dir.join("resolv.conf"),
    };
    let hostname = "buildkitsandbox";
    let (network, resolv_conf, gateway) = match spec.network {
        NetworkMode::None => (NetworkNs::None, String::new(), None),
        NetworkMode::Host => {
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            (NetworkNs::Host, host, Some(IpAddr::from([127, 0, 0, 1])))
        }
        NetworkMode::Default => {
            b.on_bridge.store(true, std::sync::atomic::Ordering::SeqCst);
            let a = super::network::attach(&b.roots, &id)?;
            let path = NetworkNs::Path(a.netns.clone());
            let gateway = a.gateway;
            s.net = Some((b.roots.clone(), a));
            (path, super::network::host_resolv_conf(), Some(gateway))
        }
    };
    let hosts = bundle::hosts_file(hostname, &extra_hosts(&b.req.run.extra_hosts, gateway));
    std::fs::write(&files.hosts, hosts).map_err(io_err("write", &files.hosts))?;
    std::fs::write(&files.hostname, format!("{hostname}\n")).map_err(io_err("write", &files.hostname))?;
    std::fs::write(&files.resolv_conf, resolv_conf).map_err(io_err("write", &files.resolv_conf))?;
    for f in [&files.hosts, &files.hostname, &files.resolv_conf] {
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o644)).map_err(io_err("chmod", f))?;
    }
    let mounts = &spec.mounts;

    let service = Service {
        name: "build".into(),
        entrypoint: Some(Vec::new()),
        command: Some(spec.argv.clone()),
        user: spec.user.clone(),
        working_dir: Some(spec.workdir.clone()),
        hostname: Some(hostname.into()),
        shm_size: b.req.run.shm_size,
        ulimits: b.req.run.ulimits.clone(),
        privileged: Some(b.req.run.privileged),
        ..Service::default()
    };
    let image =
        ImageConfig { env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()), ..ImageConfig::default() };
    let mut upper_first = vec![upper.clone()];
    upper_first.extend(top_first(spec.layers));
    let users = UserDb::from_layers(&upper_first);
    let fail_runtime =
        |message: String| BuildError::Runtime { file: spec.at.file.clone(), line: spec.at.line, message };
    let generated = bundle::generate(&BundleRequest {
        service: &service,
        image: &image,
        users: &users,
        overrides: &RunOverrides::default(),
        id: &id,
        name: &id,
        project: "build",
        number: 1,
        oneoff: true,
        rootfs: s.rootfs.clone(),
        network,
        cgroups_path: format!("/{id}"),
        files: files.clone(),
        mounts,
        host: HostFacts {
            hard_limits: &crate::container::hard_limit,
            device: &crate::container::host_device,
            all_devices: &|| crate::container::host_devices(Path::new("/dev")),
            init_binary: None,
            bounding: crate::runtime::defaults::host_bounding_set(),
            block_weight: false,
        },
    })
    .map_err(|e| fail_runtime(e.message))?;
    // The working directory is made when missing, as the runtime would (it then is in the layer).
    let cwd = s.rootfs.join(spec.workdir.trim_start_matches('/'));
    if !cwd.exists() {
        std::fs::create_dir_all(&cwd).map_err(io_err("create", &cwd))?;
    }
    let targets: Vec<String> =
        generated.spec.mounts().iter().flatten().map(|m| m.destination().display().to_string()).collect();
    let stubs = missing_stubs(&s.rootfs, &targets);
    let bundle_dir = dir.join("bundle");
    std::fs::create_dir_all(&bundle_dir).map_err(io_err("create", &bundle_dir))?;
    let json =
        serde_json::to_vec(&bundle::to_json(&generated.spec)).map_err(|e| io_err("write", &bundle_dir)(e.into()))?;
    let config = bundle_dir.join("config.json");
    std::fs::write(&config, json).map_err(io_err("write", &config))?;

    let (out_r, out_w) = nix::unistd::pipe().map_err(|e| io_err("make a pipe for", &dir)(e.into()))?;
    let (err_r, err_w) = nix::unistd::pipe().map_err(|e| io_err("make a pipe for", &dir)(e.into()))?;
    let pid_file = bundle_dir.join("pid");
    s.started = true;
    b.containers.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut child =
        runtime.spawn_attached(&id, &bundle_dir, &pid_file, out_w, err_w).map_err(|e| fail_runtime(e.to_string()))?;
    let tail = Arc::new(Mutex::new(std::collections::VecDeque::new()));
    let status = std::thread::scope(|scope| {
        for fd in [out_r, err_r] {
            let tail = tail.clone();
            scope.spawn(move || {
                for line in BufReader::new(std::fs::File::from(fd)).split(b'\n').map_while(|l| l.ok()) {
                    let line = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
                    let mut t = tail.lock().expect("tail");
                    if t.len() == TAIL_LINES {
                        t.pop_front();
                    }
                    t.push_back(line.clone());
                    drop(t);
                    b.events.emit(Event::BuildOutput { image: b.image.clone(), step: spec.step, line });
                }
            });
        }
        child.wait()
    })
    .map_err(|e| fail_runtime(e.to_string()))?;
    s.started = false;
    let code = {
        use std::os::unix::process::ExitStatusExt;
        status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
    };
    if code != 0 {
        s.started = true;
        if let Some(msg) = runtime.logged_error(&pid_file) {
            return Err(fail_runtime(msg));
        }
        let tail = tail.lock().expect("tail").iter().cloned().collect();
        return Err(BuildError::RunFailed {
            file: spec.at.file.clone(),
            line: spec.at.line,
            command: spec.text.clone(),
            code,
            tail,
        });
    }
    crate::image::unmount_rootfs(&s.rootfs)?;
    s.mounted = false;
    tidy_upper(&upper, &top_first(spec.layers), &stubs)?;
    if super::layer::is_empty(&upper)? {
        return Ok(None);
    }
    Ok(Some(super::layer::commit_tree(&b.store, &upper, b.clamp)?))
}

/// `extra_hosts` entries (`host=address`) for `/etc/hosts`: `host-gateway` is `gateway` (the
/// build bridge's gateway), and left out where the step has none.
fn extra_hosts(entries: &[String], gateway: Option<IpAddr>) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| match e.split_once('=') {
            Some((host, "host-gateway")) => gateway.map(|g| format!("{host}={g}")),
            _ => Some(e.clone()),
        })
        .collect()
}

/// A read-only bind of one host file.
pub fn bind_file(host: &Path, target: &str) -> berth_volumes::Mount {
    berth_volumes::Mount {
        source: host.display().to_string(),
        destination: target.to_string(),
        kind: berth_volumes::MountKind::Bind,
        options: vec!["rbind".into(), "ro".into(), "rprivate".into()],
        origin: berth_volumes::Origin::Private,
    }
}
