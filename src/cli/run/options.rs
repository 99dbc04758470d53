//! `run`'s arguments resolved: the changes to the service (ports, volumes, labels,
//! capabilities) and the container's overrides (command, environment, user, terminal).

use std::path::PathBuf;

use anyhow::{bail, Context};
use berth::image::PullPolicy;
use berth::runtime::bundle::RunOverrides;
use berth::stack::engine::RunChanges;
use berth_compose::model::VolumeType;
use berth_compose::Project;

use super::RunArgs;
use crate::cli::exec::env_pairs;

/// `run --pull`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PullChoice {
    /// The service's `pull_policy` (pull when missing by default)
    #[default]
    Policy,
    /// Pull every time
    Always,
    /// Pull when the image is not present
    Missing,
    /// Never pull; fail when the image is not present
    Never,
}

impl PullChoice {
    /// The pull policy it stands for; `None`: the service's.
    pub(super) fn policy(self) -> Option<PullPolicy> {
        match self {
            PullChoice::Policy => None,
            PullChoice::Always => Some(PullPolicy::Always),
            PullChoice::Missing => Some(PullPolicy::Missing),
            PullChoice::Never => Some(PullPolicy::Never),
        }
    }
}

/// `run`'s changes to the service: published ports, volumes, labels, capabilities.
pub(super) fn changes(project: &Project, args: &RunArgs) -> anyhow::Result<RunChanges> {
    if args.service_ports && !args.publish.is_empty() {
        bail!("--service-ports and --publish are incompatible");
    }
    let mut publish = Vec::new();
    for p in &args.publish {
        publish.extend(berth_compose::short::parse_port(p).map_err(|e| anyhow::anyhow!("--publish: {e}"))?);
    }
    let mut volumes = Vec::new();
    for v in &args.volume {
        let mut vol = berth_compose::short::parse_volume(v).map_err(|e| anyhow::anyhow!("--volume: {e}"))?;
        match (vol.kind, vol.source.as_deref()) {
            (VolumeType::Bind, Some(s)) => {
                let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
                let path = match s.strip_prefix('~') {
                    Some(rest) => home.join(rest.trim_start_matches('/')),
                    None => std::env::current_dir()?.join(s),
                };
                vol.source = Some(path.to_string_lossy().into_owned());
            }
            (VolumeType::Volume, Some(key)) if !project.volumes.contains_key(key) => {
                bail!("--volume {v:?}: volume {key:?} is not declared in the project's `volumes`");
            }
            _ => {}
        }
        volumes.push(vol);
    }
    let labels = args
        .label
        .iter()
        .map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect::<Option<Vec<_>>>()
        .context("--label: a label is KEY=VALUE")?;
    Ok(RunChanges {
        service_ports: args.service_ports,
        publish,
        volumes,
        labels,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
    })
}

/// Command, entrypoint, environment (`--env-from-file` files in order, then `-e`), user,
/// working directory, terminal.
pub(super) fn overrides(args: &RunArgs, tty: bool) -> anyhow::Result<RunOverrides> {
    let mut env = Vec::new();
    for file in &args.env_from_file {
        let text = std::fs::read_to_string(file).with_context(|| format!("--env-from-file `{}`", file.display()))?;
        let lookup = |k: &str| std::env::var(k).ok();
        let entries = berth_compose::dotenv::parse_raw_with_lookup(&text, &lookup)
            .map_err(|e| anyhow::anyhow!("--env-from-file `{}`: {e}", file.display()))?;
        env.extend(entries.into_iter().map(|e| (e.key, e.value)));
    }
    env.extend(env_pairs(&args.env));
    let entrypoint = args.entrypoint.as_ref().map(|e| if e.is_empty() { Vec::new() } else { vec![e.clone()] });
    Ok(RunOverrides {
        command: (!args.command.is_empty()).then(|| args.command.clone()),
        entrypoint,
        env,
        user: args.user.clone(),
        working_dir: args.workdir.clone(),
        tty: Some(tty),
        stdin_open: Some(!args.detach),
    })
}
