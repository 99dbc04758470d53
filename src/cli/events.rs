//! `berth events`: follows the project's container events.

use std::io::Write;
use std::time::Duration;

use berth::monitor::log::format_rfc3339;
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::ProjectArgs;

/// Arguments of `berth events`.
#[derive(Args, Debug, Default)]
pub struct EventsArgs {
    /// Services (default: all)
    pub services: Vec<String>,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// Show past events since this time (RFC 3339, Unix seconds, or a duration like `10m`)
    #[arg(long)]
    pub since: Option<String>,
    /// Stop at this time (RFC 3339, Unix seconds, or a duration like `10m`; `0s` is now)
    #[arg(long)]
    pub until: Option<String>,
}

/// Runs `berth events` until interrupted.
pub fn run(project: &ProjectArgs, args: EventsArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(&args.services)?;
    let since = args.since.as_deref().map(berth::app::logs::parse_time).transpose()?;
    let until = args.until.as_deref().map(berth::app::logs::parse_time).transpose()?;
    let mut seq = if since.is_some() { 0 } else { ctx.db.last_event_seq(&ctx.project.name)? };
    loop {
        let past_until = until.is_some_and(|u| berth::state::now_nanos() >= u);
        let mut out = std::io::stdout().lock();
        for e in ctx.db.events_after(&ctx.project.name, seq)? {
            seq = e.seq;
            if !args.services.is_empty() && !args.services.contains(&e.service) {
                continue;
            }
            if since.is_some_and(|t| e.time < t) || until.is_some_and(|t| e.time >= t) {
                continue;
            }
            let mut attrs = e.attributes.clone();
            attrs.insert("name".into(), e.name.clone().into());
            let line = if args.json {
                serde_json::json!({
                    "time": format_rfc3339(e.time), "type": "container", "action": e.action,
                    "id": e.container, "service": e.service, "attributes": attrs,
                })
                .to_string()
            } else {
                let attrs: Vec<String> = attrs
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                    .collect();
                format!("{} container {} {} ({})", format_rfc3339(e.time), e.action, e.container, attrs.join(", "))
            };
            if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                return Ok(());
            }
        }
        drop(out);
        if past_until {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
