//! `berth network ls|inspect|create|rm|prune`: the bridge networks berth made on this host, with
//! the containers holding addresses on them. `create` makes one outside any project, for compose
//! files that name it as `external: true`.

use std::collections::BTreeMap;

use anyhow::bail;
use berth::stack::networking::{NetStores, Networking};
use berth::state::NetworkRow;

use berth_network::network::NetworkSpec;
use berth_network::{IfName, NetlinkHost};
use clap::{Args, Subcommand};

use super::ProjectArgs;

/// Arguments of `berth network`.
#[derive(Args, Debug)]
pub struct NetworkArgs {
    #[command(subcommand)]
    command: NetworkCommand,
}

#[derive(Subcommand, Debug)]
enum NetworkCommand {
    /// List networks
    Ls(super::ListArgs),
    /// Show networks as JSON
    Inspect {
        /// Network names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Create a bridge network outside any project (for `external: true`)
    Create {
        /// Network name
        name: String,
        /// Subnet in CIDR form (default: a free one from berth's pool)
        #[arg(long)]
        subnet: Option<String>,
        /// Gateway address (default: the subnet's first)
        #[arg(long, requires = "subnet")]
        gateway: Option<String>,
        /// No outbound traffic (no NAT)
        #[arg(long)]
        internal: bool,
        /// Labels (`KEY=VALUE`, repeatable)
        #[arg(short, long = "label")]
        labels: Vec<String>,
    },
    /// Remove networks (refused while a container is attached)
    Rm {
        /// Network names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every network no container is attached to
    Prune,
}

struct Net {
    record: NetworkRow,
    /// Container name → addresses.
    containers: BTreeMap<String, Vec<std::net::IpAddr>>,
}

impl Net {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "Name": self.record.name,
            "Driver": "bridge",
            "Scope": "local",
            "Bridge": self.record.bridge,
            "Internal": self.record.internal,
            "EnableIPv6": self.record.enable_ipv6,
            "MTU": self.record.mtu,
            "Created": self.record.created_at / 1000,
            "IPAM": {"Driver": "default", "Config": self.record.subnets.iter().map(|s| serde_json::json!({
                "Subnet": s.subnet.to_string(), "Gateway": s.gateway().to_string(),
                "IPRange": s.ip_range.map(|r| r.to_string()),
            })).collect::<Vec<_>>()},
            "Labels": self.record.labels,
            "Containers": self.containers.iter().map(|(c, a)| (c.clone(), serde_json::json!({
                "Name": c, "Addresses": a.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            }))).collect::<serde_json::Map<_, _>>(),
        })
    }

    fn spec(&self) -> anyhow::Result<NetworkSpec> {
        let mut spec = NetworkSpec::new(&self.record.name, &BTreeMap::new())?;
        spec.bridge = IfName::new(self.record.bridge.clone())?;
        spec.subnets = self.record.subnets.clone();
        spec.internal = self.record.internal;
        Ok(spec)
    }
}

fn list(stores: &NetStores) -> anyhow::Result<Vec<Net>> {
    let mut nets: Vec<Net> =
        stores.db.networks()?.into_iter().map(|record| Net { record, containers: BTreeMap::new() }).collect();
    for l in stores.db.all_leases()? {
        if let Some(n) = nets.iter_mut().find(|n| n.record.name == l.network) {
            n.containers.entry(l.owner).or_default().push(l.addr);
        }
    }
    Ok(nets)
}

