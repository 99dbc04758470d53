//! `berth image ls|rm|prune|inspect|load|save`: the local image store.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use berth::image::{self, ImageStore, ImageSummary};
use clap::{Args, Subcommand};

use crate::cli::pull::human_size;

/// Arguments of `berth image`.
#[derive(Args, Debug)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// The `berth image` subcommands.
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List stored images
    #[command(alias = "list")]
    Ls {
        /// Only print image ids
        #[arg(short, long)]
        quiet: bool,
        /// Output format
        #[arg(long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
    },
    /// Remove images (refuses while a container uses one)
    #[command(alias = "remove")]
    Rm {
        /// Images by reference or id
        #[arg(required = true)]
        images: Vec<String>,
        /// Remove an image by id even when several tags point at it
        #[arg(short, long)]
        force: bool,
    },
    /// Remove unused images
    Prune {
        /// Remove every image not used by a container, not only untagged ones
        #[arg(short, long)]
        all: bool,
    },
    /// Print the image configuration (OCI config) as JSON
    Inspect {
        /// Images by reference or id
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Load images from an OCI archive or a `docker save` tarball
    Load {
        /// The archive
        #[arg(short, long, value_name = "FILE")]
        input: PathBuf,
        /// Print nothing
        #[arg(short, long)]
        quiet: bool,
    },
    /// Give an image another name (`docker tag`)
    Tag {
        /// The image, by reference or id
        source: String,
        /// The new name (`registry/repository:tag`)
        target: String,
    },
    /// Save images to an OCI archive
    Save {
        /// Images by reference or id
        #[arg(required = true)]
        images: Vec<String>,
        /// The archive to write
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
}

/// The image ids that containers (of any project, running or not) were created from.
pub(super) fn images_in_use(root: &std::path::Path) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let db = berth::state::StateDb::open(root).context("cannot open the state database")?;
    Ok(db.images_in_use()?)
}

/// The image ids of known-good deployments `rollback` may return to, each with the services
/// (`project/service`) whose they are.
fn known_good(root: &std::path::Path) -> anyhow::Result<std::collections::BTreeMap<String, Vec<String>>> {
    let db = berth::state::StateDb::open(root).context("cannot open the state database")?;
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for d in db.kept_deployments()? {
        let who = format!("service `{}` of project `{}`", d.service, d.project);
        let services = out.entry(d.image_digest).or_default();
        if !services.contains(&who) {
            services.push(who);
        }
    }
    Ok(out)
}

/// Runs `berth image ...`.
pub fn run(args: ImageArgs) -> anyhow::Result<()> {
    let root = ImageStore::default_state_root();
    let store = ImageStore::open(&root).context("cannot open the image store")?;
    let used = images_in_use(&root)?;
    let kept = known_good(&root)?;
    // The known-good images asked about: those an `rm` or a prune would have deleted.
    let spared = std::cell::RefCell::new(Vec::new());
    let in_use = |id: &image::Digest| {
        let id = id.to_string();
        if used.contains(&id) {
            return true;
        }
        let known_good = kept.contains_key(&id);
        if known_good {
            spared.borrow_mut().push(id);
        }
        known_good
    };
    let why_kept = |id: &str| format!("it is the known-good image of {}", kept[id].join(", "));
    match args.command {
        ImageCommand::Ls { quiet, format } => print_rows(&store.list()?, quiet, &format),
        ImageCommand::Tag { source, target } => {
            let target = image::Reference::parse(&target)?;
            Ok(store.tag(&source, &target)?)
        }
        ImageCommand::Rm { images, force } => {
            let mut failed = Vec::new();
            for name in &images {
                match store.remove(name, force, &in_use) {
                    Ok(rep) => {
                        let mut out = std::io::stdout().lock();
                        for t in rep.untagged {
                            writeln!(out, "Untagged: {t}")?;
                        }
                        for d in rep.deleted {
                            writeln!(out, "Deleted: {d}")?;
                        }
                    }
                    Err(e) => match spared.borrow_mut().pop() {
                        Some(id) => failed.push(format!(
                            "image `{name}` is kept: {} (`berth rollback` returns to it)",
                            why_kept(&id)
                        )),
                        None => failed.push(e.to_string()),
                    },
                }
            }
            match failed.len() {
                0 => Ok(()),
                _ => anyhow::bail!("{}", failed.join("\n")),
            }
        }
        ImageCommand::Prune { all } => {
            let rep = store.prune(all, &in_use)?;
            let mut out = std::io::stdout().lock();
            for id in spared.borrow().iter() {
                writeln!(out, "Kept: {id} ({})", why_kept(id))?;
            }
            for d in &rep.deleted {
                writeln!(out, "Deleted: {d}")?;
            }
            writeln!(out, "Total reclaimed space: {}", human_size(rep.reclaimed))?;
            Ok(())
        }
        ImageCommand::Inspect { images } => {
            let configs = images.iter().map(|n| store.inspect(n)).collect::<Result<Vec<_>, _>>()?;
            ignore_broken_pipe(writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&configs)?))
        }
        ImageCommand::Load { input, quiet } => {
            let sink = crate::cli::pull::renderer(quiet);
            let names = image::load_archive(&store, &input, sink.as_ref())?;
            if !quiet {
                let mut out = std::io::stdout().lock();
                for n in names {
                    ignore_broken_pipe(writeln!(out, "Loaded image: {n}"))?;
                }
            }
            Ok(())
        }
        ImageCommand::Save { images, output } => Ok(image::save_archive(&store, &images, &output)?),
    }
}

/// A reader that went away (`| head`) is not an error.
fn ignore_broken_pipe(r: std::io::Result<()>) -> anyhow::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Prints image rows as a table, ids only, or JSON (one array).
pub fn print_rows(rows: &[ImageSummary], quiet: bool, format: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if quiet {
        let mut seen = Vec::new();
        for r in rows {
            if !seen.contains(&r.id) {
                writeln!(out, "{}", r.id.short())?;
                seen.push(r.id.clone());
            }
        }
        return Ok(());
    }
    if format == "json" {
        writeln!(out, "{}", serde_json::to_string_pretty(rows)?)?;
        return Ok(());
    }
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.repository.clone(),
                r.tag.clone(),
                r.id.short().to_string(),
                r.digest.to_string(),
                human_size(r.size),
                r.created.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["REPOSITORY", "TAG", "IMAGE ID", "DIGEST", "SIZE", "CREATED"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &table {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    for row in std::iter::once(&header).chain(&table) {
        let line: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        ignore_broken_pipe(writeln!(out, "{}", line.join("   ").trim_end()))?;
    }
    Ok(())
}
