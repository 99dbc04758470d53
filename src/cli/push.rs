//! `berth push`: pushes the images of the services that name one (`image:`) from berth's store to
//! their registries, as Compose does.

use anyhow::{bail, Context};
use berth::image::{ImageStore, Reference};
use clap::Args;

use super::ProjectArgs;

/// Arguments of `berth push`.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// Services whose images to push (default: every service with `image:`)
    pub services: Vec<String>,
    /// Go on past images that cannot be pushed
    #[arg(long)]
    pub ignore_push_failures: bool,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `berth push`.
pub fn run(project: &ProjectArgs, args: PushArgs) -> anyhow::Result<()> {
    let loaded = berth_compose::load(&project.load_options()?)?;
    let services = &loaded.project.services;
    if let Some(s) = args.services.iter().find(|s| !services.contains_key(*s)) {
        bail!("no such service: `{s}`");
    }
    let store = ImageStore::open(&ImageStore::default_state_root()).context("cannot open the image store")?;
    let events = Warnings;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut failed = Vec::new();
    for (name, svc) in services {
        if !args.services.is_empty() && !args.services.contains(name) {
            continue;
        }
        let Some(image) = &svc.image else { continue };
        let target = Reference::parse(image).with_context(|| format!("service `{name}`"))?;
        match rt.block_on(berth::image::push(&store, image, &target, &events)) {
            Ok(digest) if !args.quiet => eprintln!(" Image {target}  Pushed  {digest}"),
            Ok(_) => {}
            Err(e) if args.ignore_push_failures => berth::output::warn(&format!("service `{name}`: {e}")),
            Err(e) => failed.push(format!("service `{name}`: {e}")),
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    Ok(())
}

/// Passes warnings on; each push is reported by the command itself.
struct Warnings;

impl berth::events::EventSink for Warnings {
    fn emit(&self, event: berth::events::Event) {
        if let berth::events::Event::Warning { message } = event {
            berth::output::warn(&message);
        }
    }
}
