//! The Dockerfile parser: text to a raw syntax tree ([`Ast`] of [`Node`]s), one node per instruction.
//!
//! It handles parser directives at the top of the file (`# syntax=`, `# escape=`, `# check=`), comments, line
//! continuations (with the escape character; comment lines and blank lines inside a continuation are skipped),
//! heredocs (`RUN <<EOF`, `<<-EOF`, quoted delimiters, several per line), flags (`--from=x`), and JSON (exec form)
//! versus shell form arguments. Arguments are not expanded here; see [`crate::instruction`] for the typed layer
//! and [`crate::shell`] for expansion.
//!
//! [`Ast::dump`] prints the tree as s-expressions (`(copy ["--from=a"] "src" "dst")`), the form the conformance
//! data uses.

mod directives;
mod dump;
mod line;

use regex::Regex;

use crate::error::{Error, ErrorKind, Result};
use crate::shell::{Lexer, NoEnv};

pub use directives::Directive;
pub(crate) use dump::go_quote;

/// The default escape character.
pub const DEFAULT_ESCAPE: char = '\\';

/// One instruction of a Dockerfile, as parsed but not yet interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction name, lower case (`from`, `run`, ...).
    pub name: String,
    /// The instruction name as written.
    pub original_name: String,
    /// Flags as written after quote removal (`--from=builder`), in order.
    pub flags: Vec<String>,
    /// Arguments. For `env` and `label` these come in threes: key, value, and `"="` (for `key=value`) or `""`
    /// (for the legacy `KEY value` form). For `healthcheck` the first is the type (`CMD`, `NONE`).
    pub args: Vec<String>,
    /// The nested instruction of an `ONBUILD`.
    pub sub: Option<Box<Node>>,
    /// Heredoc bodies attached to this instruction, in the order their markers appear.
    pub heredocs: Vec<Heredoc>,
    /// Whether the arguments were given in JSON (exec) form.
    pub json: bool,
    /// The instruction line after continuations were joined (without heredoc bodies).
    pub original: String,
    /// First line (1-based) of the instruction.
    pub start_line: usize,
    /// Last line of the instruction, heredoc bodies included.
    pub end_line: usize,
}

/// A heredoc attached to an instruction (`<<EOF` ... `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed; also the file name for `COPY <<EOF`.
    pub name: String,
    /// The file descriptor before `<<` (`3<<EOF`), 0 if none.
    pub file_descriptor: u32,
    /// Whether the body gets variable expansion (false when the delimiter was quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body lines and the delimiter line.
    pub chomp: bool,
    /// The body, line endings kept.
    pub content: String,
}

impl Heredoc {
    /// The body with leading tabs removed from every line when [`Heredoc::chomp`] is set.
    pub fn chomped_content(&self) -> String {
        if self.chomp {
            chomp_heredoc_content(&self.content)
        } else {
            self.content.clone()
        }
    }
}

/// Removes the leading tabs of every line.
pub fn chomp_heredoc_content(src: &str) -> String {
    src.split_inclusive('\n').map(|l| l.trim_start_matches('\t')).collect()
}

/// A non-fatal finding of the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The line it is about.
    pub line: usize,
    /// What it is.
    pub message: String,
}

/// A parsed Dockerfile: its instructions in order, the escape character in force, and the parser directives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ast {
    /// The file name errors are reported under.
    pub file: String,
    /// The escape character (`\` unless `# escape=`` ` `` was given).
    pub escape: char,
    /// The parser directives found at the top.
    pub directives: Vec<Directive>,
    /// The instructions.
    pub nodes: Vec<Node>,
    /// Warnings (empty continuation lines).
    pub warnings: Vec<Warning>,
}

impl Ast {
    /// The instructions as s-expressions, one a line (each line ends with `\n`).
    pub fn dump(&self) -> String {
        self.nodes.iter().map(|n| format!("({})\n", dump::dump_node(n))).collect()
    }
}

