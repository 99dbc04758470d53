//! A project's networks on the host: creating them (subnets chosen once and kept), attaching a
//! container's namespace to its networks with leased addresses, the container's
//! `resolv.conf` and `hosts`, and taking it all down again.
//!
//! Networks, their subnets and the leases on them are kept in the state database (see
//! `state::networks`). The host's network lock ([`NetStores`]) keeps two berth processes from
//! interleaving their changes to bridges and namespaces; the database keeps its own rows
//! consistent by itself (a subnet is chosen in one write transaction).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{bail, Context};
use berth_compose::model::Service;
use berth_compose::Project;
use berth_network::files::{DnsSettings, Hosts, ResolvConf, Resolver};
use berth_network::ipam::{self, Family, LeaseStore, SubnetConfig};
use berth_network::nat::Firewall;
use berth_network::network::{self, NetworkSpec, SubnetsInUse};
use berth_network::{AttachSpec, Host, IfName};
use ipnet::IpNet;

use super::netmodel::{memberships, network_spec, requested_addresses};
use crate::leftover::Undone;
use crate::state::{DbLeases, NetworkRow, StateDb};

/// The host's network lock (`<state root>/networks/lock`) with the state database: while it is
/// held, no other berth process changes this root's bridges, namespaces or leases. It is held
/// until this is dropped.
pub struct NetStores {
    /// The state database, with the networks and leases.
    pub db: StateDb,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl NetStores {
    /// Takes the lock and opens the database under `state_root`.
    pub fn open(state_root: &Path) -> anyhow::Result<NetStores> {
        let dir = state_root.join("networks");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock"))?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow::anyhow!("cannot lock `{}`: {e}", dir.join("lock").display()))?;
        Ok(NetStores { db: StateDb::open(state_root)?, _lock: lock })
    }

    /// The leases, as the network crate's store.
    pub fn leases(&self) -> DbLeases<'_> {
        DbLeases(&self.db)
    }
}

/// What a container got on its networks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    /// Addresses by network key.
    pub addrs: BTreeMap<String, Vec<IpAddr>>,
    /// `/etc/resolv.conf`.
    pub resolv_conf: String,
    /// `/etc/hosts`.
    pub hosts: String,
}

/// The host side of a project's networking.
pub struct Networking<'a> {
    /// Links, addresses, namespaces.
    pub host: &'a dyn Host,
    /// nftables, when present.
    pub firewall: Option<&'a dyn Firewall>,
    /// The networks berth keeps, with their subnets.
    pub networks: &'a StateDb,
    /// Address leases.
    pub leases: &'a mut dyn LeaseStore,
}

