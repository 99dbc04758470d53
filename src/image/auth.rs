//! Registry credentials: Docker's `config.json` (`auths`, `credHelpers`, `credsStore`), as written by
//! `docker login` and by `berth login`.
//!
//! Format (what Docker writes): `{"auths": {"<server>": {"auth": base64("user:password")}},
//! "credsStore": "<helper>", "credHelpers": {"<server>": "<helper>"}}`. A helper is the program
//! `docker-credential-<helper>`; `get` reads the server URL on stdin and prints
//! `{"ServerURL": ..., "Username": ..., "Secret": ...}`. Docker Hub's key is
//! `https://index.docker.io/v1/`; other servers are keyed by host[:port], sometimes with a scheme.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde_json::{json, Value};

use super::reference::DOCKER_HUB;
use super::{ImageError, Result};

const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// Docker's client configuration file.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    value: Value,
}

/// Strips scheme and path: `https://host:5000/v1/` → `host:5000`.
fn host_of(key: &str) -> &str {
    let k = key.split_once("://").map_or(key, |(_, rest)| rest);
    k.split('/').next().unwrap_or(k)
}

fn is_hub(host: &str) -> bool {
    matches!(host, DOCKER_HUB | "index.docker.io" | "registry-1.docker.io")
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn default_path() -> PathBuf {
        match std::env::var_os("DOCKER_CONFIG") {
            Some(d) => PathBuf::from(d).join("config.json"),
            None => {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".docker/config.json")
            }
        }
    }

    /// Reads the file; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self> {
        let value = match std::fs::read(path) {
            Ok(data) => serde_json::from_slice(&data)
                .map_err(|e| ImageError::Credentials(format!("`{}` is not valid JSON: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
            Err(e) => return Err(ImageError::io("read", path)(e)),
        };
        Ok(DockerConfig { path: path.to_path_buf(), value })
    }

    /// The key under which credentials for `registry` are written.
    fn key_for(registry: &str) -> String {
        if is_hub(registry) {
            DOCKER_HUB_KEY.to_string()
        } else {
            registry.to_string()
        }
    }

    /// Finds the `auths` entry whose host matches `registry`.
    fn auths_entry(&self, registry: &str) -> Option<(&String, &Value)> {
        let auths = self.value.get("auths")?.as_object()?;
        auths.iter().find(|(k, _)| {
            let h = host_of(k);
            h == registry || (is_hub(registry) && is_hub(h))
        })
    }

    /// Credentials for `registry` (host[:port], `docker.io` for Docker Hub), if any are configured.
    pub fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>> {
        let specific = self
            .value
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|m| m.iter().find(|(k, _)| host_of(k) == registry || (is_hub(registry) && is_hub(host_of(k)))))
            .and_then(|(_, v)| v.as_str());
        let server = DockerConfig::key_for(registry);
        if let Some(helper) = specific {
            // A helper named for this very registry must work.
            if let Some(c) = run_helper(helper, &server)? {
                return Ok(Some(c));
            }
        } else if let Some(helper) = self.value.get("credsStore").and_then(Value::as_str) {
            // The default store (often Docker Desktop's) may be absent here: fall back to `auths`.
            if let Ok(Some(c)) = run_helper(helper, &server) {
                return Ok(Some(c));
            }
        }
        let Some((key, entry)) = self.auths_entry(registry) else {
            return Ok(None);
        };
        if let Some(auth) = entry.get("auth").and_then(Value::as_str).filter(|a| !a.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .map_err(|e| ImageError::Credentials(format!("`auths.{key}.auth` is not base64: {e}")))?;
            let text = String::from_utf8_lossy(&raw);
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| ImageError::Credentials(format!("`auths.{key}.auth` is not `user:password`")))?;
            return Ok(Some(Credentials { username: u.to_string(), password: p.to_string() }));
        }
        match (entry.get("username").and_then(Value::as_str), entry.get("password").and_then(Value::as_str)) {
            (Some(u), Some(p)) => Ok(Some(Credentials { username: u.into(), password: p.into() })),
            _ => Ok(None),
        }
    }

    /// Stores credentials in `auths` (credential helpers are not written to).
    pub fn set(&mut self, registry: &str, creds: &Credentials) {
        self.remove(registry);
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", creds.username, creds.password));
        if !self.value.is_object() {
            self.value = json!({});
        }
        let obj = self.value.as_object_mut().expect("object");
        let auths = obj.entry("auths").or_insert_with(|| json!({}));
        if !auths.is_object() {
            *auths = json!({});
        }
        auths.as_object_mut().expect("object").insert(DockerConfig::key_for(registry), json!({ "auth": auth }));
    }

    /// Removes stored credentials for `registry`; returns whether there were any.
    pub fn remove(&mut self, registry: &str) -> bool {
        let Some(key) = self.auths_entry(registry).map(|(k, _)| k.clone()) else {
            return false;
        };
        self.value.get_mut("auths").and_then(Value::as_object_mut).map(|m| m.remove(&key)).is_some()
    }

    /// Writes the file atomically with mode 0600.
    pub fn save(&self) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(ImageError::io("create directory", dir))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(ImageError::io("create temp file in", dir))?;
        let data = serde_json::to_vec_pretty(&self.value).expect("json value serializes");
        tmp.write_all(&data).map_err(ImageError::io("write", tmp.path()))?;
        tmp.persist(&self.path).map_err(|e| ImageError::io("replace", &self.path)(e.error))?;
        Ok(())
    }
}

