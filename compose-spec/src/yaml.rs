//! YAML text → a tree of [`Node`]s that remember file, line and column.
//!
//! Resolves anchors and aliases, merge keys (`<<`, single and list form), rejects duplicate
//! keys, and keeps Compose's `!reset` / `!override` tags on the nodes that carry them.
//! Plain scalars are typed with the YAML 1.2 core schema (as Docker Compose's parser does):
//! `null`/`~`/empty, `true`/`false`, integers (decimal, `0o`, `0x`), floats; everything else,
//! and every quoted scalar, is a string.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use saphyr_parser::{Event, Parser, ScalarStyle, SpannedEventReceiver};

use crate::error::Error;

/// Where a node starts: file, 1-based line and 1-based column.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// The file as the user named it (or `-` for standard input).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

impl Span {
    /// A span for values that do not come from a file (defaults, command-line options).
    pub fn synthetic(what: &str) -> Span {
        Span { file: Arc::from(what), line: 0, col: 0 }
    }

    /// True for spans made by [`Span::synthetic`].
    pub fn is_synthetic(&self) -> bool {
        self.line == 0
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_synthetic() {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.col)
        }
    }
}

/// Compose's merge tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tag {
    /// No tag.
    #[default]
    None,
    /// `!reset`: remove the value inherited from earlier files or `extends`.
    Reset,
    /// `!override`: replace the inherited value instead of merging into it.
    Override,
}

/// A mapping entry: the key's position and the value.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Where the key is written.
    pub key_span: Span,
    /// The value.
    pub node: Node,
}

/// A mapping, in document order.
pub type Map = IndexMap<String, Entry>;

/// A YAML value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping.
    Map(Map),
}

/// A value with its position and Compose tag.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it starts.
    pub span: Span,
    /// `!reset` / `!override`, if written.
    pub tag: Tag,
}

impl Node {
    /// A node without a tag.
    pub fn new(value: Value, span: Span) -> Node {
        Node { value, span, tag: Tag::None }
    }

    /// A string node.
    pub fn str(s: impl Into<String>, span: Span) -> Node {
        Node::new(Value::Str(s.into()), span)
    }

    /// The mapping inside, if this is one.
    pub fn as_map(&self) -> Option<&Map> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The mapping inside, mutably.
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The sequence inside, if this is one.
    pub fn as_seq(&self) -> Option<&Vec<Node>> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The string inside, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar as text (numbers and booleans formatted as YAML writes them); `None` for
    /// null, sequences and mappings.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(format_float(*f)),
            _ => None,
        }
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The value of `key` when this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key)).map(|e| &e.node)
    }

    /// A short name for the kind of value, for messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Converts to JSON, dropping positions and tags.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(s) => J::Array(s.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, e)| (k.clone(), e.node.to_json())).collect()),
        }
    }

    /// Builds a node from JSON, giving every node `span`.
    pub fn from_json(v: &serde_json::Value, span: &Span) -> Node {
        use serde_json::Value as J;
        let value = match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => Value::Str(s.clone()),
            J::Array(a) => Value::Seq(a.iter().map(|x| Node::from_json(x, span)).collect()),
            J::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, x)| {
                        let entry = Entry { key_span: span.clone(), node: Node::from_json(x, span) };
                        (k.clone(), entry)
                    })
                    .collect(),
            ),
        };
        Node::new(value, span.clone())
    }
}

/// Formats a float the way YAML readers expect (`1.5`, `2.0` stays `2`).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        }
    } else {
        let s = f.to_string();
        s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
    }
}

