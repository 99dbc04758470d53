//! The image config a stage builds up, and how each config instruction changes it (pure: no
//! file system, unit-tested without root).
//!
//! The config is the OCI image config's `config` object in Docker's field names (`Env`, `Cmd`,
//! `Entrypoint`, `User`, `WorkingDir`, `Labels`, `ExposedPorts`, `Volumes`, `Healthcheck`,
//! `StopSignal`, `Shell`, `OnBuild`); fields a base image has that berth does not change are kept
//! as they are.

use std::collections::BTreeMap;

use berth_dockerfile::instruction::{CommandLine, Healthcheck, Instruction};
use serde::{Deserialize, Serialize};

/// `Healthcheck` as Docker writes it (durations in nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthDoc {
    /// `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", "..."]`.
    #[serde(default)]
    pub test: Vec<String>,
    /// Between checks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: u64,
    /// Of one check.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u64,
    /// Failures before the start period ends do not count.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: u64,
    /// Between checks during the start period.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: u64,
    /// Failures in a row that make the container unhealthy.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The `config` object of an image config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    /// `USER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `EXPOSE` (`80/tcp` → `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// `ENV` as `KEY=value`, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// `ENTRYPOINT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `VOLUME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// `WORKDIR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `LABEL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `STOPSIGNAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `HEALTHCHECK`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthDoc>,
    /// `SHELL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// `ONBUILD` triggers, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    /// Fields of a base image's config berth does not change.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
    /// A `CMD` was given in this stage (an `ENTRYPOINT` then keeps it).
    #[serde(skip)]
    pub cmd_set: bool,
}

/// The default `SHELL`.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

impl RunConfig {
    /// The `ENV` pairs.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .flatten()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .collect()
    }

    /// Sets one variable, keeping its place when it is there already.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let env = self.env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match env.iter_mut().find(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) == key) {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
    }

    /// The shell that runs shell-form commands.
    pub fn shell(&self) -> Vec<String> {
        self.shell.clone().unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
    }

    /// The argv of a `RUN`/`CMD`/`ENTRYPOINT` command line: the shell-form text after `SHELL`, or
    /// the JSON form as it is.
    pub fn argv(&self, command: &CommandLine) -> Vec<String> {
        if command.prepend_shell() {
            let mut argv = self.shell();
            argv.push(command.args.join(" "));
            argv
        } else {
            command.args.clone()
        }
    }

    /// The working directory an instruction resolves relative paths against.
    pub fn workdir(&self) -> &str {
        self.working_dir.as_deref().filter(|w| !w.is_empty()).unwrap_or("/")
    }

    /// Applies an expanded config instruction (`ENV`, `LABEL`, `USER`, `EXPOSE`, `VOLUME`,
    /// `CMD`, `ENTRYPOINT`, `HEALTHCHECK`, `STOPSIGNAL`, `SHELL`, `ONBUILD`, `MAINTAINER`,
    /// `WORKDIR`); returns whether it was one.
    pub fn apply(&mut self, instruction: &Instruction) -> bool {
        match instruction {
            Instruction::Env(e) => {
                for kv in &e.vars {
                    self.set_env(&kv.key, &kv.value);
                }
            }
            Instruction::Label(l) => {
                let labels = self.labels.get_or_insert_with(BTreeMap::new);
                for kv in &l.labels {
                    labels.insert(kv.key.clone(), kv.value.clone());
                }
            }
            Instruction::Maintainer(m) => {
                self.other.insert("Author".into(), m.name.clone().into());
            }
            Instruction::User(u) => self.user = Some(u.user.clone()),
            Instruction::Workdir(w) => self.working_dir = Some(resolve_path(self.workdir(), &w.path)),
            Instruction::Expose(e) => {
                let ports = self.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in &e.ports {
                    let key = if p.contains('/') { p.to_lowercase() } else { format!("{p}/tcp") };
                    ports.insert(key, serde_json::json!({}));
                }
            }
            Instruction::Volume(v) => {
                let vols = self.volumes.get_or_insert_with(BTreeMap::new);
                for p in v.paths.iter().filter(|p| !p.is_empty()) {
                    vols.insert(p.clone(), serde_json::json!({}));
                }
            }
            Instruction::Cmd(c) => {
                self.cmd = Some(self.argv(&c.command));
                self.cmd_set = true;
            }
            Instruction::Entrypoint(e) => {
                self.entrypoint = Some(self.argv(&e.command));
                // A new entrypoint drops the base image's `CMD`, not one given in this stage.
                if !self.cmd_set {
                    self.cmd = None;
                }
            }
            Instruction::Healthcheck(Healthcheck::None) => {
                self.healthcheck = Some(HealthDoc { test: vec!["NONE".into()], ..HealthDoc::default() });
            }
            Instruction::Healthcheck(Healthcheck::Check(h)) => {
                let ns = |d: Option<std::time::Duration>| d.map_or(0, |d| d.as_nanos() as u64);
                self.healthcheck = Some(HealthDoc {
                    test: h.test.clone(),
                    interval: ns(h.interval),
                    timeout: ns(h.timeout),
                    start_period: ns(h.start_period),
                    start_interval: ns(h.start_interval),
                    retries: u64::from(h.retries.unwrap_or(0)),
                });
            }
            Instruction::StopSignal(s) => self.stop_signal = Some(s.signal.clone()),
            Instruction::Shell(s) => self.shell = Some(s.shell.clone()),
            Instruction::Onbuild(o) => self.on_build.get_or_insert_with(Vec::new).push(o.expression.clone()),
            _ => return false,
        }
        true
    }
}

