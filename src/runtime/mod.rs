//! Running containers through an OCI runtime binary (`runc`, `crun`) behind the [`Runtime`] trait,
//! and generating the bundle config the runtime reads.
//!
//! The OCI runtime CLI protocol (runtime-spec `runtime.md`, runc's man pages):
//! - `create --bundle DIR --pid-file FILE ID` sets the container up (namespaces, cgroup, mounts,
//!   seccomp) and leaves its init blocked before `exec` of the user process; the runtime process
//!   exits and the init is re-parented (to the nearest child subreaper). Without a terminal the
//!   init inherits the runtime's stdio; with `process.terminal` the runtime sends the pty master
//!   over `--console-socket` (SCM_RIGHTS).
//! - `start ID` lets the init exec the user process: state `created` → `running`.
//! - `run --detach` (same options as `create`) is `create` + `start` in one process; like
//!   `create` it returns with the init re-parented, now running the user process.
//! - `state ID` prints JSON (`status`: creating | created | running | paused | stopped, `pid`).
//! - `kill [--all] ID SIGNAL`, `pause ID` / `resume ID` (cgroup freezer), `delete [--force] ID`
//!   (removes the runtime's state and the cgroup; `--force` kills first).
//! - `exec --process FILE [--tty] [--detach] ID` runs one more process in the container; in the
//!   foreground its exit status is the process's.

pub mod bundle;
pub mod defaults;
mod oci_cli;
pub mod seccomp;
#[cfg(test)]
pub(crate) mod testing;
pub mod user;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub use oci_cli::OciCli;

/// Errors of the runtime driver.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No usable runtime binary.
    #[error("no OCI runtime found: {detail}\nhint: install one with `apt-get install runc` (or `crun`), or name it with `--runtime`/`BERTH_RUNTIME`")]
    Missing {
        /// What was looked for.
        detail: String,
    },
    /// The runtime binary failed.
    #[error("`{runtime} {op}` failed for container {id}: {stderr}")]
    Failed {
        /// Runtime name.
        runtime: String,
        /// The subcommand.
        op: String,
        /// Container id.
        id: String,
        /// What the runtime printed.
        stderr: String,
    },
    /// Running the binary failed.
    #[error("cannot run `{runtime}`: {source}")]
    Spawn {
        /// Runtime path.
        runtime: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// The exit status Docker gives a process the runtime could not start, from the runtime's
/// message: 127 when the executable is not there (`executable file not found in $PATH`, `no such
/// file or directory`), 126 when it cannot be run (`permission denied`, a directory, not an
/// executable format); `None` when the message is not about the executable (runc's `exec: "..."`,
/// crun's `executable file` / `open executable`).
pub fn exec_failure_code(message: &str) -> Option<u8> {
    let m = message.to_ascii_lowercase();
    let about_exec = m.contains("exec: \"") || m.contains("executable file") || m.contains("open executable");
    if !about_exec {
        return None;
    }
    if m.contains("not found") || m.contains("no such file or directory") {
        Some(127)
    } else {
        Some(126)
    }
}

/// Result type of the runtime module.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// What the runtime reports about a container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RuntimeState {
    /// `creating`, `created`, `running`, `paused` or `stopped`.
    pub status: String,
    /// Host pid of the init (0 when stopped).
    #[serde(default)]
    pub pid: i32,
}

/// The container's stdio at `create`.
pub enum CreateIo {
    /// stdin (or `/dev/null` when `None`), stdout and stderr handed to the container's init.
    Pipes {
        /// Read end for the container's stdin.
        stdin: Option<OwnedFd>,
        /// Write end for stdout.
        stdout: OwnedFd,
        /// Write end for stderr.
        stderr: OwnedFd,
    },
    /// A terminal: the runtime sends the pty master to this listening Unix socket.
    Console {
        /// The socket path.
        socket: PathBuf,
    },
}

/// How `exec` attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecMode {
    /// Allocate a terminal (the runtime relays it to its own stdio).
    pub tty: bool,
    /// Return once the process started; its stdio is `/dev/null`.
    pub detach: bool,
    /// Wait for the exit code, with stdio on `/dev/null` (health probes).
    pub quiet: bool,
}

