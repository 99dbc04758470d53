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
    /// The network's name as the compose loader resolved it: `{project}_{network}`, or the `name:`
    /// given in the file as is. Keys leases and DNS scopes, and names the bridge, so projects
    /// declaring the same `name:` share one network, as in Compose.
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
    /// The network `name` (already resolved by the compose loader: `shop_default`, or the file's
    /// `name:`) with the bridge name derived from it, or the one and the MTU given in `driver_opts`.
    pub fn new(name: &str, driver_opts: &BTreeMap<String, String>) -> Result<Self> {
        let bridge = match driver_opts.get(OPT_BRIDGE_NAME) {
            Some(n) => IfName::new(n.clone())?,
            None => bridge_name(name),
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
            name: name.to_string(),
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

/// The subnets a new network must keep clear of, in two kinds that are checked differently.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubnetsInUse {
    /// Every other network's subnets (berth's stored networks): no subnet, configured or picked,
    /// may overlap one of these.
    pub networks: Vec<IpNet>,
    /// Destinations of the host's routes ([`Host::routed_subnets`]): only automatic picking avoids
    /// them. A subnet the user configured is taken as given even when a route covers it (a VPN's
    /// `10.0.0.0/8`, say), as Docker does.
    pub routes: Vec<IpNet>,
}

/// Checks a network's configured subnets against the other networks, then picks a subnet of each
/// family it needs and lacks (IPv4 always, IPv6 with `enable_ipv6`) from the default pools, clear
/// of other networks and host routes.
pub fn assign_subnets(spec: &mut NetworkSpec, in_use: &SubnetsInUse) -> Result<()> {
    for s in &spec.subnets {
        s.validate(&spec.name)?;
        crate::ipam::check_subnet_free(&s.subnet, &in_use.networks)?;
    }
    let taken: Vec<IpNet> = in_use.networks.iter().chain(&in_use.routes).copied().collect();
    if !spec.subnets.iter().any(|s| s.subnet.network().is_ipv4()) {
        spec.subnets.insert(0, SubnetConfig::new(pick_subnet(&default_pools_v4(), &taken)?));
    }
    if spec.enable_ipv6 && !spec.subnets.iter().any(|s| s.subnet.network().is_ipv6()) {
        spec.subnets.push(SubnetConfig::new(pick_subnet(&default_pools_v6(), &taken)?));
    }
    Ok(())
}

/// Makes a network exist: an external one must already have its bridge; otherwise the bridge is
/// created when missing, forwarding enabled (unless internal) and the firewall rules put in place
/// (when a firewall is given). Returns whether the bridge was created. An existing link of the
/// bridge's name is used only when it is a bridge ([`Error::NotABridge`] otherwise, external
/// networks included).
pub fn ensure_network(host: &dyn Host, firewall: Option<&dyn Firewall>, spec: &NetworkSpec) -> Result<bool> {
    if spec.external {
        return match host.bridge_exists(&spec.bridge)? {
            true => Ok(false),
            false => Err(Error::ExternalMissing(spec.bridge.to_string())),
        };
    }
    let created = host.ensure_bridge(&spec.bridge_spec())?;
    let undo = |e: Error| match created {
        true => e.undone(|| format!("bridge `{}`", spec.bridge), host.remove_bridge(&spec.bridge).map(drop)),
        false => e,
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

/// Removes a network's rules and bridge when nothing is plugged into the bridge any more (no
/// container of any project uses it). External networks are never touched, and a bridge berth did
/// not create (one named in `driver_opts` that already existed) is left in place; see
/// [`crate::BRIDGE_ALIAS`]. Returns whether the bridge was removed.
///
/// Both steps are tried even when the first fails; every failure is reported.
pub fn remove_network_if_unused(host: &dyn Host, firewall: Option<&dyn Firewall>, spec: &NetworkSpec) -> Result<bool> {
    if spec.external || !host.bridge_ports(&spec.bridge)?.is_empty() {
        return Ok(false);
    }
    let mut errors = vec![];
    if let Some(fw) = firewall {
        errors.extend(fw.remove(&spec.firewall_owner()).err());
    }
    let removed = host.remove_bridge(&spec.bridge).unwrap_or_else(|e| {
        errors.push(e);
        false
    });
    Error::collect(format!("network `{}`", spec.name), errors)?;
    Ok(removed)
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
    /// The network is `internal: true`: it has no way out, so it never carries the default route.
    pub internal: bool,
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
/// the default route to the highest `gw_priority` among the networks that are not `internal`, the
/// first on a tie; a container only on internal networks gets no default route. Two networks
/// with the same interface name are an error.
pub fn plan_interfaces(memberships: &[Membership]) -> Result<Vec<PlannedInterface>> {
    let mut sorted: Vec<&Membership> = memberships.iter().collect();
    sorted.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.network.cmp(&b.network)));
    let gw_index = sorted
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.internal)
        .max_by(|(ia, a), (ib, b)| a.gw_priority.cmp(&b.gw_priority).then(ib.cmp(ia)))
        .map(|(i, _)| i);
    let mut next = 0;
    let mut out: Vec<PlannedInterface> = vec![];
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
        if let Some(first) = out.iter().find(|p| p.ifname == ifname) {
            return Err(Error::DuplicateInterface {
                ifname: ifname.to_string(),
                first: first.network.clone(),
                second: m.network.clone(),
            });
        }
        out.push(PlannedInterface { network: m.network.clone(), ifname, default_route: Some(i) == gw_index });
    }
    Ok(out)
}

