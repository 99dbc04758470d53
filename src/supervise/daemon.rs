//! The project supervisor (`berth __supervise PROJECT`): one process per project that keeps the
//! running stack as `up` left it. It serves the DNS server on the project's bridge gateways, the
//! userland proxy and nftables DNAT rules of published ports, runs health checks and applies
//! restart policies.
//!
//! It holds no state of its own worth keeping: every pass reads the project's containers from the
//! state database (each carries its [`SuperviseSpec`]) and brings the served names, ports and
//! probes in line with them. So it adopts whatever runs when it starts (after a crash, a reboot,
//! or a new `up`), and the containers, their monitors and logs never depend on it.
//!
//! It holds a lock (`$BERTH_RUN/supervisors/PROJECT.lock`, naming its pid) for life, and sets the
//! lock file's time at every pass. One that was killed is started again by the monitor of a
//! running container of the project (within [`REVIVE_EVERY`], or when that container exits), or
//! by the next `up`; the new one handles the exits that happened after its predecessor's last
//! pass (so a restart policy is not lost), not older ones: `up` starts those.
//!
//! Commands reach it over a Unix socket (mode 0600) in the run directory, one JSON request per
//! connection: `refresh` (a pass now, answered when done: `up` asks after each container start so
//! a dependent started next already resolves its dependency), `reserve` and `release` (host ports
//! `up` holds for containers it is about to start, see [`super::ports`]), `status`, `shutdown`.
//! It exits by itself once the project has no containers left.
//!
//! [`REVIVE_EVERY`]: super::client::REVIVE_EVERY

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use berth_network::dns::{DnsConfig, DnsContainer, DnsServer, DnsTable};
use berth_network::nat::Nft;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::client::{dir, lock_path, socket_path};
use super::health::{Health, Monitor, Probe};
use super::ports::{HostPort, Ports};
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
    let path = lock_path(&roots, &project);
    let mut file = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path)?;
    // Other processes probe the lock (a shared lock for an instant): only a lock held for a
    // while is another supervisor.
    let deadline = Instant::now() + LOCK_WAIT;
    let lock = loop {
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(l) => break l,
            Err((f, _)) if Instant::now() < deadline => {
                file = f;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => return Ok(()),
        }
    };
    // The previous supervisor's last pass (the file's time), if there was one: exits since then
    // were seen by nobody, and are this one's to handle.
    let previous = std::fs::read_to_string(&path).is_ok_and(|s| !s.trim().is_empty());
    let last_pass = lock.metadata().and_then(|m| m.modified()).ok().and_then(millis).filter(|_| previous);
    lock.set_len(0)?;
    (&*lock).write_all(std::process::id().to_string().as_bytes())?;
    let heartbeat = lock.try_clone()?;
    let socket = socket_path(&roots, &project);
    let _ = std::fs::remove_file(&socket);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let result = rt.block_on(async {
        let listener = tokio::net::UnixListener::bind(&socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
        let mut sup = Supervisor::new(roots.clone(), project.clone(), events, heartbeat, last_pass)?;
        let r = sup.serve(listener).await;
        sup.close().await;
        r
    });
    let _ = std::fs::remove_file(&socket);
    drop(lock);
    result
}

/// How long a new supervisor tries for the lock before it leaves the project to the holder.
const LOCK_WAIT: Duration = Duration::from_millis(500);

/// Unix milliseconds of `t`.
fn millis(t: SystemTime) -> Option<i64> {
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_millis() as i64)
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

/// A restart a policy asked for, due at `at`, for the run that ended at `exit` (unix ms).
struct Pending {
    at: Instant,
    why: String,
    exit: i64,
}

struct Supervisor {
    /// Where its diagnostics go (its log file).
    events: Arc<dyn EventSink>,
    roots: Roots,
    project: String,
    db: StateDb,
    /// The lock file: its time says when the last pass ran (see [`Supervisor::heartbeat`]).
    heartbeat: std::fs::File,
    upstreams: Vec<SocketAddr>,
    dns: Option<(Vec<IpAddr>, DnsServer)>,
    /// The containers in the table, answering ones first, and how many answer.
    dns_entries: Vec<DnsContainer>,
    dns_answering: usize,
    dns_error: Option<String>,
    ports: Ports,
    probes: HashMap<String, (Option<i64>, tokio::task::JoinHandle<()>)>,
    health: HashMap<String, Health>,
    restarters: HashMap<String, Restarter>,
    /// The latest exit handled per container (unix ms); exits up to `born` (the previous
    /// supervisor's last pass, or this one's start) count as handled.
    handled: HashMap<String, i64>,
    pending: HashMap<String, Pending>,
    born: i64,
    epoch: Instant,
    empty_ticks: u32,
    seen_any: bool,
    tx: mpsc::UnboundedSender<HealthReport>,
    rx: mpsc::UnboundedReceiver<HealthReport>,
}

