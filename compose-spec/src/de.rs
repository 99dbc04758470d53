//! A serde `Deserializer` over the positioned YAML tree, so the typed model reports every
//! mistake with file:line:col and the key path.
//!
//! It is lenient with scalars the way Compose is after interpolation (`"8080"` reads as a
//! number, `"true"` as a boolean) and strict with keys: a key a struct does not declare is
//! an error with a suggestion, except `x-` extensions, which go to the struct's `__ext`
//! field when it has one.

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use crate::error::Error;
use crate::yaml::{Node, Value};

impl de::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::msg(msg.to_string())
    }

    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        let got = match unexp {
            de::Unexpected::Str(_) => "a string".to_string(),
            de::Unexpected::Map => "a mapping".to_string(),
            de::Unexpected::Seq => "a list".to_string(),
            de::Unexpected::Unit => "null".to_string(),
            de::Unexpected::Bool(_) => "a boolean".to_string(),
            de::Unexpected::Signed(_) | de::Unexpected::Unsigned(_) => "an integer".to_string(),
            de::Unexpected::Float(_) => "a number".to_string(),
            other => other.to_string(),
        };
        Error::msg(format!("must be {exp}, not {got}"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Error::msg(format!("unknown value {variant:?}, expected one of: {}", expected.join(", ")))
    }

    fn missing_field(field: &'static str) -> Self {
        Error::msg(format!("missing required key `{field}`"))
    }
}

/// The name of the struct field that receives `x-` extension keys.
pub const EXTENSIONS_FIELD: &str = "__ext";

/// Deserializes a `T` from `node`; `path` is the key path of `node` (e.g. `services.web`).
pub fn from_node<'a, T: serde::Deserialize<'a>>(node: &'a Node, path: &str) -> Result<T, Error> {
    T::deserialize(NodeDe { node, path: path.to_string() })
}

/// The deserializer for one node.
pub struct NodeDe<'a> {
    /// The node.
    pub node: &'a Node,
    /// Its key path.
    pub path: String,
}

impl<'a> NodeDe<'a> {
    fn locate(&self, e: Error) -> Error {
        if e.span.is_some() {
            return e;
        }
        let mut e = e.with_path(&self.path);
        e.span = Some(self.node.span.clone());
        e
    }

    fn text(&self) -> Option<String> {
        self.node.scalar_text()
    }

