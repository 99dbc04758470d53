//! The engine that carries out `up` and `down` plans on this host: networks and volumes,
//! image pulls, and containers created with their network namespace, name files and mounts.
//! Steps run in parallel (see `execute`); host-side network changes and the state database are
//! serialized behind one lock.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail};
use berth_compose::model::{Condition, Service};
use berth_compose::Project;
use berth_network::nat::{Firewall, Nft};
use berth_network::network::NetworkSpec;
use berth_network::NetlinkHost;
use berth_volumes::store::VolumeStore;

use super::netmodel::network_spec;
use super::networking::{NetStores, Networking};
use super::storage::remove_secrets;
use super::volmodel::volume_spec;
use crate::container::{self, Driver, Lifecycle, Roots};
use crate::events::EventSink;
use crate::execute::{Engine, Readiness, StepError};
use crate::image::{ImageStore, PullOptions, Reference};
use crate::plan::{ContainerTarget, Operation, Resource, Step};
use crate::runtime::bundle::RunOverrides;
use crate::state::deferred::or_defer_any;
use crate::state::StateDb;

mod inplace;
mod make;
mod oneoff;
mod readiness;
mod release;
mod replace;
mod supervision;
#[cfg(test)]
mod tests;

use make::Make;

pub use oneoff::{run_service, OneOff, RunChanges};
pub use release::remove_exited;
pub use replace::UpdateFailed;
pub use supervision::needs_supervisor;

/// How long `up` waits for a dependency to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Everything `up` and `down` act on.
pub struct StackEngine<'a> {
    project: &'a Project,
    roots: Roots,
    /// The OCI runtime new containers get (none: this engine makes no container).
    runtime: Option<String>,
    events: &'a dyn EventSink,
    /// Links, addresses and namespaces: the kernel's, or a recording fake in tests.
    host: &'a dyn berth_network::Host,
    /// The OCI runtime, monitors and clock containers are started and stopped through: this
    /// host's, or a recording fake in tests.
    driver: &'a dyn Driver,
    /// berth's nftables table, when `nft` works here (asked the first time it is needed).
    nft: std::sync::OnceLock<Option<Nft>>,
    /// A firewall given instead of nftables (a recording fake in tests).
    firewall: Option<&'a dyn Firewall>,
    volumes: VolumeStore,
    images: ImageStore,
    /// Network specs by compose key, filled as networks are ensured.
    specs: Mutex<BTreeMap<String, NetworkSpec>>,
    /// The state database and the network stores, one user at a time.
    db: Mutex<StateDb>,
    net_lock: Mutex<()>,
    supervised: bool,
    stop_timeout: Option<Duration>,
    /// Containers the plan removes for good (scale-down, orphans): never waited on as a
    /// dependency.
    leaving: std::collections::BTreeSet<String>,
    /// Start-first successors the plan makes, by name, with the name of the container each
    /// replaces.
    successors: BTreeMap<String, String>,
    /// Containers of replacements given up (`failure_action: continue`): their remaining steps
    /// are skipped.
    abandoned: Mutex<std::collections::BTreeSet<String>>,
    /// Why each replacement given up under `failure_action: continue` was.
    update_failures: Mutex<Vec<String>>,
    /// How many successors of each service did not become ready (against `max_failure_ratio`).
    failed_successors: Mutex<BTreeMap<String, u32>>,
    /// Images by id that services' new containers are made from instead of the one their
    /// reference names (`rollback`).
    pinned: BTreeMap<String, String>,
    /// How images are built (`SOURCE_DATE_EPOCH` from the environment).
    build: crate::build::compose::ComposeBuildOptions,
}

impl<'a> StackEngine<'a> {
    /// An engine for `project` under `roots`. It makes containers only once it is given a
    /// runtime ([`StackEngine::runtime`]); it stops and removes them with the one that made them.
    pub fn new(project: &'a Project, roots: Roots, events: &'a dyn EventSink) -> anyhow::Result<Self> {
        Ok(StackEngine {
            project,
            nft: std::sync::OnceLock::new(),
            volumes: VolumeStore::open(roots.root.join("volumes"))?,
            images: ImageStore::open(&roots.root)?,
            db: Mutex::new(StateDb::open(&roots.root)?),
            roots,
            runtime: None,
            events,
            host: &NetlinkHost,
            driver: &container::driver::SYSTEM,
            firewall: None,
            specs: Mutex::new(BTreeMap::new()),
            net_lock: Mutex::new(()),
            supervised: false,
            stop_timeout: None,
            leaving: Default::default(),
            successors: BTreeMap::new(),
            abandoned: Mutex::default(),
            update_failures: Mutex::default(),
            failed_successors: Mutex::default(),
            pinned: BTreeMap::new(),
            build: crate::build::compose::ComposeBuildOptions {
                source_date_epoch: crate::build::compose::source_date_epoch(),
                ..Default::default()
            },
        })
    }

