//! `.dockerignore`: reading the file, matching context paths against its patterns, and finding which ignore file
//! applies to a Dockerfile.
//!
//! Pattern rules: `*` matches any run of characters except `/`, `?` one character except `/`, `[...]` a character
//! class (`[^...]` negated), `**` any number of directories (including none), `\` escapes the next character. A
//! path is excluded when it or one of its parent directories matches a pattern; patterns are applied in order and
//! the last one that matches wins, so `!pattern` re-includes what an earlier line excluded.

use std::path::{Path, PathBuf};

use regex::Regex;
use thiserror::Error;

/// A malformed ignore pattern.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    /// A lone `!`.
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    /// Bad syntax (unclosed `[`, trailing `\`, ...).
    #[error("syntax error in pattern: {0}")]
    BadPattern(String),
}

/// Reads `.dockerignore` text: drops a UTF-8 BOM, `#` comment lines and blank lines, trims each line, cleans the
/// path (`a/./b/../c` is `a/c`) and strips a leading `/`; `!` exceptions keep their `!`.
pub fn read_patterns(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean_path(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        out.push(if invert { format!("!{cleaned}") } else { cleaned });
    }
    out
}

/// The ignore file for a build: `<Dockerfile name>.dockerignore` beside the Dockerfile if it exists, else
/// `<context>/.dockerignore` if it exists.
pub fn find_ignore_file(context: &Path, dockerfile: &Path) -> Option<PathBuf> {
    if let Some(name) = dockerfile.file_name() {
        let mut specific = name.to_os_string();
        specific.push(".dockerignore");
        let candidate = dockerfile.with_file_name(specific);
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    let generic = context.join(".dockerignore");
    generic.is_file().then_some(generic)
}

/// Finds ([`find_ignore_file`]) and reads ([`read_patterns`]) the ignore file for a build; no file gives no
/// patterns.
pub fn load_patterns(context: &Path, dockerfile: &Path) -> std::io::Result<Vec<String>> {
    match find_ignore_file(context, dockerfile) {
        Some(path) => Ok(read_patterns(&std::fs::read_to_string(path)?)),
        None => Ok(Vec::new()),
    }
}

/// Lexically cleans a slash-separated path: removes `.` elements, `..` with the element before it, repeated
/// slashes and a trailing slash. An empty result is `.`.
pub fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// The directory part of a path, cleaned (`a/b/c` gives `a/b`, `a` gives `.`, `a/b/` gives `a/b`).
fn dir_of(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean_path(&path[..=i]),
        None => ".".to_string(),
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex(Regex),
}

/// One compiled ignore pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: Kind,
}

impl Pattern {
    /// The pattern as cleaned, without its `!`.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    /// Whether this is a `!` exception.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    fn compile(cleaned: String, exclusion: bool) -> Result<Self, PatternError> {
        validate(&cleaned)?;
        let mut re = String::from("^");
        let mut kind = KindTag::Exact;
        let mut chars = cleaned.chars().peekable();
        let mut i = 0;
        while let Some(ch) = chars.next() {
            match ch {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    if chars.peek() == Some(&'/') {
                        chars.next();
                    }
                    if chars.peek().is_none() {
                        if kind == KindTag::Exact {
                            kind = KindTag::Prefix;
                        } else {
                            re.push_str(".*");
                            kind = KindTag::Regex;
                        }
                    } else {
                        re.push_str("(.*/)?");
                        kind = KindTag::Regex;
                    }
                    if i == 0 {
                        kind = KindTag::Suffix;
                    }
                }
                '*' => {
                    re.push_str("[^/]*");
                    kind = KindTag::Regex;
                }
                '?' => {
                    re.push_str("[^/]");
                    kind = KindTag::Regex;
                }
                '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                    re.push('\\');
                    re.push(ch);
                }
                '\\' => match chars.next() {
                    Some(next) => {
                        re.push_str(&regex::escape(&next.to_string()));
                        kind = KindTag::Regex;
                    }
                    None => re.push_str("\\\\"),
                },
                '[' | ']' => {
                    re.push(ch);
                    kind = KindTag::Regex;
                }
                _ => re.push(ch),
            }
            i += 1;
        }
        let kind = match kind {
            KindTag::Exact => Kind::Exact,
            KindTag::Prefix => Kind::Prefix,
            KindTag::Suffix => Kind::Suffix,
            KindTag::Regex => {
                re.push('$');
                Kind::Regex(Regex::new(&re).map_err(|e| PatternError::BadPattern(format!("{cleaned}: {e}")))?)
            }
        };
        Ok(Pattern { cleaned, exclusion, kind })
    }

    /// Whether `path` (slash-separated, relative to the context) itself matches.
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }
}

