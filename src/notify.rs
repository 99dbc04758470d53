//! Telling the init system that a project is ready: when berth runs under a systemd unit of
//! `Type=notify` (see `berth systemd install --project`), `up --wait` sends `READY=1` to the
//! socket in `$NOTIFY_SOCKET` once every service runs and is healthy. Elsewhere it does nothing.

use std::ffi::OsString;
use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;

static SOCKET: OnceLock<Option<OsString>> = OnceLock::new();

/// Takes `$NOTIFY_SOCKET` out of the environment (kept for [`ready`]): the OCI runtime, which
/// berth runs with its environment, would otherwise take it as the container's own socket.
/// Call it first thing, while the process has one thread.
pub fn take_socket_from_env() {
    let socket = std::env::var_os("NOTIFY_SOCKET");
    if socket.is_some() {
        std::env::remove_var("NOTIFY_SOCKET");
    }
    // Set once, first thing in `main`.
    let _ = SOCKET.set(socket);
}

/// Sends `READY=1` with `status` to the notify socket berth was started with, when there is
/// one: a path or, with a leading `@`, an abstract socket name.
pub fn ready(status: &str) -> std::io::Result<bool> {
    let from_env = || std::env::var_os("NOTIFY_SOCKET");
    let Some(target) = SOCKET.get().cloned().unwrap_or_else(from_env) else { return Ok(false) };
    let message = format!("READY=1\nSTATUS={status}\n");
    let sock = UnixDatagram::unbound()?;
    let target = target.to_string_lossy().into_owned();
    if let Some(name) = target.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(message.as_bytes(), &addr)?;
    } else {
        sock.send_to(message.as_bytes(), &target)?;
    }
    Ok(true)
}