    fn child(&self, node: &'a Node, key: &str) -> NodeDe<'a> {
        let mut path = String::with_capacity(self.path.len() + key.len() + 1);
        path.push_str(&self.path);
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        NodeDe { node, path }
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "on" => Some(true),
        "false" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn out_of_range(value: &str, min: impl std::fmt::Display, max: impl std::fmt::Display) -> Error {
    Error::msg(format!("{value} is out of range: must be from {min} to {max}"))
}

macro_rules! int_method {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
            let r = match &self.node.value {
                Value::Int(i) => match <$ty>::try_from(*i) {
                    Ok(v) => visitor.$visit(v),
                    Err(_) => Err(out_of_range(&i.to_string(), <$ty>::MIN, <$ty>::MAX)),
                },
                Value::Str(s) => match s.trim().parse::<$ty>() {
                    Ok(v) => visitor.$visit(v),
                    Err(_) if is_integer(s.trim()) => Err(out_of_range(s.trim(), <$ty>::MIN, <$ty>::MAX)),
                    Err(_) => Err(Error::msg(format!("must be an integer, not {s:?}"))),
                },
                Value::Float(f) if f.fract() == 0.0 => visitor.$visit(*f as $ty),
                _ => Err(Error::msg(format!("must be an integer, not {}", self.node.kind()))),
            };
            r.map_err(|e| self.locate(e))
        }
    };
}

impl<'a> de::Deserializer<'a> for NodeDe<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Seq(items) => visitor.visit_seq(Seq { items, index: 0, parent: &self }),
            Value::Map(_) => visitor.visit_map(self.map_access(None)),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Str(s) => match parse_bool(s) {
                Some(b) => visitor.visit_bool(b),
                None => Err(Error::msg(format!("must be a boolean, not {s:?}"))),
            },
            _ => Err(Error::msg(format!("must be a boolean, not {}", self.node.kind()))),
        };
        r.map_err(|e| self.locate(e))
    }

    int_method!(deserialize_i8, visit_i8, i8);
    int_method!(deserialize_i16, visit_i16, i16);
    int_method!(deserialize_i32, visit_i32, i32);
    int_method!(deserialize_i64, visit_i64, i64);
    int_method!(deserialize_u8, visit_u8, u8);
    int_method!(deserialize_u16, visit_u16, u16);
    int_method!(deserialize_u32, visit_u32, u32);
    int_method!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            Value::Int(i) => visitor.visit_f64(*i as f64),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => match s.trim().parse::<f64>() {
                Ok(f) => visitor.visit_f64(f),
                Err(_) => Err(Error::msg(format!("must be a number, not {s:?}"))),
            },
            _ => Err(Error::msg(format!("must be a number, not {}", self.node.kind()))),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_char<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match (&self.node.value, self.text()) {
            (Value::Str(s), _) => visitor.visit_borrowed_str(s),
            (_, Some(t)) => visitor.visit_string(t),
            _ => Err(Error::msg(format!("must be a string, not {}", self.node.kind()))),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            Value::Seq(items) => visitor.visit_seq(Seq { items, index: 0, parent: &self }),
            Value::Null => visitor.visit_seq(Seq { items: &[], index: 0, parent: &self }),
            _ => Err(Error::msg(format!("must be a list, not {}", self.node.kind()))),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_tuple<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            Value::Map(_) => visitor.visit_map(self.map_access(None)),
            Value::Null => visitor.visit_map(Entries::empty(&self)),
            _ => Err(Error::msg(format!("must be a mapping, not {}", self.node.kind()))),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if self.node.is_null() {
            return visitor.visit_map(Entries::empty(&self)).map_err(|e| self.locate(e));
        }
        let Value::Map(map) = &self.node.value else {
            let e = Error::msg(format!("must be a mapping, not {}", self.node.kind()));
            return Err(self.locate(e));
        };
        for (key, entry) in map {
            if fields.contains(&key.as_str()) || key.starts_with("x-") {
                continue;
            }
            let path = if self.path.is_empty() { key.clone() } else { format!("{}.{key}", self.path) };
            let mut e = Error::at(entry.key_span.clone(), Some(path), format!("unknown key `{key}`"));
            let known: Vec<&str> = fields.iter().copied().filter(|f| *f != EXTENSIONS_FIELD).collect();
            if let Some(near) = closest(key, &known) {
                e = e.with_hint(format!("did you mean `{near}`?"));
            }
            return Err(e);
        }
        let ext = fields.contains(&EXTENSIONS_FIELD);
        visitor.visit_map(self.map_access(Some(ext))).map_err(|e| self.locate(e))
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let r = match self.text() {
            Some(t) => visitor.visit_enum(t.into_deserializer()),
            None => Err(Error::msg(format!("must be a string, not {}", self.node.kind()))),
        };
        r.map_err(|e: Error| self.locate(e))
    }

    fn deserialize_identifier<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

impl<'a> NodeDe<'a> {
    /// Map access; `struct_ext` is `Some(has_ext_field)` for structs, whose `x-` keys are
    /// gathered into one `__ext` entry (or dropped when the struct has no such field).
    fn map_access<'b>(&'b self, struct_ext: Option<bool>) -> Entries<'a, 'b> {
        let Value::Map(map) = &self.node.value else { unreachable!("map_access on a non-map") };
        let mut items: Vec<(&'a str, &'a Node)> = Vec::with_capacity(map.len());
        let mut ext: Vec<(&'a str, &'a Node)> = Vec::new();
        for (k, e) in map {
            match struct_ext {
                Some(_) if k.starts_with("x-") => ext.push((k.as_str(), &e.node)),
                _ => items.push((k.as_str(), &e.node)),
            }
        }
        let ext = if struct_ext == Some(true) && !ext.is_empty() { Some(ext) } else { None };
        Entries { parent: self, items, index: 0, ext, pending: Pending::None }
    }
}

enum Pending<'a> {
    None,
    Node(&'a str, &'a Node),
    Ext(Vec<(&'a str, &'a Node)>),
}

