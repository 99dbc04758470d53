//! The client side of an attached `run`: signals forwarded to the container, output frames
//! copied to stdout/stderr until the exit frame, the terminal's size sent and raw mode.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth::container::{self, MonitorStart};
use berth::monitor::attach;
use berth::state::ContainerRecord;

use crate::cli::containers::Ctx;

/// Attaches to one-off container `rec` whose monitor `started` waits for a client: stdin goes
/// in, output comes out, signals are passed on (or the terminal is raw with `tty`). Returns the
/// container's exit code.
pub(super) fn attached(ctx: &Ctx, rec: &ContainerRecord, started: MonitorStart, tty: bool) -> anyhow::Result<i32> {
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
        started.wait()?;
        anyhow::bail!("cannot attach to `{}`", rec.name);
    };
    let raw = if tty { RawMode::enable() } else { None };
    if !tty {
        proxy_signals(&ctx.roots, rec);
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
        None => container::wait_exit(&ctx.roots, &ctx.db, &rec.id, Some(Duration::from_secs(5)))?
            .and_then(|r| r.exit_code)
            .context("the container's monitor exited without an exit code"),
    }
}

/// Forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to berth to the container
/// (Docker's `--sig-proxy`), from a thread that waits for them; the main thread blocks them.
pub(crate) fn proxy_signals(roots: &berth::container::Roots, rec: &berth::state::ContainerRecord) {
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
            // A container that is gone cannot get the signal; its exit ends `run`.
            let _ = berth::runtime::Runtime::kill(&rt, &id, sig, false);
        }
    });
}

/// Copies output frames to stdout/stderr until the exit frame; returns the exit code.
pub(crate) fn relay(mut stream: UnixStream) -> Option<i32> {
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

pub(crate) fn send_size(stream: &UnixStream) {
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
pub(crate) struct RawMode(nix::sys::termios::Termios);

impl RawMode {
    pub(crate) fn enable() -> Option<RawMode> {
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
