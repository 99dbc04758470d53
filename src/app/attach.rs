//! The client side of the monitor's attach protocol, for `run` and `attach`: this process's
//! stdin sent to the container, its output frames copied to this process's stdout/stderr until
//! the exit frame, signals forwarded (or the terminal's size sent and raw mode with a terminal).

use std::io::{IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::container::{self, MonitorStart, Roots};
use crate::monitor::attach;
use crate::state::{ContainerRecord, StateDb};

/// Attaches to one-off container `rec` whose monitor `started` waits for a client: stdin goes
/// in, output comes out, signals are passed on (or the terminal is raw with `tty`). Returns the
/// container's exit code.
pub fn attached(
    roots: &Roots,
    db: &StateDb,
    rec: &ContainerRecord,
    started: MonitorStart,
    tty: bool,
) -> anyhow::Result<i32> {
    let socket = roots.attach_socket(&rec.id);
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
        started.wait()?;
        anyhow::bail!("cannot attach to `{}`", rec.name);
    };
    let raw = if tty { RawMode::enable() } else { None };
    if !tty {
        proxy_signals(roots, rec);
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
                    // A monitor that went away has closed the container's input already.
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
    let code = match started.wait() {
        Ok(()) => relay(stream),
        Err(e) => {
            drop(raw);
            return Err(e);
        }
    };
    drop(raw);
    match code {
        Some(c) => Ok(c),
        // The monitor went away without a word: take what it recorded.
        None => container::wait_exit(roots, db, &rec.id, Some(Duration::from_secs(5)))?
            .and_then(|r| r.exit_code)
            .context("the container's monitor exited without an exit code"),
    }
}

/// How `attach` joins a running container.
#[derive(Clone, Copy, Debug)]
pub struct Join {
    /// Do not send this process's stdin.
    pub no_stdin: bool,
    /// Pass signals this process receives on to the container (without a terminal).
    pub sig_proxy: bool,
}

/// Joins running container `rec` until it exits; returns its exit code.
pub fn join(roots: &Roots, db: &StateDb, rec: &ContainerRecord, opts: Join) -> anyhow::Result<i32> {
    let rec = container::refresh(roots, db, rec)?;
    if !rec.status.is_alive() {
        bail!("container `{}` is not running", rec.name);
    }
    container::require_run_dir(roots, &rec)?;
    let config = &rec.config;
    let stream = UnixStream::connect(roots.attach_socket(&rec.id))
        .with_context(|| format!("cannot attach to `{}`", rec.name))?;
    let tty = config.tty && std::io::stdin().is_terminal();
    let raw = if tty && !opts.no_stdin { RawMode::enable() } else { None };
    if tty {
        send_size(&stream);
    } else if opts.sig_proxy {
        proxy_signals(roots, &rec);
    }
    if config.stdin_open && !opts.no_stdin {
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
    Ok(match code {
        Some(c) => c,
        None => container::wait_exit(roots, db, &rec.id, Some(Duration::from_secs(5)))?
            .and_then(|r| r.exit_code)
            .unwrap_or(0),
    })
}

/// Forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to berth to the container
/// (Docker's `--sig-proxy`), from a thread that waits for them; the main thread blocks them.
fn proxy_signals(roots: &Roots, rec: &ContainerRecord) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return;
    }
    let Ok(rt) = crate::runtime::by_name(&rec.runtime, &roots.run) else { return };
    let id = rec.id.clone();
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            // A container that is gone cannot get the signal; its exit ends `run`.
            let _ = crate::runtime::Runtime::kill(&rt, &id, sig, false);
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
                // Nowhere left to report a failed write to stdout.
                let _ = stdout.write_all(&payload);
                let _ = stdout.flush();
            }
            attach::STDERR => {
                // Nowhere left to report a failed write to stderr.
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
        // A monitor that went away has no terminal to resize.
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
        // A terminal that is gone needs no restoring.
        let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, &self.0);
    }
}
