//! Checks on a loaded project. [`check`]: references to undefined services, networks,
//! volumes, secrets and configs, dependency cycles, and values Compose refuses (the values
//! berth decides on are checked as they resolve, in [`crate::resolved`]).
//! [`check_formats`]: names that become paths or kernel objects, addresses, subnets, ids, sizes
//! and bounds, so that `config` and `up` refuse at load time what would otherwise fail, or do
//! harm, at run time (the single-value rules are in [`crate::formats`]). Each error points at
//! the key or value in the file that caused it.

mod format_checks;

use std::collections::{BTreeMap, HashSet};

use crate::error::{Error, Result};
use crate::model::{Project, Service, VolumeType};
use crate::yaml::{Node, Span};
pub use format_checks::check_formats;

/// A list index in a key path: `[3]` → 3.
fn index(key: &str) -> Option<usize> {
    key.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// One step down `keys[0]`: a map entry (with its key's position) or a list item.
fn step<'a>(node: &'a Node, key: &str) -> Option<(&'a Node, Span)> {
    if let (Some(i), Some(items)) = (index(key), node.as_seq()) {
        let item = items.get(i)?;
        return Some((item, item.span.clone()));
    }
    let entry = node.as_map().and_then(|m| m.get(key))?;
    Some((&entry.node, entry.key_span.clone()))
}

/// Where the key `keys` is written in `tree`: the key of a map entry, or the item of a list
/// (written `[i]` in `keys`); `None` when it is not there.
pub fn span_of(tree: &Node, keys: &[&str]) -> Option<Span> {
    let mut node = tree;
    let mut best = None;
    for k in keys {
        let (next, span) = step(node, k)?;
        best = Some(span);
        node = next;
    }
    best
}

/// Where the value at `keys` is written, else the nearest key above it that is written.
pub(crate) fn value_span(tree: &Node, keys: &[&str]) -> Option<Span> {
    let mut node = tree;
    let mut best = None;
    for k in keys {
        match step(node, k) {
            Some((next, span)) => {
                best = Some(span);
                node = next;
            }
            None => return best,
        }
    }
    if node.span.is_synthetic() {
        return best;
    }
    Some(node.span.clone())
}

/// `["services", "web", "ports", "[1]"]` → `services.web.ports[1]`.
pub(crate) fn key_path(keys: &[&str]) -> String {
    let mut path = String::new();
    for k in keys {
        if !path.is_empty() && index(k).is_none() {
            path.push('.');
        }
        path.push_str(&k.replace('\0', "\\0"));
    }
    path
}

/// Where the key `keys` is written, else the nearest key above it that is written.
pub fn span_near(tree: &Node, keys: &[&str]) -> Option<Span> {
    (1..=keys.len()).rev().find_map(|n| span_of(tree, &keys[..n]))
}

fn err(tree: &Node, keys: &[&str], message: String) -> Error {
    let path = key_path(keys);
    match span_near(tree, keys) {
        Some(span) => Error::at(span, Some(path), message),
        None => Error::msg(message).with_path(&path),
    }
}

/// Checks the project; `disabled` are services left out by profiles.
pub fn check(project: &Project, tree: &Node, disabled: &[String]) -> Result<()> {
    for (name, svc) in &project.services {
        check_service(project, tree, name, svc, disabled)?;
    }
    check_cycles(project, tree)?;
    for (kind, items) in [("secrets", &project.secrets), ("configs", &project.configs)] {
        for (key, s) in items {
            let has_source = s.file.is_some() || s.environment.is_some() || s.content.is_some();
            if s.external != Some(true) && !has_source {
                let what =
                    if kind == "configs" { "`file`, `environment` or `content`" } else { "`file` or `environment`" };
                return Err(err(tree, &[kind, key], format!("{kind}.{key} needs {what}, or `external: true`")));
            }
        }
    }
    Ok(())
}

