//! The supervisor's published ports: a userland proxy per running container that publishes ports
//! (and nftables DNAT rules for traffic to the host's other addresses), and the ports `up`
//! reserves before it starts containers.
//!
//! A reservation is the bound socket itself ([`HeldPort`]): only one socket can hold
//! `host_ip:port`, so two projects racing for a port cannot both get it, and the one that loses
//! hears so before it makes anything. The socket is handed to the container's proxy once the
//! container runs; a reservation nobody claimed goes when the `up` that made it says it is done
//! or exits. A port the proxy cannot bind (another program, or another project, took it while the
//! container was stopped) is said once in the supervisor's log and an event, and tried again on
//! every pass until it is free; DNAT rules are installed only for ports the proxy holds.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use berth_network::nat::{Firewall, Nft, PortRule, Rule};
use berth_network::proxy::{HeldPort, PortMapping, PortProxy, Proto};
use serde::{Deserialize, Serialize};

use super::protocol::{Conflict, PortEntry};
use super::spec::{Published, SuperviseSpec};
use crate::container::record_event;
use crate::events::{Event, EventSink};
use crate::state::{ContainerRecord, StateDb};

/// A host port: protocol, address and number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPort {
    /// TCP or UDP (stored as `udp: bool`).
    #[serde(rename = "udp", with = "super::spec::udp_flag")]
    pub proto: Proto,
    /// The host address (unspecified for all).
    pub ip: IpAddr,
    /// The port.
    pub port: u16,
}

impl HostPort {
    /// The host side of a published port.
    pub fn of(p: &Published) -> HostPort {
        HostPort { proto: p.proto, ip: p.host_ip, port: p.host_port }
    }

    fn of_mapping(m: &PortMapping) -> HostPort {
        HostPort { proto: m.proto, ip: m.host_ip, port: m.host_port }
    }

    /// Whether both cannot be bound at once: same protocol and port, and the same address or
    /// one of them all addresses.
    pub fn overlaps(&self, other: &HostPort) -> bool {
        self.proto == other.proto
            && self.port == other.port
            && (self.ip == other.ip || self.ip.is_unspecified() || other.ip.is_unspecified())
    }

    /// Binds it (the reservation).
    pub fn bind(&self) -> berth_network::Result<HeldPort> {
        HeldPort::bind(self.proto, SocketAddr::new(self.ip, self.port))
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {}/{} on {}", self.port, self.proto, self.ip)
    }
}

/// Whether a failed bind failed because the address is taken.
pub fn in_use(e: &berth_network::Error) -> bool {
    matches!(e, berth_network::Error::PortUnavailable { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse)
}

/// Which container (of any project) publishes `port` while running, other than `except`, as
/// the state database has it: `container NAME` (`of project P` when not of `project`).
pub fn holder_of(db: &StateDb, project: &str, port: &HostPort, except: &str) -> Option<String> {
    db.port_publishers(port.proto, port.port)
        .ok()?
        .into_iter()
        .find(|(name, _, ip)| name != except && HostPort { ip: *ip, ..*port }.overlaps(port))
        .map(|(name, its_project, _)| describe(&name, &its_project, project))
}

/// `container NAME`, with its project when it is not `project`.
pub fn describe(container: &str, its_project: &str, project: &str) -> String {
    if its_project == project {
        format!("container {container}")
    } else {
        format!("container {container} of project {its_project}")
    }
}

/// Whose ports to serve and whose to stop serving.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Containers (ids) whose ports are served: they run and publish.
    pub serve: Vec<String>,
    /// Containers whose proxy stops: they no longer run (their DNAT rules go too), or run anew
    /// (their proxy starts again, its rules stay).
    pub stop: Vec<String>,
}

/// Whose ports to serve and whose to stop serving, given the runs served now (`serving`: id and
/// the run's start).
pub fn plan(serving: &BTreeMap<String, Option<i64>>, specs: &[(ContainerRecord, SuperviseSpec)]) -> Plan {
    let live: Vec<&ContainerRecord> =
        specs.iter().filter(|(r, _)| !r.published.is_empty() && r.status.is_alive()).map(|(r, _)| r).collect();
    let stop = serving
        .iter()
        .filter(|(id, started)| !live.iter().any(|r| &r.id == *id && r.started_at == **started))
        .map(|(id, _)| id.clone())
        .collect();
    Plan { serve: live.iter().map(|r| r.id.clone()).collect(), stop }
}

