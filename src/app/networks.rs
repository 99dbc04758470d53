//! `network ls|inspect|create|rm|prune`: the bridge networks berth made on this host, with the
//! containers holding addresses on them; one made outside any project for compose files that
//! name it as `external: true`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::bail;
use berth_network::nat::{Firewall, Nft};
use berth_network::network::NetworkSpec;
use berth_network::{IfName, NetlinkHost};

use crate::container::Roots;
use crate::stack::networking::{NetStores, Networking};
use crate::state::{DbLeases, NetworkRow};

/// A network on this host.
#[derive(Clone, Debug)]
pub struct HostNetwork {
    /// What the state keeps of it (its name, bridge, subnets, labels).
    pub record: NetworkRow,
    /// Container name → its addresses on it.
    pub containers: BTreeMap<String, Vec<IpAddr>>,
}

impl HostNetwork {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    fn spec(&self) -> anyhow::Result<NetworkSpec> {
        let mut spec = NetworkSpec::new(&self.record.name, &BTreeMap::new())?;
        spec.bridge = IfName::new(self.record.bridge.clone())?;
        spec.subnets = self.record.subnets.clone();
        spec.internal = self.record.internal;
        Ok(spec)
    }
}

/// What `network create` is asked for.
#[derive(Clone, Debug, Default)]
pub struct NewNetwork {
    /// Its name.
    pub name: String,
    /// Subnet in CIDR form (default: a free one from berth's pool).
    pub subnet: Option<String>,
    /// Gateway address (default: the subnet's first).
    pub gateway: Option<String>,
    /// No outbound traffic.
    pub internal: bool,
    /// `KEY=VALUE` labels.
    pub labels: Vec<String>,
}

/// The networks on this host, and the stores they are kept in.
pub struct Networks {
    roots: Roots,
    stores: NetStores,
    /// Every network, by name.
    pub all: Vec<HostNetwork>,
}

impl Networks {
    /// Reads the networks of the state under `roots`; with `reclaim`, the leases of containers
    /// that no longer exist are taken back first (they do not keep a network in use).
    pub fn open(roots: &Roots, reclaim: bool) -> anyhow::Result<Networks> {
        let stores = NetStores::open(&roots.root)?;
        if reclaim {
            stores.db.reclaim_leases()?;
        }
        let mut all: Vec<HostNetwork> = stores
            .db
            .networks()?
            .into_iter()
            .map(|record| HostNetwork { record, containers: BTreeMap::new() })
            .collect();
        for l in stores.db.all_leases()? {
            if let Some(n) = all.iter_mut().find(|n| n.record.name == l.network) {
                n.containers.entry(l.owner).or_default().push(l.addr);
            }
        }
        Ok(Networks { roots: roots.clone(), stores, all })
    }

    /// The networks named, in order; fails for one that does not exist.
    pub fn find(&self, names: &[String]) -> anyhow::Result<Vec<&HostNetwork>> {
        names
            .iter()
            .map(|name| {
                self.all.iter().find(|n| n.name() == name).ok_or_else(|| anyhow::anyhow!("no such network: {name:?}"))
            })
            .collect()
    }

    /// Makes a network through the same path `up` takes, described as a one-network compose
    /// file, so its name, subnet and labels get the loader's checks.
    pub fn create(&mut self, new: &NewNetwork) -> anyhow::Result<()> {
        let name = &new.name;
        if self.all.iter().any(|n| n.name() == name) {
            bail!("network {name:?} already exists");
        }
        let mut net = serde_json::json!({ "name": name, "internal": new.internal, "labels": new.labels });
        if let Some(subnet) = &new.subnet {
            let mut pool = serde_json::json!({ "subnet": subnet });
            if let Some(gw) = &new.gateway {
                pool["gateway"] = gw.clone().into();
            }
            net["ipam"] = serde_json::json!({ "config": [pool] });
        }
        // JSON is YAML: the loader reads it, with its checks.
        let doc = serde_json::json!({ "name": "berth-network-create", "services": {}, "networks": { "n": net } });
        let dir = std::env::current_dir()?;
        let project = berth_compose::load_str(&doc.to_string(), &dir)
            .map_err(|e| anyhow::anyhow!("network {name:?}: {}", e.message))?
            .project;
        let nft = self.firewall();
        let mut leases = self.stores.leases();
        let mut net = networking(&self.stores, nft.as_ref(), &mut leases);
        net.ensure(&project, &["n".to_string()])?;
        Ok(())
    }

    /// Removes the networks named, none when one is unknown or in use; `removed` hears of each.
    pub fn remove(&mut self, names: &[String], removed: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
        let found: Vec<HostNetwork> = self.find(names)?.into_iter().cloned().collect();
        for n in &found {
            if !n.containers.is_empty() {
                let users: Vec<&String> = n.containers.keys().collect();
                bail!("network {:?} is in use by {users:?}: remove those containers first", n.name());
            }
        }
        for n in &found {
            self.remove_one(n)?;
            removed(n.name());
        }
        Ok(())
    }

    /// Removes every network no container is attached to; `removed` hears of each.
    pub fn prune(&mut self, removed: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
        let unused: Vec<HostNetwork> = self.all.iter().filter(|n| n.containers.is_empty()).cloned().collect();
        for n in &unused {
            self.remove_one(n)?;
            removed(n.name());
        }
        Ok(())
    }

    fn remove_one(&mut self, n: &HostNetwork) -> anyhow::Result<()> {
        let nft = self.firewall();
        let mut leases = self.stores.leases();
        let mut net = networking(&self.stores, nft.as_ref(), &mut leases);
        if !net.remove(&n.spec()?)? {
            bail!("network {:?} still has interfaces on its bridge {}", n.name(), n.record.bridge);
        }
        if net.no_networks()? {
            if let Some(nft) = &nft {
                nft.delete_table()?;
            }
        }
        Ok(())
    }

    /// Berth's firewall table, where nftables is available.
    fn firewall(&self) -> Option<Nft> {
        Nft::available().then(|| Nft::new(crate::stack::engine::firewall_table(&self.roots.root)))
    }
}

/// The networking of the stores, on the kernel's links and berth's firewall table.
fn networking<'a>(stores: &'a NetStores, nft: Option<&'a Nft>, leases: &'a mut DbLeases<'a>) -> Networking<'a> {
    let firewall = nft.map(|f| f as &dyn Firewall);
    Networking { host: &NetlinkHost, firewall, networks: &stores.db, leases }
}
