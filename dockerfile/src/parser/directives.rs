//! Parser directives: `# syntax=...`, `# escape=...` and `# check=...` comment lines before the first instruction
//! or other comment. `escape` switches the escape character to a backtick; the others are recorded and ignored.

use regex::Regex;

use crate::error::ErrorKind;

/// A parser directive found at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The directive name, lower case (`syntax`, `escape`, `check`).
    pub name: String,
    /// Its value.
    pub value: String,
    /// The line it is on.
    pub line: usize,
}

/// Directive-scanning state while reading lines.
pub(super) struct Directives {
    pub(super) escape: char,
    pub(super) found: Vec<Directive>,
    done: bool,
    line: usize,
}

impl Default for Directives {
    fn default() -> Self {
        Directives { escape: super::DEFAULT_ESCAPE, found: Vec::new(), done: false, line: 0 }
    }
}

fn directive_regex() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^([a-zA-Z][a-zA-Z0-9]*)[\t\n\x0C\r ]*=[\t\n\x0C\r ]*(.+?)[\t\n\x0C\r ]*$")
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

impl Directives {
    /// Takes one raw line: strips the line ending (and leading whitespace if `strip_left`), looks for a directive
    /// while still at the top of the file, and gives the line with comments blanked out.
    pub(super) fn process_line(&mut self, raw: &str, strip_left: bool) -> Result<String, ErrorKind> {
        let mut token = raw.trim_end_matches(['\r', '\n']);
        if strip_left {
            token = token.trim_start();
        }
        self.possible_directive(token)?;
        if token.trim_start().starts_with('#') {
            return Ok(String::new());
        }
        Ok(token.to_string())
    }

    fn possible_directive(&mut self, line: &str) -> Result<(), ErrorKind> {
        self.line += 1;
        if self.done {
            return Ok(());
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(());
        };
        let Some(caps) = directive_regex().captures(rest.trim_start()) else {
            self.done = true;
            return Ok(());
        };
        let name = caps[1].to_lowercase();
        if !matches!(&*name, "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.found.iter().any(|d| d.name == name) {
            return Err(ErrorKind::syntax(format!("only one {name} parser directive can be used")));
        }
        let value = caps[2].to_string();
        if name == "escape" {
            self.escape = match &*value {
                "\\" => '\\',
                "`" => '`',
                _ => return Err(ErrorKind::syntax(format!("invalid escape token '{value}' does not match ` or \\"))),
            };
        }
        self.found.push(Directive { name, value, line: self.line });
        Ok(())
    }
}
