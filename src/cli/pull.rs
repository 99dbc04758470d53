//! `berth pull`: pulls the images of the project's services, with per-layer progress bars on a
//! terminal and plain lines otherwise.

use anyhow::Context;
use berth::app::pull::PullRequest;
use berth::image::{ImageStore, PullPolicy};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;

use crate::cli::ProjectArgs;

pub use crate::cli::render::pull::renderer;

/// A `--pull`/`--policy` option taking `choices`, Compose's pull policy spellings.
pub fn pull_choice(choices: &'static [&'static str]) -> impl TypedValueParser<Value = PullPolicy> {
    PossibleValuesParser::new(choices).map(|s| PullPolicy::parse(&s).expect("a pull policy"))
}

/// Arguments of `berth pull`.
#[derive(Args, Debug, Default)]
pub struct PullArgs {
    /// Services to pull (default: all)
    pub services: Vec<String>,
    /// Print nothing but warnings and errors
    #[arg(short, long)]
    pub quiet: bool,
    /// Report images that fail to pull as warnings and carry on
    #[arg(long)]
    pub ignore_pull_failures: bool,
    /// `missing` pulls only images not present locally; `always` (default) pulls every image
    #[arg(long, value_parser = pull_choice(&["missing", "always"]))]
    pub policy: Option<PullPolicy>,
    /// Also pull the images of the named services' dependencies
    #[arg(long)]
    pub include_deps: bool,
    /// Skip services that have a `build:` section (their image is built, not pulled)
    #[arg(long)]
    pub ignore_buildable: bool,
}

/// Runs `berth pull`.
pub fn run(project: &ProjectArgs, args: PullArgs) -> anyhow::Result<()> {
    let loaded = berth_compose::load(&project.load_options()?)?;
    for w in &loaded.warnings {
        berth::output::warn(w);
    }
    let store = ImageStore::open(&ImageStore::default_state_root()).context("cannot open the image store")?;
    let req = PullRequest {
        services: args.services,
        include_deps: args.include_deps,
        ignore_buildable: args.ignore_buildable,
        policy: args.policy,
        ignore_failures: args.ignore_pull_failures,
    };
    berth::app::pull::pull(&loaded.project, &store, &req, renderer(args.quiet).as_ref())
}
