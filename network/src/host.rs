//! The OS side of bridges and attachments, in berth's vocabulary: the [`Host`] trait, its request
//! types, and a recording fake. The real implementation is [`crate::NetlinkHost`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::names::IfName;

/// A bridge as berth wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeSpec {
    /// Its name.
    pub name: IfName,
    /// MTU (`com.docker.network.driver.mtu`); the kernel default when `None`.
    pub mtu: Option<u32>,
    /// Gateway addresses with the subnet's prefix length, one per subnet.
    pub addresses: Vec<IpNet>,
}

/// One container interface on one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachSpec {
    /// The container's network namespace file.
    pub netns: PathBuf,
    /// The bridge of the network.
    pub bridge: IfName,
    /// The name inside the container: `eth0`, `eth1`, ... or `interface_name`.
    pub ifname: IfName,
    /// The container's addresses with the subnet's prefix length.
    pub addresses: Vec<IpNet>,
    /// `mac_address`; random when `None`.
    pub mac: Option<[u8; 6]>,
    /// MTU, normally the bridge's.
    pub mtu: Option<u32>,
    /// Gateways to install default routes through (at most one per family); empty for none.
    pub default_routes: Vec<IpAddr>,
}

/// The interface alias (`ip link set BR alias ...`) berth puts on every bridge it creates.
///
/// It is how berth tells its own bridges from others of the same name (`docker0`, `virbr0`, one the
/// user made and named in `com.docker.network.bridge.name`): such a bridge is used but never
/// deleted. The mark lives on the kernel object rather than in berth's state so it is right even
/// when the state is lost or another project's supervisor created the bridge (projects sharing a
/// network `name:` share its bridge), and it goes away with the bridge.
pub const BRIDGE_ALIAS: &str = "berth-bridge";

/// Fails unless a link of `kind` (`bridge`, `veth`, ...) may be used as the bridge `name`.
pub(crate) fn require_bridge(name: &str, kind: &str) -> Result<()> {
    if kind == "bridge" {
        Ok(())
    } else {
        Err(Error::NotABridge { name: name.to_string(), kind: kind.to_string() })
    }
}

/// What the kernel has to do for berth's networks.
///
/// Every method blocks (netlink on a throw-away thread, mounts, `/proc` writes): async callers go
/// through `tokio::task::spawn_blocking`.
pub trait Host: Send + Sync {
    /// Creates the bridge when missing (marked with [`BRIDGE_ALIAS`]), then makes sure it has its
    /// addresses and is up. An existing link of that name is used only when it is a bridge
    /// ([`Error::NotABridge`] otherwise). Returns whether it was created.
    fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<bool>;
    /// Whether a bridge of that name exists (for `external: true` networks); a link of that name
    /// that is not a bridge is [`Error::NotABridge`].
    fn bridge_exists(&self, name: &IfName) -> Result<bool>;
    /// Interfaces enslaved to the bridge (one per attached container).
    fn bridge_ports(&self, name: &IfName) -> Result<Vec<String>>;
    /// Deletes the bridge when berth created it (it carries [`BRIDGE_ALIAS`]) and returns whether it
    /// did: a missing bridge or one berth did not create is left alone, a link of that name that is
    /// not a bridge is [`Error::NotABridge`].
    fn remove_bridge(&self, name: &IfName) -> Result<bool>;
    /// Creates a veth pair, plugs one end into the bridge and moves the other into the namespace
    /// with its name, MAC, MTU, addresses and routes; loopback is brought up too. Leftovers of an
    /// earlier attempt with the same names are deleted first. Undone on failure.
    fn attach(&self, spec: &AttachSpec) -> Result<()>;
    /// Deletes the container interface (and so its host end); missing ones are not an error.
    fn detach(&self, netns: &Path, ifname: &IfName) -> Result<()>;
    /// Destinations of the host's main routing table (for choosing subnets).
    fn routed_subnets(&self) -> Result<Vec<IpNet>>;
    /// Turns on IPv4 (and IPv6) forwarding.
    fn enable_forwarding(&self, ipv6: bool) -> Result<()>;
    /// Creates a namespace bind-mounted at `path`.
    fn create_netns(&self, path: &Path) -> Result<()>;
    /// Unmounts and deletes a namespace file.
    /// Makes `DOCKER_DNS` (127.0.0.11) port 53, UDP and TCP, inside the namespace at `netns`
    /// reach `server` port 53 (the project's DNS server on the network's gateway), with the
    /// container's own address as the source, so the server knows who asks.
    fn redirect_dns(&self, netns: &Path, server: std::net::Ipv4Addr) -> Result<()>;
    fn remove_netns(&self, path: &Path) -> Result<()>;
    /// Announces the IPv4 addresses of the namespace at `netns` on its networks (gratuitous
    /// ARP), so that neighbours forget the MAC address a previous holder of an address had.
    fn announce(&self, netns: &Path) -> Result<()>;
}

