//! Shell-style word expansion, as the Dockerfile front end applies it to the arguments of `ENV`, `ARG`, `COPY`,
//! `WORKDIR` and the other instructions that take variables.
//!
//! This is not a shell: there is no command substitution, globbing or arithmetic. What it does:
//!
//! * `$VAR`, `${VAR}`; unset variables expand to nothing (or stay as written with [`Lexer::skip_unset_env`]);
//! * `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?message}`, `${VAR?message}`;
//! * `${VAR#pattern}`, `${VAR##pattern}`, `${VAR%pattern}`, `${VAR%%pattern}` (`*` and `?` wildcards);
//! * `${VAR/pattern/replacement}` and `${VAR//pattern/replacement}`;
//! * single quotes (everything literal), double quotes (only `$`, `"` and the escape character are special);
//! * the escape character (`\` or, with `# escape=`` ` ``, a backtick) outside quotes escapes any character;
//! * positional (`$1`) and special (`$@`, `$#`, ...) parameters are never set.
//!
//! [`Lexer::process_word`] gives one word (spaces kept), [`Lexer::process_words`] splits the result into words the
//! way `EXPOSE`, `VOLUME` and heredoc detection need: unquoted whitespace (including whitespace that came out of a
//! variable) separates words, quoted whitespace does not.

mod pattern;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

use thiserror::Error;

/// An error from word expansion: a syntax error (unterminated quote, bad `${...}`) or a `${VAR?message}` failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct ShellError(pub String);

/// Where word expansion looks variables up.
pub trait Vars {
    /// The value of `name`, or `None` when it is unset (set but empty is `Some("")`).
    fn lookup(&self, name: &str) -> Option<String>;
}

impl<S: BuildHasher> Vars for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Vars for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A list of `(name, value)` pairs; a later pair wins over an earlier one of the same name.
impl Vars for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<String> {
        self.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

impl Vars for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.as_slice().lookup(name)
    }
}

impl<T: Vars + ?Sized> Vars for &T {
    fn lookup(&self, name: &str) -> Option<String> {
        (**self).lookup(name)
    }
}

/// An environment with no variables at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl Vars for NoEnv {
    fn lookup(&self, _: &str) -> Option<String> {
        None
    }
}

/// An environment backed by a closure.
pub struct EnvFn<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Vars for EnvFn<F> {
    fn lookup(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}

/// The full result of an expansion: the single word, the split words, and which variables were looked up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded text as one word.
    pub word: String,
    /// The expanded text split into words.
    pub words: Vec<String>,
    /// Variables that were referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables that were referenced but unset.
    pub unmatched: BTreeSet<String>,
}

