//! A foreground `up` after its plan ran: follow the attached containers' logs until they are
//! done; the first interrupt stops them (a second kills), or one of them ends the run
//! (`--abort-on-container-exit`, `--abort-on-container-failure`, `--exit-code-from`). What it
//! shows goes out as [`Shown`] values; the exit code for `up` is returned.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

use crate::app::Session;
use crate::container;
use crate::monitor::log::{self, LogEntry, LogFollower};
use crate::state::{ContainerRecord, StateDb, Status};
use crate::supervise::restart::Ending;

/// The exit code of a run ended by an interrupt.
const INTERRUPTED: i32 = 130;

/// What a foreground `up` is asked to do.
#[derive(Clone, Debug, Default)]
pub struct Foreground {
    /// Services whose logs are shown.
    pub attached: Vec<String>,
    /// Services an interrupt stops.
    pub stop_services: Vec<String>,
    /// Stop everything when an attached container exits.
    pub abort_on_exit: bool,
    /// Stop everything when an attached container exits with a non-zero code.
    pub abort_on_failure: bool,
    /// Exit with this service's exit code.
    pub exit_code_from: Option<String>,
    /// Lines since this time (unix nanoseconds): when `up` started.
    pub since: i64,
    /// Stop timeout.
    pub timeout: Option<Duration>,
}

/// What a foreground run shows, in order.
#[derive(Debug)]
pub enum Shown {
    /// The followed containers' labels (`service-1`), by index; comes first.
    Attached(Vec<String>),
    /// Log lines of the followed containers (by index), oldest first.
    Lines(Vec<(usize, LogEntry)>),
    /// Followed container `index` exited with `code`.
    Exited { index: usize, code: i32 },
    /// The first interrupt: the containers are being stopped.
    Stopping,
    /// A container's exit ends the run: the containers are being stopped.
    Aborting,
    /// A container was stopped (by name).
    Stopped(String),
}

struct Watched {
    rec: ContainerRecord,
    follower: LogFollower,
    last: i64,
    /// The exit already reported (finished_at).
    reported: Option<i64>,
}

