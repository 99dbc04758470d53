//! The watch loop: inotify (through `notify`) on every rule's path and on the compose files,
//! changes gathered into batches, each batch applied per rule to the service's running
//! containers — synced, restarted, a command run, or the image rebuilt — and a changed compose
//! file, `.env` or `env_file` reloaded and applied as `up` would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use berth_compose::model::WatchAction;
use berth_compose::Project;
use notify::RecursiveMode;

use super::batch::{self, Batch};
use super::rules::{self, Rule};
use super::sync::{Synced, Target};
use crate::container::{ExecRequest, Roots};
use crate::events::{Event, EventSink};
use crate::state::{ContainerRecord, StateDb, Status};

/// What the command line layer does for the watcher: reload the compose files, bring the project
/// to what they say, rebuild a service's image and recreate it.
pub trait Driver {
    /// Loads the compose files again: the project and the files to watch for it.
    fn reload(&mut self) -> anyhow::Result<(Project, Vec<PathBuf>)>;
    /// Applies `project` as `up` would (recreating what changed).
    fn converge(&mut self, project: &Project) -> anyhow::Result<()>;
    /// Rebuilds `service`'s image and recreates its containers (not its dependencies').
    fn rebuild(&mut self, project: &Project, service: &str) -> anyhow::Result<()>;
}

/// A watch of one project.
pub struct Watch<'a> {
    /// State and run roots.
    pub roots: &'a Roots,
    /// The state database.
    pub db: &'a StateDb,
    /// Where each action is told.
    pub events: &'a dyn EventSink,
    /// The project as loaded.
    pub project: Project,
    /// Its directory (rule paths are relative to it).
    pub project_dir: PathBuf,
    /// The compose files, `.env` and `env_file`s: a change reloads the project.
    pub config_files: Vec<PathBuf>,
    /// The services watched (all with rules when empty).
    pub services: Vec<String>,
    /// Set to stop watching.
    pub stop: Arc<AtomicBool>,
}

