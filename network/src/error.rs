//! The crate's error type: every variant names the object it is about.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;

/// Everything that can go wrong while setting up or tearing down networking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No subnet is left in the address pools.
    #[error("no free subnet left in the address pools (every candidate overlaps a route or another network)")]
    SubnetsExhausted,
    /// A requested subnet overlaps one already in use.
    #[error("subnet {subnet} overlaps {other}, which is already in use")]
    SubnetOverlap { subnet: IpNet, other: IpNet },
    /// Every address of a network's range is leased or reserved.
    #[error("network `{network}`: no free address left in {range}")]
    AddressesExhausted { network: String, range: IpNet },
    /// A static address is outside the network's subnets.
    #[error("network `{network}`: address {addr} is not in any of its subnets")]
    AddressOutsideSubnet { network: String, addr: IpAddr },
    /// A static address is already leased to someone else.
    #[error("network `{network}`: address {addr} is already used by `{owner}`")]
    AddressInUse { network: String, addr: IpAddr, owner: String },
    /// A static address is the gateway, an aux address, or the network/broadcast address.
    #[error("network `{network}`: address {addr} is reserved ({why})")]
    AddressReserved { network: String, addr: IpAddr, why: &'static str },
    /// A name that reaches the kernel or DNS is not acceptable.
    #[error("invalid {what} `{name}`: {why}")]
    InvalidName { what: &'static str, name: String, why: &'static str },
    /// An `external: true` network has no bridge on this host.
    #[error("external network `{0}` not found: no bridge with that name exists")]
    ExternalMissing(String),
    /// A link with a network's bridge name exists but is not a bridge (`eth0`, a veth, ...):
    /// berth neither uses nor removes it. `kind` is the link kind (`veth`, `dummy`), `device` for
    /// links without one (physical interfaces, `lo`).
    #[error("link `{name}` exists but is not a bridge (kind `{kind}`): berth networks only use bridges")]
    NotABridge { name: String, kind: String },
    /// Two networks of one container ask for the same interface name.
    #[error("interface name `{ifname}` is used by both network `{first}` and network `{second}`")]
    DuplicateInterface { ifname: String, first: String, second: String },
    /// A netlink request failed.
    #[error("failed to {op} `{object}`: {source}")]
    Netlink {
        op: &'static str,
        object: String,
        #[source]
        source: rtnetlink::Error,
    },
    /// A file or system call failed.
    #[error("failed to {op} `{path}`: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `nft` rejected a batch or could not be run.
    #[error("`nft` failed: {0}")]
    Nft(String),
    /// A published port cannot be bound.
    #[error("port {proto} {addr} is not available: {source}")]
    PortUnavailable {
        proto: &'static str,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The DNS server cannot listen on an address.
    #[error("DNS server cannot listen on {addr}: {source}")]
    DnsBind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The lease store failed.
    #[error("lease store: {0}")]
    Store(String),
    /// The caller's lease store failed; its error is the source, so what it was (a full disk,
    /// say) stays visible to the caller.
    #[error("lease store: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Several steps of a teardown failed; every one of them is listed (teardown keeps going).
    #[error("{} steps of removing {what} failed: {}", .errors.len(), list(.errors))]
    Teardown { what: String, errors: Vec<Error> },
    /// An operation failed, and undoing what it had done failed too: `left` stays behind.
    #[error("{error} ({left} was left behind: {undo})")]
    LeftBehind { error: Box<Error>, left: String, undo: Box<Error> },
}

fn list(errors: &[Error]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    /// `Ok` when nothing failed, the one error, or [`Error::Teardown`] with all of them.
    pub(crate) fn collect(what: impl Into<String>, mut errors: Vec<Error>) -> Result<()> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Teardown { what: what.into(), errors }),
        }
    }

    /// This error, or [`Error::LeftBehind`] with it when `undo` (undoing what the failed operation
    /// had done) failed too, naming what stays behind.
    pub(crate) fn undone(self, left: impl FnOnce() -> String, undo: Result<()>) -> Self {
        match undo {
            Ok(()) => self,
            Err(u) => Error::LeftBehind { error: Box::new(self), left: left(), undo: Box::new(u) },
        }
    }

    pub(crate) fn netlink(op: &'static str, object: impl Into<String>, source: rtnetlink::Error) -> Self {
        Error::Netlink { op, object: object.into(), source }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
