//! The name table the DNS server answers from: a plain value, built whole from the list of
//! containers that should resolve, and swapped in atomically when that list changes.
//!
//! Names are scoped per network: a container sees only names on the networks it is attached to,
//! and the server finds out who is asking from the query's source address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// A container's presence on one network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsEndpoint {
    /// The network (any stable key; berth uses the project-qualified network name).
    pub network: String,
    /// The container's addresses on it.
    pub addrs: Vec<IpAddr>,
    /// Network-scoped `aliases`.
    pub aliases: Vec<String>,
}

/// A container that should resolve (running, and healthy when it has a health check).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsContainer {
    /// The container name (`shop-web-1`); also the answer to PTR queries.
    pub name: String,
    /// The service name, shared by all replicas.
    pub service: Option<String>,
    /// The `hostname`.
    pub hostname: Option<String>,
    /// The networks it is on.
    pub endpoints: Vec<DnsEndpoint>,
    /// `links` as (target service or container, alias): the alias resolves only for this container.
    pub links: Vec<(String, String)>,
    /// Upstream servers for this container's other queries (`dns:` in compose); empty for the
    /// server's defaults.
    pub upstreams: Vec<SocketAddr>,
}

/// Who is asking: the networks and private names of the container owning a source address.
#[derive(Clone, Debug, Default)]
struct Asker {
    networks: Vec<String>,
    links: HashMap<String, Vec<IpAddr>>,
    upstreams: Vec<SocketAddr>,
}

/// The answer to a query, before it becomes a DNS message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The name is ours; these are its addresses of the asked family (empty: no data of that type).
    Addrs(Vec<IpAddr>),
    /// A reverse lookup of one of our addresses.
    Ptr(String),
    /// Not ours: forward it.
    Forward,
}

/// Names per network, askers by address, reverse names.
#[derive(Clone, Debug, Default)]
pub struct DnsTable {
    names: HashMap<String, HashMap<String, Vec<IpAddr>>>,
    askers: HashMap<IpAddr, Asker>,
    reverse: HashMap<IpAddr, String>,
}

/// Lower-cases a name and drops a trailing dot, as names are compared.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsTable {
    /// Builds the table from every container that should resolve.
    pub fn build(containers: &[DnsContainer]) -> DnsTable {
        let mut t = DnsTable::default();
        for c in containers {
            for ep in &c.endpoints {
                let names = t.names.entry(ep.network.clone()).or_default();
                let own = [Some(&c.name), c.service.as_ref(), c.hostname.as_ref()];
                for n in own.into_iter().flatten().chain(&ep.aliases) {
                    let list = names.entry(normalize(n)).or_default();
                    for a in &ep.addrs {
                        if !list.contains(a) {
                            list.push(*a);
                        }
                    }
                }
                for a in &ep.addrs {
                    t.reverse.entry(*a).or_insert_with(|| c.name.clone());
                    let asker = t.askers.entry(*a).or_default();
                    asker.upstreams = c.upstreams.clone();
                    for e in &c.endpoints {
                        if !asker.networks.contains(&e.network) {
                            asker.networks.push(e.network.clone());
                        }
                    }
                }
            }
        }
        for c in containers.iter().filter(|c| !c.links.is_empty()) {
            let Some(first) = c.endpoints.iter().flat_map(|e| &e.addrs).next() else { continue };
            let mut links = HashMap::new();
            for (target, alias) in &c.links {
                if let Lookup::Addrs(addrs) = t.lookup_any(*first, target) {
                    links.insert(normalize(alias), addrs);
                }
            }
            for a in c.endpoints.iter().flat_map(|e| &e.addrs) {
                if let Some(asker) = t.askers.get_mut(a) {
                    asker.links = links.clone();
                }
            }
        }
        t
    }

    /// All addresses (both families) `name` has for the container at `asker`.
    pub fn lookup_any(&self, asker: IpAddr, name: &str) -> Lookup {
        let Some(who) = self.askers.get(&asker) else { return Lookup::Forward };
        let name = normalize(name);
        let mut found = false;
        let mut out: Vec<IpAddr> = vec![];
        if let Some(addrs) = who.links.get(&name) {
            found = true;
            out.extend(addrs);
        }
        for net in &who.networks {
            if let Some(addrs) = self.names.get(net).and_then(|n| n.get(&name)) {
                found = true;
                out.extend(addrs.iter().filter(|a| !out.contains(a)).copied().collect::<Vec<_>>());
            }
        }
        if found {
            Lookup::Addrs(out)
        } else {
            Lookup::Forward
        }
    }

    /// The addresses of `name` of one family (`v6` or not) for the container at `asker`.
    pub fn lookup(&self, asker: IpAddr, name: &str, v6: bool) -> Lookup {
        match self.lookup_any(asker, name) {
            Lookup::Addrs(a) => Lookup::Addrs(a.into_iter().filter(|a| a.is_ipv6() == v6).collect()),
            other => other,
        }
    }

    /// The container name for `addr`, when the asker shares a network with it.
    pub fn reverse(&self, asker: IpAddr, addr: IpAddr) -> Lookup {
        let (Some(who), Some(name)) = (self.askers.get(&asker), self.reverse.get(&addr)) else {
            return Lookup::Forward;
        };
        let shared = who.networks.iter().any(|n| self.askers.get(&addr).is_some_and(|o| o.networks.contains(n)));
        if shared {
            Lookup::Ptr(name.clone())
        } else {
            Lookup::Forward
        }
    }

    /// The upstream servers the container at `asker` asked for, if any.
    pub fn upstreams_for(&self, asker: IpAddr) -> &[SocketAddr] {
        self.askers.get(&asker).map(|a| a.upstreams.as_slice()).unwrap_or(&[])
    }
}

