//! What the project supervisor needs to know about a container, written into the container's
//! state row (its config's `supervise`, and the host ports chosen for its published ports) when
//! `up` creates it. The supervisor reads only these rows: it never loads the
//! compose files, so a container made from an older version of them is supervised as it was made,
//! and a new supervisor (after a crash or a reboot) adopts running containers from the database
//! alone.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use berth_compose::model::{Hook, Service};
use berth_compose::resolved::RestartPolicy;
use berth_compose::Project;
use berth_network::dns::{DnsContainer, DnsEndpoint};
use berth_network::proxy::Proto;
use serde::{Deserialize, Serialize};

use super::health::Check;
use super::restart::{restart_on_unhealthy, Policy};
pub use crate::state::Published;

/// A container's supervision: names, health check, restart policy and hooks (its published
/// ports are the row's [`crate::state::ContainerRecord::published`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SuperviseSpec {
    /// Its DNS entry (`None` when it is on no berth network).
    pub dns: Option<DnsSpec>,
    /// The gateway addresses its resolver points at: where the DNS server listens.
    pub gateways: Vec<IpAddr>,
    /// Its health check.
    pub health: Option<Check>,
    /// Its restart policy.
    pub restart: Policy,
    /// Restart it when its health check fails (opt-in, beyond Compose).
    pub restart_on_unhealthy: bool,
    /// Commands run in it after each start.
    #[serde(default)]
    pub post_start: Vec<Hook>,
    /// Commands run in it before each stop.
    #[serde(default)]
    pub pre_stop: Vec<Hook>,
    /// Namespaces it joins at each start: (`ipc`, `pid` or `uts`, the container that owns it),
    /// from `ipc`/`pid`/`uts: service:NAME` or `container:NAME`.
    #[serde(default)]
    pub share: Vec<(String, String)>,
}

/// A container's DNS entry, as [`DnsContainer`] without the server's types.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsSpec {
    /// The service.
    pub service: String,
    /// `hostname`.
    pub hostname: Option<String>,
    /// (network name, addresses, aliases, internal).
    pub endpoints: Vec<(String, Vec<IpAddr>, Vec<String>, bool)>,
    /// `links` as (target, alias).
    pub links: Vec<(String, String)>,
    /// `dns:` servers.
    pub upstreams: Vec<SocketAddr>,
}

impl DnsSpec {
    /// The entry for container `name`.
    pub fn to_container(&self, name: &str) -> DnsContainer {
        DnsContainer {
            name: name.to_string(),
            service: Some(self.service.clone()),
            hostname: self.hostname.clone(),
            endpoints: self
                .endpoints
                .iter()
                .map(|(network, addrs, aliases, internal)| DnsEndpoint {
                    network: network.clone(),
                    addrs: addrs.clone(),
                    aliases: aliases.clone(),
                    internal: *internal,
                })
                .collect(),
            links: self.links.clone(),
            upstreams: self.upstreams.clone(),
        }
    }
}

/// A published port's protocol in a state row or a message: `udp: true` or `false`.
pub mod udp_flag {
    use berth_network::proxy::Proto;
    use serde::{Deserialize, Deserializer, Serializer};

    /// `true` for UDP.
    pub fn serialize<S: Serializer>(proto: &Proto, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(*proto == Proto::Udp)
    }

    /// UDP for `true`, else TCP.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Proto, D::Error> {
        Ok(if bool::deserialize(d)? { Proto::Udp } else { Proto::Tcp })
    }
}

