//! What `berth up` does after the plan ran: in the foreground, stream the attached containers'
//! logs with `service-1 |` prefixes until they are done, Ctrl-C stops them (a second one kills)
//! or one of them ends the run (`--abort-on-container-exit`, `--abort-on-container-failure`,
//! `--exit-code-from`); with `--wait`, wait until everything runs and is healthy.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use berth::container;
use berth::monitor::log::{self, LogEntry, LogFollower};
use berth::state::{ContainerRecord, Health, StateDb, Status};
use berth::supervise::restart::Ending;

use super::containers::Ctx;
use super::logs::Printer;

static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

/// How many SIGINT and SIGTERM came since [`catch_interrupts`].
pub fn interrupts() -> usize {
    INTERRUPTS.load(Ordering::SeqCst)
}

/// Counts SIGINT and SIGTERM from now on, in a thread of its own running tokio's signal
/// handling; returns once the handlers are in place (a Ctrl-C before that would end berth).
pub fn catch_interrupts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(install_handlers);
}

fn install_handlers() {
    let (ready, installed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_io().build() else { return };
        rt.block_on(async {
            let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
                // The receiver waits until this is sent; it is gone only if it gave up.
                let _ = ready.send(());
                return;
            };
            // The receiver waits until this is sent; it is gone only if it gave up.
            let _ = ready.send(());
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                INTERRUPTS.fetch_add(1, Ordering::SeqCst);
            }
        });
    });
    // A thread that could not install the handlers has closed the channel, which ends the wait.
    let _ = installed.recv();
}

/// Copies what the container behind `socket` prints to `out` as log entries of watched
/// container `index`, from a thread of its own, until the container exits.
fn follow_attached(socket: std::path::PathBuf, index: usize, out: std::sync::mpsc::Sender<(usize, LogEntry)>) {
    use berth::monitor::attach;
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
                    time: log::format_rfc3339(berth::state::now_nanos()),
                };
                if out.send((index, entry)).is_err() {
                    return;
                }
            }
        }
    });
}

/// A foreground `up`.
pub struct Foreground {
    /// Services whose logs are shown.
    pub attached: Vec<String>,
    /// Services Ctrl-C stops.
    pub stop_services: Vec<String>,
    /// Stop everything when an attached container exits.
    pub abort_on_exit: bool,
    /// Stop everything when an attached container exits with a non-zero code.
    pub abort_on_failure: bool,
    /// Exit with this service's exit code.
    pub exit_code_from: Option<String>,
    /// Lines since this time (unix nanoseconds): when `up` started.
    pub since: i64,
    /// `--timestamps`.
    pub timestamps: bool,
    /// `--no-log-prefix`.
    pub no_log_prefix: bool,
    /// `--no-color`.
    pub no_color: bool,
    /// Stop timeout.
    pub timeout: Option<Duration>,
}

struct Watched {
    rec: ContainerRecord,
    label: String,
    follower: LogFollower,
    last: i64,
    /// The exit already reported (finished_at).
    reported: Option<i64>,
}

