//! The s-expression dump of parsed instructions: `(name ["--flag"] "arg" ...)`, `(onbuild (run "x"))`, with
//! strings quoted the Go way (`\"`, `\\`, `\t`, `\x00`, non-printing characters as `\u....`).

use std::fmt::Write;

use super::Node;

/// One node without its surrounding parentheses.
pub(super) fn dump_node(node: &Node) -> String {
    let mut out = node.name.to_lowercase();
    if !node.flags.is_empty() {
        let flags: Vec<String> = node.flags.iter().map(|f| go_quote(f)).collect();
        let _ = write!(out, " [{}]", flags.join(" "));
    }
    if let Some(sub) = &node.sub {
        let _ = write!(out, " ({})", dump_node(sub));
    }
    for arg in &node.args {
        out.push(' ');
        out.push_str(&go_quote(arg));
    }
    out
}

/// Quotes `s` as a double-quoted string literal with Go's escaping rules.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if !is_printable(c) => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Printable as Go sees it: not a control character, not a space other than U+0020, not a format character.
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn quoting() {
        assert_eq!(go_quote("a\"b\\c\t\u{0}♥"), "\"a\\\"b\\\\c\\t\\x00♥\"");
        assert_eq!(go_quote("\u{a0}"), "\"\\u00a0\"");
    }
}