/// Parses `text`; errors name `file` and the line.
pub fn parse(file: &str, text: &str) -> Result<Ast> {
    let fail = |line: usize, end: usize, kind: ErrorKind| Error::new(file, line.max(1), end, kind);
    let mut d = directives::Directives::default();
    let mut lines = text.split_inclusive('\n');
    let mut current = 0usize;
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();

    while let Some(raw) = lines.next() {
        let raw = if current == 0 { raw.strip_prefix('\u{feff}').unwrap_or(raw) } else { raw };
        let first = d.process_line(raw, true).map_err(|k| fail(current + 1, 0, k))?;
        current += 1;
        let start = current;
        let (mut buf, mut end_of_line) = trim_continuation(&first, d.escape);
        if end_of_line && buf.is_empty() {
            continue;
        }
        let mut empty_continuation = false;
        while !end_of_line {
            let Some(raw) = lines.next() else { break };
            let next = d.process_line(raw, false).map_err(|k| fail(current + 1, 0, k))?;
            current += 1;
            if is_comment(raw) {
                continue;
            }
            if next.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, eol) = trim_continuation(&next, d.escape);
            buf.push_str(&part);
            end_of_line = eol;
        }
        if empty_continuation {
            warnings.push(Warning { line: current, message: format!("Empty continuation line found in: {buf}") });
        }

        let mut node = line::node_from_line(&buf, d.escape).map_err(|k| fail(start, current, k))?;
        if node.can_contain_heredoc() && buf.contains("<<") {
            let docs = heredocs_from_line(&buf).map_err(|k| fail(start, current, k))?;
            for mut doc in docs {
                let mut terminated = false;
                for raw in lines.by_ref() {
                    current += 1;
                    let mut candidate = raw.trim_end_matches(['\r', '\n']);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(raw);
                }
                if !terminated {
                    return Err(fail(start, current, ErrorKind::syntax("unterminated heredoc")));
                }
                node.heredocs.push(doc);
            }
        }
        node.start_line = start;
        node.end_line = current;
        nodes.push(node);
    }

    if nodes.is_empty() {
        return Err(fail(current, current, ErrorKind::syntax("file with no instructions")));
    }
    Ok(Ast { file: file.to_string(), escape: d.escape, directives: d.found, nodes, warnings })
}

impl Node {
    fn can_contain_heredoc(&self) -> bool {
        let node = match (&*self.name, &self.sub) {
            ("onbuild", Some(sub)) => sub,
            _ => self,
        };
        matches!(&*node.name, "add" | "copy" | "run") && !node.json
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Strips a trailing line-continuation escape (plus trailing blanks); `true` when the line does not continue.
/// An escape preceded by another escape is not a continuation.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    if let Some(before) = trimmed.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before.to_string(), false);
        }
    }
    (line.to_string(), true)
}

fn heredoc_regex() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^([0-9]*)<<(-?)[\t\n\x0C\r ]*([^<]*)$").unwrap_or_else(|e| panic!("{e}")))
}

/// Parses one heredoc marker word (`<<EOF`, `<<-"EOF"`, `3<<EOF`); `None` if the word is not one.
pub fn parse_heredoc(src: &str) -> Result<Option<Heredoc>, ErrorKind> {
    let Some(caps) = heredoc_regex().captures(src) else { return Ok(None) };
    let fd = caps[1].parse().unwrap_or(0);
    let chomp = &caps[2] == "-";
    let rest = &caps[3];
    if rest.is_empty() {
        return Ok(None);
    }
    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    let words = lex.process_words(rest, &NoEnv)?;
    let [word] = words.as_slice() else { return Ok(None) };
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &NoEnv)?;
    let [raw] = raw.as_slice() else {
        return Err(ErrorKind::syntax(format!("internal lexing of heredoc produced inconsistent results: {rest}")));
    };
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Ok(Some(Heredoc {
        name: word.clone(),
        file_descriptor: fd,
        expand: quotes(word) == quotes(raw),
        chomp,
        content: String::new(),
    }))
}

fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ErrorKind> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    let words = lex.process_words(line, &NoEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for word in words {
        if let Some(doc) = parse_heredoc(&word)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests;