    /// Makes new containers with OCI runtime `name` (unless a service names its own).
    pub fn runtime(mut self, name: &str) -> Self {
        self.runtime = Some(name.to_string());
        self
    }

    /// Works with the project's supervisor: it is told about every container started (so names
    /// resolve before dependents start) and dependencies' health is what it reports.
    pub fn supervised(mut self, supervised: bool) -> Self {
        self.supervised = supervised;
        self
    }

    /// Tells the engine which containers `plan` removes for good (scale-down, orphans): a
    /// dependent never waits on them.
    pub fn leaving_with(mut self, plan: &crate::plan::Plan) -> Self {
        self.leaving = plan.leaving();
        self.successors = plan
            .steps
            .iter()
            .filter_map(|s| match &s.operation {
                Operation::SwitchContainer { from, to, .. } => Some((to.name.clone(), from.name.clone())),
                _ => None,
            })
            .collect();
        self
    }

    /// Stops containers with this timeout instead of each service's `stop_grace_period`
    /// (`down -t`, `up -t`).
    pub fn stop_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Makes the new containers of each service in `pinned` from the image with that id.
    pub fn pinned(mut self, pinned: BTreeMap<String, String>) -> Self {
        self.pinned = pinned;
        self
    }

    fn nft(&self) -> Option<&Nft> {
        self.nft.get_or_init(|| Nft::available().then(|| Nft::new(firewall_table(&self.roots.root)))).as_ref()
    }

    fn firewall(&self) -> Option<&dyn Firewall> {
        if let Some(f) = self.firewall {
            return Some(f);
        }
        self.nft().map(|n| n as &dyn Firewall)
    }

    /// Acts on `host` and `firewall` instead of the kernel's links and nftables (tests: the
    /// network crate's recording fakes).
    pub fn with_network(mut self, host: &'a dyn berth_network::Host, firewall: &'a dyn Firewall) -> Self {
        self.host = host;
        self.firewall = Some(firewall);
        self
    }

    /// Starts, stops and removes containers through `driver` (a recording fake in tests) rather
    /// than this host's runtime and monitors.
    pub fn with_driver(mut self, driver: &'a dyn Driver) -> Self {
        self.driver = driver;
        self
    }

    /// The container lifecycle on `db`, through the engine's driver.
    fn lifecycle<'d>(&'d self, db: &'d StateDb) -> Lifecycle<'d> {
        Lifecycle::with_driver(&self.roots, db, self.driver)
    }

    /// Runs `f` with the host's network stores locked and loaded.
    fn with_net<T>(&self, f: impl FnOnce(&mut Networking) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let _guard = self.net_lock.lock().expect("network lock");
        let stores = NetStores::open(&self.roots.root)?;
        let mut leases = stores.leases();
        let mut net =
            Networking { host: self.host, firewall: self.firewall(), networks: &stores.db, leases: &mut leases };
        f(&mut net)
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

    fn service(&self, name: &str) -> anyhow::Result<&'a Service> {
        self.project.services.get(name).ok_or_else(|| anyhow!("no service {name:?}"))
    }

    fn create(&self, target: &ContainerTarget, renew_anonymous_volumes: bool) -> anyhow::Result<()> {
        let svc = self.service(&target.service)?;
        let make = Make {
            name: &target.name,
            number: target.number,
            oneoff: target.one_off,
            overrides: RunOverrides::default(),
            auto_remove: false,
            aliases: true,
            renew_anonymous_volumes,
        };
        let rec = self.make(svc, &make)?;
        if let Some(old) = self.successors.get(&target.name) {
            // Its predecessor serves until the switch: the supervisor holds back its names and
            // ports until then.
            let db = self.db.lock().expect("db");
            let old = db.container_by_name(old)?.ok_or_else(|| anyhow!("no container {old:?} to replace"))?;
            let config = crate::container::ContainerConfig { replaces: Some(old.id), ..rec.config.clone() };
            db.set_config(&rec.id, &config, &rec.published)?;
        }
        Ok(())
    }

    /// Takes back what an interrupted `up` made for containers that never got a row: their
    /// network namespaces, leases, secrets and scratch mounts; and any lease whose container
    /// no longer exists. Called before a plan runs.
    pub fn reclaim_interrupted(&self) -> anyhow::Result<()> {
        let intents = self.db.lock().expect("db").intents(&self.project.name)?;
        for intent in intents {
            let row = self.db.lock().expect("db").container_by_name(&intent.name)?;
            if let Some(row) = row {
                // Made, but not finished (its supervision was never recorded): it goes, and the
                // plan, which saw it, makes it again or leaves it gone. A one-off's anonymous
                // volumes are its own: they go with it.
                self.remove_container(&intent.name, row.oneoff)?;
            }
            self.reclaim(&intent.service, &intent.name)?;
            self.db.lock().expect("db").remove_intent(&intent.name)?;
        }
        // Leases whose container is gone (its row deleted by a berth that released them apart
        // from it, or an intent reclaimed whose service is gone) are free again.
        self.db.lock().expect("db").reclaim_leases()?;
        Ok(())
    }

