//! `berth stats`: CPU, memory, network and block I/O and pids of the containers, from their
//! cgroups and their network namespaces.

use std::time::{Duration, Instant};

use berth::container::{self, Stats};
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::format::print_table;
use crate::cli::ProjectArgs;

/// Arguments of `berth stats`.
#[derive(Args, Debug, Default)]
pub struct StatsArgs {
    /// Services (default: all)
    pub services: Vec<String>,
    /// Print one sample and exit
    #[arg(long)]
    pub no_stream: bool,
    /// Show stopped containers too (with nothing used)
    #[arg(short, long)]
    pub all: bool,
    /// Show whole container ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::cli::ListFormat,
}

fn human_bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.2}{}", units[i])
}

/// Runs `berth stats`.
pub fn run(project: &ProjectArgs, args: StatsArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(&args.services)?;
    let mut prev: Vec<(String, Stats)> = Vec::new();
    let mut at = Instant::now();
    loop {
        let list: Vec<_> = ctx
            .containers(&args.services, true)?
            .into_iter()
            .filter_map(|c| container::refresh(&ctx.roots, &ctx.db, &c).ok())
            .filter(|c| args.all || c.status.is_alive())
            .collect();
        if prev.is_empty() {
            prev = list.iter().map(|c| (c.id.clone(), container::stats(c).unwrap_or_default())).collect();
            at = Instant::now();
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        let dt = at.elapsed().as_nanos().max(1) as f64;
        at = Instant::now();
        let header = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"];
        let mut rows = vec![header.map(String::from).to_vec()];
        let mut next = Vec::new();
        for c in &list {
            let s = if c.status.is_alive() { container::stats(c)? } else { Stats::default() };
            let before = prev.iter().find(|(id, _)| id == &c.id).map(|(_, s)| s.cpu_nanos).unwrap_or(s.cpu_nanos);
            let cpu = (s.cpu_nanos.saturating_sub(before)) as f64 / dt * 100.0;
            let limit = s.memory_limit.unwrap_or(0);
            let mem_pct = if limit > 0 { s.memory as f64 / limit as f64 * 100.0 } else { 0.0 };
            if args.format == crate::cli::ListFormat::Json {
                let probe = ctx.db.supervision(&c.id)?.last_probe.map(|d| d.as_secs_f64());
                println!(
                    "{}",
                    serde_json::json!({"Name": c.name, "ID": c.id, "CPUPerc": format!("{cpu:.2}%"),
                        "MemUsage": s.memory, "MemLimit": limit, "MemPerc": format!("{mem_pct:.2}%"), "PIDs": s.pids,
                        "NetRx": s.net_rx, "NetTx": s.net_tx, "BlockRead": s.block_read, "BlockWrite": s.block_write,
                        "HealthProbeSeconds": probe})
                );
            }
            let id = if args.no_trunc { c.id.clone() } else { c.id.chars().take(12).collect() };
            rows.push(vec![
                id,
                c.name.clone(),
                format!("{cpu:.2}%"),
                format!("{} / {}", human_bytes(s.memory), human_bytes(limit)),
                format!("{mem_pct:.2}%"),
                format!("{} / {}", human_bytes(s.net_rx), human_bytes(s.net_tx)),
                format!("{} / {}", human_bytes(s.block_read), human_bytes(s.block_write)),
                s.pids.to_string(),
            ]);
            next.push((c.id.clone(), s));
        }
        if args.format != crate::cli::ListFormat::Json {
            print_table(&rows);
        }
        if args.no_stream {
            return Ok(());
        }
        prev = next;
        std::thread::sleep(Duration::from_secs(1));
    }
}
