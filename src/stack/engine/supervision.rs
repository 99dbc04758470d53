//! What a container made by `up` or `run` shares with others and tells the project supervisor:
//! the namespaces it joins (`network_mode`, `ipc`, `pid`, `uts` of another service or container),
//! its namespace given back after a reboot (at every start, `up`'s or `start`'s), and the
//! supervision spec in its state row.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail};
use berth_compose::model::Service;
use berth_compose::resolved::{NamespaceMode, ResolvedService};
use berth_network::network::NetworkSpec;

use super::StackEngine;
use crate::container::{Provided, StartMode};
use crate::runtime::bundle::NetworkNs;
use crate::state::StateDb;
use crate::supervise::health::{image_healthcheck, Check};
use crate::supervise::spec::{Published, SuperviseSpec};

impl StackEngine<'_> {
    /// The `ipc`/`pid`/`uts` namespaces a container of `svc` joins, with the container owning
    /// each (`service:NAME`: that service's first container).
    pub(super) fn shared_namespaces(&self, svc: &ResolvedService) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for (kind, mode) in [("ipc", &svc.ipc), ("pid", &svc.pid), ("uts", &svc.uts)] {
            let target = match mode {
                Some(NamespaceMode::Service(service)) => {
                    let own =
                        self.project.services.get(service).ok_or_else(|| anyhow!("{kind}: no service {service:?}"))?;
                    self.project.container_name(own, 1)
                }
                Some(NamespaceMode::Container(name)) => name.clone(),
                _ => continue,
            };
            out.push((kind.to_string(), target));
        }
        Ok(out)
    }

    /// Gives a container `up` or `run` attached to its networks its namespace back when it is
    /// gone (after a reboot: `/run` is empty and the bridges are new), with the addresses it
    /// leased before. A container of a service the project no longer has is left as it is.
    pub(super) fn reattach(&self, rec: &crate::state::ContainerRecord) -> anyhow::Result<()> {
        let Some(svc) = self.project.services.get(&rec.service) else { return Ok(()) };
        let netns = self.netns_path(rec.key())?;
        let attached_by_up = rec.config.supervise.as_ref().is_some_and(|s| s.dns.is_some());
        if svc.network_mode.is_some() || !attached_by_up || netns.exists() {
            return Ok(());
        }
        let specs = self.specs_for(svc)?;
        std::fs::create_dir_all(netns.parent().expect("netns dir"))?;
        self.with_net(|n| n.attach(self.project, svc, rec.key(), &specs, &netns)).map(drop)
    }

    /// Has container `rec`'s namespace announce its addresses (gratuitous ARP): one may have
    /// been another container's a moment ago. A failure only delays when neighbours find it.
    pub(super) fn announce(&self, rec: &crate::state::ContainerRecord) {
        let Ok(netns) = self.netns_path(rec.key()) else { return };
        if netns.exists() {
            if let Err(e) = self.host.announce(&netns) {
                self.events.emit(crate::events::Event::Warning {
                    message: format!("container {} could not announce its addresses: {e}", rec.name),
                });
            }
        }
    }

    /// Gives container `name` its network namespace back when it is gone (after a reboot), as a
    /// start does first: for `restart`, which stops and starts it itself.
    pub fn give_network_back(&self, name: &str) -> anyhow::Result<()> {
        let rec = self.record(name)?;
        self.reattach(&rec)
    }

    /// Starts container `name` (`up`'s start steps, `start`): its network namespace given back
    /// first if it is gone, and the supervisor told before (so it knows who asks for names) and
    /// after (so its names resolve for what starts next). False when it was running already.
    pub fn start_container(&self, name: &str) -> anyhow::Result<bool> {
        let rec = self.record(name)?;
        self.reattach(&rec)?;
        self.announce(&rec);
        self.tell_supervisor();
        // A connection of its own: starts run in parallel (a shared one would serialize them
        // behind its lock for the runtime's whole run).
        let db = StateDb::open(&self.roots.root)?;
        let started = self.lifecycle(&db).start(&rec, StartMode::Detached)?;
        self.tell_supervisor();
        Ok(started)
    }

    /// `network_mode: service:NAME` / `container:NAME`: the container joins the network namespace
    /// of that service's first container (or that container) and reads the same name files.
    pub(super) fn share_network(&self, svc: &Service, provided: &mut Provided) -> anyhow::Result<()> {
        let mode = svc.network_mode.as_deref().unwrap_or_default();
        let target = match ResolvedService::new(svc)?.network_mode {
            Some(NamespaceMode::Service(service)) => {
                let mut cs = self.containers_of(&service)?;
                cs.sort_by_key(|c| c.number);
                cs.into_iter()
                    .next()
                    .ok_or_else(|| anyhow!("network_mode {mode:?}: service {service:?} has no container"))?
            }
            Some(NamespaceMode::Container(name)) => {
                self.record(&name).map_err(|_| anyhow!("network_mode {mode:?}: no container {name:?}"))?
            }
            _ => return Ok(()),
        };
        let path = self.netns_path(target.key())?;
        let ns = if path.exists() {
            NetworkNs::Path(path)
        } else {
            match target.pid.filter(|_| target.status.is_alive()) {
                Some(pid) => NetworkNs::Path(PathBuf::from(format!("/proc/{pid}/ns/net"))),
                None => bail!("network_mode {mode:?}: container {:?} is not running", target.name),
            }
        };
        let dir = self.roots.container_dir(&target.id);
        provided.network = Some(ns);
        provided.resolv_conf = std::fs::read_to_string(dir.join("resolv.conf")).ok();
        provided.hosts = std::fs::read_to_string(dir.join("hosts")).ok();
        Ok(())
    }

    /// Writes what the project supervisor needs into a new container's row: its names, health
    /// check and restart policy in its config, and its published ports (random and range host
    /// ports chosen now, so `berth port` and `ps` show what the supervisor serves).
    pub(super) fn record_supervision(
        &self,
        db: &StateDb,
        svc: &Service,
        rec: &crate::state::ContainerRecord,
        attached: Option<&crate::stack::networking::Attached>,
        specs: &BTreeMap<String, NetworkSpec>,
        aliases: bool,
    ) -> anyhow::Result<()> {
        let none = BTreeMap::new();
        let addrs = attached.map_or(&none, |a| &a.addrs);
        let (spec, publish) = self.supervision(db, svc, rec, addrs, specs, aliases)?;
        let config = crate::container::ContainerConfig { supervise: Some(spec), ..rec.config.clone() };
        db.set_config(&rec.id, &config, &publish)?;
        Ok(())
    }

    /// The supervision spec and published ports of container `rec` of `svc` with addresses
    /// `addrs` (by network key). Host ports it (or, for a start-first successor, its
    /// predecessor) publishes already are kept where the service still publishes them.
    pub(super) fn supervision(
        &self,
        db: &StateDb,
        svc: &Service,
        rec: &crate::state::ContainerRecord,
        addrs: &BTreeMap<String, Vec<std::net::IpAddr>>,
        specs: &BTreeMap<String, NetworkSpec>,
        aliases: bool,
    ) -> anyhow::Result<(SuperviseSpec, Vec<Published>)> {
        let gateways = crate::supervise::spec::gateways_of(specs, addrs);
        let image = self.images.inspect(&svc.image_name(self.project)).ok();
        let image_check = image.as_ref().and_then(image_healthcheck);
        let resolved = ResolvedService::new(svc)?;
        let health = Check::resolve(resolved.healthcheck.as_ref(), image_check.as_ref());
        // Ports go to the container's address on its first network (Compose's order).
        let target = svc.networks.keys().find_map(|k| addrs.get(k)?.iter().find(|a| a.is_ipv4()).copied());
        let mut publish = Vec::new();
        if let Some(ip) = target {
            let taken = crate::supervise::spec::published_ports(&db.containers(&self.project.name)?);
            // A start-first successor keeps its predecessor's host ports (random or from a range):
            // they are handed over to it, and clients keep finding the service where it was.
            // A container changed in place keeps its own.
            let mut predecessor = match self.successors.get(&rec.name) {
                Some(old) => db.container_by_name(old)?.map(|o| o.published).unwrap_or_default(),
                None => rec.published.clone(),
            };
            for (i, p) in crate::stack::netmodel::publish_specs(svc)?.iter().enumerate() {
                let host_ip = p.host_ip.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
                let fits = |o: &Published| {
                    o.proto == p.proto
                        && o.host_ip == host_ip
                        && o.container_port == p.container_ports.0
                        && p.host_ports.is_none_or(|(a, b)| (a..=b).contains(&o.host_port))
                };
                // The same entry first; else one that moved in the list.
                let at = predecessor
                    .iter()
                    .position(|o| o.index == i as u32 && fits(o))
                    .or_else(|| predecessor.iter().position(fits));
                let inherited = at.map(|at| predecessor.remove(at));
                let chosen = match inherited {
                    Some(o) => Some(o.host_port),
                    None => crate::supervise::spec::choose_port(host_ip, p.proto, p.host_ports, &taken),
                };
                let port = chosen.ok_or_else(|| {
                    anyhow!("services.{}.ports[{i}]: no free host port in the published range", svc.name)
                })?;
                publish.push(Published {
                    index: i as u32,
                    proto: p.proto,
                    host_ip,
                    host_port: port,
                    container_ip: ip,
                    container_port: p.container_ports.0,
                });
            }
        }
        let mut spec = SuperviseSpec::new(self.project, svc, &resolved.restart, addrs, &gateways, health);
        spec.share = self.shared_namespaces(&resolved)?;
        if !aliases {
            // A one-off container (`run` without `--use-aliases`) answers to its own name only:
            // not to the service's name, aliases or hostname, which stay the service's.
            if let Some(dns) = &mut spec.dns {
                dns.service = rec.name.clone();
                dns.hostname = None;
                for endpoint in &mut dns.endpoints {
                    endpoint.2.clear();
                }
            }
        }
        if let Some(dns) = spec.dns.as_mut().filter(|d| d.hostname.is_none()) {
            // Without `hostname:`, the container's hostname is its short id: it resolves too,
            // as under Docker (where the short id is an alias on every network).
            dns.hostname = Some(rec.id.chars().take(12).collect());
        }
        Ok((spec, publish))
    }
}

/// Whether container `rec` needs the project's supervisor while it runs: to answer or ask for
/// names, serve its published ports, probe its health or apply its restart policy. A container
/// on no berth network with none of those (`network_mode: none`, say) runs without one.
pub fn needs_supervisor(rec: &crate::state::ContainerRecord) -> bool {
    rec.config.supervise.as_ref().is_some_and(|s| {
        s.dns.is_some()
            || !rec.published.is_empty()
            || s.health.is_some()
            || s.restart.condition != crate::supervise::restart::Condition::Never
    })
}
