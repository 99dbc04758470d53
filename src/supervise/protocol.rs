//! The supervisor's socket protocol: one [`Request`] per connection, one [`Reply`], each a JSON
//! line wrapped in an envelope that carries the protocol version (`{"v": 1, "op": "refresh"}` in,
//! `{"v": 1, "reply": "done"}` out).
//!
//! Both sides check the version first. A supervisor asked in another version answers
//! [`Reply::Error`] (with a top-level `error` string, which berth versions from before the
//! protocol had a version read too); a client answered in another version, or by a supervisor
//! that wrote no version at all (protocol 0), fails with [`Mismatch`], which says what to do.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::ports::HostPort;

/// The version of the protocol this berth speaks. Bump it on any change to [`Request`] or
/// [`Reply`] that an older peer would misread.
pub const PROTOCOL: u32 = 1;

/// What a command asks the supervisor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// A pass now, answered when it is done ([`Reply::Done`]): `up` asks after each container
    /// start so a dependent started next already resolves its dependency.
    Refresh,
    /// Holds `ports` for `container`, which the `up` with pid `owner` is about to start; ports
    /// served now for `container` itself or for one of `frees` (containers that `up` stops or
    /// removes first) pass to it. [`Reply::Done`], or [`Reply::Conflict`].
    Reserve {
        /// The container about to start.
        container: String,
        /// The pid of the command that asks (its reservations go when it exits).
        owner: i32,
        /// Containers the command stops or removes before it starts `container`.
        #[serde(default)]
        frees: Vec<String>,
        /// The host ports.
        ports: Vec<HostPort>,
    },
    /// Lets go of what `owner` reserved and no container claimed. [`Reply::Done`].
    Release {
        /// The pid that reserved.
        owner: i32,
    },
    /// Switches the names and published ports of container `from` to its start-first successor
    /// `to` (both ids): `to`'s names are answered and the ports forward to it from now on,
    /// `from` is no longer answered and drains. [`Reply::Done`], or [`Reply::Error`].
    Handover {
        /// The container replaced.
        from: String,
        /// Its successor.
        to: String,
    },
    /// What it serves. [`Reply::Status`].
    Status,
    /// Stop serving and exit. [`Reply::Done`], then it stops.
    Shutdown,
}

/// What the supervisor answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Done as asked.
    Done,
    /// A port a [`Request::Reserve`] asked for cannot be had.
    Conflict(Conflict),
    /// The answer to [`Request::Status`].
    Status(Status),
    /// The request failed (or was in another version, or not understood).
    Error {
        /// Why.
        error: String,
    },
}

/// A port that cannot be reserved, and who has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The port.
    pub port: HostPort,
    /// The container of the project that has it (reserved or served); `None` when it is taken
    /// outside the project (the caller names who has it).
    pub holder: Option<String>,
    /// Whether it is taken (else it cannot be bound for another reason).
    pub in_use: bool,
    /// The error.
    pub error: String,
}

/// What a supervisor serves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Its pid.
    pub pid: i32,
    /// Its project.
    pub project: String,
    /// Where its DNS server listens.
    pub dns: Vec<SocketAddr>,
    /// The containers whose names it answers.
    pub names: Vec<String>,
    /// The ports its proxies serve.
    pub ports: Vec<PortEntry>,
    /// The ports it holds for containers about to start.
    pub reserved: Vec<PortEntry>,
    /// The health of each container with a health check, by id.
    pub health: BTreeMap<String, crate::state::Health>,
    /// The containers (ids) with a restart due.
    pub pending_restarts: Vec<String>,
    /// The containers (ids) handed over to a successor, with the connections the proxies still
    /// relay to them.
    #[serde(default)]
    pub draining: BTreeMap<String, usize>,
}

/// A port a supervisor serves or holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortEntry {
    /// For which container.
    pub container: String,
    /// The host port.
    pub port: HostPort,
    /// Where it forwards to (`None` for a reservation).
    pub target: Option<SocketAddr>,
}

/// The version envelope around a request or a reply.
#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    v: u32,
    #[serde(flatten)]
    body: T,
}

/// The version a line says it speaks: 0 when it says none (berth from before the protocol had one).
fn version_of(line: &str) -> anyhow::Result<u32> {
    #[derive(Deserialize)]
    struct Version {
        #[serde(default)]
        v: u32,
    }
    Ok(serde_json::from_str::<Version>(line)?.v)
}

/// `request` as sent, one line without its newline.
pub fn encode_request(request: &Request) -> String {
    serde_json::to_string(&Envelope { v: PROTOCOL, body: request }).expect("a request serializes")
}

/// `reply` as sent, one line without its newline.
pub fn encode_reply(reply: &Reply) -> String {
    serde_json::to_string(&Envelope { v: PROTOCOL, body: reply }).expect("a reply serializes")
}