/// Runs `berth network`.
pub fn run(_project: &ProjectArgs, args: NetworkArgs) -> anyhow::Result<()> {
    let roots = berth::container::Roots::from_env();
    let stores = NetStores::open(&roots.root)?;
    if matches!(args.command, NetworkCommand::Rm { .. } | NetworkCommand::Prune) {
        // A container that no longer exists does not keep a network in use.
        stores.db.reclaim_leases()?;
    }
    let nets = list(&stores)?;
    match args.command {
        NetworkCommand::Ls(super::ListArgs { quiet, format }) => {
            if quiet {
                nets.iter().for_each(|n| println!("{}", n.record.name));
            } else if format == "json" {
                nets.iter().for_each(|n| println!("{}", n.json()));
            } else {
                let mut rows = vec![["NAME", "DRIVER", "BRIDGE", "SUBNET", "CONTAINERS"].map(String::from).to_vec()];
                for n in &nets {
                    let subnets: Vec<String> = n.record.subnets.iter().map(|s| s.subnet.to_string()).collect();
                    rows.push(vec![
                        n.record.name.clone(),
                        "bridge".into(),
                        n.record.bridge.clone(),
                        subnets.join(","),
                        n.containers.len().to_string(),
                    ]);
                }
                super::format::print_table(&rows);
            }
        }
        NetworkCommand::Inspect { names } => {
            let mut out = Vec::new();
            for name in &names {
                let Some(n) = nets.iter().find(|n| &n.record.name == name) else { bail!("no such network: {name:?}") };
                out.push(n.json());
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        NetworkCommand::Create { name, subnet, gateway, internal, labels } => {
            if nets.iter().any(|n| n.record.name == name) {
                bail!("network {name:?} already exists");
            }
            create(&roots, &stores, &name, subnet, gateway, internal, &labels)?;
            println!("{name}");
        }
        NetworkCommand::Rm { names } => {
            for name in &names {
                let Some(n) = nets.iter().find(|n| &n.record.name == name) else { bail!("no such network: {name:?}") };
                if !n.containers.is_empty() {
                    let users: Vec<&String> = n.containers.keys().collect();
                    bail!("network {name:?} is in use by {users:?}: remove those containers first");
                }
            }
            for name in &names {
                let n = nets.iter().find(|n| &n.record.name == name).expect("checked");
                remove(&roots, &stores, n)?;
                println!("{name}");
            }
        }
        NetworkCommand::Prune => {
            for n in nets.iter().filter(|n| n.containers.is_empty()) {
                remove(&roots, &stores, n)?;
                println!("{}", n.record.name);
            }
        }
    }
    Ok(())
}

/// Makes network `name` through the same path `up` takes, described as a one-network compose
/// file, so its name, subnet and labels get the loader's checks.
fn create(
    roots: &berth::container::Roots,
    stores: &NetStores,
    name: &str,
    subnet: Option<String>,
    gateway: Option<String>,
    internal: bool,
    labels: &[String],
) -> anyhow::Result<()> {
    let mut net = serde_json::json!({ "name": name, "internal": internal, "labels": labels });
    if let Some(subnet) = subnet {
        let mut pool = serde_json::json!({ "subnet": subnet });
        if let Some(gw) = gateway {
            pool["gateway"] = gw.into();
        }
        net["ipam"] = serde_json::json!({ "config": [pool] });
    }
    // JSON is YAML: the loader reads it, with its checks.
    let doc = serde_json::json!({ "name": "berth-network-create", "services": {}, "networks": { "n": net } });
    let dir = std::env::current_dir()?;
    let project = berth_compose::load_str(&doc.to_string(), &dir)
        .map_err(|e| anyhow::anyhow!("network {name:?}: {}", e.message))?
        .project;
    let host = NetlinkHost;
    let nft = berth_network::nat::Nft::available()
        .then(|| berth_network::nat::Nft::new(berth::stack::engine::firewall_table(&roots.root)));
    let firewall = nft.as_ref().map(|f| f as &dyn berth_network::nat::Firewall);
    let mut leases = stores.leases();
    let mut net = Networking { host: &host, firewall, networks: &stores.db, leases: &mut leases };
    net.ensure(&project, &["n".to_string()])?;
    Ok(())
}

fn remove(roots: &berth::container::Roots, stores: &NetStores, n: &Net) -> anyhow::Result<()> {
    let host = NetlinkHost;
    let nft = berth_network::nat::Nft::available()
        .then(|| berth_network::nat::Nft::new(berth::stack::engine::firewall_table(&roots.root)));
    let firewall = nft.as_ref().map(|f| f as &dyn berth_network::nat::Firewall);
    let mut leases = stores.leases();
    let mut net = Networking { host: &host, firewall, networks: &stores.db, leases: &mut leases };
    if !net.remove(&n.spec()?)? {
        bail!("network {:?} still has interfaces on its bridge {}", n.record.name, n.record.bridge);
    }
    if net.no_networks()? {
        if let Some(nft) = &nft {
            nft.delete_table()?;
        }
    }
    Ok(())
}