/// A port that cannot be bound, and why.
type Unbindable = (HostPort, berth_network::Error);

/// A port held for a container `up` is about to start.
struct Reservation {
    container: String,
    /// The `up` that asked (its reservations go when it exits).
    owner: i32,
    port: HostPort,
    /// `None` while the port is still served for a container this `up` replaces.
    socket: Option<HeldPort>,
}

/// What is served for one running container.
struct Served {
    name: String,
    /// The name its DNAT rules go by ([`ContainerRecord::key`]).
    key: String,
    started_at: Option<i64>,
    proxy: Option<PortProxy>,
    /// Its DNAT rules are installed.
    rules: bool,
    /// Why its proxy could not start (said once per distinct reason).
    error: Option<String>,
}

/// The published ports of one project.
pub struct Ports {
    nft: Option<Nft>,
    /// By container id.
    served: HashMap<String, Served>,
    reserved: Vec<Reservation>,
    /// The addresses containers handed over to a successor were served at, by id.
    drained: HashMap<String, Vec<IpAddr>>,
}

impl Ports {
    /// Nothing served yet; DNAT rules through `nft` where nftables is available.
    pub fn new(nft: Option<Nft>) -> Ports {
        Ports { nft, served: HashMap::new(), reserved: Vec::new(), drained: HashMap::new() }
    }

    /// The container whose proxy holds a port overlapping `port`.
    fn serving(&self, port: &HostPort) -> Option<&str> {
        self.served
            .values()
            .find(|s| {
                s.proxy.as_ref().is_some_and(|p| p.bound().iter().any(|m| HostPort::of_mapping(m).overlaps(port)))
            })
            .map(|s| s.name.as_str())
    }

    /// Holds `ports` for `container` (about to be started by the `up` with pid `owner`), all or
    /// none. Ports served now for `container` itself or for one of `frees` (containers that `up`
    /// stops or removes first) pass to it when they are let go. A conflict names the container
    /// of the project that has the port (none when it is taken outside this project: the caller
    /// names who has it).
    pub fn reserve(
        &mut self,
        container: &str,
        owner: i32,
        frees: &[String],
        ports: &[HostPort],
    ) -> Result<(), Conflict> {
        let conflict = |port: &HostPort, holder: Option<&str>, in_use: bool, error: String| Conflict {
            port: *port,
            holder: holder.map(str::to_string),
            in_use,
            error,
        };
        let mut new: Vec<Reservation> = Vec::new();
        for port in ports {
            if self.reserved.iter().chain(&new).any(|r| r.container == container && r.port == *port) {
                continue;
            }
            if let Some(r) = self.reserved.iter().chain(&new).find(|r| r.port.overlaps(port)) {
                return Err(conflict(port, Some(&r.container), true, "reserved".into()));
            }
            let socket = match self.serving(port) {
                Some(name) if name == container || frees.iter().any(|f| f == name) => None,
                Some(name) => return Err(conflict(port, Some(name), true, "served".into())),
                None => match port.bind() {
                    Ok(s) => Some(s),
                    Err(e) => return Err(conflict(port, None, in_use(&e), e.to_string())),
                },
            };
            new.push(Reservation { container: container.to_string(), owner, port: *port, socket });
        }
        self.reserved.extend(new);
        Ok(())
    }

    /// Lets go of what `owner` reserved and no container has claimed.
    pub fn release(&mut self, owner: i32) {
        self.reserved.retain(|r| r.owner != owner);
    }

    /// The ports served and reserved, for the `status` answer.
    pub fn status(&self) -> (Vec<PortEntry>, Vec<PortEntry>) {
        let served = self
            .served
            .values()
            .flat_map(|s| {
                s.proxy.iter().flat_map(move |proxy| {
                    proxy.bound().iter().map(move |m| PortEntry {
                        container: s.name.clone(),
                        port: HostPort::of_mapping(m),
                        target: Some(SocketAddr::new(m.container_ip, m.container_port)),
                    })
                })
            })
            .collect();
        let reserved = self
            .reserved
            .iter()
            .map(|r| PortEntry { container: r.container.clone(), port: r.port, target: None })
            .collect();
        (served, reserved)
    }

