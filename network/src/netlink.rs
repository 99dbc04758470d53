//! [`Host`] over rtnetlink.
//!
//! Every operation runs on a throw-away thread with its own single-threaded tokio runtime and its
//! own netlink socket: a netlink socket talks to the namespace of the thread that opened it, so the
//! container side of an attachment is configured from a thread that first entered the container's
//! namespace (see [`crate::netns`]). rtnetlink 0.24 builders: `LinkBridge::new`, `LinkVeth::new`,
//! `LinkUnspec::new_with_index(..).controller(bridge)` (formerly `master`), `setns_by_fd` to move a
//! link into a namespace, and `RouteMessageBuilder::<Ipv4Addr>` for routes.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteType};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{Error, Result};
use crate::host::{require_bridge, AttachSpec, BridgeSpec, Host, BRIDGE_ALIAS};
use crate::names::{host_veth_name, peer_veth_name, IfName};
use crate::netns;

/// The real [`Host`].
#[derive(Clone, Copy, Debug, Default)]
pub struct NetlinkHost;

/// Runs `f` with a netlink handle opened inside the namespace at `ns` (the host's when `None`).
fn with_netlink<T, F, Fut>(ns: Option<&Path>, f: F) -> Result<T>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<T>>,
{
    netns::run_in(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("start a runtime for", "netlink", e))?;
        rt.block_on(async move {
            let (conn, handle, _) =
                rtnetlink::new_connection().map_err(|e| Error::io("open a netlink socket for", "rtnetlink", e))?;
            let task = tokio::spawn(conn);
            let out = f(handle).await;
            task.abort();
            out
        })
    })?
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

async fn link_by_name(h: &Handle, name: &str) -> Result<Option<LinkMessage>> {
    match h.link().get().match_name(name.to_string()).execute().try_next().await {
        Ok(link) => Ok(link),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(Error::netlink("look up link", name, e)),
    }
}

/// The link's kind (`IFLA_INFO_KIND`: `bridge`, `veth`, `dummy`, ...); `device` for links without
/// one (physical interfaces, `lo`).
fn link_kind(link: &LinkMessage) -> String {
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                LinkInfo::Kind(k) => Some(k.to_string()),
                _ => None,
            }),
            _ => None,
        })
        .unwrap_or_else(|| "device".to_string())
}

/// Whether the link carries berth's mark ([`BRIDGE_ALIAS`] as its `IFLA_IFALIAS`).
fn marked_by_berth(link: &LinkMessage) -> bool {
    link.attributes.iter().any(|a| matches!(a, LinkAttribute::IfAlias(s) if s == BRIDGE_ALIAS))
}

/// Deletes the link called `name` when there is one (leftovers of an interrupted attach).
async fn delete_if_present(h: &Handle, name: &str) -> Result<()> {
    let Some(old) = link_by_name(h, name).await? else { return Ok(()) };
    match h.link().del(old.header.index).execute().await {
        Err(e) if errno(&e) != Some(libc::ENODEV) => Err(Error::netlink("delete leftover link", name, e)),
        _ => Ok(()),
    }
}

/// Creates a bridge and marks it as berth's. The alias cannot go into the creating request (the
/// kernel applies `IFLA_IFALIAS` only when changing a link), so it is set right after; a bridge
/// that cannot be marked is deleted again. Returns false when another process created it first.
async fn create_bridge(h: &Handle, spec: &BridgeSpec) -> Result<bool> {
    let name = spec.name.as_str();
    // A fixed address: without one a bridge takes the lowest of its ports' addresses, which
    // changes as containers come and go, and containers keep sending to the old gateway address
    // until their ARP entries expire.
    let mut b = LinkBridge::new(name).address(bridge_mac(name).to_vec());
    if let Some(mtu) = spec.mtu {
        b = b.mtu(mtu);
    }
    match h.link().add(b.build()).execute().await {
        Ok(()) => {}
        // Another project's supervisor created it first.
        Err(e) if errno(&e) == Some(libc::EEXIST) => return Ok(false),
        Err(e) => return Err(Error::netlink("create bridge", name, e)),
    }
    let idx = index_of(h, name).await?;
    let mark = LinkUnspec::new_with_index(idx).alias(BRIDGE_ALIAS).build();
    if let Err(e) = h.link().set(mark).execute().await {
        let undo = h.link().del(idx).execute().await.map_err(|u| Error::netlink("delete bridge", name, u));
        return Err(Error::netlink("mark as berth's", name, e).undone(|| format!("bridge `{name}`"), undo));
    }
    Ok(true)
}

