//! Starting, stopping, signalling, pausing and removing containers: the decisions of the
//! lifecycle, acted out through a [`Driver`] (the OCI runtime, the monitors and the clock).
//!
//! The free functions act through the [real driver](SYSTEM); [`Lifecycle`] takes any, so tests
//! run the same decisions on a recording fake.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use nix::sys::signal::Signal;
use oci_spec::runtime::{LinuxNamespaceBuilder, LinuxNamespaceType, Spec};

use super::driver::{Driver, SYSTEM};
use super::exec::Hooks;
use super::{record_event, Roots, StartMode};
use crate::runtime::Runtime;
use crate::state::deferred::or_defer;
use crate::state::{ContainerRecord, ExitRecord, StateDb, Status};

/// One database and state root, acted on through a driver.
pub struct Lifecycle<'a> {
    /// The state root and run directory.
    pub roots: &'a Roots,
    /// The state database.
    pub db: &'a StateDb,
    /// The runtime, monitors and clock.
    pub driver: &'a dyn Driver,
}

impl<'a> Lifecycle<'a> {
    /// The lifecycle of the containers under `roots`, acted on for real.
    pub fn new(roots: &'a Roots, db: &'a StateDb) -> Lifecycle<'a> {
        Lifecycle { roots, db, driver: &SYSTEM }
    }

    /// The same, acted on through `driver`.
    pub fn with_driver(roots: &'a Roots, db: &'a StateDb, driver: &'a dyn Driver) -> Lifecycle<'a> {
        Lifecycle { roots, db, driver }
    }

    /// The runtime that made `rec`.
    pub(super) fn runtime(&self, rec: &ContainerRecord) -> anyhow::Result<Box<dyn Runtime>> {
        self.driver.runtime(self.roots, &rec.runtime)
    }
}

/// Running or paused, or being restarted while its monitor still runs: a process to signal.
fn has_process(rec: &ContainerRecord) -> bool {
    rec.status.is_alive() || (rec.status == Status::Restarting && rec.monitor_pid.is_some())
}

/// Parses a signal name or number (`SIGTERM`, `TERM`, `15`).
pub fn parse_signal(s: &str) -> anyhow::Result<Signal> {
    let canonical = crate::runtime::bundle::canonical_signal(s).ok_or_else(|| anyhow!("unknown signal `{s}`"))?;
    canonical.parse().map_err(|_| anyhow!("unknown signal `{s}`"))
}

/// The last step of a removal: the state row goes, once nothing else of the container is left.
pub fn forget(db: &StateDb, rec: &ContainerRecord) -> anyhow::Result<()> {
    record_event(db, rec, "destroy", &[]);
    // Without space the row stays; the next `rm` or `down` finds nothing left to do but delete it.
    or_defer(db.delete_container(&rec.id), || format!("the removal of `{}`", rec.name))?;
    Ok(())
}

