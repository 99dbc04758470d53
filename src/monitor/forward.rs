//! `logging.driver: syslog` and `journald`: besides its JSON log (which `berth logs` reads), a
//! container's monitor sends each line to the host's log service.
//!
//! - **syslog**: one datagram per line to a local socket, `/dev/log` unless
//!   `logging.options.syslog-address` names another (`unixgram:///path` or `unix:///path`; a
//!   network address is not honoured). The default format is RFC 3164 as local syslog daemons
//!   read it (`<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE`); `syslog-format: rfc5424` (or
//!   `rfc5424micro`) writes RFC 5424 (`<PRI>1 TIMESTAMP HOST TAG PID - - MESSAGE`). PRI is the
//!   facility (`syslog-facility`, default `daemon`) times 8 plus the severity: `info` for
//!   standard output, `err` for standard error.
//! - **journald**: one datagram per line to the journal's native socket
//!   (`/run/systemd/journal/socket`): `FIELD=value` lines, a value holding a newline in the
//!   binary form (`FIELD\n`, its length as 64-bit little-endian, the bytes, `\n`). Fields:
//!   `MESSAGE`, `PRIORITY`, `SYSLOG_IDENTIFIER` (the tag), `CONTAINER_NAME`, `CONTAINER_ID`,
//!   `CONTAINER_ID_FULL`, `CONTAINER_TAG`, `IMAGE_NAME`.
//!
//! The tag is `logging.options.tag` with Docker's `{{.Name}}`, `{{.ID}}`, `{{.FullID}}`,
//! `{{.ImageName}}` and `{{.DaemonName}}` replaced; the container's short id by default. A host
//! without the socket gets the JSON log alone: `up` says so ([`check`]).

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use super::log::Stream;

/// Where Docker's syslog driver writes by default.
pub const DEV_LOG: &str = "/dev/log";
/// The journal's native protocol socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The syslog message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 3164, as local syslog daemons read it.
    Rfc3164,
    /// RFC 5424 (with microseconds: `rfc5424micro`).
    Rfc5424 { micro: bool },
}

/// Where and how a container's lines go, from its service's `logging`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// To a syslog socket.
    Syslog {
        /// The socket.
        path: PathBuf,
        /// The facility's number.
        facility: u8,
        /// The message format.
        format: Format,
        /// `logging.options.tag`, not yet expanded.
        tag: Option<String>,
    },
    /// To the journal's native socket.
    Journald {
        /// The socket.
        path: PathBuf,
        /// `logging.options.tag`, not yet expanded.
        tag: Option<String>,
    },
}

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "", "", "",
    "", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

/// The target of a service's `logging` (its JSON form, as stored in a container's config);
/// `None` for the drivers that keep the JSON log alone. The error says what berth cannot honour.
pub fn target(service: &serde_json::Value) -> Result<Option<Target>, String> {
    let Some(logging) = service.get("logging") else { return Ok(None) };
    let option = |k: &str| logging.get("options").and_then(|o| o.get(k)).and_then(|v| v.as_str());
    let tag = option("tag").map(String::from);
    match logging.get("driver").and_then(|d| d.as_str()) {
        Some("syslog") => {
            let path = match option("syslog-address") {
                None => PathBuf::from(DEV_LOG),
                Some(a) => match a.strip_prefix("unixgram://").or_else(|| a.strip_prefix("unix://")) {
                    Some(p) => PathBuf::from(p),
                    None => {
                        return Err(format!(
                            "syslog-address `{a}`: berth sends to a local socket only (unixgram:///path)"
                        ))
                    }
                },
            };
            let facility = match option("syslog-facility") {
                None => 3,
                Some(f) => FACILITIES
                    .iter()
                    .position(|n| !n.is_empty() && *n == f)
                    .ok_or_else(|| format!("syslog-facility `{f}` is not a syslog facility"))?
                    as u8,
            };
            let format = match option("syslog-format") {
                None | Some("") | Some("rfc3164") => Format::Rfc3164,
                Some("rfc5424") => Format::Rfc5424 { micro: false },
                Some("rfc5424micro") => Format::Rfc5424 { micro: true },
                Some(f) => return Err(format!("syslog-format `{f}`: use rfc3164, rfc5424 or rfc5424micro")),
            };
            Ok(Some(Target::Syslog { path, facility, format, tag }))
        }
        Some("journald") => Ok(Some(Target::Journald { path: PathBuf::from(JOURNAL_SOCKET), tag })),
        _ => Ok(None),
    }
}