impl Networking<'_> {
    /// Makes sure the project networks `keys` exist, choosing a subnet for each the first time.
    pub fn ensure(&mut self, project: &Project, keys: &[String]) -> anyhow::Result<BTreeMap<String, NetworkSpec>> {
        let mut out = BTreeMap::new();
        for key in keys {
            let net = project.networks.get(key).with_context(|| format!("no network {key:?} in the project"))?;
            let mut spec = network_spec(key, net)?;
            if spec.external {
                if spec.subnets.is_empty() {
                    let stored = self.networks.network(&spec.name)?.map(|n| n.subnets);
                    spec.subnets = stored
                        .with_context(|| format!("external network {:?} has no subnet berth knows of", spec.name))?;
                } else {
                    check_configured(key, &spec, &self.networks.subnets_in_use(&spec.name)?)?;
                }
            } else {
                let host = self.host;
                let row = NetworkRow {
                    name: spec.name.clone(),
                    project: Some(project.name.clone()),
                    key: Some(key.clone()),
                    bridge: spec.bridge.to_string(),
                    internal: spec.internal,
                    enable_ipv6: spec.enable_ipv6,
                    mtu: spec.mtu,
                    labels: spec.labels.clone(),
                    created_at: crate::state::now_millis(),
                    subnets: Vec::new(),
                };
                spec.subnets = self.networks.claim_network(&row, |stored, others| {
                    let mut spec = spec.clone();
                    match stored {
                        Some(stored) if spec.subnets.is_empty() => return Ok(stored),
                        _ if spec.subnets.is_empty() => {
                            let in_use = SubnetsInUse { networks: others, routes: host.routed_subnets()? };
                            network::assign_subnets(&mut spec, &in_use)?;
                        }
                        _ => check_configured(key, &spec, &others)?,
                    }
                    Ok::<_, anyhow::Error>(spec.subnets)
                })?;
            }
            network::ensure_network(self.host, self.firewall, &spec)
                .with_context(|| format!("network {:?}", spec.name))?;
            out.insert(key.clone(), spec);
        }
        Ok(out)
    }

    /// The address `owner` holds on network `name`, if any (IPv4 first).
    pub fn address_of(&self, name: &str, owner: &str) -> Option<IpAddr> {
        let mut mine: Vec<IpAddr> =
            self.leases.leases(name).ok()?.into_iter().filter(|l| l.owner == owner).map(|l| l.addr).collect();
        mine.sort_by_key(|a| a.is_ipv6());
        mine.first().copied()
    }

    /// True when berth keeps no network at all on this host.
    pub fn no_networks(&self) -> anyhow::Result<bool> {
        Ok(self.networks.networks()?.is_empty())
    }

    /// The subnets stored for network `name`, if any.
    pub fn subnets_of(&self, name: &str) -> anyhow::Result<Option<Vec<SubnetConfig>>> {
        Ok(self.networks.network(name)?.map(|n| n.subnets))
    }

    /// Creates `container`'s namespace at `netns`, leases its addresses and attaches it to its
    /// networks; on failure, undoes what it did.
    pub fn attach(
        &mut self,
        project: &Project,
        svc: &Service,
        container: &str,
        specs: &BTreeMap<String, NetworkSpec>,
        netns: &Path,
    ) -> anyhow::Result<Attached> {
        self.host.create_netns(netns)?;
        match self.attach_in(project, svc, container, specs, netns) {
            Ok(a) => Ok(a),
            Err(e) => {
                let undo = self.detach(project, svc, container, specs, netns);
                Err(e.undone(|| format!("the network namespace of `{container}` and its leases"), undo))
            }
        }
    }

    fn attach_in(
        &mut self,
        project: &Project,
        svc: &Service,
        container: &str,
        specs: &BTreeMap<String, NetworkSpec>,
        netns: &Path,
    ) -> anyhow::Result<Attached> {
        let planned = network::plan_interfaces(&memberships(project, svc))?;
        let mut attach = Vec::new();
        let mut addrs: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        let mut first_gateway = None;
        for p in &planned {
            let spec = specs.get(&p.network).with_context(|| format!("network {:?} was not set up", p.network))?;
            let (a, gateways) = self.interface(svc, container, p, spec, netns)?;
            first_gateway = first_gateway.or(gateways.first().copied());
            addrs.entry(p.network.clone()).or_default().extend(a.addresses.iter().map(IpNet::addr));
            attach.push(a);
        }
        network::attach_all(self.host, &attach)?;
        // Docker's resolver address, 127.0.0.11, inside the container, led to the project's DNS
        // server on the gateway (nginx's `resolver 127.0.0.11` and the like); the gateway itself
        // where that cannot be set up (no nftables).
        let nameserver = match first_gateway {
            Some(IpAddr::V4(gw)) if self.host.redirect_dns(netns, gw).is_ok() => {
                Some(IpAddr::V4(berth_network::DOCKER_DNS))
            }
            other => other,
        };
        let dns = DnsSettings { servers: &[], search: &svc.dns_search, options: &svc.dns_opt };
        let resolv = ResolvConf::for_container(Resolver::Berth(nameserver), dns);
        let own: Vec<IpAddr> =
            planned.iter().flat_map(|p| addrs.get(&p.network).cloned().unwrap_or_default()).collect();
        let mut names: Vec<String> = svc.hostname.iter().cloned().collect();
        names.push(container.to_string());
        let hosts = Hosts { addresses: own, names, extra_hosts: extra_hosts(svc, first_gateway)? };
        Ok(Attached { addrs, resolv_conf: resolv.render(), hosts: hosts.render() })
    }

    /// Leases `container`'s addresses on the network of planned interface `p` and says how to
    /// attach it: the attachment (with the addresses), and the gateways of their subnets.
    fn interface(
        &mut self,
        svc: &Service,
        container: &str,
        p: &network::PlannedInterface,
        spec: &NetworkSpec,
        netns: &Path,
    ) -> anyhow::Result<(AttachSpec, Vec<IpAddr>)> {
        let (want4, want6) = requested_addresses(svc, &p.network)?;
        let mut nets = Vec::new();
        let mut gateways = Vec::new();
        for (family, want) in [(Family::V4, want4), (Family::V6, want6)] {
            let subnets: Vec<SubnetConfig> =
                spec.subnets.iter().filter(|s| (family == Family::V4) == s.subnet.addr().is_ipv4()).cloned().collect();
            if subnets.is_empty() || (family == Family::V6 && !spec.enable_ipv6) {
                continue;
            }
            let ip = ipam::lease(self.leases, &spec.name, &subnets, container, family, want)?;
            let sub = subnets.iter().find(|s| s.subnet.contains(&ip)).expect("leased inside a subnet");
            nets.push(IpNet::new(ip, sub.subnet.prefix_len())?);
            gateways.push(sub.gateway());
        }
        let mac = match svc
            .networks
            .get(&p.network)
            .cloned()
            .flatten()
            .and_then(|o| o.mac_address)
            .or(svc.mac_address.clone())
        {
            Some(m) => Some(network::parse_mac(&m)?),
            None => None,
        };
        let attach = AttachSpec {
            netns: netns.to_path_buf(),
            bridge: spec.bridge.clone(),
            ifname: p.ifname.clone(),
            addresses: nets,
            mac,
            mtu: spec.mtu,
            default_routes: if p.default_route { gateways.clone() } else { Vec::new() },
        };
        Ok((attach, gateways))
    }

    /// Attaches running container `container` (namespace `netns`) to `svc`'s network `key`,
    /// with the interface name it would have been made with: returns its addresses there. On
    /// failure, the lease goes again.
    pub fn connect(
        &mut self,
        project: &Project,
        svc: &Service,
        container: &str,
        key: &str,
        spec: &NetworkSpec,
        netns: &Path,
    ) -> anyhow::Result<Vec<IpAddr>> {
        let planned = network::plan_interfaces(&memberships(project, svc))?;
        let p = planned
            .iter()
            .find(|p| p.network == key)
            .with_context(|| format!("service {:?} is not on network {key:?}", svc.name))?;
        let attached = self.interface(svc, container, p, spec, netns).and_then(|(a, _)| {
            self.host.attach(&a)?;
            Ok(a.addresses.iter().map(IpNet::addr).collect())
        });
        if attached.is_err() {
            if let Err(e) = self.leases.release(&spec.name, container) {
                return attached.map_err(|a| a.context(format!("and its lease on {:?} is left: {e}", spec.name)));
            }
        }
        attached
    }

    /// Takes interface `ifname` of running container `container` (namespace `netns`) off
    /// network `name` and gives back its lease there.
    pub fn disconnect(&mut self, container: &str, name: &str, ifname: &IfName, netns: &Path) -> anyhow::Result<()> {
        self.host.detach(netns, ifname)?;
        self.leases.release(name, container).with_context(|| format!("release leases on {name:?}"))
    }

    /// Detaches `container` from its networks, removes its namespace and releases its leases
    /// (for a container that has no row; a row's leases go with it, see [`Networking::take_down`]).
    /// Keeps going after a failure and reports them all.
    pub fn detach(
        &mut self,
        project: &Project,
        svc: &Service,
        container: &str,
        specs: &BTreeMap<String, NetworkSpec>,
        netns: &Path,
    ) -> anyhow::Result<()> {
        // Addresses stay leased while an interface may still hold them.
        self.take_down(project, svc, netns)?;
        for spec in specs.values() {
            // The cause stays attached: a full state file system is told apart from other failures.
            self.leases.release(&spec.name, container).with_context(|| format!("release leases on {:?}", spec.name))?;
        }
        Ok(())
    }

    /// Takes `svc`'s interfaces out of the namespace at `netns` and removes it, keeping the
    /// container's leases: a container with a row gives them back when its row is deleted, in
    /// the same transaction. Keeps going after a failure and reports them all.
    pub fn take_down(&mut self, project: &Project, svc: &Service, netns: &Path) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        let planned = network::plan_interfaces(&memberships(project, svc)).unwrap_or_default();
        if netns.exists() {
            // An unmounted file has no interfaces to take out: it just goes.
            let planned = if berth_network::netns::is_namespace(netns) { planned.as_slice() } else { &[] };
            for p in planned {
                if let Err(e) = self.host.detach(netns, &p.ifname) {
                    failures.push(format!("detach {}: {e}", p.ifname.as_str()));
                }
            }
            if let Err(e) = self.host.remove_netns(netns) {
                failures.push(format!("remove namespace `{}`: {e}", netns.display()));
            }
        }
        if !failures.is_empty() {
            bail!("{}", failures.join("; "));
        }
        Ok(())
    }

    /// Removes a network when no container uses its bridge any more (and forgets its subnet).
    pub fn remove(&mut self, spec: &NetworkSpec) -> anyhow::Result<bool> {
        if spec.external {
            return Ok(false);
        }
        let removed = network::remove_network_if_unused(self.host, self.firewall, spec)?;
        if removed {
            self.networks.forget_network(&spec.name)?;
        }
        Ok(removed)
    }
}