/// An OCI runtime, in berth's vocabulary.
pub trait Runtime: Send + Sync {
    /// `runc` or `crun`.
    fn name(&self) -> &str;
    /// Creates the container from `bundle`; its init's pid is written to `pid_file`.
    fn create(&self, id: &str, bundle: &Path, pid_file: &Path, io: CreateIo) -> Result<()>;
    /// Starts the user process of a created container.
    fn start(&self, id: &str) -> Result<()>;
    /// [`create`](Self::create) and [`start`](Self::start) in one runtime call (`run --detach`,
    /// one runtime process fewer), not waited for: the caller prepares while the runtime works,
    /// reaps the returned process and hands its status to [`run_finished`](Self::run_finished).
    fn spawn_run(&self, id: &str, bundle: &Path, pid_file: &Path, io: CreateIo) -> Result<std::process::Child>;
    /// The outcome of a [`spawn_run`](Self::spawn_run) whose process exited with `status`: the
    /// container runs, or the runtime's error.
    fn run_finished(&self, id: &str, pid_file: &Path, status: std::process::ExitStatus) -> Result<()>;
    /// The container's state; `None` when the runtime does not know it.
    fn state(&self, id: &str) -> Result<Option<RuntimeState>>;
    /// Sends `signal` to the init, or with `all` to every process of the container.
    fn kill(&self, id: &str, signal: nix::sys::signal::Signal, all: bool) -> Result<()>;
    /// Removes the container (with `force` even when it still runs).
    fn delete(&self, id: &str, force: bool) -> Result<()>;
    /// Whether the runtime keeps state for container `id` (asked without running the runtime):
    /// only then is there something to [`delete`](Self::delete).
    fn knows(&self, id: &str) -> bool;
    /// Runs the process described by the OCI process JSON at `process` inside the container with
    /// the caller's stdio; returns its exit code (0 when detached).
    fn exec(&self, id: &str, process: &Path, mode: ExecMode) -> Result<i32>;
    /// Starts the process described by the OCI process JSON at `process` inside the container,
    /// its stdio on `/dev/null`, without waiting: the runtime writes the process's host pid to
    /// `pid_file` once it runs. The returned runtime process exits with the process's status. The
    /// process leads a process group of its own (the runtime makes it a session leader), so the
    /// caller can kill it with all it started (health probes that exceed their timeout).
    fn spawn_exec(&self, id: &str, process: &Path, pid_file: &Path) -> Result<std::process::Child>;
    /// Runs the container from `bundle` in the foreground (`run` without `--detach`): its stdout
    /// and stderr are `stdout` and `stderr`, stdin is `/dev/null`. The returned runtime process
    /// exits with the container's status once it ends, and removes the container; the runtime's
    /// own error, when it failed to start the container, is in [`Runtime::logged_error`].
    fn spawn_attached(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> Result<std::process::Child>;
    /// The last error the runtime logged for the container whose pid file is `pid_file`.
    fn logged_error(&self, pid_file: &Path) -> Option<String>;
    /// Freezes every process of the container.
    fn pause(&self, id: &str) -> Result<()>;
    /// Thaws it.
    fn resume(&self, id: &str) -> Result<()>;
}

/// Finds the runtime to use: `wanted` (from `--runtime` or `BERTH_RUNTIME`) when given, else `crun`
/// when installed and usable on this host, else `runc`. `state_dir` is where the runtime keeps its
/// state (`--root`), one directory per runtime under berth's run directory.
pub fn select(wanted: Option<&str>, run_dir: &Path) -> Result<OciCli> {
    if let Some(w) = wanted.filter(|w| !w.is_empty()) {
        let path = find_binary(w).ok_or_else(|| RuntimeError::Missing { detail: format!("`{w}` is not installed") })?;
        return Ok(OciCli::new(runtime_name(w), path, run_dir));
    }
    if let Some(crun) = find_binary("crun") {
        if crun_usable() {
            return Ok(OciCli::new("crun".into(), crun, run_dir));
        }
    }
    match find_binary("runc") {
        Some(runc) => Ok(OciCli::new("runc".into(), runc, run_dir)),
        None => Err(RuntimeError::Missing { detail: "neither `crun` nor `runc` is installed".into() }),
    }
}

/// The runtime that created a container (by the name stored with it).
pub fn by_name(name: &str, run_dir: &Path) -> Result<OciCli> {
    select(Some(name), run_dir)
}

fn runtime_name(w: &str) -> String {
    Path::new(w).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| w.to_string())
}

fn find_binary(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// crun 1.8 (Debian 12) refuses the "hybrid" cgroup layout: cgroup v1 controllers with a cgroup2
/// mount at `/sys/fs/cgroup/unified`. Elsewhere (pure v1 or pure v2) it works.
fn crun_usable() -> bool {
    let hybrid = !cgroup_v2_only() && Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists();
    !hybrid
}

/// Whether `/sys/fs/cgroup` is a cgroup2 file system (the unified hierarchy alone).
pub fn cgroup_v2_only() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}
