//! The running container's output (to the log and attached clients) and the attached clients'
//! input (stdin, terminal size).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::attach;
use super::log::Stream;
use super::{Monitor, Output};

impl Monitor {
    pub(super) fn outputs_closed(&self) -> bool {
        match &self.output {
            Output::Pipes { stdout, stderr, .. } => stdout.is_none() && stderr.is_none(),
            Output::Tty { master } => master.is_none(),
        }
    }

    /// Reads what output `i` has (0: stdout or the terminal, 1: stderr) and passes it on.
    pub(super) fn pump_output(&mut self, i: usize) {
        let (file, stream) = match &mut self.output {
            Output::Pipes { stdout, stderr, .. } => {
                let alive: Vec<(&mut Option<File>, Stream)> = [(stdout, Stream::Stdout), (stderr, Stream::Stderr)]
                    .into_iter()
                    .filter(|(f, _)| f.is_some())
                    .collect();
                match alive.into_iter().nth(i) {
                    Some(x) => x,
                    None => return,
                }
            }
            Output::Tty { master } if i == 0 && master.is_some() => (master, Stream::Stdout),
            Output::Tty { .. } => return,
        };
        let Some(f) = file.as_mut() else { return };
        // A blocking pipe is still read; only a read that would block waits.
        let _ = nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
        let mut buf = [0u8; 32 * 1024];
        match f.read(&mut buf) {
            Ok(0) => *file = None,
            Ok(n) => {
                let data = &buf[..n];
                // A full disk loses log lines; attached clients still get them.
                let _ = self.log.write(stream, data);
                let kind = if stream == Stream::Stdout { attach::STDOUT } else { attach::STDERR };
                self.broadcast(kind, data);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // A terminal whose slave side closed reads EIO.
            Err(_) => *file = None,
        }
    }

    pub(super) fn broadcast(&mut self, kind: u8, data: &[u8]) {
        self.clients.retain_mut(|c| {
            // A client whose socket fails here fails its write below and is dropped.
            let _ = c.stream.set_nonblocking(false);
            let _ = c.stream.set_write_timeout(Some(Duration::from_secs(5)));
            let ok = attach::write_frame(&mut c.stream, kind, data).is_ok();
            // As above: a broken client is dropped at its next write.
            let _ = c.stream.set_nonblocking(true);
            ok
        });
    }

    /// Handles input from client `i`; false when it went away.
    pub(super) fn pump_client(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 32 * 1024];
        let c = &mut self.clients[i];
        match c.stream.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
        let frames = attach::take_frames(&mut c.inbuf);
        for (kind, payload) in frames {
            match (kind, &mut self.output) {
                (attach::STDIN, Output::Pipes { stdin: Some(w), .. }) => {
                    // A container that closed its input does not want more.
                    let _ = w.write_all(&payload);
                }
                (attach::STDIN, Output::Tty { master: Some(m) }) => {
                    // A container that closed its terminal does not want more input.
                    let _ = nix::fcntl::fcntl(m.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()));
                    let _ = m.write_all(&payload);
                }
                (attach::STDIN_CLOSE, Output::Pipes { stdin, .. }) => *stdin = None,
                (attach::RESIZE, Output::Tty { master: Some(m) }) if payload.len() == 4 => {
                    let ws = libc::winsize {
                        ws_row: u16::from_be_bytes([payload[0], payload[1]]),
                        ws_col: u16::from_be_bytes([payload[2], payload[3]]),
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: TIOCSWINSZ with a valid winsize on a pty master.
                    unsafe {
                        libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws);
                    }
                }
                _ => {}
            }
        }
        true
    }
}
