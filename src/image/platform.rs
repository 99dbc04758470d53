//! Target platforms (`linux/amd64`, `linux/arm64/v8`) and choosing one manifest from an index.

use std::fmt;

use super::{Digest, ImageError, Result};

/// An OCI platform: operating system, architecture and optional variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// GOARCH-style: `amd64`, `arm64`, `arm`, ...
    pub architecture: String,
    /// `v7`, `v8`, ... if given.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of this host.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform { os: "linux".into(), architecture: architecture.into(), variant: None }
    }

    /// Parses `os/arch[/variant]` as compose's `platform:` writes it.
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let bad = || ImageError::InvalidPlatform(s.to_string());
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let architecture = match parts[1] {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        Ok(Platform {
            os: parts[0].to_lowercase(),
            architecture: architecture.to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }

    /// Whether an index entry's platform fits this one (a missing variant matches any variant;
    /// arm64 treats `v8` as its default).
    pub(crate) fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        if self.os != os || self.architecture != arch {
            return false;
        }
        let norm = |v: Option<&str>| match (arch, v) {
            ("arm64", None) => Some("v8".to_string()),
            (_, v) => v.map(str::to_string),
        };
        match &self.variant {
            None => true,
            Some(want) => norm(variant).is_none_or(|have| &have == want),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Picks the manifest for `want` from an index document.
pub(crate) fn pick_platform(
    index: &serde_json::Value,
    want: &Platform,
    reference: &dyn std::fmt::Display,
) -> Result<Digest> {
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let mut available = Vec::new();
    for e in &entries {
        let p = &e["platform"];
        let (os, arch, variant) =
            (p["os"].as_str().unwrap_or(""), p["architecture"].as_str().unwrap_or(""), p["variant"].as_str());
        if os.is_empty() {
            continue; // attestation manifests and the like
        }
        available.push(format!("{os}/{arch}{}", variant.map(|v| format!("/{v}")).unwrap_or_default()));
        if want.matches(os, arch, variant) {
            return Digest::parse(e["digest"].as_str().unwrap_or_default());
        }
    }
    Err(ImageError::NoMatchingPlatform {
        reference: reference.to_string(),
        platform: want.to_string(),
        available: available.join(", "),
    })
}

pub(crate) fn platform_of(config: &serde_json::Value) -> String {
    let mut p = format!(
        "{}/{}",
        config["os"].as_str().unwrap_or("linux"),
        config["architecture"].as_str().unwrap_or("unknown")
    );
    if let Some(v) = config["variant"].as_str() {
        p.push('/');
        p.push_str(v);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert!(p.matches("linux", "arm64", None));
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(!p.matches("linux", "amd64", None));
        assert_eq!(Platform::parse("linux/x86_64").unwrap().to_string(), "linux/amd64");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
    }
}
