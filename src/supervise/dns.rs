//! The supervisor's DNS service: a server on every gateway address the project's containers point
//! their resolvers at, answering the names of the containers that run and are not unhealthy, to
//! the project's containers only (each known as an asker from the moment it is created).
//!
//! What it should serve is decided from the state rows alone ([`wanted`], pure); every pass
//! brings the server in line with that: a new listening set restarts the server, a new set of
//! entries swaps its table.

use std::net::{IpAddr, SocketAddr};

use berth_network::dns::{DnsConfig, DnsContainer, DnsServer, DnsTable};

use super::spec::SuperviseSpec;
use crate::events::{Event, EventSink};
use crate::state::{ContainerRecord, Status};

/// What the DNS server should serve, given the rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Where it listens: every gateway of the project's containers, sorted, once each.
    pub listen: Vec<IpAddr>,
    /// The containers whose names it answers.
    pub answering: Vec<DnsContainer>,
    /// The containers that may ask but whose names it does not answer (not running, or
    /// unhealthy).
    pub asking: Vec<DnsContainer>,
}

/// What the DNS server should serve for `specs`; `unhealthy` says which containers (by id) failed
/// their health check.
pub fn wanted(specs: &[(ContainerRecord, SuperviseSpec)], unhealthy: impl Fn(&str) -> bool) -> Wanted {
    let mut listen: Vec<IpAddr> = specs.iter().flat_map(|(_, s)| s.gateways.iter().copied()).collect();
    listen.sort();
    listen.dedup();
    let answers = |r: &ContainerRecord| r.status == Status::Running && !unhealthy(&r.id);
    let entries = |answer: bool| -> Vec<DnsContainer> {
        specs
            .iter()
            .filter(|(r, _)| answers(r) == answer)
            .filter_map(|(r, s)| s.dns.as_ref().map(|d| d.to_container(&r.name)))
            .collect()
    };
    Wanted { listen, answering: entries(true), asking: entries(false) }
}

/// The DNS server of one project.
pub struct Names {
    /// The host's resolvers, for names that are not the project's.
    upstreams: Vec<SocketAddr>,
    /// The server and where it listens.
    server: Option<(Vec<IpAddr>, DnsServer)>,
    /// What its table was built from.
    served: Wanted,
    /// Why it could not start (said once per distinct reason).
    error: Option<String>,
}

impl Names {
    /// Serving nothing yet; other names go to `upstreams`.
    pub fn new(upstreams: Vec<SocketAddr>) -> Names {
        Names { upstreams, server: None, served: Wanted::default(), error: None }
    }

    /// Serves `wanted`: (re)starts the server where its addresses changed, else swaps its table
    /// when its entries changed. A server that cannot start is tried again on the next pass.
    pub async fn reconcile(&mut self, events: &dyn EventSink, wanted: Wanted) {
        let table = |w: &Wanted| DnsTable::build_scoped(&w.answering, &w.asking);
        let same_listen = self.server.as_ref().is_some_and(|(l, _)| *l == wanted.listen);
        if !same_listen {
            if let Some((_, old)) = self.server.take() {
                old.stop().await;
            }
            if !wanted.listen.is_empty() {
                let config = DnsConfig::new(wanted.listen.clone(), self.upstreams.clone());
                match DnsServer::start(config, table(&wanted)).await {
                    Ok(s) => self.server = Some((wanted.listen.clone(), s)),
                    Err(e) => {
                        let msg = e.to_string();
                        if self.error.as_deref() != Some(msg.as_str()) {
                            events.emit(Event::Warning { message: format!("cannot serve DNS: {msg}") });
                            self.error = Some(msg);
                        }
                    }
                }
                self.served = wanted;
                return;
            }
        }
        if (&wanted.answering, &wanted.asking) != (&self.served.answering, &self.served.asking) {
            if let Some((_, s)) = &self.server {
                s.set_table(table(&wanted));
            }
            self.served = wanted;
        }
    }

    /// Where the server listens.
    pub fn listening(&self) -> Vec<SocketAddr> {
        self.server.as_ref().map(|(_, s)| s.local_addrs().to_vec()).unwrap_or_default()
    }

    /// The containers whose names it answers.
    pub fn names(&self) -> Vec<String> {
        self.served.answering.iter().map(|d| d.name.clone()).collect()
    }

    /// Stops the server.
    pub async fn close(&mut self) {
        if let Some((_, s)) = self.server.take() {
            s.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::spec::DnsSpec;

    fn row(name: &str, status: Status, gateway: &str) -> (ContainerRecord, SuperviseSpec) {
        let r = crate::supervise::testing::record(name, status);
        let dns = DnsSpec {
            service: "web".into(),
            endpoints: vec![("default".into(), vec!["10.0.0.2".parse().unwrap()], vec![], false)],
            ..Default::default()
        };
        let spec = SuperviseSpec { dns: Some(dns), gateways: vec![gateway.parse().unwrap()], ..Default::default() };
        (r, spec)
    }

    #[test]
    fn running_healthy_containers_answer_and_every_container_may_ask() {
        let specs = [
            row("p-web-1", Status::Running, "10.0.0.1"),
            row("p-web-2", Status::Running, "10.0.1.1"),
            row("p-db-1", Status::Exited, "10.0.0.1"),
            row("p-api-1", Status::Created, "10.0.0.1"),
        ];
        let w = wanted(&specs, |id| id == "id-p-web-2");
        let names = |v: &[DnsContainer]| v.iter().map(|d| d.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&w.answering), ["p-web-1"]);
        assert_eq!(names(&w.asking), ["p-web-2", "p-db-1", "p-api-1"]);
        let listen: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.1.1".parse().unwrap()];
        assert_eq!(w.listen, listen, "each gateway once, sorted");
        // A container on no berth network has no entry, and its gateways none either.
        let mut none = row("p-solo-1", Status::Running, "10.0.0.1");
        none.1 = SuperviseSpec::default();
        assert_eq!(wanted(&[none], |_| false), Wanted::default());
    }
}