impl Watch<'_> {
    /// Watches until `stop` is set.
    pub fn run(mut self, driver: &mut dyn Driver) -> anyhow::Result<()> {
        let _once = WatchLock::take(self.roots, &self.project.name)?;
        let mut rules = self.rules()?;
        let (tx, rx) = std::sync::mpsc::channel::<Vec<PathBuf>>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                if !matches!(ev.kind, notify::EventKind::Access(_)) {
                    // The receiver is gone only when watching has ended.
                    let _ = tx.send(ev.paths);
                }
            }
        })?;
        let mut watched = Watched::default();
        watched.add_rules(&mut watcher, &rules)?;
        watched.add_files(&mut watcher, &self.config_files)?;
        for rule in rules.iter().filter(|r| r.initial_sync && r.syncs()) {
            self.apply(driver, rule, &BTreeSet::from([PathBuf::new()]), true);
        }
        let message =
            format!("watching {} rule{} (Ctrl-C stops)", rules.len(), if rules.len() == 1 { "" } else { "s" });
        self.events.emit(Event::Watch { service: "berth".into(), message, failed: false });
        while !self.stop.load(Ordering::SeqCst) {
            let changes = match batch::next(&rx, Duration::from_millis(200)) {
                Batch::Changes(c) => c,
                Batch::Idle => continue,
                Batch::Closed => break,
            };
            if changes.iter().any(|p| self.config_files.contains(p)) {
                if let Some(new_rules) = self.reload(driver) {
                    rules = new_rules;
                    watched.add_rules(&mut watcher, &rules)?;
                    watched.add_files(&mut watcher, &self.config_files)?;
                }
            }
            // A rule path that appeared: watched from now on, and synced whole.
            let appeared = watched.appeared(&mut watcher)?;
            for rule in &rules {
                let mut rels: BTreeSet<PathBuf> = changes.iter().filter_map(|p| rule.relative(p)).collect();
                if appeared.contains(&rule.path) {
                    rels.insert(PathBuf::new());
                }
                if !rels.is_empty() {
                    self.apply(driver, rule, &rels, false);
                }
            }
        }
        Ok(())
    }

    fn rules(&self) -> anyhow::Result<Vec<Rule>> {
        let rules = rules::rules(&self.project, &self.project_dir, &self.services)?;
        if rules.is_empty() {
            bail!("none of the selected services has `develop.watch` rules");
        }
        Ok(rules)
    }

    /// Reloads the project after its files changed and applies it; on an error the stack stays
    /// as it was (and so do the rules). Returns the new rules when the reload was applied.
    fn reload(&mut self, driver: &mut dyn Driver) -> Option<Vec<Rule>> {
        let started = Instant::now();
        let tell = |service: &str, message: String, failed: bool| {
            self.events.emit(Event::Watch { service: service.to_string(), message, failed });
        };
        let (project, files) = match driver.reload() {
            Ok(r) => r,
            Err(e) => {
                tell("compose", format!("not reloaded, the stack runs as it was: {e:#}"), true);
                return None;
            }
        };
        if let Err(e) = driver.converge(&project) {
            tell("compose", format!("reloaded, but applying it failed: {e:#}"), true);
            return None;
        }
        let rules = match rules::rules(&project, &self.project_dir, &self.services) {
            Ok(r) => r,
            Err(e) => {
                tell("compose", format!("reloaded, but its watch rules are not: {e}"), true);
                return None;
            }
        };
        tell("compose", format!("reloaded and applied in {}", took(started)), false);
        self.project = project;
        self.config_files = files;
        Some(rules)
    }

    /// Applies `rule` for the changed paths `rels` to the service's containers.
    fn apply(&self, driver: &mut dyn Driver, rule: &Rule, rels: &BTreeSet<PathBuf>, initial: bool) {
        let started = Instant::now();
        let service = &rule.service;
        let tell = |message: String, failed: bool| {
            self.events.emit(Event::Watch { service: service.clone(), message, failed })
        };
        let result = (|| -> anyhow::Result<String> {
            if rule.action == WatchAction::Rebuild {
                driver.rebuild(&self.project, service)?;
                return Ok(format!("rebuilt and recreated in {}", took(started)));
            }
            let running = self.running(service)?;
            if running.is_empty() {
                return Ok("no running container: nothing applied".into());
            }
            let mut words = Vec::new();
            if rule.syncs() {
                let mut synced = Synced::default();
                for rec in &running {
                    synced += sync_into(rec, rule, rels, initial)?;
                }
                words.push(describe(synced, running.len()));
            }
            match rule.action {
                WatchAction::Restart | WatchAction::SyncRestart => {
                    let session = crate::app::Session {
                        project: &self.project,
                        roots: self.roots,
                        db: self.db,
                        events: self.events,
                        parallel: None,
                        stop_timeout: None,
                        pinned: Default::default(),
                    };
                    let mut names = Vec::new();
                    crate::app::restart::restart(&session, std::slice::from_ref(service), true, None, &mut |n| {
                        names.push(n.to_string())
                    })?;
                    words.push(format!("restarted {}", names.join(", ")));
                }
                WatchAction::SyncExec => {
                    let hook = rule.exec.as_ref().ok_or_else(|| anyhow!("sync+exec without exec"))?;
                    for rec in &running {
                        let code = crate::container::exec(self.roots, self.db, rec, &exec_request(hook))?;
                        words.push(format!("ran `{}` in {} (exit {code})", hook.command.join(" "), rec.name));
                    }
                }
                _ => {}
            }
            Ok(format!("{} in {}", words.join(", "), took(started)))
        })();
        match result {
            Ok(message) => tell(message, false),
            Err(e) => tell(format!("{} failed: {e:#}", rules::action_name(rule.action)), true),
        }
    }

    /// The service's containers that run now.
    fn running(&self, service: &str) -> anyhow::Result<Vec<ContainerRecord>> {
        let mut out = Vec::new();
        for rec in crate::container::select(self.db, &self.project.name, &[service.to_string()], false)? {
            let rec = crate::container::refresh(self.roots, self.db, &rec)?;
            if rec.status == Status::Running && rec.pid.is_some() {
                out.push(rec);
            }
        }
        Ok(out)
    }
}

