//! `berth ps`: lists the project's containers, and warns when the project's supervisor is gone
//! (and starts a new one) or stopped while the project needs one.

use anyhow::{bail, Context};
use berth::container::{self, ContainerConfig};
use berth::state::{now_millis, ContainerRecord, Status, Supervision};
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::ProjectArgs;

/// Arguments of `berth ps`.
#[derive(Args, Debug)]
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
    #[arg(long, value_parser = STATUSES)]
    pub status: Vec<String>,
    /// Only containers matching KEY=VALUE (repeatable): `status=STATUS`, `service=NAME`
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Do not truncate the command (and ids in `--format`)
    #[arg(long)]
    pub no_trunc: bool,
    /// Include containers of services the project no longer declares (`--orphans=false`: not)
    // A Go bool flag in Compose: `--orphans=false`, never a separate word (`ps --orphans web`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    pub orphans: bool,
    /// Output format: `table`, `json`, `table TEMPLATE` or `TEMPLATE` (`{{.Name}}\t{{.State}}`)
    #[arg(long, default_value = "table")]
    pub format: String,
}

impl Default for PsArgs {
    fn default() -> Self {
        PsArgs {
            services: Vec::new(),
            all: false,
            quiet: false,
            services_only: false,
            status: Vec::new(),
            filter: Vec::new(),
            no_trunc: false,
            orphans: true,
            format: "table".into(),
        }
    }
}

/// The states `--status` and `--filter status=` take.
const STATUSES: [&str; 7] = ["created", "running", "paused", "restarting", "exited", "dead", "removing"];

/// The fields a `--format` template can name, with their table headers.
const FIELDS: [(&str, &str); 14] = [
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("Project", "PROJECT"),
    ("Service", "SERVICE"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Health", "HEALTH"),
    ("ExitCode", "EXIT CODE"),
    ("Ports", "PORTS"),
    ("Labels", "LABELS"),
];

/// A piece of a `--format` template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(&'static str),
}

/// A `--format` template: Go-template-like text with `{{.Field}}` placeholders; `table` first
/// prints a header row and aligns the tab-separated columns, as Docker does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    table: bool,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `--format` (`table` and `json` are not templates: `None`).
    fn parse(format: &str) -> anyhow::Result<Option<Template>> {
        let format = format.trim();
        if format == "table" || format == "json" {
            return Ok(None);
        }
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) if rest.starts_with(char::is_whitespace) => (true, rest.trim()),
            _ => (false, format),
        };
        // What a shell passes for `\t` is a backslash and a `t`: Docker reads both escapes.
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut pieces = Vec::new();
        let mut rest = body.as_str();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").with_context(|| format!("--format: `{{{{` without `}}}}` in {format:?}"))?;
            let inner = after[..close].trim();
            let name = inner.strip_prefix('.').unwrap_or("");
            let Some((field, _)) = FIELDS.iter().find(|(f, _)| *f == name) else {
                let known = FIELDS.iter().map(|(f, _)| format!(".{f}")).collect::<Vec<_>>().join(", ");
                bail!(
                    "--format: unknown field `{{{{{inner}}}}}`: berth's templates take only `{{{{.Field}}}}` with one of {known}"
                );
            };
            pieces.push(Piece::Field(field));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Some(Template { table, pieces }))
    }

    /// The template with each field replaced by `value(field)`.
    fn render(&self, value: impl Fn(&str) -> String) -> String {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.clone(),
                Piece::Field(f) => value(f),
            })
            .collect()
    }

    /// The header row of a `table` template.
    fn header(&self) -> String {
        self.render(|f| FIELDS.iter().find(|(n, _)| *n == f).map(|(_, h)| h.to_string()).unwrap_or_default())
    }
}