impl Lifecycle<'_> {
    /// Starts a created or exited container; a running one is left alone. Its `post_start` hooks
    /// run once it runs; one that fails fails the start (the container keeps running).
    pub fn start(&self, rec: &ContainerRecord, mode: StartMode) -> anyhow::Result<bool> {
        let mut rec = self.refresh(rec)?;
        // A start already under way (its command was killed, its monitor goes on): let it finish.
        let deadline = self.driver.now() + Duration::from_secs(30);
        while !rec.status.is_alive() && self.driver.monitor_active(self.roots, &rec.id) && self.driver.now() < deadline
        {
            self.driver.sleep(Duration::from_millis(20));
            rec = self.refresh(&rec)?;
        }
        if rec.status.is_alive() && self.db.supervision(&rec.id)?.stop_requested {
            // A stop under way (perhaps of a command killed since): let it end, then start anew.
            let grace = rec.config.stop_grace_secs;
            if let Some(r) = self.wait_exit(&rec.id, Some(Duration::from_secs_f64(grace + 2.0)))? {
                rec = r;
            }
        }
        if rec.status.is_alive() {
            // It stays up: no stop is pending any more.
            or_defer(self.db.set_stop_requested(&rec.id, false), || format!("the start of `{}`", rec.name))?;
            return Ok(false);
        }
        self.join_shared_namespaces(&rec)?;
        self.driver.launch(self.roots, &rec, mode)?;
        if mode == StartMode::Detached {
            self.run_hooks(&rec, Hooks::PostStart)?;
        }
        Ok(true)
    }

    /// Points the bundle at the current `ipc`/`pid`/`uts` namespaces of the containers it shares
    /// them with (their processes change with every start, so this happens at each start).
    fn join_shared_namespaces(&self, rec: &ContainerRecord) -> anyhow::Result<()> {
        let Some(spec) = &rec.config.supervise else { return Ok(()) };
        if spec.share.is_empty() {
            return Ok(());
        }
        let path = self.roots.bundle(&rec.id).join("config.json");
        let mut bundle = Spec::load(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
        for (kind, target) in &spec.share {
            let typ = LinuxNamespaceType::try_from(kind.as_str())?;
            let owner = self.db.container_by_name(target)?.map(|t| self.refresh(&t)).transpose()?;
            let Some(pid) = owner.filter(|t| t.status.is_alive()).and_then(|t| t.pid) else {
                bail!("container `{}` shares the {kind} namespace of `{target}`, which is not running", rec.name);
            };
            let Some(linux) = bundle.linux_mut() else { continue };
            let Some(list) = linux.namespaces_mut() else { continue };
            list.retain(|n| n.typ() != typ);
            list.push(LinuxNamespaceBuilder::default().typ(typ).path(format!("/proc/{pid}/ns/{kind}")).build()?);
            if typ == LinuxNamespaceType::Uts {
                // The names belong to the namespace's owner: setting them would rename it.
                if let Some(sysctl) = linux.sysctl_mut() {
                    sysctl.remove("kernel.domainname");
                    sysctl.remove("kernel.hostname");
                }
                bundle.set_hostname(None);
                bundle.set_domainname(None);
            }
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&crate::runtime::bundle::to_json(&bundle))?)?;
        Ok(())
    }

    /// Checks a row that says the container runs against reality: when its monitor is gone the
    /// container is marked exited/dead (after cleaning up what the monitor would have).
    pub fn refresh(&self, rec: &ContainerRecord) -> anyhow::Result<ContainerRecord> {
        let Some(rec) = self.db.container(&rec.id)? else { return Ok(rec.clone()) };
        let rec = &rec;
        if !rec.status.is_alive() && rec.status != Status::Restarting {
            return Ok(rec.clone());
        }
        let monitor_alive = rec.monitor_pid.is_some_and(|p| self.driver.pid_alive(p));
        if monitor_alive || self.driver.monitor_active(self.roots, &rec.id) {
            return Ok(rec.clone());
        }
        if rec.status == Status::Restarting && rec.monitor_pid.is_none() {
            return Ok(rec.clone());
        }
        let rt = self.runtime(rec)?;
        let state = rt.state(&rec.id).ok().flatten();
        if state.as_ref().is_some_and(|s| s.status == "running" || s.status == "paused") {
            // Orphaned but alive: it keeps running; its exit code will be unknown.
            return Ok(rec.clone());
        }
        // What stays is removed again, and reported, by `rm` (and the next start unmounts it first).
        let _ = self.cleanup_runtime(rt.as_ref(), &rec.id);
        let exit = ExitRecord { code: None, oom_killed: false };
        let recorded = or_defer(self.db.record_exit(&rec.id, exit), || format!("the exit of `{}`", rec.name))?;
        if recorded.is_none() {
            // Not written down (no space): the row catches up at the next look; this one is true.
            let mut gone = rec.clone();
            gone.status = Status::Dead;
            gone.pid = None;
            gone.monitor_pid = None;
            return Ok(gone);
        }
        Ok(self.db.container(&rec.id)?.unwrap_or_else(|| rec.clone()))
    }

    /// Deletes the runtime's container and unmounts the rootfs of a container that is not
    /// running; says what it could not remove (the run directory goes either way).
    fn cleanup_runtime(&self, rt: &dyn Runtime, id: &str) -> anyhow::Result<()> {
        let deleted = match rt.knows(id) {
            true => rt.delete(id, true).map_err(anyhow::Error::from),
            false => Ok(()),
        };
        let rootfs = self.roots.rootfs(id);
        let unmounted = match super::is_mount_point(&rootfs) {
            true => nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH)
                .with_context(|| format!("cannot unmount `{}`", rootfs.display())),
            false => Ok(()),
        };
        crate::monitor::remove_run_dir(self.roots, id);
        deleted.and(unmounted)
    }

    /// Waits until the container's row is no longer running/paused (its monitor recorded the exit).
    /// A container whose monitor died is watched through the runtime instead and marked dead when it
    /// is gone. Returns the row, or `None` on timeout.
    pub fn wait_exit(&self, id: &str, timeout: Option<Duration>) -> anyhow::Result<Option<ContainerRecord>> {
        let start = self.driver.now();
        let mut delay = Duration::from_millis(2);
        loop {
            let Some(rec) = self.db.container(id)? else { return Ok(None) };
            if !rec.status.is_alive() && rec.monitor_pid.is_none() {
                return Ok(Some(rec));
            }
            if rec.monitor_pid.is_none_or(|p| !self.driver.pid_alive(p)) {
                let rec = self.refresh(&rec)?;
                if !rec.status.is_alive() {
                    return Ok(Some(rec));
                }
            }
            if timeout.is_some_and(|t| self.driver.now().saturating_duration_since(start) >= t) {
                return Ok(None);
            }
            self.driver.sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }

    /// Stops a running container: its stop signal, then SIGKILL after `timeout` (default: the
    /// service's `stop_grace_period`). Returns whether it was running.
    pub fn stop(&self, rec: &ContainerRecord, timeout: Option<Duration>) -> anyhow::Result<bool> {
        let rec = self.refresh(rec)?;
        // The user's stop, also of a container waiting to be restarted: restart policies leave it
        // alone until it starts again.
        or_defer(self.db.set_stop_requested(&rec.id, true), || format!("the stop request of `{}`", rec.name))?;
        if !has_process(&rec) {
            return Ok(false);
        }
        let config = &rec.config;
        let rt = self.runtime(&rec)?;
        let grace = timeout.unwrap_or_else(|| Duration::from_secs_f64(config.stop_grace_secs));
        if rec.status == Status::Paused {
            // A frozen process cannot handle its signal.
            // One that is not paused any more needs no resume; the kill below works either way.
            let _ = rt.resume(&rec.id);
            or_defer(self.db.set_status(&rec.id, Status::Running), || format!("the status of `{}`", rec.name))?;
        }
        if rec.status == Status::Running {
            // A failing hook does not keep the container from stopping (it logs its own output).
            let _ = self.run_hooks(&rec, Hooks::PreStop);
        }
        let signal = parse_signal(&config.stop_signal).unwrap_or(Signal::SIGTERM);
        if !grace.is_zero() {
            // One that is gone already is what is wanted; SIGKILL follows below.
            let _ = rt.kill(&rec.id, signal, false);
            if self.wait_exit(&rec.id, Some(grace))?.is_some() {
                record_event(self.db, &rec, "stop", &[]);
                return Ok(true);
            }
        }
        // Gone already is what is wanted; the wait below says whether it went.
        let _ = rt.kill(&rec.id, Signal::SIGKILL, true);
        if self.wait_exit(&rec.id, Some(Duration::from_secs(30)))?.is_none() {
            bail!("container `{}` did not exit after SIGKILL", rec.name);
        }
        record_event(self.db, &rec, "stop", &[]);
        Ok(true)
    }

    /// Sends `signal` to a running container's init.
    pub fn kill(&self, rec: &ContainerRecord, signal: Signal) -> anyhow::Result<bool> {
        let rec = self.refresh(rec)?;
        if !has_process(&rec) {
            return Ok(false);
        }
        let rt = self.runtime(&rec)?;
        if matches!(signal, Signal::SIGKILL | Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT) {
            or_defer(self.db.set_stop_requested(&rec.id, true), || format!("the stop request of `{}`", rec.name))?;
        }
        rt.kill(&rec.id, signal, false)?;
        record_event(self.db, &rec, "kill", &[("signal", signal.as_str().into())]);
        Ok(true)
    }

    /// Stops (with `timeout`) and starts again, keeping `logs -f` followers attached.
    pub fn restart(&self, rec: &ContainerRecord, timeout: Option<Duration>) -> anyhow::Result<()> {
        let rec = self.refresh(rec)?;
        if rec.status.is_alive() {
            self.db.set_status(&rec.id, Status::Restarting)?;
            if let Err(e) = self.stop(&rec, timeout) {
                self.db.set_status(&rec.id, Status::Running)?;
                return Err(e);
            }
        }
        let rec = self.db.container(&rec.id)?.ok_or_else(|| anyhow!("container `{}` is gone", rec.name))?;
        self.db.count_restart(&rec.id)?;
        let started =
            self.join_shared_namespaces(&rec).and_then(|_| self.driver.launch(self.roots, &rec, StartMode::Detached));
        if started.is_err() {
            self.db.set_status(&rec.id, Status::Exited)?;
        }
        started?;
        record_event(self.db, &rec, "restart", &[]);
        Ok(())
    }

    /// Freezes a running container.
    pub fn pause(&self, rec: &ContainerRecord) -> anyhow::Result<()> {
        let rec = self.refresh(rec)?;
        if rec.status != Status::Running {
            bail!("container `{}` is not running", rec.name);
        }
        self.runtime(&rec)?.pause(&rec.id)?;
        self.db.set_status(&rec.id, Status::Paused)?;
        record_event(self.db, &rec, "pause", &[]);
        Ok(())
    }

    /// Thaws a paused container.
    pub fn unpause(&self, rec: &ContainerRecord) -> anyhow::Result<()> {
        let rec = self.refresh(rec)?;
        if rec.status != Status::Paused {
            bail!("container `{}` is not paused", rec.name);
        }
        self.runtime(&rec)?.resume(&rec.id)?;
        self.db.set_status(&rec.id, Status::Running)?;
        record_event(self.db, &rec, "unpause", &[]);
        Ok(())
    }

    /// Removes a container that does not run (with `force`, kills it first): runtime state, mounts,
    /// files, then the state row.
    pub fn remove(&self, rec: &ContainerRecord, force: bool) -> anyhow::Result<()> {
        let rec = self.dismantle(rec, force)?;
        forget(self.db, &rec)
    }

    /// What [`remove`](Self::remove) does before the state row goes: the container's process (with `force`),
    /// runtime state, mounts and files. Returns the row as it is now.
    pub fn dismantle(&self, rec: &ContainerRecord, force: bool) -> anyhow::Result<ContainerRecord> {
        let rec = self.refresh(rec)?;
        if rec.status.is_alive() {
            if !force {
                bail!("container `{}` is running: stop it first or use `--force`", rec.name);
            }
            self.stop(&rec, Some(Duration::ZERO))?;
        }
        let rt = self.runtime(&rec)?;
        self.cleanup_runtime(rt.as_ref(), &rec.id)?;
        let dir = self.roots.container_dir(&rec.id);
        // Another process (a `run --rm` monitor) may be removing it at the same time.
        if let Err(e) = super::paths::remove_tree(&self.roots.containers_dir(), &dir) {
            if dir.exists() {
                return Err(e).with_context(|| format!("cannot remove `{}`", dir.display()));
            }
        }
        Ok(rec)
    }
}

