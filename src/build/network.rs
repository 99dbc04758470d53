//! The network of `RUN` steps.
//!
//! * `none` (`RUN --network=none`, `build.network: none`, `berth build --network none`): a
//!   namespace of the container's own with loopback only;
//! * `default`: the build bridge — `berth-build0` for the default state root, `berthb-<hash>` for
//!   any other, recorded in the state database as the network `berth-build` with a subnet chosen
//!   like a project network's. Each `RUN` gets a namespace at `<run dir>/netns/<container>`, a
//!   leased address, a default route through the bridge's gateway, outbound masquerade (the
//!   project networks' nftables rules, so it is isolated from them) and the host's resolvers
//!   (loopback ones such as systemd-resolved's 127.0.0.53 are replaced by the upstream servers
//!   in `/run/systemd/resolve/resolv.conf`, or left out). The namespace, its interface and its
//!   lease are gone when the step ends; the bridge, its rules and its row go when the build
//!   ends and no other build has a container on it.
//! * `host` (`build.network: host`, `berth build --network host`; `RUN --network=host` only in
//!   such a build): the host's namespace and its `resolv.conf`.
//!
//! A lease is taken with an intent row (project [`BUILD_PROJECT`], the build process's pid as its
//! service), so no `up` or `network prune` reclaims it while the step runs; an intent whose
//! process is gone is what a killed build left, and [`tidy`] takes its namespace and lease away.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use berth_network::files::{host_nameservers, ResolvConf};
use berth_network::ipam::{self, Family, LeaseStore};
use berth_network::nat::{Firewall, Nft};
use berth_network::network::{self, NetworkSpec, SubnetsInUse};
use berth_network::{AttachSpec, Host, IfName, NetlinkHost};

use super::error::{BuildError, Result};
use crate::container::Roots;
use crate::stack::networking::NetStores;
use crate::state::NetworkRow;

/// The name of the build network in the state database.
pub const BUILD_NETWORK: &str = "berth-build";

/// The project the intents of `RUN` containers on the build network are recorded under (not a
/// valid project name, so never one of a compose project).
pub const BUILD_PROJECT: &str = "(build)";

/// The interface of a `RUN` container on the build bridge.
const IFNAME: &str = "eth0";

/// The build bridge of state root `root`: `berth-build0` for the default root, a name of its own
/// for any other (so separate roots, such as tests', never share one).
pub fn bridge_name(root: &Path) -> IfName {
    if root == Path::new("/var/lib/berth") {
        return IfName::new("berth-build0").expect("a valid name");
    }
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(root.as_os_str().as_encoded_bytes()));
    IfName::new(format!("berthb-{}", &h[..8])).expect("a valid name")
}

/// A `RUN` container attached to the build bridge.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// Its namespace.
    pub netns: PathBuf,
    /// The lease owner (the container id).
    pub owner: String,
    /// Its address.
    pub addr: IpAddr,
    /// The bridge's gateway (the host, as `host-gateway`).
    pub gateway: IpAddr,
}

fn fail(e: impl std::fmt::Display) -> BuildError {
    BuildError::Network(e.to_string())
}

fn firewall(roots: &Roots) -> Option<Nft> {
    Nft::available().then(|| Nft::new(crate::stack::engine::firewall_table(&roots.root)))
}

fn spec(stores: &NetStores, roots: &Roots) -> Result<NetworkSpec> {
    let mut spec = NetworkSpec::new(BUILD_NETWORK, &Default::default()).map_err(fail)?;
    spec.bridge = bridge_name(&roots.root);
    let row = NetworkRow {
        name: spec.name.clone(),
        project: None,
        key: None,
        bridge: spec.bridge.to_string(),
        internal: false,
        enable_ipv6: false,
        mtu: None,
        labels: Default::default(),
        created_at: crate::state::now_millis(),
        subnets: Vec::new(),
    };
    spec.subnets = stores
        .db
        .claim_network(&row, |stored, others| {
            if let Some(stored) = stored {
                return Ok(stored);
            }
            let mut s = spec.clone();
            let routes = NetlinkHost.routed_subnets().map_err(fail)?;
            network::assign_subnets(&mut s, &SubnetsInUse { networks: others, routes }).map_err(fail)?;
            Ok::<_, BuildError>(s.subnets)
        })
        .map_err(fail)?;
    Ok(spec)
}

/// Makes the build bridge exist and attaches a new namespace for container `id` to it.
pub fn attach(roots: &Roots, id: &str) -> Result<Attachment> {
    let stores = NetStores::open(&roots.root).map_err(fail)?;
    let spec = spec(&stores, roots)?;
    let nft = firewall(roots);
    network::ensure_network(&NetlinkHost, nft.as_ref().map(|n| n as &dyn Firewall), &spec).map_err(fail)?;
    stores.db.add_intent(BUILD_PROJECT, &std::process::id().to_string(), id).map_err(fail)?;
    let netns = roots.run.join("netns").join(id);
    let mut leases = stores.leases();
    let attached = (|| {
        let sub = spec.subnets.iter().find(|s| s.subnet.addr().is_ipv4()).ok_or_else(|| fail("no IPv4 subnet"))?;
        let addr =
            ipam::lease(&mut leases, BUILD_NETWORK, std::slice::from_ref(sub), id, Family::V4, None).map_err(fail)?;
        if let Some(dir) = netns.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        NetlinkHost.create_netns(&netns).map_err(fail)?;
        let gateway = sub.gateway();
        NetlinkHost
            .attach(&AttachSpec {
                netns: netns.clone(),
                bridge: spec.bridge.clone(),
                ifname: IfName::new(IFNAME).expect("a valid name"),
                addresses: vec![ipnet::IpNet::new(addr, sub.subnet.prefix_len()).map_err(fail)?],
                mac: None,
                mtu: None,
                default_routes: vec![gateway],
            })
            .map_err(fail)?;
        Ok(Attachment { netns: netns.clone(), owner: id.to_string(), addr, gateway })
    })();
    if attached.is_err() {
        // What cannot be taken down keeps its intent (removed only on success), so the next
        // build's `tidy` takes it away.
        let _ = take_down(&stores, &netns, id);
    }
    attached
}