    /// Serves the ports of running containers (proxy and DNAT), withdraws the others', and
    /// drops reservations whose `up` is gone.
    pub async fn reconcile(
        &mut self,
        db: &StateDb,
        events: &Arc<dyn EventSink>,
        specs: &[(ContainerRecord, SuperviseSpec)],
    ) {
        self.reserved.retain(|r| crate::container::pid_alive(r.owner));
        let serving: BTreeMap<String, Option<i64>> =
            self.served.iter().map(|(id, s)| (id.clone(), s.started_at)).collect();
        let plan = plan(&serving, specs);
        let live: Vec<&(ContainerRecord, SuperviseSpec)> =
            specs.iter().filter(|(r, _)| plan.serve.contains(&r.id)).collect();
        // What no longer runs (or runs anew) lets go first: a successor may take its ports.
        for id in plan.stop {
            let Some(s) = self.served.remove(&id) else { continue };
            if let Some(p) = s.proxy {
                p.stop().await;
            }
            if s.rules && !plan.serve.contains(&id) {
                self.withdraw_rules(&s.key, &s.name, events.as_ref()).await;
            }
        }
        for r in self.reserved.iter_mut().filter(|r| r.socket.is_none()) {
            r.socket = r.port.bind().ok();
        }
        for (r, _) in live {
            if self.served.get(&r.id).is_some_and(|s| s.proxy.is_some()) {
                self.republish(db, events.as_ref(), r).await;
                continue;
            }
            let mappings: Vec<PortMapping> = r.published.iter().map(|p| p.mapping()).collect();
            let proxy = match self.bind(&r.name, &mappings) {
                Ok(held) => PortProxy::serve(held).map_err(|e| e.to_string()),
                Err(failed) => Err(self.unavailable(db, r, &failed.0, &failed.1)),
            };
            let entry = self.served.entry(r.id.clone()).or_insert_with(|| Served {
                name: r.name.clone(),
                key: r.key().to_string(),
                started_at: r.started_at,
                proxy: None,
                rules: false,
                error: None,
            });
            match proxy {
                Ok(p) => {
                    if entry.error.take().is_some() {
                        let ports: Vec<String> = r.published.iter().map(|p| HostPort::of(p).to_string()).collect();
                        events.emit(Event::Warning {
                            message: format!("container {} publishes {} now", r.name, ports.join(", ")),
                        });
                    }
                    entry.proxy = Some(p);
                }
                Err(msg) => {
                    if entry.error.as_deref() != Some(msg.as_str()) {
                        events.emit(Event::Warning { message: format!("{msg}; tried again until it is free") });
                        record_event(db, r, "publish_failed", &[("error", msg.clone().into())]);
                        entry.error = Some(msg);
                    }
                    continue;
                }
            }
            if !entry.rules {
                entry.rules = true;
                if let Some(nft) = self.nft.clone() {
                    let rules: Vec<Rule> = r.published.iter().map(dnat).collect();
                    let owner = port_owner(r.key());
                    let applied = tokio::task::spawn_blocking(move || nft.apply(&owner, &rules)).await;
                    if let Ok(Err(e)) = applied {
                        record_event(db, r, "publish_failed", &[("error", e.to_string().into())]);
                    }
                }
            }
        }
    }

    /// Serves the ports of running container `r` as its row says when they changed while it ran
    /// (`up` republished them in place): ports that stay keep their sockets, ports that go
    /// close, new ones are taken from its reservations or bound.
    async fn republish(&mut self, db: &StateDb, events: &dyn EventSink, r: &ContainerRecord) {
        let want: Vec<PortMapping> = r.published.iter().map(|p| p.mapping()).collect();
        let Some(s) = self.served.get_mut(&r.id) else { return };
        let Some(proxy) = s.proxy.as_mut() else { return };
        if proxy.bound().len() == want.len() && want.iter().all(|m| proxy.bound().contains(m)) {
            return;
        }
        let reserved = &mut self.reserved;
        let held = |m: &PortMapping| {
            let hp = HostPort::of_mapping(m);
            let i = reserved.iter().position(|x| x.container == r.name && x.port == hp && x.socket.is_some())?;
            reserved.remove(i).socket
        };
        if let Err(e) = proxy.handover_held(&want, held) {
            let msg = format!("container {} cannot publish its new ports: {e}", r.name);
            if s.error.as_deref() != Some(msg.as_str()) {
                events.emit(Event::Warning { message: format!("{msg}; tried again until it can") });
                record_event(db, r, "publish_failed", &[("error", msg.clone().into())]);
                s.error = Some(msg);
            }
            return;
        }
        s.error = None;
        // Reservations of ports it served already are met too.
        self.reserved.retain(|x| x.container != r.name || !want.iter().any(|m| HostPort::of_mapping(m) == x.port));
        if s.rules {
            if let Some(nft) = self.nft.clone() {
                let rules: Vec<Rule> = r.published.iter().map(dnat).collect();
                let owner = port_owner(r.key());
                let applied = tokio::task::spawn_blocking(move || nft.apply(&owner, &rules)).await;
                if let Ok(Err(e)) = applied {
                    record_event(db, r, "publish_failed", &[("error", e.to_string().into())]);
                }
            }
        }
    }

