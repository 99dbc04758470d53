//! Compose's networking keys in the network crate's terms: a project network becomes a
//! `NetworkSpec`, a service's `networks:` become interface memberships and requested
//! addresses, its `ports:` become publish specs, and a running container becomes a DNS entry.
//! Pure; the executor and supervisor do the acting.

use std::collections::BTreeMap;
use std::net::IpAddr;

use berth_compose::model::{Network, Service};
use berth_compose::resolved::{Protocol, PublishedPort, ResolvedService};
use berth_compose::Project;
use berth_network::dns::{DnsContainer, DnsEndpoint};
use berth_network::ipam::SubnetConfig;
use berth_network::network::{Membership, NetworkSpec};
use berth_network::proxy::{Proto, PublishSpec};

/// A compose value that does not fit, with the key path that holds it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ModelError {
    /// E.g. `networks.front.ipam.config[0].subnet`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn err(path: String, message: impl Into<String>) -> ModelError {
    ModelError { path, message: message.into() }
}

/// The resolved name of a project network (`name:` after normalization, else the key).
pub fn network_name(key: &str, net: &Network) -> String {
    net.name.clone().unwrap_or_else(|| key.to_string())
}

/// The network crate's description of project network `key`.
pub fn network_spec(key: &str, net: &Network) -> Result<NetworkSpec, ModelError> {
    let name = network_name(key, net);
    let mut spec = NetworkSpec::new(&name, &net.driver_opts)
        .map_err(|e| err(format!("networks.{key}.driver_opts"), e.to_string()))?;
    if let Some(d) = net.driver.as_deref().filter(|d| *d != "bridge") {
        return Err(err(
            format!("networks.{key}.driver"),
            format!("driver {d:?} is not supported; berth makes bridge networks"),
        ));
    }
    for (i, pool) in net.ipam.iter().flat_map(|i| i.config.iter()).enumerate() {
        let at = |field: &str| format!("networks.{key}.ipam.config[{i}].{field}");
        let Some(subnet) = &pool.subnet else { continue };
        let subnet = subnet.parse().map_err(|_| err(at("subnet"), format!("invalid subnet {subnet:?}")))?;
        let mut cfg = SubnetConfig::new(subnet);
        if let Some(r) = &pool.ip_range {
            cfg.ip_range = Some(r.parse().map_err(|_| err(at("ip_range"), format!("invalid range {r:?}")))?);
        }
        if let Some(g) = &pool.gateway {
            cfg.gateway = Some(g.parse().map_err(|_| err(at("gateway"), format!("invalid address {g:?}")))?);
        }
        for (host, addr) in &pool.aux_addresses {
            let ip = addr.parse().map_err(|_| err(at("aux_addresses"), format!("invalid address {addr:?}")))?;
            cfg.aux_addresses.insert(host.clone(), ip);
        }
        cfg.validate(&name).map_err(|e| err(at("subnet"), e.to_string()))?;
        spec.subnets.push(cfg);
    }
    spec.internal = net.internal == Some(true);
    spec.enable_ipv6 = net.enable_ipv6 == Some(true);
    spec.external = net.external == Some(true);
    spec.labels = net.labels.clone();
    Ok(spec)
}

/// A service's network memberships (compose keys), for interface planning.
pub fn memberships(project: &Project, svc: &Service) -> Vec<Membership> {
    svc.networks
        .iter()
        .map(|(key, opts)| {
            let opts = opts.clone().unwrap_or_default();
            Membership {
                network: key.clone(),
                priority: opts.priority.unwrap_or(0),
                gw_priority: opts.gw_priority.unwrap_or(0),
                interface_name: opts.interface_name.clone(),
                internal: project.networks.get(key).is_some_and(|n| n.internal == Some(true)),
            }
        })
        .collect()
}