/// The request in `line` (the supervisor's side), or the error to answer with ([`Reply::Error`]).
pub fn decode_request(line: &str) -> Result<Request, String> {
    match version_of(line) {
        Ok(PROTOCOL) => {}
        Ok(v) => {
            return Err(format!(
                "this supervisor speaks protocol {PROTOCOL}, the request protocol {v}: run `berth down` and \
                 `berth up` with one berth"
            ))
        }
        Err(e) => return Err(format!("bad request: {e}")),
    }
    match serde_json::from_str::<Envelope<Request>>(line) {
        Ok(e) => Ok(e.body),
        Err(e) => Err(format!("bad request: {e}")),
    }
}

/// A supervisor that speaks another version of the protocol than this berth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Its project.
    pub project: String,
    /// The version it speaks (0: from before the protocol had one).
    pub theirs: u32,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the supervisor of project {:?} speaks protocol {}, this berth speaks {PROTOCOL}: run `berth down` \
             (or kill it: the next `berth up` starts one of this berth)",
            self.project, self.theirs
        )
    }
}

impl std::error::Error for Mismatch {}

/// The reply in `line` (the client's side) from the supervisor of `project`.
pub fn decode_reply(project: &str, line: &str) -> anyhow::Result<Reply> {
    let v = version_of(line).map_err(|e| anyhow::anyhow!("bad answer from the supervisor: {e}"))?;
    if v != PROTOCOL {
        return Err(Mismatch { project: project.to_string(), theirs: v }.into());
    }
    let e: Envelope<Reply> =
        serde_json::from_str(line).map_err(|e| anyhow::anyhow!("bad answer from the supervisor: {e}"))?;
    Ok(e.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(n: u16) -> HostPort {
        HostPort { proto: berth_network::proxy::Proto::Tcp, ip: "127.0.0.1".parse().unwrap(), port: n }
    }

    #[test]
    fn requests_and_replies_round_trip() {
        let requests = [
            Request::Refresh,
            Request::Reserve {
                container: "p-web-1".into(),
                owner: 42,
                frees: vec!["p-web-2".into()],
                ports: vec![port(80)],
            },
            Request::Release { owner: 42 },
            Request::Status,
            Request::Shutdown,
        ];
        for r in requests {
            let line = encode_request(&r);
            assert!(!line.contains('\n'), "{line}");
            assert_eq!(decode_request(&line), Ok(r), "{line}");
        }
        let mut status = Status { pid: 7, project: "p".into(), ..Default::default() };
        status.ports.push(PortEntry {
            container: "p-web-1".into(),
            port: port(8080),
            target: Some("10.0.0.2:80".parse().unwrap()),
        });
        status.health.insert("id".into(), crate::state::Health::Healthy);
        let replies = [
            Reply::Done,
            Reply::Conflict(Conflict { port: port(80), holder: None, in_use: true, error: "taken".into() }),
            Reply::Status(status),
            Reply::Error { error: "no".into() },
        ];
        for r in replies {
            let line = encode_reply(&r);
            assert_eq!(decode_reply("p", &line).unwrap(), r, "{line}");
        }
    }

    #[test]
    fn the_wire_format_is_a_versioned_json_line() {
        assert_eq!(encode_request(&Request::Refresh), r#"{"v":1,"op":"refresh"}"#);
        assert_eq!(encode_request(&Request::Release { owner: 3 }), r#"{"v":1,"op":"release","owner":3}"#);
        assert_eq!(encode_reply(&Reply::Done), r#"{"v":1,"reply":"done"}"#);
        // An error has a top-level `error`, which berth from before the version reads too.
        assert_eq!(encode_reply(&Reply::Error { error: "x".into() }), r#"{"v":1,"reply":"error","error":"x"}"#);
    }

    #[test]
    fn another_version_is_refused_on_both_sides() {
        // A request of another version (or none: berth from before the version) is answered with
        // an error, not misread.
        for line in [r#"{"op":"refresh"}"#, r#"{"v":2,"op":"refresh"}"#] {
            let error = decode_request(line).unwrap_err();
            assert!(error.contains("speaks protocol 1"), "{error}");
        }
        let error = decode_request(r#"{"v":1,"op":"fly"}"#).unwrap_err();
        assert!(error.starts_with("bad request"), "{error}");
        // A reply of another version says who speaks what, and what to do.
        for (line, theirs) in [(r#"{"ok":true}"#, 0), (r#"{"v":2,"reply":"done"}"#, 2)] {
            let err = decode_reply("shop", line).unwrap_err();
            assert_eq!(err.downcast_ref::<Mismatch>(), Some(&Mismatch { project: "shop".into(), theirs }));
            assert_eq!(
                err.to_string(),
                format!(
                    "the supervisor of project \"shop\" speaks protocol {theirs}, this berth speaks 1: run `berth \
                     down` (or kill it: the next `berth up` starts one of this berth)"
                )
            );
        }
    }
}
