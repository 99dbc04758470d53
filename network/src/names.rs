//! Kernel interface names that can only be built valid, and the stable hashes berth derives them from.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Longest interface name the kernel accepts (`IFNAMSIZ` - 1).
pub const IFNAME_MAX: usize = 15;

/// A valid Linux interface name: 1 to 15 bytes, no `/`, whitespace, `:` or NUL, not `.` or `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IfName(String);

impl IfName {
    /// Checks `name` against the kernel's rules (`dev_valid_name`).
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let bad = |why| Err(Error::InvalidName { what: "interface name", name: name.clone(), why });
        if name.is_empty() {
            return bad("it is empty");
        }
        if name.len() > IFNAME_MAX {
            return bad("it is longer than 15 bytes");
        }
        if name == "." || name == ".." {
            return bad("it is `.` or `..`");
        }
        if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0') {
            return bad("it contains `/`, `:`, whitespace or NUL");
        }
        Ok(IfName(name))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IfName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        IfName::new(value)
    }
}

impl From<IfName> for String {
    fn from(value: IfName) -> Self {
        value.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `n` hex digits of the SHA-256 of `parts` joined by NUL bytes: stable across runs and hosts.
pub fn short_hash(parts: &[&str], n: usize) -> String {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0u8]);
        }
        h.update(p.as_bytes());
    }
    let mut s = hex::encode(h.finalize());
    s.truncate(n);
    s
}

/// The bridge name berth gives a network: `br-` plus 12 hex digits of a hash of the network's
/// resolved name (`shop_default`, or the compose file's `name:`; the same length Docker uses),
/// unless `driver_opts` name it. Projects that declare the same `name:` get the same bridge.
pub fn bridge_name(network: &str) -> IfName {
    IfName(format!("br-{}", short_hash(&[network], 12)))
}

/// The host-side name of the veth pair that attaches the namespace at `netns` as `ifname`.
pub fn host_veth_name(netns: &str, ifname: &str) -> IfName {
    IfName(format!("veth{}", short_hash(&[netns, ifname], 11)))
}

/// The temporary name of the container side before it moves into its namespace and is renamed.
pub fn peer_veth_name(netns: &str, ifname: &str) -> IfName {
    IfName(format!("vpeer{}", short_hash(&[netns, ifname], 10)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked() {
        assert!(IfName::new("eth0").is_ok());
        assert!(IfName::new("br-0123456789ab").is_ok());
        assert!(IfName::new("").is_err());
        assert!(IfName::new("a-name-that-is-too-long").is_err());
        assert!(IfName::new("a/b").is_err());
        assert!(IfName::new("a b").is_err());
        assert!(IfName::new("..").is_err());
    }

    #[test]
    fn derived_names_are_stable_and_short() {
        let b = bridge_name("shop_default");
        assert_eq!(b, bridge_name("shop_default"));
        assert_ne!(b, bridge_name("shop_back"));
        assert_eq!(b.as_str().len(), 15);
        assert!(host_veth_name("/run/berth/netns/x", "eth0").as_str().len() <= IFNAME_MAX);
        assert!(peer_veth_name("/run/berth/netns/x", "eth0").as_str().len() <= IFNAME_MAX);
        assert_ne!(host_veth_name("/n", "eth0"), host_veth_name("/n", "eth1"));
    }
}