/// `path` made absolute against `workdir`, cleaned (`.`, `..` and repeated slashes resolved);
/// a trailing slash is kept.
pub fn resolve_path(workdir: &str, path: &str) -> String {
    let joined = if path.starts_with('/') { path.to_string() } else { format!("{workdir}/{path}") };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if (path.ends_with('/') || path.ends_with("/.")) && out != "/" {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_dockerfile::Dockerfile;

    fn applied(lines: &str) -> RunConfig {
        let df = Dockerfile::parse("Dockerfile", &format!("FROM scratch\n{lines}")).unwrap();
        let mut c = RunConfig::default();
        for cmd in &df.stages[0].instructions {
            assert!(c.apply(&cmd.instruction), "{}", cmd.original);
        }
        c
    }

    #[test]
    fn instructions_update_the_config_as_docker_does() {
        let c = applied(
            "ENV A=1 B=2\nENV A=3\nLABEL x=y\nUSER app:app\nWORKDIR /srv\nWORKDIR sub\nEXPOSE 80 53/UDP\n\
             VOLUME /data\nCMD echo hi\nSTOPSIGNAL SIGINT\nSHELL [\"/bin/bash\", \"-c\"]\nENTRYPOINT [\"/e\"]\n\
             HEALTHCHECK --interval=5s --retries=2 CMD true\nONBUILD RUN echo trigger",
        );
        assert_eq!(c.env, Some(vec!["A=3".to_string(), "B=2".to_string()]));
        assert_eq!(c.labels.unwrap()["x"], "y");
        assert_eq!(c.user.as_deref(), Some("app:app"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv/sub"));
        assert_eq!(c.exposed_ports.unwrap().keys().collect::<Vec<_>>(), ["53/udp", "80/tcp"]);
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.cmd, Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()]), "this stage's CMD stays");
        assert_eq!(c.entrypoint, Some(vec!["/e".to_string()]));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.shell, Some(vec!["/bin/bash".to_string(), "-c".to_string()]));
        let h = c.healthcheck.unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "true"]);
        assert_eq!((h.interval, h.retries), (5_000_000_000, 2));
        assert_eq!(c.on_build, Some(vec!["RUN echo trigger".to_string()]));
    }

    #[test]
    fn shell_form_goes_through_the_shell() {
        let c = applied("SHELL [\"/bin/ash\", \"-eo\"]\nCMD echo $HOME");
        assert_eq!(c.cmd, Some(vec!["/bin/ash".into(), "-eo".into(), "echo $HOME".into()]));
        let d = applied("CMD [\"a\", \"b\"]");
        assert_eq!(d.cmd, Some(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn a_new_entrypoint_drops_the_base_cmd() {
        let mut base = RunConfig { cmd: Some(vec!["sh".into()]), ..RunConfig::default() };
        let df = Dockerfile::parse("Dockerfile", "FROM scratch\nENTRYPOINT [\"/e\"]").unwrap();
        base.apply(&df.stages[0].instructions[0].instruction);
        assert_eq!(base.cmd, None);
    }

    #[test]
    fn unknown_base_fields_are_kept() {
        let base: RunConfig =
            serde_json::from_value(serde_json::json!({"Env": ["PATH=/bin"], "ArgsEscaped": true})).unwrap();
        let out = serde_json::to_value(&base).unwrap();
        assert_eq!(out, serde_json::json!({"Env": ["PATH=/bin"], "ArgsEscaped": true}));
    }

    #[test]
    fn paths_resolve_against_the_workdir() {
        assert_eq!(resolve_path("/", "app"), "/app");
        assert_eq!(resolve_path("/srv", "../x/./y/"), "/x/y/");
        assert_eq!(resolve_path("/srv", "/abs//p"), "/abs/p");
        assert_eq!(resolve_path("/srv", "."), "/srv");
        assert_eq!(resolve_path("/srv", "./"), "/srv/");
    }
}
