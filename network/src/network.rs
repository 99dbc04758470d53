//! Compose networks in this crate's terms: what a network is ([`NetworkSpec`]), how a container's
//! networks become interfaces ([`plan_interfaces`]), and the set-up/tear-down sequences over
//! [`Host`] and [`Firewall`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::host::{AttachSpec, BridgeSpec, Host};
use crate::ipam::{default_pools_v4, default_pools_v6, pick_subnet, SubnetConfig};
use crate::names::{bridge_name, IfName};
use crate::nat::{network_rules, Firewall};

/// `driver_opts` key naming the bridge.
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
/// `driver_opts` key setting the MTU.
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";

/// A network as berth creates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkSpec {
    /// The stored name, project-qualified (`shop_default`); keys leases and DNS scopes.
    pub name: String,
    /// The bridge.
    pub bridge: IfName,
    /// Subnets (`ipam.config`, or chosen by [`assign_subnets`]).
    pub subnets: Vec<SubnetConfig>,
    /// `internal: true`: no route out, no masquerade.
    pub internal: bool,
    /// Bridge MTU.
    pub mtu: Option<u32>,
    /// `enable_ipv6`.
    pub enable_ipv6: bool,
    /// `external: true`: looked up, never created or removed.
    pub external: bool,
    /// Labels (kept for `network inspect`).
    pub labels: BTreeMap<String, String>,
}

impl NetworkSpec {
    /// A network named `network` in `project` with the default bridge name, or the one and the MTU
    /// given in `driver_opts`.
    pub fn new(project: &str, network: &str, driver_opts: &BTreeMap<String, String>) -> Result<Self> {
        let bridge = match driver_opts.get(OPT_BRIDGE_NAME) {
            Some(n) => IfName::new(n.clone())?,
            None => bridge_name(project, network),
        };
        let mtu = match driver_opts.get(OPT_MTU) {
            Some(m) => Some(m.parse::<u32>().map_err(|_| Error::InvalidName {
                what: "MTU",
                name: m.clone(),
                why: "it is not a whole number",
            })?),
            None => None,
        };
        Ok(NetworkSpec {
            name: format!("{project}_{network}"),
            bridge,
            subnets: vec![],
            internal: false,
            mtu,
            enable_ipv6: false,
            external: false,
            labels: BTreeMap::new(),
        })
    }

    /// The bridge with its gateway addresses.
    pub fn bridge_spec(&self) -> BridgeSpec {
        BridgeSpec {
            name: self.bridge.clone(),
            mtu: self.mtu,
            addresses: self.subnets.iter().map(SubnetConfig::gateway_net).collect(),
        }
    }

    /// The owner tag of this network's firewall rules.
    pub fn firewall_owner(&self) -> String {
        format!("net:{}", self.bridge)
    }

    /// The subnets.
    pub fn subnet_nets(&self) -> Vec<IpNet> {
        self.subnets.iter().map(|s| s.subnet).collect()
    }

    /// The gateway of the first subnet of the family of `addr`.
    pub fn gateway_for(&self, addr: IpAddr) -> Option<IpAddr> {
        self.subnets.iter().find(|s| s.subnet.contains(&addr)).map(SubnetConfig::gateway)
    }
}

/// Chooses subnets for a network that has none of a family it needs (IPv4 always, IPv6 with
/// `enable_ipv6`), avoiding `taken` (the host's routes and every other network's subnets), and
/// checks the configured ones.
pub fn assign_subnets(spec: &mut NetworkSpec, taken: &[IpNet]) -> Result<()> {
    for s in &spec.subnets {
        s.validate(&spec.name)?;
        crate::ipam::check_subnet_free(&s.subnet, taken)?;
    }
    if !spec.subnets.iter().any(|s| s.subnet.network().is_ipv4()) {
        spec.subnets.insert(0, SubnetConfig::new(pick_subnet(&default_pools_v4(), taken)?));
    }
    if spec.enable_ipv6 && !spec.subnets.iter().any(|s| s.subnet.network().is_ipv6()) {
        spec.subnets.push(SubnetConfig::new(pick_subnet(&default_pools_v6(), taken)?));
    }
    Ok(())
}

