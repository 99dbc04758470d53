//! `.env` and `env_file` parsing with Docker Compose's rules (compose-go's `dotenv` package), plus
//! the literal `format: raw` env files (`docker run --env-file` rules).
//!
//! The default format ([`parse`]):
//!
//! * Statements are `KEY=VALUE`, `KEY: VALUE` (YAML-like) or `export KEY=VALUE`; spaces around the
//!   separator are ignored. Blank lines and lines whose first non-blank character is `#` are
//!   skipped. A UTF-8 byte order mark at the start is ignored.
//! * Keys are made of letters, digits, `_`, `.`, `-`, `[` and `]` (a digit may come first, and
//!   the key may be empty as in `="value"`). Any other character is an error
//!   (`unexpected character "$" in variable name "lol$wut"`), and so is a key with a space
//!   (`key cannot contain a space`).
//! * A key alone on its line (`FOO`) takes its value from the lookup function; when the lookup
//!   has no value the key is left out. Compose-go treats a bare key on the last line without a
//!   final newline as the value of an empty key; here it is a bare key like any other.
//! * Unquoted values run to the end of the line; ` #` starts a comment and trailing whitespace is
//!   dropped. Variables are expanded (see below), backslashes are kept as they are.
//! * Single-quoted values are literal (only `\'` is unescaped to `'`). Double-quoted values
//!   support `\a \b \f \n \r \t \v \" \\ \$` and `\0` followed by three octal digits (`\0123` is
//!   `S`); other backslashes are kept. Then variables are expanded, except those written `\$`.
//!   Quoted values may span several lines; anything after the closing quote on the same line is
//!   read as a comment or as the next statement.
//! * Expansion uses [`crate::interpolate`] rules (`$VAR`, `${VAR:-default}`, `${VAR:?err}`, ...).
//!   A variable is looked up first with the `lookup` function (the caller's environment wins,
//!   even over an assignment earlier in the same file), then among the values assigned earlier in
//!   the file, then with the optional `fallback` of [`parse_with_fallback`]. Unresolved variables
//!   become the empty string.
//!
//! Errors carry the 1-based line where the faulty statement starts (for an unterminated quoted
//! value, the line where the quote opens).

use std::collections::HashMap;

use indexmap::IndexMap;

use crate::interpolate::interpolate;

/// One `KEY=VALUE` assignment read from an env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The variable name.
    pub key: String,
    /// The value after unquoting, unescaping and expansion.
    pub value: String,
    /// 1-based line where the key starts.
    pub line: u32,
}

/// An env file that cannot be read; displays as `line N: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DotenvError {
    /// 1-based line of the faulty statement.
    pub line: u32,
    /// What is wrong, e.g. `key cannot contain a space` or `unterminated quoted value "abc`.
    pub message: String,
}

/// Parses dotenv text. `lookup` resolves variables not defined earlier in the file.
///
/// More precisely `lookup` is asked first, so a variable it knows wins over an earlier assignment
/// in the file (this is Docker Compose's behaviour); bare `KEY` lines take their value from
/// `lookup` only. Returns every assignment in file order, duplicates included: fold them in order
/// (e.g. with [`to_map`]) so that later entries override earlier ones.
pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Entry>, DotenvError> {
    parse_with_fallback(text, lookup, &|_| None)
}

/// Like [`parse`], with a `fallback` asked after the file's own earlier assignments when
/// expanding variables.
///
/// This gives Docker Compose's precedence when several env files are read in turn: pass the
/// environment as `lookup` and the values of the files read before as `fallback`, so a variable
/// resolves to the environment, else to this file's latest assignment, else to the previous
/// files. `fallback` is not used for bare `KEY` lines.
pub fn parse_with_fallback(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    fallback: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Entry>, DotenvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser =
        Parser { src: text, pos: 0, line: 1, lookup, fallback, assigned: HashMap::new(), entries: Vec::new() };
    parser.run()?;
    Ok(parser.entries)
}

/// `format: raw` env files: every line `KEY=VALUE` taken literally (no quotes processing, no
/// expansion), comments and blanks skipped.
///
/// Same as [`parse_raw_with_lookup`] with a lookup that knows nothing, so bare `KEY` lines are
/// left out.
pub fn parse_raw(text: &str) -> Result<Vec<Entry>, DotenvError> {
    parse_raw_with_lookup(text, &|_| None)
}

