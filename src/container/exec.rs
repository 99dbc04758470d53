//! `exec` into a running container, and the lifecycle hooks (`post_start`, `pre_stop`) run that
//! way.

use std::path::PathBuf;

use anyhow::{anyhow, bail};

use super::lifecycle::Lifecycle;
use super::{record_event, Roots};
use crate::runtime::ExecMode;
use crate::state::{ContainerRecord, StateDb, Status};

/// Which lifecycle hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hooks {
    /// Once the container runs.
    PostStart,
    /// Before its stop signal.
    PreStop,
}

/// What `exec` runs.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// Command and arguments.
    pub command: Vec<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub working_dir: Option<String>,
    /// `-e KEY=VALUE`.
    pub env: Vec<(String, String)>,
    /// Allocate a terminal.
    pub tty: bool,
    /// `-d`.
    pub detach: bool,
    /// `--privileged`.
    pub privileged: bool,
    /// Run with stdio on `/dev/null` and wait for the exit code (health probes).
    pub quiet: bool,
}

impl Lifecycle<'_> {
    /// Runs a container's `post_start` or `pre_stop` hooks (from what `up` recorded), in order.
    pub(super) fn run_hooks(&self, rec: &ContainerRecord, which: Hooks) -> anyhow::Result<()> {
        let Some(spec) = &rec.config.supervise else { return Ok(()) };
        let (hooks, name) = match which {
            Hooks::PostStart => (&spec.post_start, "post_start"),
            Hooks::PreStop => (&spec.pre_stop, "pre_stop"),
        };
        if hooks.is_empty() {
            return Ok(());
        }
        let rec = self.db.container(&rec.id)?.unwrap_or_else(|| rec.clone());
        for (i, h) in hooks.iter().enumerate() {
            let req = ExecRequest {
                command: h.command.clone(),
                user: h.user.clone(),
                working_dir: h.working_dir.clone(),
                env: h.environment.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?))).collect(),
                privileged: h.privileged.unwrap_or(false),
                quiet: true,
                ..ExecRequest::default()
            };
            let code = self.exec(&rec, &req)?;
            if code != 0 {
                bail!("container `{}`: {name} hook {i} ({}) exited with code {code}", rec.name, h.command.join(" "));
            }
            record_event(self.db, &rec, &format!("{name}_hook"), &[("command", h.command.join(" ").into())]);
        }
        Ok(())
    }

    /// Runs a process in a running container with the caller's stdio; returns its exit code.
    pub fn exec(&self, rec: &ContainerRecord, req: &ExecRequest) -> anyhow::Result<i32> {
        let rec = self.refresh(rec)?;
        if rec.status != Status::Running {
            bail!("container `{}` is not running", rec.name);
        }
        if req.command.is_empty() {
            bail!("exec needs a command");
        }
        super::require_run_dir(self.roots, &rec)?;
        let spec_path = self.roots.bundle(&rec.id).join("config.json");
        let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&spec_path)?)?;
        let mut process = spec.get("process").cloned().ok_or_else(|| anyhow!("bundle has no process"))?;
        process["args"] = req.command.clone().into();
        process["terminal"] = req.tty.into();
        if let Some(w) = &req.working_dir {
            process["cwd"] = w.clone().into();
        }
        let mut env: Vec<String> = process["env"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        for (k, v) in &req.env {
            env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k));
            env.push(format!("{k}={v}"));
        }
        if req.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        if let Some(u) = &req.user {
            let config = &rec.config;
            let mut dirs: Vec<PathBuf> = vec![self.roots.container_dir(&rec.id).join("upper")];
            dirs.extend(config.layers.iter().rev().cloned());
            let users = crate::runtime::user::UserDb::from_layers(&dirs);
            let r = users.resolve(u, &[]).map_err(|e| anyhow!(e))?;
            process["user"] =
                serde_json::json!({"uid": r.uid, "gid": r.gid, "additionalGids": r.additional_gids, "umask": 0o022});
            env.retain(|e| !e.starts_with("HOME="));
            env.push(format!("HOME={}", r.home));
        }
        process["env"] = env.into();
        if req.privileged {
            let all: Vec<String> = crate::runtime::defaults::ALL_CAPS.iter().map(|c| format!("CAP_{c}")).collect();
            process["capabilities"] = serde_json::json!({"bounding": all, "effective": all, "permitted": all});
        }
        let run_dir = self.roots.run_dir(&rec.id);
        let file = tempfile::Builder::new().prefix("exec-").suffix(".json").tempfile_in(&run_dir)?;
        std::fs::write(file.path(), serde_json::to_vec(&process)?)?;
        let rt = self.runtime(&rec)?;
        if !req.quiet {
            // Health probes are quiet: they would bury everything else in the event log.
            record_event(self.db, &rec, "exec_create", &[("execCommand", req.command.join(" ").into())]);
        }
        let code = rt.exec(&rec.id, file.path(), ExecMode { tty: req.tty, detach: req.detach, quiet: req.quiet })?;
        Ok(code)
    }
}

/// Runs a process in a running container with the caller's stdio; returns its exit code.
pub fn exec(roots: &Roots, db: &StateDb, rec: &ContainerRecord, req: &ExecRequest) -> anyhow::Result<i32> {
    Lifecycle::new(roots, db).exec(rec, req)
}
