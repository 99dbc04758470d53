//! `berth images`: the images the project's services use, as stored locally.

use anyhow::Context;
use berth::image::{ImageStore, Reference};
use clap::Args;

use crate::cli::image::print_rows;
use crate::cli::ProjectArgs;

/// Arguments of `berth images`.
#[derive(Args, Debug, Default)]
pub struct ImagesArgs {
    /// Services whose images to show (default: all)
    pub services: Vec<String>,
    /// Only print image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format
    #[arg(long, value_parser = ["table", "json"], default_value = "table")]
    pub format: String,
}

/// Runs `berth images`.
pub fn run(project: &ProjectArgs, args: ImagesArgs) -> anyhow::Result<()> {
    let loaded = berth_compose::load(&project.load_options()?)?;
    let store = ImageStore::open(&ImageStore::default_state_root()).context("cannot open the image store")?;
    let mut rows = Vec::new();
    for (name, svc) in &loaded.project.services {
        if !args.services.is_empty() && !args.services.contains(name) {
            continue;
        }
        let Some(img) = &svc.image else { continue };
        let reference = Reference::parse(img).with_context(|| format!("service `{name}`"))?;
        let Some(rec) = store.lookup(&reference)? else {
            continue;
        };
        let tagged = reference.tagged_name();
        let mut summaries: Vec<_> = store.list()?.into_iter().filter(|s| s.id == rec.id).collect();
        summaries.retain(|s| tagged.as_deref().is_none_or(|t| format!("{}:{}", s.repository, s.tag) == t));
        for s in summaries {
            if !rows.contains(&s) {
                rows.push(s);
            }
        }
    }
    print_rows(&rows, args.quiet, &args.format)
}
