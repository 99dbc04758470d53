//! Merges compose file trees the way Docker Compose does (compose-go's `override.Merge`
//! followed by `override.EnforceUnicity`), on canonical trees (see [`crate::canonical`]).
//!
//! The rules, by key path (`*` is any name):
//!
//! * Mappings merge by key; scalars from the later tree replace; a `null` in the later tree
//!   keeps the earlier value; sequences are appended.
//! * `services.*.command`, `entrypoint`, `healthcheck.test` and `ulimits.*` are replaced whole.
//! * `KEY: value` mappings (`environment`, `labels`, `annotations`, `sysctls`, `build.args`,
//!   `build.labels`, `build.additional_contexts`, `deploy.labels`, resource `labels`): each later
//!   entry replaces the earlier one, a `null` value included.
//! * `services.*.logging`: replaced whole when both name different drivers, merged otherwise.
//! * `services.*.models` and `services.*.networks`: a list of names is read as a mapping of
//!   name → `null` before merging.
//! * `extra_hosts`: later entries are appended unless the earlier list has the same entry.
//! * `networks.*.ipam.config`: entries with the same `subnet` merge, others are appended.
//! * Keyed lists keep one item per key, at the position of the first, holding the last value:
//!   `ports` (host IP, published port, target, protocol), `volumes` and `devices` (target),
//!   `secrets` / `configs` (target, else `/run/secrets/<source>` / `/<source>`), `env_file`
//!   (path), `expose`, and lists of strings keyed by the text before `=`: `cap_add`, `cap_drop`,
//!   `dns`, `dns_opt`, `dns_search`, `links`, `profiles`, `tmpfs`, `build.tags`,
//!   `build.platforms` (and compose-go's `build.platform`), `networks.*.aliases`,
//!   `networks.*.link_local_ips`.
//!
//! `!override` on a later value replaces the earlier value; `!reset` removes it. Both tags stay
//! on the result (a `!reset` node is kept in place as a marker) so that a merged tree can itself
//! be merged onto earlier files; [`strip_tags`] applies the markers once all merging is done.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::yaml::{Map, Node, Tag, Value};

/// Merges `over` (a later file, or the extending service) onto `base`, following Compose's
/// per-key rules, and then keeps one item per key in keyed lists (see the module docs).
///
/// `path` is the key path of these nodes: `""` for a file root, `"services.web"` when merging
/// two service definitions for `extends`. Its first dot separates the section from the name,
/// so names may contain dots; deeper paths are not supported. Both trees must be canonical.
///
/// For an `extends` merge (non-empty `path`), tags in `base` are applied first: they acted on
/// the base service's own ancestry, not on the extending service. Tags in `over` are kept on
/// the result; call [`strip_tags`] after the last merge.
///
/// # Errors
///
/// When a mapping or a list would be overridden by a value of another kind (compose-go's
/// `cannot override <path>`); the error carries the later value's position and the key path.
pub fn merge(base: Node, over: Node, path: &str) -> Result<Node> {
    let mut segments = split_path(path);
    let mut base = base;
    if !segments.is_empty() {
        strip_tags(&mut base);
    }
    let mut merged = merge_node(base, over, &mut segments)?;
    dedupe_tree(&mut merged, &mut segments);
    Ok(merged)
}

/// Keeps one item per key in every keyed list of `node` (compose-go's `EnforceUnicity`), for
/// trees that are not passed through [`merge`] (a project made of a single file). `path` is
/// as for [`merge`].
pub fn enforce_unicity(node: &mut Node, path: &str) {
    let mut segments = split_path(path);
    dedupe_tree(node, &mut segments);
}

/// Removes every node tagged `!reset` (a mapping key disappears, a list item disappears) and
/// clears `!override` tags. Call after all merges. A `!reset` root becomes `null`.
pub fn strip_tags(node: &mut Node) {
    if node.tag == Tag::Reset {
        node.value = Value::Null;
    }
    node.tag = Tag::None;
    match &mut node.value {
        Value::Map(map) => {
            map.retain(|_, e| e.node.tag != Tag::Reset);
            for entry in map.values_mut() {
                strip_tags(&mut entry.node);
            }
        }
        Value::Seq(items) => {
            items.retain(|n| n.tag != Tag::Reset);
            items.iter_mut().for_each(strip_tags);
        }
        _ => {}
    }
}

fn split_path(path: &str) -> Vec<String> {
    match path.split_once('.') {
        _ if path.is_empty() => Vec::new(),
        Some((section, name)) => vec![section.to_string(), name.to_string()],
        None => vec![path.to_string()],
    }
}

