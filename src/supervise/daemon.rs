//! The project supervisor (`berth __supervise PROJECT`): one process per project that keeps the
//! running stack as `up` left it. It is a thin loop over four services, each in its own module:
//! names ([`super::dns`], the DNS server on the project's bridge gateways), published ports
//! ([`super::ports`], the userland proxy and nftables DNAT rules), health checks
//! ([`super::prober`]) and restart policies ([`super::restarts`]).
//!
//! It holds no state of its own worth keeping: every pass reads the project's containers from the
//! state database (each carries its [`SuperviseSpec`]) and has each service bring what it serves
//! in line with them. So it adopts whatever runs when it starts (after a crash, a reboot,
//! or a new `up`), and the containers, their monitors and logs never depend on it.
//!
//! It holds a lock (`$BERTH_RUN/supervisors/PROJECT.lock`, naming its pid) for life, and sets the
//! lock file's time at every pass. One that was killed is started again by the monitor of a
//! running container of the project (within [`REVIVE_EVERY`], or when that container exits), or
//! by the next `up`; the new one handles the exits that happened after its predecessor's last
//! pass (so a restart policy is not lost), not older ones: `up` starts those.
//!
//! Commands reach it over a Unix socket (mode 0600) in the run directory, one request per
//! connection in the typed, versioned protocol of [`super::protocol`]: `refresh` (a pass now,
//! answered when done: `up` asks after each container start so a dependent started next already
//! resolves its dependency), `reserve` and `release` (host ports `up` holds for containers it is
//! about to start, see [`super::ports`]), `status`, `shutdown`. It exits by itself once the
//! project has no containers left.
//!
//! [`REVIVE_EVERY`]: super::client::REVIVE_EVERY

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use berth_network::nat::Nft;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::client::{dir, lock_path, socket_path};
use super::dns::{self, Names};
use super::health::Health;
use super::ports::Ports;
use super::prober::{Prober, Report};
use super::protocol::{self, Reply, Request, Status};
use super::restarts::Restarts;
use super::spec::SuperviseSpec;
use crate::container::{self, Roots};
use crate::events::{Event, EventSink};
use crate::state::{ContainerRecord, Outcome, StateDb};

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
    // A stale socket from a killed supervisor, usually absent; one that stays makes the bind below fail with its error.
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
    // One that stays is removed by the next supervisor before it binds.
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

