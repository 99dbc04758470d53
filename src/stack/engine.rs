//! The engine that carries out `up` and `down` plans on this host: networks and volumes,
//! image pulls, and containers created with their network namespace, name files and mounts.
//! Steps run in parallel (see `execute`); host-side network changes and the state database are
//! serialized behind one lock.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use berth_compose::model::{Condition, Service};
use berth_compose::Project;
use berth_network::nat::{Firewall, Nft};
use berth_network::network::NetworkSpec;
use berth_network::NetlinkHost;
use berth_volumes::store::VolumeStore;

use super::netmodel::{network_name, network_spec};
use super::networking::{NetStores, Networking};
use super::storage::{release_volumes, remove_secrets, volumes_from_mounts, Storage};
use super::volmodel::volume_spec;
use crate::container::{self, CreateRequest, Provided, Roots, StartMode};
use crate::events::EventSink;
use crate::execute::{Engine, Readiness};
use crate::image::{ImageStore, PullOptions, Reference};
use crate::plan::{Kind, Op, Step};
use crate::runtime::bundle::{NetworkNs, RunOverrides};
use crate::state::deferred::or_defer_any;
use crate::state::{StateDb, Status};
use crate::supervise::spec::SuperviseSpec;

mod supervision;

/// How long `up` waits for a dependency to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Everything `up` and `down` act on.
pub struct StackEngine<'a> {
    project: &'a Project,
    roots: Roots,
    runtime: String,
    events: &'a dyn EventSink,
    host: NetlinkHost,
    nft: Option<Nft>,
    volumes: VolumeStore,
    images: ImageStore,
    /// Network specs by compose key, filled as networks are ensured.
    specs: Mutex<BTreeMap<String, NetworkSpec>>,
    /// The state database and the network stores, one user at a time.
    db: Mutex<StateDb>,
    net_lock: Mutex<()>,
    renew_anonymous: bool,
    remove_anonymous: bool,
    supervised: bool,
    stop_timeout: Option<Duration>,
}

impl<'a> StackEngine<'a> {
    /// An engine for `project` under `roots`.
    pub fn new(project: &'a Project, roots: Roots, runtime: &str, events: &'a dyn EventSink) -> anyhow::Result<Self> {
        let nft = Nft::available().then(|| Nft::new(firewall_table(&roots.root)));
        Ok(StackEngine {
            project,
            nft,
            volumes: VolumeStore::open(roots.root.join("volumes"))?,
            images: ImageStore::open(&roots.root)?,
            db: Mutex::new(StateDb::open(&roots.root)?),
            roots,
            runtime: runtime.to_string(),
            events,
            host: NetlinkHost,
            specs: Mutex::new(BTreeMap::new()),
            net_lock: Mutex::new(()),
            renew_anonymous: false,
            remove_anonymous: false,
            supervised: false,
            stop_timeout: None,
        })
    }

    /// Makes container removals take the containers' anonymous volumes too (`down -v`).
    pub fn remove_anonymous_volumes(mut self, remove: bool) -> Self {
        self.remove_anonymous = remove;
        self
    }

    /// Works with the project's supervisor: it is told about every container started (so names
    /// resolve before dependents start) and dependencies' health is what it reports.
    pub fn supervised(mut self, supervised: bool) -> Self {
        self.supervised = supervised;
        self
    }

    /// Stops containers with this timeout instead of each service's `stop_grace_period`
    /// (`down -t`, `up -t`).
    pub fn stop_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Makes containers created from now on start with new anonymous volumes (`up -V`).
    pub fn renew_anonymous_volumes(mut self, renew: bool) -> Self {
        self.renew_anonymous = renew;
        self
    }

    fn firewall(&self) -> Option<&dyn Firewall> {
        self.nft.as_ref().map(|n| n as &dyn Firewall)
    }