/// Attaches a container to all its networks in order; when one attachment fails, the ones already
/// made are detached again and the first error is returned.
pub fn attach_all(host: &dyn Host, attachments: &[AttachSpec]) -> Result<()> {
    for (i, a) in attachments.iter().enumerate() {
        if let Err(e) = host.attach(a) {
            let undone: Vec<Error> =
                attachments[..i].iter().rev().filter_map(|d| host.detach(&d.netns, &d.ifname).err()).collect();
            let left = || format!("interfaces of `{}`", a.netns.display());
            return Err(e.undone(left, Error::collect("the attachments made", undone)));
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
        NetworkSpec::new("shop_back", &opts).unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn driver_opts_name_the_bridge_and_set_the_mtu() {
        let s = spec(&[]);
        assert_eq!(s.bridge, bridge_name("shop_back"));
        assert_eq!(s.name, "shop_back");
        let s = spec(&[(OPT_BRIDGE_NAME, "mybr0"), (OPT_MTU, "1400")]);
        assert_eq!((s.bridge.as_str(), s.mtu), ("mybr0", Some(1400)));
        let opts = [(OPT_MTU.to_string(), "big".to_string())].into();
        assert!(NetworkSpec::new("p_n", &opts).is_err());
    }

    #[test]
    fn projects_declaring_the_same_network_name_share_one_bridge() {
        // Both projects' compose files say `networks: {shared: {name: common-net}}`.
        let a = NetworkSpec::new("common-net", &BTreeMap::new()).unwrap();
        let b = NetworkSpec::new("common-net", &BTreeMap::new()).unwrap();
        assert_eq!((a.name.as_str(), &a.bridge), ("common-net", &b.bridge));
        assert_ne!(a.bridge, NetworkSpec::new("other_default", &BTreeMap::new()).unwrap().bridge);
    }

    #[test]
    fn subnets_are_assigned_around_routes_and_checked() {
        let mut s = spec(&[]);
        s.enable_ipv6 = true;
        let in_use = SubnetsInUse { networks: vec![], routes: vec![net("172.17.0.0/16")] };
        assign_subnets(&mut s, &in_use).unwrap();
        assert_eq!(s.subnet_nets(), [net("172.18.0.0/16"), net("fd1d:b7e8:2c5a::/64")]);
        let mut clash = spec(&[]);
        clash.subnets = vec![SubnetConfig::new(net("172.18.3.0/24"))];
        let in_use = SubnetsInUse { networks: s.subnet_nets(), routes: vec![] };
        let err = assign_subnets(&mut clash, &in_use).unwrap_err();
        assert!(err.to_string().contains("overlaps 172.18.0.0/16"), "{err}");
    }

    #[test]
    fn a_configured_subnet_may_overlap_a_host_route_but_not_another_network() {
        // A VPN routes all of 10/8; the user's `ipam.config` puts the network inside it anyway.
        let in_use = SubnetsInUse { networks: vec![net("10.9.0.0/24")], routes: vec![net("10.0.0.0/8")] };
        let mut s = spec(&[]);
        s.subnets = vec![SubnetConfig::new(net("10.50.0.0/24"))];
        assign_subnets(&mut s, &in_use).unwrap();
        assert_eq!(s.subnet_nets(), [net("10.50.0.0/24")]);
        s.subnets = vec![SubnetConfig::new(net("10.9.0.0/16"))];
        let err = assign_subnets(&mut s, &in_use).unwrap_err();
        assert_eq!(err.to_string(), "subnet 10.9.0.0/16 overlaps 10.9.0.0/24, which is already in use");
        // A picked IPv6 subnet still avoids routes.
        let mut s = spec(&[]);
        s.subnets = vec![SubnetConfig::new(net("10.50.0.0/24"))];
        s.enable_ipv6 = true;
        assign_subnets(&mut s, &SubnetsInUse { networks: vec![], routes: vec![net("fd1d:b7e8:2c5a::/64")] }).unwrap();
        assert_eq!(s.subnet_nets(), [net("10.50.0.0/24"), net("fd1d:b7e8:2c5a:1::/64")]);
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
        host.add_link("extbr0", "bridge");
        assert!(!ensure_network(&host, None, &s).unwrap());
        assert!(!remove_network_if_unused(&host, None, &s).unwrap());
        assert!(host.calls().is_empty(), "{:?}", host.calls());
    }

    #[test]
    fn a_link_that_is_not_a_bridge_is_never_adopted_or_removed() {
        let host = RecordingHost::default();
        host.add_link("eth0", "device");
        let s = spec(&[(OPT_BRIDGE_NAME, "eth0")]);
        let err = ensure_network(&host, None, &s).unwrap_err();
        assert_eq!(
            err.to_string(),
            "link `eth0` exists but is not a bridge (kind `device`): berth networks only use bridges"
        );
        let err = remove_network_if_unused(&host, None, &s).unwrap_err();
        assert!(matches!(err, Error::NotABridge { .. }), "{err}");
        // External networks too.
        let mut ext = s.clone();
        ext.external = true;
        assert!(matches!(ensure_network(&host, None, &ext).unwrap_err(), Error::NotABridge { .. }));
        assert_eq!(host.links.lock().unwrap().len(), 1, "eth0 is still there");
    }

    #[test]
    fn a_bridge_berth_did_not_create_is_used_but_not_removed() {
        let host = RecordingHost::default();
        let fw = RecordingFirewall::default();
        host.add_link("virbr0", "bridge");
        let mut s = spec(&[(OPT_BRIDGE_NAME, "virbr0")]);
        s.subnets = vec![SubnetConfig::new(net("10.7.0.0/24"))];
        assert!(!ensure_network(&host, Some(&fw), &s).unwrap(), "adopted, not created");
        assert!(!remove_network_if_unused(&host, Some(&fw), &s).unwrap(), "left in place");
        assert!(host.bridge_exists(&s.bridge).unwrap());
        assert!(fw.rules.lock().unwrap().is_empty(), "its rules are gone all the same");
    }

    #[test]
    fn teardown_tries_every_step_and_reports_every_failure() {
        struct FailingFirewall;
        impl Firewall for FailingFirewall {
            fn apply(&self, _: &str, _: &[Rule]) -> Result<()> {
                Ok(())
            }
            fn remove(&self, owner: &str) -> Result<()> {
                Err(Error::Nft(format!("cannot remove {owner}")))
            }
        }
        let host = RecordingHost::default();
        let s = spec(&[]);
        ensure_network(&host, None, &s).unwrap();
        // The firewall fails, yet the bridge is removed.
        let err = remove_network_if_unused(&host, Some(&FailingFirewall), &s).unwrap_err();
        assert_eq!(err.to_string(), format!("`nft` failed: cannot remove net:{}", s.bridge));
        assert!(!host.bridge_exists(&s.bridge).unwrap());
        // Both fail: both are reported.
        host.add_link(s.bridge.as_str(), "veth");
        let err = remove_network_if_unused(&host, Some(&FailingFirewall), &s).unwrap_err();
        let Error::Teardown { errors, .. } = &err else { panic!("{err}") };
        assert_eq!(errors.len(), 2, "{err}");
        assert!(err.to_string().starts_with("2 steps of removing network `shop_back` failed: `nft` failed"), "{err}");
        assert!(err.to_string().contains("is not a bridge"), "{err}");
    }

    #[test]
    fn interfaces_follow_priority_then_name_and_gw_priority_picks_the_route() {
        let m = |n: &str, p, g, i: Option<&str>| Membership {
            network: n.into(),
            priority: p,
            gw_priority: g,
            interface_name: i.map(Into::into),
            internal: false,
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

    fn show(plan: &[PlannedInterface]) -> Vec<String> {
        plan.iter().map(|p| format!("{}={}{}", p.network, p.ifname, if p.default_route { "*" } else { "" })).collect()
    }

    #[test]
    fn the_default_route_never_goes_through_an_internal_network() {
        let m = |n: &str, g, internal| Membership { network: n.into(), gw_priority: g, internal, ..Default::default() };
        let plan = plan_interfaces(&[m("a", 0, true), m("b", 0, false)]).unwrap();
        assert_eq!(show(&plan), ["a=eth0", "b=eth1*"]);
        // Even when the internal one has the higher gw_priority.
        let plan = plan_interfaces(&[m("a", 0, false), m("b", 9, true)]).unwrap();
        assert_eq!(show(&plan), ["a=eth0*", "b=eth1"]);
        // Only internal networks: no default route at all.
        let plan = plan_interfaces(&[m("a", 0, true), m("b", 0, true)]).unwrap();
        assert_eq!(show(&plan), ["a=eth0", "b=eth1"]);
    }

    #[test]
    fn duplicate_interface_names_are_an_error() {
        let m =
            |n: &str, i: &str| Membership { network: n.into(), interface_name: Some(i.into()), ..Default::default() };
        let err = plan_interfaces(&[m("front", "lan0"), m("back", "lan0")]).unwrap_err();
        assert_eq!(err.to_string(), "interface name `lan0` is used by both network `back` and network `front`");
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
            fn remove_bridge(&self, n: &IfName) -> Result<bool> {
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
            fn redirect_dns(&self, p: &std::path::Path, server: std::net::Ipv4Addr) -> Result<()> {
                self.0.redirect_dns(p, server)
            }
            fn announce(&self, p: &std::path::Path) -> Result<()> {
                self.0.announce(p)
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
