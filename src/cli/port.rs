//! `berth port`: the public address of a service's published port.

use berth::container;
use berth_compose::resolved::Protocol;
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::ProjectArgs;

/// Arguments of `berth port`.
#[derive(Args, Debug, Default)]
pub struct PortArgs {
    /// Service
    pub service: String,
    /// Container port
    pub private_port: u16,
    /// `tcp`, `udp` or `sctp`
    #[arg(long, default_value = "tcp", value_parser = Protocol::parse)]
    pub protocol: Protocol,
    /// Replica number
    #[arg(long, default_value_t = 1)]
    pub index: u32,
}

/// Runs `berth port`.
pub fn run(project: &ProjectArgs, args: PortArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(std::slice::from_ref(&args.service))?;
    let c = container::by_index(&ctx.db, &ctx.project.name, &args.service, args.index)?;
    let ports = c.ports();
    let p = ports
        .iter()
        .find(|p| p.target == args.private_port && p.protocol == args.protocol.as_str() && !p.published.is_empty())
        .ok_or_else(|| anyhow::anyhow!("no port {}/{} published for `{}`", args.private_port, args.protocol, c.name))?;
    let ip = if p.host_ip.is_empty() { "0.0.0.0" } else { &p.host_ip };
    println!("{ip}:{}", p.published);
    Ok(())
}
