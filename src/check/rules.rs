//! The rules, service by service. Each finding points at the key it is about, else at the
//! nearest key above it that is written (the service's own key, for what is missing).

use berth_compose::model::{Service, VolumeType};
use berth_compose::resolved::HealthTest;
use berth_compose::Loaded;

use super::images::{untagged, ImageFacts, Images};
use super::{place, rule_by_id, Finding};

/// What the rules read and what they found.
pub(super) struct Cx<'a> {
    pub loaded: &'a Loaded,
    pub findings: Vec<Finding>,
}

impl Cx<'_> {
    /// Adds a finding of `rule` about `service`, at the key `keys` under the service.
    pub(super) fn add(&mut self, rule: &'static str, service: &str, keys: &[&str], message: String, fix: String) {
        let mut path = vec!["services", service];
        path.extend_from_slice(keys);
        let (file, line, column) = place(berth_compose::validate::span_near(&self.loaded.tree, &path));
        let severity = rule_by_id(rule).expect("a known rule").severity;
        let service = Some(service.to_string());
        self.findings.push(Finding { rule, severity, service, file, line, column, message, fix, suppressed: None });
    }
}

/// Applies every rule to the service `name`.
pub(super) fn service(cx: &mut Cx, name: &str, svc: &Service, images: &dyn Images) {
    let image_name = svc.image_name(&cx.loaded.project);
    let facts = images.facts(&image_name);
    image(cx, name, svc, facts.as_ref());
    user(cx, name, svc, facts.as_ref());
    limits(cx, name, svc);
    health(cx, name, svc, facts.as_ref());
    restart(cx, name, svc);
    secrets(cx, name, svc);
    database_ports(cx, name, svc, &image_name);
    host_access(cx, name, svc);
    root_fs(cx, name, svc, &image_name);
    logs(cx, name, svc);
    super::dockerfile::build(cx, name, svc);
}

fn image(cx: &mut Cx, name: &str, svc: &Service, facts: Option<&ImageFacts>) {
    let Some(image) = &svc.image else {
        if facts.is_none() {
            let message = format!("the image of `{name}` is not built yet: its user and health check were not checked");
            cx.add("image-not-inspected", name, &["build"], message, "build the image, then check again".into());
        }
        return;
    };
    if facts.is_none() {
        let message = format!("image `{image}` is not in berth's store: its user and health check were not checked");
        let fix = format!("`berth pull {name}`, then run `berth check` again");
        cx.add("image-not-inspected", name, &["image"], message, fix);
    }
    if image.contains('@') || svc.build.is_some() {
        return;
    }
    let written = untagged(image);
    let tag = image[written.len()..].strip_prefix(':');
    let message = match tag {
        None => format!("`image: {image}` has no tag: it means `latest`, which moves"),
        Some("latest") => format!("`image: {image}` is not pinned: `latest` moves"),
        Some(_) => return,
    };
    let fix = match facts.and_then(|f| f.pinned.as_deref()) {
        Some(pinned) => format!("pin the image berth has: `image: {pinned}`"),
        None => format!("pin a version (`{written}:<version>`) or a digest (`{written}@sha256:...`)"),
    };
    cx.add("image-tag", name, &["image"], message, fix);
}

fn is_root(user: &str) -> bool {
    let user = user.split(':').next().unwrap_or_default();
    user.is_empty() || user == "root" || user == "0"
}

fn user(cx: &mut Cx, name: &str, svc: &Service, facts: Option<&ImageFacts>) {
    let fix = "set `user:` to an unprivileged uid:gid (e.g. `\"1000:1000\"`) the image's files allow".to_string();
    match (&svc.user, facts) {
        (Some(u), _) if is_root(u) => {
            cx.add("root-user", name, &["user"], format!("`{name}` runs as root (`user: {u}`)"), fix)
        }
        (None, Some(f)) if is_root(&f.user) => {
            let message = format!("`{name}` runs as root: no `user:`, and its image sets no other user");
            cx.add("root-user", name, &["image"], message, fix)
        }
        _ => {}
    }
}

fn limits(cx: &mut Cx, name: &str, svc: &Service) {
    let limits = svc.deploy.as_ref().and_then(|d| d.resources.as_ref()).and_then(|r| r.limits.as_ref());
    if svc.mem_limit.is_none() && limits.and_then(|l| l.memory.as_ref()).is_none() {
        let message = format!("`{name}` has no memory limit: a leak can take the host's memory");
        let fix = "set `deploy.resources.limits.memory` (e.g. `512M`) or `mem_limit`".to_string();
        cx.add("no-memory-limit", name, &["deploy", "resources", "limits"], message, fix);
    }
    if svc.cpus.is_none() && svc.cpu_quota.is_none() && limits.and_then(|l| l.cpus).is_none() {
        let message = format!("`{name}` has no CPU limit: it can starve the other services");
        let fix = "set `deploy.resources.limits.cpus` (e.g. `\"1.0\"`) or `cpus`".to_string();
        cx.add("no-cpu-limit", name, &["deploy", "resources", "limits"], message, fix);
    }
}

fn health(cx: &mut Cx, name: &str, svc: &Service, facts: Option<&ImageFacts>) {
    let test = berth_compose::resolved::ResolvedService::new(svc).ok().and_then(|r| r.healthcheck).map(|h| h.test);
    let fix = "add a `healthcheck:` whose `test` shows the service answers (e.g. `[\"CMD\", \"curl\", \"-f\", \"http://localhost/\"]`)";
    let message = match (test, facts) {
        (Some(HealthTest::None), _) => format!("`{name}`'s health check is disabled"),
        (Some(HealthTest::Exec(_) | HealthTest::Shell(_)), _) => return,
        (_, Some(f)) if f.healthcheck => return,
        (_, Some(_)) => format!("`{name}` has no health check, and neither has its image"),
        (_, None) => format!("`{name}` has no health check (its image was not inspected)"),
    };
    cx.add("no-healthcheck", name, &["healthcheck"], message, fix.to_string());
}

