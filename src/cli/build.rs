//! `berth build`: builds the images of the services that have a `build:` section, with
//! BuildKit-like plain progress (`#5 [build 2/4] RUN make`, `#5 CACHED`, `RUN` output), JSON
//! lines with `--progress json`, or nothing but errors with `-q`.

use anyhow::bail;
use berth::build::compose::{self, ComposeBuildOptions};
use clap::Args;

use super::progress::{Choice, Mode};
use super::render::build::Renderer;
use super::ProjectArgs;

#[path = "build/options.rs"]
mod options;

/// Arguments of `berth build`.
#[derive(Args, Debug, Default)]
pub struct BuildArgs {
    /// Services to build (default: every service with a `build:` section)
    pub services: Vec<String>,
    /// Build every layer again, without the cache
    #[arg(long)]
    pub no_cache: bool,
    /// Pull base images even when they are present
    #[arg(long)]
    pub pull: bool,
    /// A build argument, `KEY=VALUE` or `KEY` (its value from the environment); repeatable
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
    /// How to show progress (`auto`, `plain`, `json`, `quiet`, `tty`)
    #[arg(long = "progress", value_enum, value_name = "MODE")]
    pub progress: Option<Choice>,
    /// A build secret, `id=ID,src=PATH` (a file) or `id=ID,env=VAR` (a variable's value); repeatable
    #[arg(long, value_name = "id=ID,src=PATH")]
    pub secret: Vec<String>,
    /// SSH agent forwarding (not supported)
    #[arg(long, value_name = "SPEC")]
    pub ssh: Vec<String>,
    /// Push the images after building (not supported: use `berth push`)
    #[arg(long)]
    pub push: bool,
    /// Also build the images of the named services' dependencies
    #[arg(long)]
    pub with_dependencies: bool,
    /// The network of `RUN` steps: `default` (the build bridge, with NAT), `none` or `host`
    #[arg(long, value_name = "MODE", value_enum)]
    pub network: Option<options::RunNetwork>,
    /// OCI runtime for `RUN` steps (default: crun when usable, else runc)
    #[arg(long, env = "BERTH_RUNTIME", value_name = "NAME")]
    pub runtime: Option<String>,
}

/// Runs `berth build`.
pub fn run(project: &ProjectArgs, args: BuildArgs) -> anyhow::Result<()> {
    if !args.ssh.is_empty() {
        bail!("--ssh is not supported: berth forwards no SSH agent into builds");
    }
    if args.push {
        bail!("--push is not supported: run `berth push` after `berth build`");
    }
    let loaded = berth_compose::load(&project.load_options()?)?;
    for w in &loaded.warnings {
        berth::output::warn(w);
    }
    let opts = ComposeBuildOptions {
        no_cache: args.no_cache,
        pull: args.pull,
        args: options::build_args(&args.build_args)?,
        secrets: options::secrets(&args.secret)?,
        source_date_epoch: compose::source_date_epoch(),
        runtime: args.runtime.clone(),
        network: args.network.map(options::RunNetwork::mode),
    };
    let mode = if args.quiet { Mode::Quiet } else { Mode::of(args.progress.unwrap_or(project.progress)) };
    let roots = berth::container::Roots::from_env();
    let services = berth::app::build::Services { named: args.services, with_dependencies: args.with_dependencies };
    berth::app::build::build(&loaded.project, &roots, &services, &opts, &Renderer { mode })
}