/// The bridge's own MAC address, derived from its name: locally administered, unicast, and the
/// same every time the bridge is made.
pub fn bridge_mac(name: &str) -> [u8; 6] {
    // FNV-1a over the name; any stable spread will do.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    [0x02, b[3], b[4], b[5], b[6], b[7]]
}

/// The address containers resolve names through, as under Docker.
pub const DOCKER_DNS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 11);

async fn index_of(h: &Handle, name: &str) -> Result<u32> {
    match link_by_name(h, name).await? {
        Some(l) => Ok(l.header.index),
        None => Err(Error::netlink("find link", name, rtnetlink::Error::RequestFailed)),
    }
}

/// Adds an address (idempotently). IPv6 addresses skip duplicate address detection, which would
/// otherwise leave them "tentative" — unusable for binding (the DNS server) — for a second or two.
async fn add_address(h: &Handle, index: u32, ifname: &str, addr: &IpNet) -> Result<()> {
    let mut req = h.address().add(index, addr.addr(), addr.prefix_len()).replace();
    if addr.addr().is_ipv6() {
        req.message_mut().attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    req.execute().await.map_err(|e| Error::netlink("add address to", format!("{ifname} ({addr})"), e))
}

async fn set_up(h: &Handle, index: u32, name: &str) -> Result<()> {
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| Error::netlink("bring up", name, e))
}

async fn add_default_route(h: &Handle, gateway: IpAddr, ifname: &str) -> Result<()> {
    let msg = match gateway {
        IpAddr::V4(gw) => RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).build(),
        IpAddr::V6(gw) => RouteMessageBuilder::<Ipv6Addr>::new().gateway(gw).build(),
    };
    h.route()
        .add(msg)
        .replace()
        .execute()
        .await
        .map_err(|e| Error::netlink("add default route via", format!("{gateway} ({ifname})"), e))
}

impl NetlinkHost {
    fn attach_host_side(&self, spec: &AttachSpec, host_name: &IfName, peer_name: &IfName) -> Result<()> {
        let ns_file =
            std::fs::File::open(&spec.netns).map_err(|e| Error::io("open network namespace", &spec.netns, e))?;
        with_netlink(None, |h| async move {
            let bridge = index_of(&h, spec.bridge.as_str()).await?;
            // Leftovers of an attach that was interrupted (a crash): the pair, or the peer alone
            // when it never made it into the namespace.
            delete_if_present(&h, host_name.as_str()).await?;
            delete_if_present(&h, peer_name.as_str()).await?;
            let mut veth = LinkVeth::new(host_name.as_str(), peer_name.as_str());
            if let Some(mtu) = spec.mtu {
                veth = veth.mtu(mtu);
            }
            h.link()
                .add(veth.build())
                .execute()
                .await
                .map_err(|e| Error::netlink("create veth", host_name.as_str(), e))?;
            let host_idx = index_of(&h, host_name.as_str()).await?;
            let result = async {
                let peer_idx = index_of(&h, peer_name.as_str()).await?;
                let mut peer = LinkUnspec::new_with_index(peer_idx).setns_by_fd(ns_file.as_raw_fd());
                if let Some(mtu) = spec.mtu {
                    peer = peer.mtu(mtu);
                }
                h.link()
                    .set(peer.build())
                    .execute()
                    .await
                    .map_err(|e| Error::netlink("move into namespace", peer_name.as_str(), e))?;
                let port = LinkUnspec::new_with_index(host_idx).controller(bridge).up().build();
                h.link()
                    .set(port)
                    .execute()
                    .await
                    .map_err(|e| Error::netlink("plug into bridge", host_name.as_str(), e))
            }
            .await;
            match result {
                Err(e) => {
                    let undo = h.link().del(host_idx).execute().await;
                    let undo = undo.map_err(|u| Error::netlink("delete veth", host_name.as_str(), u));
                    Err(e.undone(|| format!("veth `{host_name}`"), undo))
                }
                ok => ok,
            }
        })
    }

    fn attach_container_side(&self, spec: &AttachSpec, peer_name: &IfName) -> Result<()> {
        with_netlink(Some(&spec.netns), |h| async move {
            let ifname = spec.ifname.as_str();
            let idx = index_of(&h, peer_name.as_str()).await?;
            let mut link = LinkUnspec::new_with_index(idx).name(ifname.to_string());
            if let Some(mac) = spec.mac {
                link = link.address(mac.to_vec());
            }
            h.link().set(link.build()).execute().await.map_err(|e| Error::netlink("rename", ifname, e))?;
            for addr in &spec.addresses {
                add_address(&h, idx, ifname, addr).await?;
            }
            set_up(&h, idx, ifname).await?;
            let lo = index_of(&h, "lo").await?;
            set_up(&h, lo, "lo").await?;
            for gw in &spec.default_routes {
                add_default_route(&h, *gw, ifname).await?;
            }
            Ok(())
        })
    }
}