/// Configured subnets may overlap host routes (as in Docker), never another network.
fn check_configured(key: &str, spec: &NetworkSpec, others: &[IpNet]) -> anyhow::Result<()> {
    for s in &spec.subnets {
        ipam::check_subnet_free(&s.subnet, others)
            .with_context(|| format!("networks.{key}.ipam.config: subnet {}", s.subnet))?;
    }
    Ok(())
}

/// `extra_hosts` (`host=address`) as pairs; `host-gateway` is the host's address on the
/// container's first network (its gateway), as Docker's default bridge gateway is.
fn extra_hosts(svc: &Service, gateway: Option<IpAddr>) -> anyhow::Result<Vec<(String, IpAddr)>> {
    svc.extra_hosts
        .iter()
        .map(|e| {
            let (host, ip) = e.split_once('=').with_context(|| format!("invalid extra host {e:?}"))?;
            if ip == "host-gateway" {
                let gw = gateway.with_context(|| format!("extra host {host:?}: host-gateway needs a network"))?;
                return Ok((host.to_string(), gw));
            }
            let ip: IpAddr = ip
                .trim_matches(['[', ']'])
                .parse()
                .with_context(|| format!("extra host {host:?}: invalid address {ip:?}"))?;
            Ok((host.to_string(), ip))
        })
        .collect()
}

