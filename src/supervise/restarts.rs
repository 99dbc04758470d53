//! The supervisor's restart scheduler: notices the runs that ended (from the rows' exit times),
//! asks each container's restart policy ([`super::restart`], pure) what to do, and restarts the
//! container when its backoff has passed, unless a user stopped it or it runs again meanwhile.
//!
//! Exits are handled once each: those up to the previous supervisor's last pass were its own
//! (see [`Restarts::new`]), and the time of the earliest exit whose restart is still due is what
//! this one's heartbeat says ([`Restarts::handled_upto`]), so one that takes over after it is
//! killed loses no restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::restart::{Decision, Ending, Restarter};
use super::spec::SuperviseSpec;
use crate::container::{record_event, Lifecycle, Roots, StartMode};
use crate::events::{Event, EventSink};
use crate::state::{ContainerRecord, Health, StateDb, Status};

/// A restart a policy asked for, due at `at`, for the run that ended at `exit` (unix ms).
struct Pending {
    at: Instant,
    why: String,
    exit: i64,
}

/// A restart a policy asks for now.
#[derive(Debug)]
struct Job {
    /// The container, as its row was.
    record: ContainerRecord,
    /// Why (`exited with code 1`, `unhealthy`): the row's restart reason.
    why: String,
    /// It still runs (its check failed): stopped first.
    running: bool,
}

impl Job {
    /// Restarts the container through `life`, counts the restart and records its reason. A
    /// container started meanwhile by someone else (`up`, `start`) is no restart of the policy's.
    fn run(&self, life: &Lifecycle<'_>) -> anyhow::Result<()> {
        let r = &self.record;
        if self.running {
            life.restart(r, None)?;
        } else if life.start(r, StartMode::Detached)? {
            life.db.count_restart(&r.id)?;
            record_event(life.db, r, "restart", &[("reason", self.why.clone().into())]);
        } else {
            return Ok(());
        }
        life.db.set_restart_reason(&r.id, &self.why)?;
        Ok(())
    }
}

/// The restart policies of one project's containers.
pub struct Restarts {
    roots: Roots,
    restarters: HashMap<String, Restarter>,
    /// The latest exit handled per container (unix ms); exits up to `born` count as handled.
    handled: HashMap<String, i64>,
    pending: HashMap<String, Pending>,
    born: i64,
    epoch: Instant,
}

impl Restarts {
    /// Nothing scheduled. Exits up to the previous supervisor's `last_pass` (else now) were
    /// handled by someone else.
    pub fn new(roots: Roots, last_pass: Option<i64>) -> Restarts {
        let now = crate::state::now_millis();
        Restarts {
            roots,
            restarters: HashMap::new(),
            handled: HashMap::new(),
            pending: HashMap::new(),
            born: last_pass.map_or(now, |t| t.min(now)),
            epoch: Instant::now(),
        }
    }

    /// Notices runs that ended and applies restart policies, then restarts what is due.
    pub fn reconcile(&mut self, db: &StateDb, events: &Arc<dyn EventSink>, specs: &[(ContainerRecord, SuperviseSpec)]) {
        let now = Instant::now();
        self.exits(db, specs, now);
        for job in self.due(db, specs, now) {
            self.spawn(events, job);
        }
    }