impl Target {
    /// The socket lines go to.
    pub fn path(&self) -> &Path {
        match self {
            Target::Syslog { path, .. } | Target::Journald { path, .. } => path,
        }
    }

    /// The driver's name.
    pub fn driver(&self) -> &'static str {
        match self {
            Target::Syslog { .. } => "syslog",
            Target::Journald { .. } => "journald",
        }
    }
}

/// What `up` says about a service's logging driver on this host: nothing when its lines can be
/// sent; else why not, and that the JSON log alone keeps them.
pub fn check(service_name: &str, service: &serde_json::Value) -> Option<String> {
    let instead = "berth keeps its output in its JSON log alone (`berth logs`)";
    match target(service) {
        Ok(None) => None,
        Ok(Some(t)) if t.path().exists() => None,
        Ok(Some(t)) => Some(format!(
            "service `{service_name}`: logging driver `{}`: `{}` does not exist on this host; {instead}",
            t.driver(),
            t.path().display()
        )),
        Err(e) => Some(format!("service `{service_name}`: logging: {e}; {instead}")),
    }
}

/// The container a forwarder speaks for.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// Its name.
    pub name: String,
    /// Its full id.
    pub id: String,
    /// The image reference.
    pub image: String,
}

/// Sends a container's lines to syslog or the journal.
pub struct Forwarder {
    target: Target,
    socket: UnixDatagram,
    tag: String,
    source: Source,
    hostname: String,
}

impl Forwarder {
    /// A forwarder to `target`, connected now; `None` when the socket cannot be reached.
    pub fn connect(target: Target, source: Source) -> Option<Forwarder> {
        let socket = UnixDatagram::unbound().ok()?;
        socket.connect(target.path()).ok()?;
        let template = match &target {
            Target::Syslog { tag, .. } | Target::Journald { tag, .. } => tag.clone(),
        };
        let tag = expand_tag(template.as_deref().unwrap_or("{{.ID}}"), &source);
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
        Some(Forwarder { target, socket, tag, source, hostname })
    }

    /// Sends one line (its newline dropped); a log service that is gone loses the line, the
    /// JSON log keeps it.
    pub fn send(&self, stream: Stream, line: &[u8], nanos: i64) {
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let message = match &self.target {
            Target::Syslog { facility, format, .. } => {
                syslog_message(*facility, *format, stream, &self.tag, &self.hostname, nanos, text).into_bytes()
            }
            Target::Journald { .. } => journal_message(stream, &self.tag, &self.source, text),
        };
        // A line the host's logger does not take is lost there (see above); the JSON log keeps
        // it.
        let _ = self.socket.send(&message);
    }
}

/// Docker's tag templates, expanded for `source`.
fn expand_tag(template: &str, source: &Source) -> String {
    template
        .replace("{{.Name}}", &source.name)
        .replace("{{.FullID}}", &source.id)
        .replace("{{.ID}}", &source.id[..source.id.len().min(12)])
        .replace("{{.ImageName}}", &source.image)
        .replace("{{.DaemonName}}", "berth")
}

fn severity(stream: Stream) -> u8 {
    match stream {
        Stream::Stdout => 6,
        Stream::Stderr => 3,
    }
}

/// One syslog message.
fn syslog_message(
    facility: u8,
    format: Format,
    stream: Stream,
    tag: &str,
    host: &str,
    nanos: i64,
    text: &str,
) -> String {
    let pri = u16::from(facility) * 8 + u16::from(severity(stream));
    let pid = std::process::id();
    let rfc3339 = super::log::format_rfc3339(nanos);
    match format {
        Format::Rfc3164 => {
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let stamp =
                time::macros::format_description!("[month repr:short] [day padding:space] [hour]:[minute]:[second]");
            format!("<{pri}>{} {tag}[{pid}]: {text}", at.format(&stamp).unwrap_or_default())
        }
        Format::Rfc5424 { micro } => {
            // Seconds, or microseconds with `rfc5424micro` (RFC 5424 allows up to six digits).
            let (secs, frac) = rfc3339.trim_end_matches('Z').split_once('.').unwrap_or((&rfc3339, ""));
            let stamp = if micro { format!("{secs}.{}Z", &frac[..frac.len().min(6)]) } else { format!("{secs}Z") };
            let host = if host.is_empty() { "-" } else { host };
            format!("<{pri}>1 {stamp} {host} {tag} {pid} - - {text}")
        }
    }
}