/// Takes the namespace of `a` away and releases its lease.
pub fn detach(roots: &Roots, a: &Attachment) -> Result<()> {
    let stores = NetStores::open(&roots.root).map_err(fail)?;
    take_down(&stores, &a.netns, &a.owner)
}

fn take_down(stores: &NetStores, netns: &Path, owner: &str) -> Result<()> {
    let mut failures = Vec::new();
    if netns.exists() {
        if berth_network::netns::is_namespace(netns) {
            if let Err(e) = NetlinkHost.detach(netns, &IfName::new(IFNAME).expect("a valid name")) {
                failures.push(e.to_string());
            }
        }
        if let Err(e) = NetlinkHost.remove_netns(netns) {
            failures.push(e.to_string());
        }
    }
    if failures.is_empty() {
        stores.leases().release(BUILD_NETWORK, owner).map_err(fail)?;
        stores.db.remove_intent(owner).map_err(fail)?;
        return Ok(());
    }
    Err(fail(failures.join("; ")))
}

/// Takes away what killed builds left on the build network, then the network itself when no
/// build has a container on it (and berth's nftables table when no network at all is left).
pub fn tidy(roots: &Roots) -> Result<()> {
    let stores = NetStores::open(&roots.root).map_err(fail)?;
    let mut busy = false;
    for intent in stores.db.intents(BUILD_PROJECT).map_err(fail)? {
        let alive = intent
            .service
            .parse::<i32>()
            .is_ok_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok());
        if alive {
            busy = true;
        } else {
            take_down(&stores, &roots.run.join("netns").join(&intent.name), &intent.name)?;
        }
    }
    let Some(row) = stores.db.network(BUILD_NETWORK).map_err(fail)? else { return Ok(()) };
    if busy {
        return Ok(());
    }
    let mut spec = NetworkSpec::new(BUILD_NETWORK, &Default::default()).map_err(fail)?;
    spec.bridge = IfName::new(row.bridge).map_err(fail)?;
    spec.subnets = row.subnets;
    let nft = firewall(roots);
    let fw = nft.as_ref().map(|n| n as &dyn Firewall);
    if network::remove_network_if_unused(&NetlinkHost, fw, &spec).map_err(fail)?
        || !NetlinkHost.bridge_exists(&spec.bridge).unwrap_or(true)
    {
        stores.db.forget_network(BUILD_NETWORK).map_err(fail)?;
        if let Some(nft) = &nft {
            if stores.db.networks().map_err(fail)?.is_empty() {
                nft.delete_table().map_err(fail)?;
            }
        }
    }
    Ok(())
}

/// The `resolv.conf` of a `RUN` container on the build bridge: the host's resolvers a namespace
/// can reach. When the host lists only loopback ones (systemd-resolved's stub), the upstream
/// servers systemd-resolved keeps in `/run/systemd/resolve/resolv.conf` are used.
pub fn resolv_conf(host: &str, systemd: Option<&str>) -> String {
    let mut nameservers = host_nameservers(host);
    if nameservers.is_empty() {
        nameservers = systemd.map(host_nameservers).unwrap_or_default();
    }
    let words = |key: &str| -> Vec<String> {
        host.lines()
            .filter_map(|l| l.strip_prefix(key))
            .flat_map(|rest| rest.split_whitespace().map(str::to_string))
            .collect()
    };
    ResolvConf { nameservers, search: words("search "), options: words("options ") }.render()
}

/// [`resolv_conf`] of this host's files.
pub fn host_resolv_conf() -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let systemd = std::fs::read_to_string("/run/systemd/resolve/resolv.conf").ok();
    resolv_conf(&host, systemd.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bridge_of_the_default_root_has_its_own_name() {
        assert_eq!(bridge_name(Path::new("/var/lib/berth")).as_str(), "berth-build0");
        let other = bridge_name(Path::new("/tmp/x"));
        assert!(other.as_str().starts_with("berthb-") && other.as_str().len() <= 15, "{other:?}");
        assert_ne!(other, bridge_name(Path::new("/tmp/y")));
    }

    #[test]
    fn resolvers_a_namespace_cannot_reach_are_left_out() {
        let stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";
        let upstream = "nameserver 192.0.2.53\nnameserver 127.0.0.1\n";
        assert_eq!(
            resolv_conf(stub, Some(upstream)),
            "# generated by berth\nnameserver 192.0.2.53\nsearch lan\noptions edns0 trust-ad\n"
        );
        assert_eq!(resolv_conf(stub, None), "# generated by berth\nsearch lan\noptions edns0 trust-ad\n");
        assert_eq!(
            resolv_conf("nameserver 198.51.100.1\n", Some(upstream)),
            "# generated by berth\nnameserver 198.51.100.1\n"
        );
    }
}
