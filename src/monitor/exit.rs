//! When the container's init exits: reaping, recording the exit, cleaning up, and the
//! supervisor check.

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{attach, remove_run_dir, Monitor};
use crate::container;
use crate::runtime::Runtime;
use crate::state::ExitRecord;
use crate::supervise::client;

impl Monitor {
    /// Reaps children; returns the container's exit code when its init was among them.
    pub(super) fn reap(&mut self) -> Option<i32> {
        let mut code = None;
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, c)) if pid.as_raw() == self.pid => code = Some(c),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == self.pid => code = Some(128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        code
    }

    /// Records the exit and cleans up after the container.
    pub(super) fn finish(&mut self, exit: Option<i32>) {
        // A log that cannot be written loses its tail; the exit is still recorded below.
        let _ = self.log.flush();
        // Read before the runtime's delete removes the cgroup.
        let oom = container::host_oom_killed(&self.config.cgroups_path);
        let code = exit.unwrap_or(-1);
        if self.config.auto_remove {
            // `run --rm`: nothing will start this container again, so its client may go as soon as
            // the exit is recorded; the removal follows. Should this process die in between, the
            // row (exited) is still there and `rm` finishes the job.
            self.record(exit, oom);
            self.broadcast(attach::EXIT, &code.to_be_bytes());
            self.clients.clear();
            self.release();
            // With what the project side made for it: its network namespace and leases, secrets,
            // volumes held and anonymous volumes (a failure leaves the row for `rm` or `down`).
            if let Ok(Some(rec)) = self.db.container(&self.id) {
                if let Err(e) = crate::stack::engine::remove_exited(&self.roots, &self.db, &rec) {
                    eprintln!("monitor: {e:#}");
                }
            }
            return;
        }
        // Everything of this run is gone before the exit is recorded: a `start` may follow at once.
        self.release();
        self.record(exit, oom);
        self.broadcast(attach::EXIT, &code.to_be_bytes());
        self.clients.clear();
        // Its restart policy needs a supervisor: one killed meanwhile is started again.
        self.check_supervisor("exited");
    }

    /// Deletes the runtime's container, unmounts the rootfs and removes the run directory.
    fn release(&mut self) {
        // The init is gone, so a plain delete does; force only if the runtime disagrees.
        if self.runtime.delete(&self.id, false).is_err() {
            if let Err(e) = self.runtime.delete(&self.id, true) {
                eprintln!("monitor: {e}");
            }
        }
        let rootfs = self.roots.rootfs(&self.id);
        if nix::mount::umount2(&rootfs, nix::mount::MntFlags::empty()).is_err() {
            if let Err(e) = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH) {
                eprintln!("monitor: cannot unmount `{}`: {e}", rootfs.display());
            }
        }
        remove_run_dir(&self.roots, &self.id);
    }

    /// Writes the exit code and the `oom`/`die` events.
    fn record(&mut self, exit: Option<i32>, oom: bool) {
        if let Err(e) = self.db.record_exit(&self.id, ExitRecord { code: exit, oom_killed: oom }) {
            // The next command that looks finds the container gone and says its exit is unknown.
            eprintln!("monitor: cannot record the exit of {}: {e}", self.id);
        }
        if let Ok(Some(rec)) = self.db.container(&self.id) {
            if oom {
                container::record_event(&self.db, &rec, "oom", &[]);
            }
            container::record_event(&self.db, &rec, "die", &[("exitCode", exit.unwrap_or(-1).into())]);
        }
    }

    /// Starts the project's supervisor when none runs (this container's names, ports, health
    /// check and restart policy are served by it). Light: a lock probe, and a process started
    /// without waiting for it (it is reaped with the other children).
    pub(super) fn check_supervisor(&self, what: &str) {
        let Some((project, name)) = &self.supervised else { return };
        // Not while a user stops the container (`stop`, `down`): nothing is left to serve then.
        if client::liveness(&self.roots, project) == client::Liveness::Absent
            && !self.db.supervision(&self.id).is_ok_and(|s| s.stop_requested)
        {
            let why = format!("container {name} {what} and project {project:?} has no supervisor");
            client::revive(&self.roots, project, &why);
        }
    }
}