/// Makes a network exist: an external one must already have its bridge; otherwise the bridge is
/// created when missing, forwarding enabled (unless internal) and the firewall rules put in place
/// (when a firewall is given). Returns whether the bridge was created.
pub fn ensure_network(host: &dyn Host, firewall: Option<&dyn Firewall>, spec: &NetworkSpec) -> Result<bool> {
    if spec.external {
        return match host.bridge_exists(&spec.bridge)? {
            true => Ok(false),
            false => Err(Error::ExternalMissing(spec.bridge.to_string())),
        };
    }
    let created = host.ensure_bridge(&spec.bridge_spec())?;
    let undo = |e: Error| {
        if created {
            let _ = host.remove_bridge(&spec.bridge);
        }
        e
    };
    if !spec.internal {
        host.enable_forwarding(spec.enable_ipv6).map_err(undo)?;
    }
    if let Some(fw) = firewall {
        fw.apply(&spec.firewall_owner(), &network_rules(spec.bridge.as_str(), &spec.subnet_nets(), spec.internal))
            .map_err(undo)?;
    }
    Ok(created)
}

/// Removes a network's bridge and rules when nothing is plugged into the bridge any more (no
/// container of any project uses it). External networks are never removed. Returns whether it was.
pub fn remove_network_if_unused(host: &dyn Host, firewall: Option<&dyn Firewall>, spec: &NetworkSpec) -> Result<bool> {
    if spec.external || !host.bridge_ports(&spec.bridge)?.is_empty() {
        return Ok(false);
    }
    let mut first_err = None;
    if let Some(fw) = firewall {
        first_err = fw.remove(&spec.firewall_owner()).err();
    }
    if let Err(e) = host.remove_bridge(&spec.bridge) {
        first_err.get_or_insert(e);
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(true),
    }
}

/// A container's membership of one network, as compose states it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// The network's compose name.
    pub network: String,
    /// `priority` (higher first).
    pub priority: i64,
    /// `gw_priority` (the highest gets the default route).
    pub gw_priority: i64,
    /// `interface_name`.
    pub interface_name: Option<String>,
}

/// Where one membership ends up inside the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedInterface {
    /// The network's compose name.
    pub network: String,
    /// `eth0`, `eth1`, ... in order, or the `interface_name`.
    pub ifname: IfName,
    /// Whether the default route goes through this network's gateway.
    pub default_route: bool,
}

/// Orders a container's networks the way Compose does (higher `priority` first, then by name),
/// names their interfaces `eth0`, `eth1`, ... (unless `interface_name` says otherwise), and gives
/// the default route to the highest `gw_priority`, the first network on a tie.
pub fn plan_interfaces(memberships: &[Membership]) -> Result<Vec<PlannedInterface>> {
    let mut sorted: Vec<&Membership> = memberships.iter().collect();
    sorted.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.network.cmp(&b.network)));
    let gw = sorted.iter().enumerate().max_by(|(ia, a), (ib, b)| a.gw_priority.cmp(&b.gw_priority).then(ib.cmp(ia)));
    let gw_index = gw.map(|(i, _)| i);
    let mut next = 0;
    let mut out = vec![];
    for (i, m) in sorted.iter().enumerate() {
        let ifname = match &m.interface_name {
            Some(n) => IfName::new(n.clone())?,
            None => {
                let name = loop {
                    let candidate = format!("eth{next}");
                    next += 1;
                    if !memberships.iter().any(|o| o.interface_name.as_deref() == Some(&candidate)) {
                        break candidate;
                    }
                };
                IfName::new(name)?
            }
        };
        out.push(PlannedInterface { network: m.network.clone(), ifname, default_route: Some(i) == gw_index });
    }
    Ok(out)
}