struct Supervisor {
    /// Where its diagnostics go (its log file).
    events: Arc<dyn EventSink>,
    roots: Roots,
    project: String,
    db: StateDb,
    /// The lock file: its time says when the last pass ran (see [`Supervisor::heartbeat`]).
    heartbeat: std::fs::File,
    names: Names,
    ports: Ports,
    prober: Prober,
    restarts: Restarts,
    epoch: Instant,
    empty_ticks: u32,
    seen_any: bool,
    /// The metrics address served, and the task serving it.
    metrics: Option<(String, Option<tokio::task::JoinHandle<()>>)>,
    /// The rows it could not read, as said in its log (each is said once).
    unreadable: BTreeSet<String>,
    /// Containers (ids) handed over to a start-first successor: draining, neither answered
    /// nor served.
    retired: BTreeSet<String>,
    /// Which deployments became known-good (or failed) without the prober's word.
    known_good: super::known_good::KnownGood,
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
        Ok(Supervisor {
            events,
            names: Names::new(berth_network::files::dns_upstreams(&resolv)),
            ports: Ports::new(nft),
            prober: Prober::new(roots.clone()),
            restarts: Restarts::new(roots.clone(), last_pass),
            roots,
            project,
            db,
            heartbeat,
            epoch: Instant::now(),
            empty_ticks: 0,
            seen_any: false,
            metrics: None,
            unreadable: BTreeSet::new(),
            retired: BTreeSet::new(),
            known_good: Default::default(),
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
                Some(report) = self.prober.next() => self.on_health(report).await,
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
        let (reply, stop) = match protocol::decode_request(&line) {
            Ok(request) => self.handle(request).await,
            Err(error) => (Reply::Error { error }, false),
        };
        // A client that went away does not want the reply.
        let _ = w.write_all(format!("{}\n", protocol::encode_reply(&reply)).as_bytes()).await;
        stop
    }

    /// What to answer `request`, and whether to stop then.
    async fn handle(&mut self, request: Request) -> (Reply, bool) {
        match request {
            Request::Refresh => match self.pass().await {
                Ok(_) => (Reply::Done, false),
                Err(e) => (Reply::Error { error: format!("{e:#}") }, false),
            },
            Request::Reserve { container, owner, frees, ports } => {
                match self.ports.reserve(&container, owner, &frees, &ports) {
                    Ok(()) => (Reply::Done, false),
                    Err(conflict) => (Reply::Conflict(conflict), false),
                }
            }
            Request::Release { owner } => {
                self.ports.release(owner);
                (Reply::Done, false)
            }
            Request::Handover { from, to } => match self.handover(&from, &to).await {
                Ok(()) => (Reply::Done, false),
                Err(e) => (Reply::Error { error: format!("{e:#}") }, false),
            },
            Request::Status => (Reply::Status(self.status()), false),
            Request::Shutdown => (Reply::Done, true),
        }
    }

    fn status(&self) -> Status {
        let (ports, reserved) = self.ports.status();
        Status {
            pid: std::process::id() as i32,
            project: self.project.clone(),
            dns: self.names.listening(),
            names: self.names.names(),
            ports,
            reserved,
            health: self.prober.status(),
            pending_restarts: self.restarts.pending(),
            draining: self.retired.iter().map(|id| (id.clone(), self.ports.open_to(id))).collect(),
        }
    }

    /// Switches `from`'s names and ports to its successor `to` (ids), then makes a pass.
    async fn handover(&mut self, from: &str, to: &str) -> anyhow::Result<()> {
        let row = |id: &str| -> anyhow::Result<ContainerRecord> {
            let rec = self.db.container(id)?.with_context(|| format!("no container {id}"))?;
            container::refresh(&self.roots, &self.db, &rec)
        };
        let (old, new) = (row(from)?, row(to)?);
        if !new.status.is_alive() {
            anyhow::bail!("container {} does not run", new.name);
        }
        self.ports.handover(&self.db, self.events.as_ref(), &old, &new).await?;
        self.retired.insert(old.id.clone());
        self.pass().await.map(drop)
    }

    /// The containers neither answered nor served: those handed over to a successor, and
    /// successors not yet switched to (their predecessor still serves).
    fn hidden(&mut self, specs: &[(ContainerRecord, SuperviseSpec)]) -> BTreeSet<String> {
        self.retired.retain(|id| specs.iter().any(|(r, _)| &r.id == id));
        self.ports.keep_drained(&self.retired);
        hidden(specs, &self.retired)
    }

    /// The project's containers that carry a supervision spec, as the database has them.
    fn specs(rows: Vec<ContainerRecord>) -> Vec<(ContainerRecord, SuperviseSpec)> {
        rows.into_iter().filter_map(|r| r.config.supervise.clone().map(|s| (r, s))).collect()
    }

    /// The project's containers whose rows can be read. A row that cannot be read is said in
    /// the log (once) and left out: the others are supervised still.
    fn rows(&mut self) -> anyhow::Result<Vec<ContainerRecord>> {
        let (rows, unreadable) = self.db.scan_containers(&self.project)?;
        for e in unreadable {
            if self.unreadable.insert(e.to_string()) {
                self.events.emit(Event::Warning { message: format!("{e}; it is not supervised") });
            }
        }
        Ok(rows)
    }

    /// One pass over the project's containers; true when the project is gone.
    async fn pass(&mut self) -> anyhow::Result<bool> {
        let rows = self.rows()?;
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
        let specs = Self::specs(rows);
        self.restarts.reconcile(&self.db, &self.events, &specs);
        self.prober.reconcile(&self.db, &specs);
        for (rec, outcome) in self.known_good.due(&specs, crate::state::now_millis()) {
            self.mark_deployment(&rec, outcome);
        }
        let hidden = self.hidden(&specs);
        let served: Vec<(ContainerRecord, SuperviseSpec)> =
            specs.iter().filter(|(r, _)| !hidden.contains(&r.id)).cloned().collect();
        self.ports.reconcile(&self.db, &self.events, &served).await;
        self.serve_names(&specs).await;
        self.serve_metrics().await;
        self.heartbeat();
        Ok(false)
    }

    /// Serves the project's metrics on the address `up` recorded (none: no metrics), moving when
    /// it changes.
    async fn serve_metrics(&mut self) {
        let file = super::metrics::address_file(&self.roots, &self.project);
        let wanted = std::fs::read_to_string(&file).ok().map(|a| a.trim().to_string()).filter(|a| !a.is_empty());
        if self.metrics.as_ref().map(|(a, _)| a) == wanted.as_ref() {
            return;
        }
        if let Some((_, Some(task))) = self.metrics.take() {
            task.abort();
        }
        let Some(addr) = wanted else { return };
        match tokio::net::TcpListener::bind(&addr).await {
            Ok(listener) => {
                let task = tokio::spawn(super::metrics::serve(listener, self.roots.clone(), self.project.clone()));
                self.metrics = Some((addr, Some(task)));
            }
            Err(e) => {
                let message = format!("cannot serve metrics on {addr}: {e}");
                self.events.emit(crate::events::Event::Warning { message });
                // Said once; tried again when the address changes.
                self.metrics = Some((addr, None));
            }
        }
    }

    /// Sets the lock file's time to when this pass ran, or to just before the earliest exit a
    /// pending restart is for: a supervisor that takes over after this one is killed handles the
    /// exits after that time (see [`main`]), so no restart is lost in between.
    fn heartbeat(&self) {
        let upto = self.restarts.handled_upto(crate::state::now_millis());
        // A failure keeps the previous time: a successor looks further back, never less far.
        let _ = self.heartbeat.set_modified(UNIX_EPOCH + Duration::from_millis(upto.max(0) as u64));
    }

    /// Records a probe's report; a container that turns unhealthy may be restarted (opt-in), and
    /// stops resolving.
    async fn on_health(&mut self, report: Report) {
        let Some(change) = self.prober.on_report(&self.db, report) else { return };
        match change.health {
            Health::Healthy => self.mark_deployment(&change.record, Outcome::KnownGood),
            Health::Unhealthy => self.mark_deployment(&change.record, Outcome::Failed),
            Health::Starting => {}
        }
        if change.health == Health::Unhealthy && self.restarts.on_unhealthy(&self.events, &change.record) {
            self.prober.forget(&change.record.id);
        }
        // Names follow health: an unhealthy container stops resolving.
        let specs = Self::specs(self.rows().unwrap_or_default());
        self.serve_names(&specs).await;
    }

    /// Records how the deployment `rec` was made from went, with a `deployment` event when
    /// that changed it (a failure to write is said in the log).
    fn mark_deployment(&self, rec: &ContainerRecord, outcome: Outcome) {
        match self.db.mark_deployment(rec, outcome) {
            Ok(true) => {
                let attributes = [("outcome", outcome.as_str().into()), ("digest", rec.image_digest.clone().into())];
                container::record_event(&self.db, rec, "deployment", &attributes);
            }
            Ok(false) => {}
            Err(e) => self.events.emit(Event::Warning { message: format!("{e}") }),
        }
    }

    /// Serves the names of running containers that are not unhealthy.
    async fn serve_names(&mut self, specs: &[(ContainerRecord, SuperviseSpec)]) {
        let hidden = self.hidden(specs);
        let wanted = dns::wanted(specs, |id| self.prober.unhealthy(id) || hidden.contains(id));
        self.names.reconcile(self.events.as_ref(), wanted).await;
    }

    /// Stops serving: probes, proxies, DNAT rules and the DNS server.
    async fn close(&mut self) {
        self.prober.close();
        self.ports.close(self.events.as_ref()).await;
        self.names.close().await;
    }
}

/// The containers (ids) neither answered nor served, of `specs`: those handed over to a successor
/// (`retired`), and start-first successors whose predecessor runs and was not handed over yet.
pub fn hidden(specs: &[(ContainerRecord, SuperviseSpec)], retired: &BTreeSet<String>) -> BTreeSet<String> {
    let waiting = specs.iter().filter(|(r, _)| {
        r.config
            .replaces
            .as_ref()
            .is_some_and(|old| !retired.contains(old) && specs.iter().any(|(o, _)| &o.id == old && o.status.is_alive()))
    });
    waiting.map(|(r, _)| r.id.clone()).chain(retired.iter().cloned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Status;
    use crate::supervise::testing::record;

    #[test]
    fn a_successor_is_hidden_until_its_predecessor_is_handed_over_or_gone() {
        let old = record("p-web-1", Status::Running);
        let mut next = record("p-web-1-next", Status::Running);
        next.config.replaces = Some(old.id.clone());
        let other = record("p-db-1", Status::Running);
        let specs = |old: &ContainerRecord| {
            [old.clone(), next.clone(), other.clone()].map(|r| (r, SuperviseSpec::default())).to_vec()
        };
        let none = BTreeSet::new();
        assert_eq!(hidden(&specs(&old), &none), BTreeSet::from([next.id.clone()]), "the old one serves");
        let retired = BTreeSet::from([old.id.clone()]);
        assert_eq!(hidden(&specs(&old), &retired), retired, "handed over: the old one drains");
        let mut stopped = old.clone();
        stopped.status = Status::Exited;
        assert!(hidden(&specs(&stopped), &none).is_empty(), "the old one is gone: the successor serves");
    }
}
