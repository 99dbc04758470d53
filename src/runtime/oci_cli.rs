//! The [`Runtime`] driver for OCI runtime command lines (`runc`, `crun`): one process per operation,
//! `--root` pointing at berth's own state directory for the runtime so berth never sees (or
//! disturbs) containers of other tools.

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;

use super::{CreateIo, ExecMode, Result, Runtime, RuntimeError, RuntimeState};

/// An OCI runtime binary.
#[derive(Debug, Clone)]
pub struct OciCli {
    name: String,
    binary: PathBuf,
    root: PathBuf,
}

impl OciCli {
    /// A driver for `binary`, keeping its state under `<run_dir>/runtime/<name>`.
    pub fn new(name: String, binary: PathBuf, run_dir: &Path) -> OciCli {
        let root = run_dir.join("runtime").join(&name);
        OciCli { name, binary, root }
    }

    /// The runtime binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The runtime's `--root`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        // The monitor blocks SIGCHLD (it reads it from a signalfd); the runtime, and through it the
        // container, must start with no signal blocked. The standard library empties the mask
        // (and restores SIGPIPE) in every child it spawns, so no `pre_exec` is needed: without
        // one it can use `posix_spawn` (a vfork) instead of copying the parent with fork.
        c
    }

    fn spawn_err(&self) -> impl Fn(std::io::Error) -> RuntimeError + '_ {
        move |source| RuntimeError::Spawn { runtime: self.binary.display().to_string(), source }
    }

    fn failed(&self, op: &str, id: &str, stderr: &[u8]) -> RuntimeError {
        RuntimeError::Failed {
            runtime: self.name.clone(),
            op: op.into(),
            id: id.into(),
            stderr: String::from_utf8_lossy(stderr).trim().to_string(),
        }
    }

    /// Runs a simple subcommand and fails with its stderr.
    fn invoke(&self, op: &str, args: &[&str], id: &str) -> Result<Vec<u8>> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(self.spawn_err())?;
        if !out.status.success() {
            return Err(self.failed(op, id, &out.stderr));
        }
        Ok(out.stdout)
    }
}

/// Starts `cmd` with umask 022: the runtime creates mount points inside the container's file
/// system, which must be usable by the container's users (berth itself runs with 077).
fn spawn_for_container(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    use nix::sys::stat::{umask, Mode};
    let old = umask(Mode::from_bits_truncate(0o022));
    let child = cmd.spawn();
    umask(old);
    child
}

/// The last `error`-level message of a runtime's JSON log (`--log-format json`).
fn last_logged_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        matches!(v.get("level")?.as_str()?, "error" | "fatal").then(|| v.get("msg")?.as_str().map(str::to_string))?
    })
}

/// How [`OciCli::create_command`] starts the container.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    /// `create`: set up, start later.
    Create,
    /// `run --detach`: set up and start, return at once.
    Detached,
    /// `run`: set up, start and wait for the container's exit.
    Foreground,
}

impl OciCli {
    /// `create`, `run --detach` or `run`: the same options, and the runtime's own messages go to
    /// a log file next to the pid file, since its stderr is the container's.
    fn create_command(&self, id: &str, bundle: &Path, pid_file: &Path, io: CreateIo, verb: Verb) -> Result<Command> {
        std::fs::create_dir_all(&self.root).map_err(self.spawn_err())?;
        let log = pid_file.with_file_name("runtime.log");
        // The runtime appends to it with the container's umask: made here, private, first.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&log)
            .map_err(self.spawn_err())?;
        let mut cmd = self.command();
        cmd.arg("--log").arg(&log).arg("--log-format").arg("json");
        cmd.arg(if verb == Verb::Create { "create" } else { "run" });
        if verb == Verb::Detached {
            cmd.arg("--detach");
        }
        cmd.arg("--bundle").arg(bundle).arg("--pid-file").arg(pid_file);
        match io {
            CreateIo::Pipes { stdin, stdout, stderr } => {
                cmd.stdin(stdin.map(Stdio::from).unwrap_or_else(Stdio::null));
                cmd.stdout(Stdio::from(stdout));
                cmd.stderr(Stdio::from(stderr));
            }
            CreateIo::Console { socket } => {
                cmd.arg("--console-socket").arg(socket);
                cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        cmd.arg(id);
        Ok(cmd)
    }

    /// The outcome of a `create` or `run --detach` that exited with `status`.
    fn created(&self, op: &str, id: &str, pid_file: &Path, status: std::process::ExitStatus) -> Result<()> {
        if status.success() {
            return Ok(());
        }
        let msg = last_logged_error(&pid_file.with_file_name("runtime.log"))
            .unwrap_or_else(|| format!("exited with {status}"));
        Err(self.failed(op, id, msg.as_bytes()))
    }
}

impl Runtime for OciCli {
    fn name(&self) -> &str {
        &self.name
    }

    fn create(&self, id: &str, bundle: &Path, pid_file: &Path, io: CreateIo) -> Result<()> {
        let mut cmd = self.create_command(id, bundle, pid_file, io, Verb::Create)?;
        let status = spawn_for_container(&mut cmd).and_then(|mut c| c.wait()).map_err(self.spawn_err())?;
        drop(cmd);
        self.created("create", id, pid_file, status)
    }

    fn spawn_run(&self, id: &str, bundle: &Path, pid_file: &Path, io: CreateIo) -> Result<std::process::Child> {
        spawn_for_container(&mut self.create_command(id, bundle, pid_file, io, Verb::Detached)?)
            .map_err(self.spawn_err())
    }

    fn run_finished(&self, id: &str, pid_file: &Path, status: std::process::ExitStatus) -> Result<()> {
        self.created("run", id, pid_file, status)
    }

    fn start(&self, id: &str) -> Result<()> {
        self.invoke("start", &["start", id], id).map(drop)
    }

    fn state(&self, id: &str) -> Result<Option<RuntimeState>> {
        let out = self.command().args(["state", id]).stdin(Stdio::null()).output().map_err(self.spawn_err())?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("does not exist") || err.contains("not found") || err.contains("No such file") {
                return Ok(None);
            }
            return Err(self.failed("state", id, &out.stderr));
        }
        serde_json::from_slice(&out.stdout).map(Some).map_err(|e| self.failed("state", id, e.to_string().as_bytes()))
    }

    fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let sig = (signal as i32).to_string();
        let args: Vec<&str> = if all { vec!["kill", "--all", id, &sig] } else { vec!["kill", id, &sig] };
        self.invoke("kill", &args, id).map(drop)
    }