/// Follows the logs until the run ends; `interrupts` counts the interrupts so far.
pub fn run(
    s: &Session<'_>,
    fg: &Foreground,
    interrupts: &dyn Fn() -> usize,
    show: &mut dyn FnMut(Shown),
) -> anyhow::Result<i32> {
    let recs = containers(s, &fg.attached)?;
    show(Shown::Attached(recs.iter().map(|c| format!("{}-{}", c.service, c.number)).collect()));
    let mut watched: Vec<Watched> = recs
        .into_iter()
        .map(|rec| {
            let follower = LogFollower::at_end(&s.roots.log_file(&rec.id));
            Watched { follower, rec, last: fg.since, reported: None }
        })
        .collect();
    show_lines(show, earlier_lines(s, fg, &mut watched));
    // Containers whose logging driver keeps nothing (`none`) are followed through their
    // monitor's attach socket instead (from now on: what they printed before is gone).
    let (live_tx, live) = channel::<(usize, LogEntry)>();
    for (i, w) in watched.iter().enumerate() {
        if !log::readable(&w.rec.config) && w.rec.status.is_alive() {
            follow_attached(s.roots.attach_socket(&w.rec.id), i, live_tx.clone());
        }
    }
    drop(live_tx);
    let mut stopping: Option<Stopping> = None;
    let mut forced = false;
    let mut outcome: Option<i32> = None;
    loop {
        let mut batch: Vec<(usize, LogEntry)> = live.try_iter().collect();
        for (i, w) in watched.iter_mut().enumerate() {
            for e in w.follower.poll() {
                if e.nanos() > w.last {
                    w.last = e.nanos();
                    batch.push((i, e));
                }
            }
        }
        show_lines(show, batch);
        let count = interrupts();
        if count >= 1 && stopping.is_none() {
            show(Shown::Stopping);
            outcome = Some(INTERRUPTED);
            stopping = Some(Stopping::start(s, containers(s, &fg.stop_services)?, fg.timeout));
        }
        if count >= 2 && !forced {
            forced = true;
            for rec in containers(s, &fg.stop_services)? {
                // Already stopped is what is wanted.
                let _ = container::kill(s.roots, s.db, &rec, nix::sys::signal::Signal::SIGKILL);
            }
        }
        let mut all_done = true;
        for (index, w) in watched.iter_mut().enumerate() {
            let rec = match s.db.container(&w.rec.id)? {
                Some(r) => container::refresh(s.roots, s.db, &r).unwrap_or(r),
                None => continue,
            };
            let ended = matches!(rec.status, Status::Exited | Status::Dead);
            if ended && rec.finished_at.is_some() && rec.finished_at != w.reported {
                w.reported = rec.finished_at;
                let code = rec.exit_code.unwrap_or(-1);
                show(Shown::Exited { index, code });
                let trigger = fg.abort_on_exit || (fg.abort_on_failure && code != 0);
                if trigger && stopping.is_none() {
                    show(Shown::Aborting);
                    outcome = Some(if fg.abort_on_failure { code } else { code_of(s, fg, &rec)? });
                    stopping = Some(Stopping::start(s, containers(s, &[])?, fg.timeout));
                }
            }
            all_done &= finished(s.db, &rec);
            w.rec = rec;
        }
        if let Some(st) = &stopping {
            st.stopped.try_iter().for_each(|name| show(Shown::Stopped(name)));
            if st.thread.is_finished() {
                st.stopped.try_iter().for_each(|name| show(Shown::Stopped(name)));
                return final_code(s, fg, outcome.unwrap_or(0));
            }
        } else if all_done {
            return final_code(s, fg, 0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn containers(s: &Session<'_>, services: &[String]) -> anyhow::Result<Vec<ContainerRecord>> {
    container::select(s.db, &s.project.name, services, false)
}

fn show_lines(show: &mut dyn FnMut(Shown), mut lines: Vec<(usize, LogEntry)>) {
    if !lines.is_empty() {
        lines.sort_by_key(|(_, e)| e.nanos());
        show(Shown::Lines(lines));
    }
}

/// What was written before following began (since `up` started).
fn earlier_lines(s: &Session<'_>, fg: &Foreground, watched: &mut [Watched]) -> Vec<(usize, LogEntry)> {
    let mut first = Vec::new();
    for (i, w) in watched.iter_mut().enumerate() {
        for e in log::read_all(&s.roots.log_file(&w.rec.id), w.rec.config.log.max_file) {
            if e.nanos() >= fg.since {
                w.last = w.last.max(e.nanos());
                first.push((i, e));
            }
        }
    }
    first
}

/// The exit code the run ends with: `--exit-code-from`'s container's, else `fallback`.
fn final_code(s: &Session<'_>, fg: &Foreground, fallback: i32) -> anyhow::Result<i32> {
    if fallback == INTERRUPTED {
        return Ok(INTERRUPTED);
    }
    match &fg.exit_code_from {
        Some(service) => {
            let recs = containers(s, std::slice::from_ref(service))?;
            Ok(recs.iter().filter_map(|r| r.exit_code).next_back().unwrap_or(fallback))
        }
        None => Ok(fallback),
    }
}

fn code_of(s: &Session<'_>, fg: &Foreground, trigger: &ContainerRecord) -> anyhow::Result<i32> {
    let code = trigger.exit_code.unwrap_or(0);
    match fg.exit_code_from {
        Some(_) => final_code(s, fg, code),
        None => Ok(code),
    }
}

/// Whether a container is done for good: not running and not about to be restarted by its policy.
fn finished(db: &StateDb, rec: &ContainerRecord) -> bool {
    if !matches!(rec.status, Status::Exited | Status::Dead) {
        return false;
    }
    let Some(spec) = &rec.config.supervise else { return true };
    if db.supervision(&rec.id).map(|s| s.stop_requested).unwrap_or(false) {
        return true;
    }
    let ending = Ending::Exited(rec.exit_code.unwrap_or(-1));
    !spec.restart.will_restart(ending, rec.restart_count)
}

/// Containers being stopped at once on threads of their own; the names of those stopped come
/// back on `stopped`.
struct Stopping {
    thread: std::thread::JoinHandle<()>,
    stopped: Receiver<String>,
}

impl Stopping {
    fn start(s: &Session<'_>, recs: Vec<ContainerRecord>, timeout: Option<Duration>) -> Stopping {
        let roots = s.roots.clone();
        let (tx, stopped) = channel();
        let thread = std::thread::spawn(move || {
            std::thread::scope(|scope| {
                for rec in &recs {
                    let (roots, tx) = (&roots, tx.clone());
                    scope.spawn(move || {
                        let Ok(db) = StateDb::open(&roots.root) else { return };
                        if container::stop(roots, &db, rec, timeout).unwrap_or(false) {
                            // The receiver is gone only when the run has ended.
                            let _ = tx.send(rec.name.clone());
                        }
                    });
                }
            });
        });
        Stopping { thread, stopped }
    }
}

/// Copies what the container behind `socket` prints to `out` as log entries of followed
/// container `index`, from a thread of its own, until the container exits.
fn follow_attached(socket: std::path::PathBuf, index: usize, out: Sender<(usize, LogEntry)>) {
    use crate::monitor::attach;
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(&socket) else { return };
    std::thread::spawn(move || {
        let mut partial: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        while let Ok(Some((kind, payload))) = attach::read_frame(&mut stream) {
            let (slot, name) = match kind {
                attach::STDOUT => (0, "stdout"),
                attach::STDERR => (1, "stderr"),
                attach::EXIT => break,
                _ => continue,
            };
            partial[slot].extend_from_slice(&payload);
            // Whole lines only, as the log file would have them.
            while let Some(end) = partial[slot].iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial[slot].drain(..=end).collect();
                let entry = LogEntry {
                    log: String::from_utf8_lossy(&line).into_owned(),
                    stream: name.into(),
                    time: log::format_rfc3339(crate::state::now_nanos()),
                };
                if out.send((index, entry)).is_err() {
                    return;
                }
            }
        }
    });
}