/// A link the [`RecordingHost`] pretends exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeLink {
    /// Its name.
    pub name: String,
    /// `bridge`, `veth`, `dummy`, ...
    pub kind: String,
    /// Whether berth created it (a real one would carry [`BRIDGE_ALIAS`]).
    pub berth: bool,
    /// What is plugged into it, as `<netns>:<ifname>`.
    pub ports: Vec<String>,
}

/// A [`Host`] that records each call as one line and pretends bridges exist once ensured.
#[derive(Debug, Default)]
pub struct RecordingHost {
    /// The calls, e.g. `ensure_bridge br-x mtu=- 10.1.0.1/24`.
    pub calls: Mutex<Vec<String>>,
    /// The links it pretends exist: bridges it "created", and those put there with
    /// [`RecordingHost::add_link`].
    pub links: Mutex<Vec<FakeLink>>,
    /// What [`Host::routed_subnets`] answers.
    pub routes: Vec<IpNet>,
}

impl RecordingHost {
    fn record(&self, line: String) {
        self.calls.lock().expect("calls lock").push(line);
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls lock").clone()
    }

    /// Pretends a link of `kind` that berth did not create exists (`eth0`, the user's own bridge).
    pub fn add_link(&self, name: &str, kind: &str) {
        let link = FakeLink { name: name.to_string(), kind: kind.to_string(), berth: false, ports: vec![] };
        self.links.lock().expect("links lock").push(link);
    }

    /// The kind of the link called `name`, if there is one.
    fn kind_of(&self, name: &str) -> Option<String> {
        self.links.lock().expect("links lock").iter().find(|l| l.name == name).map(|l| l.kind.clone())
    }
}

fn list<T: ToString>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

impl Host for RecordingHost {
    fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<bool> {
        let mtu = spec.mtu.map_or("-".to_string(), |m| m.to_string());
        self.record(format!("ensure_bridge {} mtu={mtu} {}", spec.name, list(&spec.addresses)));
        if let Some(kind) = self.kind_of(spec.name.as_str()) {
            require_bridge(spec.name.as_str(), &kind)?;
            return Ok(false);
        }
        let link = FakeLink { name: spec.name.to_string(), kind: "bridge".into(), berth: true, ports: vec![] };
        self.links.lock().expect("links lock").push(link);
        Ok(true)
    }
    fn bridge_exists(&self, name: &IfName) -> Result<bool> {
        match self.kind_of(name.as_str()) {
            Some(kind) => require_bridge(name.as_str(), &kind).map(|()| true),
            None => Ok(false),
        }
    }
    fn bridge_ports(&self, name: &IfName) -> Result<Vec<String>> {
        let links = self.links.lock().expect("links lock");
        Ok(links.iter().find(|l| l.name == name.as_str()).map(|l| l.ports.clone()).unwrap_or_default())
    }
    fn remove_bridge(&self, name: &IfName) -> Result<bool> {
        self.record(format!("remove_bridge {name}"));
        let mut links = self.links.lock().expect("links lock");
        let Some(i) = links.iter().position(|l| l.name == name.as_str()) else { return Ok(false) };
        require_bridge(name.as_str(), &links[i].kind)?;
        if !links[i].berth {
            return Ok(false);
        }
        links.remove(i);
        Ok(true)
    }
    fn attach(&self, s: &AttachSpec) -> Result<()> {
        let mac = s.mac.map_or("-".to_string(), |m| m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"));
        self.record(format!(
            "attach {} {} {} {} mac={mac} gw={}",
            s.netns.display(),
            s.bridge,
            s.ifname,
            list(&s.addresses),
            list(&s.default_routes)
        ));
        let port = format!("{}:{}", s.netns.display(), s.ifname);
        if let Some(l) = self.links.lock().expect("links lock").iter_mut().find(|l| l.name == s.bridge.as_str()) {
            l.ports.push(port);
        }
        Ok(())
    }
    fn detach(&self, netns: &Path, ifname: &IfName) -> Result<()> {
        self.record(format!("detach {} {ifname}", netns.display()));
        let port = format!("{}:{ifname}", netns.display());
        for l in self.links.lock().expect("links lock").iter_mut() {
            l.ports.retain(|p| *p != port);
        }
        Ok(())
    }
    fn routed_subnets(&self) -> Result<Vec<IpNet>> {
        Ok(self.routes.clone())
    }
    fn enable_forwarding(&self, ipv6: bool) -> Result<()> {
        self.record(format!("enable_forwarding ipv6={ipv6}"));
        Ok(())
    }
    fn create_netns(&self, path: &Path) -> Result<()> {
        self.record(format!("create_netns {}", path.display()));
        Ok(())
    }
    fn redirect_dns(&self, netns: &Path, server: std::net::Ipv4Addr) -> Result<()> {
        self.record(format!("redirect_dns {} {server}", netns.display()));
        Ok(())
    }
    fn announce(&self, netns: &Path) -> Result<()> {
        self.record(format!("announce {}", netns.display()));
        Ok(())
    }
    fn remove_netns(&self, path: &Path) -> Result<()> {
        self.record(format!("remove_netns {}", path.display()));
        Ok(())
    }
}