fn run_helper(helper: &str, server: &str) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{helper}");
    let mut child = match Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ImageError::Credentials(format!(
                "credential helper `{program}` is configured but not installed"
            )))
        }
        Err(e) => return Err(ImageError::io("run", &program)(e)),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that does not read its input fails, and its exit status and output are checked below.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child.wait_with_output().map_err(ImageError::io("run", &program))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if stdout.contains("credentials not found")
            || String::from_utf8_lossy(&out.stderr).contains("credentials not found")
        {
            return Ok(None);
        }
        return Err(ImageError::Credentials(format!("`{program} get` failed: {}", stdout.trim())));
    }
    let v: Value = serde_json::from_str(&stdout)
        .map_err(|e| ImageError::Credentials(format!("`{program} get` printed invalid JSON: {e}")))?;
    match (v.get("Username").and_then(Value::as_str), v.get("Secret").and_then(Value::as_str)) {
        (Some(u), Some(s)) if !s.is_empty() => Ok(Some(Credentials { username: u.into(), password: s.into() })),
        _ => Ok(None),
    }
}

/// The `oci-client` authentication for `registry` from the default Docker config (anonymous if none).
pub fn registry_auth(registry: &str) -> Result<RegistryAuth> {
    let cfg = DockerConfig::load(&DockerConfig::default_path())?;
    Ok(match cfg.credentials_for(registry)? {
        Some(c) if c.username == "<token>" => RegistryAuth::Bearer(c.password),
        Some(c) => RegistryAuth::Basic(c.username, c.password),
        None => RegistryAuth::Anonymous,
    })
}

/// `berth login`: stores credentials for `registry` in the Docker config at `config` (default path
/// when None). The caller checks them first with [`super::pull::check_login`].
pub fn login(registry: &str, creds: &Credentials, config: Option<&Path>) -> Result<PathBuf> {
    let path = config.map(Path::to_path_buf).unwrap_or_else(DockerConfig::default_path);
    let mut cfg = DockerConfig::load(&path)?;
    cfg.set(registry, creds);
    cfg.save()?;
    Ok(path)
}

/// `berth logout`: removes stored credentials; returns whether there were any.
pub fn logout(registry: &str, config: Option<&Path>) -> Result<bool> {
    let path = config.map(Path::to_path_buf).unwrap_or_else(DockerConfig::default_path);
    let mut cfg = DockerConfig::load(&path)?;
    let removed = cfg.remove(registry);
    if removed {
        cfg.save()?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_hub_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}},"other":1}"#).unwrap();
        let cfg = DockerConfig::load(&path).unwrap();
        let c = cfg.credentials_for("docker.io").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        assert!(cfg.credentials_for("127.0.0.1:5000").unwrap().is_none());
        let creds = Credentials { username: "a".into(), password: "b:c".into() };
        login("127.0.0.1:5000", &creds, Some(&path)).unwrap();
        let cfg = DockerConfig::load(&path).unwrap();
        assert_eq!(cfg.credentials_for("127.0.0.1:5000").unwrap(), Some(creds));
        assert_eq!(cfg.value["other"], 1);
        assert!(logout("127.0.0.1:5000", Some(&path)).unwrap());
        assert!(!logout("127.0.0.1:5000", Some(&path)).unwrap());
        assert!(DockerConfig::load(&path).unwrap().credentials_for("docker.io").unwrap().is_some());
    }
}