    fn knows(&self, id: &str) -> bool {
        // The runtime keeps a directory per container under its root.
        self.root.join(id).exists()
    }

    fn delete(&self, id: &str, force: bool) -> Result<()> {
        let args: Vec<&str> = if force { vec!["delete", "--force", id] } else { vec!["delete", id] };
        match self.invoke("delete", &args, id) {
            Ok(_) => Ok(()),
            Err(RuntimeError::Failed { stderr, .. })
                if stderr.contains("does not exist") || stderr.contains("not found") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn exec(&self, id: &str, process: &Path, mode: ExecMode) -> Result<i32> {
        let mut cmd = self.command();
        // For a user's exec the runtime's messages also go to a log beside the process file, so
        // that a process it could not start (255, with a logged error; the runtime printed the
        // message) is told from one that exited 255, and gets Docker's status for it (127: no
        // such executable, 126: not runnable). Health probes just see the status.
        let log = process.with_extension("log");
        let logged = !mode.detach && !mode.quiet;
        if logged {
            cmd.arg("--log").arg(&log).arg("--log-format").arg("json");
        }
        cmd.arg("exec").arg("--process").arg(process);
        if mode.tty {
            cmd.arg("--tty");
        }
        if mode.detach {
            cmd.arg("--detach");
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        } else if mode.quiet {
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        }
        cmd.arg(id);
        if mode.detach {
            let out = spawn_for_container(&mut cmd).and_then(|c| c.wait_with_output()).map_err(self.spawn_err())?;
            if !out.status.success() {
                return Err(self.failed("exec", id, &out.stderr));
            }
            return Ok(0);
        }
        let status = spawn_for_container(&mut cmd).and_then(|mut c| c.wait()).map_err(self.spawn_err());
        let message = if logged { last_logged_error(&log) } else { None };
        // Absent when nothing was logged; one that stays is beside the process file, in the
        // container's run directory, which goes with the container.
        let _ = std::fs::remove_file(&log);
        let status = status?;
        match (status.code(), message) {
            (Some(255), Some(message)) => Ok(i32::from(super::exec_failure_code(&message).unwrap_or(126))),
            (Some(code), _) => Ok(code),
            (None, _) => Ok(128 + status.signal().unwrap_or(0)),
        }
    }

    fn spawn_exec(&self, id: &str, process: &Path, pid_file: &Path) -> Result<std::process::Child> {
        let mut cmd = self.command();
        cmd.arg("exec").arg("--process").arg(process).arg("--pid-file").arg(pid_file).arg(id);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        cmd.spawn().map_err(self.spawn_err())
    }

    fn spawn_attached(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        stdout: std::os::fd::OwnedFd,
        stderr: std::os::fd::OwnedFd,
    ) -> Result<std::process::Child> {
        let io = CreateIo::Pipes { stdin: None, stdout, stderr };
        spawn_for_container(&mut self.create_command(id, bundle, pid_file, io, Verb::Foreground)?)
            .map_err(self.spawn_err())
    }

    fn logged_error(&self, pid_file: &Path) -> Option<String> {
        last_logged_error(&pid_file.with_file_name("runtime.log"))
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.invoke("pause", &["pause", id], id).map(drop)
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.invoke("resume", &["resume", id], id).map(drop)
    }
}
