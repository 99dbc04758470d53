//! Expands Compose's short syntaxes into their long forms on the positioned tree, so merging
//! and the typed model see one shape per key. Positions and `!reset`/`!override` tags are kept.

use crate::error::{Error, Result};
use crate::short;
use crate::yaml::{Entry, Map, Node, Value};

/// Expands the short syntaxes of one compose file's tree, in place.
pub fn canonicalize(root: &mut Node) -> Result<()> {
    let Some(map) = root.as_map_mut() else {
        let span = root.span.clone();
        return Err(Error::at(span, None, format!("a compose file must be a mapping, not {}", root.kind())));
    };
    if let Some(services) = map.get_mut("services").and_then(|e| e.node.as_map_mut()) {
        for (name, entry) in services.iter_mut() {
            let path = format!("services.{name}");
            if entry.node.is_null() {
                entry.node.value = Value::Map(Map::new());
            }
            if let Some(svc) = entry.node.as_map_mut() {
                service(svc, &path)?;
            }
        }
    }
    for kind in ["networks", "volumes", "secrets", "configs"] {
        let Some(resources) = map.get_mut(kind).and_then(|e| e.node.as_map_mut()) else { continue };
        for (name, entry) in resources.iter_mut() {
            if entry.node.is_null() {
                entry.node.value = Value::Map(Map::new());
            }
            if let Some(res) = entry.node.as_map_mut() {
                resource(res, &format!("{kind}.{name}"))?;
            }
        }
    }
    Ok(())
}

/// Fills in defaults that only make sense once every file is merged (compose-go's
/// `SetDefaultValues`): a `build` without `context` builds from `.`, which then resolves like
/// any other relative path.
pub fn apply_defaults(root: &mut Node) {
    let Some(services) = root.as_map_mut().and_then(|m| m.get_mut("services")).and_then(|e| e.node.as_map_mut()) else {
        return;
    };
    for (_, svc) in services.iter_mut() {
        let Some(build) = svc.node.as_map_mut().and_then(|m| m.get_mut("build")) else { continue };
        let span = build.node.span.clone();
        if let Some(b) = build.node.as_map_mut() {
            b.entry("context".into()).or_insert_with(|| entry_at(Node::str(".", span)));
        }
    }
}