/// `format: raw` env files with the rules of `docker run --env-file`, which Docker Compose uses
/// for them.
///
/// Leading whitespace of a line is ignored; empty lines and lines starting with `#` are skipped.
/// The key runs to the first `=` and may not contain spaces or tabs, nor be empty; the value is
/// everything after the `=`, verbatim (only a final `\r` is dropped). A line without `=` is a
/// bare key that takes its value from `lookup`, and is left out when `lookup` has none. Entries
/// are returned in file order, duplicates included (later ones win).
pub fn parse_raw_with_lookup(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Entry>, DotenvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    for (index, raw_line) in text.split('\n').enumerate() {
        let line_number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line).trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (line, None),
        };
        let error = |message: String| DotenvError { line: line_number, message };
        if key.contains([' ', '\t']) {
            return Err(error(format!("variable '{key}' contains whitespaces")));
        }
        if key.is_empty() {
            return Err(error(format!("no variable name on line '{line}'")));
        }
        let value = match value {
            Some(value) => value.to_owned(),
            None => match lookup(key) {
                Some(value) => value,
                None => continue,
            },
        };
        entries.push(Entry { key: key.to_owned(), value, line: line_number });
    }
    Ok(entries)
}

/// Folds entries into a map in order: later entries for a key override earlier ones (the key
/// keeps the position of its first occurrence).
pub fn to_map(entries: &[Entry]) -> IndexMap<String, String> {
    let mut map = IndexMap::with_capacity(entries.len());
    for entry in entries {
        map.insert(entry.key.clone(), entry.value.clone());
    }
    map
}

/// Whitespace inside a line (compose-go's `isSpace`): never a line break.
fn is_inline_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}')
}

/// Characters allowed in a key besides letters and digits.
fn is_key_punctuation(c: char) -> bool {
    matches!(c, '_' | '.' | '-' | '[' | ']')
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    line: u32,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    fallback: &'a dyn Fn(&str) -> Option<String>,
    /// Latest value of each key assigned so far.
    assigned: HashMap<String, String>,
    entries: Vec<Entry>,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    /// Moves forward to byte `to`, counting the line breaks passed.
    fn advance_to(&mut self, to: usize) {
        let passed = self.src[self.pos..to].bytes().filter(|&b| b == b'\n').count();
        self.line = self.line.saturating_add(u32::try_from(passed).unwrap_or(u32::MAX));
        self.pos = to;
    }

    fn run(&mut self) -> Result<(), DotenvError> {
        while self.skip_to_statement() {
            let line = self.line;
            let (key, bare) = self.read_key()?;
            if key.contains(' ') {
                return Err(DotenvError { line, message: "key cannot contain a space".to_owned() });
            }
            let value = if bare {
                match (self.lookup)(&key) {
                    Some(value) => value,
                    None => continue,
                }
            } else {
                self.read_value(line)?
            };
            self.assigned.insert(key.clone(), value.clone());
            self.entries.push(Entry { key, value, line });
        }
        Ok(())
    }

    /// Skips whitespace and comment lines; false at the end of the text.
    fn skip_to_statement(&mut self) -> bool {
        loop {
            let Some(start) = self.rest().find(|c: char| !c.is_whitespace()) else {
                self.advance_to(self.src.len());
                return false;
            };
            self.advance_to(self.pos + start);
            if !self.rest().starts_with('#') {
                return true;
            }
            match self.rest().find('\n') {
                Some(end) => self.advance_to(self.pos + end),
                None => {
                    self.advance_to(self.src.len());
                    return false;
                }
            }
        }
    }

    /// Reads `[export ]KEY` and its separator; returns the key and whether it is a bare key
    /// (ended by a line break or the end of the text). Leaves the position at the value.
    fn read_key(&mut self) -> Result<(String, bool), DotenvError> {
        let rest = self.rest();
        if let Some(after) = rest.strip_prefix("export") {
            if after.starts_with(['\t', '\n', '\u{c}', '\r', ' ']) {
                let skipped = after.len() - after.trim_start_matches(is_inline_space).len();
                self.advance_to(self.pos + "export".len() + skipped);
            }
        }
        let rest = self.rest();
        let mut found = None;
        for (i, c) in rest.char_indices() {
            if is_inline_space(c) || is_key_punctuation(c) || c.is_alphanumeric() {
                continue;
            }
            if matches!(c, '=' | ':' | '\n') {
                found = Some((i, c));
                break;
            }
            let first_line = rest.split('\n').next().unwrap_or_default();
            return Err(DotenvError {
                line: self.line,
                message: format!("unexpected character {:?} in variable name {first_line:?}", c.to_string()),
            });
        }
        let (key_end, value_start, bare) = match found {
            Some((i, c)) => (i, i + 1, c == '\n'),
            None => (rest.len(), rest.len(), true),
        };
        let key = rest[..key_end].trim_end().to_owned();
        let after = &rest[value_start..];
        let skipped = after.len() - after.trim_start_matches(is_inline_space).len();
        self.advance_to(self.pos + value_start + skipped);
        Ok((key, bare))
    }

    /// Reads the value at the current position, up to and including its line break.
    fn read_value(&mut self, line: u32) -> Result<String, DotenvError> {
        let rest = self.rest();
        let quote = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => {
                let (raw, consumed) = match rest.find('\n') {
                    Some(n) => (&rest[..n], n + 1),
                    None => (rest, rest.len()),
                };
                let raw = raw.split(" #").next().unwrap_or_default().trim_end();
                let value = self.expand(raw, line)?;
                self.advance_to(self.pos + consumed);
                return Ok(value);
            }
        };
        let mut chars = String::new();
        let mut escaped = false;
        for (i, c) in rest.char_indices().skip(1) {
            if c != quote {
                if !escaped && c == '\\' {
                    escaped = true;
                    continue;
                }
                if escaped {
                    escaped = false;
                    chars.push('\\');
                }
                chars.push(c);
                continue;
            }
            if escaped {
                escaped = false;
                chars.push(c);
                continue;
            }
            let value = if quote == '"' { self.expand(&expand_escapes(&chars), line)? } else { chars };
            self.advance_to(self.pos + i + 1);
            return Ok(value);
        }
        let first_line = rest.split('\n').next().unwrap_or_default();
        Err(DotenvError { line, message: format!("unterminated quoted value {first_line}") })
    }

    fn expand(&self, value: &str, line: u32) -> Result<String, DotenvError> {
        if !crate::interpolate::has_vars(value) {
            return Ok(value.to_owned());
        }
        let lookup = |name: &str| {
            (self.lookup)(name).or_else(|| self.assigned.get(name).cloned()).or_else(|| (self.fallback)(name))
        };
        interpolate(value, &lookup)
            .map(|(expanded, _)| expanded)
            .map_err(|err| DotenvError { line, message: err.to_string() })
    }
}

