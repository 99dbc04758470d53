//! The project supervisor (`berth __supervise PROJECT`): one process per project that keeps the
//! running stack as `up` left it. It serves the DNS server on the project's bridge gateways, the
//! userland proxy and nftables DNAT rules of published ports, runs health checks and applies
//! restart policies.
//!
//! It holds no state of its own worth keeping: every pass reads the project's containers from the
//! state database (each carries its [`SuperviseSpec`]) and brings the served names, ports and
//! probes in line with them. So it adopts whatever runs when it starts (after a crash, a reboot,
//! or a new `up`), and the containers, their monitors and logs never depend on it. Exits that
//! happened before it started are not restarted: `up` starts those.
//!
//! Commands reach it over a Unix socket (mode 0600) in the run directory, one JSON request per
//! connection: `refresh` (a pass now, answered when done: `up` asks after each container start so
//! a dependent started next already resolves its dependency), `status`, `shutdown`. It exits by
//! itself once the project has no containers left.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_network::dns::{DnsConfig, DnsContainer, DnsServer, DnsTable};
use berth_network::nat::{Firewall, Nft, PortRule, Rule};
use berth_network::proxy::PortProxy;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::client::{dir, lock_path, socket_path};
use super::health::{Health, Monitor, Probe};
use super::probe::Outcome;
use super::restart::{Decision, Ending, Restarter};
use super::spec::SuperviseSpec;
use crate::container::{self, record_event, Roots, StartMode};
use crate::events::{Event, EventSink};
use crate::state::{ContainerRecord, StateDb, Status};

/// How often the supervisor looks at the database without being asked.
pub const TICK: Duration = Duration::from_millis(250);

/// How long a new supervisor waits for the project's first container before it gives up.
pub const STARTUP_GRACE: Duration = Duration::from_secs(60);

/// Runs the supervisor of `project` until the project has no containers or it is told to stop.
/// Returns at once when another supervisor of the project runs.
pub fn main(roots: Roots, project: String, events: Arc<dyn EventSink>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir(&roots))?;
    let lock =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(lock_path(&roots, &project))?;
    let lock = match nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err(_) => return Ok(()),
    };
    let socket = socket_path(&roots, &project);
    let _ = std::fs::remove_file(&socket);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let result = rt.block_on(async {
        let listener = tokio::net::UnixListener::bind(&socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
        let mut sup = Supervisor::new(roots.clone(), project.clone(), events)?;
        let r = sup.serve(listener).await;
        sup.close().await;
        r
    });
    let _ = std::fs::remove_file(&socket);
    drop(lock);
    result
}

/// What a health probe task reports.
struct HealthReport {
    id: String,
    started_at: Option<i64>,
    health: Health,
    failures: u32,
    changed: bool,
    /// Why the probe failed (Docker's health log output).
    output: Option<String>,
}

struct Published {
    started_at: Option<i64>,
    proxy: Option<PortProxy>,
}

struct Supervisor {
    /// Where its diagnostics go (its log file).
    events: Arc<dyn EventSink>,
    roots: Roots,
    project: String,
    db: StateDb,
    nft: Option<Nft>,
    upstreams: Vec<SocketAddr>,
    dns: Option<(Vec<IpAddr>, DnsServer)>,
    /// The containers in the table, answering ones first, and how many answer.
    dns_entries: Vec<DnsContainer>,
    dns_answering: usize,
    dns_error: Option<String>,
    published: HashMap<String, Published>,
    probes: HashMap<String, (Option<i64>, tokio::task::JoinHandle<()>)>,
    health: HashMap<String, Health>,
    restarters: HashMap<String, Restarter>,
    /// The latest exit handled per container (unix ms); exits before the supervisor started count
    /// as handled.
    handled: HashMap<String, i64>,
    pending: HashMap<String, (Instant, String)>,
    born: i64,
    epoch: Instant,
    empty_ticks: u32,
    seen_any: bool,
    tx: mpsc::UnboundedSender<HealthReport>,
    rx: mpsc::UnboundedReceiver<HealthReport>,
}