/// Aligns tab-separated cells as Go's tabwriter does for Docker (cells at least 10 wide, 3
/// spaces of padding; a line's last cell is not aligned).
fn align_tabs(lines: &[String]) -> String {
    let split: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let cols = split.iter().map(|r| r.len().saturating_sub(1)).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            let w = split.iter().filter(|r| i + 1 < r.len()).map(|r| r[i].chars().count()).max().unwrap_or(0);
            (w + 3).max(10)
        })
        .collect();
    let mut out = String::new();
    for r in &split {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Parses `--filter KEY=VALUE`s into wanted states and services.
fn parse_filters(filters: &[String]) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let (mut states, mut services) = (Vec::new(), Vec::new());
    for f in filters {
        let Some((key, value)) = f.split_once('=') else {
            bail!("--filter {f:?}: expected KEY=VALUE (status=STATUS or service=NAME)");
        };
        match key.trim() {
            "status" if STATUSES.contains(&value) => states.push(value.to_string()),
            "status" => bail!("--filter status={value}: unknown status; one of {}", STATUSES.join(", ")),
            "service" => services.push(value.to_string()),
            other => bail!("--filter: unknown filter `{other}` (supported: status, service)"),
        }
    }
    Ok((states, services))
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

/// The command as `ps` shows it: quoted, cut to 20 characters unless `full`.
fn command_text(cfg: &ContainerConfig, full: bool) -> String {
    let mut cmd = format!("\"{}\"", cfg.command.join(" "));
    if !full && cmd.chars().count() > 24 {
        cmd = format!("{}…\"", &cmd[..cmd.char_indices().nth(21).map(|(i, _)| i).unwrap_or(cmd.len())]);
    }
    cmd
}

/// The value of template field `field` for container `c`.
fn field_value(field: &str, c: &ContainerRecord, cfg: &ContainerConfig, sup: &Supervision, full: bool) -> String {
    match field {
        "ID" if full => c.id.clone(),
        "ID" => c.id.chars().take(12).collect(),
        "Name" => c.name.clone(),
        "Image" => c.image.clone(),
        "Command" => command_text(cfg, full),
        "Project" => c.project.clone(),
        "Service" => c.service.clone(),
        "CreatedAt" => created_at(c.created_at),
        "RunningFor" => format!("{} ago", human_duration(now_millis() - c.created_at)),
        "State" => c.status.as_str().to_string(),
        "Status" => status_text(c, sup),
        "Health" => sup.health.clone().unwrap_or_default(),
        "ExitCode" => c.exit_code.unwrap_or(0).to_string(),
        "Ports" => ports_text(cfg),
        "Labels" => labels(c, cfg)
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

/// Docker's `CreatedAt`: `2024-01-02 03:04:05 +0000 UTC`.
fn created_at(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] +0000 UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// Runs `berth ps`.
pub fn run(project: &ProjectArgs, args: PsArgs) -> anyhow::Result<()> {
    // Refused before anything is looked at.
    let template = Template::parse(&args.format)?;
    let (filter_states, filter_services) = parse_filters(&args.filter)?;
    let ctx = Ctx::load(project)?;
    ctx.check_services(&args.services)?;
    let states: Vec<&String> = args.status.iter().chain(&filter_states).collect();
    let mut rows = Vec::new();
    for c in ctx.containers(&args.services, true)? {
        if !filter_services.is_empty() && !filter_services.contains(&c.service) {
            continue;
        }
        // Compose's orphans: containers of services the project does not declare (any more).
        if !args.orphans && !ctx.project.services.contains_key(&c.service) {
            continue;
        }
        let c = container::refresh(&ctx.roots, &ctx.db, &c)?;
        let shown = if states.is_empty() {
            args.all || c.status.is_alive()
        } else {
            states.iter().any(|s| s.as_str() == c.status.as_str())
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
    if let Some(t) = template {
        let mut lines = Vec::new();
        if t.table {
            lines.push(t.header());
        }
        for c in &rows {
            let cfg = ContainerConfig::of(c)?;
            let sup = ctx.db.supervision(&c.id)?;
            lines.push(t.render(|f| field_value(f, c, &cfg, &sup, args.no_trunc)));
        }
        let text = if t.table { align_tabs(&lines) } else { lines.iter().map(|l| format!("{l}\n")).collect() };
        print!("{text}");
        return Ok(());
    }
    if args.format.trim() == "json" {
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
        table.push(vec![
            c.name.clone(),
            c.image.clone(),
            command_text(&cfg, args.no_trunc),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_substitute_fields_and_keep_text() {
        let t = Template::parse("{{.Name}}\\t{{ .State }} ({{.ExitCode}})").unwrap().unwrap();
        assert!(!t.table);
        let line = t.render(|f| format!("<{f}>"));
        assert_eq!(line, "<Name>\t<State> (<ExitCode>)");
        assert_eq!(Template::parse("table").unwrap(), None);
        assert_eq!(Template::parse("json").unwrap(), None);
    }

    #[test]
    fn table_templates_have_a_header_and_aligned_columns() {
        let t = Template::parse("table {{.Name}}\\t{{.State}}\t{{.ID}}").unwrap().unwrap();
        assert!(t.table);
        assert_eq!(t.header(), "NAME\tSTATE\tCONTAINER ID");
        let lines = vec![t.header(), "a-very-long-name-1\trunning\tabc".to_string()];
        assert_eq!(
            align_tabs(&lines),
            "NAME                 STATE     CONTAINER ID\na-very-long-name-1   running   abc\n"
        );
    }

    #[test]
    fn unknown_fields_are_refused_with_the_known_ones() {
        let e = Template::parse("{{.Nmae}}").unwrap_err().to_string();
        assert!(e.contains("unknown field `{{.Nmae}}`") && e.contains(".Name, ") && e.contains(".Health"), "{e}");
        let e = Template::parse("{{json .}}").unwrap_err().to_string();
        assert!(e.contains("unknown field `{{json .}}`"), "{e}");
        assert!(Template::parse("{{.Name").is_err());
    }

    #[test]
    fn orphans_is_a_bool_flag() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            ps: PsArgs,
        }
        let parse = |a: &[&str]| <Cli as clap::Parser>::try_parse_from(std::iter::once("ps").chain(a.iter().copied()));
        assert!(parse(&[]).unwrap().ps.orphans);
        assert!(parse(&["--orphans"]).unwrap().ps.orphans);
        assert!(!parse(&["--orphans=false"]).unwrap().ps.orphans);
        let p = parse(&["--orphans", "web"]).unwrap().ps;
        assert!(p.orphans && p.services == ["web"]);
    }

    #[test]
    fn filters() {
        let f = |v: &[&str]| parse_filters(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(f(&["status=exited", "service=web"]).unwrap(), (vec!["exited".into()], vec!["web".into()]));
        assert!(f(&["status=stopped"]).unwrap_err().to_string().contains("one of created, running"));
        assert!(f(&["health=healthy"]).unwrap_err().to_string().contains("unknown filter `health`"));
        assert!(f(&["status"]).is_err());
    }
}