    /// Binds `mappings` for `container`, taking what was reserved for it: all or nothing (what it
    /// had reserved stays reserved when another port fails).
    fn bind(
        &mut self,
        container: &str,
        mappings: &[PortMapping],
    ) -> Result<Vec<(PortMapping, HeldPort)>, Box<Unbindable>> {
        let reserved = |s: &Self, hp: &HostPort| {
            s.reserved.iter().position(|r| r.container == container && r.port == *hp && r.socket.is_some())
        };
        let mut fresh: Vec<Option<HeldPort>> = Vec::new();
        for m in mappings {
            let hp = HostPort::of_mapping(m);
            if reserved(self, &hp).is_some() {
                fresh.push(None);
                continue;
            }
            fresh.push(Some(hp.bind().map_err(|e| Box::new((hp, e)))?));
        }
        let mut held = Vec::new();
        for (m, f) in mappings.iter().zip(fresh) {
            let socket = match f {
                Some(s) => s,
                None => {
                    let i = reserved(self, &HostPort::of_mapping(m)).expect("checked above");
                    self.reserved.remove(i).socket.expect("checked above")
                }
            };
            held.push((*m, socket));
        }
        Ok(held)
    }

    /// Why `r` cannot publish `port`, naming who has it when berth knows.
    fn unavailable(&self, db: &StateDb, r: &ContainerRecord, port: &HostPort, e: &berth_network::Error) -> String {
        if !in_use(e) {
            return format!("container {} cannot publish {port}: {e}", r.name);
        }
        let who = self
            .reserved
            .iter()
            .find(|x| x.port.overlaps(port))
            .map(|x| format!("container {} (starting)", x.container))
            .or_else(|| self.serving(port).map(|n| format!("container {n}")))
            .or_else(|| holder_of(db, &r.project, port, &r.name))
            .unwrap_or_else(|| "another program".into());
        format!("container {} cannot publish {port}: it is in use by {who}", r.name)
    }

    /// Removes the DNAT rules of the container known by `key` (`name`); rules that stay are
    /// named in a warning.
    async fn withdraw_rules(&self, key: &str, name: &str, events: &dyn EventSink) {
        let Some(nft) = self.nft.clone() else { return };
        let owner = port_owner(key);
        let error = match tokio::task::spawn_blocking(move || nft.remove(&owner)).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        let message = format!("the port forwarding rules of container {name} were left in place: {error}");
        events.emit(Event::Warning { message });
    }

