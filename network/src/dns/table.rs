//! The name table the DNS server answers from: a plain value, built whole from the list of
//! containers that should resolve, and swapped in atomically when that list changes.
//!
//! Names are scoped per network: a container sees only names on the networks it is attached to,
//! and the server finds out who is asking from the query's source address. Reverse names too: an
//! address answers PTR queries only from containers on the network that address is on.
//! A container only on `internal` networks has no way out, so other names are refused for it
//! rather than forwarded.

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
    /// The network is `internal: true`. A container whose networks are all internal gets no
    /// answers from upstream servers.
    pub internal: bool,
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
    /// Whether names that are not ours may be forwarded (it is on a network that is not internal).
    forwards: bool,
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
    /// Not ours, and the asker is only on internal networks: refuse rather than forward.
    Refused,
}

/// Names per network, askers by address, reverse names.
#[derive(Clone, Debug, Default)]
pub struct DnsTable {
    names: HashMap<String, HashMap<String, Vec<IpAddr>>>,
    askers: HashMap<IpAddr, Asker>,
    /// Per address, the networks it is on with the container name it answers there.
    reverse: HashMap<IpAddr, Vec<(String, String)>>,
}

/// Lower-cases a name and drops a trailing dot, as names are compared.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsTable {
    /// Builds the table from every container that should resolve.
    pub fn build(containers: &[DnsContainer]) -> DnsTable {
        DnsTable::build_scoped(containers, &[])
    }

    /// Builds the table from the containers that should resolve (`answering`) and those that only
    /// ask (`asking`: starting, stopped or unhealthy ones). A container asks from its first
    /// instruction on, before anyone could tell the server it runs; its scope must be known by
    /// then, while its own names appear only once it runs (and is not unhealthy).
    pub fn build_scoped(answering: &[DnsContainer], asking: &[DnsContainer]) -> DnsTable {
        let mut t = DnsTable::default();
        for c in answering {
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
                    let entries = t.reverse.entry(*a).or_default();
                    if !entries.iter().any(|(n, _)| *n == ep.network) {
                        entries.push((ep.network.clone(), c.name.clone()));
                    }
                }
            }
        }
        for c in answering.iter().chain(asking) {
            let forwards = c.endpoints.iter().any(|e| !e.internal);
            for a in c.endpoints.iter().flat_map(|e| &e.addrs) {
                let asker = t.askers.entry(*a).or_insert_with(|| Asker { forwards, ..Asker::default() });
                // Two containers claiming one address: forward only when both may.
                asker.forwards &= forwards;
                asker.upstreams = c.upstreams.clone();
                for e in &c.endpoints {
                    if !asker.networks.contains(&e.network) {
                        asker.networks.push(e.network.clone());
                    }
                }
            }
        }
        for c in answering.iter().chain(asking).filter(|c| !c.links.is_empty()) {
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
            self.not_ours(asker)
        }
    }

    /// What becomes of a name that is not ours: [`Lookup::Forward`], or [`Lookup::Refused`] when
    /// the container at `asker` is only on internal networks. Unknown askers are forwarded for.
    pub fn not_ours(&self, asker: IpAddr) -> Lookup {
        match self.askers.get(&asker) {
            Some(who) if !who.forwards => Lookup::Refused,
            _ => Lookup::Forward,
        }
    }

    /// The addresses of `name` of one family (`v6` or not) for the container at `asker`.
    pub fn lookup(&self, asker: IpAddr, name: &str, v6: bool) -> Lookup {
        match self.lookup_any(asker, name) {
            Lookup::Addrs(a) => Lookup::Addrs(a.into_iter().filter(|a| a.is_ipv6() == v6).collect()),
            other => other,
        }
    }

    /// The container name for `addr`, when the asker is on the network `addr` is on (sharing some
    /// other network with its container is not enough: that would reveal an address the asker
    /// cannot reach).
    pub fn reverse(&self, asker: IpAddr, addr: IpAddr) -> Lookup {
        let Some(who) = self.askers.get(&asker) else { return Lookup::Forward };
        let entries = self.reverse.get(&addr).map(Vec::as_slice).unwrap_or_default();
        match entries.iter().find(|(net, _)| who.networks.contains(net)) {
            Some((_, name)) => Lookup::Ptr(name.clone()),
            None => self.not_ours(asker),
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
                .map(|(n, a)| DnsEndpoint { network: n.to_string(), addrs: vec![ip(a)], ..Default::default() })
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
    fn starting_containers_ask_in_scope_but_do_not_resolve() {
        let db = container("shop-db-1", "db", &[("back", "10.2.0.3")]);
        let mut app = container("shop-app-1", "app", &[("back", "10.2.0.9")]);
        app.links = vec![("db".into(), "database".into())];
        let t = DnsTable::build_scoped(&[db], &[app]);
        assert_eq!(t.lookup(ip("10.2.0.9"), "db", false), Lookup::Addrs(vec![ip("10.2.0.3")]));
        assert_eq!(t.lookup(ip("10.2.0.9"), "database", false), Lookup::Addrs(vec![ip("10.2.0.3")]));
        assert_eq!(t.lookup(ip("10.2.0.3"), "app", false), Lookup::Forward, "not running yet: no names");
        assert_eq!(t.reverse(ip("10.2.0.3"), ip("10.2.0.9")), Lookup::Forward);
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
    fn reverse_names_need_the_network_of_the_address_not_just_any_shared_one() {
        let t = table();
        // proxy shares `front` with web, but web's `back` address is not on any network of proxy's.
        assert_eq!(t.reverse(ip("10.1.0.5"), ip("10.1.0.2")), Lookup::Ptr("shop-web-1".into()));
        assert_eq!(t.reverse(ip("10.1.0.5"), ip("10.2.0.2")), Lookup::Forward);
        // The same address on two networks (an external network overlapping another) answers
        // with the container on the asker's network.
        let t = DnsTable::build(&[
            container("a-x-1", "x", &[("a", "10.5.0.2")]),
            container("b-y-1", "y", &[("b", "10.5.0.2")]),
            container("b-z-1", "z", &[("b", "10.5.0.3")]),
        ]);
        assert_eq!(t.reverse(ip("10.5.0.3"), ip("10.5.0.2")), Lookup::Ptr("b-y-1".into()));
    }

    #[test]
    fn containers_only_on_internal_networks_get_nothing_forwarded() {
        let mut inside = container("shop-worker-1", "worker", &[("jobs", "10.4.0.2")]);
        inside.endpoints[0].internal = true;
        let mut both = container("shop-api-1", "api", &[("jobs", "10.4.0.3"), ("front", "10.1.0.3")]);
        both.endpoints[0].internal = true;
        let t = DnsTable::build(&[inside, both]);
        assert_eq!(t.lookup(ip("10.4.0.2"), "api", false), Lookup::Addrs(vec![ip("10.4.0.3")]));
        assert_eq!(t.lookup(ip("10.4.0.2"), "example.com", false), Lookup::Refused);
        assert_eq!(t.lookup_any(ip("10.4.0.2"), "example.com"), Lookup::Refused);
        assert_eq!(t.reverse(ip("10.4.0.2"), ip("192.0.2.1")), Lookup::Refused);
        // A container with one network that is not internal still has a way out.
        assert_eq!(t.lookup(ip("10.4.0.3"), "example.com", false), Lookup::Forward);
        assert_eq!(t.lookup(ip("10.1.0.3"), "example.com", false), Lookup::Forward);
    }

    #[test]
    fn per_container_upstreams_are_kept() {
        let t = table();
        assert_eq!(t.upstreams_for(ip("10.2.0.2")), &["10.53.0.1:53".parse::<SocketAddr>().unwrap()]);
        assert!(t.upstreams_for(ip("10.2.0.3")).is_empty());
    }
}