    /// Runs `f` with the host's network stores locked and loaded.
    fn with_net<T>(&self, f: impl FnOnce(&mut Networking) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let _guard = self.net_lock.lock().expect("network lock");
        let mut stores = NetStores::open(&self.roots.root)?;
        let mut net = Networking {
            host: &self.host,
            firewall: self.firewall(),
            subnets: &mut stores.subnets,
            leases: &mut stores.leases,
        };
        f(&mut net)
    }

    fn network_key(&self, name: &str) -> anyhow::Result<String> {
        self.project
            .networks
            .iter()
            .find(|(k, n)| network_name(k, n) == name)
            .map(|(k, _)| k.clone())
            .ok_or_else(|| anyhow!("no network named {name:?} in the project"))
    }

    fn volume_key(&self, name: &str) -> anyhow::Result<String> {
        self.project
            .volumes
            .keys()
            .find(|k| volume_spec(self.project, k).name == name)
            .cloned()
            .ok_or_else(|| anyhow!("no volume named {name:?} in the project"))
    }

    /// The specs of the networks `svc` is on, ensuring the ones not known yet.
    fn specs_for(&self, svc: &Service) -> anyhow::Result<BTreeMap<String, NetworkSpec>> {
        let missing: Vec<String> =
            svc.networks.keys().filter(|k| !self.specs.lock().expect("specs").contains_key(*k)).cloned().collect();
        if !missing.is_empty() {
            let made = self.with_net(|n| n.ensure(self.project, &missing))?;
            self.specs.lock().expect("specs").extend(made);
        }
        let specs = self.specs.lock().expect("specs");
        Ok(svc.networks.keys().filter_map(|k| specs.get(k).map(|s| (k.clone(), s.clone()))).collect())
    }

    fn netns_path(&self, container: &str) -> anyhow::Result<PathBuf> {
        Ok(self.roots.netns(container)?)
    }

    fn secrets_path(&self, container: &str) -> anyhow::Result<PathBuf> {
        Ok(self.roots.secrets(container)?)
    }