    /// Notices runs that ended by `now` and schedules what their policies ask for.
    fn exits(&mut self, db: &StateDb, specs: &[(ContainerRecord, SuperviseSpec)], now: Instant) {
        let elapsed = now.saturating_duration_since(self.epoch);
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
            let sup = db.supervision(&r.id).unwrap_or_default();
            let code = r.exit_code.unwrap_or(255);
            let ending = if sup.stop_requested { Ending::StoppedByUser } else { Ending::Exited(code) };
            let ran = Duration::from_millis(finished.saturating_sub(r.started_at.unwrap_or(finished)) as u64);
            let restarter = self.restarters.entry(r.id.clone()).or_insert_with(|| Restarter::new(spec.restart));
            match restarter.on_end(ending, ran, elapsed) {
                Decision::Stay => {}
                Decision::Restart { after, .. } => {
                    let reason =
                        if r.oom_killed { "OOM-killed".to_string() } else { format!("exited with code {code}") };
                    let pending = Pending { at: now + after, why: reason, exit: finished };
                    self.pending.insert(r.id.clone(), pending);
                }
                Decision::GiveUp { count } => {
                    record_event(db, r, "restart_give_up", &[("restarts", count.into())]);
                }
            }
        }
    }

    /// The restarts whose backoff has passed by `now`, unless their container was stopped by a
    /// user or runs again; they are no longer pending.
    fn due(&mut self, db: &StateDb, specs: &[(ContainerRecord, SuperviseSpec)], now: Instant) -> Vec<Job> {
        let mut due: Vec<(String, String)> =
            self.pending.iter().filter(|(_, p)| p.at <= now).map(|(id, p)| (id.clone(), p.why.clone())).collect();
        due.sort();
        let mut jobs = Vec::new();
        for (id, why) in due {
            self.pending.remove(&id);
            let Some((r, _)) = specs.iter().find(|(r, _)| r.id == id) else { continue };
            if db.supervision(&id).unwrap_or_default().stop_requested || r.status.is_alive() {
                continue;
            }
            jobs.push(Job { record: r.clone(), why, running: false });
        }
        jobs
    }

    /// Whether running container `r` (whose check just failed) is restarted by its policy, with
    /// `restart_on_unhealthy`; true when the restart is under way.
    pub fn on_unhealthy(&mut self, events: &Arc<dyn EventSink>, r: &ContainerRecord) -> bool {
        match self.unhealthy(r, Instant::now(), crate::state::now_millis()) {
            Some(job) => {
                self.spawn(events, job);
                true
            }
            None => false,
        }
    }

    /// The restart of running container `r` whose check failed at `now` (unix ms: `now_ms`), if
    /// its policy asks for one and it opted in to restarts when unhealthy.
    fn unhealthy(&mut self, r: &ContainerRecord, now: Instant, now_ms: i64) -> Option<Job> {
        let spec = r.config.supervise.as_ref().filter(|s| s.restart_on_unhealthy)?;
        let elapsed = now.saturating_duration_since(self.epoch);
        let ran = Duration::from_millis(now_ms.saturating_sub(r.started_at.unwrap_or_default()).max(0) as u64);
        let restarter = self.restarters.entry(r.id.clone()).or_insert_with(|| Restarter::new(spec.restart));
        match restarter.on_end(Ending::Unhealthy, ran, elapsed) {
            Decision::Restart { .. } => {
                Some(Job { record: r.clone(), why: Health::Unhealthy.to_string(), running: true })
            }
            _ => None,
        }
    }

    /// Restarts a container on a policy's behalf in the background: a stop grace period must not
    /// keep the supervisor from answering.
    fn spawn(&self, events: &Arc<dyn EventSink>, job: Job) {
        let roots = self.roots.clone();
        let run = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let db = StateDb::open(&roots.root)?;
            job.run(&Lifecycle::new(&roots, &db))
        });
        let events = events.clone();
        tokio::spawn(async move {
            if let Ok(Err(e)) | Err(e) = run.await.map_err(anyhow::Error::from) {
                events.emit(Event::Warning { message: format!("restart failed: {e:#}") });
            }
        });
    }

    /// The time (unix ms) up to which exits are handled: `now`, or just before the earliest exit
    /// whose restart is still due.
    pub fn handled_upto(&self, now: i64) -> i64 {
        self.pending.values().map(|p| p.exit - 1).fold(now, i64::min)
    }

    /// The containers (ids) with a restart due.
    pub fn pending(&self) -> Vec<String> {
        self.pending.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests;