#[derive(PartialEq, Clone, Copy)]
enum KindTag {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// Checks glob syntax: character classes must close and hold at least one character or range, and an escape
/// needs a character after it.
fn validate(pattern: &str) -> Result<(), PatternError> {
    let bad = || PatternError::BadPattern(pattern.to_string());
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    // One class element: a possibly escaped character that is not `-` or `]`, with something after it.
    let esc = |i: &mut usize| -> Result<(), PatternError> {
        match chars.get(*i) {
            None | Some('-' | ']') => return Err(bad()),
            Some('\\') => *i += 1,
            _ => {}
        }
        if chars.get(*i).is_none() {
            return Err(bad());
        }
        *i += 1;
        if *i >= chars.len() {
            return Err(bad());
        }
        Ok(())
    };
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return Err(bad());
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut n = 0;
                loop {
                    if chars.get(i) == Some(&']') && n > 0 {
                        i += 1;
                        break;
                    }
                    esc(&mut i)?;
                    if chars.get(i) == Some(&'-') {
                        i += 1;
                        esc(&mut i)?;
                    }
                    n += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// A compiled list of ignore patterns.
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
}

impl PatternMatcher {
    /// Compiles `patterns` (as [`read_patterns`] gives them; each is trimmed and cleaned again, blanks skipped).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let mut out = Vec::with_capacity(patterns.len());
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let p = clean_path(p);
            let (exclusion, body) = match p.strip_prefix('!') {
                Some("") => return Err(PatternError::IllegalExclusion),
                Some(rest) => (true, rest.to_string()),
                None => (false, p),
            };
            out.push(Pattern::compile(body, exclusion)?);
        }
        Ok(PatternMatcher { patterns: out })
    }

    /// The compiled patterns in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is a `!` exception (then excluded directories must still be walked).
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (slash-separated, relative to the context root) is excluded: it or one of its parent
    /// directories matches, the last matching pattern deciding.
    pub fn matches_or_parent_matches(&self, path: &str) -> bool {
        let parent = dir_of(path);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches(path);
            if !hit && parent != "." {
                hit = (1..=parent_dirs.len()).any(|n| pattern.matches(&parent_dirs[..n].join("/")));
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Same as [`PatternMatcher::matches_or_parent_matches`].
    pub fn is_excluded(&self, path: &str) -> bool {
        self.matches_or_parent_matches(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning() {
        for (i, o) in
            [("a/./b/../c", "a/c"), ("/", "/"), ("", "."), ("../a", "../a"), ("/../a/", "/a"), ("a//b/", "a/b")]
        {
            assert_eq!(clean_path(i), o, "{i}");
        }
        assert_eq!(dir_of("a/b/"), "a/b");
        assert_eq!(dir_of("a"), ".");
    }

    #[test]
    fn bad_patterns() {
        assert_eq!(PatternMatcher::new(&["!"]).unwrap_err(), PatternError::IllegalExclusion);
        for p in ["[", "a[", "[]", "[a-]", "a\\"] {
            assert!(PatternMatcher::new(&[p]).is_err(), "{p}");
        }
    }

    #[test]
    fn finds_specific_ignore_file_first() {
        let dir = std::env::temp_dir().join(format!("berth-ignore-{}", std::process::id()));
        let sub = dir.join("build");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(dir.join(".dockerignore"), "a\n").unwrap();
        let df = sub.join("app.Dockerfile");
        assert_eq!(find_ignore_file(&dir, &df), Some(dir.join(".dockerignore")));
        std::fs::write(sub.join("app.Dockerfile.dockerignore"), "# c\nb\n").unwrap();
        assert_eq!(find_ignore_file(&dir, &df), Some(sub.join("app.Dockerfile.dockerignore")));
        assert_eq!(load_patterns(&dir, &df).unwrap(), vec!["b"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