/// How the value at a key path merges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Mappings merge by key, sequences append, scalars replace, a null override keeps the base.
    Default,
    /// The override replaces the base.
    Replace,
    /// `KEY: value` mapping: each override entry replaces the base entry, null included.
    KeyValue,
    /// `logging`: replaced when the drivers differ.
    Logging,
    /// A list of names is read as a mapping of name → null.
    NameMap,
    /// `extra_hosts`: override entries the base lacks are appended.
    ExtraHosts,
    /// `ipam.config`: entries merge by subnet.
    IpamConfig,
}

fn rule(path: &[String]) -> Rule {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["services", _, "command" | "entrypoint"]
        | ["services", _, "healthcheck", "test"]
        | ["services", _, "ulimits", _] => Rule::Replace,
        ["services", _, "environment" | "labels" | "annotations" | "sysctls"]
        | ["services", _, "build", "args" | "labels" | "additional_contexts"]
        | ["services", _, "deploy", "labels"]
        | ["networks" | "volumes" | "secrets" | "configs", _, "labels"] => Rule::KeyValue,
        ["services", _, "logging"] => Rule::Logging,
        ["services", _, "models" | "networks"] => Rule::NameMap,
        ["services", _, "extra_hosts"] | ["services", _, "build", "extra_hosts"] => Rule::ExtraHosts,
        ["networks", _, "ipam", "config"] => Rule::IpamConfig,
        _ => Rule::Default,
    }
}

fn merge_node(base: Node, over: Node, path: &mut Vec<String>) -> Result<Node> {
    if over.tag != Tag::None || base.tag == Tag::Reset {
        return Ok(over);
    }
    match rule(path) {
        Rule::Default => merge_default(base, over, path),
        Rule::Replace => Ok(over),
        Rule::KeyValue => merge_key_values(base, over, path),
        Rule::Logging => merge_logging(base, over, path),
        Rule::NameMap => merge_default(name_map(base), name_map(over), path),
        Rule::ExtraHosts => merge_extra_hosts(base, over, path),
        Rule::IpamConfig => merge_ipam_config(base, over, path),
    }
}

fn merge_default(mut base: Node, over: Node, path: &mut Vec<String>) -> Result<Node> {
    if over.is_null() {
        return Ok(base);
    }
    match (&mut base.value, over.value) {
        (Value::Map(b), Value::Map(o)) => merge_maps(b, o, path)?,
        (Value::Seq(b), Value::Seq(o)) => b.extend(o),
        (Value::Map(_) | Value::Seq(_), value) => {
            let over = Node { value, ..over };
            return Err(cannot_override(&base, &over, path));
        }
        (_, value) => return Ok(Node { value, ..over }),
    }
    base.tag = Tag::None;
    Ok(base)
}

fn merge_maps(base: &mut Map, over: Map, path: &mut Vec<String>) -> Result<()> {
    for (key, entry) in over {
        let Some(existing) = base.get_mut(&key) else {
            base.insert(key, entry);
            continue;
        };
        let placeholder = Node::new(Value::Null, existing.node.span.clone());
        let earlier = std::mem::replace(&mut existing.node, placeholder);
        path.push(key);
        let merged = merge_node(earlier, entry.node, path);
        path.pop();
        existing.node = merged?;
    }
    Ok(())
}

fn cannot_override(base: &Node, over: &Node, path: &[String]) -> Error {
    let message = format!("cannot override {} with {}", base.kind(), over.kind());
    Error::at(over.span.clone(), Some(path.join(".")), message)
}

/// `KEY: value` mappings: later entries replace earlier ones, even with `null`.
fn merge_key_values(mut base: Node, over: Node, path: &mut Vec<String>) -> Result<Node> {
    match (&mut base.value, over.value) {
        (Value::Map(b), Value::Map(o)) => {
            for (key, entry) in o {
                match b.get_mut(&key) {
                    Some(existing) => existing.node = entry.node,
                    None => {
                        b.insert(key, entry);
                    }
                }
            }
            base.tag = Tag::None;
            Ok(base)
        }
        (_, value) => merge_default(base, Node { value, ..over }, path),
    }
}

/// Logging options merge only when both trees name the same driver (or one names none).
fn merge_logging(base: Node, over: Node, path: &mut Vec<String>) -> Result<Node> {
    let driver = |n: &Node| n.get("driver").and_then(Node::scalar_text);
    if let (Some(earlier), Some(later)) = (driver(&base), driver(&over)) {
        if earlier != later {
            return Ok(over);
        }
    }
    merge_default(base, over, path)
}