/// Drops what the host remembers of the link-layer addresses of `spec`'s addresses on its bridge:
/// an address a container that just went held (a replaced one, say) may be leased again at once,
/// and the host would send to the old MAC address until the entry expired.
fn forget_neighbours(spec: &AttachSpec) -> Result<()> {
    use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute};
    let wanted: Vec<IpAddr> = spec.addresses.iter().map(|a| a.addr()).collect();
    with_netlink(None, |h| async move {
        let Some(bridge) = link_by_name(&h, spec.bridge.as_str()).await? else { return Ok(()) };
        let mut entries = h.neighbours().get().execute();
        let mut stale = Vec::new();
        while let Some(msg) =
            entries.try_next().await.map_err(|e| Error::netlink("list neighbours of", spec.bridge.as_str(), e))?
        {
            let dst = msg.attributes.iter().cloned().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => Some(IpAddr::V4(v4)),
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => Some(IpAddr::V6(v6)),
                _ => None,
            });
            if msg.header.ifindex == bridge.header.index && dst.is_some_and(|d| wanted.contains(&d)) {
                stale.push(msg);
            }
        }
        for msg in stale {
            // Gone meanwhile: nothing to forget.
            let _ = h.neighbours().del(msg).execute().await;
        }
        Ok(())
    })
}

impl Host for NetlinkHost {
    fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<bool> {
        with_netlink(None, |h| async move {
            let name = spec.name.as_str();
            let created = match link_by_name(&h, name).await? {
                Some(_) => false,
                None => create_bridge(&h, spec).await?,
            };
            let Some(link) = link_by_name(&h, name).await? else {
                return Err(Error::netlink("find link", name, rtnetlink::Error::RequestFailed));
            };
            require_bridge(name, &link_kind(&link))?;
            let idx = link.header.index;
            for addr in &spec.addresses {
                add_address(&h, idx, name, addr).await?;
            }
            set_up(&h, idx, name).await?;
            Ok(created)
        })
    }

    fn bridge_exists(&self, name: &IfName) -> Result<bool> {
        with_netlink(None, |h| async move {
            match link_by_name(&h, name.as_str()).await? {
                Some(link) => require_bridge(name.as_str(), &link_kind(&link)).map(|()| true),
                None => Ok(false),
            }
        })
    }

