//! `ports:`: a published port's host address, host port range, container port and protocol.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{invalid, ix, Resolved};
use crate::formats;
use crate::model::Port;

/// A published port's transport protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// `tcp`, the default.
    #[default]
    Tcp,
    /// `udp`.
    Udp,
    /// `sctp`.
    Sctp,
}

impl Protocol {
    /// Parses `tcp`, `udp` or `sctp`.
    pub fn parse(s: &str) -> Result<Protocol, String> {
        match s {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "sctp" => Ok(Protocol::Sctp),
            other => Err(format!("invalid protocol {other:?}: use tcp, udp or sctp")),
        }
    }

    /// `tcp`, `udp` or `sctp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `ports:` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishedPort {
    /// The host address (`None`: all of them).
    pub host_ip: Option<IpAddr>,
    /// The host ports, first and last (`None`: a random one).
    pub host_ports: Option<(u16, u16)>,
    /// The container's port, from 1 up.
    pub target: u16,
    /// The protocol.
    pub protocol: Protocol,
}

pub(super) fn resolve(i: usize, p: &Port) -> Resolved<PublishedPort> {
    let keys = |k: &str| ["ports".to_string(), ix(i), k.to_string()];
    if p.target == 0 {
        return Err(invalid(&keys("target"), "invalid container port 0: it must be from 1 to 65535".into()));
    }
    let host_ports = match p.published.as_deref().filter(|p| !p.is_empty()) {
        Some(pb) => Some(
            formats::port_range(pb).map_err(|m| invalid(&keys("published"), format!("invalid published port: {m}")))?,
        ),
        None => None,
    };
    let host_ip = match p.host_ip.as_deref().filter(|h| !h.is_empty()) {
        Some(ip) => Some(formats::ip("host IP", ip).map_err(|m| invalid(&keys("host_ip"), m))?),
        None => None,
    };
    let protocol = match p.protocol.as_deref() {
        Some(proto) => Protocol::parse(proto).map_err(|m| invalid(&keys("protocol"), m))?,
        None => Protocol::Tcp,
    };
    if let Some(mode) = p.mode.as_deref().filter(|x| !matches!(*x, "host" | "ingress")) {
        return Err(invalid(&keys("mode"), format!("invalid port mode {mode:?}: use host or ingress")));
    }
    Ok(PublishedPort { host_ip, host_ports, target: p.target, protocol })
}
