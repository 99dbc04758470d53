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
use crate::container::{self, record_event, Roots, StartMode};
use crate::events::{Event, EventSink};
use crate::state::{ContainerRecord, Health, StateDb, Status};

/// A restart a policy asked for, due at `at`, for the run that ended at `exit` (unix ms).
struct Pending {
    at: Instant,
    why: String,
    exit: i64,
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
        self.exits(db, specs);
        self.fire(db, events, specs);
    }

    /// Notices runs that ended and schedules what their policies ask for.
    fn exits(&mut self, db: &StateDb, specs: &[(ContainerRecord, SuperviseSpec)]) {
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
            let sup = db.supervision(&r.id).unwrap_or_default();
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
                    record_event(db, r, "restart_give_up", &[("restarts", count.into())]);
                }
            }
        }
    }

    /// Restarts the containers whose backoff has passed, unless stopped by a user or running.
    fn fire(&mut self, db: &StateDb, events: &Arc<dyn EventSink>, specs: &[(ContainerRecord, SuperviseSpec)]) {
        let due: Vec<(String, String)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.at <= Instant::now())
            .map(|(id, p)| (id.clone(), p.why.clone()))
            .collect();
        for (id, why) in due {
            self.pending.remove(&id);
            let Some((r, _)) = specs.iter().find(|(r, _)| r.id == id) else { continue };
            if db.supervision(&id).unwrap_or_default().stop_requested || r.status.is_alive() {
                continue;
            }
            self.restart(events, r.clone(), why, false);
        }
    }

    /// Whether running container `r` (whose check just failed) is restarted by its policy, with
    /// `restart_on_unhealthy`; true when the restart is under way.
    pub fn on_unhealthy(&mut self, events: &Arc<dyn EventSink>, r: &ContainerRecord) -> bool {
        let Some(spec) = r.config.supervise.as_ref().filter(|s| s.restart_on_unhealthy) else { return false };
        let now = self.epoch.elapsed();
        let ran = Duration::from_millis(
            crate::state::now_millis().saturating_sub(r.started_at.unwrap_or_default()).max(0) as u64,
        );
        let restarter = self.restarters.entry(r.id.clone()).or_insert_with(|| Restarter::new(spec.restart));
        if let Decision::Restart { .. } = restarter.on_end(Ending::Unhealthy, ran, now) {
            self.restart(events, r.clone(), Health::Unhealthy.to_string(), true);
            return true;
        }
        false
    }

    /// Restarts a container on a policy's behalf (`running`: stop it first).
    /// Runs in the background: a stop grace period must not keep the supervisor from answering.
    fn restart(&self, events: &Arc<dyn EventSink>, r: ContainerRecord, why: String, running: bool) {
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
        let events = events.clone();
        tokio::spawn(async move {
            if let Ok(Err(e)) | Err(e) = job.await.map_err(anyhow::Error::from) {
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