    fn bridge_ports(&self, name: &IfName) -> Result<Vec<String>> {
        with_netlink(None, |h| async move {
            let Some(bridge) = link_by_name(&h, name.as_str()).await? else { return Ok(vec![]) };
            let links: Vec<LinkMessage> = h
                .link()
                .get()
                .execute()
                .try_collect()
                .await
                .map_err(|e| Error::netlink("list links for", name.as_str(), e))?;
            Ok(links
                .iter()
                .filter(|l| l.attributes.contains(&LinkAttribute::Controller(bridge.header.index)))
                .filter_map(|l| {
                    l.attributes.iter().find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    })
                })
                .collect())
        })
    }

    fn remove_bridge(&self, name: &IfName) -> Result<bool> {
        with_netlink(None, |h| async move {
            let Some(link) = link_by_name(&h, name.as_str()).await? else { return Ok(false) };
            require_bridge(name.as_str(), &link_kind(&link))?;
            if !marked_by_berth(&link) {
                return Ok(false);
            }
            match h.link().del(link.header.index).execute().await {
                Ok(()) => Ok(true),
                Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
                Err(e) => Err(Error::netlink("delete bridge", name.as_str(), e)),
            }
        })
    }

    fn attach(&self, spec: &AttachSpec) -> Result<()> {
        let ns = spec.netns.to_string_lossy();
        let host_name = host_veth_name(&ns, spec.ifname.as_str());
        let peer_name = peer_veth_name(&ns, spec.ifname.as_str());
        forget_neighbours(spec)?;
        self.attach_host_side(spec, &host_name, &peer_name)?;
        self.attach_container_side(spec, &peer_name).map_err(|e| {
            let name = host_name.clone();
            let undo = with_netlink(None, |h| async move {
                match link_by_name(&h, name.as_str()).await? {
                    Some(l) => h
                        .link()
                        .del(l.header.index)
                        .execute()
                        .await
                        .map_err(|u| Error::netlink("delete veth", name.as_str(), u)),
                    None => Ok(()),
                }
            });
            e.undone(|| format!("veth `{host_name}`"), undo)
        })
    }

    fn detach(&self, netns: &Path, ifname: &IfName) -> Result<()> {
        if !netns.exists() {
            return Ok(());
        }
        with_netlink(Some(netns), |h| async move {
            let Some(link) = link_by_name(&h, ifname.as_str()).await? else { return Ok(()) };
            match h.link().del(link.header.index).execute().await {
                Err(e) if errno(&e) != Some(libc::ENODEV) => {
                    Err(Error::netlink("delete interface", ifname.as_str(), e))
                }
                _ => Ok(()),
            }
        })
    }

    fn routed_subnets(&self) -> Result<Vec<IpNet>> {
        with_netlink(None, |h| async move {
            let mut out = vec![];
            for msg in [RouteMessageBuilder::<Ipv4Addr>::new().build(), RouteMessageBuilder::<Ipv6Addr>::new().build()]
            {
                let routes: Vec<_> = h
                    .route()
                    .get(msg)
                    .execute()
                    .try_collect()
                    .await
                    .map_err(|e| Error::netlink("list", "routes", e))?;
                for r in routes {
                    if r.header.kind != RouteType::Unicast || r.header.table != RouteHeader::RT_TABLE_MAIN {
                        continue;
                    }
                    let dst = r.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet(a)) => Some(IpAddr::V4(*a)),
                        RouteAttribute::Destination(RouteAddress::Inet6(a)) => Some(IpAddr::V6(*a)),
                        _ => None,
                    });
                    if let Some(net) = dst.and_then(|d| IpNet::new(d, r.header.destination_prefix_length).ok()) {
                        out.push(net.trunc());
                    }
                }
            }
            Ok(out)
        })
    }

    fn enable_forwarding(&self, ipv6: bool) -> Result<()> {
        let mut files = vec!["/proc/sys/net/ipv4/ip_forward"];
        if ipv6 {
            files.push("/proc/sys/net/ipv6/conf/all/forwarding");
        }
        for f in files {
            if std::fs::read_to_string(f).map(|s| s.trim() == "1").unwrap_or(false) {
                continue;
            }
            std::fs::write(f, "1").map_err(|e| Error::io("write", f, e))?;
        }
        Ok(())
    }

    fn create_netns(&self, path: &Path) -> Result<()> {
        netns::create(path)?;
        // Loopback up from the start, so `network_mode: none` containers have a working `lo`.
        with_netlink(Some(path), |h| async move {
            let lo = index_of(&h, "lo").await?;
            set_up(&h, lo, "lo").await
        })
        .map_err(|e| e.undone(|| format!("network namespace `{}`", path.display()), netns::remove(path)))
    }

    fn remove_netns(&self, path: &Path) -> Result<()> {
        netns::remove(path)
    }

    fn announce(&self, netns: &Path) -> Result<()> {
        crate::announce::announce(netns)
    }

    fn redirect_dns(&self, path: &Path, server: std::net::Ipv4Addr) -> Result<()> {
        // Inside the namespace: locally made packets to 127.0.0.11:53 are sent to the server,
        // and leave with the container's address (a loopback source may only be routed out with
        // route_localnet, and masquerading replaces it).
        let rules = format!(
            "table ip berth_dns {{\n\
             chain output {{ type nat hook output priority -100; policy accept;\n\
             ip daddr {DOCKER_DNS} udp dport 53 dnat to {server}:53\n\
             ip daddr {DOCKER_DNS} tcp dport 53 dnat to {server}:53\n}}\n\
             chain postrouting {{ type nat hook postrouting priority 100; policy accept;\n\
             ip saddr 127.0.0.0/8 ip daddr {server} masquerade\n}}\n}}\n"
        );
        netns::run_in(Some(path), move || -> Result<()> {
            let knob = "/proc/sys/net/ipv4/conf/all/route_localnet";
            std::fs::write(knob, "1").map_err(|e| Error::io("write", knob, e))?;
            // A child forked on this thread lives in the namespace too.
            let mut child = std::process::Command::new("nft")
                .args(["-f", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| Error::Nft(format!("cannot run `nft`: {e}")))?;
            use std::io::Write;
            child.stdin.take().expect("piped").write_all(rules.as_bytes()).map_err(|e| Error::Nft(e.to_string()))?;
            let out = child.wait_with_output().map_err(|e| Error::Nft(e.to_string()))?;
            if !out.status.success() {
                return Err(Error::Nft(String::from_utf8_lossy(&out.stderr).trim().to_string()));
            }
            Ok(())
        })?
    }
}