fn check_service(project: &Project, tree: &Node, name: &str, svc: &Service, disabled: &[String]) -> Result<()> {
    let at = |keys: &[&str], m: String| {
        let mut full = vec!["services", name];
        full.extend_from_slice(keys);
        err(tree, &full, m)
    };
    if svc.image.is_none() && svc.build.is_none() && svc.provider.is_none() {
        return Err(at(&[], format!("service {name:?} has neither an image nor a build context specified")));
    }
    for (dep, d) in &svc.depends_on {
        if project.services.contains_key(dep) || !d.required {
            continue;
        }
        let m = if disabled.contains(dep) {
            format!("service {name:?} depends on service {dep:?}, which is disabled by its profiles")
        } else {
            format!("service {name:?} depends on undefined service {dep:?}")
        };
        return Err(at(&["depends_on", dep], m).with_hint("define the service, or enable its profile with `--profile`"));
    }
    for (key, other) in crate::resolved::service_refs(svc) {
        if !project.services.contains_key(&other) {
            return Err(at(&[key], format!("service {name:?} depends on undefined service {other:?}")));
        }
    }
    for l in &svc.links {
        let other = l.split(':').next().unwrap_or_default();
        if !project.services.contains_key(other) {
            return Err(at(&["links"], format!("service {name:?} depends on undefined service {other:?}")));
        }
    }
    if svc.network_mode.is_some() && !svc.networks.is_empty() {
        let m = format!("service {name:?} declares mutually exclusive `network_mode` and `networks`");
        return Err(at(&["network_mode"], m));
    }
    for net in svc.networks.keys() {
        if !project.networks.contains_key(net) && net != "default" {
            return Err(at(&["networks", net], format!("service {name:?} refers to undefined network {net:?}")));
        }
    }
    for (i, v) in svc.volumes.iter().enumerate() {
        if v.kind != VolumeType::Volume {
            continue;
        }
        if let Some(src) = &v.source {
            if !project.volumes.contains_key(src) {
                let m = format!("service {name:?} refers to undefined volume {src:?}");
                let idx = format!("volumes[{i}]");
                return Err(at(&["volumes"], m).with_hint("declare it under the top-level `volumes:` key")).map_err(
                    |e| {
                        let mut e = e;
                        e.path = Some(format!("services.{name}.{idx}"));
                        e
                    },
                );
            }
        }
    }
    for (kind, refs, defined) in
        [("secret", &svc.secrets, &project.secrets), ("config", &svc.configs, &project.configs)]
    {
        for r in refs.iter() {
            if !defined.contains_key(&r.source) {
                let m = format!("service {name:?} refers to undefined {kind} {:?}", r.source);
                return Err(at(&[&format!("{kind}s")], m));
            }
        }
    }
    if svc.container_name.is_some() && svc.replicas() > 1 {
        let m = format!(
            "service {name:?} sets `container_name` and wants {} replicas; container names must be unique",
            svc.replicas()
        );
        return Err(at(&["container_name"], m));
    }
    Ok(())
}

fn check_cycles(project: &Project, tree: &Node) -> Result<()> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    fn visit<'a>(
        p: &'a Project,
        name: &'a str,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        match marks.get(name) {
            Some(Mark::Done) => return None,
            Some(Mark::Active) => {
                let start = stack.iter().position(|s| *s == name).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(name);
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(name, Mark::Active);
        stack.push(name);
        if let Some(svc) = p.services.get(name) {
            for dep in svc.depends_on.keys() {
                if let Some(c) = visit(p, dep, marks, stack) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        marks.insert(name, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for name in project.services.keys() {
        if let Some(cycle) = visit(project, name, &mut marks, &mut Vec::new()) {
            let m = format!("dependency cycle detected: {}", cycle.join(" -> "));
            return Err(err(tree, &["services", cycle[0], "depends_on"], m));
        }
    }
    Ok(())
}

/// Non-fatal findings worth telling the user.
pub fn warnings(project: &Project) -> Vec<String> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (name, svc) in &project.services {
        if let Some(c) = &svc.container_name {
            if !names.insert(c.clone()) {
                out.push(format!("service {name:?}: container name {c:?} is used by another service too"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