fn join(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

fn service(svc: &mut Map, path: &str) -> Result<()> {
    for (key, entry) in svc.iter_mut() {
        if !matches!(entry.node.value, Value::Seq(_) | Value::Map(_) | Value::Str(_)) {
            continue;
        }
        let p = join(path, key);
        let node = &mut entry.node;
        match key.as_str() {
            "ports" => expand_items(node, &p, |n, p| {
                let Some(text) = n.scalar_text() else { return Ok(None) };
                let ports = short::parse_port(&text).map_err(|m| Error::at(n.span.clone(), Some(p.into()), m))?;
                Ok(Some(ports.iter().map(|x| to_node(x, n)).collect()))
            })?,
            "volumes" => expand_items(node, &p, |n, p| {
                let Some(text) = n.as_str() else { return Ok(None) };
                let v = short::parse_volume(text).map_err(|m| Error::at(n.span.clone(), Some(p.into()), m))?;
                Ok(Some(vec![to_node(&v, n)]))
            })?,
            "devices" => expand_items(node, &p, |n, p| {
                let Some(text) = n.as_str() else { return Ok(None) };
                let d = short::parse_device(text).map_err(|m| Error::at(n.span.clone(), Some(p.into()), m))?;
                Ok(Some(vec![to_node(&d, n)]))
            })?,
            "environment" => list_to_map(node, &p, None)?,
            "labels" | "annotations" | "sysctls" | "storage_opt" => list_to_map(node, &p, Some(""))?,
            "extra_hosts" => extra_hosts(node, &p)?,
            "command" | "entrypoint" => shell_words(node, &p)?,
            "healthcheck" => {
                if let Some(test) = node.as_map_mut().and_then(|m| m.get_mut("test")) {
                    if let Some(s) = test.node.as_str() {
                        let words = vec!["CMD-SHELL".to_string(), s.to_string()];
                        test.node.value = seq_of_str(&words, &test.node);
                    }
                }
            }
            "depends_on" => {
                if let Some(items) = node.as_seq() {
                    let mut map = Map::new();
                    for (i, item) in items.iter().enumerate() {
                        let Some(name) = item.as_str() else {
                            let m = format!("must be a service name, not {}", item.kind());
                            return Err(Error::at(item.span.clone(), Some(format!("{p}[{i}]")), m));
                        };
                        let dep = serde_json::json!({"condition": "service_started", "required": true});
                        map.insert(name.to_string(), entry_at(Node::from_json(&dep, &item.span)));
                    }
                    node.value = Value::Map(map);
                }
            }
            "networks" => {
                if let Some(items) = node.as_seq() {
                    let mut map = Map::new();
                    for (i, item) in items.iter().enumerate() {
                        let Some(name) = item.scalar_text() else {
                            let m = format!("must be a network name, not {}", item.kind());
                            return Err(Error::at(item.span.clone(), Some(format!("{p}[{i}]")), m));
                        };
                        map.insert(name, entry_at(Node::new(Value::Null, item.span.clone())));
                    }
                    node.value = Value::Map(map);
                }
            }
            "env_file" => {
                one_to_list(node);
                expand_items(node, &p, |n, _| {
                    let Some(path) = n.as_str() else { return Ok(None) };
                    Ok(Some(vec![Node::from_json(&serde_json::json!({"path": path}), &n.span)]))
                })?
            }
            "secrets" | "configs" => expand_items(node, &p, |n, _| {
                let Some(source) = n.as_str() else { return Ok(None) };
                Ok(Some(vec![Node::from_json(&serde_json::json!({"source": source}), &n.span)]))
            })?,
            "label_file" | "dns" | "dns_search" | "dns_opt" | "tmpfs" | "cap_add" | "cap_drop" | "profiles" => {
                one_to_list(node)
            }
            "extends" => {
                if let Some(s) = node.as_str() {
                    node.value = Node::from_json(&serde_json::json!({"service": s}), &node.span).value;
                }
            }
            "build" => {
                if let Some(s) = node.as_str() {
                    node.value = Node::from_json(&serde_json::json!({"context": s}), &node.span).value;
                }
                if let Some(b) = node.as_map_mut() {
                    build(b, &p)?;
                }
            }
            "ulimits" => {
                if let Some(m) = node.as_map_mut() {
                    for (_, e) in m.iter_mut() {
                        if matches!(e.node.value, Value::Int(_) | Value::Str(_)) {
                            let single = std::mem::replace(&mut e.node.value, Value::Null);
                            let mut inner = Map::new();
                            inner.insert("single".into(), entry_at(Node::new(single, e.node.span.clone())));
                            e.node.value = Value::Map(inner);
                        }
                    }
                }
            }
            "post_start" | "pre_stop" | "pre_start" => hooks(node, &p)?,
            "logging" => {
                if let Some(opts) = node.as_map_mut().and_then(|m| m.get_mut("options")) {
                    list_to_map(&mut opts.node, &join(&p, "options"), None)?;
                }
            }
            "deploy" => {
                if let Some(labels) = node.as_map_mut().and_then(|m| m.get_mut("labels")) {
                    list_to_map(&mut labels.node, &join(&p, "labels"), Some(""))?;
                }
            }
            "develop" => {
                let watch = node.as_map_mut().and_then(|m| m.get_mut("watch"));
                if let Some(Value::Seq(rules)) = watch.map(|w| &mut w.node.value) {
                    for (i, rule) in rules.iter_mut().enumerate() {
                        if let Some(exec) = rule.as_map_mut().and_then(|m| m.get_mut("exec")) {
                            if let Some(cmd) = exec.node.as_map_mut().and_then(|m| m.get_mut("command")) {
                                shell_words(&mut cmd.node, &format!("{p}.watch[{i}].exec.command"))?;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn build(b: &mut Map, path: &str) -> Result<()> {
    for (key, entry) in b.iter_mut() {
        let p = join(path, key);
        match key.as_str() {
            "args" => list_to_map(&mut entry.node, &p, None)?,
            "labels" | "additional_contexts" => list_to_map(&mut entry.node, &p, Some(""))?,
            "extra_hosts" => extra_hosts(&mut entry.node, &p)?,
            "ssh" => {
                if let Some(m) = entry.node.as_map() {
                    let items: Vec<String> = m
                        .iter()
                        .map(|(k, e)| match e.node.scalar_text() {
                            Some(v) => format!("{k}={v}"),
                            None => k.clone(),
                        })
                        .collect();
                    entry.node.value = seq_of_str(&items, &entry.node);
                }
                one_to_list(&mut entry.node)
            }
            "cache_from" | "cache_to" | "tags" | "platforms" => one_to_list(&mut entry.node),
            "secrets" => expand_items(&mut entry.node, &p, |n, _| {
                let Some(source) = n.as_str() else { return Ok(None) };
                Ok(Some(vec![Node::from_json(&serde_json::json!({"source": source}), &n.span)]))
            })?,
            _ => {}
        }
    }
    Ok(())
}

fn hooks(node: &mut Node, path: &str) -> Result<()> {
    if let Value::Seq(items) = &mut node.value {
        for (i, item) in items.iter_mut().enumerate() {
            let Some(m) = item.as_map_mut() else { continue };
            if let Some(cmd) = m.get_mut("command") {
                shell_words(&mut cmd.node, &format!("{path}[{i}].command"))?;
            }
            if let Some(env) = m.get_mut("environment") {
                list_to_map(&mut env.node, &format!("{path}[{i}].environment"), None)?;
            }
        }
    }
    Ok(())
}

fn resource(res: &mut Map, path: &str) -> Result<()> {
    // Legacy `external: {name: x}` means `external: true` with `name: x`.
    let legacy_name = match res.get("external").map(|e| &e.node.value) {
        Some(Value::Map(m)) => Some(m.get("name").and_then(|e| e.node.scalar_text())),
        _ => None,
    };
    if let Some(name) = legacy_name {
        let e = res.get_mut("external").expect("checked above");
        e.node.value = Value::Bool(true);
        let span = e.node.span.clone();
        if let Some(name) = name {
            res.entry("name".into()).or_insert_with(|| entry_at(Node::str(name, span)));
        }
    }
    if let Some(labels) = res.get_mut("labels") {
        list_to_map(&mut labels.node, &join(path, "labels"), Some(""))?;
    }
    Ok(())
}

fn entry_at(node: Node) -> Entry {
    Entry { key_span: node.span.clone(), node }
}

fn to_node<T: serde::Serialize>(value: &T, at: &Node) -> Node {
    let json = serde_json::to_value(value).expect("model types serialize");
    let mut n = Node::from_json(&json, &at.span);
    n.tag = at.tag;
    n
}

fn seq_of_str(items: &[String], at: &Node) -> Value {
    Value::Seq(items.iter().map(|s| Node::str(s.clone(), at.span.clone())).collect())
}

/// A single scalar where a list is expected becomes a one-item list.
fn one_to_list(node: &mut Node) {
    if matches!(node.value, Value::Str(_) | Value::Int(_)) {
        let item = Node::new(std::mem::replace(&mut node.value, Value::Null), node.span.clone());
        node.value = Value::Seq(vec![item]);
    }
}

/// Replaces each list item for which `f` returns `Some` with the nodes it returns.
fn expand_items(node: &mut Node, path: &str, f: impl Fn(&Node, &str) -> Result<Option<Vec<Node>>>) -> Result<()> {
    let Value::Seq(items) = &mut node.value else { return Ok(()) };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in std::mem::take(items).into_iter().enumerate() {
        match f(&item, &format!("{path}[{i}]"))? {
            Some(nodes) => out.extend(nodes),
            None => out.push(item),
        }
    }
    *items = out;
    Ok(())
}

/// `["KEY=VALUE", "KEY"]` → `{KEY: VALUE, KEY: <missing>}`. A key without `=` maps to null
/// (`missing = None`) or to the given string.
fn list_to_map(node: &mut Node, path: &str, missing: Option<&str>) -> Result<()> {
    if let Value::Map(m) = &mut node.value {
        // The map form: values become strings, as in the list form.
        for (_, e) in m.iter_mut() {
            match &e.node.value {
                Value::Null => {
                    if let Some(m) = missing {
                        e.node.value = Value::Str(m.to_string());
                    }
                }
                Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
                    e.node.value = Value::Str(e.node.scalar_text().expect("scalar"));
                }
                _ => {}
            }
        }
        return Ok(());
    }
    let Some(items) = node.as_seq() else { return Ok(()) };
    let mut map = Map::new();
    for (i, item) in items.iter().enumerate() {
        let Some(text) = item.scalar_text() else {
            let m = format!("must be a \"KEY=VALUE\" string, not {}", item.kind());
            return Err(Error::at(item.span.clone(), Some(format!("{path}[{i}]")), m));
        };
        let (k, v) = match text.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::Str(v.to_string())),
            None => (text.clone(), missing.map(|m| Value::Str(m.to_string())).unwrap_or(Value::Null)),
        };
        if k.is_empty() {
            return Err(Error::at(item.span.clone(), Some(format!("{path}[{i}]")), format!("empty key in {text:?}")));
        }
        map.insert(k, entry_at(Node::new(v, item.span.clone())));
    }
    node.value = Value::Map(map);
    Ok(())
}

fn shell_words(node: &mut Node, path: &str) -> Result<()> {
    if let Some(s) = node.as_str() {
        let words = short::shell_split(s).map_err(|m| Error::at(node.span.clone(), Some(path.into()), m))?;
        node.value = seq_of_str(&words, node);
    }
    Ok(())
}

/// `extra_hosts` as a list of `host=address` (from `host:address`, `host=address` or a map).
/// Each item keeps the position it was written at, for later checks of the address.
fn extra_hosts(node: &mut Node, path: &str) -> Result<()> {
    let mut out: Vec<Node> = Vec::new();
    match &node.value {
        Value::Map(m) => {
            for (host, e) in m {
                match &e.node.value {
                    Value::Seq(ips) => out.extend(ips.iter().map(|ip| {
                        Node::str(format!("{host}={}", ip.scalar_text().unwrap_or_default()), ip.span.clone())
                    })),
                    _ => out.push(Node::str(
                        format!("{host}={}", e.node.scalar_text().unwrap_or_default()),
                        e.node.span.clone(),
                    )),
                }
            }
            out.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let text = item.scalar_text().unwrap_or_default();
                let pair = text.split_once('=').or_else(|| text.split_once(':'));
                match pair {
                    Some((h, ip)) if !h.is_empty() && !ip.is_empty() => {
                        out.push(Node::str(format!("{h}={ip}"), item.span.clone()))
                    }
                    _ => {
                        let m = format!("invalid extra host {text:?}: expected \"host=address\"");
                        return Err(Error::at(item.span.clone(), Some(format!("{path}[{i}]")), m));
                    }
                }
            }
        }
        _ => return Ok(()),
    }
    node.value = Value::Seq(out);
    Ok(())
}
