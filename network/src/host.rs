//! The OS side of bridges and attachments, in berth's vocabulary: the [`Host`] trait, its request
//! types, and a recording fake. The real implementation is [`crate::NetlinkHost`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ipnet::IpNet;

use crate::error::Result;
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

/// What the kernel has to do for berth's networks.
pub trait Host: Send + Sync {
    /// Creates the bridge when missing, then makes sure it has its addresses and is up.
    /// Returns whether it was created.
    fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<bool>;
    /// Whether a bridge of that name exists (for `external: true` networks).
    fn bridge_exists(&self, name: &IfName) -> Result<bool>;
    /// Interfaces enslaved to the bridge (one per attached container).
    fn bridge_ports(&self, name: &IfName) -> Result<Vec<String>>;
    /// Deletes the bridge; a missing one is not an error.
    fn remove_bridge(&self, name: &IfName) -> Result<()>;
    /// Creates a veth pair, plugs one end into the bridge and moves the other into the namespace
    /// with its name, MAC, MTU, addresses and routes; loopback is brought up too. Undone on failure.
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
    fn remove_netns(&self, path: &Path) -> Result<()>;
}

/// A [`Host`] that records each call as one line and pretends bridges exist once ensured.
#[derive(Debug, Default)]
pub struct RecordingHost {
    /// The calls, e.g. `ensure_bridge br-x mtu=- 10.1.0.1/24`.
    pub calls: Mutex<Vec<String>>,
    /// Bridges "created", with their ports.
    pub bridges: Mutex<Vec<(String, Vec<String>)>>,
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
}

fn list<T: ToString>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

impl Host for RecordingHost {
    fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<bool> {
        let mtu = spec.mtu.map_or("-".to_string(), |m| m.to_string());
        self.record(format!("ensure_bridge {} mtu={mtu} {}", spec.name, list(&spec.addresses)));
        let mut b = self.bridges.lock().expect("bridges lock");
        if b.iter().any(|(n, _)| n == spec.name.as_str()) {
            return Ok(false);
        }
        b.push((spec.name.to_string(), vec![]));
        Ok(true)
    }
    fn bridge_exists(&self, name: &IfName) -> Result<bool> {
        Ok(self.bridges.lock().expect("bridges lock").iter().any(|(n, _)| n == name.as_str()))
    }
    fn bridge_ports(&self, name: &IfName) -> Result<Vec<String>> {
        let b = self.bridges.lock().expect("bridges lock");
        Ok(b.iter().find(|(n, _)| n == name.as_str()).map(|(_, p)| p.clone()).unwrap_or_default())
    }
    fn remove_bridge(&self, name: &IfName) -> Result<()> {
        self.record(format!("remove_bridge {name}"));
        self.bridges.lock().expect("bridges lock").retain(|(n, _)| n != name.as_str());
        Ok(())
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
        if let Some((_, ports)) =
            self.bridges.lock().expect("bridges lock").iter_mut().find(|(n, _)| n == s.bridge.as_str())
        {
            ports.push(port);
        }
        Ok(())
    }
    fn detach(&self, netns: &Path, ifname: &IfName) -> Result<()> {
        self.record(format!("detach {} {ifname}", netns.display()));
        let port = format!("{}:{ifname}", netns.display());
        for (_, ports) in self.bridges.lock().expect("bridges lock").iter_mut() {
            ports.retain(|p| *p != port);
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
    fn remove_netns(&self, path: &Path) -> Result<()> {
        self.record(format!("remove_netns {}", path.display()));
        Ok(())
    }
}