/// Attaches a container to all its networks in order; when one attachment fails, the ones already
/// made are detached again and the first error is returned.
pub fn attach_all(host: &dyn Host, attachments: &[AttachSpec]) -> Result<()> {
    for (i, a) in attachments.iter().enumerate() {
        if let Err(e) = host.attach(a) {
            for done in attachments[..i].iter().rev() {
                let _ = host.detach(&done.netns, &done.ifname);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Parses a `mac_address` (`02:42:ac:11:00:02`).
pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let bad = || Error::InvalidName { what: "MAC address", name: text.to_string(), why: "it is not six hex bytes" };
    let parts: Vec<u8> =
        text.split(':').map(|p| u8::from_str_radix(p, 16).map_err(|_| bad())).collect::<Result<_>>()?;
    parts.try_into().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::RecordingHost;
    use crate::nat::{RecordingFirewall, Rule};

    fn spec(opts: &[(&str, &str)]) -> NetworkSpec {
        let opts = opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        NetworkSpec::new("shop", "back", &opts).unwrap()
    }

    #[test]
    fn driver_opts_name_the_bridge_and_set_the_mtu() {
        let s = spec(&[]);
        assert_eq!(s.bridge, bridge_name("shop", "back"));
        assert_eq!(s.name, "shop_back");
        let s = spec(&[(OPT_BRIDGE_NAME, "mybr0"), (OPT_MTU, "1400")]);
        assert_eq!((s.bridge.as_str(), s.mtu), ("mybr0", Some(1400)));
        let opts = [(OPT_MTU.to_string(), "big".to_string())].into();
        assert!(NetworkSpec::new("p", "n", &opts).is_err());
    }

    #[test]
    fn subnets_are_assigned_around_routes_and_checked() {
        let mut s = spec(&[]);
        s.enable_ipv6 = true;
        assign_subnets(&mut s, &["172.17.0.0/16".parse().unwrap()]).unwrap();
        assert_eq!(
            s.subnet_nets(),
            ["172.18.0.0/16".parse::<IpNet>().unwrap(), "fd1d:b7e8:2c5a::/64".parse().unwrap()]
        );
        let mut clash = spec(&[]);
        clash.subnets = vec![SubnetConfig::new("172.18.3.0/24".parse().unwrap())];
        let err = assign_subnets(&mut clash, &s.subnet_nets()).unwrap_err();
        assert!(err.to_string().contains("overlaps 172.18.0.0/16"), "{err}");
    }

    #[test]
    fn ensure_and_remove_go_through_host_and_firewall() {
        let host = RecordingHost::default();
        let fw = RecordingFirewall::default();
        let mut s = spec(&[]);
        s.subnets = vec![SubnetConfig::new("10.7.0.0/24".parse().unwrap())];
        assert!(ensure_network(&host, Some(&fw), &s).unwrap());
        assert!(!ensure_network(&host, Some(&fw), &s).unwrap());
        let b = s.bridge.to_string();
        host.attach(&crate::host::AttachSpec {
            netns: "/run/x".into(),
            bridge: s.bridge.clone(),
            ifname: IfName::new("eth0").unwrap(),
            addresses: vec!["10.7.0.2/24".parse().unwrap()],
            mac: None,
            mtu: None,
            default_routes: vec!["10.7.0.1".parse().unwrap()],
        })
        .unwrap();
        assert!(!remove_network_if_unused(&host, Some(&fw), &s).unwrap(), "still in use");
        host.detach("/run/x".as_ref(), &IfName::new("eth0").unwrap()).unwrap();
        assert!(remove_network_if_unused(&host, Some(&fw), &s).unwrap());
        assert_eq!(
            host.calls(),
            [
                format!("ensure_bridge {b} mtu=- 10.7.0.1/24"),
                "enable_forwarding ipv6=false".to_string(),
                format!("ensure_bridge {b} mtu=- 10.7.0.1/24"),
                "enable_forwarding ipv6=false".to_string(),
                format!("attach /run/x {b} eth0 10.7.0.2/24 mac=- gw=10.7.0.1"),
                "detach /run/x eth0".to_string(),
                format!("remove_bridge {b}"),
            ]
        );
        assert_eq!(
            *fw.calls.lock().unwrap(),
            [format!("apply net:{b} 2"), format!("apply net:{b} 2"), format!("remove net:{b}")]
        );
    }

    #[test]
    fn internal_networks_get_no_forwarding_or_masquerade() {
        let host = RecordingHost::default();
        let fw = RecordingFirewall::default();
        let mut s = spec(&[]);
        s.internal = true;
        s.subnets = vec![SubnetConfig::new("10.7.0.0/24".parse().unwrap())];
        ensure_network(&host, Some(&fw), &s).unwrap();
        assert!(!host.calls().iter().any(|c| c.starts_with("enable_forwarding")));
        let rules = fw.rules.lock().unwrap();
        assert_eq!(rules[&s.firewall_owner()], [Rule::Isolate { bridge: s.bridge.to_string(), internal: true }]);
    }

    #[test]
    fn external_networks_are_looked_up_never_created_or_removed() {
        let host = RecordingHost::default();
        let mut s = spec(&[(OPT_BRIDGE_NAME, "extbr0")]);
        s.external = true;
        let err = ensure_network(&host, None, &s).unwrap_err();
        assert_eq!(err.to_string(), "external network `extbr0` not found: no bridge with that name exists");
        host.bridges.lock().unwrap().push(("extbr0".into(), vec![]));
        assert!(!ensure_network(&host, None, &s).unwrap());
        assert!(!remove_network_if_unused(&host, None, &s).unwrap());
        assert!(host.calls().is_empty(), "{:?}", host.calls());
    }

    #[test]
    fn interfaces_follow_priority_then_name_and_gw_priority_picks_the_route() {
        let m = |n: &str, p, g, i: Option<&str>| Membership {
            network: n.into(),
            priority: p,
            gw_priority: g,
            interface_name: i.map(Into::into),
        };
        let plan = plan_interfaces(&[m("b", 0, 0, None), m("a", 0, 0, None), m("z", 10, 0, None)]).unwrap();
        let got: Vec<_> = plan
            .iter()
            .map(|p| format!("{}={}{}", p.network, p.ifname, if p.default_route { "*" } else { "" }))
            .collect();
        assert_eq!(got, ["z=eth0*", "a=eth1", "b=eth2"]);
        let plan = plan_interfaces(&[m("a", 0, 0, Some("eth0")), m("b", 0, 5, None)]).unwrap();
        let got: Vec<_> = plan
            .iter()
            .map(|p| format!("{}={}{}", p.network, p.ifname, if p.default_route { "*" } else { "" }))
            .collect();
        assert_eq!(got, ["a=eth0", "b=eth1*"]);
    }

    #[test]
    fn attach_all_undoes_earlier_attachments_when_one_fails() {
        struct FailSecond(RecordingHost);
        impl Host for FailSecond {
            fn ensure_bridge(&self, s: &BridgeSpec) -> Result<bool> {
                self.0.ensure_bridge(s)
            }
            fn bridge_exists(&self, n: &IfName) -> Result<bool> {
                self.0.bridge_exists(n)
            }
            fn bridge_ports(&self, n: &IfName) -> Result<Vec<String>> {
                self.0.bridge_ports(n)
            }
            fn remove_bridge(&self, n: &IfName) -> Result<()> {
                self.0.remove_bridge(n)
            }
            fn attach(&self, s: &AttachSpec) -> Result<()> {
                if s.ifname.as_str() == "eth1" {
                    return Err(Error::ExternalMissing("br-missing".into()));
                }
                self.0.attach(s)
            }
            fn detach(&self, ns: &std::path::Path, i: &IfName) -> Result<()> {
                self.0.detach(ns, i)
            }
            fn routed_subnets(&self) -> Result<Vec<IpNet>> {
                self.0.routed_subnets()
            }
            fn enable_forwarding(&self, v6: bool) -> Result<()> {
                self.0.enable_forwarding(v6)
            }
            fn create_netns(&self, p: &std::path::Path) -> Result<()> {
                self.0.create_netns(p)
            }
            fn remove_netns(&self, p: &std::path::Path) -> Result<()> {
                self.0.remove_netns(p)
            }
        }
        let host = FailSecond(RecordingHost::default());
        let a = |ifname: &str| AttachSpec {
            netns: "/run/c".into(),
            bridge: IfName::new("br-x").unwrap(),
            ifname: IfName::new(ifname).unwrap(),
            addresses: vec![],
            mac: None,
            mtu: None,
            default_routes: vec![],
        };
        assert!(attach_all(&host, &[a("eth0"), a("eth1"), a("eth2")]).is_err());
        assert_eq!(host.0.calls(), ["attach /run/c br-x eth0  mac=- gw=", "detach /run/c eth0"]);
    }

    #[test]
    fn mac_addresses_parse() {
        assert_eq!(parse_mac("02:42:ac:11:00:02").unwrap(), [2, 0x42, 0xac, 0x11, 0, 2]);
        assert!(parse_mac("02:42:ac:11:00").is_err());
        assert!(parse_mac("zz:42:ac:11:00:02").is_err());
    }
}