/// Starts a created or exited container; a running one is left alone. Its `post_start` hooks
/// run once it runs; one that fails fails the start (the container keeps running).
pub fn start(roots: &Roots, db: &StateDb, rec: &ContainerRecord, mode: StartMode) -> anyhow::Result<bool> {
    Lifecycle::new(roots, db).start(rec, mode)
}

/// Checks a row that says the container runs against reality: when its monitor is gone the
/// container is marked exited/dead (after cleaning up what the monitor would have).
pub fn refresh(roots: &Roots, db: &StateDb, rec: &ContainerRecord) -> anyhow::Result<ContainerRecord> {
    Lifecycle::new(roots, db).refresh(rec)
}

/// Waits until the container's row is no longer running/paused (its monitor recorded the exit).
/// A container whose monitor died is watched through the runtime instead and marked dead when it
/// is gone. Returns the row, or `None` on timeout.
pub fn wait_exit(
    roots: &Roots,
    db: &StateDb,
    id: &str,
    timeout: Option<Duration>,
) -> anyhow::Result<Option<ContainerRecord>> {
    Lifecycle::new(roots, db).wait_exit(id, timeout)
}

/// Stops a running container: its stop signal, then SIGKILL after `timeout` (default: the
/// service's `stop_grace_period`). Returns whether it was running.
pub fn stop(roots: &Roots, db: &StateDb, rec: &ContainerRecord, timeout: Option<Duration>) -> anyhow::Result<bool> {
    Lifecycle::new(roots, db).stop(rec, timeout)
}