impl Supervisor {
    fn new(roots: Roots, project: String, events: Arc<dyn EventSink>) -> anyhow::Result<Supervisor> {
        let db = StateDb::open(&roots.root)?;
        let nft = Nft::available().then(|| Nft::new(crate::stack::engine::firewall_table(&roots.root)));
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let (tx, rx) = mpsc::unbounded_channel();
        Ok(Supervisor {
            events,
            roots,
            project,
            db,
            nft,
            upstreams: berth_network::files::dns_upstreams(&resolv),
            dns: None,
            dns_entries: Vec::new(),
            dns_answering: 0,
            dns_error: None,
            published: HashMap::new(),
            probes: HashMap::new(),
            health: HashMap::new(),
            restarters: HashMap::new(),
            handled: HashMap::new(),
            pending: HashMap::new(),
            born: crate::state::now_millis(),
            epoch: Instant::now(),
            empty_ticks: 0,
            seen_any: false,
            tx,
            rx,
        })
    }

    async fn serve(&mut self, listener: tokio::net::UnixListener) -> anyhow::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = term.recv() => return Ok(()),
                _ = tick.tick() => {
                    if self.pass().await? {
                        return Ok(());
                    }
                }
                Some(report) = self.rx.recv() => self.on_health(report).await,
                Ok((conn, _)) = listener.accept() => {
                    if self.answer(conn).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Answers one request; true when told to stop.
    async fn answer(&mut self, conn: tokio::net::UnixStream) -> bool {
        let (r, mut w) = conn.into_split();
        let mut line = String::new();
        let read =
            tokio::time::timeout(Duration::from_secs(2), tokio::io::BufReader::new(r).read_line(&mut line)).await;
        if !matches!(read, Ok(Ok(_))) {
            return false;
        }
        let op = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(String::from))
            .unwrap_or_default();
        let (reply, stop) = match op.as_str() {
            "refresh" => match self.pass().await {
                Ok(_) => (json!({"ok": true}), false),
                Err(e) => (json!({"error": format!("{e:#}")}), false),
            },
            "status" => (self.status(), false),
            "shutdown" => (json!({"ok": true}), true),
            other => (json!({"error": format!("unknown request {other:?}")}), false),
        };
        let _ = w.write_all(format!("{reply}\n").as_bytes()).await;
        stop
    }

    fn status(&self) -> serde_json::Value {
        let ports: Vec<serde_json::Value> = self
            .published
            .iter()
            .flat_map(|(id, p)| {
                p.proxy.iter().flat_map(move |proxy| {
                    proxy.bound().iter().map(move |m| {
                        json!({"container": id, "proto": m.proto.as_str(), "host": SocketAddr::new(m.host_ip, m.host_port).to_string(),
                               "target": SocketAddr::new(m.container_ip, m.container_port).to_string()})
                    })
                })
            })
            .collect();
        let health: BTreeMap<&String, &str> = self.health.iter().map(|(k, h)| (k, h.as_str())).collect();
        json!({
            "pid": std::process::id(),
            "project": self.project,
            "dns": self.dns.as_ref().map(|(_, s)| s.local_addrs().iter().map(|a| a.to_string()).collect::<Vec<_>>()).unwrap_or_default(),
            "names": self.dns_entries[..self.dns_answering].iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
            "ports": ports,
            "health": health,
            "pending_restarts": self.pending.keys().collect::<Vec<_>>(),
        })
    }

    /// One pass over the project's containers; true when the project is gone.
    async fn pass(&mut self) -> anyhow::Result<bool> {
        let rows = self.db.containers(&self.project)?;
        let mut rows: Vec<ContainerRecord> =
            rows.into_iter().map(|r| container::refresh(&self.roots, &self.db, &r).unwrap_or(r)).collect();
        rows.retain(|r| !r.oneoff);
        if rows.is_empty() {
            self.empty_ticks += 1;
            // Twice in a row (`up` may be between removing a container and creating its
            // successor), and not while the `up` that started it may still be making networks.
            let young = self.epoch.elapsed() < STARTUP_GRACE && !self.seen_any;
            if self.empty_ticks >= 2 && !young {
                return Ok(true);
            }
        } else {
            self.empty_ticks = 0;
            self.seen_any = true;
        }
        let specs: Vec<(ContainerRecord, SuperviseSpec)> =
            rows.into_iter().filter_map(|r| SuperviseSpec::of(&r.config).map(|s| (r, s))).collect();
        self.exits(&specs);
        self.fire_restarts(&specs).await;
        self.probe(&specs).await;
        self.publish(&specs).await;
        self.serve_names(&specs).await;
        Ok(false)
    }