    /// Passes what is served for `from` to its start-first successor `to`: the proxy keeps its
    /// sockets and forwards to `to` from now on (ports only `to` publishes are taken from its
    /// reservations or bound, ports only `from` published close), `to`'s DNAT rules go in before `from`'s come out, and what was
    /// reserved for `to` is let go (the ports are its own now).
    pub async fn handover(
        &mut self,
        db: &StateDb,
        events: &dyn EventSink,
        from: &ContainerRecord,
        to: &ContainerRecord,
    ) -> anyhow::Result<()> {
        let mappings: Vec<PortMapping> = to.published.iter().map(|p| p.mapping()).collect();
        let Some(mut served) = self.served.remove(&from.id) else {
            // Nothing served for `from`: `to`'s ports are bound as any container's are.
            return Ok(());
        };
        if let Some(proxy) = served.proxy.as_mut() {
            // A port only `to` publishes was reserved for it by `up`: the proxy takes that socket.
            let reserved = &mut self.reserved;
            let held = |m: &PortMapping| {
                let hp = HostPort::of_mapping(m);
                let i = reserved.iter().position(|x| x.container == to.name && x.port == hp && x.socket.is_some())?;
                reserved.remove(i).socket
            };
            if let Err(e) = proxy.handover_held(&mappings, held) {
                let message = format!("container {} cannot take over the ports of {}: {e}", to.name, from.name);
                self.served.insert(from.id.clone(), served);
                anyhow::bail!(message);
            }
        }
        self.reserved.retain(|r| r.container != to.name);
        if served.rules {
            if let Some(nft) = self.nft.clone() {
                let rules: Vec<Rule> = to.published.iter().map(dnat).collect();
                let owner = port_owner(to.key());
                match tokio::task::spawn_blocking(move || nft.apply(&owner, &rules)).await {
                    Ok(Err(e)) => record_event(db, to, "publish_failed", &[("error", e.to_string().into())]),
                    Err(e) => record_event(db, to, "publish_failed", &[("error", e.to_string().into())]),
                    Ok(Ok(())) => {}
                }
            }
            self.withdraw_rules(&served.key, &served.name, events).await;
        }
        let next = Served {
            name: to.name.clone(),
            key: to.key().to_string(),
            started_at: to.started_at,
            proxy: served.proxy.take(),
            rules: served.rules,
            error: None,
        };
        self.served.insert(to.id.clone(), next);
        // What `from` forwarded to, to count its connections while it drains.
        self.drained.insert(from.id.clone(), from.published.iter().map(|p| p.container_ip).collect());
        Ok(())
    }

    /// Forgets the drained containers not in `ids` (gone since).
    pub fn keep_drained(&mut self, ids: &std::collections::BTreeSet<String>) {
        self.drained.retain(|id, _| ids.contains(id));
    }

    /// The connections the proxies still relay to container `id`, handed over to a successor.
    pub fn open_to(&self, id: &str) -> usize {
        let Some(ips) = self.drained.get(id) else { return 0 };
        let proxies = self.served.values().filter_map(|s| s.proxy.as_ref());
        proxies.map(|p| ips.iter().map(|ip| p.open_connections(*ip)).sum::<usize>()).sum()
    }

    /// Stops serving: proxies, DNAT rules, reservations.
    pub async fn close(&mut self, events: &dyn EventSink) {
        self.reserved.clear();
        let served: Vec<Served> = self.served.drain().map(|(_, s)| s).collect();
        for s in served {
            if let Some(p) = s.proxy {
                p.stop().await;
            }
            if s.rules {
                self.withdraw_rules(&s.key, &s.name, events).await;
            }
        }
    }
}

fn dnat(p: &Published) -> Rule {
    Rule::Dnat(PortRule {
        proto: p.mapping().proto,
        host_ip: Some(p.host_ip).filter(|h| !h.is_unspecified()),
        host_port: p.host_port,
        container_ip: p.container_ip,
        container_port: p.container_port,
    })
}

