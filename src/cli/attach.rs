//! `berth attach`: the terminal joined to a running service container: its output here, this
//! input there (when the container keeps stdin open), signals passed on, until it exits.

use std::io::{IsTerminal, Read};
use std::os::unix::net::UnixStream;

use anyhow::{bail, Context};
use berth::container;
use berth::monitor::attach;
use clap::Args;

use crate::cli::containers::Ctx;
use crate::cli::run::attach::{proxy_signals, relay, send_size, RawMode};
use crate::cli::ProjectArgs;

/// Arguments of `berth attach`.
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// The service
    pub service: String,
    /// Replica number
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Do not send this terminal's input to the container
    #[arg(long)]
    pub no_stdin: bool,
    /// Pass signals berth receives on to the container
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
}

/// Runs `berth attach`; exits with the container's exit code once it ends.
pub fn run(project: &ProjectArgs, args: AttachArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load(project)?;
    ctx.check_services(std::slice::from_ref(&args.service))?;
    let rec = container::by_index(&ctx.db, &ctx.project.name, &args.service, args.index)?;
    let rec = container::refresh(&ctx.roots, &ctx.db, &rec)?;
    if !rec.status.is_alive() {
        bail!("container `{}` is not running", rec.name);
    }
    container::require_run_dir(&ctx.roots, &rec)?;
    let config = &rec.config;
    let stream = UnixStream::connect(ctx.roots.attach_socket(&rec.id))
        .with_context(|| format!("cannot attach to `{}`", rec.name))?;
    let tty = config.tty && std::io::stdin().is_terminal();
    let raw = if tty && !args.no_stdin { RawMode::enable() } else { None };
    if tty {
        send_size(&stream);
    } else if args.sig_proxy {
        proxy_signals(&ctx.roots, &rec);
    }
    if config.stdin_open && !args.no_stdin {
        let mut input = stream.try_clone()?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut stdin = std::io::stdin().lock();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || attach::write_frame(&mut input, attach::STDIN, &buf[..n]).is_err() {
                    return;
                }
            }
        });
    }
    let code = relay(stream);
    drop(raw);
    let code = match code {
        Some(c) => c,
        None => container::wait_exit(&ctx.roots, &ctx.db, &rec.id, Some(std::time::Duration::from_secs(5)))?
            .and_then(|r| r.exit_code)
            .unwrap_or(0),
    };
    super::containers::exit_with(code)
}