    /// Notices runs that ended and applies restart policies.
    fn exits(&mut self, specs: &[(ContainerRecord, SuperviseSpec)]) {
        let now = self.epoch.elapsed();
        for (r, spec) in specs {
            if !matches!(r.status, Status::Exited | Status::Dead) {
                continue;
            }
            let Some(finished) = r.finished_at else { continue };
            let last = *self.handled.get(&r.id).unwrap_or(&self.born);
            if finished <= last {
                continue;
            }
            self.handled.insert(r.id.clone(), finished);
            let sup = self.db.supervision(&r.id).unwrap_or_default();
            let code = r.exit_code.unwrap_or(255);
            let ending = if sup.stop_requested { Ending::StoppedByUser } else { Ending::Exited(code) };
            let ran = Duration::from_millis(finished.saturating_sub(r.started_at.unwrap_or(finished)) as u64);
            let restarter = self.restarters.entry(r.id.clone()).or_insert_with(|| Restarter::new(spec.restart));
            match restarter.on_end(ending, ran, now) {
                Decision::Stay => {}
                Decision::Restart { after, .. } => {
                    let reason =
                        if r.oom_killed { "OOM-killed".to_string() } else { format!("exited with code {code}") };
                    self.pending.insert(r.id.clone(), (Instant::now() + after, reason));
                }
                Decision::GiveUp { count } => {
                    record_event(&self.db, r, "restart_give_up", &[("restarts", count.into())]);
                }
            }
        }
    }

    async fn fire_restarts(&mut self, specs: &[(ContainerRecord, SuperviseSpec)]) {
        let due: Vec<(String, String)> = self
            .pending
            .iter()
            .filter(|(_, (at, _))| *at <= Instant::now())
            .map(|(id, (_, why))| (id.clone(), why.clone()))
            .collect();
        for (id, why) in due {
            self.pending.remove(&id);
            let Some((r, _)) = specs.iter().find(|(r, _)| r.id == id) else { continue };
            if self.db.supervision(&id).unwrap_or_default().stop_requested || r.status.is_alive() {
                continue;
            }
            self.restart(r.clone(), why, false).await;
        }
    }