fn restart(cx: &mut Cx, name: &str, svc: &Service) {
    if svc.restart.is_none() && svc.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()).is_none() {
        let message = format!("`{name}` has no restart policy: it stays down after a crash");
        cx.add("no-restart", name, &["restart"], message, "set `restart: unless-stopped`".into());
    }
}

/// Whether an environment variable's name says it holds a secret.
fn secret_name(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    !k.ends_with("_FILE") && ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY"].iter().any(|w| k.contains(w))
}

fn secrets(cx: &mut Cx, name: &str, svc: &Service) {
    for (key, value) in &svc.environment {
        let Some(value) = value.as_deref().filter(|v| !v.is_empty() && secret_name(key)) else { continue };
        if value.starts_with("/run/secrets/") {
            continue;
        }
        let keys = ["services", name, "environment", key.as_str()];
        let Some(span) = berth_compose::validate::span_of(&cx.loaded.tree, &keys) else { continue };
        // A value interpolated from the environment or `.env` is not written in the file.
        let interpolated =
            cx.loaded.interpolations.iter().any(|i| i.span.file == span.file && i.span.line == span.line);
        if interpolated || span.is_synthetic() {
            continue;
        }
        let message = format!("`{key}` of `{name}` is a secret written in the compose file");
        let fix = format!(
            "put it in a file under top-level `secrets:`, list it in the service's `secrets:`, and pass its path (e.g. `{key}_FILE: /run/secrets/<name>`)"
        );
        cx.add("secret-in-env", name, &["environment", key], message, fix);
    }
}

/// Words in a service's or image's name that say it is a database.
const DATABASES: &[&str] = &[
    "postgres",
    "mysql",
    "mariadb",
    "mongo",
    "redis",
    "valkey",
    "memcached",
    "cassandra",
    "couchdb",
    "elasticsearch",
    "opensearch",
    "influxdb",
    "clickhouse",
    "neo4j",
    "cockroach",
    "timescale",
];

fn database_ports(cx: &mut Cx, name: &str, svc: &Service, image: &str) {
    let repo = untagged(image).rsplit('/').next().unwrap_or_default();
    let Some(db) = DATABASES.iter().find(|d| repo.contains(*d) || name.contains(*d)) else { return };
    for (i, port) in svc.ports.iter().enumerate() {
        let Some(published) = &port.published else { continue };
        if !matches!(port.host_ip.as_deref(), None | Some("" | "0.0.0.0" | "::")) {
            continue;
        }
        let message = format!("`{name}` ({db}) publishes port {published} on every interface of the host");
        let fix = format!(
            "publish it on loopback only (`127.0.0.1:{published}:{}`) or remove it: the project's services reach `{name}` by name",
            port.target
        );
        cx.add("db-port-public", name, &["ports", &format!("[{i}]")], message, fix);
    }
}

fn host_access(cx: &mut Cx, name: &str, svc: &Service) {
    if svc.privileged == Some(true) {
        let message = format!("`{name}` runs privileged: it has every capability and every device of the host");
        let fix = "remove `privileged: true`; add only the capabilities it needs with `cap_add`".into();
        cx.add("privileged", name, &["privileged"], message, fix);
    }
    if svc.network_mode.as_deref() == Some("host") {
        let message = format!("`{name}` shares the host's network: every port it opens is public");
        let fix = "remove `network_mode: host`; publish the ports it serves with `ports:`".into();
        cx.add("host-network", name, &["network_mode"], message, fix);
    }
    if svc.pid.as_deref() == Some("host") {
        let message = format!("`{name}` shares the host's process namespace: it sees and can signal host processes");
        cx.add("host-pid", name, &["pid"], message, "remove `pid: host`".into());
    }
}

fn root_fs(cx: &mut Cx, name: &str, svc: &Service, image: &str) {
    let stateful = svc
        .volumes
        .iter()
        .any(|v| matches!(v.kind, VolumeType::Volume | VolumeType::Bind) && v.read_only != Some(true));
    let repo = untagged(image).rsplit('/').next().unwrap_or_default();
    let database = DATABASES.iter().any(|d| repo.contains(*d) || name.contains(*d));
    if svc.read_only == Some(true) || stateful || database {
        return;
    }
    let message = format!("`{name}` keeps no state in volumes but its root file system is writable");
    let fix = "set `read_only: true`, with `tmpfs: [/tmp]` (and the other paths it writes)".to_string();
    cx.add("writable-rootfs", name, &["read_only"], message, fix);
}

fn logs(cx: &mut Cx, name: &str, svc: &Service) {
    let logging = svc.logging.as_ref();
    if logging.and_then(|l| l.driver.as_deref()) == Some("none") {
        return;
    }
    if logging.and_then(|l| l.options.get("max-size")).is_some_and(|v| v.is_some()) {
        return;
    }
    let d = crate::container::LogOptions::default();
    let message = format!(
        "`{name}` sets no log size cap: berth applies its default ({} MiB per file, {} files)",
        d.max_size / (1024 * 1024),
        d.max_file
    );
    let fix = "set `logging: {options: {max-size: \"10m\", max-file: \"3\"}}` to choose the cap".to_string();
    cx.add("no-log-limit", name, &["logging"], message, fix);
}
