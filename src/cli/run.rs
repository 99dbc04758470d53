//! `berth run`: a one-off container of a service (`<project>-<service>-run-<id>`), attached to
//! the terminal unless `-d`; its exit code becomes berth's.

use std::io::{IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth::container::{self, create_container, CreateRequest, StartMode};
use berth::monitor::attach;
use berth::output::PlainRenderer;
use berth::runtime::bundle::RunOverrides;
use clap::Args;

use crate::cli::containers::{exit_with, Ctx, RuntimeArgs};
use crate::cli::exec::env_pairs;
use crate::cli::ProjectArgs;

/// Arguments of `berth run`.
#[derive(Args, Debug, Default)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Service
    pub service: String,
    /// Command and arguments (default: the service's)
    #[arg(allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container name
    #[arg(short, long)]
    pub detach: bool,
    /// Set an environment variable (`KEY=VALUE`)
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Run as this user
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory in the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Override the image's entrypoint (an empty string clears it)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container name
    #[arg(long)]
    pub name: Option<String>,
    /// Do not allocate a terminal (default: one when stdin is a terminal)
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Keep stdin open (on by default)
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Do not start linked services (berth starts none yet)
    #[arg(long)]
    pub no_deps: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Runs `berth run`.
pub fn run(project: &ProjectArgs, args: RunArgs) -> anyhow::Result<()> {
    let ctx = Ctx::load_for(project, std::slice::from_ref(&args.service))?;
    ctx.check_services(std::slice::from_ref(&args.service))?;
    // Held while the container is made and started, not while it runs attached.
    let lock = ctx.lock("run")?;
    let svc = &ctx.project.services[&args.service];
    let stdin_tty = std::io::stdin().is_terminal();
    let tty = !args.no_tty && !args.detach && stdin_tty;
    let entrypoint = args.entrypoint.as_ref().map(|e| if e.is_empty() { Vec::new() } else { vec![e.clone()] });
    let overrides = RunOverrides {
        command: (!args.command.is_empty()).then(|| args.command.clone()),
        entrypoint,
        env: env_pairs(&args.env),
        user: args.user.clone(),
        working_dir: args.workdir.clone(),
        tty: Some(tty),
        stdin_open: Some(!args.detach),
    };
    let rt = ctx.runtime_name(&args.runtime)?;
    let rec = create_container(
        &ctx.roots,
        &ctx.db,
        &CreateRequest {
            project: &ctx.project.name,
            service: svc,
            number: 0,
            oneoff: true,
            name: args.name.clone(),
            overrides,
            runtime: &rt,
            auto_remove: args.rm,
            provided: None,
        },
        &PlainRenderer,
    )?;
    // With `--rm`, a container that cannot start is removed too.
    let discard = |e: anyhow::Error| {
        if args.rm {
            let _ = container::remove(&ctx.roots, &ctx.db, &rec, true);
        }
        e
    };
    if args.detach {
        container::spawn_monitor(&ctx.roots, &rec, StartMode::Detached).map_err(discard)?;
        println!("{}", rec.name);
        return Ok(());
    }
    let started = container::launch_monitor(&ctx.roots, &rec, StartMode::WaitForAttach)?;
    drop(lock);
    let socket = ctx.roots.attach_socket(&rec.id);
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        if let Ok(s) = UnixStream::connect(&socket) {
            break Some(s);
        }
        if started.reported(Duration::from_millis(1)) || Instant::now() > deadline {
            break None;
        }
    };
    let Some(stream) = stream else {
        started.wait().map_err(discard)?;
        anyhow::bail!("cannot attach to `{}`", rec.name);
    };
    let raw = if tty { RawMode::enable() } else { None };
    if !tty {
        proxy_signals(&ctx.roots, &rec);
    }
    if tty {
        send_size(&stream);
    }
    let mut input = stream.try_clone()?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut stdin = std::io::stdin().lock();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = attach::write_frame(&mut input, attach::STDIN_CLOSE, &[]);
                    return;
                }
                Ok(n) => {
                    if attach::write_frame(&mut input, attach::STDIN, &buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let startup = started.wait();
    let code = match startup {
        Ok(()) => relay(stream),
        Err(e) => {
            drop(raw);
            return Err(discard(e));
        }
    };
    drop(raw);
    let code = match code {
        Some(c) => c,
        // The monitor went away without a word: take what it recorded.
        None => container::wait_exit(&ctx.roots, &ctx.db, &rec.id, Some(Duration::from_secs(5)))?
            .and_then(|r| r.exit_code)
            .context("the container's monitor exited without an exit code")?,
    };
    exit_with(code)
}

/// Forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to berth to the container
/// (Docker's `--sig-proxy`), from a thread that waits for them; the main thread blocks them.
fn proxy_signals(roots: &berth::container::Roots, rec: &berth::state::ContainerRecord) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return;
    }
    let Ok(rt) = berth::runtime::by_name(&rec.runtime, &roots.run) else { return };
    let id = rec.id.clone();
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            let _ = berth::runtime::Runtime::kill(&rt, &id, sig, false);
        }
    });
}

/// Copies output frames to stdout/stderr until the exit frame; returns the exit code.
fn relay(mut stream: UnixStream) -> Option<i32> {
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    while let Ok(Some((kind, payload))) = attach::read_frame(&mut stream) {
        match kind {
            attach::STDOUT => {
                let _ = stdout.write_all(&payload);
                let _ = stdout.flush();
            }
            attach::STDERR => {
                let _ = stderr.write_all(&payload);
            }
            attach::EXIT if payload.len() == 4 => {
                return Some(i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]));
            }
            _ => {}
        }
    }
    None
}

fn send_size(stream: &UnixStream) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize.
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 {
        let mut p = Vec::new();
        p.extend_from_slice(&ws.ws_row.to_be_bytes());
        p.extend_from_slice(&ws.ws_col.to_be_bytes());
        let _ = attach::write_frame(&mut &*stream, attach::RESIZE, &p);
    }
}

/// The terminal in raw mode, restored on drop.
struct RawMode(nix::sys::termios::Termios);

impl RawMode {
    fn enable() -> Option<RawMode> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, &self.0);
    }
}