/// The interface names a service's container gets (for tests and `inspect`).
pub fn interface_names(project: &Project, svc: &Service) -> anyhow::Result<Vec<IfName>> {
    Ok(network::plan_interfaces(&memberships(project, svc))?.into_iter().map(|p| p.ifname).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_network::ipam::MemoryLeases;
    use berth_network::RecordingHost;

    fn project(yaml: &str) -> Project {
        berth_compose::load_str(yaml, &std::env::temp_dir()).expect("valid").project
    }

    const STACK: &str = "name: shop\nservices:\n  web:\n    image: busybox\n    hostname: www\n    networks: [front, back]\n    \
                         extra_hosts: [\"db.local=10.9.9.9\"]\n    dns_search: [example.org]\n  db:\n    image: busybox\n    networks:\n      \
                         back: {ipv4_address: 10.5.0.10}\nnetworks:\n  front:\n  back:\n    internal: true\n    ipam:\n      config:\n        - subnet: 10.5.0.0/24\n";

    #[test]
    fn stores_are_locked_while_open() {
        let dir = tempfile::tempdir().unwrap();
        let held = NetStores::open(dir.path()).unwrap();
        let root = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let _second = NetStores::open(&root).unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(std::time::Duration::from_millis(200)).is_err(), "a second opener waits");
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(5)).expect("and gets it once the first is done");
        t.join().unwrap();
    }

    #[test]
    fn attaches_with_leases_resolv_and_hosts_then_detaches() {
        let p = project(STACK);
        let dir = tempfile::tempdir().unwrap();
        let host = RecordingHost::default();
        let db = StateDb::open(dir.path()).unwrap();
        let mut leases = MemoryLeases::default();
        let mut n = Networking { host: &host, firewall: None, networks: &db, leases: &mut leases };
        let specs = n.ensure(&p, &["back".into(), "front".into()]).unwrap();
        assert_eq!(specs["back"].subnets[0].subnet.to_string(), "10.5.0.0/24");
        let front = specs["front"].subnets[0].subnet;
        let db = n.attach(&p, &p.services["db"], "shop-db-1", &specs, Path::new("/run/berth/netns/db")).unwrap();
        assert_eq!(db.addrs["back"], vec!["10.5.0.10".parse::<IpAddr>().unwrap()]);
        let web = n.attach(&p, &p.services["web"], "shop-web-1", &specs, Path::new("/run/berth/netns/web")).unwrap();
        let web_front = web.addrs["front"][0];
        assert!(front.contains(&web_front));
        assert!(web.resolv_conf.contains("search example.org"));
        // Docker's resolver address, led to the first network's gateway inside the namespace.
        assert!(web.resolv_conf.contains("nameserver 127.0.0.11"), "{}", web.resolv_conf);
        let gateway = specs["back"].subnets[0].gateway();
        assert!(host.calls().contains(&format!("redirect_dns /run/berth/netns/web {gateway}")), "{:?}", host.calls());
        assert!(web.hosts.contains("10.9.9.9\tdb.local"));
        assert!(web.hosts.contains("www shop-web-1"));
        n.detach(&p, &p.services["web"], "shop-web-1", &specs, Path::new("/nonexistent")).unwrap();
        let again = n.attach(&p, &p.services["web"], "shop-web-2", &specs, Path::new("/run/berth/netns/web2")).unwrap();
        assert_eq!(again.addrs["front"][0], web_front, "a released address is leased again");
        // The stored subnet is reused by a later `up`.
        let db = StateDb::open(dir.path()).unwrap();
        let mut n = Networking { host: &host, firewall: None, networks: &db, leases: &mut leases };
        assert_eq!(n.ensure(&p, &["front".into()]).unwrap()["front"].subnets[0].subnet, front);
        // Another project may not configure a subnet that overlaps one in use.
        let other = project(&format!("name: other\nservices:\n  a:\n    image: busybox\n    networks: [n]\nnetworks:\n  n:\n    ipam:\n      config:\n        - subnet: {front}\n"));
        let e = n.ensure(&other, &["n".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("networks.n.ipam.config"), "{e:#}");
    }
}
