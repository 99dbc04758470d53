//! `berth network ls|inspect|create|rm|prune`: the bridge networks berth made on this host, with
//! the containers holding addresses on them. `create` makes one outside any project, for compose
//! files that name it as `external: true`.

use berth::app::networks::{Networks, NewNetwork};
use clap::{Args, Subcommand};

use super::render::network as render;
use super::ProjectArgs;

/// Arguments of `berth network`.
#[derive(Args, Debug)]
pub struct NetworkArgs {
    #[command(subcommand)]
    command: NetworkCommand,
}

#[derive(Subcommand, Debug)]
enum NetworkCommand {
    /// List networks
    Ls(super::ListArgs),
    /// Show networks as JSON
    Inspect {
        /// Network names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Create a bridge network outside any project (for `external: true`)
    Create {
        /// Network name
        name: String,
        /// Subnet in CIDR form (default: a free one from berth's pool)
        #[arg(long)]
        subnet: Option<String>,
        /// Gateway address (default: the subnet's first)
        #[arg(long, requires = "subnet")]
        gateway: Option<String>,
        /// No outbound traffic (no NAT)
        #[arg(long)]
        internal: bool,
        /// Labels (`KEY=VALUE`, repeatable)
        #[arg(short, long = "label")]
        labels: Vec<String>,
    },
    /// Remove networks (refused while a container is attached)
    Rm {
        /// Network names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every network no container is attached to
    Prune,
}

/// Runs `berth network`.
pub fn run(_project: &ProjectArgs, args: NetworkArgs) -> anyhow::Result<()> {
    // A container that no longer exists does not keep a network in use.
    let reclaim = matches!(args.command, NetworkCommand::Rm { .. } | NetworkCommand::Prune);
    let mut nets = Networks::open(&berth::container::Roots::from_env(), reclaim)?;
    let mut removed = |name: &str| println!("{name}");
    match args.command {
        NetworkCommand::Ls(super::ListArgs { quiet, format }) => render::list(&nets.all, quiet, format),
        NetworkCommand::Inspect { names } => {
            let found: Vec<serde_json::Value> = nets.find(&names)?.into_iter().map(render::json).collect();
            println!("{}", serde_json::to_string_pretty(&found)?);
        }
        NetworkCommand::Create { name, subnet, gateway, internal, labels } => {
            nets.create(&NewNetwork { name: name.clone(), subnet, gateway, internal, labels })?;
            println!("{name}");
        }
        NetworkCommand::Rm { names } => nets.remove(&names, &mut removed)?,
        NetworkCommand::Prune => nets.prune(&mut removed)?,
    }
    Ok(())
}