    /// Restarts a container on a policy's behalf (`running`: stop it first).
    /// Runs in the background: a stop grace period must not keep the supervisor from answering.
    async fn restart(&mut self, r: ContainerRecord, why: String, running: bool) {
        let roots = self.roots.clone();
        let job = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let db = StateDb::open(&roots.root)?;
            if running {
                container::restart(&roots, &db, &r, None)?;
            } else {
                container::start(&roots, &db, &r, StartMode::Detached)?;
                db.count_restart(&r.id)?;
                record_event(&db, &r, "restart", &[("reason", why.clone().into())]);
            }
            db.set_restart_reason(&r.id, &why)?;
            Ok(())
        });
        let events = self.events.clone();
        tokio::spawn(async move {
            if let Ok(Err(e)) | Err(e) = job.await.map_err(anyhow::Error::from) {
                events.emit(Event::Warning { message: format!("restart failed: {e:#}") });
            }
        });
    }

    /// Keeps one probe task per running container with a health check.
    async fn probe(&mut self, specs: &[(ContainerRecord, SuperviseSpec)]) {
        let mut live = Vec::new();
        for (r, spec) in specs {
            let Some(check) = spec.health.clone() else { continue };
            if r.status != Status::Running {
                continue;
            }
            live.push(r.id.clone());
            if self.probes.get(&r.id).is_some_and(|(s, _)| *s == r.started_at) {
                continue;
            }
            if let Some((_, old)) = self.probes.remove(&r.id) {
                old.abort();
            }
            let _ = self.db.set_health(&r.id, Some(Health::Starting.as_str()), 0);
            self.health.insert(r.id.clone(), Health::Starting);
            let task = tokio::spawn(probe_loop(self.roots.clone(), r.clone(), check, self.tx.clone()));
            self.probes.insert(r.id.clone(), (r.started_at, task));
        }
        let gone: Vec<String> = self.probes.keys().filter(|id| !live.contains(id)).cloned().collect();
        for id in gone {
            if let Some((_, t)) = self.probes.remove(&id) {
                t.abort();
            }
            self.health.remove(&id);
        }
    }

    async fn on_health(&mut self, report: HealthReport) {
        let current = self.probes.get(&report.id).is_some_and(|(s, _)| *s == report.started_at);
        if !current {
            return;
        }
        let _ = self.db.set_health(&report.id, Some(report.health.as_str()), report.failures);
        self.health.insert(report.id.clone(), report.health);
        if !report.changed {
            return;
        }
        let Ok(Some(r)) = self.db.container(&report.id) else { return };
        let output: Vec<(&str, serde_json::Value)> = match (&report.output, report.health) {
            (Some(o), Health::Unhealthy) => vec![("output", o.clone().into())],
            _ => Vec::new(),
        };
        record_event(&self.db, &r, &format!("health_status: {}", report.health.as_str()), &output);
        let spec = SuperviseSpec::of(&r.config).unwrap_or_default();
        if report.health == Health::Unhealthy && spec.restart_on_unhealthy {
            let now = self.epoch.elapsed();
            let ran = Duration::from_millis(
                crate::state::now_millis().saturating_sub(r.started_at.unwrap_or_default()).max(0) as u64,
            );
            let restarter = self.restarters.entry(r.id.clone()).or_insert_with(|| Restarter::new(spec.restart));
            if let Decision::Restart { .. } = restarter.on_end(Ending::Unhealthy, ran, now) {
                if let Some((_, t)) = self.probes.remove(&r.id) {
                    t.abort();
                }
                self.restart(r, "unhealthy".into(), true).await;
            }
        }
        // Names follow health: an unhealthy container stops resolving.
        let rows = self.db.containers(&self.project).unwrap_or_default();
        let specs: Vec<(ContainerRecord, SuperviseSpec)> =
            rows.into_iter().filter_map(|r| SuperviseSpec::of(&r.config).map(|s| (r, s))).collect();
        self.serve_names(&specs).await;
    }

    /// Publishes the ports of running containers (proxy and DNAT) and withdraws the others'.
    async fn publish(&mut self, specs: &[(ContainerRecord, SuperviseSpec)]) {
        let mut live = Vec::new();
        for (r, spec) in specs {
            if spec.publish.is_empty() || !r.status.is_alive() {
                continue;
            }
            live.push(r.id.clone());
            if self.published.get(&r.id).is_some_and(|p| p.started_at == r.started_at) {
                continue;
            }
            if let Some(old) = self.published.remove(&r.id) {
                if let Some(p) = old.proxy {
                    p.stop().await;
                }
            }
            let mappings: Vec<_> = spec.publish.iter().map(|p| p.mapping()).collect();
            let proxy = match PortProxy::start(&mappings).await {
                Ok(p) => Some(p),
                Err(e) => {
                    record_event(&self.db, r, "publish_failed", &[("error", e.to_string().into())]);
                    None
                }
            };
            if let Some(nft) = self.nft.clone() {
                let rules: Vec<Rule> = spec
                    .publish
                    .iter()
                    .map(|p| {
                        Rule::Dnat(PortRule {
                            proto: p.mapping().proto,
                            host_ip: Some(p.host_ip).filter(|h| !h.is_unspecified()),
                            host_port: p.host_port,
                            container_ip: p.container_ip,
                            container_port: p.container_port,
                        })
                    })
                    .collect();
                let owner = port_owner(&r.name);
                let applied = tokio::task::spawn_blocking(move || nft.apply(&owner, &rules)).await;
                if let Ok(Err(e)) = applied {
                    record_event(&self.db, r, "publish_failed", &[("error", e.to_string().into())]);
                }
            }
            self.published.insert(r.id.clone(), Published { started_at: r.started_at, proxy });
        }
        let gone: Vec<String> = self.published.keys().filter(|id| !live.contains(id)).cloned().collect();
        for id in gone {
            if let Some(p) = self.published.remove(&id) {
                if let Some(proxy) = p.proxy {
                    proxy.stop().await;
                }
            }
            let name = specs.iter().find(|(r, _)| r.id == id).map(|(r, _)| r.name.clone());
            self.withdraw_rules(name).await;
        }
    }

    async fn withdraw_rules(&self, name: Option<String>) {
        let (Some(nft), Some(name)) = (self.nft.clone(), name) else { return };
        let _ = tokio::task::spawn_blocking(move || nft.remove(&port_owner(&name))).await;
    }

    /// Serves names of running containers that are not unhealthy, on every gateway the project's
    /// containers point their resolvers at.
    async fn serve_names(&mut self, specs: &[(ContainerRecord, SuperviseSpec)]) {
        let mut listen: Vec<IpAddr> = specs.iter().flat_map(|(_, s)| s.gateways.iter().copied()).collect();
        listen.sort();
        listen.dedup();
        let answers =
            |r: &ContainerRecord| r.status == Status::Running && self.health.get(&r.id) != Some(&Health::Unhealthy);
        let entries: Vec<DnsContainer> = specs
            .iter()
            .filter(|(r, _)| answers(r))
            .filter_map(|(r, s)| s.dns.as_ref().map(|d| d.to_container(&r.name)))
            .collect();
        let asking: Vec<DnsContainer> = specs
            .iter()
            .filter(|(r, _)| !answers(r))
            .filter_map(|(r, s)| s.dns.as_ref().map(|d| d.to_container(&r.name)))
            .collect();
        let table = || DnsTable::build_scoped(&entries, &asking);
        let same_listen = self.dns.as_ref().is_some_and(|(l, _)| *l == listen);
        if !same_listen {
            if let Some((_, old)) = self.dns.take() {
                old.stop().await;
            }
            if !listen.is_empty() {
                let config = DnsConfig::new(listen.clone(), self.upstreams.clone());
                match DnsServer::start(config, table()).await {
                    Ok(s) => self.dns = Some((listen, s)),
                    Err(e) => {
                        // Tried again on every pass; said once per distinct failure.
                        let msg = e.to_string();
                        if self.dns_error.as_deref() != Some(msg.as_str()) {
                            self.events.emit(Event::Warning { message: format!("cannot serve DNS: {msg}") });
                            self.dns_error = Some(msg);
                        }
                    }
                }
                self.dns_answering = entries.len();
                self.dns_entries = entries.iter().chain(&asking).cloned().collect();
                return;
            }
        }
        let key: Vec<DnsContainer> = entries.iter().chain(&asking).cloned().collect();
        if key != self.dns_entries || entries.len() != self.dns_answering {
            if let Some((_, s)) = &self.dns {
                s.set_table(table());
            }
            self.dns_entries = key;
            self.dns_answering = entries.len();
        }
    }

    /// Stops serving: probes, proxies, DNAT rules and the DNS server.
    async fn close(&mut self) {
        for (_, (_, t)) in self.probes.drain() {
            t.abort();
        }
        let names: Vec<String> = self
            .db
            .containers(&self.project)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| self.published.contains_key(&r.id))
            .map(|r| r.name)
            .collect();
        for (_, p) in self.published.drain() {
            if let Some(proxy) = p.proxy {
                proxy.stop().await;
            }
        }
        for n in names {
            self.withdraw_rules(Some(n)).await;
        }
        if let Some((_, s)) = self.dns.take() {
            s.stop().await;
        }
    }
}

