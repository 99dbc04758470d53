//! A project's networks on the host: creating them (subnets chosen once and kept), attaching a
//! container's namespace to its networks with leased addresses, the container's
//! `resolv.conf` and `hosts`, and taking it all down again.
//!
//! Subnets and leases are kept in JSON files under the state root (`networks/subnets.json`,
//! `networks/leases.json`), written atomically.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use berth_compose::model::Service;
use berth_compose::Project;
use berth_network::files::{Hosts, ResolvConf};
use berth_network::ipam::{self, Family, LeaseStore, SubnetConfig};
use berth_network::nat::Firewall;
use berth_network::network::{self, NetworkSpec, SubnetsInUse};
use berth_network::{AttachSpec, Host, IfName};
use ipnet::IpNet;

use super::netmodel::{memberships, network_spec, requested_addresses};

/// Subnets chosen for networks, by network name, in a JSON file; beside it (`networks.json`)
/// what `berth network` shows of each network berth created.
pub struct SubnetFile {
    path: PathBuf,
    map: BTreeMap<String, Vec<SubnetConfig>>,
    meta: BTreeMap<String, NetworkRecord>,
}

/// A network berth created, as `berth network ls/inspect` show it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkRecord {
    /// The bridge.
    pub bridge: String,
    /// `internal: true`.
    pub internal: bool,
    /// `enable_ipv6`.
    pub enable_ipv6: bool,
    /// Bridge MTU.
    pub mtu: Option<u32>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

fn read_json<T: serde::de::DeserializeOwned + Default>(path: &Path) -> anyhow::Result<T> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data).with_context(|| format!("`{}` is corrupt", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    }
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write `{}`", path.display()))
}

impl SubnetFile {
    /// Opens `path` (missing means empty).
    pub fn open(path: impl Into<PathBuf>) -> anyhow::Result<SubnetFile> {
        let path = path.into();
        let map = read_json(&path)?;
        let meta = read_json(&path.with_file_name("networks.json"))?;
        Ok(SubnetFile { path, map, meta })
    }

    fn save(&self) -> anyhow::Result<()> {
        write_json(&self.path, &self.map)?;
        write_json(&self.path.with_file_name("networks.json"), &self.meta)
    }

    /// Every network berth keeps, with its subnets (a network made before berth recorded more
    /// than subnets gets a record from them alone).
    pub fn networks(&self) -> Vec<(String, NetworkRecord, Vec<SubnetConfig>)> {
        self.map
            .iter()
            .map(|(name, subnets)| {
                let rec = self.meta.get(name).cloned().unwrap_or_else(|| NetworkRecord {
                    bridge: berth_network::network::NetworkSpec::new(name, &BTreeMap::new())
                        .map(|s| s.bridge.to_string())
                        .unwrap_or_default(),
                    internal: false,
                    enable_ipv6: false,
                    mtu: None,
                    labels: BTreeMap::new(),
                    created_at: 0,
                });
                (name.clone(), rec, subnets.clone())
            })
            .collect()
    }
}

