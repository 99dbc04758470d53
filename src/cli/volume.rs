//! `berth volume ls|inspect|create|rm|prune`: named and anonymous volumes under the state root.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::Context;
use berth_volumes::store::{VolumeSpec, VolumeStore};
use clap::{Args, Subcommand};

use super::ProjectArgs;

/// Arguments of `berth volume`.
#[derive(Args, Debug)]
pub struct VolumeArgs {
    #[command(subcommand)]
    command: VolumeCommand,
}

#[derive(Subcommand, Debug)]
enum VolumeCommand {
    /// List volumes
    Ls(super::ListArgs),
    /// Show volumes as JSON
    Inspect {
        /// Volume names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Create a volume (the local driver)
    Create {
        /// Volume name
        name: String,
        /// A label `KEY=VALUE` (repeatable)
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// A driver option `type=...`, `o=...` or `device=...` (repeatable)
        #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
        opts: Vec<String>,
    },
    /// Remove volumes (refused while a container uses one)
    Rm {
        /// Volume names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused anonymous volumes (all unused volumes with `--all`)
    Prune {
        /// Also remove unused named volumes
        #[arg(short, long)]
        all: bool,
    },
}

/// The containers holding each volume, as the state database records them.
fn users(root: &std::path::Path) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let db = berth::state::StateDb::open(root).context("cannot open the state database")?;
    Ok(db.all_volume_holders()?)
}

fn key_values(items: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => anyhow::bail!("invalid {what} {kv:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// Arguments of `berth volumes`.
#[derive(clap::Args, Debug)]
pub struct VolumesArgs {
    /// Services whose volumes to list (default: the whole project's)
    pub services: Vec<String>,
    #[command(flatten)]
    list: super::ListArgs,
}

/// Runs `berth volumes`: the volumes made for the project (its label), or those the named
/// services' containers use.
pub fn volumes(project: &ProjectArgs, args: VolumesArgs) -> anyhow::Result<()> {
    let ctx = super::containers::Ctx::load(project)?;
    ctx.check_services(&args.services)?;
    let store = VolumeStore::open(ctx.roots.root.join("volumes")).context("cannot open the volume store")?;
    let used: BTreeSet<String> =
        ctx.containers(&args.services, true)?.iter().flat_map(|c| c.volumes.iter().cloned()).collect();
    let label = berth::stack::volmodel::PROJECT_LABEL;
    let vols: Vec<_> = store
        .list()?
        .into_iter()
        .filter(|v| {
            if args.services.is_empty() {
                v.spec.labels.get(label) == Some(&ctx.project.name) || used.contains(&v.spec.name)
            } else {
                used.contains(&v.spec.name)
            }
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if args.list.format == "json" {
        writeln!(out, "{}", serde_json::to_string_pretty(&vols)?)?;
    } else if args.list.quiet {
        vols.iter().try_for_each(|v| writeln!(out, "{}", v.spec.name))?;
    } else {
        writeln!(out, "DRIVER    VOLUME NAME")?;
        vols.iter().try_for_each(|v| writeln!(out, "local     {}", v.spec.name))?;
    }
    Ok(())
}

/// Runs `berth volume ...`.
pub fn run(_project: &ProjectArgs, args: VolumeArgs) -> anyhow::Result<()> {
    let roots = berth::container::Roots::from_env();
    let store = VolumeStore::open(roots.root.join("volumes")).context("cannot open the volume store")?;
    let mut out = std::io::stdout().lock();
    match args.command {
        VolumeCommand::Ls(super::ListArgs { quiet, format }) => {
            let vols = store.list()?;
            if format == "json" {
                writeln!(out, "{}", serde_json::to_string_pretty(&vols)?)?;
            } else if quiet {
                vols.iter().try_for_each(|v| writeln!(out, "{}", v.spec.name))?;
            } else {
                writeln!(out, "DRIVER    VOLUME NAME")?;
                vols.iter().try_for_each(|v| writeln!(out, "local     {}", v.spec.name))?;
            }
        }
        VolumeCommand::Inspect { names } => {
            let found = names
                .iter()
                .map(|n| store.get(n)?.ok_or_else(|| berth_volumes::Error::NoSuchVolume(n.clone())))
                .collect::<Result<Vec<_>, _>>()?;
            writeln!(out, "{}", serde_json::to_string_pretty(&found)?)?;
        }
        VolumeCommand::Create { name, labels, opts } => {
            let spec = VolumeSpec {
                name,
                driver: None,
                driver_opts: key_values(&opts, "driver option")?,
                labels: key_values(&labels, "label")?,
                anonymous: false,
            };
            writeln!(out, "{}", store.create(&spec)?.spec.name)?;
        }
        VolumeCommand::Rm { names } => {
            let users = users(&roots.root)?;
            let mut failed = Vec::new();
            for n in &names {
                match store.remove(n, users.get(n).map(Vec::as_slice).unwrap_or_default()) {
                    Ok(()) => writeln!(out, "{n}")?,
                    Err(e) => failed.push(e.to_string()),
                }
            }
            if !failed.is_empty() {
                anyhow::bail!("{}", failed.join("\n"));
            }
        }
        VolumeCommand::Prune { all } => {
            let used: BTreeSet<String> = users(&roots.root)?.into_keys().collect();
            for v in store.list()? {
                if (all || v.spec.anonymous) && !used.contains(&v.spec.name) {
                    store.remove(&v.spec.name, &[])?;
                    writeln!(out, "Deleted: {}", v.spec.name)?;
                }
            }
        }
    }
    Ok(())
}