/// The static addresses a service asks for on network `key` (IPv4, IPv6).
pub fn requested_addresses(svc: &Service, key: &str) -> Result<(Option<IpAddr>, Option<IpAddr>), ModelError> {
    let Some(Some(opts)) = svc.networks.get(key) else { return Ok((None, None)) };
    let parse = |field: &str, v: &Option<String>, want_v4: bool| -> Result<Option<IpAddr>, ModelError> {
        let Some(text) = v else { return Ok(None) };
        let path = format!("services.{}.networks.{key}.{field}", svc.name);
        let ip: IpAddr = text.parse().map_err(|_| err(path.clone(), format!("invalid address {text:?}")))?;
        if ip.is_ipv4() != want_v4 {
            return Err(err(path, format!("{text} is not an IPv{} address", if want_v4 { 4 } else { 6 })));
        }
        Ok(Some(ip))
    };
    Ok((parse("ipv4_address", &opts.ipv4_address, true)?, parse("ipv6_address", &opts.ipv6_address, false)?))
}

/// A service's published ports (entries without `published` are published on a random port,
/// as `"80"` alone is).
pub fn publish_specs(svc: &Service) -> Result<Vec<PublishSpec>, ModelError> {
    let resolved = ResolvedService::new(svc).map_err(|e| err(e.path(), e.message))?;
    resolved.ports.iter().enumerate().map(|(i, p)| publish_spec(&svc.name, i, p)).collect()
}

fn publish_spec(service: &str, i: usize, p: &PublishedPort) -> Result<PublishSpec, ModelError> {
    let proto = proxy_proto(p.protocol).ok_or_else(|| {
        err(
            format!("services.{service}.ports[{i}]"),
            format!("protocol {:?} is not supported (tcp or udp)", p.protocol.as_str()),
        )
    })?;
    Ok(PublishSpec { proto, host_ip: p.host_ip, host_ports: p.host_ports, container_ports: (p.target, p.target) })
}

/// The proxy's protocol for a published port's: TCP and UDP are proxied, SCTP is not.
pub fn proxy_proto(p: Protocol) -> Option<Proto> {
    match p {
        Protocol::Tcp => Some(Proto::Tcp),
        Protocol::Udp => Some(Proto::Udp),
        Protocol::Sctp => None,
    }
}

