//! Image references as compose files and users write them, normalized the way Docker does.
//!
//! `busybox` → `docker.io/library/busybox:latest`; `me/app:1` → `docker.io/me/app:1`;
//! `127.0.0.1:5000/x/y:t` keeps its registry (a first component is a registry when it contains `.`
//! or `:` or is `localhost`); `name@sha256:…` pins a digest (a tag may stand beside it and is then
//! only a label).

use std::fmt;

use super::{Digest, ImageError};

/// The registry Docker Hub names resolve to.
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses `[registry/]path[:tag][@sha256:hex]`.
    pub fn parse(input: &str) -> Result<Self, ImageError> {
        let bad =
            |reason: &str| ImageError::InvalidReference { reference: input.to_string(), reason: reason.to_string() };
        let s = input.trim();
        if s.is_empty() {
            return Err(bad("empty reference"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d).map_err(|_| bad("digest must be sha256:<64 hex digits>"))?)),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(rest[last_slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && !t.starts_with(['.', '-'])
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                return Err(bad("tag must be 1-128 of [A-Za-z0-9_.-], not starting with `.` or `-`"));
            }
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, p)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), p.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        if registry.is_empty() || registry.bytes().any(|b| b.is_ascii_whitespace() || b == b'/') {
            return Err(bad("invalid registry host"));
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') { format!("library/{path}") } else { path };
        for comp in repository.split('/') {
            let ok = !comp.is_empty()
                && comp.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && comp.as_bytes()[0].is_ascii_alphanumeric()
                && comp.as_bytes()[comp.len() - 1].is_ascii_alphanumeric();
            if !ok {
                return Err(bad("repository path components must be lower-case letters, digits and `._-`"));
            }
        }
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_string()) } else { tag };
        Ok(Reference { registry, repository, tag, digest })
    }

    /// The registry host (and port), `docker.io` for Docker Hub.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any (`latest` when neither tag nor digest was given).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The pinned digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, the name images are listed under.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `registry/repository:tag`, the key of a tag in the store (None for digest-only references).
    pub fn tagged_name(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }

    /// The same repository pinned to `digest`.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference { digest: Some(digest), ..self.clone() }
    }

    /// Whether the registry is on the loopback interface (plain HTTP is then allowed).
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => self.registry.split(':').next().unwrap_or(""),
        };
        host == "localhost" || host == "::1" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The same reference in `oci-client`'s type.
    pub(crate) fn to_oci(&self) -> oci_client::Reference {
        match (&self.tag, &self.digest) {
            (_, Some(d)) => {
                oci_client::Reference::with_digest(self.registry.clone(), self.repository.clone(), d.to_string())
            }
            (Some(t), None) => {
                oci_client::Reference::with_tag(self.registry.clone(), self.repository.clone(), t.clone())
            }
            (None, None) => unreachable!("a reference always has a tag or a digest"),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, ImageError> {
        Reference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("me/app"), "docker.io/me/app:latest");
        assert_eq!(norm("docker.io/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("index.docker.io/library/busybox"), "docker.io/library/busybox:latest");
    }

    #[test]
    fn registries_ports_and_digests() {
        assert_eq!(norm("127.0.0.1:5000/a/b/c:t1"), "127.0.0.1:5000/a/b/c:t1");
        assert_eq!(norm("localhost/x"), "localhost/x:latest");
        assert_eq!(norm("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(norm(&format!("busybox@{D}")), format!("docker.io/library/busybox@{D}"));
        assert_eq!(norm(&format!("ghcr.io/o/r:v1@{D}")), format!("ghcr.io/o/r:v1@{D}"));
        let r = Reference::parse("127.0.0.1:5000/x").unwrap();
        assert!(r.is_loopback());
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert!(!Reference::parse("ghcr.io/x").unwrap().is_loopback());
        assert!(Reference::parse("[::1]:5000/x").unwrap().is_loopback());
    }

    #[test]
    fn rejects_bad_input() {
        for bad in ["", "Busybox", "busybox:", "busybox@sha256:abc", "a//b", "busybox:-x", "-a/b", "a b"] {
            let err = Reference::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid image reference"), "{bad}: {err}");
        }
    }
}