impl Foreground {
    /// Streams logs until the run ends; returns the exit code for `up`.
    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<i32> {
        catch_interrupts();
        let color = !self.no_color && berth::output::color_for(std::io::stdout().is_terminal());
        let recs = ctx.containers(&self.attached, false)?;
        let labels: Vec<String> = recs.iter().map(|c| format!("{}-{}", c.service, c.number)).collect();
        let printer = Printer::new(&labels, color, self.no_log_prefix, self.timestamps);
        let mut watched: Vec<Watched> = recs
            .into_iter()
            .zip(labels)
            .map(|(rec, label)| {
                let path = ctx.roots.log_file(&rec.id);
                Watched { follower: LogFollower::at_end(&path), rec, label, last: self.since, reported: None }
            })
            .collect();
        // What was written before following began, oldest first across containers.
        let mut first: Vec<(usize, LogEntry)> = Vec::new();
        for (i, w) in watched.iter_mut().enumerate() {
            let max_file = w.rec.config.log.max_file;
            for e in log::read_all(&ctx.roots.log_file(&w.rec.id), max_file) {
                if e.nanos() >= self.since {
                    w.last = w.last.max(e.nanos());
                    first.push((i, e));
                }
            }
        }
        self.print(&printer, first);
        // Containers whose logging driver keeps nothing (`none`) are followed through their
        // monitor's attach socket instead (from now on: what they printed before is gone).
        let (live_tx, live) = std::sync::mpsc::channel::<(usize, LogEntry)>();
        for (i, w) in watched.iter().enumerate() {
            let unlogged = !log::readable(&w.rec.config);
            if unlogged && w.rec.status.is_alive() {
                follow_attached(ctx.roots.attach_socket(&w.rec.id), i, live_tx.clone());
            }
        }
        drop(live_tx);
        let mut stopping: Option<std::thread::JoinHandle<()>> = None;
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
            self.print(&printer, batch);
            let interrupts = INTERRUPTS.load(Ordering::SeqCst);
            if interrupts >= 1 && stopping.is_none() {
                eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
                outcome = Some(130);
                let recs = ctx.containers(&self.stop_services, false)?;
                stopping = Some(stop_in_background(ctx, recs, self.timeout));
            }
            if interrupts >= 2 && !forced {
                forced = true;
                let recs = ctx.containers(&self.stop_services, false)?;
                kill_all(ctx, &recs);
            }
            let mut all_done = true;
            for w in watched.iter_mut() {
                let rec = match ctx.db.container(&w.rec.id)? {
                    Some(r) => container::refresh(&ctx.roots, &ctx.db, &r).unwrap_or(r),
                    None => continue,
                };
                let ended = matches!(rec.status, Status::Exited | Status::Dead);
                if ended && rec.finished_at.is_some() && rec.finished_at != w.reported {
                    w.reported = rec.finished_at;
                    let code = rec.exit_code.unwrap_or(-1);
                    println!("{} exited with code {code}", w.label);
                    // Nowhere left to report a failed write to stdout.
                    let _ = std::io::stdout().flush();
                    let trigger = self.abort_on_exit || (self.abort_on_failure && code != 0);
                    if trigger && stopping.is_none() {
                        eprintln!("Aborting on container exit...");
                        outcome = Some(if self.abort_on_failure { code } else { self.code_of(ctx, &rec)? });
                        let recs = ctx.containers(&[], false)?;
                        stopping = Some(stop_in_background(ctx, recs, self.timeout));
                    }
                }
                if !finished(ctx, &rec) {
                    all_done = false;
                }
                w.rec = rec;
            }
            if let Some(h) = stopping.take() {
                if h.is_finished() {
                    // The stop thread reports its own errors.
                    let _ = h.join();
                    return self.final_code(ctx, outcome.unwrap_or(0));
                }
                stopping = Some(h);
            } else if all_done {
                return self.final_code(ctx, 0);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn print(&self, printer: &Printer, mut entries: Vec<(usize, LogEntry)>) {
        if entries.is_empty() {
            return;
        }
        entries.sort_by_key(|(_, e)| e.nanos());
        let mut out = std::io::stdout().lock();
        for (i, e) in &entries {
            printer.print(&mut out, *i, e);
        }
        // Nowhere left to report a failed write to stdout.
        let _ = out.flush();
    }

    /// The exit code the run ends with: `--exit-code-from`'s container's, else `fallback`.
    fn final_code(&self, ctx: &Ctx, fallback: i32) -> anyhow::Result<i32> {
        if fallback == 130 {
            return Ok(130);
        }
        match &self.exit_code_from {
            Some(s) => {
                let recs = ctx.containers(std::slice::from_ref(s), false)?;
                Ok(recs.iter().filter_map(|r| r.exit_code).next_back().unwrap_or(fallback))
            }
            None => Ok(fallback),
        }
    }

    fn code_of(&self, ctx: &Ctx, trigger: &ContainerRecord) -> anyhow::Result<i32> {
        if self.exit_code_from.is_some() {
            return self.final_code(ctx, trigger.exit_code.unwrap_or(0));
        }
        Ok(trigger.exit_code.unwrap_or(0))
    }
}

/// Whether a container is done for good: not running and not about to be restarted by its policy.
fn finished(ctx: &Ctx, rec: &ContainerRecord) -> bool {
    if !matches!(rec.status, Status::Exited | Status::Dead) {
        return false;
    }
    let Some(spec) = &rec.config.supervise else { return true };
    if ctx.db.supervision(&rec.id).map(|s| s.stop_requested).unwrap_or(false) {
        return true;
    }
    let ending = Ending::Exited(rec.exit_code.unwrap_or(-1));
    !spec.restart.will_restart(ending, rec.restart_count)
}

fn stop_in_background(ctx: &Ctx, recs: Vec<ContainerRecord>, timeout: Option<Duration>) -> std::thread::JoinHandle<()> {
    let roots = ctx.roots.clone();
    std::thread::spawn(move || {
        std::thread::scope(|s| {
            for rec in &recs {
                let roots = &roots;
                s.spawn(move || {
                    if let Ok(db) = StateDb::open(&roots.root) {
                        if container::stop(roots, &db, rec, timeout).unwrap_or(false) {
                            eprintln!(" Container {}  Stopped", rec.name);
                        }
                    }
                });
            }
        });
    })
}

fn kill_all(ctx: &Ctx, recs: &[ContainerRecord]) {
    for rec in recs {
        // Already stopped is what is wanted.
        let _ = container::kill(&ctx.roots, &ctx.db, rec, nix::sys::signal::Signal::SIGKILL);
    }
}

/// `up --wait`: returns once every container of `services` runs (healthy when it has a health
/// check) or exited successfully; fails naming the first that exited with an error or turned
/// unhealthy, or when `timeout` passes.
pub fn wait(ctx: &Ctx, services: &[String], timeout: Option<Duration>) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let mut ready = true;
        for rec in ctx.containers(services, false)? {
            let rec = container::refresh(&ctx.roots, &ctx.db, &rec).unwrap_or(rec);
            let checked = rec.config.supervise.as_ref().is_some_and(|s| s.health.is_some());
            match rec.status {
                Status::Running if !checked => {}
                Status::Running => {
                    let h = ctx.db.supervision(&rec.id)?.health;
                    match h {
                        Some(Health::Healthy) => {}
                        Some(Health::Unhealthy) => bail!("container {} is unhealthy", rec.name),
                        _ => ready = false,
                    }
                }
                Status::Exited if rec.exit_code == Some(0) => {}
                Status::Exited | Status::Dead => {
                    bail!("container {} exited ({})", rec.name, rec.exit_code.unwrap_or(-1))
                }
                _ => ready = false,
            }
        }
        if ready {
            return Ok(());
        }
        if let Some(t) = timeout {
            if start.elapsed() >= t {
                bail!("application not healthy after {}s", t.as_secs());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