struct Entries<'a, 'b> {
    parent: &'b NodeDe<'a>,
    items: Vec<(&'a str, &'a Node)>,
    index: usize,
    ext: Option<Vec<(&'a str, &'a Node)>>,
    pending: Pending<'a>,
}

impl<'a, 'b> Entries<'a, 'b> {
    fn empty(parent: &'b NodeDe<'a>) -> Self {
        Entries { parent, items: Vec::new(), index: 0, ext: None, pending: Pending::None }
    }
}

impl<'a> MapAccess<'a> for Entries<'a, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        if let Some(&(k, n)) = self.items.get(self.index) {
            self.index += 1;
            self.pending = Pending::Node(k, n);
            return seed.deserialize(k.into_deserializer()).map(Some);
        }
        if let Some(ext) = self.ext.take() {
            self.pending = Pending::Ext(ext);
            return seed.deserialize(EXTENSIONS_FIELD.into_deserializer()).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::Node(k, n) => {
                let child = self.parent.child(n, k);
                let (span, path) = (n.span.clone(), child.path.clone());
                seed.deserialize(child).map_err(|e| locate_at(e, span, &path))
            }
            Pending::Ext(ext) => {
                let map: serde_json::Map<String, serde_json::Value> =
                    ext.into_iter().map(|(k, n)| (k.to_string(), n.to_json())).collect();
                seed.deserialize(serde_json::Value::Object(map)).map_err(|e| Error::msg(e.to_string()))
            }
            Pending::None => Err(Error::msg("value requested before key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.index)
    }
}

struct Seq<'a, 'b> {
    items: &'a [Node],
    index: usize,
    parent: &'b NodeDe<'a>,
}

impl<'a> SeqAccess<'a> for Seq<'a, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'a>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        let Some(node) = self.items.get(self.index) else { return Ok(None) };
        let path = index_path(&self.parent.path, self.index);
        self.index += 1;
        let span = node.span.clone();
        seed.deserialize(NodeDe { node, path: path.clone() }).map(Some).map_err(|e| locate_at(e, span, &path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.index)
    }
}

fn index_path(parent: &str, index: usize) -> String {
    use std::fmt::Write;
    let mut path = String::with_capacity(parent.len() + 6);
    path.push_str(parent);
    let _ = write!(path, "[{index}]");
    path
}

/// Gives an error without a position the position and path of the value being read.
fn locate_at(e: Error, span: crate::yaml::Span, path: &str) -> Error {
    if e.span.is_some() {
        return e;
    }
    let mut e = e.with_path(path);
    e.span = Some(span);
    e
}

/// The known name closest to `word`, if it is close enough to be a likely typo.
pub fn closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    #[derive(serde::Deserialize, Debug)]
    struct S {
        image: Option<String>,
        replicas: Option<u32>,
        tty: Option<bool>,
        #[serde(rename = "__ext", default)]
        ext: serde_json::Map<String, serde_json::Value>,
    }

    #[test]
    fn lenient_scalars_and_extensions() {
        let n = parse("image: 12\nreplicas: \"3\"\ntty: \"true\"\nx-a: 1\n", "f").unwrap().remove(0);
        let s: S = from_node(&n, "services.web").unwrap();
        assert_eq!(s.image.as_deref(), Some("12"));
        assert_eq!(s.replicas, Some(3));
        assert_eq!(s.tty, Some(true));
        assert_eq!(s.ext["x-a"], serde_json::json!(1));
    }

    #[test]
    fn unknown_key_is_located_with_hint() {
        let n = parse("imag: x\n", "f.yaml").unwrap().remove(0);
        let e = from_node::<S>(&n, "services.web").unwrap_err();
        assert_eq!(e.to_string(), "f.yaml:1:1: services.web.imag: unknown key `imag`");
        assert_eq!(e.hint.as_deref(), Some("did you mean `image`?"));
    }

    #[test]
    fn type_errors_are_located() {
        let n = parse("image: x\nreplicas: lots\n", "f.yaml").unwrap().remove(0);
        let e = from_node::<S>(&n, "services.web").unwrap_err();
        assert_eq!(e.to_string(), "f.yaml:2:11: services.web.replicas: must be an integer, not \"lots\"");
    }
}
