//! `berth commit`: a new image from a service container's changes.

use berth::app::commit::{commit, CommitOptions};
use berth::container;
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::ProjectArgs;

/// Arguments of `berth commit`.
#[derive(Args, Debug)]
pub struct CommitArgs {
    /// The service
    pub service: String,
    /// Tag the image as `REPOSITORY[:TAG]`
    pub repository: Option<String>,
    /// Author of the image (e.g. `Jane <jane@example.com>`)
    #[arg(short, long)]
    pub author: Option<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD,
    /// STOPSIGNAL, USER, VOLUME, WORKDIR)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// Pause the container while its file system is read
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    /// Replica number
    #[arg(long, default_value_t = 1)]
    pub index: u32,
}

/// Runs `berth commit`: prints the new image's id.
pub fn run(project: &ProjectArgs, args: CommitArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(std::slice::from_ref(&args.service))?;
    let c = container::by_index(&ctx.db, &ctx.project.name, &args.service, args.index)?;
    let opts = CommitOptions {
        author: args.author,
        message: args.message,
        changes: args.change,
        pause: args.pause,
        tag: args.repository,
    };
    println!("{}", commit(&ctx.roots, &ctx.db, &c, &opts)?);
    Ok(())
}
