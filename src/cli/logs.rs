//! `berth logs`: prints (and follows) the containers' logs from their log files.

use berth::app::logs::{self, parse_time, LogsQuery};
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::render::logs::{Printer, Style};
use crate::cli::ProjectArgs;

/// Arguments of `berth logs`.
#[derive(Args, Debug, Default)]
pub struct LogsArgs {
    /// Services (default: all)
    pub services: Vec<String>,
    /// Keep printing new lines (across restarts) until the containers stop
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines from the end of each container's log (`all` for every line)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Only lines since this time (RFC 3339, Unix seconds, or a duration like `10m`)
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines before this time (RFC 3339, Unix seconds, or a duration like `10m`)
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Monochrome output
    #[arg(long)]
    pub no_color: bool,
    /// Do not prefix lines with the container name
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Logs of one replica only
    #[arg(long)]
    pub index: Option<u32>,
}

/// Runs `berth logs`.
pub fn run(project: &ProjectArgs, args: LogsArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load_named(project)?;
    ctx.check_services(&args.services)?;
    let tail = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(n.parse()?),
    };
    let query = LogsQuery {
        services: args.services,
        index: args.index,
        since: args.since.as_deref().map(parse_time).transpose()?,
        until: args.until.as_deref().map(parse_time).transpose()?,
        tail,
        follow: args.follow,
    };
    let mut printer =
        Printer::new(Style { no_color: args.no_color, no_prefix: args.no_log_prefix, timestamps: args.timestamps });
    let events = berth::output::PlainRenderer;
    logs::show(&ctx.session(&events), &query, &mut |shown| printer.logs(shown))
}