/// Sends `signal` to a running container's init.
pub fn kill(roots: &Roots, db: &StateDb, rec: &ContainerRecord, signal: Signal) -> anyhow::Result<bool> {
    Lifecycle::new(roots, db).kill(rec, signal)
}

/// Stops (with `timeout`) and starts again, keeping `logs -f` followers attached.
pub fn restart(roots: &Roots, db: &StateDb, rec: &ContainerRecord, timeout: Option<Duration>) -> anyhow::Result<()> {
    Lifecycle::new(roots, db).restart(rec, timeout)
}

/// Freezes a running container.
pub fn pause(roots: &Roots, db: &StateDb, rec: &ContainerRecord) -> anyhow::Result<()> {
    Lifecycle::new(roots, db).pause(rec)
}

/// Thaws a paused container.
pub fn unpause(roots: &Roots, db: &StateDb, rec: &ContainerRecord) -> anyhow::Result<()> {
    Lifecycle::new(roots, db).unpause(rec)
}

/// Removes a container that does not run (with `force`, kills it first): runtime state, mounts,
/// files, then the state row.
pub fn remove(roots: &Roots, db: &StateDb, rec: &ContainerRecord, force: bool) -> anyhow::Result<()> {
    Lifecycle::new(roots, db).remove(rec, force)
}

/// What [`remove`] does before the state row goes: the container's process (with `force`),
/// runtime state, mounts and files. Returns the row as it is now.
pub fn dismantle(roots: &Roots, db: &StateDb, rec: &ContainerRecord, force: bool) -> anyhow::Result<ContainerRecord> {
    Lifecycle::new(roots, db).dismantle(rec, force)
}