/// The stores of the host's networks (subnets and leases under `<state root>/networks/`),
/// opened under an exclusive lock so that two berth processes never interleave their
/// read-modify-write cycles; the lock is held until this is dropped.
pub struct NetStores {
    /// Chosen subnets.
    pub subnets: SubnetFile,
    /// Address leases.
    pub leases: berth_network::ipam::JsonFileLeases,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl NetStores {
    /// Locks and loads the stores under `state_root`.
    pub fn open(state_root: &Path) -> anyhow::Result<NetStores> {
        let dir = state_root.join("networks");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock"))?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow::anyhow!("cannot lock `{}`: {e}", dir.join("lock").display()))?;
        Ok(NetStores {
            subnets: SubnetFile::open(dir.join("subnets.json"))?,
            leases: berth_network::ipam::JsonFileLeases::open(dir.join("leases.json"))?,
            _lock: lock,
        })
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
    /// Chosen subnets.
    pub subnets: &'a mut SubnetFile,
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
            if spec.subnets.is_empty() {
                match self.subnets.map.get(&spec.name) {
                    Some(stored) => spec.subnets = stored.clone(),
                    None if spec.external => bail!("external network {:?} has no subnet berth knows of", spec.name),
                    None => {
                        let in_use = SubnetsInUse {
                            networks: self.other_subnets(&spec.name),
                            routes: self.host.routed_subnets()?,
                        };
                        network::assign_subnets(&mut spec, &in_use)?;
                    }
                }
            } else {
                // Configured subnets may overlap host routes (as in Docker), never another network.
                let others = self.other_subnets(&spec.name);
                for s in &spec.subnets {
                    ipam::check_subnet_free(&s.subnet, &others)
                        .with_context(|| format!("networks.{key}.ipam.config: subnet {}", s.subnet))?;
                }
            }
            if !spec.external {
                self.subnets.map.insert(spec.name.clone(), spec.subnets.clone());
                let created_at = self.subnets.meta.get(&spec.name).map(|m| m.created_at);
                self.subnets.meta.insert(
                    spec.name.clone(),
                    NetworkRecord {
                        bridge: spec.bridge.to_string(),
                        internal: spec.internal,
                        enable_ipv6: spec.enable_ipv6,
                        mtu: spec.mtu,
                        labels: spec.labels.clone(),
                        created_at: created_at.unwrap_or_else(crate::state::now_millis),
                    },
                );
                self.subnets.save()?;
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
    pub fn no_networks(&self) -> bool {
        self.subnets.map.is_empty()
    }

    /// The subnets stored for network `name`, if any.
    pub fn subnets_of(&self, name: &str) -> Option<Vec<SubnetConfig>> {
        self.subnets.map.get(name).cloned()
    }

    fn other_subnets(&self, name: &str) -> Vec<IpNet> {
        self.subnets.map.iter().filter(|(n, _)| *n != name).flat_map(|(_, s)| s.iter().map(|c| c.subnet)).collect()
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
                let _ = self.detach(project, svc, container, specs, netns);
                Err(e)
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
            let (want4, want6) = requested_addresses(svc, &p.network)?;
            let mut nets = Vec::new();
            let mut gateways = Vec::new();
            for (family, want) in [(Family::V4, want4), (Family::V6, want6)] {
                let subnets: Vec<SubnetConfig> = spec
                    .subnets
                    .iter()
                    .filter(|s| (family == Family::V4) == s.subnet.addr().is_ipv4())
                    .cloned()
                    .collect();
                if subnets.is_empty() || (family == Family::V6 && !spec.enable_ipv6) {
                    continue;
                }
                let ip = ipam::lease(self.leases, &spec.name, &subnets, container, family, want)?;
                let sub = subnets.iter().find(|s| s.subnet.contains(&ip)).expect("leased inside a subnet");
                nets.push(IpNet::new(ip, sub.subnet.prefix_len())?);
                gateways.push(sub.gateway());
                addrs.entry(p.network.clone()).or_default().push(ip);
            }
            first_gateway = first_gateway.or(gateways.first().copied());
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
            attach.push(AttachSpec {
                netns: netns.to_path_buf(),
                bridge: spec.bridge.clone(),
                ifname: p.ifname.clone(),
                addresses: nets,
                mac,
                mtu: spec.mtu,
                default_routes: if p.default_route { gateways } else { Vec::new() },
            });
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
        let resolv = ResolvConf {
            nameservers: nameserver.into_iter().collect(),
            search: svc.dns_search.clone(),
            options: svc.dns_opt.clone(),
        };
        let own: Vec<IpAddr> =
            planned.iter().flat_map(|p| addrs.get(&p.network).cloned().unwrap_or_default()).collect();
        let mut names: Vec<String> = svc.hostname.iter().cloned().collect();
        names.push(container.to_string());
        let hosts = Hosts { addresses: own, names, extra_hosts: extra_hosts(svc, first_gateway)? };
        Ok(Attached { addrs, resolv_conf: resolv.render(), hosts: hosts.render() })
    }

    /// Detaches `container` from its networks, removes its namespace and releases its leases.
    /// Keeps going after a failure and reports them all.
    pub fn detach(
        &mut self,
        project: &Project,
        svc: &Service,
        container: &str,
        specs: &BTreeMap<String, NetworkSpec>,
        netns: &Path,
    ) -> anyhow::Result<()> {
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
            // Addresses stay leased while an interface may still hold them.
            bail!("{}", failures.join("; "));
        }
        for spec in specs.values() {
            // The cause stays attached: a full state file system is told apart from other failures.
            self.leases.release(&spec.name, container).with_context(|| format!("release leases on {:?}", spec.name))?;
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
            self.subnets.map.remove(&spec.name);
            self.subnets.meta.remove(&spec.name);
            self.subnets.save()?;
        }
        Ok(removed)
    }
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
        let mut subnets = SubnetFile::open(dir.path().join("subnets.json")).unwrap();
        let mut leases = MemoryLeases::default();
        let mut n = Networking { host: &host, firewall: None, subnets: &mut subnets, leases: &mut leases };
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
        let mut subnets = SubnetFile::open(dir.path().join("subnets.json")).unwrap();
        let mut n = Networking { host: &host, firewall: None, subnets: &mut subnets, leases: &mut leases };
        assert_eq!(n.ensure(&p, &["front".into()]).unwrap()["front"].subnets[0].subnet, front);
        // Another project may not configure a subnet that overlaps one in use.
        let other = project(&format!("name: other\nservices:\n  a:\n    image: busybox\n    networks: [n]\nnetworks:\n  n:\n    ipam:\n      config:\n        - subnet: {front}\n"));
        let e = n.ensure(&other, &["n".into()]).unwrap_err();
        assert!(format!("{e:#}").contains("networks.n.ipam.config"), "{e:#}");
    }
}
