//! `berth config`: load, resolve and print the project, like `docker compose config`.

use std::path::PathBuf;

use clap::Args;

use crate::cli::ProjectArgs;

/// Arguments of `berth config`.
#[derive(Args, Debug, Default)]
pub struct ConfigArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: ConfigFormat,
    /// Print the service names, one per line
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    pub volumes: bool,
    /// Print the network names, one per line
    #[arg(long)]
    pub networks: bool,
    /// Print the profile names, one per line
    #[arg(long = "profiles", id = "list_profiles")]
    pub profiles: bool,
    /// Print the image names, one per line
    #[arg(long)]
    pub images: bool,
    /// Print the variables the files use, their values and where each was set
    #[arg(long)]
    pub variables: bool,
    /// Only validate the configuration, print nothing
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not interpolate environment variables
    #[arg(long)]
    pub no_interpolate: bool,
    /// Do not normalize the model (implicit default network, resource names, dependencies)
    #[arg(long)]
    pub no_normalize: bool,
    /// Do not check references and dependency cycles
    #[arg(long)]
    pub no_consistency: bool,
    /// Show, for every interpolated value, which variables made it and where each was set
    #[arg(long)]
    pub explain: bool,
    /// Write the output to FILE instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only these services (and what they depend on); names enable their profiles
    #[arg(value_name = "SERVICE")]
    pub service_names: Vec<String>,
    /// Print `SERVICE HASH` for these services (comma-separated, `*` for all): the hash that
    /// decides when `up` recreates a container (also its label `com.docker.compose.config-hash`)
    #[arg(long, value_name = "SERVICES")]
    pub hash: Option<String>,
}

/// `config --format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigFormat {
    /// YAML
    #[default]
    Yaml,
    /// JSON
    Json,
}

/// Runs `berth config`.
pub fn run(project: &ProjectArgs, args: ConfigArgs) -> anyhow::Result<()> {
    let mut opts = project.load_options()?;
    opts.no_interpolate = args.no_interpolate;
    opts.no_normalize = args.no_normalize;
    opts.no_consistency = args.no_consistency;
    if args.profiles {
        opts.profiles = vec!["*".into()];
    }
    opts.services = args.service_names.clone();
    let mut loaded = berth_compose::load(&opts)?;
    berth_compose::select::select_services(&mut loaded.project, &args.service_names, true)?;
    for w in &loaded.warnings {
        berth::output::warn(w);
    }
    let view = berth_compose::view::View::from_flags(berth_compose::view::Flags {
        services: args.services,
        volumes: args.volumes,
        networks: args.networks,
        profiles: args.profiles,
        images: args.images,
        variables: args.variables,
        explain: args.explain,
        json: args.format == ConfigFormat::Json,
    });
    if args.quiet {
        return Ok(());
    }
    if let Some(list) = &args.hash {
        let project = &loaded.project;
        let names: Vec<&String> = if list == "*" {
            project.services.keys().collect()
        } else {
            let mut names = Vec::new();
            for n in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let (name, _) =
                    project.services.get_key_value(n).ok_or_else(|| anyhow::anyhow!("no such service: `{n}`"))?;
                names.push(name);
            }
            names
        };
        for name in names {
            println!("{name} {}", berth::plan::hash::config_hash(&project.services[name]));
        }
        return Ok(());
    }
    let text = view.render(&loaded);
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}
