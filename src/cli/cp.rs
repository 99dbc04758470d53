//! `berth cp`: copies files between a service container and the host (`SERVICE:PATH` names the
//! container side).

use std::path::PathBuf;

use berth::container::{self, CopyEndpoint};
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::ProjectArgs;

/// Arguments of `berth cp`.
#[derive(Args, Debug, Default)]
pub struct CpArgs {
    /// Source: `SERVICE:PATH` or a host path
    pub source: String,
    /// Destination: `SERVICE:PATH` or a host path
    pub destination: String,
    /// Replica number
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Archive mode: keep the files' owners (uid and gid)
    #[arg(short, long)]
    pub archive: bool,
    /// Follow the source path when it is a symbolic link
    #[arg(short = 'L', long)]
    pub follow_link: bool,
}

/// Runs `berth cp`.
pub fn run(project: &ProjectArgs, args: CpArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    let side = |s: &str| -> (Option<String>, CopyEndpoint) {
        match s.split_once(':') {
            Some((svc, path)) if ctx.project.services.contains_key(svc) => {
                (Some(svc.to_string()), CopyEndpoint::Container(PathBuf::from(path)))
            }
            _ => (None, CopyEndpoint::Host(PathBuf::from(s))),
        }
    };
    let (s1, from) = side(&args.source);
    let (s2, to) = side(&args.destination);
    let service = match (s1, s2) {
        (Some(s), None) | (None, Some(s)) => s,
        _ => anyhow::bail!("exactly one of source and destination must be `SERVICE:PATH`"),
    };
    let c = container::by_index(&ctx.db, &ctx.project.name, &service, args.index)?;
    let opts = container::CopyOptions { archive: args.archive, follow_link: args.follow_link };
    // SAFETY: `berth cp` runs on the CLI's one thread (it starts no runtime and no launcher).
    unsafe { container::copy(&ctx.roots, &ctx.db, &c, &from, &to, opts) }
}