/// The nftables owner tag of a container's published ports.
pub fn port_owner(container: &str) -> String {
    format!("ports:{container}")
}

async fn probe_loop(
    roots: Roots,
    rec: ContainerRecord,
    check: super::health::Check,
    tx: mpsc::UnboundedSender<HealthReport>,
) {
    let started = Instant::now();
    let mut monitor = Monitor::new(check.clone(), Duration::ZERO);
    let command = check.command();
    loop {
        tokio::time::sleep(monitor.next_delay()).await;
        let (roots, rec2, command, timeout) = (roots.clone(), rec.clone(), command.clone(), check.timeout);
        // The probe keeps its own timeout: it kills what it started once the timeout passes
        // (a timer around a blocking task could only stop waiting for it).
        let run = tokio::task::spawn_blocking(move || super::probe::run(&roots, &rec2, &command, timeout));
        let (probe, output) = match run.await {
            Ok(Outcome::Pass) => (Probe::Pass, None),
            Ok(Outcome::Fail(why)) => (Probe::Fail, Some(why)),
            Ok(Outcome::Timeout(why)) => (Probe::Timeout, Some(why)),
            Err(e) => (Probe::Fail, Some(e.to_string())),
        };
        let changed = monitor.record(probe, started.elapsed()).is_some();
        let report = HealthReport {
            id: rec.id.clone(),
            started_at: rec.started_at,
            health: monitor.health(),
            failures: monitor.failures(),
            changed,
            output,
        };
        if tx.send(report).is_err() {
            return;
        }
    }
}
