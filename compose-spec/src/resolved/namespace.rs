//! `network_mode`, `ipc`, `pid`, `uts` and `cgroup`: whose namespace a container uses; and
//! `volumes_from`: whose mounts it takes over.

use super::{invalid, ix, Resolved};

/// Whose namespace a container uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceMode {
    /// A new one with nothing in it (`network_mode: none`, `ipc: none`).
    None,
    /// The host's (`host`).
    Host,
    /// A new one of its own (`ipc: private`, `cgroup: private`).
    Private,
    /// A new one others may join (`ipc: shareable`).
    Shareable,
    /// The one of the service's first container (`service:NAME`).
    Service(String),
    /// The one of a container by name (`container:NAME`).
    Container(String),
    /// `network_mode` naming a network or driver berth does not attach that way (`bridge`).
    Network(String),
}

impl NamespaceMode {
    /// The service named by `service:NAME`.
    pub fn service(&self) -> Option<&str> {
        match self {
            NamespaceMode::Service(s) => Some(s),
            _ => None,
        }
    }
}

/// The keys that take a namespace mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Key {
    Network,
    Ipc,
    Pid,
    Uts,
    Cgroup,
}

impl Key {
    pub(super) fn name(self) -> &'static str {
        match self {
            Key::Network => "network_mode",
            Key::Ipc => "ipc",
            Key::Pid => "pid",
            Key::Uts => "uts",
            Key::Cgroup => "cgroup",
        }
    }

    /// The plain words the key takes, besides `service:NAME` and `container:NAME`.
    fn words(self) -> &'static [(&'static str, NamespaceMode)] {
        match self {
            Key::Network => &[("none", NamespaceMode::None), ("host", NamespaceMode::Host)],
            Key::Ipc => &[
                ("none", NamespaceMode::None),
                ("private", NamespaceMode::Private),
                ("shareable", NamespaceMode::Shareable),
                ("host", NamespaceMode::Host),
            ],
            Key::Pid | Key::Uts => &[("host", NamespaceMode::Host)],
            Key::Cgroup => &[("host", NamespaceMode::Host), ("private", NamespaceMode::Private)],
        }
    }

    fn refused(self, value: &str) -> String {
        let words: Vec<&str> = self.words().iter().map(|(w, _)| *w).collect();
        if self == Key::Cgroup {
            // `cgroup: service:`/`container:` load, but are not carried out (see `unsupported`).
            return format!("invalid cgroup {value:?}: use {}", words.join(" or "));
        }
        format!("invalid {} {value:?}: use {}, service:NAME or container:NAME", self.name(), words.join(", "))
    }
}

/// The mode written under `key`; an empty value is no value.
pub(super) fn parse(key: Key, value: Option<&str>) -> Resolved<Option<NamespaceMode>> {
    let Some(value) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
    let named = |kind: &str, name: &str| -> Resolved<String> {
        if name.is_empty() {
            return Err(invalid(&[key.name()], format!("invalid {} {value:?}: no {kind} name", key.name())));
        }
        Ok(name.to_string())
    };
    if let Some(name) = value.strip_prefix("service:") {
        return Ok(Some(NamespaceMode::Service(named("service", name)?)));
    }
    if let Some(name) = value.strip_prefix("container:") {
        return Ok(Some(NamespaceMode::Container(named("container", name)?)));
    }
    if let Some((_, mode)) = key.words().iter().find(|(w, _)| *w == value) {
        return Ok(Some(mode.clone()));
    }
    match key {
        // `bridge`, `default` or a network's name: Compose passes it to the engine.
        Key::Network => Ok(Some(NamespaceMode::Network(value.to_string()))),
        _ => Err(invalid(&[key.name()], key.refused(value))),
    }
}

/// Where a `volumes_from` entry takes its mounts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumesFromSource {
    /// The first container of a service of the project (`service:NAME`, or a bare `NAME`).
    Service(String),
    /// A container by name (`container:NAME`), of this project or another.
    Container(String),
}

/// One `volumes_from` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumesFrom {
    /// Whose mounts.
    pub source: VolumesFromSource,
    /// `:ro`: every mount taken over is read-only (`:rw`, the default, keeps the source's own).
    pub read_only: bool,
}

impl VolumesFrom {
    /// The service it takes mounts from, when it is one of the project's.
    pub fn service(&self) -> Option<&str> {
        match &self.source {
            VolumesFromSource::Service(s) => Some(s),
            VolumesFromSource::Container(_) => None,
        }
    }
}

/// `volumes_from` entries: `[service:|container:]NAME[:ro|:rw]`.
pub(super) fn volumes_from(entries: &[String]) -> Resolved<Vec<VolumesFrom>> {
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let fail = |m: String| invalid(&["volumes_from".to_string(), ix(i)], m);
        let (rest, read_only) = match entry.rsplit_once(':') {
            Some((r, "ro")) => (r, true),
            Some((r, "rw")) => (r, false),
            _ => (entry.as_str(), false),
        };
        let source = match rest.split_once(':') {
            Some(("container", name)) => VolumesFromSource::Container(name.to_string()),
            Some(("service", name)) => VolumesFromSource::Service(name.to_string()),
            None => VolumesFromSource::Service(rest.to_string()),
            Some(_) => {
                return Err(fail(format!("invalid entry {entry:?}: expected `[service:|container:]NAME[:ro|:rw]`")));
            }
        };
        if matches!(&source, VolumesFromSource::Service(n) | VolumesFromSource::Container(n) if n.is_empty()) {
            return Err(fail(format!("invalid entry {entry:?}: no name")));
        }
        out.push(VolumesFrom { source, read_only });
    }
    Ok(out)
}