/// Applies the backslash escapes of double-quoted values. `\$` becomes `$$` so that the
/// expansion that follows yields a literal `$`.
fn expand_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let simple = match after.chars().next() {
            Some('a') => Some("\u{7}"),
            Some('b') => Some("\u{8}"),
            Some('f') => Some("\u{c}"),
            Some('n') => Some("\n"),
            Some('r') => Some("\r"),
            Some('t') => Some("\t"),
            Some('v') => Some("\u{b}"),
            Some('"') => Some("\""),
            Some('\\') => Some("\\"),
            Some('$') => Some("$$"),
            _ => None,
        };
        if let Some(replacement) = simple {
            out.push_str(replacement);
            rest = &after[1..];
            continue;
        }
        if let Some(digits_from) = after.strip_prefix('0') {
            // `\0` and up to three digits; exactly three octal digits worth at most 0o377 make a
            // character, anything else is kept as written.
            let len = digits_from.bytes().take(3).take_while(u8::is_ascii_digit).count();
            let digits = &digits_from[..len];
            match u8::from_str_radix(digits, 8) {
                Ok(byte) if len == 3 => out.push(char::from(byte)),
                _ => {
                    out.push_str("\\0");
                    out.push_str(digits);
                }
            }
            rest = &digits_from[len..];
            continue;
        }
        out.push('\\');
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    fn pairs(entries: &[Entry]) -> Vec<(&str, &str, u32)> {
        entries.iter().map(|e| (e.key.as_str(), e.value.as_str(), e.line)).collect()
    }

    #[test]
    fn entries_keep_order_duplicates_and_lines() {
        let text = "A=1\n\n# c\nB='x\ny'\nA=2\n  C = 3 # note\n";
        let entries = parse(text, &none).unwrap();
        assert_eq!(pairs(&entries), [("A", "1", 1), ("B", "x\ny", 4), ("A", "2", 6), ("C", "3", 7)]);
        let map = to_map(&entries);
        assert_eq!(map.len(), 3);
        assert_eq!(map["A"], "2");
        assert_eq!(map.keys().collect::<Vec<_>>(), ["A", "B", "C"]);
    }

    #[test]
    fn crlf_and_bom() {
        let entries = parse("\u{feff}A=1\r\nB=\"2\"\r\nC\r\n", &|k| (k == "C").then(|| "c".to_owned())).unwrap();
        assert_eq!(pairs(&entries), [("A", "1", 1), ("B", "2", 2), ("C", "c", 3)]);
    }

    #[test]
    fn bare_key_at_end_without_newline() {
        let lookup = |k: &str| (k == "FOO").then(|| "v".to_owned());
        assert_eq!(pairs(&parse("A=1\nFOO", &lookup).unwrap()), [("A", "1", 1), ("FOO", "v", 2)]);
        assert!(parse("BAR", &lookup).unwrap().is_empty());
    }

    #[test]
    fn bare_key_ignores_file_and_fallback() {
        let fallback = |_: &str| Some("fb".to_owned());
        let entries = parse_with_fallback("A=1\nA\nB\n", &none, &fallback).unwrap();
        assert_eq!(pairs(&entries), [("A", "1", 1)]);
    }

    #[test]
    fn expansion_precedence() {
        let lookup = |k: &str| (k == "X").then(|| "env".to_owned());
        let fallback = |k: &str| Some(format!("prev-{k}"));
        let text = "X=file\nY=file\nA=$X ${Y} $Z\n";
        let entries = parse_with_fallback(text, &lookup, &fallback).unwrap();
        assert_eq!(entries[2].value, "env file prev-Z");
    }

    #[test]
    fn interpolation_errors_carry_the_line() {
        let err = parse("A=1\n\nB=\"${MISSING:?set it}\"\n", &none).unwrap_err();
        assert_eq!(err.line, 3);
        assert_eq!(err.to_string(), "line 3: required variable MISSING is missing a value: set it");
        let err = parse("A=${\n", &none).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("invalid interpolation format"));
        // Single quotes never expand.
        assert_eq!(parse("A='${'\n", &none).unwrap()[0].value, "${");
    }

    #[test]
    fn error_lines() {
        let err = parse("A=1\nB=\"open\nstill\n", &none).unwrap_err();
        assert_eq!(err.to_string(), "line 2: unterminated quoted value \"open");
        let err = parse("# c\nA B=1\n", &none).unwrap_err();
        assert_eq!(err.to_string(), "line 2: key cannot contain a space");
        let err = parse("\n\nlol$wut\n", &none).unwrap_err();
        assert_eq!(err.to_string(), "line 3: unexpected character \"$\" in variable name \"lol$wut\"");
    }

    #[test]
    fn yaml_style_and_export() {
        let entries = parse("export A=1\nB: 2\nexport\tC: x=y\nexporter=3\n", &none).unwrap();
        assert_eq!(pairs(&entries), [("A", "1", 1), ("B", "2", 2), ("C", "x=y", 3), ("exporter", "3", 4)]);
    }

    #[test]
    fn statement_after_closing_quote() {
        let entries = parse("A=\"x\" B=2\nC='y'# c\n", &none).unwrap();
        assert_eq!(pairs(&entries), [("A", "x", 1), ("B", "2", 1), ("C", "y", 2)]);
    }

    #[test]
    fn unquoted_values_are_literal_apart_from_expansion() {
        let entries = parse("A=a\\nb 'q' \"d\"\nB=x\t#not-a-comment\nC=$$HOME\n", &none).unwrap();
        assert_eq!(entries[0].value, "a\\nb 'q' \"d\"");
        assert_eq!(entries[1].value, "x\t#not-a-comment");
        assert_eq!(entries[2].value, "$HOME");
    }

    #[test]
    fn escapes() {
        for (input, expected) in [
            (r"\0123", "S"),
            (r"\01234", "S4"),
            (r"\012", r"\012"),
            (r"\0", r"\0"),
            (r"\0777", r"\0777"),
            (r"\0089", r"\0089"),
            (r"\0377", "\u{ff}"),
            (r"\x41", r"\x41"),
            (r"\c", r"\c"),
            (r"a\", r"a\"),
            (r"\$A", "$$A"),
            (r"\\n", r"\n"),
            ("é\\té", "é\té"),
        ] {
            assert_eq!(expand_escapes(input), expected, "{input}");
        }
    }

    #[test]
    fn raw_format() {
        let text = "\u{feff}# comment\n  A=1\nB= \"quoted\" $X # kept \r\n\nC==x\nD\nE\n\t\n";
        let lookup = |k: &str| (k == "D").then(|| "from-env".to_owned());
        let entries = parse_raw_with_lookup(text, &lookup).unwrap();
        assert_eq!(
            pairs(&entries),
            [("A", "1", 2), ("B", " \"quoted\" $X # kept ", 3), ("C", "=x", 5), ("D", "from-env", 6),]
        );
        assert_eq!(parse_raw("D\nA=1").unwrap().len(), 1);
    }

    #[test]
    fn raw_format_errors() {
        let err = parse_raw("A=1\nB C=2\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: variable 'B C' contains whitespaces");
        let err = parse_raw("\n=x\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: no variable name on line '=x'");
        let err = parse_raw("A B\n").unwrap_err();
        assert_eq!(err.line, 1);
    }
}
