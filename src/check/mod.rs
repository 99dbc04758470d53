//! `berth check`: is a compose project ready for production? Each rule looks at a service (and
//! at the image it runs, when berth's store has it) and reports findings that name the place in
//! the compose file, a severity and a fix. A comment `# berth: ignore RULE reason` on the key's
//! line or the line above, or an entry of `x-berth: {check: {ignore: [...]}}`, silences a
//! finding; silenced findings stay in the report, marked suppressed.

mod dockerfile;
mod images;
pub mod render;
mod rules;
mod suppress;

use berth_compose::yaml::Span;
use berth_compose::Loaded;
use serde::Serialize;

pub use images::{ImageFacts, Images, NoImages, StoreImages};
pub use suppress::{Suppression, SuppressionKind};

/// How much a finding matters. `error` findings make `berth check` exit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Should be fixed before production.
    Warning,
    /// Must be fixed before production.
    Error,
}

impl Severity {
    /// `error`, `warning` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One rule: its stable id, severity, what it finds and how to fix it in general.
#[derive(Debug)]
pub struct Rule {
    /// Stable id, used in suppressions and in SARIF.
    pub id: &'static str,
    /// Severity of its findings.
    pub severity: Severity,
    /// What it finds, in one line.
    pub summary: &'static str,
    /// The fix, in general terms.
    pub help: &'static str,
}

const fn rule(id: &'static str, severity: Severity, summary: &'static str, help: &'static str) -> Rule {
    Rule { id, severity, summary, help }
}

/// Every rule `berth check` applies.
pub const RULES: &[Rule] = &[
    rule(
        "image-tag",
        Severity::Warning,
        "Image tag is `latest` or missing",
        "Pin a version tag or a digest (`name@sha256:...`).",
    ),
    rule(
        "image-not-inspected",
        Severity::Info,
        "Image is not in berth's store: its user and health check were not checked",
        "Pull (or load) the image, then run `berth check` again.",
    ),
    rule(
        "root-user",
        Severity::Warning,
        "Service runs as root",
        "Set `user:` to an unprivileged user, or build the image with a `USER`.",
    ),
    rule(
        "no-memory-limit",
        Severity::Warning,
        "No memory limit",
        "Set `deploy.resources.limits.memory` (or `mem_limit`).",
    ),
    rule("no-cpu-limit", Severity::Info, "No CPU limit", "Set `deploy.resources.limits.cpus` (or `cpus`)."),
    rule(
        "no-healthcheck",
        Severity::Warning,
        "No health check (neither the service nor its image has one)",
        "Add a `healthcheck:` whose test shows the service can serve.",
    ),
    rule(
        "no-restart",
        Severity::Warning,
        "No restart policy",
        "Set `restart: unless-stopped` (or `always`, `on-failure`).",
    ),
    rule(
        "secret-in-env",
        Severity::Error,
        "Secret passed as a literal environment value",
        "Move the value to a file under `secrets:` and give the service its path (`*_FILE`).",
    ),
    rule(
        "db-port-public",
        Severity::Error,
        "Database port published on all interfaces",
        "Publish on loopback (`127.0.0.1:HOST:CONTAINER`) or not at all.",
    ),
    rule(
        "privileged",
        Severity::Error,
        "Container runs privileged",
        "Remove `privileged: true`; add only the capabilities needed with `cap_add`.",
    ),
    rule(
        "host-network",
        Severity::Warning,
        "Container shares the host's network",
        "Remove `network_mode: host`; publish the ports needed.",
    ),
    rule("host-pid", Severity::Error, "Container shares the host's process namespace", "Remove `pid: host`."),
    rule(
        "writable-rootfs",
        Severity::Info,
        "Stateless service with a writable root file system",
        "Set `read_only: true`, with `tmpfs:` for the paths it writes.",
    ),
    rule(
        "no-log-limit",
        Severity::Info,
        "No log size cap set (berth applies its default)",
        "Set `logging.options.max-size` (and `max-file`).",
    ),
    rule(
        "build-not-reproducible",
        Severity::Info,
        "Build is not reproducible (no `SOURCE_DATE_EPOCH`)",
        "Pass `SOURCE_DATE_EPOCH` in `build.args`.",
    ),
    rule(
        "build-leftovers",
        Severity::Warning,
        "The Dockerfile's final stage keeps compilers or package caches",
        "Build in an earlier stage and copy only the result; clean package lists in the same `RUN`.",
    ),
];

/// The rule with this id.
pub fn rule_by_id(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// The rule's id.
    pub rule: &'static str,
    /// The rule's severity.
    pub severity: Severity,
    /// The service, when the finding is about one.
    pub service: Option<String>,
    /// The compose file, as the user named it.
    pub file: String,
    /// 1-based line of the key (0 when unknown).
    pub line: u32,
    /// 1-based column of the key (0 when unknown).
    pub column: u32,
    /// What is wrong.
    pub message: String,
    /// What to change.
    pub fix: String,
    /// Why it is silenced, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppression>,
}

impl Finding {
    /// `file:line`, or the file alone when the line is unknown.
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}", self.file, self.line)
        }
    }
}

/// What `berth check` found, in file order; suppressed findings included.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// The findings.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The findings that are not silenced.
    pub fn active(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.suppressed.is_none())
    }

    /// How many findings are silenced.
    pub fn suppressed(&self) -> usize {
        self.findings.iter().filter(|f| f.suppressed.is_some()).count()
    }

    /// Whether an error-level finding is not silenced.
    pub fn has_errors(&self) -> bool {
        self.active().any(|f| f.severity == Severity::Error)
    }
}

/// Why a check could not run.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A service named on the command line is not in the project.
    #[error("no such service: `{0}`")]
    NoSuchService(String),
}

/// Checks the services `only` (all when empty) of a loaded project, with the images `images`
/// knows about.
pub fn check(loaded: &Loaded, images: &dyn Images, only: &[String]) -> Result<Report, CheckError> {
    if let Some(missing) = only.iter().find(|s| !loaded.project.services.contains_key(*s)) {
        return Err(CheckError::NoSuchService(missing.clone()));
    }
    let mut cx = rules::Cx { loaded, findings: Vec::new() };
    for (name, svc) in &loaded.project.services {
        if only.is_empty() || only.contains(name) {
            rules::service(&mut cx, name, svc, images);
        }
    }
    let mut findings = cx.findings;
    suppress::apply(loaded, &mut findings);
    findings.sort_by(|a, b| (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule)));
    Ok(Report { findings })
}

/// Where a span points, as a finding's file, line and column.
fn place(span: Option<Span>) -> (String, u32, u32) {
    match span {
        Some(s) if !s.is_synthetic() => (s.file.to_string(), s.line, s.col),
        Some(s) => (s.file.to_string(), 0, 0),
        None => (String::new(), 0, 0),
    }
}
