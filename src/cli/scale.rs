//! `berth scale SERVICE=N...`: sets the number of replicas of services, as `up --scale` does
//! for just those services. Replica numbers are reused: scaling down removes the highest.

use std::collections::BTreeMap;

use anyhow::bail;
use berth::plan::up::UpOptions;
use clap::Args;

use super::containers::{Ctx, RuntimeArgs};
use super::ProjectArgs;

/// Arguments of `berth scale`.
#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// `SERVICE=N` pairs
    #[arg(required = true, value_name = "SERVICE=N")]
    pub pairs: Vec<String>,
    /// Do not start the services' dependencies
    #[arg(long)]
    no_deps: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// `SERVICE=N` pairs (`berth scale`, `up --scale`), each N at most the loader's replica bound.
pub fn parse_scale(pairs: &[String]) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut scale = BTreeMap::new();
    for pair in pairs {
        let Some((svc, n)) = pair.split_once('=') else { bail!("invalid {pair:?}: expected SERVICE=N") };
        let n: u64 = n.parse().map_err(|_| anyhow::anyhow!("invalid {pair:?}: {n:?} is not a number"))?;
        let max = berth_compose::formats::MAX_REPLICAS;
        if n > max {
            bail!("invalid {pair:?}: at most {max} replicas per service");
        }
        scale.insert(svc.to_string(), n);
    }
    Ok(scale)
}

/// Runs `berth scale`.
pub fn run(project: &ProjectArgs, args: ScaleArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    let _lock = ctx.lock("scale")?;
    let scale = parse_scale(&args.pairs)?;
    let services: Vec<String> = scale.keys().cloned().collect();
    ctx.check_services(&services)?;
    let opts = UpOptions { services, no_deps: args.no_deps, scale, ..UpOptions::default() };
    let runtime = ctx.runtime_name(&args.runtime)?;
    berth::app::up::converge(&ctx.session(&ctx.progress()), &opts, &runtime, true)
}