/// The word-expansion engine. Options mirror what the different callers in the build need.
#[derive(Debug, Clone)]
pub struct Lexer {
    escape: char,
    /// Keep quote characters in the output (used to tell quoted heredoc delimiters from bare ones).
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters (used to expand heredoc bodies).
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written instead of expanding them to nothing.
    pub skip_unset_env: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

/// Expands `word` with the default escape character `\`: see [`Lexer::process_word`].
pub fn process_word(word: &str, env: &dyn Vars) -> Result<String, ShellError> {
    Lexer::default().process_word(word, env)
}

/// Expands and splits `word` with the default escape character `\`: see [`Lexer::process_words`].
pub fn process_words(word: &str, env: &dyn Vars) -> Result<Vec<String>, ShellError> {
    Lexer::default().process_words(word, env)
}

impl Lexer {
    /// A lexer using `escape` (`\` or `` ` ``) as its escape character.
    pub fn new(escape: char) -> Self {
        Lexer { escape, raw_quotes: false, raw_escapes: false, skip_process_quotes: false, skip_unset_env: false }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands `word` into one word: quotes are removed, spaces kept.
    pub fn process_word(&self, word: &str, env: &dyn Vars) -> Result<String, ShellError> {
        Ok(self.process(word, env)?.word)
    }

    /// Expands `word` and splits the result into words.
    pub fn process_words(&self, word: &str, env: &dyn Vars) -> Result<Vec<String>, ShellError> {
        Ok(self.process(word, env)?.words)
    }

    /// Expands `word`, giving the single word, the words, and the variables looked up.
    pub fn process(&self, word: &str, env: &dyn Vars) -> Result<Expansion, ShellError> {
        let mut sw = ShellWord {
            lex: self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        match sw.process_stop_on(None, self.raw_escapes) {
            Ok((w, words)) => Ok(Expansion { word: w, words, matched: sw.matched, unmatched: sw.unmatched }),
            Err(e) => Err(ShellError(format!("failed to process {}: {}", crate::parser::go_quote(word), e.0))),
        }
    }
}

/// Word-splitting state: unquoted whitespace ends a word, quoted text never does.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

struct ShellWord<'a> {
    lex: &'a Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Vars,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

fn err<T>(msg: impl Into<String>) -> Result<T, ShellError> {
    Err(ShellError(msg.into()))
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.lookup(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v)
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    /// Processes up to `stop` (consumed) or the end of input; `raw_escapes` applies for this span only.
    fn process_stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<(String, Vec<String>), ShellError> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let res = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        res
    }

    fn process_stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), ShellError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let tmp = self.process_dollar()?;
                    result.push_str(&tmp);
                    words.add_string(&tmp);
                }
                '<' => {
                    let tmp = self.process_possible_heredoc();
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp);
                }
                '\'' | '"' if !self.lex.skip_process_quotes => {
                    let tmp = if ch == '\'' { self.process_single_quote()? } else { self.process_double_quote()? };
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp);
                }
                _ => {
                    self.next();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // The escape character escapes anything; at the very end it is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return err(format!("unexpected end of statement while looking for matching {stop}"));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Result<String, ShellError> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return err("unexpected end of statement while looking for matching single-quote"),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, ShellError> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return err("unexpected end of statement while looking for matching double-quote"),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // A trailing escape is dropped; the missing quote is reported next.
                            None => continue,
                            // Only these can be escaped inside double quotes; otherwise the escape stays.
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_dollar(&mut self) -> Result<String, ShellError> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return err("syntax error: missing '}'"),
            Some('{' | '}' | ':') => return err("syntax error: bad substitution"),
            _ => {}
        }
        let name = self.process_name();
        let first = self.next();
        let mut modifier: String = first.map(String::from).unwrap_or_else(|| "\u{FFFD}".to_string());
        match first {
            Some('}') => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let mut ch = first;
                let null_is_unset = ch == Some(':');
                if null_is_unset {
                    ch = self.next();
                    modifier.push(ch.unwrap_or('\u{FFFD}'));
                }
                let raw = matches!(ch, Some('#' | '%'));
                if null_is_unset && raw {
                    return err(format!("unsupported modifier ({modifier}) in substitution"));
                }
                let word = match self.process_stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(e) if self.peek().is_none() => {
                        let _ = e;
                        return err("syntax error: missing '}'");
                    }
                    Err(e) => return Err(e),
                };
                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}{modifier}{word}}}"));
                }
                let empty = value.as_deref().is_none_or(|v| null_is_unset && v.is_empty());
                match ch {
                    Some('-') => Ok(if empty { word } else { value.unwrap_or_default() }),
                    Some('+') => Ok(if empty { String::new() } else { word }),
                    Some('?') => match value {
                        None => {
                            let msg = if word.is_empty() { "is not allowed to be unset" } else { &word };
                            err(format!("{name}: {msg}"))
                        }
                        Some(v) if null_is_unset && v.is_empty() => {
                            let msg = if word.is_empty() { "is not allowed to be empty" } else { &word };
                            err(format!("{name}: {msg}"))
                        }
                        Some(v) => Ok(v),
                    },
                    Some(c @ ('%' | '#')) => {
                        let (greedy, pat) = match word.strip_prefix(c) {
                            Some(rest) => (true, rest),
                            None => (false, word.as_str()),
                        };
                        let value = value.unwrap_or_default();
                        if c == '%' {
                            pattern::trim_suffix(pat, &value, greedy)
                        } else {
                            pattern::trim_prefix(pat, &value, greedy)
                        }
                    }
                    _ => err(format!("unsupported modifier ({modifier}) in substitution")),
                }
            }
            Some('/') => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.next();
                }
                let pat = match self.process_stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => return err("syntax error: missing '/' in ${}"),
                    Err(e) => return Err(e),
                };
                let replacement = match self.process_stop_on(Some('}'), true) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => return err("syntax error: missing '}'"),
                    Err(e) => return Err(e),
                };
                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}/{pat}/{replacement}}}"));
                }
                pattern::replace(&pat, &replacement, &value.unwrap_or_default(), replace_all)
            }
            _ => err(format!("unsupported modifier ({modifier}) in substitution")),
        }
    }

    /// Reads a variable name: letters, digits and `_`; or a run of digits (positional); or one special character.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(d) = self.peek().filter(|c| is_digit(*c)) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphabetic() && !is_digit(ch) && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut out = "<<".to_string();
        while let Some(c) = self.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            out.push(c);
            self.next();
        }
        out
    }
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![("A".into(), "/usr/local/bin".into()), ("E".into(), String::new())]
    }

    #[test]
    fn modifiers() {
        let e = env();
        let p = |w: &str| process_word(w, &e);
        assert_eq!(p("${A#*/}").unwrap(), "usr/local/bin");
        assert_eq!(p("${A##*/}").unwrap(), "bin");
        assert_eq!(p("${A%/*}").unwrap(), "/usr/local");
        assert_eq!(p("${A%%/l*}").unwrap(), "/usr");
        assert_eq!(p("${A/local/share}").unwrap(), "/usr/share/bin");
        assert_eq!(p("${A//\\//:}").unwrap(), ":usr:local:bin");
        assert_eq!(p("${E-x}").unwrap(), "");
        assert_eq!(p("${E:-x}").unwrap(), "x");
        assert_eq!(p("${E+x}").unwrap(), "x");
        assert_eq!(p("${E:+x}").unwrap(), "");
        assert!(p("${E:?must be set}").unwrap_err().0.contains("E: must be set"));
        assert!(p("${U?}").is_err());
        assert!(p("${A:#x}").is_err());
    }

    #[test]
    fn words_keep_text_around_modifiers() {
        let e = env();
        assert_eq!(process_words("pre${U:-x y}post z", &e).unwrap(), vec!["prex", "ypost", "z"]);
    }

    #[test]
    fn backtick_escape_and_skip_unset() {
        let mut lex = Lexer::new('`');
        assert_eq!(lex.process_word("a`$A", &NoEnv).unwrap(), "a$A");
        assert_eq!(lex.process_word("c:\\dir", &NoEnv).unwrap(), "c:\\dir");
        lex.skip_unset_env = true;
        assert_eq!(lex.process_word("$X ${Y} ${Z:-d}", &NoEnv).unwrap(), "$X ${Y} ${Z:-d}");
    }

    #[test]
    fn matches_are_recorded() {
        let e = env();
        let x = Lexer::default().process("$A $B", &e).unwrap();
        assert!(x.matched.contains("A") && x.unmatched.contains("B"));
    }
}
