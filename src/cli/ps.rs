//! `berth ps`: lists the project's containers, and warns when the project's supervisor is gone
//! (and starts a new one) or stopped while the project needs one.

use berth::container::{self, ContainerConfig};
use berth::state::{now_millis, ContainerRecord, Status, Supervision};
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::ProjectArgs;

/// Arguments of `berth ps`.
#[derive(Args, Debug, Default)]
pub struct PsArgs {
    /// Services to list (default: all)
    pub services: Vec<String>,
    /// Show stopped containers too
    #[arg(short, long)]
    pub all: bool,
    /// Only print container ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the services that have containers
    #[arg(long = "services")]
    pub services_only: bool,
    /// Only containers with this status (repeatable)
    #[arg(long, value_parser = ["created", "running", "paused", "restarting", "exited", "dead", "removing"])]
    pub status: Vec<String>,
    /// Output format
    #[arg(long, value_parser = ["table", "json"], default_value = "table")]
    pub format: String,
}

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
fn status_text(c: &ContainerRecord, sup: &Supervision) -> String {
    let mut text = base_status(c);
    if c.status == Status::Running {
        match sup.health.as_deref() {
            Some("starting") => text.push_str(" (health: starting)"),
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
fn labels(c: &ContainerRecord, cfg: &ContainerConfig) -> serde_json::Map<String, serde_json::Value> {
    let mut out: serde_json::Map<String, serde_json::Value> =
        cfg.labels.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
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

fn ports_text(cfg: &ContainerConfig) -> String {
    cfg.ports
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

/// Runs `berth ps`.
pub fn run(project: &ProjectArgs, args: PsArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(&args.services)?;
    let mut rows = Vec::new();
    for c in ctx.containers(&args.services, true)? {
        let c = container::refresh(&ctx.roots, &ctx.db, &c)?;
        let shown = if args.status.is_empty() {
            args.all || c.status.is_alive()
        } else {
            args.status.iter().any(|s| s == c.status.as_str())
        };
        if shown {
            rows.push(c);
        }
    }
    // Said on every listing (nothing else shows that restarts, health checks, names and ports
    // are not being served), and a missing supervisor is started again.
    let all = ctx.db.containers(&ctx.project.name)?;
    if let Some(w) = berth::supervise::client::look_after(&ctx.roots, &ctx.db, &ctx.project.name, &all) {
        berth::output::warn(&w);
    }
    if args.services_only {
        let mut seen: Vec<&str> = rows.iter().map(|c| c.service.as_str()).collect();
        seen.dedup();
        for s in seen {
            println!("{s}");
        }
        return Ok(());
    }
    if args.quiet {
        for c in &rows {
            println!("{}", c.id);
        }
        return Ok(());
    }
    if args.format == "json" {
        for c in &rows {
            let cfg = ContainerConfig::of(c)?;
            let sup = ctx.db.supervision(&c.id)?;
            let v = serde_json::json!({
                "ID": c.id, "Name": c.name, "Image": c.image, "Command": cfg.command.join(" "),
                "Project": c.project, "Service": c.service, "Created": c.created_at / 1000,
                "State": c.status.as_str(), "Status": status_text(c, &sup),
                "Health": sup.health.clone().unwrap_or_default(), "RestartCount": c.restart_count,
                "RestartReason": sup.restart_reason,
                "Labels": labels(c, &cfg),
                "ExitCode": c.exit_code.unwrap_or(0), "OOMKilled": c.oom_killed, "Pid": c.pid,
                "Publishers": cfg.ports.iter().map(|p| serde_json::json!({
                    "URL": p.host_ip, "TargetPort": p.target,
                    "PublishedPort": p.published.parse::<u16>().unwrap_or(0), "Protocol": p.protocol,
                })).collect::<Vec<_>>(),
            });
            println!("{v}");
        }
        return Ok(());
    }
    let mut table =
        vec![["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"].map(String::from).to_vec()];
    for c in &rows {
        let cfg = ContainerConfig::of(c)?;
        let mut cmd = format!("\"{}\"", cfg.command.join(" "));
        if cmd.len() > 24 {
            cmd = format!("{}…\"", &cmd[..cmd.char_indices().nth(21).map(|(i, _)| i).unwrap_or(cmd.len())]);
        }
        table.push(vec![
            c.name.clone(),
            c.image.clone(),
            cmd,
            c.service.clone(),
            format!("{} ago", human_duration(now_millis() - c.created_at)),
            status_text(c, &ctx.db.supervision(&c.id)?),
            ports_text(&cfg),
        ]);
    }
    print_table(&table);
    Ok(())
}

/// Prints rows as columns separated by three spaces.
pub fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r.get(i).map(|s| s.chars().count()).unwrap_or(0)).max().unwrap_or(0))
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
}