/// Parses YAML text into one node per document. `file` names the source in positions.
pub fn parse(text: &str, file: &str) -> Result<Vec<Node>, Error> {
    let file: Arc<str> = Arc::from(file);
    let mut builder = Builder {
        file: file.clone(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        error: None,
        expanded: 0,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        let span = Span { file, line: m.line() as u32, col: m.col() as u32 + 1 };
        return Err(Error::at(span, None, format!("invalid YAML: {}", e.info())));
    }
    match builder.error {
        Some(e) => Err(e),
        None => Ok(builder.docs),
    }
}

enum Frame {
    Seq { items: Vec<Node>, span: Span, tag: Tag, anchor: usize },
    Map { map: Map, key: Option<(String, Span)>, merges: Vec<Node>, span: Span, tag: Tag, anchor: usize },
}

struct Builder {
    file: Arc<str>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    /// Values copied in by aliases so far, to refuse alias bombs.
    expanded: usize,
    docs: Vec<Node>,
    error: Option<Error>,
}

fn compose_tag(tag: Option<&saphyr_parser::Tag>) -> Tag {
    match tag {
        Some(t) if t.handle == "!" && t.suffix == "reset" => Tag::Reset,
        Some(t) if t.handle == "!" && t.suffix == "override" => Tag::Override,
        _ => Tag::None,
    }
}

impl Builder {
    fn span(&self, s: &saphyr_parser::Span) -> Span {
        Span { file: self.file.clone(), line: s.start.line() as u32, col: s.start.col() as u32 + 1 }
    }

    fn fail(&mut self, span: Span, message: String) {
        if self.error.is_none() {
            self.error = Some(Error::at(span, None, message));
        }
    }

    /// Places a finished node into its parent (or as a document).
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { map, key, merges, .. }) => match key.take() {
                None => {
                    let Some(name) = node.scalar_text().or_else(|| node.is_null().then(String::new)) else {
                        let span = node.span.clone();
                        self.fail(span, "mapping keys must be strings, not lists or mappings".into());
                        return;
                    };
                    if name != "<<" {
                        if let Some(prev) = map.get(&name) {
                            let line = prev.key_span.line;
                            let span = node.span.clone();
                            self.fail(span, format!("mapping key {name:?} already defined at line {line}"));
                            return;
                        }
                    }
                    *key = Some((name, node.span));
                }
                Some((name, key_span)) => {
                    if name == "<<" {
                        merges.push(node);
                    } else {
                        map.insert(name, Entry { key_span, node });
                    }
                }
            },
        }
    }

    fn scalar(&self, text: &str, style: ScalarStyle, tag: Option<&saphyr_parser::Tag>, span: Span) -> Node {
        let ctag = compose_tag(tag);
        let value = match (style, tag) {
            (ScalarStyle::Plain, None) => resolve_plain(text),
            (_, Some(t)) if t.handle == "tag:yaml.org,2002:" => match t.suffix.as_str() {
                "str" => Value::Str(text.to_string()),
                "null" => Value::Null,
                _ => resolve_plain(text),
            },
            (ScalarStyle::Plain, Some(_)) if ctag == Tag::Reset && text.is_empty() => Value::Null,
            (ScalarStyle::Plain, Some(_)) => resolve_plain(text),
            _ => Value::Str(text.to_string()),
        };
        Node { value, span, tag: ctag }
    }

    fn finish_map(&mut self, mut map: Map, merges: Vec<Node>, span: Span) -> Result<Map, (Span, String)> {
        // Explicit keys win over merged ones; among merged sources, earlier ones win.
        for source in merges {
            let sources: Vec<Node> = match source.value {
                Value::Map(_) => vec![source],
                Value::Seq(items) => items,
                _ => return Err((source.span, "merge key `<<` needs a mapping or a list of mappings".into())),
            };
            for src in sources {
                let Value::Map(m) = src.value else {
                    return Err((src.span, "merge key `<<` needs a mapping or a list of mappings".into()));
                };
                for (k, e) in m {
                    map.entry(k).or_insert(e);
                }
            }
        }
        let _ = span;
        Ok(map)
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder {
    fn on_event(&mut self, ev: Event<'input>, span: saphyr_parser::Span) {
        if self.error.is_some() {
            return;
        }
        let sp = self.span(&span);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let node = self.scalar(&text, style, tag.as_deref(), sp);
                self.push(node, anchor);
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(n) => {
                    self.expanded += count_values(n);
                    if self.expanded > MAX_ALIAS_VALUES {
                        let m = format!("aliases expand to more than {MAX_ALIAS_VALUES} values; refusing the document");
                        self.fail(sp, m);
                        return;
                    }
                    let n = n.clone();
                    self.push(n, 0);
                }
                None => self.fail(sp, "alias refers to an unknown anchor".into()),
            },
            Event::SequenceStart(anchor, tag) => {
                let tag = compose_tag(tag.as_deref());
                self.stack.push(Frame::Seq { items: Vec::new(), span: sp, tag, anchor });
            }
            Event::MappingStart(anchor, tag) => {
                let tag = compose_tag(tag.as_deref());
                self.stack.push(Frame::Map { map: Map::new(), key: None, merges: Vec::new(), span: sp, tag, anchor });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { items, span, tag, anchor }) = self.stack.pop() {
                    self.push(Node { value: Value::Seq(items), span, tag }, anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { map, merges, span, tag, anchor, .. }) = self.stack.pop() {
                    match self.finish_map(map, merges, span.clone()) {
                        Ok(map) => self.push(Node { value: Value::Map(map), span, tag }, anchor),
                        Err((s, m)) => self.fail(s, m),
                    }
                }
            }
            Event::DocumentStart(_) => self.anchors.clear(),
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
}

/// How many values aliases may copy into one file (a guard against "billion laughs").
pub const MAX_ALIAS_VALUES: usize = 1_000_000;

fn count_values(n: &Node) -> usize {
    1 + match &n.value {
        Value::Seq(items) => items.iter().map(count_values).sum(),
        Value::Map(m) => m.values().map(|e| count_values(&e.node)).sum(),
        _ => 0,
    }
}

/// Types a plain scalar with the YAML 1.2 core schema.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Value::Str(text.to_string());
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Int(i);
        }
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Value::Int(i);
        }
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    // A leading zero means octal, as in YAML 1.1 and Docker Compose's parser (`mode: 0440`).
    if digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = i64::from_str_radix(digits, 8) {
            return Value::Int(if text.starts_with('-') { -i } else { i });
        }
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // An integer too large for i64 stays text, so it reaches the model digit for digit.
        return text.parse::<i64>().map(Value::Int).unwrap_or_else(|_| Value::Str(text.to_string()));
    }
    let float_like = digits.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && digits.bytes().any(|b| b.is_ascii_digit());
    if float_like {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        parse(text, "t.yaml").unwrap().remove(0)
    }

    #[test]
    fn positions_are_one_based() {
        let n = one("a:\n  b: 1\n");
        let b = n.get("a").unwrap().get("b").unwrap();
        assert_eq!((b.span.line, b.span.col), (2, 6));
        assert_eq!(b.value, Value::Int(1));
    }

    #[test]
    fn merge_keys_single_and_list() {
        let n = one("x: &x {a: 1, b: 2}\ny: &y {c: 3, a: 9}\nz:\n  <<: [*x, *y]\n  b: 5\n");
        let z = n.get("z").unwrap();
        assert_eq!(z.get("a").unwrap().value, Value::Int(1));
        assert_eq!(z.get("b").unwrap().value, Value::Int(5));
        assert_eq!(z.get("c").unwrap().value, Value::Int(3));
        let n = one("x: &x {a: 1}\nz:\n  <<: *x\n");
        assert_eq!(n.get("z").unwrap().get("a").unwrap().value, Value::Int(1));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse("a: 1\nb: 2\na: 3\n", "f.yaml").unwrap_err().to_string();
        assert!(e.contains("f.yaml:3:1"), "{e}");
        assert!(e.contains("already defined at line 1"), "{e}");
    }

    #[test]
    fn tags() {
        let n = one("a: !reset []\nb: !override {x: 1}\nc: !reset\nd: !!str 12\n");
        assert_eq!(n.get("a").unwrap().tag, Tag::Reset);
        assert_eq!(n.get("b").unwrap().tag, Tag::Override);
        assert_eq!(n.get("c").unwrap().tag, Tag::Reset);
        assert!(n.get("c").unwrap().is_null());
        assert_eq!(n.get("d").unwrap().value, Value::Str("12".into()));
    }

    #[test]
    fn core_schema() {
        assert_eq!(resolve_plain("yes"), Value::Str("yes".into()));
        assert_eq!(resolve_plain("0x1f"), Value::Int(31));
        assert_eq!(resolve_plain("1.5"), Value::Float(1.5));
        assert_eq!(resolve_plain("1e3"), Value::Float(1000.0));
        assert_eq!(resolve_plain("80:80"), Value::Str("80:80".into()));
        assert_eq!(resolve_plain("-"), Value::Str("-".into()));
        assert_eq!(resolve_plain("1.2.3"), Value::Str("1.2.3".into()));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let refs: Vec<String> = (0..9).map(|_| format!("*a{}", i - 1)).collect();
            text.push_str(&format!("a{i}: &a{i} [{}]\n", refs.join(", ")));
        }
        let e = parse(&text, "bomb.yaml").unwrap_err().to_string();
        assert!(e.contains("aliases expand to more than"), "{e}");
    }

    #[test]
    fn big_integers_stay_exact() {
        assert_eq!(resolve_plain("12345678901234567890"), Value::Str("12345678901234567890".into()));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n", "bad.yaml").unwrap_err().to_string();
        assert!(e.starts_with("bad.yaml:"), "{e}");
    }
}