impl Supervisor {
    fn new(
        roots: Roots,
        project: String,
        events: Arc<dyn EventSink>,
        heartbeat: std::fs::File,
        last_pass: Option<i64>,
    ) -> anyhow::Result<Supervisor> {
        let db = StateDb::open(&roots.root)?;
        let nft = Nft::available().then(|| Nft::new(crate::stack::engine::firewall_table(&roots.root)));
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let (tx, rx) = mpsc::unbounded_channel();
        let now = crate::state::now_millis();
        Ok(Supervisor {
            events,
            roots,
            project,
            db,
            heartbeat,
            upstreams: berth_network::files::dns_upstreams(&resolv),
            dns: None,
            dns_entries: Vec::new(),
            dns_answering: 0,
            dns_error: None,
            ports: Ports::new(nft),
            probes: HashMap::new(),
            health: HashMap::new(),
            restarters: HashMap::new(),
            handled: HashMap::new(),
            pending: HashMap::new(),
            born: last_pass.map_or(now, |t| t.min(now)),
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
        let request = serde_json::from_str::<serde_json::Value>(&line).unwrap_or_default();
        let op = request["op"].as_str().unwrap_or_default();
        let (reply, stop) = match op {
            "refresh" => match self.pass().await {
                Ok(_) => (json!({"ok": true}), false),
                Err(e) => (json!({"error": format!("{e:#}")}), false),
            },
            "reserve" => (self.reserve(&request), false),
            "release" => {
                self.ports.release(request["owner"].as_i64().unwrap_or_default() as i32);
                (json!({"ok": true}), false)
            }
            "status" => (self.status(), false),
            "shutdown" => (json!({"ok": true}), true),
            other => (json!({"error": format!("unknown request {other:?}")}), false),
        };
        let _ = w.write_all(format!("{reply}\n").as_bytes()).await;
        stop
    }

    /// `{"op": "reserve", "container": NAME, "owner": PID, "frees": [NAME…], "ports": [HostPort…]}`:
    /// holds the ports for a container `up` (pid `owner`) is about to start.
    fn reserve(&mut self, request: &serde_json::Value) -> serde_json::Value {
        let container = request["container"].as_str().unwrap_or_default();
        let owner = request["owner"].as_i64().unwrap_or_default() as i32;
        let frees: Vec<String> = serde_json::from_value(request["frees"].clone()).unwrap_or_default();
        let Ok(ports) = serde_json::from_value::<Vec<HostPort>>(request["ports"].clone()) else {
            return json!({"error": "bad reserve request"});
        };
        match self.ports.reserve(container, owner, &frees, &ports) {
            Ok(()) => json!({"ok": true}),
            Err(conflict) => json!({"conflict": conflict}),
        }
    }

    fn status(&self) -> serde_json::Value {
        let (ports, reserved) = self.ports.status();
        let health: BTreeMap<&String, &str> = self.health.iter().map(|(k, h)| (k, h.as_str())).collect();
        json!({
            "pid": std::process::id(),
            "project": self.project,
            "dns": self.dns.as_ref().map(|(_, s)| s.local_addrs().iter().map(|a| a.to_string()).collect::<Vec<_>>()).unwrap_or_default(),
            "names": self.dns_entries[..self.dns_answering].iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
            "ports": ports,
            "reserved": reserved,
            "health": health,
            "pending_restarts": self.pending.keys().collect::<Vec<_>>(),
        })
    }

    /// One pass over the project's containers; true when the project is gone.
    async fn pass(&mut self) -> anyhow::Result<bool> {
        let rows = self.db.containers(&self.project)?;
        // One-off containers (`run`) count too: they ask for names, may publish ports and have
        // health checks (their rows carry no restart policy).
        let rows: Vec<ContainerRecord> =
            rows.into_iter().map(|r| container::refresh(&self.roots, &self.db, &r).unwrap_or(r)).collect();
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
        self.ports.reconcile(&self.db, &self.events, &specs).await;
        self.serve_names(&specs).await;
        self.heartbeat();
        Ok(false)
    }

    /// Sets the lock file's time to when this pass ran, or to just before the earliest exit a
    /// pending restart is for: a supervisor that takes over after this one is killed handles the
    /// exits after that time (see [`main`]), so no restart is lost in between.
    fn heartbeat(&self) {
        let now = crate::state::now_millis();
        let upto = self.pending.values().map(|p| p.exit - 1).fold(now, i64::min);
        let _ = self.heartbeat.set_modified(UNIX_EPOCH + Duration::from_millis(upto.max(0) as u64));
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
                    let pending = Pending { at: Instant::now() + after, why: reason, exit: finished };
                    self.pending.insert(r.id.clone(), pending);
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
            .filter(|(_, p)| p.at <= Instant::now())
            .map(|(id, p)| (id.clone(), p.why.clone()))
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
            } else if container::start(&roots, &db, &r, StartMode::Detached)? {
                db.count_restart(&r.id)?;
                record_event(&db, &r, "restart", &[("reason", why.clone().into())]);
            } else {
                // Started meanwhile by someone else (`up`, `start`): not a restart of ours.
                return Ok(());
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
        self.ports.close().await;
        if let Some((_, s)) = self.dns.take() {
            s.stop().await;
        }
    }
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