/// The address a reverse-lookup name (`4.3.2.1.in-addr.arpa`, nibbles under `ip6.arpa`) stands for.
pub fn parse_reverse_name(name: &str) -> Option<IpAddr> {
    let name = normalize(name);
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut octets: Vec<u8> = rest.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
        if octets.len() != 4 {
            return None;
        }
        octets.reverse();
        return Some(IpAddr::from([octets[0], octets[1], octets[2], octets[3]]));
    }
    let rest = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u8> = rest
        .split('.')
        .map(|p| if p.len() == 1 { u8::from_str_radix(p, 16).ok() } else { None })
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let v = nibbles.iter().rev().fold(0u128, |acc, n| (acc << 4) | u128::from(*n));
    Some(IpAddr::V6(v.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn container(name: &str, service: &str, eps: &[(&str, &str)]) -> DnsContainer {
        DnsContainer {
            name: name.into(),
            service: Some(service.into()),
            endpoints: eps
                .iter()
                .map(|(n, a)| DnsEndpoint { network: n.to_string(), addrs: vec![ip(a)], aliases: vec![] })
                .collect(),
            ..Default::default()
        }
    }

    fn table() -> DnsTable {
        let mut web = container("shop-web-1", "web", &[("front", "10.1.0.2"), ("back", "10.2.0.2")]);
        web.hostname = Some("WebHost".into());
        web.links = vec![("db".into(), "database".into())];
        web.upstreams = vec!["10.53.0.1:53".parse().unwrap()];
        let mut db = container("shop-db-1", "db", &[("back", "10.2.0.3")]);
        db.endpoints[0].aliases = vec!["postgres".into()];
        db.endpoints[0].addrs.push(ip("fd00:2::3"));
        let db2 = container("shop-db-2", "db", &[("back", "10.2.0.4")]);
        let proxy = container("shop-proxy-1", "proxy", &[("front", "10.1.0.5")]);
        let other = container("other-db-1", "db", &[("other", "10.3.0.2")]);
        DnsTable::build(&[web, db, db2, proxy, other])
    }

    #[test]
    fn service_names_resolve_to_all_replicas_on_shared_networks() {
        let t = table();
        assert_eq!(t.lookup(ip("10.1.0.2"), "db", false), Lookup::Addrs(vec![ip("10.2.0.3"), ip("10.2.0.4")]));
        assert_eq!(t.lookup(ip("10.2.0.2"), "DB.", false), Lookup::Addrs(vec![ip("10.2.0.3"), ip("10.2.0.4")]));
        assert_eq!(t.lookup(ip("10.1.0.2"), "db", true), Lookup::Addrs(vec![ip("fd00:2::3")]));
        // proxy is only on `front`, where there is no db.
        assert_eq!(t.lookup(ip("10.1.0.5"), "db", false), Lookup::Forward);
        assert_eq!(t.lookup(ip("10.1.0.5"), "web", false), Lookup::Addrs(vec![ip("10.1.0.2")]));
    }

    #[test]
    fn container_names_hostnames_aliases_and_links_resolve() {
        let t = table();
        let web = ip("10.1.0.2");
        assert_eq!(t.lookup(ip("10.2.0.3"), "shop-web-1", false), Lookup::Addrs(vec![ip("10.2.0.2")]));
        assert_eq!(t.lookup(ip("10.2.0.3"), "webhost", false), Lookup::Addrs(vec![ip("10.2.0.2")]));
        assert_eq!(t.lookup(web, "postgres", false), Lookup::Addrs(vec![ip("10.2.0.3")]));
        assert_eq!(t.lookup(web, "database", false), Lookup::Addrs(vec![ip("10.2.0.3"), ip("10.2.0.4")]));
        // Link aliases are private to the linking container.
        assert_eq!(t.lookup(ip("10.2.0.3"), "database", false), Lookup::Forward);
    }

    #[test]
    fn other_projects_and_unknown_askers_see_nothing() {
        let t = table();
        assert_eq!(t.lookup(ip("10.3.0.2"), "web", false), Lookup::Forward);
        assert_eq!(t.lookup(ip("10.3.0.2"), "db", false), Lookup::Addrs(vec![ip("10.3.0.2")]));
        assert_eq!(t.lookup(ip("127.0.0.1"), "db", false), Lookup::Forward);
        assert_eq!(t.lookup(ip("10.1.0.2"), "example.com", false), Lookup::Forward);
    }

    #[test]
    fn reverse_lookups_answer_container_names_on_shared_networks() {
        let t = table();
        assert_eq!(t.reverse(ip("10.1.0.2"), ip("10.2.0.3")), Lookup::Ptr("shop-db-1".into()));
        assert_eq!(t.reverse(ip("10.3.0.2"), ip("10.2.0.3")), Lookup::Forward);
        assert_eq!(parse_reverse_name("3.0.2.10.in-addr.arpa."), Some(ip("10.2.0.3")));
        let v6 = "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(parse_reverse_name(v6), Some(ip("fd00:2::3")));
        assert_eq!(parse_reverse_name("1.2.in-addr.arpa"), None);
        assert_eq!(parse_reverse_name("example.com"), None);
    }

    #[test]
    fn per_container_upstreams_are_kept() {
        let t = table();
        assert_eq!(t.upstreams_for(ip("10.2.0.2")), &["10.53.0.1:53".parse::<SocketAddr>().unwrap()]);
        assert!(t.upstreams_for(ip("10.2.0.3")).is_empty());
    }
}
