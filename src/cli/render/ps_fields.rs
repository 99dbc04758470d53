//! The texts `ps` shows of a container: its status, ports, command, labels and the fields of
//! `--format` templates.

use berth::state::{now_millis, ContainerRecord, Health, Status, Supervision};

/// Compose-style relative time: `5 seconds`, `About a minute`, `3 hours`.
pub fn human_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// Docker's status text, with the health (`Up 5 seconds (healthy)`) and, beyond Docker, how
/// often a restart policy restarted the container and why (`Up 2 seconds (healthy), 3 restarts:
/// exited with code 1`).
pub(super) fn status_text(c: &ContainerRecord, sup: &Supervision) -> String {
    let mut text = base_status(c);
    if c.status == Status::Running {
        match sup.health {
            Some(Health::Starting) => text.push_str(" (health: starting)"),
            Some(h) => text.push_str(&format!(" ({h})")),
            None => {}
        }
    }
    if c.restart_count > 0 {
        let n = c.restart_count;
        text.push_str(&format!(", {n} restart{}", if n == 1 { "" } else { "s" }));
        if let Some(r) = &sup.restart_reason {
            text.push_str(&format!(": {r}"));
        }
    }
    text
}

/// The container's labels with Compose's own (`com.docker.compose.*`).
pub(super) fn labels(c: &ContainerRecord) -> serde_json::Map<String, serde_json::Value> {
    let mut out: serde_json::Map<String, serde_json::Value> =
        c.config.labels.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    for (k, v) in [
        ("project", c.project.clone()),
        ("service", c.service.clone()),
        ("container-number", c.number.to_string()),
        ("oneoff", if c.oneoff { "True" } else { "False" }.to_string()),
        ("config-hash", c.config_hash.clone()),
        ("image", c.image_digest.clone()),
    ] {
        out.insert(format!("com.docker.compose.{k}"), v.into());
    }
    out
}

fn base_status(c: &ContainerRecord) -> String {
    let now = now_millis();
    match c.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", human_duration(now - c.started_at.unwrap_or(now))),
        Status::Paused => format!("Up {} (Paused)", human_duration(now - c.started_at.unwrap_or(now))),
        Status::Restarting => format!("Restarting ({})", c.exit_code.unwrap_or(0)),
        Status::Exited => format!(
            "Exited ({}){} {} ago",
            c.exit_code.unwrap_or(-1),
            if c.oom_killed { " OOMKilled" } else { "" },
            human_duration(now - c.finished_at.unwrap_or(now))
        ),
        Status::Dead => "Dead".into(),
    }
}

/// The declared ports, with the host port bound for each where there is one.
pub(super) fn ports_text(c: &ContainerRecord) -> String {
    c.ports()
        .iter()
        .map(|p| {
            if p.published.is_empty() {
                format!("{}/{}", p.target, p.protocol)
            } else {
                let ip = if p.host_ip.is_empty() { "0.0.0.0" } else { &p.host_ip };
                format!("{ip}:{}->{}/{}", p.published, p.target, p.protocol)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The command as `ps` shows it: quoted, cut to 20 characters unless `full`.
pub(super) fn command_text(c: &ContainerRecord, full: bool) -> String {
    let mut cmd = format!("\"{}\"", c.config.command.join(" "));
    if !full && cmd.chars().count() > 24 {
        cmd = format!("{}…\"", &cmd[..cmd.char_indices().nth(21).map(|(i, _)| i).unwrap_or(cmd.len())]);
    }
    cmd
}

/// The value of template field `field` for container `c`.
pub(super) fn field_value(field: &str, c: &ContainerRecord, sup: &Supervision, full: bool) -> String {
    match field {
        "ID" if full => c.id.clone(),
        "ID" => c.id.chars().take(12).collect(),
        "Name" => c.name.clone(),
        "Image" => c.image.clone(),
        "Command" => command_text(c, full),
        "Project" => c.project.clone(),
        "Service" => c.service.clone(),
        "CreatedAt" => created_at(c.created_at),
        "RunningFor" => format!("{} ago", human_duration(now_millis() - c.created_at)),
        "State" => c.status.as_str().to_string(),
        "Status" => status_text(c, sup),
        "Health" => health_text(sup),
        "ExitCode" => c.exit_code.unwrap_or(0).to_string(),
        "Ports" => ports_text(c),
        "Labels" => labels(c)
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

/// The health as the `Health` field shows it (empty without a health check).
pub(super) fn health_text(sup: &Supervision) -> String {
    sup.health.map(|h| h.to_string()).unwrap_or_default()
}

/// Docker's `CreatedAt`: `2024-01-02 03:04:05 +0000 UTC`.
fn created_at(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] +0000 UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}