/// One journal entry in the native protocol.
fn journal_message(stream: Stream, tag: &str, source: &Source, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut field = |key: &str, value: &str| {
        if value.contains('\n') {
            out.extend_from_slice(key.as_bytes());
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        } else {
            out.extend_from_slice(format!("{key}={value}\n").as_bytes());
        }
    };
    field("MESSAGE", text);
    field("PRIORITY", &severity(stream).to_string());
    field("SYSLOG_IDENTIFIER", tag);
    field("CONTAINER_NAME", &source.name);
    field("CONTAINER_ID", &source.id[..source.id.len().min(12)]);
    field("CONTAINER_ID_FULL", &source.id);
    field("CONTAINER_TAG", tag);
    field("IMAGE_NAME", &source.image);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source() -> Source {
        Source { name: "p-web-1".into(), id: "0123456789abcdef0123".into(), image: "busybox".into() }
    }

    #[test]
    fn targets_read_the_services_options() {
        assert_eq!(target(&json!({"image": "x"})), Ok(None));
        assert_eq!(target(&json!({"logging": {"driver": "json-file"}})), Ok(None));
        let t = target(&json!({"logging": {"driver": "syslog"}})).unwrap().unwrap();
        assert_eq!(t, Target::Syslog { path: DEV_LOG.into(), facility: 3, format: Format::Rfc3164, tag: None });
        let t = target(&json!({"logging": {"driver": "syslog", "options": {
            "syslog-address": "unixgram:///tmp/x.sock", "syslog-facility": "local3", "syslog-format": "rfc5424", "tag": "{{.Name}}"}}}));
        let want = Target::Syslog {
            path: "/tmp/x.sock".into(),
            facility: 19,
            format: Format::Rfc5424 { micro: false },
            tag: Some("{{.Name}}".into()),
        };
        assert_eq!(t, Ok(Some(want)));
        let e = target(&json!({"logging": {"driver": "syslog", "options": {"syslog-address": "udp://10.0.0.1:514"}}}));
        assert!(e.unwrap_err().contains("local socket only"));
        let e = target(&json!({"logging": {"driver": "syslog", "options": {"syslog-facility": "nope"}}}));
        assert!(e.unwrap_err().contains("not a syslog facility"));
        let t = target(&json!({"logging": {"driver": "journald"}})).unwrap().unwrap();
        assert_eq!(t.path(), Path::new(JOURNAL_SOCKET));
    }

    #[test]
    fn a_missing_socket_is_said_naming_the_service() {
        let svc =
            json!({"logging": {"driver": "syslog", "options": {"syslog-address": "unixgram:///nonexistent/log"}}});
        let w = check("web", &svc).unwrap();
        assert!(w.contains("service `web`") && w.contains("/nonexistent/log") && w.contains("JSON log"), "{w}");
        assert_eq!(check("web", &json!({"image": "x"})), None);
    }

    #[test]
    fn syslog_messages_in_both_formats() {
        let nanos = 1_700_000_000_123_456_789;
        let pid = std::process::id();
        let m = syslog_message(3, Format::Rfc3164, Stream::Stdout, "web", "h", nanos, "hello");
        assert_eq!(m, format!("<30>Nov 14 22:13:20 web[{pid}]: hello"));
        let m = syslog_message(19, Format::Rfc5424 { micro: true }, Stream::Stderr, "web", "h", nanos, "oops");
        assert_eq!(m, format!("<155>1 2023-11-14T22:13:20.123456Z h web {pid} - - oops"));
        assert_eq!(expand_tag("{{.Name}}/{{.ID}}/{{.DaemonName}}", &source()), "p-web-1/0123456789ab/berth");
    }

    #[test]
    fn journal_entries_use_the_native_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let f = Forwarder::connect(Target::Journald { path: path.clone(), tag: Some("{{.Name}}".into()) }, source())
            .unwrap();
        f.send(Stream::Stderr, b"broken\n", 0);
        let mut buf = [0u8; 4096];
        let n = server.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        for want in ["MESSAGE=broken\n", "PRIORITY=3\n", "SYSLOG_IDENTIFIER=p-web-1\n", "CONTAINER_ID=0123456789ab\n"] {
            assert!(text.contains(want), "{want} in {text:?}");
        }
        let multi = journal_message(Stream::Stdout, "t", &source(), "a\nb");
        assert!(multi.starts_with(b"MESSAGE\n\x03\0\0\0\0\0\0\0a\nb\n"), "{multi:?}");
    }
}