/// A list of names as a mapping of name → null (service `models` and `networks`).
fn name_map(mut node: Node) -> Node {
    let Value::Seq(items) = &node.value else {
        return node;
    };
    let mut map = Map::new();
    for item in items {
        if let Some(name) = item.scalar_text() {
            let span = item.span.clone();
            let value = Node::new(Value::Null, span.clone());
            map.insert(name, crate::yaml::Entry { key_span: span, node: value });
        }
    }
    node.value = Value::Map(map);
    node
}

/// Appends the later entries the earlier list does not already hold.
fn merge_extra_hosts(mut base: Node, over: Node, path: &mut Vec<String>) -> Result<Node> {
    match (&mut base.value, over.value) {
        (Value::Seq(b), Value::Seq(o)) => {
            let earlier = b.len();
            for item in o {
                if !b[..earlier].iter().any(|x| x.value == item.value) {
                    b.push(item);
                }
            }
            base.tag = Tag::None;
            Ok(base)
        }
        (_, value) => merge_default(base, Node { value, ..over }, path),
    }
}

/// IPAM pools with the same subnet merge (the earlier position is kept); others are appended.
fn merge_ipam_config(mut base: Node, over: Node, path: &mut Vec<String>) -> Result<Node> {
    let subnet = |n: &Node| n.get("subnet").and_then(Node::scalar_text);
    match (&mut base.value, over.value) {
        (Value::Seq(b), Value::Seq(o)) => {
            for item in o {
                let key = subnet(&item);
                let found = key.and_then(|k| b.iter().position(|x| subnet(x).as_ref() == Some(&k)));
                let Some(i) = found else {
                    b.push(item);
                    continue;
                };
                let placeholder = Node::new(Value::Null, b[i].span.clone());
                let earlier = std::mem::replace(&mut b[i], placeholder);
                path.push(format!("[{i}]"));
                let merged = merge_node(earlier, item, path);
                path.pop();
                b[i] = merged?;
            }
            base.tag = Tag::None;
            Ok(base)
        }
        (_, value) => merge_default(base, Node { value, ..over }, path),
    }
}

/// What identifies an item of a keyed list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    /// A string's text before the first `=`.
    BeforeEquals,
    /// A mount's or device's `target`.
    Target,
    /// A secret's or config's `target`, else the source under the given directory.
    Mount(&'static str),
    /// The value as text.
    Text,
    /// A port: host IP, published port, target and protocol.
    Port,
    /// An env file's `path`.
    Path,
}

fn list_key(path: &[String]) -> Option<Key> {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let key = match p.as_slice() {
        ["services", _, "annotations" | "environment" | "labels" | "sysctls"]
        | ["services", _, "cap_add" | "cap_drop" | "dns" | "dns_opt" | "dns_search"]
        | ["services", _, "links" | "profiles" | "tmpfs"]
        | ["services", _, "build", "args" | "additional_contexts" | "labels"]
        | ["services", _, "build", "platform" | "platforms" | "tags"]
        | ["services", _, "deploy", "labels"]
        | ["services", _, "networks", _, "aliases" | "link_local_ips"]
        | ["networks", _, "labels"]
        | ["networks", _, "ipam", "options"] => Key::BeforeEquals,
        ["services", _, "volumes" | "devices"] => Key::Target,
        ["services", _, "secrets"] => Key::Mount("/run/secrets"),
        ["services", _, "configs"] => Key::Mount(""),
        ["services", _, "expose"] => Key::Text,
        ["services", _, "ports"] => Key::Port,
        ["services", _, "env_file"] => Key::Path,
        _ => return None,
    };
    Some(key)
}

fn item_key(key: Key, item: &Node) -> Option<String> {
    if item.tag == Tag::Reset {
        return None;
    }
    let field = |name: &str| item.get(name).and_then(Node::scalar_text);
    match key {
        Key::BeforeEquals => item.scalar_text().map(|t| t.split_once('=').map_or(t.clone(), |(k, _)| k.to_string())),
        Key::Target => field("target").or_else(|| item.scalar_text()),
        Key::Mount(dir) => field("target")
            .or_else(|| field("source").map(|s| format!("{dir}/{s}")))
            .or_else(|| item.scalar_text().map(|s| format!("{dir}/{s}"))),
        Key::Text => item.scalar_text(),
        Key::Port => port_key(item),
        Key::Path => field("path").or_else(|| item.scalar_text()),
    }
}