    fn service(&self, step: &Step) -> anyhow::Result<&'a Service> {
        let name = step.service.as_deref().ok_or_else(|| anyhow!("step {} names no service", step.id))?;
        self.project.services.get(name).ok_or_else(|| anyhow!("no service {name:?}"))
    }

    fn create(&self, step: &Step) -> anyhow::Result<()> {
        let svc = self.service(step)?;
        // Findable before anything is made: a killed `up` leaves the intent, and the next `up` or
        // `down` reclaims what it names. Anything already at this container's paths is such a
        // leftover (the container has no row: it is being created now).
        self.db.lock().expect("db").add_intent(&self.project.name, &svc.name, &step.name)?;
        self.reclaim(&svc.name, &step.name)?;
        let made = self.create_intended(step, svc);
        let db = self.db.lock().expect("db");
        let forgot = db.remove_intent(&step.name);
        made?;
        forgot?;
        Ok(())
    }

    /// Takes back what an interrupted `up` made for containers that never got a row: their
    /// network namespaces, leases, secrets and scratch mounts. Called before a plan runs.
    pub fn reclaim_interrupted(&self) -> anyhow::Result<()> {
        let intents = self.db.lock().expect("db").intents(&self.project.name)?;
        for intent in intents {
            let has_row = self.db.lock().expect("db").container_by_name(&intent.name)?.is_some();
            if has_row {
                // Made, but not finished (its supervision was never recorded): it goes, and the
                // plan, which saw it, makes it again or leaves it gone.
                self.remove_container(&intent.name, false)?;
            }
            self.reclaim(&intent.service, &intent.name)?;
            self.db.lock().expect("db").remove_intent(&intent.name)?;
        }
        Ok(())
    }

    /// Releases whatever exists at the paths of container `name` (which has no row).
    fn reclaim(&self, service: &str, name: &str) -> anyhow::Result<()> {
        let netns = self.netns_path(name)?;
        match self.project.services.get(service) {
            Some(svc) => {
                let specs: BTreeMap<String, NetworkSpec> = svc
                    .networks
                    .keys()
                    .filter_map(|k| Some((k.clone(), network_spec(k, self.project.networks.get(k)?).ok()?)))
                    .collect();
                self.with_net(|n| n.detach(self.project, svc, name, &specs, &netns))?;
            }
            None => self.host_remove_netns(name)?,
        }
        remove_secrets(&self.roots.secrets_dir(), &self.secrets_path(name)?)?;
        let scratch = self.roots.scratch(name)?;
        let view = scratch.join("image");
        if container::is_mount_point(&view) {
            nix::mount::umount2(&view, nix::mount::MntFlags::MNT_DETACH)?;
        }
        if let Some(base) = scratch.parent() {
            container::paths::remove_tree(base, &scratch)?;
        }
        Ok(())
    }

    fn create_intended(&self, step: &Step, svc: &'a Service) -> anyhow::Result<()> {
        let number = match &svc.container_name {
            Some(_) => 1,
            None => step.name.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(1),
        };
        // volumes_from: the source containers' mounts, looked up before anything is made.
        let borrowed = volumes_from_mounts(self.project, svc, &self.db.lock().expect("db"))?;
        let own_netns = svc.network_mode.is_none();
        let netns = self.netns_path(&step.name)?;
        let secrets_dir = self.secrets_path(&step.name)?;
        let scratch = self.roots.scratch(&step.name)?;
        let specs = if own_netns { self.specs_for(svc)? } else { BTreeMap::new() };
        let attached = if own_netns {
            std::fs::create_dir_all(netns.parent().expect("netns dir"))?;
            Some(self.with_net(|n| n.attach(self.project, svc, &step.name, &specs, &netns))?)
        } else {
            None
        };
        let undo_net = || {
            if own_netns {
                let _ = self.with_net(|n| n.detach(self.project, svc, &step.name, &specs, &netns));
            }
        };
        let layers = match self.images.layer_dirs(&svc.image_name(&self.project.name)) {
            Ok(l) => l,
            Err(e) => {
                undo_net();
                return Err(e.into());
            }
        };
        let env = |k: &str| std::env::var(k).ok();
        let storage = Storage {
            volumes: &self.volumes,
            layers: &layers,
            scratch,
            secrets_dir,
            env: &env,
            renew_anonymous: self.renew_anonymous,
        };
        let prepared = match storage.prepare_for(self.project, svc, number, &step.name, &borrowed) {
            Ok(p) => p,
            Err(e) => {
                undo_net();
                return Err(e);
            }
        };
        let mut provided = Provided {
            network: attached.as_ref().map(|_| NetworkNs::Path(netns.clone())),
            resolv_conf: attached.as_ref().map(|a| a.resolv_conf.clone()),
            hosts: attached.as_ref().map(|a| a.hosts.clone()),
            mounts: prepared.mounts.clone(),
            volumes: prepared.volumes.clone(),
        };
        if let Err(e) = self.share_network(svc, &mut provided) {
            let _ = prepared.release();
            return Err(e);
        }
        let req = CreateRequest {
            project: &self.project.name,
            service: svc,
            number,
            oneoff: false,
            name: Some(step.name.clone()),
            overrides: RunOverrides::default(),
            runtime: &self.runtime,
            auto_remove: false,
            provided: Some(provided),
        };
        let db = self.db.lock().expect("db");
        let made = container::create_container(&self.roots, &db, &req, self.events).and_then(|rec| {
            self.record_supervision(&db, svc, &rec, attached.as_ref(), &specs).inspect_err(|_| {
                let _ = container::remove(&self.roots, &db, &rec, true);
            })
        });
        match made {
            Ok(()) => Ok(()),
            Err(e) => {
                drop(db);
                let _ = prepared.release();
                undo_net();
                Err(e)
            }
        }
    }

    fn record(&self, name: &str) -> anyhow::Result<crate::state::ContainerRecord> {
        self.db.lock().expect("db").container_by_name(name)?.ok_or_else(|| anyhow!("no container {name:?}"))
    }

    fn remove(&self, step: &Step) -> anyhow::Result<()> {
        self.remove_container(&step.name, self.remove_anonymous)
    }

    /// Removes a container (killing it if it runs) with what the project side made for it:
    /// its network namespace and leases, its secrets tmpfs, and with `anonymous_volumes` its
    /// anonymous volumes. The state row goes last, and only when all of that is gone: a row
    /// left behind is how the next `rm` or `down` finds what is still to release. A release
    /// that fails for want of space on the state file system waits (see `state::deferred`).
    pub fn remove_container(&self, name: &str, anonymous_volumes: bool) -> anyhow::Result<()> {
        // Gone already (a `run --rm` container removes itself): nothing to do.
        let Some(rec) = self.db.lock().expect("db").container_by_name(name)? else { return Ok(()) };
        let rec = {
            let db = self.db.lock().expect("db");
            container::dismantle(&self.roots, &db, &rec, true)?
        };
        let mut failures = Vec::new();
        let mut waiting = false;
        let mut settle = |r: anyhow::Result<()>, what: &str| match or_defer_any(r, || format!("{what} of `{name}`")) {
            Ok(Some(())) => {}
            Ok(None) => waiting = true,
            Err(e) => failures.push(format!("{e:#}")),
        };
        if let Some(svc) = self.project.services.get(&rec.service) {
            let netns = self.netns_path(&rec.name)?;
            // Only containers `up` attached have a namespace of berth's (and leases to release).
            if netns.exists() || SuperviseSpec::of(&rec.config).is_some_and(|s| s.dns.is_some()) {
                let specs: BTreeMap<String, NetworkSpec> = svc
                    .networks
                    .keys()
                    .filter_map(|k| Some((k.clone(), network_spec(k, self.project.networks.get(k)?).ok()?)))
                    .collect();
                settle(self.with_net(|n| n.detach(self.project, svc, &rec.name, &specs, &netns)), "the leases");
            }
        } else {
            settle(self.host_remove_netns(&rec.name), "the network namespace");
        }
        settle(self.secrets_path(&rec.name).and_then(|d| remove_secrets(&self.roots.secrets_dir(), &d)), "the secrets");
        // Its volumes: let go of them (the last user unmounts a `driver_opts` file system).
        let names: Vec<String> = serde_json::from_value(rec.config["volumes"].clone()).unwrap_or_default();
        settle(release_volumes(&self.volumes, &names, &rec.name), "the volumes");
        if anonymous_volumes {
            for v in &names {
                // Another container may use it still (through `volumes_from`): it stays then.
                let anonymous = self.volumes.get(v).ok().flatten().is_some_and(|i| i.spec.anonymous);
                let removed = match self.volume_users(v) {
                    Ok(users) if anonymous && users.iter().all(|u| u == name) => {
                        self.volumes.remove(v, &[]).map_err(Into::into)
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                };
                settle(removed, "an anonymous volume");
            }
        }
        if !failures.is_empty() {
            bail!("container {:?} removed, but: {}", rec.name, failures.join("; "));
        }
        if !waiting {
            container::forget(&self.db.lock().expect("db"), &rec)?;
        }
        Ok(())
    }

    /// An orphan's namespace, when its service is gone from the project.
    fn host_remove_netns(&self, container: &str) -> anyhow::Result<()> {
        let netns = self.netns_path(container)?;
        if netns.exists() {
            berth_network::Host::remove_netns(&self.host, &netns)?;
        }
        Ok(())
    }

    fn remove_network(&self, name: &str) -> anyhow::Result<()> {
        let key = self.network_key(name)?;
        let net = &self.project.networks[&key];
        let mut spec = network_spec(&key, net)?;
        self.with_net(|n| {
            if let Some(stored) = n.subnets_of(&spec.name) {
                spec.subnets = stored;
            }
            // Namespace teardown is asynchronous: give the kernel a moment to empty the bridge.
            for _ in 0..50 {
                if berth_network::Host::bridge_ports(n.host, &spec.bridge).unwrap_or_default().is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // The bridge goes first; forgetting its subnet may wait for space.
            or_defer_any(n.remove(&spec), || format!("forgetting the subnet of network {:?}", spec.name)).map(drop)
        })
    }

    fn remove_volume(&self, name: &str) -> anyhow::Result<()> {
        let users = self.volume_users(name)?;
        Ok(self.volumes.remove(name, &users)?)
    }

    /// The containers (of any project) whose state row lists volume `name`.
    fn volume_users(&self, name: &str) -> anyhow::Result<Vec<String>> {
        let db = self.db.lock().expect("db");
        let uses = |c: &crate::state::ContainerRecord| {
            c.config["volumes"].as_array().is_some_and(|v| v.iter().any(|x| x == name))
        };
        Ok(db.all_containers()?.into_iter().filter(uses).map(|c| c.name).collect())
    }

    fn pull(&self, name: &str) -> anyhow::Result<()> {
        let reference = Reference::parse(name)?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(crate::image::pull(&self.images, &reference, &PullOptions::default(), self.events))?;
        Ok(())
    }

    fn containers_of(&self, service: &str) -> anyhow::Result<Vec<crate::state::ContainerRecord>> {
        let db = self.db.lock().expect("db");
        let all = db.containers(&self.project.name)?;
        let mine: Vec<_> = all.into_iter().filter(|c| c.service == service && !c.oneoff).collect();
        mine.into_iter().map(|c| container::refresh(&self.roots, &db, &c)).collect()
    }

    fn wait_started(&self, dep: &str, completed: bool) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            let cs = self.containers_of(dep)?;
            let done = if completed {
                cs.iter().all(|c| c.status == Status::Exited)
            } else {
                cs.iter().all(|c| matches!(c.status, Status::Running | Status::Exited))
            };
            if done && !cs.is_empty() {
                if completed {
                    if let Some(c) = cs.iter().find(|c| c.exit_code != Some(0)) {
                        bail!("service {dep:?} didn't complete successfully: exit {}", c.exit_code.unwrap_or(-1));
                    }
                }
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!("service {dep:?} did not start in time");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl StackEngine<'_> {
    /// Has the supervisor take in the project's containers as they are now.
    fn tell_supervisor(&self) {
        if self.supervised {
            let _ =
                crate::supervise::client::request(&self.roots, &self.project.name, "refresh", Duration::from_secs(10));
        }
    }

    /// Waits until the supervisor reports every container of `dep` healthy (health checks are
    /// the supervisor's: `up` starts it before any container).
    fn wait_healthy(&self, dep: &str) -> anyhow::Result<()> {
        let start = Instant::now();
        let mut checked = Instant::now();
        loop {
            // Health comes from the supervisor: make sure one runs (it may have been killed).
            if checked.elapsed() > Duration::from_secs(2) {
                checked = Instant::now();
                crate::supervise::client::ensure(&self.roots, &self.project.name)?;
            }
            let cs = self.containers_of(dep)?;
            let mut all = !cs.is_empty();
            for c in &cs {
                if c.status != Status::Running {
                    if c.status == Status::Exited {
                        bail!("container {} exited ({})", c.name, c.exit_code.unwrap_or(-1));
                    }
                    all = false;
                    continue;
                }
                let spec = SuperviseSpec::of(&c.config).unwrap_or_default();
                if spec.health.is_none() {
                    // A container that exits at once says so rather than lacking a check.
                    let age = crate::state::now_millis() - c.started_at.unwrap_or_default();
                    if age < 1000 {
                        all = false;
                        continue;
                    }
                    bail!("container {} has no healthcheck configured", c.name);
                }
                let health = self.db.lock().expect("db").supervision(&c.id)?.health;
                match health.as_deref() {
                    Some("healthy") => {}
                    Some("unhealthy") => bail!("container {} is unhealthy", c.name),
                    _ => all = false,
                }
            }
            if all {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!("service {dep:?} did not become healthy in time");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Engine for StackEngine<'_> {
    fn apply(&self, step: &Step) -> Result<(), String> {
        let r: anyhow::Result<()> = match (step.kind, step.op) {
            (Kind::Network, Op::Create) => self.network_key(&step.name).and_then(|key| {
                let made = self.with_net(|n| n.ensure(self.project, std::slice::from_ref(&key)))?;
                self.specs.lock().expect("specs").extend(made);
                Ok(())
            }),
            (Kind::Network, Op::Remove) => self.remove_network(&step.name),
            (Kind::Volume, Op::Create) => self
                .volume_key(&step.name)
                .and_then(|key| Ok(self.volumes.create(&volume_spec(self.project, &key)).map(drop)?)),
            (Kind::Volume, Op::Remove) => self.remove_volume(&step.name),
            (Kind::Image, Op::Pull) => self.pull(&step.name),
            (Kind::Container, Op::Create) => self.create(step),
            (Kind::Container, Op::Start) => self.record(&step.name).and_then(|rec| {
                self.reattach(step, &rec)?;
                // The server must know who asks before the container's first query, and serve
                // its names before anything that depends on it starts.
                self.tell_supervisor();
                // A connection of its own: starts run in parallel (a shared one would serialize
                // them behind its lock for the runtime's whole run).
                let db = StateDb::open(&self.roots.root)?;
                container::start(&self.roots, &db, &rec, StartMode::Detached)?;
                self.tell_supervisor();
                Ok(())
            }),
            (Kind::Container, Op::Stop) => self.record(&step.name).and_then(|rec| {
                let db = StateDb::open(&self.roots.root)?;
                container::stop(&self.roots, &db, &rec, self.stop_timeout).map(drop)
            }),
            (Kind::Container, Op::Remove) => self.remove(step),
            (kind, op) => Err(anyhow!("cannot {op} a {kind}")),
        };
        r.map_err(|e| format!("{e:#}"))
    }

    fn wait_ready(&self, dep: &Readiness) -> Result<(), String> {
        let r = match dep.condition {
            Condition::ServiceStarted => self.wait_started(&dep.service, false),
            Condition::ServiceCompletedSuccessfully => self.wait_started(&dep.service, true),
            Condition::ServiceHealthy => self.wait_healthy(&dep.service),
        };
        r.map_err(|e| format!("dependency failed to start: {e:#}"))
    }
}

impl StackEngine<'_> {
    /// Deletes berth's nftables table once no network of any project is left on the host.
    pub fn tidy_firewall(&self) -> anyhow::Result<()> {
        if let Some(nft) = &self.nft {
            if self.with_net(|n| Ok(n.no_networks()))? {
                nft.delete_table()?;
            }
        }
        Ok(())
    }
}

/// berth's nftables table for a state root: `berth` for the default root, a table of its own
/// for any other (so separate roots, such as tests', never touch each other's rules).
pub fn firewall_table(root: &std::path::Path) -> String {
    if root == std::path::Path::new("/var/lib/berth") {
        return berth_network::nat::DEFAULT_TABLE.to_string();
    }
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(root.as_os_str().as_encoded_bytes()));
    format!("{}_{}", berth_network::nat::DEFAULT_TABLE, &h[..8])
}

/// Whether project network `key` exists on the host (its bridge is there).
pub fn network_exists(project: &Project, key: &str) -> bool {
    let Some(net) = project.networks.get(key) else { return false };
    let Ok(spec) = network_spec(key, net) else { return false };
    berth_network::Host::bridge_exists(&NetlinkHost, &spec.bridge).unwrap_or(false)
}
