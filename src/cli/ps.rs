//! `berth ps`: lists the project's containers, and warns when the project's supervisor is gone
//! (and starts a new one) or stopped while the project needs one.

use anyhow::bail;
use berth::app::ps::PsQuery;
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::format::Template;
use crate::cli::render::ps::{print, View};
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

/// The states `--status` and `--filter status=` take.
const STATUSES: [&str; 7] = ["created", "running", "paused", "restarting", "exited", "dead", "removing"];

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

/// Runs `berth ps`.
pub fn run(project: &ProjectArgs, args: PsArgs) -> anyhow::Result<()> {
    // Refused before anything is looked at.
    let template = Template::parse(&args.format)?;
    let (filter_states, filter_services) = parse_filters(&args.filter)?;
    let ctx = Ctx::load_named(project)?;
    ctx.check_services(&args.services)?;
    let query = PsQuery {
        services: args.services.clone(),
        all: args.all,
        states: args.status.iter().cloned().chain(filter_states).collect(),
        filter_services,
        orphans: args.orphans,
    };
    let rows = berth::app::ps::select(&ctx.session(&berth::output::PlainRenderer), &query)?;
    let view = View {
        services_only: args.services_only,
        quiet: args.quiet,
        json: args.format.trim() == "json",
        no_trunc: args.no_trunc,
    };
    print(&rows, view, template);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