/// Syncs `rels` (relative to the rule's path) into container `rec`.
fn sync_into(rec: &ContainerRecord, rule: &Rule, rels: &BTreeSet<PathBuf>, initial: bool) -> anyhow::Result<Synced> {
    let pid = rec.pid.ok_or_else(|| anyhow!("container {} has no process", rec.name))?;
    let target = rule.target.as_deref().ok_or_else(|| anyhow!("a sync rule without a target"))?;
    let mut done = Synced::default();
    // A rule on a single file: its target is the file's path in the container.
    if !rule.path.is_dir() && rels.iter().all(|r| r.as_os_str().is_empty()) {
        let dir = target.parent().unwrap_or(Path::new("/"));
        let name = target.file_name().map(PathBuf::from).unwrap_or_default();
        done += Target::of_container(pid, dir)?.apply(&rule.path, &name, initial)?;
        return Ok(done);
    }
    let t = Target::of_container(pid, target)?;
    // A path under another changed directory is synced with it.
    let mut covered: Vec<&PathBuf> = Vec::new();
    for rel in rels {
        if covered.iter().any(|c| rel.starts_with(c) && rule.path.join(c).is_dir()) {
            continue;
        }
        let host = rule.path.join(rel);
        // A changed directory is brought over with only what differs in it.
        done += t.apply(&host, rel, initial || host.is_dir())?;
        covered.push(rel);
    }
    Ok(done)
}

fn describe(s: Synced, containers: usize) -> String {
    let mut parts = vec![format!("synced {} file{}", s.written, if s.written == 1 { "" } else { "s" })];
    if s.deleted > 0 {
        parts.push(format!("deleted {}", s.deleted));
    }
    if s.unchanged > 0 {
        parts.push(format!("{} already there", s.unchanged));
    }
    if containers > 1 {
        parts.push(format!("to {containers} containers"));
    }
    parts.join(", ")
}

fn exec_request(hook: &berth_compose::model::Hook) -> ExecRequest {
    ExecRequest {
        command: hook.command.clone(),
        user: hook.user.clone(),
        working_dir: hook.working_dir.clone(),
        env: hook.environment.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?))).collect(),
        tty: false,
        detach: false,
        privileged: hook.privileged.unwrap_or(false),
        quiet: false,
    }
}

fn took(since: Instant) -> String {
    let t = since.elapsed();
    if t < Duration::from_secs(1) {
        format!("{} ms", t.as_millis())
    } else {
        format!("{:.1} s", t.as_secs_f64())
    }
}

/// What inotify watches: rule paths (recursively), the nearest existing parent of a rule path
/// that does not exist yet, and the directories of the compose files.
#[derive(Default)]
struct Watched {
    recursive: BTreeSet<PathBuf>,
    flat: BTreeSet<PathBuf>,
    /// Rule paths waiting to appear.
    pending: BTreeSet<PathBuf>,
}

impl Watched {
    fn add_rules(&mut self, w: &mut impl notify::Watcher, rules: &[Rule]) -> anyhow::Result<()> {
        for rule in rules {
            if rule.path.exists() {
                self.recursive_watch(w, &rule.path)?;
            } else {
                self.pending.insert(rule.path.clone());
                if let Some(parent) = rule.path.ancestors().skip(1).find(|a| a.exists()) {
                    self.flat_watch(w, parent)?;
                }
            }
        }
        Ok(())
    }

