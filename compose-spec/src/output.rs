//! Renders a project like `docker compose config`: JSON with `x-` extensions inline again,
//! and a small YAML writer for that JSON (block style, quoting only where YAML needs it).

use serde_json::Value as J;

use crate::de::EXTENSIONS_FIELD;
use crate::model::Project;
use crate::yaml::{resolve_plain, Value};

/// The project as JSON, with each object's `x-` keys back in place.
pub fn project_json(project: &Project) -> J {
    let mut v = serde_json::to_value(project).expect("the model serializes");
    inline_extensions(&mut v);
    v
}

/// Moves the entries of every `__ext` member into its parent object.
pub fn inline_extensions(v: &mut J) {
    match v {
        J::Object(map) => {
            if let Some(J::Object(ext)) = map.shift_remove(EXTENSIONS_FIELD) {
                for (k, x) in ext {
                    map.insert(k, x);
                }
            }
            map.values_mut().for_each(inline_extensions);
        }
        J::Array(items) => items.iter_mut().for_each(inline_extensions),
        _ => {}
    }
}

/// Writes JSON as block-style YAML.
pub fn to_yaml(v: &J) -> String {
    let mut out = String::new();
    match v {
        J::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        J::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_map(out: &mut String, m: &serde_json::Map<String, J>, level: usize) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            indent(out, level);
        }
        out.push_str(&quote_if_needed(k));
        out.push(':');
        write_value_after_key(out, v, level);
    }
}

fn write_value_after_key(out: &mut String, v: &J, level: usize) {
    match v {
        J::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_map(out, m, level + 2);
        }
        J::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_seq(out, a, level + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, level + 2));
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, a: &[J], level: usize) {
    for v in a {
        indent(out, level);
        out.push_str("- ");
        match v {
            J::Object(m) if !m.is_empty() => write_map(out, m, level + 2),
            J::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, level + 2);
            }
            other => {
                out.push_str(&scalar(other, level + 2));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &J, level: usize) -> String {
    match v {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => n.to_string(),
        J::String(s) => string(s, level),
        J::Object(_) => "{}".into(),
        J::Array(_) => "[]".into(),
    }
}

fn string(s: &str, level: usize) -> String {
    if s.contains('\n') && !s.contains('\r') && !s.starts_with([' ', '\t']) && !s.ends_with("\n\n") {
        let (head, body) = if let Some(b) = s.strip_suffix('\n') { ("|", b) } else { ("|-", s) };
        let mut out = head.to_string();
        for line in body.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                indent(&mut out, level);
                out.push_str(line);
            }
        }
        return out;
    }
    quote_if_needed(s)
}

/// Quotes a string when plain YAML would read it as something else.
pub fn quote_if_needed(s: &str) -> String {
    if needs_quotes(s) {
        serde_json::to_string(s).expect("strings serialize")
    } else {
        s.to_string()
    }
}

fn needs_quotes(s: &str) -> bool {
    if s.is_empty() || !matches!(resolve_plain(s), Value::Str(_)) {
        return true;
    }
    let first = s.chars().next().expect("non-empty");
    if "-?:,[]{}#&*!|>'\"%@`~".contains(first) && !(first == '-' && s.len() > 1 && !s.starts_with("- ")) {
        return true;
    }
    if matches!(s.to_ascii_lowercase().as_str(), "yes" | "no" | "on" | "off" | "y" | "n") {
        return true;
    }
    s.starts_with(' ')
        || s.ends_with(' ')
        || s.ends_with(':')
        || s.contains(": ")
        || s.contains(" #")
        || s.chars().any(|c| c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_block_yaml() {
        let v = json!({"services": {"web": {"ports": [{"target": 80, "published": "8080"}], "command": ["-p", "3000"], "e": {}, "multi": "a\nb\n", "none": null}}});
        let y = to_yaml(&v);
        assert_eq!(
            y,
            "services:\n  web:\n    ports:\n      - target: 80\n        published: \"8080\"\n    command:\n      - -p\n      - \"3000\"\n    e: {}\n    multi: |\n      a\n      b\n    none: null\n"
        );
    }

    #[test]
    fn quoting() {
        for s in ["", "true", "yes", "1.5", "null", "a: b", "#x", "- x", " lead", "*star"] {
            assert!(needs_quotes(s), "{s:?}");
        }
        for s in ["redis", "02:42:ac:11:65:43", "tcp://1.2.3.4:5", "-p", "label=level:s0:c100,c200", "a b"] {
            assert!(!needs_quotes(s), "{s:?}");
        }
    }

    #[test]
    fn yaml_output_parses_back_to_the_same_json() {
        let v =
            json!({"a": ["x", "", "0440", {"b": "c: d", "e": [1, 2.5, true]}], "multi": "line1\nline2", "k:y": "v"});
        let back = crate::yaml::parse(&to_yaml(&v), "t").unwrap().remove(0).to_json();
        assert_eq!(back, v);
    }
}