fn port_key(item: &Node) -> Option<String> {
    if item.as_map().is_none() {
        return item.scalar_text();
    }
    let field = |name: &str, default: &str| {
        let value = item.get(name).and_then(Node::scalar_text);
        value.unwrap_or_else(|| default.to_string())
    };
    let target = item.get("target").and_then(Node::scalar_text)?;
    let host = field("host_ip", "0.0.0.0");
    let published = field("published", "");
    let protocol = field("protocol", "tcp");
    Some(format!("{host}:{published}:{target}/{protocol}"))
}

/// Applies [`list_key`] rules to every keyed list in the tree (lists are not descended into).
fn dedupe_tree(node: &mut Node, path: &mut Vec<String>) {
    match &mut node.value {
        Value::Map(map) => {
            // Keyed lists sit under `services` or `networks`, at most five keys deep.
            if path.len() >= 5 {
                return;
            }
            for (key, entry) in map.iter_mut() {
                if path.is_empty() && key != "services" && key != "networks" {
                    continue;
                }
                path.push(key.clone());
                dedupe_tree(&mut entry.node, path);
                path.pop();
            }
        }
        Value::Seq(items) if items.len() > 1 => {
            if let Some(key) = list_key(path) {
                *items = dedupe(std::mem::take(items), key);
            }
        }
        _ => {}
    }
}