    fn add_files(&mut self, w: &mut impl notify::Watcher, files: &[PathBuf]) -> anyhow::Result<()> {
        // Editors replace files by renaming: the directory is watched, not the file.
        for dir in files.iter().filter_map(|f| f.parent()) {
            if dir.exists() {
                self.flat_watch(w, dir)?;
            }
        }
        Ok(())
    }

    /// Rule paths that exist now and did not before (they are watched from now on).
    fn appeared(&mut self, w: &mut impl notify::Watcher) -> anyhow::Result<BTreeSet<PathBuf>> {
        let now: BTreeSet<PathBuf> = self.pending.iter().filter(|p| p.exists()).cloned().collect();
        for p in &now {
            self.pending.remove(p);
            self.recursive_watch(w, p)?;
        }
        // Still missing: their nearest existing parent may be deeper now.
        let still: Vec<PathBuf> = self.pending.iter().cloned().collect();
        for p in still {
            if let Some(parent) = p.ancestors().skip(1).find(|a| a.exists()) {
                self.flat_watch(w, parent)?;
            }
        }
        Ok(now)
    }

    fn recursive_watch(&mut self, w: &mut impl notify::Watcher, path: &Path) -> anyhow::Result<()> {
        if self.recursive.iter().any(|r| path.starts_with(r)) {
            return Ok(());
        }
        w.watch(path, RecursiveMode::Recursive).map_err(|e| watch_error(e, path))?;
        self.recursive.insert(path.to_path_buf());
        Ok(())
    }

    fn flat_watch(&mut self, w: &mut impl notify::Watcher, dir: &Path) -> anyhow::Result<()> {
        if self.flat.contains(dir) || self.recursive.iter().any(|r| dir.starts_with(r)) {
            return Ok(());
        }
        w.watch(dir, RecursiveMode::NonRecursive).map_err(|e| watch_error(e, dir))?;
        self.flat.insert(dir.to_path_buf());
        Ok(())
    }
}

/// A watch that could not be set, with what to do when the kernel's limit is reached.
fn watch_error(e: notify::Error, path: &Path) -> anyhow::Error {
    let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches").unwrap_or_default();
    let full = matches!(e.kind, notify::ErrorKind::MaxFilesWatch)
        || matches!(&e.kind, notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::ENOSPC));
    if full {
        return anyhow!(
            "cannot watch `{}`: the kernel's inotify watch limit is reached (fs.inotify.max_user_watches = {}); \
             raise it, e.g. `sysctl fs.inotify.max_user_watches=1048576`, or ignore large directories in the rule",
            path.display(),
            limit.trim()
        );
    }
    anyhow!("cannot watch `{}`: {e}", path.display())
}

/// Held while a watch of a project runs: a second one says so instead of doubling every action.
struct WatchLock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

impl WatchLock {
    fn take(roots: &Roots, project: &str) -> anyhow::Result<WatchLock> {
        let dir = roots.run.join("locks");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("watch-{project}"));
        let file = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path)?;
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                use std::io::{Seek, Write};
                lock.set_len(0)?;
                lock.seek(std::io::SeekFrom::Start(0))?;
                write!(lock, "{}", std::process::id())?;
                Ok(WatchLock(lock))
            }
            Err((_, _)) => {
                let pid = std::fs::read_to_string(&path).unwrap_or_default();
                bail!("a watch of project {project:?} already runs (berth pid {})", pid.trim())
            }
        }
    }
}

/// The files whose change reloads a project: the compose files, the project's `.env`, and every
/// service's `env_file`s.
pub fn config_files(project: &Project, project_dir: &Path, compose_files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: BTreeMap<PathBuf, ()> = compose_files.iter().map(|f| (f.clone(), ())).collect();
    out.insert(project_dir.join(".env"), ());
    for svc in project.services.values() {
        for f in &svc.env_file {
            out.insert(project_dir.join(&f.path), ());
        }
    }
    out.into_keys().collect()
}