impl SuperviseSpec {
    /// The spec of a container of `svc` with addresses `addrs` (by network key) on networks
    /// whose gateways are `gateways` (by network key) and health check `health`; `restart` is
    /// its resolved restart policy.
    pub fn new(
        project: &Project,
        svc: &Service,
        restart: &RestartPolicy,
        addrs: &BTreeMap<String, Vec<IpAddr>>,
        gateways: &BTreeMap<String, IpAddr>,
        health: Option<Check>,
    ) -> SuperviseSpec {
        let dns = (!addrs.is_empty()).then(|| {
            let d = crate::stack::netmodel::dns_entry(project, svc, "", addrs);
            DnsSpec {
                service: svc.name.clone(),
                hostname: d.hostname,
                endpoints: d.endpoints.into_iter().map(|e| (e.network, e.addrs, e.aliases, e.internal)).collect(),
                links: d.links,
                upstreams: d.upstreams,
            }
        });
        let mut gw: Vec<IpAddr> = gateways.values().copied().collect();
        gw.sort();
        gw.dedup();
        SuperviseSpec {
            dns,
            gateways: gw,
            health,
            restart: Policy::from(restart),
            restart_on_unhealthy: restart_on_unhealthy(svc),
            post_start: svc.post_start.clone(),
            pre_stop: svc.pre_stop.clone(),
            share: Vec::new(),
        }
    }
}

/// Reads the gateway each network key resolves through, for [`SuperviseSpec::new`].
pub fn gateways_of(
    specs: &BTreeMap<String, berth_network::network::NetworkSpec>,
    addrs: &BTreeMap<String, Vec<IpAddr>>,
) -> BTreeMap<String, IpAddr> {
    addrs.iter().filter_map(|(k, a)| Some((k.clone(), specs.get(k)?.gateway_for(*a.first()?)?))).collect()
}

/// The host ports `containers` publish, as (protocol, port).
pub fn published_ports(containers: &[crate::state::ContainerRecord]) -> Vec<(Proto, u16)> {
    containers.iter().flat_map(|c| c.published.iter().map(|p| (p.proto, p.host_port))).collect()
}

/// Binds `host_ip:port` (0 for any) and lets go: the port bound, or `None` when it is taken.
pub fn bindable(host_ip: IpAddr, proto: Proto, port: u16) -> Option<u16> {
    let addr = SocketAddr::new(host_ip, port);
    match proto {
        Proto::Udp => std::net::UdpSocket::bind(addr).ok()?.local_addr().ok().map(|a| a.port()),
        Proto::Tcp => std::net::TcpListener::bind(addr).ok()?.local_addr().ok().map(|a| a.port()),
    }
}

/// The host port for a published port: the one asked for, the first free one of a range not in
/// `taken`, or a random free one.
pub fn choose_port(host_ip: IpAddr, proto: Proto, asked: Option<(u16, u16)>, taken: &[(Proto, u16)]) -> Option<u16> {
    match asked {
        // A fixed port: `up` checked it is free (or ours) before starting anything.
        Some((a, b)) if a == b => Some(a),
        Some((a, b)) => (a..=b).filter(|p| !taken.contains(&(proto, *p))).find_map(|p| bindable(host_ip, proto, p)),
        None => (0..20).filter_map(|_| bindable(host_ip, proto, 0)).find(|p| !taken.contains(&(proto, *p))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_through_the_stored_config() {
        let p = berth_compose::load_str(
            "name: s\nservices:\n  web:\n    image: busybox\n    restart: on-failure:3\n    networks:\n      front: {aliases: [www]}\nnetworks:\n  front:\n",
            &std::env::temp_dir(),
        )
        .unwrap()
        .project;
        let svc = &p.services["web"];
        let restart = berth_compose::resolved::ResolvedService::new(svc).unwrap().restart;
        let addrs = [("front".to_string(), vec!["172.30.0.2".parse().unwrap()])].into();
        let gws = [("front".to_string(), "172.30.0.1".parse().unwrap())].into();
        let spec = SuperviseSpec::new(&p, svc, &restart, &addrs, &gws, None);
        assert_eq!(spec.restart.max_attempts, Some(3));
        let config = crate::container::ContainerConfig { supervise: Some(spec.clone()), ..Default::default() };
        let text = serde_json::to_string(&config).unwrap();
        let back: crate::container::ContainerConfig = serde_json::from_str(&text).unwrap();
        let back = back.supervise.unwrap();
        assert_eq!(back, spec);
        let dns = back.dns.unwrap().to_container("s-web-1");
        assert_eq!(dns.endpoints[0].network, "s_front");
        assert_eq!(dns.endpoints[0].aliases, ["www"]);
        assert_eq!(back.gateways, ["172.30.0.1".parse::<IpAddr>().unwrap()]);
    }
}