/// A running container's DNS entry: its name, service, hostname, per-network addresses and
/// aliases, and `links` aliases. `addrs` gives its addresses by network key.
pub fn dns_entry(
    project: &Project,
    svc: &Service,
    container: &str,
    addrs: &BTreeMap<String, Vec<IpAddr>>,
) -> DnsContainer {
    let endpoints = svc
        .networks
        .iter()
        .filter_map(|(key, opts)| {
            let net = project.networks.get(key)?;
            Some(DnsEndpoint {
                network: network_name(key, net),
                addrs: addrs.get(key).cloned().unwrap_or_default(),
                aliases: opts.as_ref().map(|o| o.aliases.clone()).unwrap_or_default(),
                internal: net.internal == Some(true),
            })
        })
        .collect();
    let links = svc
        .links
        .iter()
        .map(|l| match l.split_once(':') {
            Some((target, alias)) => (target.to_string(), alias.to_string()),
            None => (l.clone(), l.clone()),
        })
        .collect();
    let upstreams = svc.dns.iter().filter_map(|d| d.parse::<IpAddr>().ok()).map(|ip| (ip, 53).into()).collect();
    DnsContainer {
        name: container.to_string(),
        service: Some(svc.name.clone()),
        hostname: svc.hostname.clone(),
        endpoints,
        links,
        upstreams,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Project {
        berth_compose::load_str(yaml, &std::env::temp_dir()).expect("valid").project
    }

    const STACK: &str = r#"
name: shop
services:
  web:
    image: busybox
    ports: ["8080:80", "127.0.0.1::443/udp", "9000-9001:9000-9001"]
    networks:
      front: {aliases: [www], priority: 10}
      back: {ipv4_address: 10.5.0.10, interface_name: backnet}
    links: ["db:database"]
    hostname: webhost
    dns: [10.0.0.53]
  db:
    image: busybox
    networks: [back]
networks:
  front:
    driver_opts: {com.docker.network.driver.mtu: "1400"}
  back:
    internal: true
    ipam:
      config:
        - subnet: 10.5.0.0/24
          gateway: 10.5.0.254
          aux_addresses: {printer: 10.5.0.3}
"#;

    #[test]
    fn networks_become_specs() {
        let p = project(STACK);
        let back = network_spec("back", &p.networks["back"]).unwrap();
        assert_eq!(back.name, "shop_back");
        assert!(back.internal);
        assert_eq!(back.subnets[0].subnet.to_string(), "10.5.0.0/24");
        assert_eq!(back.subnets[0].gateway, Some("10.5.0.254".parse().unwrap()));
        let front = network_spec("front", &p.networks["front"]).unwrap();
        assert_eq!(front.mtu, Some(1400));
        assert_ne!(front.bridge, back.bridge);
    }

    #[test]
    fn bad_ipam_is_located() {
        // The loader refuses a bad subnet first; the model check stands behind it.
        let mut p = project("name: x\nservices:\n  a:\n    image: busybox\n    networks: [n]\nnetworks:\n  n:\n    ipam:\n      config:\n        - subnet: 10.0.0.0/24\n");
        let net = p.networks.get_mut("n").unwrap();
        net.ipam.as_mut().unwrap().config[0].subnet = Some("10.0.0.0/33".into());
        let e = network_spec("n", &p.networks["n"]).unwrap_err();
        assert_eq!(e.path, "networks.n.ipam.config[0].subnet");
    }

    #[test]
    fn memberships_addresses_and_ports() {
        let p = project(STACK);
        let web = &p.services["web"];
        let m = memberships(&p, web);
        assert_eq!(m.len(), 2);
        let back = m.iter().find(|m| m.network == "back").unwrap();
        assert!(back.internal);
        assert_eq!(back.interface_name.as_deref(), Some("backnet"));
        assert_eq!(requested_addresses(web, "back").unwrap(), (Some("10.5.0.10".parse().unwrap()), None));
        let ports = publish_specs(web).unwrap();
        assert_eq!(ports[0].host_ports, Some((8080, 8080)));
        assert_eq!(ports[1].host_ports, None);
        assert_eq!(ports[1].proto, Proto::Udp);
        assert_eq!(ports[1].host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(ports.len(), 4, "ranges are one port each after loading");
    }

    #[test]
    fn sctp_ports_are_not_proxied() {
        let p = project("name: x\nservices:\n  a:\n    image: busybox\n    ports: [\"80\", \"90/sctp\"]\n");
        let e = publish_specs(&p.services["a"]).unwrap_err();
        assert_eq!(e.to_string(), "services.a.ports[1]: protocol \"sctp\" is not supported (tcp or udp)");
        assert_eq!(proxy_proto(Protocol::Udp), Some(Proto::Udp));
    }

    #[test]
    fn dns_entries_carry_aliases_links_and_upstreams() {
        let p = project(STACK);
        let web = &p.services["web"];
        let addrs: BTreeMap<String, Vec<IpAddr>> = [
            ("front".to_string(), vec!["172.20.0.2".parse().unwrap()]),
            ("back".to_string(), vec!["10.5.0.10".parse().unwrap()]),
        ]
        .into();
        let d = dns_entry(&p, web, "shop-web-1", &addrs);
        assert_eq!(d.service.as_deref(), Some("web"));
        assert_eq!(d.hostname.as_deref(), Some("webhost"));
        let front = d.endpoints.iter().find(|e| e.network == "shop_front").unwrap();
        assert_eq!(front.aliases, ["www"]);
        assert_eq!(d.links, [("db".to_string(), "database".to_string())]);
        assert_eq!(d.upstreams, ["10.0.0.53:53".parse().unwrap()]);
    }
}