/// One item per key: the first position, the last value. Items without a key are all kept.
fn dedupe(items: Vec<Node>, key: Key) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::with_capacity(items.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in items {
        match item_key(key, &item) {
            Some(k) => match seen.get(&k) {
                Some(&i) => out[i] = item,
                None => {
                    seen.insert(k, out.len());
                    out.push(item);
                }
            },
            None => out.push(item),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::canonicalize;
    use serde_json::json;

    fn load(text: &str) -> Node {
        let mut node = crate::yaml::parse(text, "test.yaml").expect("valid YAML").remove(0);
        canonicalize(&mut node).expect("canonical");
        node
    }

    fn merged(base: &str, over: &str) -> serde_json::Value {
        let mut node = merge(load(base), load(over), "").expect("merge");
        strip_tags(&mut node);
        node.to_json()
    }

    fn service(base: &str, over: &str) -> serde_json::Value {
        merged(base, over)["services"]["web"].clone()
    }

    #[test]
    fn scalars_replace_and_null_keeps_the_earlier_value() {
        let web =
            service("services: {web: {image: a, user: root, scale: 1}}", "services: {web: {image: b, user: null}}");
        assert_eq!(web, json!({"image": "b", "user": "root", "scale": 1}));
    }

    #[test]
    fn reset_removes_the_key_and_override_replaces() {
        let web = service(
            "services: {web: {image: a, command: run, ports: ['80:80'], labels: {a: '1'}}}",
            "services:\n  web:\n    command: !reset null\n    labels: !override {b: '2'}\n",
        );
        assert_eq!(web["labels"], json!({"b": "2"}));
        assert!(web.get("command").is_none(), "{web}");
        assert_eq!(web["ports"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn reset_marker_survives_a_merge_until_stripped() {
        let first = load("services: {web: {image: a, command: run}}");
        let second = load("services:\n  web:\n    command: !reset\n");
        let third = load("services: {web: {image: c}}");
        let mut node = merge(first, second, "").unwrap();
        node = merge(node, third, "").unwrap();
        strip_tags(&mut node);
        assert_eq!(node.to_json()["services"]["web"], json!({"image": "c"}));
    }

    fn svc(file: &Node, name: &str) -> Node {
        file.get("services").and_then(|s| s.get(name)).expect("service").clone()
    }

    fn set_service(file: &mut Node, name: &str, service: Node) {
        let services = file.as_map_mut().and_then(|m| m.get_mut("services")).expect("services");
        let map = services.node.as_map_mut().expect("mapping");
        map.get_mut(name).expect("service").node = service;
    }

    #[test]
    fn reset_in_an_extending_service_applies_to_earlier_files() {
        let base = load("services: {b: {command: base, image: x}}");
        let web = load("services:\n  web:\n    command: !reset\n");
        let extended = merge(svc(&base, "b"), svc(&web, "web"), "services.web").unwrap();
        let earlier = load("services: {web: {command: earlier}}");
        let mut file = load("services: {web: {}}");
        set_service(&mut file, "web", extended);
        let mut node = merge(earlier, file, "").unwrap();
        strip_tags(&mut node);
        assert_eq!(node.to_json()["services"]["web"], json!({"image": "x"}));
    }

    #[test]
    fn extends_ignores_tags_of_the_base_service() {
        let base = load("services:\n  b:\n    ports: !override ['80:80']\n    user: !reset\n");
        let over = load("services: {web: {ports: ['81:81'], user: me}}");
        let mut node = merge(svc(&base, "b"), svc(&over, "web"), "services.web").unwrap();
        strip_tags(&mut node);
        let json = node.to_json();
        assert_eq!(json["ports"].as_array().map(Vec::len), Some(2));
        assert_eq!(json["user"], json!("me"));
    }

    #[test]
    fn reset_list_item_is_removed() {
        let web =
            service("services: {web: {dns: [1.1.1.1]}}", "services:\n  web:\n    dns: [8.8.8.8, !reset 9.9.9.9]\n");
        assert_eq!(web["dns"], json!(["1.1.1.1", "8.8.8.8"]));
    }

    #[test]
    fn command_entrypoint_and_healthcheck_test_replace() {
        let web = service(
            "services: {web: {command: [a, b], entrypoint: x, healthcheck: {test: [CMD, a], retries: 3}}}",
            "services: {web: {command: c, entrypoint: [y], healthcheck: {test: ok}}}",
        );
        assert_eq!(web["command"], json!(["c"]));
        assert_eq!(web["entrypoint"], json!(["y"]));
        assert_eq!(web["healthcheck"], json!({"test": ["CMD-SHELL", "ok"], "retries": 3}));
    }

    #[test]
    fn plain_lists_append_without_dedup() {
        let web = service(
            "services: {web: {security_opt: [a, b], group_add: [g]}}",
            "services: {web: {security_opt: [b], group_add: [g]}}",
        );
        assert_eq!(web["security_opt"], json!(["a", "b", "b"]));
        assert_eq!(web["group_add"], json!(["g", "g"]));
    }

    #[test]
    fn ports_are_unique_by_address_and_protocol() {
        let web = service(
            "services: {web: {ports: ['8080:80', '127.0.0.1:9000:90', '53:53/udp']}}",
            "services: {web: {ports: ['8080:80', '9000:90', '53:53/tcp', '53:53/udp']}}",
        );
        let keys: Vec<String> = web["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| format!("{}:{}:{}", p["host_ip"], p["published"], p["protocol"]))
            .collect();
        let expected = [
            r#"null:"8080":"tcp""#,
            r#""127.0.0.1":"9000":"tcp""#,
            r#"null:"53":"udp""#,
            r#"null:"9000":"tcp""#,
            r#"null:"53":"tcp""#,
        ];
        assert_eq!(keys, expected);
    }

    #[test]
    fn volumes_and_devices_replace_by_target_in_place() {
        let web = service(
            "services: {web: {volumes: ['a:/a', 'b:/b'], devices: ['/dev/x:/dev/x']}}",
            "services: {web: {volumes: ['c:/a', 'd:/d'], devices: ['/dev/y:/dev/x']}}",
        );
        let sources: Vec<&str> =
            web["volumes"].as_array().unwrap().iter().map(|v| v["source"].as_str().unwrap()).collect();
        assert_eq!(sources, ["c", "b", "d"]);
        assert_eq!(web["devices"][0]["source"], json!("/dev/y"));
        assert_eq!(web["devices"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn secrets_and_configs_are_keyed_by_target_or_source() {
        let web = service(
            "services: {web: {secrets: [s, t], configs: [c]}}",
            "services: {web: {secrets: [{source: u, target: /run/secrets/s}, t], configs: [{source: c, target: /c}]}}",
        );
        assert_eq!(web["secrets"], json!([{"source": "u", "target": "/run/secrets/s"}, {"source": "t"}]));
        assert_eq!(web["configs"], json!([{"source": "c", "target": "/c"}]));
    }

    #[test]
    fn env_file_and_string_lists_keep_the_first_position() {
        let web = service(
            "services: {web: {env_file: [a.env, b.env], cap_add: [X, Y], profiles: [p], tmpfs: /t}}",
            "services: {web: {env_file: [{path: a.env, required: false}], cap_add: [Y, Z], profiles: [p, q], tmpfs: [/u, /t]}}",
        );
        assert_eq!(web["env_file"], json!([{"path": "a.env", "required": false}, {"path": "b.env"}]));
        assert_eq!(web["cap_add"], json!(["X", "Y", "Z"]));
        assert_eq!(web["profiles"], json!(["p", "q"]));
        assert_eq!(web["tmpfs"], json!(["/t", "/u"]));
    }

    #[test]
    fn expose_and_aliases_are_unique() {
        let web = service(
            "services: {web: {expose: [80, '81'], networks: {n: {aliases: [a]}}}}",
            "services: {web: {expose: ['80', 82], networks: {n: {aliases: [a, b]}, m: null}}}",
        );
        assert_eq!(web["expose"], json!(["80", "81", 82]));
        assert_eq!(web["networks"], json!({"n": {"aliases": ["a", "b"]}, "m": null}));
    }

    #[test]
    fn key_value_null_replaces_but_mapping_null_keeps() {
        let web = service(
            "services: {web: {environment: {A: '1', B: '2'}, logging: {options: {a: x}}}}",
            "services: {web: {environment: {A: null}, logging: {options: {a: null}}}}",
        );
        assert_eq!(web["environment"], json!({"A": null, "B": "2"}));
        assert_eq!(web["logging"], json!({"options": {"a": "x"}}));
    }

    #[test]
    fn logging_with_another_driver_replaces() {
        let web = service(
            "services: {web: {logging: {driver: local, options: {a: x}}}}",
            "services: {web: {logging: {driver: syslog}}}",
        );
        assert_eq!(web["logging"], json!({"driver": "syslog"}));
    }

    #[test]
    fn ulimits_replace_whole_per_name() {
        let web = service(
            "services: {web: {ulimits: {nofile: {soft: 1, hard: 2}, nproc: 5}}}",
            "services: {web: {ulimits: {nofile: {soft: 3}}}}",
        );
        assert_eq!(web["ulimits"], json!({"nofile": {"soft": 3}, "nproc": {"single": 5}}));
    }

    #[test]
    fn extra_hosts_append_only_new_entries() {
        let web = service(
            "services: {web: {extra_hosts: ['a=1', 'b=2']}}",
            "services: {web: {extra_hosts: ['b=2', 'b=3', 'c=4', 'c=4']}}",
        );
        assert_eq!(web["extra_hosts"], json!(["a=1", "b=2", "b=3", "c=4", "c=4"]));
    }

    #[test]
    fn models_list_and_mapping_merge() {
        let web = service("services: {web: {models: [a]}}", "services: {web: {models: {b: {endpoint_var: X}}}}");
        assert_eq!(web["models"], json!({"a": null, "b": {"endpoint_var": "X"}}));
    }

    #[test]
    fn ipam_pools_merge_by_subnet() {
        let json = merged(
            "networks: {n: {ipam: {config: [{subnet: 10.0.0.0/8, gateway: 10.0.0.1}, {subnet: 11.0.0.0/8}]}}}",
            "networks: {n: {ipam: {config: [{subnet: 10.0.0.0/8, ip_range: 10.1.0.0/16}, {subnet: 12.0.0.0/8}]}}}",
        );
        let expected = json!([
            {"subnet": "10.0.0.0/8", "gateway": "10.0.0.1", "ip_range": "10.1.0.0/16"},
            {"subnet": "11.0.0.0/8"},
            {"subnet": "12.0.0.0/8"}
        ]);
        assert_eq!(json["networks"]["n"]["ipam"]["config"], expected);
    }

    #[test]
    fn mismatched_kinds_are_an_error() {
        let err = merge(load("services: {web: {deploy: {}}}"), load("services: {web: {deploy: [a]}}"), "").unwrap_err();
        assert_eq!(err.path.as_deref(), Some("services.web.deploy"));
        assert!(err.message.contains("cannot override a mapping with a list"), "{err}");
    }

    #[test]
    fn enforce_unicity_on_a_single_file() {
        let mut node = load("services: {web: {volumes: ['a:/a', 'b:/a'], dns: [x, x]}}");
        enforce_unicity(&mut node, "");
        let web = node.to_json()["services"]["web"].clone();
        assert_eq!(web["volumes"].as_array().map(Vec::len), Some(1));
        assert_eq!(web["dns"], json!(["x"]));
    }

    #[test]
    fn service_names_may_contain_dots() {
        let base = load("services: {a.b: {command: x}}");
        let over = load("services: {a.b: {command: [y]}}");
        let node = merge(svc(&base, "a.b"), svc(&over, "a.b"), "services.a.b").unwrap();
        assert_eq!(node.to_json(), json!({"command": ["y"]}));
    }
}