    /// Whether anything is left at the paths of container `name` (a namespace file, a secrets
    /// or scratch directory): leases exist only with a namespace, so nothing else is looked up
    /// on the way to making a container.
    fn has_leftovers(&self, name: &str) -> anyhow::Result<bool> {
        Ok(self.netns_path(name)?.exists() || self.secrets_path(name)?.exists() || self.roots.scratch(name)?.exists())
    }

    /// Releases whatever exists at the paths of container `name` (which has no row).
    fn reclaim(&self, service: &str, name: &str) -> anyhow::Result<()> {
        let netns = self.netns_path(name)?;
        match self.project.services.get(service) {
            // On no network and no namespace file: no leases, nothing to take down.
            Some(svc) if svc.networks.is_empty() && !netns.exists() => {}
            Some(svc) => {
                let specs = self.declared_specs(svc);
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

    /// The specs of the networks `svc` is on, as the project declares them (for taking down:
    /// nothing is made).
    fn declared_specs(&self, svc: &Service) -> BTreeMap<String, NetworkSpec> {
        svc.networks
            .keys()
            .filter_map(|k| Some((k.clone(), network_spec(k, self.project.networks.get(k)?).ok()?)))
            .collect()
    }

    fn record(&self, name: &str) -> anyhow::Result<crate::state::ContainerRecord> {
        self.db.lock().expect("db").container_by_name(name)?.ok_or_else(|| anyhow!("no container {name:?}"))
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
            self.lifecycle(&db).dismantle(&rec, true)?
        };
        let mut failures = Vec::new();
        let mut waiting = false;
        let mut settle = |r: anyhow::Result<()>, what: &str| match or_defer_any(r, || format!("{what} of `{name}`")) {
            Ok(Some(())) => {}
            Ok(None) => waiting = true,
            Err(e) => failures.push(format!("{e:#}")),
        };
        if let Some(svc) = self.project.services.get(&rec.service) {
            let netns = self.netns_path(rec.key())?;
            // Only containers `up` attached have a namespace of berth's. Their leases go with
            // the row, in the transaction that deletes it.
            if netns.exists() {
                settle(self.with_net(|n| n.take_down(self.project, svc, &netns)), "the network namespace");
            }
        } else {
            // An orphan: its interfaces go with its namespace.
            let netns = self.netns_path(rec.key())?;
            let released = self.with_net(|n| release::remove_netns(n.host, &netns));
            settle(released, "the network namespace");
        }
        let users = |v: &str| self.volume_users(v);
        release::release_storage(&self.roots, &self.volumes, &rec, anonymous_volumes, &users, &mut settle);
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
            self.host.remove_netns(&netns)?;
        }
        Ok(())
    }

    fn remove_network(&self, network: &Resource) -> anyhow::Result<()> {
        let net = self.network(network)?;
        let mut spec = network_spec(&network.key, net)?;
        self.with_net(|n| {
            if let Some(stored) = n.subnets_of(&spec.name)? {
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

    /// The project's declaration of `network`.
    fn network(&self, network: &Resource) -> anyhow::Result<&'a berth_compose::model::Network> {
        let key = &network.key;
        self.project.networks.get(key).ok_or_else(|| anyhow!("no network {key:?} in the project"))
    }

    fn create_network(&self, network: &Resource) -> anyhow::Result<()> {
        self.network(network)?;
        let made = self.with_net(|n| n.ensure(self.project, std::slice::from_ref(&network.key)))?;
        self.specs.lock().expect("specs").extend(made);
        Ok(())
    }

    fn create_volume(&self, volume: &Resource) -> anyhow::Result<()> {
        let key = &volume.key;
        if !self.project.volumes.contains_key(key) {
            bail!("no volume {key:?} in the project");
        }
        Ok(self.volumes.create(&volume_spec(self.project, key)).map(drop)?)
    }

    fn remove_volume(&self, name: &str) -> anyhow::Result<()> {
        let users = self.volume_users(name)?;
        Ok(self.volumes.remove(name, &users)?)
    }

    /// The containers (of any project) that hold volume `name`.
    fn volume_users(&self, name: &str) -> anyhow::Result<Vec<String>> {
        Ok(self.db.lock().expect("db").volume_holders(name)?)
    }

    fn pull(&self, name: &str) -> anyhow::Result<()> {
        let reference = Reference::parse(name)?;
        // The `platform:` of the services that use this image, as `berth pull` honours it.
        let platform = self
            .project
            .services
            .values()
            .filter(|s| s.image_name(self.project) == name)
            .find_map(|s| s.platform.as_deref())
            .map(crate::image::Platform::parse)
            .transpose()
            .map_err(|e| anyhow!("platform of image {name:?}: {e}"))?;
        let opts = PullOptions { platform, ..PullOptions::default() };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(crate::image::pull(&self.images, &reference, &opts, self.events))?;
        Ok(())
    }

    fn build(&self, service: &str) -> anyhow::Result<()> {
        self.build_from(service, &mut Vec::new())
    }

    /// Builds `service`'s image after the missing images its build uses (`additional_contexts:
    /// service:NAME`); `building` are the services whose builds wait on it (a cycle stops there).
    fn build_from(&self, service: &str, building: &mut Vec<String>) -> anyhow::Result<()> {
        building.push(service.to_string());
        let svc = self.project.services.get(service).ok_or_else(|| anyhow!("no service {service:?}"))?;
        let mut opts = self.build.clone();
        if opts.runtime.is_none() {
            opts.runtime = self.runtime.clone();
        }
        for dep in crate::build::compose::image_dependencies(svc) {
            let image = self.project.services.get(&dep).map(|d| d.image_name(self.project));
            let missing = match image {
                Some(i) => self.images.resolve(&i).is_err(),
                None => false,
            };
            if missing && !building.contains(&dep) {
                self.build_from(&dep, building)?;
            }
        }
        let req = crate::build::compose::request(self.project, svc, &opts)?;
        crate::build::build(&req, &self.roots, self.events)?;
        Ok(())
    }
}

impl StackEngine<'_> {
    /// Has the supervisor take in the project's containers as they are now.
    fn tell_supervisor(&self) {
        if self.supervised {
            if let Err(e) = crate::supervise::client::refresh(&self.roots, &self.project.name, Duration::from_secs(10))
            {
                let message = format!("the project supervisor did not take in the change (ports, names): {e:#}");
                self.events.emit(crate::events::Event::Warning { message });
            }
        }
    }
}

impl Engine for StackEngine<'_> {
    fn apply(&self, step: &Step) -> Result<(), StepError> {
        let r: anyhow::Result<()> = match &step.operation {
            Operation::CreateNetwork(network) => self.create_network(network),
            Operation::RemoveNetwork(network) => self.remove_network(network),
            Operation::CreateVolume(volume) => self.create_volume(volume),
            Operation::RemoveVolume(volume) => self.remove_volume(&volume.name),
            Operation::PullImage { image, .. } => self.pull(image),
            Operation::BuildImage { service, .. } => self.build(service),
            Operation::CreateContainer { target, renew_anonymous_volumes } => {
                self.create(target, *renew_anonymous_volumes)
            }
            Operation::StartContainer(target) => self.start_container(&target.name).map(drop),
            Operation::StopContainer(target) | Operation::RemoveContainer { target, .. }
                if self.abandoned(&target.name) =>
            {
                Ok(())
            }
            Operation::RenameContainer { target, .. } if self.abandoned(&target.name) => Ok(()),
            Operation::SwitchContainer { from, to, monitor, failure_action, tolerated } => {
                self.switch(from, to, *monitor, *failure_action, *tolerated)
            }
            Operation::RenameContainer { target, to, delay } => self.rename(target, to, *delay),
            Operation::StopContainer(target) => self.record(&target.name).and_then(|rec| {
                let db = StateDb::open(&self.roots.root)?;
                self.lifecycle(&db).stop(&rec, self.stop_timeout).map(drop)
            }),
            Operation::RemoveContainer { target, anonymous_volumes, .. } => {
                self.remove_container(&target.name, *anonymous_volumes)
            }
            Operation::ConnectNetwork { target, network } => self.connect_network(target, network),
            Operation::DisconnectNetwork { target, network } => self.disconnect_network(target, network),
            Operation::PublishPorts { target, publish, unpublish } => self.publish_ports(target, publish, unpublish),
        };
        r.map_err(|e| StepError::failed(&e))
    }

    fn wait_ready(&self, dep: &Readiness) -> Result<(), StepError> {
        let r = match dep.condition {
            Condition::ServiceStarted => self.wait_started(&dep.service, false),
            Condition::ServiceCompletedSuccessfully => self.wait_started(&dep.service, true),
            Condition::ServiceHealthy => self.wait_healthy(&dep.service),
        };
        r.map_err(|e| StepError::Dependency(format!("{e:#}")))
    }
}

impl StackEngine<'_> {
    /// Deletes berth's nftables table once no network of any project is left on the host.
    pub fn tidy_firewall(&self) -> anyhow::Result<()> {
        if self.firewall.is_some() {
            return Ok(());
        }
        if let Some(nft) = self.nft() {
            if self.with_net(|n| n.no_networks())? {
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
