//! `berth export`: a service container's file system as a tar archive.

use std::io::IsTerminal;
use std::path::PathBuf;

use berth::container;
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::ProjectArgs;

/// Arguments of `berth export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The service
    pub service: String,
    /// Write to this file (default: standard output)
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Replica number
    #[arg(long, default_value_t = 1)]
    pub index: u32,
}

/// Runs `berth export`.
pub fn run(project: &ProjectArgs, args: ExportArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(std::slice::from_ref(&args.service))?;
    let c = container::by_index(&ctx.db, &ctx.project.name, &args.service, args.index)?;
    match &args.output {
        Some(path) => {
            // Written beside the destination and moved into place once whole.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            // SAFETY: `berth export` runs on the CLI's one thread (no runtime, no launcher).
            unsafe { container::export(&ctx.roots, &ctx.db, &c, &mut tmp)? };
            tmp.persist(path)?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                anyhow::bail!("refusing to write an archive to a terminal: use -o FILE or redirect the output");
            }
            // SAFETY: as above.
            unsafe { container::export(&ctx.roots, &ctx.db, &c, std::io::stdout().lock())? };
        }
    }
    Ok(())
}