/// The nftables owner tag of a container's published ports.
pub fn port_owner(container: &str) -> String {
    format!("ports:{container}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(ip: &str, port: u16) -> HostPort {
        HostPort { proto: Proto::Tcp, ip: ip.parse().unwrap(), port }
    }

    #[test]
    fn ports_overlap_on_the_same_address_or_all_addresses() {
        assert!(hp("0.0.0.0", 80).overlaps(&hp("127.0.0.1", 80)));
        assert!(hp("127.0.0.1", 80).overlaps(&hp("127.0.0.1", 80)));
        assert!(!hp("127.0.0.1", 80).overlaps(&hp("127.0.0.2", 80)));
        assert!(!hp("0.0.0.0", 80).overlaps(&hp("0.0.0.0", 81)));
        assert!(!hp("0.0.0.0", 80).overlaps(&HostPort { proto: Proto::Udp, ..hp("0.0.0.0", 80) }));
        assert_eq!(hp("0.0.0.0", 8080).to_string(), "port 8080/tcp on 0.0.0.0");
    }

    #[test]
    fn ports_are_served_for_running_containers_that_publish() {
        use crate::state::Status;
        use crate::supervise::testing::record;
        let published = Published {
            index: 0,
            proto: berth_network::proxy::Proto::Tcp,
            host_ip: "0.0.0.0".parse().unwrap(),
            host_port: 8080,
            container_ip: "10.0.0.2".parse().unwrap(),
            container_port: 80,
        };
        let row = |name: &str, status: Status, started: i64| {
            let mut r = record(name, status);
            r.started_at = Some(started);
            r.published = vec![published];
            (r, SuperviseSpec::default())
        };
        let specs = [
            row("p-web-1", Status::Running, 1),
            row("p-web-2", Status::Running, 5),
            row("p-old-1", Status::Exited, 1),
            (record("p-plain-1", Status::Running), SuperviseSpec::default()),
        ];
        let serving: BTreeMap<String, Option<i64>> = [("id-p-web-1", 1), ("id-p-web-2", 3), ("id-p-old-1", 1)]
            .into_iter()
            .map(|(id, s)| (id.to_string(), Some(s)))
            .collect();
        let p = plan(&serving, &specs);
        assert_eq!(p.serve, ["id-p-web-1", "id-p-web-2"]);
        // Gone, and started again since (its proxy is made anew).
        assert_eq!(p.stop, ["id-p-old-1", "id-p-web-2"]);
        assert_eq!(plan(&BTreeMap::new(), &[]), Plan::default());
    }

    #[test]
    fn a_reservation_holds_the_port_for_one_container_until_released() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut ports = Ports::new(None);
            let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let port = hp("127.0.0.1", free);
            let me = std::process::id() as i32;
            ports.reserve("p-web-1", me, &[], &[port]).unwrap();
            assert!(port.bind().is_err(), "held by the reservation");
            // Asking again for the same container is no conflict; another container is told who.
            ports.reserve("p-web-1", me, &[], &[port]).unwrap();
            let err = ports.reserve("p-api-1", me, &[], &[hp("0.0.0.0", free)]).unwrap_err();
            assert_eq!(err.holder.as_deref(), Some("p-web-1"), "{err:?}");
            // A port taken outside the project: no holder known here, but in use.
            let outside = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let taken = hp("127.0.0.1", outside.local_addr().unwrap().port());
            let err = ports.reserve("p-db-1", me, &[], &[taken]).unwrap_err();
            assert_eq!((err.holder, err.in_use), (None, true), "{}", err.error);
            assert_eq!(ports.status().1.len(), 1);
            ports.release(me);
            assert!(ports.status().1.is_empty());
            assert!(port.bind().is_ok(), "free once released");
        });
    }

    /// A running row of project `p` publishing TCP `port` on 127.0.0.1 (to 127.0.0.1:9, never
    /// connected to here).
    fn publishing(name: &str, port: u16, started: i64) -> (ContainerRecord, SuperviseSpec) {
        let mut r = crate::supervise::testing::record(name, crate::state::Status::Running);
        r.started_at = Some(started);
        r.published = vec![Published {
            index: 0,
            proto: Proto::Tcp,
            host_ip: "127.0.0.1".parse().unwrap(),
            host_port: port,
            container_ip: "127.0.0.1".parse().unwrap(),
            container_port: 9,
        }];
        (r, SuperviseSpec::default())
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// A runtime, a state database in a temporary directory, and an event sink.
    fn fixture() -> (tokio::runtime::Runtime, tempfile::TempDir, StateDb, Arc<dyn EventSink>) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        (rt, dir, db, Arc::new(crate::events::Recorder::default()))
    }

    #[test]
    fn a_running_container_gets_its_port_and_an_exited_one_lets_it_go() {
        let (rt, _dir, db, events) = fixture();
        rt.block_on(async {
            let mut ports = Ports::new(None);
            let free = free_port();
            let mut web = publishing("p-web-1", free, 1);
            // Reserved by `up` before the start, then handed over to the container's proxy.
            let me = std::process::id() as i32;
            ports.reserve("p-web-1", me, &[], &[hp("127.0.0.1", free)]).unwrap();
            ports.reconcile(&db, &events, &[web.clone()]).await;
            let (served, reserved) = ports.status();
            assert_eq!(served.iter().map(|e| e.container.as_str()).collect::<Vec<_>>(), ["p-web-1"]);
            assert!(reserved.is_empty(), "the reservation went to the container");
            assert!(hp("127.0.0.1", free).bind().is_err(), "the port is held");

            web.0.status = crate::state::Status::Exited;
            ports.reconcile(&db, &events, &[web]).await;
            assert!(ports.status().0.is_empty());
            assert!(hp("127.0.0.1", free).bind().is_ok(), "free once it exited");
            ports.close(events.as_ref()).await;
        });
    }

    #[test]
    fn a_port_taken_by_another_container_is_published_once_it_is_free() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        let recorder = Arc::new(crate::events::Recorder::default());
        let events: Arc<dyn EventSink> = recorder.clone();
        rt.block_on(async {
            let mut ports = Ports::new(None);
            let free = free_port();
            let (mut old, new) = (publishing("p-old-1", free, 1), publishing("p-new-1", free, 2));
            db.insert_container(&old.0).unwrap();
            db.insert_container(&new.0).unwrap();
            ports.reconcile(&db, &events, &[old.clone(), new.clone()]).await;
            let served: Vec<String> = ports.status().0.into_iter().map(|e| e.container).collect();
            assert_eq!(served, ["p-old-1"], "the first row has it");
            let failed = db.events_after("p", 0).unwrap();
            assert!(failed.iter().any(|e| e.action == "publish_failed" && e.name == "p-new-1"), "{failed:?}");
            // The second pass says nothing new about the same failure.
            ports.reconcile(&db, &events, &[old.clone(), new.clone()]).await;
            assert_eq!(db.events_after("p", 0).unwrap().len(), failed.len());

            old.0.status = crate::state::Status::Exited;
            ports.reconcile(&db, &events, &[old, new]).await;
            let served: Vec<String> = ports.status().0.into_iter().map(|e| e.container).collect();
            assert_eq!(served, ["p-new-1"]);
            let said = format!("{:?}", recorder.events());
            assert!(said.contains("container p-new-1 publishes port"), "{said}");
            ports.close(events.as_ref()).await;
        });
    }

    #[test]
    fn ports_changed_while_a_container_runs_are_republished_on_the_same_proxy() {
        let (rt, _dir, db, events) = fixture();
        rt.block_on(async {
            let mut ports = Ports::new(None);
            let (kept, gone, added) = (free_port(), free_port(), free_port());
            let mut web = publishing("p-web-1", kept, 1);
            let second = Published { index: 1, host_port: gone, ..web.0.published[0] };
            web.0.published.push(second);
            ports.reconcile(&db, &events, &[web.clone()]).await;
            let listener = |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            assert!(listener(kept) && listener(gone));
            // `up` reserved the new port; the row now publishes `kept` and `added`.
            let me = std::process::id() as i32;
            ports.reserve("p-web-1", me, &[], &[hp("127.0.0.1", kept), hp("127.0.0.1", added)]).unwrap();
            web.0.published[1].host_port = added;
            ports.reconcile(&db, &events, &[web.clone()]).await;
            // The aborted accept task lets go of its socket when the runtime next runs.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let served: Vec<u16> = ports.status().0.iter().map(|e| e.port.port).collect();
            assert_eq!(served.len(), 2);
            assert!(served.contains(&kept) && served.contains(&added), "{served:?}");
            assert!(listener(added), "the new port is served");
            assert!(!listener(gone), "the port given up is closed");
            assert!(ports.status().1.is_empty(), "the reservation went to the proxy");
            ports.close(events.as_ref()).await;
        });
    }

    #[test]
    fn a_successor_takes_over_the_ports_and_the_new_one_reserved_for_it() {
        let (rt, _dir, db, events) = fixture();
        rt.block_on(async {
            let mut ports = Ports::new(None);
            let (kept, added) = (free_port(), free_port());
            let old = publishing("p-web-1", kept, 1);
            ports.reconcile(&db, &events, std::slice::from_ref(&old)).await;
            // `up` reserved the successor's ports: `kept` passes from the old one, `added` is bound.
            let me = std::process::id() as i32;
            let wanted = [hp("127.0.0.1", kept), hp("127.0.0.1", added)];
            ports.reserve("p-web-1-next", me, &["p-web-1".into()], &wanted).unwrap();
            let mut next = publishing("p-web-1-next", kept, 2);
            next.0.published.push(Published { index: 1, host_port: added, ..next.0.published[0] });
            ports.handover(&db, events.as_ref(), &old.0, &next.0).await.expect("handed over");
            let served: Vec<(String, u16)> = ports.status().0.into_iter().map(|e| (e.container, e.port.port)).collect();
            assert_eq!(served.len(), 2, "{served:?}");
            assert!(served.iter().all(|(c, _)| c == "p-web-1-next"), "{served:?}");
            assert!(ports.status().1.is_empty(), "the reservations went to the proxy");
            assert!(std::net::TcpStream::connect(("127.0.0.1", added)).is_ok(), "the new port is served");
            ports.close(events.as_ref()).await;
        });
    }
}
