//! The configuration hash that decides when a container must be recreated, and a diff that
//! says which key changed.
//!
//! Like Docker Compose, the hash covers the service definition minus the keys that never
//! require a new container: how it is built and pulled, how many replicas run, what it
//! depends on, its profiles, and the development `watch` rules.

use berth_compose::model::Service;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The part of a service definition that, when it changes, requires a new container.
pub fn hashed_config(service: &Service) -> Value {
    let mut s = service.clone();
    s.build = None;
    s.pull_policy = None;
    s.pull_refresh_after = None;
    s.scale = None;
    if let Some(d) = &mut s.deploy {
        d.replicas = None;
    }
    s.depends_on.clear();
    s.profiles.clear();
    s.develop = None;
    serde_json::to_value(&s).expect("services serialize")
}

/// The hex SHA-256 of [`hashed_config`] in its JSON form.
pub fn config_hash(service: &Service) -> String {
    let json = serde_json::to_vec(&hashed_config(service)).expect("json");
    hex::encode(Sha256::digest(json))
}

/// The key paths where two configurations differ (`environment.FOO`, `ports[0]`), sorted,
/// at most `limit` of them.
pub fn diff_paths(old: &Value, new: &Value, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    walk(old, new, String::new(), &mut out);
    out.sort();
    out.truncate(limit);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(old: &Value, new: &Value, path: String, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    Some(vb) => walk(va, vb, join(&path, k), out),
                    None => out.push(join(&path, k)),
                }
            }
            out.extend(b.keys().filter(|k| !a.contains_key(*k)).map(|k| join(&path, k)));
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                walk(va, vb, format!("{path}[{i}]"), out);
            }
        }
        _ if old != new => out.push(if path.is_empty() { "(all)".into() } else { path }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replicas_and_dependencies_do_not_change_the_hash() {
        let mut a = Service { image: Some("busybox".into()), ..Service::default() };
        let h = config_hash(&a);
        a.scale = Some(3);
        a.profiles = vec!["debug".into()];
        a.depends_on.insert("db".into(), Default::default());
        assert_eq!(config_hash(&a), h);
        a.environment.insert("FOO".into(), Some("1".into()));
        assert_ne!(config_hash(&a), h);
    }

    #[test]
    fn diff_names_the_changed_keys() {
        let old = json!({"image": "a", "environment": {"FOO": "1", "BAR": "x"}, "ports": [1, 2]});
        let new = json!({"image": "a", "environment": {"FOO": "2", "BAR": "x", "NEW": "y"}, "ports": [1, 3]});
        assert_eq!(diff_paths(&old, &new, 10), ["environment.FOO", "environment.NEW", "ports[1]"]);
        assert_eq!(diff_paths(&old, &new, 1), ["environment.FOO"]);
    }
}
