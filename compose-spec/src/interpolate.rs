//! Compose variable interpolation: `$VAR`, `${VAR}`, the `:-` `-` `:+` `+` `:?` `?` modifiers,
//! nesting and `$$` escapes, with the semantics of Docker Compose (compose-go's `template` package).
//!
//! The rules, in short:
//!
//! * `$$` is a literal `$`.
//! * `$NAME` and `${NAME}` are replaced by the variable's value, or by the empty string when the
//!   variable is unset (see [`Reference::defaulted_to_blank`] to warn about it). A name is
//!   `[A-Za-z_][A-Za-z0-9_]*`; `$NAME` stops at the first other character (`$FOO-bar`).
//! * `${NAME:-default}` uses `default` when the variable is unset or empty, `${NAME-default}`
//!   only when it is unset.
//! * `${NAME:+replacement}` uses `replacement` when the variable is set and non-empty,
//!   `${NAME+replacement}` when it is set; otherwise the result is empty.
//! * `${NAME:?message}` fails when the variable is unset or empty, `${NAME?message}` when it is
//!   unset; the message is itself interpolated.
//! * Defaults, replacements and messages may contain further references (`${A:-${B:-x}}`); they
//!   are only evaluated when used.
//! * A `$` that is followed by neither `$`, a name nor `{` is kept as is (`a $ string`, `^REGEX$`).
//! * `${` that does not start a valid reference is an error (`${`, `${}`, `${ foo}`, `${foo!}`).
//!
//! Where a modifier's text ends follows compose-go exactly: the closing `}` is found by counting
//! `{` and `}` (compose-go skips the character right after each `{` while counting); when the
//! braces never balance, the last `}` on the same line closes the reference. A reference with a
//! modifier must be closed on the line it starts on.

use std::fmt;

/// The modifier of a braced reference (`${NAME<modifier>text}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modifier {
    /// `:-`: use the text when the variable is unset or empty.
    DefaultIfUnsetOrEmpty,
    /// `-`: use the text when the variable is unset.
    DefaultIfUnset,
    /// `:+`: use the text when the variable is set and non-empty, else the empty string.
    ReplaceIfNonEmpty,
    /// `+`: use the text when the variable is set (even empty), else the empty string.
    ReplaceIfSet,
    /// `:?`: fail with the text as message when the variable is unset or empty.
    RequiredNonEmpty,
    /// `?`: fail with the text as message when the variable is unset.
    Required,
}

impl Modifier {
    /// The modifier as written in a template (`":-"`, `"-"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Modifier::DefaultIfUnsetOrEmpty => ":-",
            Modifier::DefaultIfUnset => "-",
            Modifier::ReplaceIfNonEmpty => ":+",
            Modifier::ReplaceIfSet => "+",
            Modifier::RequiredNonEmpty => ":?",
            Modifier::Required => "?",
        }
    }

    fn from_char(c: u8, colon: bool) -> Option<Modifier> {
        Some(match (c, colon) {
            (b'-', true) => Modifier::DefaultIfUnsetOrEmpty,
            (b'-', false) => Modifier::DefaultIfUnset,
            (b'+', true) => Modifier::ReplaceIfNonEmpty,
            (b'+', false) => Modifier::ReplaceIfSet,
            (b'?', true) => Modifier::RequiredNonEmpty,
            (b'?', false) => Modifier::Required,
            _ => return None,
        })
    }
}

impl fmt::Display for Modifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One variable reference met while interpolating.
///
/// References are listed in the order they were evaluated: an outer reference comes before the
/// references inside its default. References inside a default, replacement or message that was
/// not needed are not evaluated and so not listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The variable name.
    pub name: String,
    /// The variable was set (possibly to the empty string).
    pub resolved: bool,
    /// The result came from the text after the modifier (a `-`/`:-` default or a `+`/`:+`
    /// replacement) instead of from the variable.
    pub used_default: bool,
    /// The modifier of the reference, `None` for `$NAME` and `${NAME}`.
    pub modifier: Option<Modifier>,
}

impl Reference {
    /// True when the variable was unset and nothing supplied a value, i.e. a plain `$NAME` /
    /// `${NAME}` that became the empty string. This is exactly when Docker Compose warns
    /// `The "NAME" variable is not set. Defaulting to a blank string.`
    pub fn defaulted_to_blank(&self) -> bool {
        !self.resolved && self.modifier.is_none()
    }
}

/// An interpolation failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// A `${NAME:?message}` or `${NAME?message}` whose variable is missing.
    #[error("required variable {name} is missing a value{}", colon_message(.message))]
    Missing {
        /// The required variable.
        name: String,
        /// The (interpolated) message after `:?` / `?`; may be empty.
        message: String,
    },
    /// The template is not valid (e.g. `${`, `${}`, `${ foo}`, `${foo!}`).
    #[error(
        "invalid interpolation format for {template:?}: {reason} \
         (invalid template; you may need to escape any $ with another $)"
    )]
    Invalid {
        /// The whole template given to [`interpolate`].
        template: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another error, located at a path of the compose model (see [`InterpolateError::at_path`]).
    #[error("{}", at_path_message(.path, .inner))]
    AtPath {
        /// Dotted path of the value, e.g. `myservice.environment.TESTVAR`.
        path: String,
        /// The error met there (never itself `AtPath`).
        inner: Box<InterpolateError>,
    },
}

impl InterpolateError {
    /// Attaches the path of the interpolated value, giving Docker Compose's messages:
    /// `error while interpolating <path>: <error>` for a missing variable, and
    /// `invalid interpolation format for <path>.\nYou may need to escape any $ with another $.\n<template>`
    /// for an invalid template. Re-attaching replaces the previous path.
    pub fn at_path(self, path: impl Into<String>) -> InterpolateError {
        let inner = match self {
            InterpolateError::AtPath { inner, .. } => inner,
            other => Box::new(other),
        };
        InterpolateError::AtPath { path: path.into(), inner }
    }

    /// The error without any path attached.
    pub fn innermost(&self) -> &InterpolateError {
        match self {
            InterpolateError::AtPath { inner, .. } => inner.innermost(),
            other => other,
        }
    }
}

fn colon_message(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn at_path_message(path: &str, inner: &InterpolateError) -> String {
    match inner.innermost() {
        InterpolateError::Invalid { template, .. } => format!(
            "invalid interpolation format for {path}.\nYou may need to escape any $ with another $.\n{template}"
        ),
        other => format!("error while interpolating {path}: {other}"),
    }
}

/// Interpolates `template`, looking variables up with `lookup`. Returns the result and the
/// references in order.
///
/// `lookup` returns `None` for an unset variable and `Some("")` for a variable set to the empty
/// string; the two differ for the modifiers without `:`. It is called once per evaluated
/// reference. Unset variables without a modifier become the empty string; check
/// [`Reference::defaulted_to_blank`] to warn about them. The first error met stops the work.
pub fn interpolate(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<Reference>), InterpolateError> {
    let mut expander = Expander { whole: template, lookup, references: Vec::new(), depth: 0 };
    let result = expander.expand(template)?;
    Ok((result, expander.references))
}

/// Fast check: true if the string contains a `$` (so callers can skip work).
pub fn has_vars(s: &str) -> bool {
    s.contains('$')
}

/// How deeply defaults, replacements and messages may nest (`${A:-${B:-...}}`).
const MAX_NESTING: usize = 64;

struct Expander<'a> {
    whole: &'a str,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    references: Vec<Reference>,
    /// Current nesting level of [`Expander::expand`].
    depth: usize,
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// End (exclusive) of the name starting at `start`; `start` when there is none.
fn scan_name(bytes: &[u8], start: usize) -> usize {
    match bytes.get(start) {
        Some(&b) if is_name_start(b) => {}
        _ => return start,
    }
    let mut end = start + 1;
    while end < bytes.len() && is_name_char(bytes[end]) {
        end += 1;
    }
    end
}

/// Index of the `}` closing the reference whose `${` is at `start`, as compose-go finds it:
/// braces are counted (skipping the character right after each `{`) up to the first balance;
/// when they never balance, the last `}` of the line closes the reference. `None` when no `}`
/// follows on the line.
fn closing_brace(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut last = None;
    let mut i = start;
    while i < bytes.len() && bytes[i] != b'\n' {
        match bytes[i] {
            b'}' => {
                last = Some(i);
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i);
                }
            }
            b'{' => {
                depth += 1;
                match bytes.get(i + 1) {
                    Some(b'\n') | None => break,
                    Some(b'}') => last = Some(i + 1),
                    Some(_) => {}
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    last
}

/// Text of the character at byte `at` of `s`, for error messages.
fn char_at(s: &str, at: usize) -> String {
    s[at..].chars().next().map(String::from).unwrap_or_default()
}

impl Expander<'_> {
    fn invalid(&self, reason: String) -> InterpolateError {
        InterpolateError::Invalid { template: self.whole.to_owned(), reason }
    }

    fn expand(&mut self, s: &str) -> Result<String, InterpolateError> {
        if self.depth > MAX_NESTING {
            return Err(self.invalid(format!("references nested more than {MAX_NESTING} levels deep")));
        }
        self.depth += 1;
        let result = self.expand_flat(s);
        self.depth -= 1;
        result
    }

    /// [`Expander::expand`] without the nesting check.
    fn expand_flat(&mut self, s: &str) -> Result<String, InterpolateError> {
        let bytes = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut literal_from = 0;
        let mut search_from = 0;
        while let Some(offset) = s[search_from..].find('$') {
            let dollar = search_from + offset;
            let (value, end) = match bytes.get(dollar + 1) {
                Some(b'$') => ("$".to_owned(), dollar + 2),
                Some(&b) if is_name_start(b) => {
                    let end = scan_name(bytes, dollar + 1);
                    (self.plain(&s[dollar + 1..end]), end)
                }
                Some(b'{') => self.braced(s, dollar)?,
                _ => {
                    search_from = dollar + 1;
                    continue;
                }
            };
            out.push_str(&s[literal_from..dollar]);
            out.push_str(&value);
            literal_from = end;
            search_from = end;
        }
        out.push_str(&s[literal_from..]);
        Ok(out)
    }

    fn plain(&mut self, name: &str) -> String {
        let value = (self.lookup)(name);
        self.references.push(Reference {
            name: name.to_owned(),
            resolved: value.is_some(),
            used_default: false,
            modifier: None,
        });
        value.unwrap_or_default()
    }

    /// Evaluates the braced reference whose `$` is at `dollar`; returns its value and the index
    /// just after it.
    fn braced(&mut self, s: &str, dollar: usize) -> Result<(String, usize), InterpolateError> {
        let bytes = s.as_bytes();
        let name_start = dollar + 2;
        let name_end = scan_name(bytes, name_start);
        if name_end == name_start {
            let reason = match bytes.get(name_start) {
                None => "\"${\" at the end of the template".to_owned(),
                Some(b'}') => "empty variable name in \"${}\"".to_owned(),
                Some(_) => format!("variable name cannot start with {:?}", char_at(s, name_start)),
            };
            return Err(self.invalid(reason));
        }
        let name = &s[name_start..name_end];
        let (modifier, body_start) = match bytes.get(name_end) {
            None => return Err(self.invalid(format!("missing \"}}\" after \"${{{name}\""))),
            Some(b'}') => return Ok((self.plain(name), name_end + 1)),
            Some(b':') => match bytes.get(name_end + 1) {
                None => return Err(self.invalid(format!("missing modifier after \"${{{name}:\""))),
                Some(&c) => match Modifier::from_char(c, true) {
                    Some(m) => (m, name_end + 2),
                    None => {
                        return Err(self.invalid(format!(
                            "unknown modifier \":{}\" after variable name \"{name}\" (expected :- :+ or :?)",
                            char_at(s, name_end + 1)
                        )))
                    }
                },
            },
            Some(&c) => match Modifier::from_char(c, false) {
                Some(m) => (m, name_end + 1),
                None => {
                    return Err(self.invalid(format!(
                        "unexpected character {:?} after variable name \"{name}\"",
                        char_at(s, name_end)
                    )))
                }
            },
        };
        let Some(close) = closing_brace(bytes, dollar) else {
            return Err(self.invalid(format!("missing \"}}\" to close \"${{{name}{modifier}\"")));
        };
        let body = &s[body_start..close];
        let value = self.apply(name, modifier, body)?;
        Ok((value, close + 1))
    }

    fn apply(&mut self, name: &str, modifier: Modifier, body: &str) -> Result<String, InterpolateError> {
        let value = (self.lookup)(name);
        let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
        let (use_body, fail) = match modifier {
            Modifier::DefaultIfUnsetOrEmpty => (!non_empty, false),
            Modifier::DefaultIfUnset => (value.is_none(), false),
            Modifier::ReplaceIfNonEmpty => (non_empty, false),
            Modifier::ReplaceIfSet => (value.is_some(), false),
            Modifier::RequiredNonEmpty => (false, !non_empty),
            Modifier::Required => (false, value.is_none()),
        };
        self.references.push(Reference {
            name: name.to_owned(),
            resolved: value.is_some(),
            used_default: use_body,
            modifier: Some(modifier),
        });
        if fail {
            let message = self.expand(body)?;
            return Err(InterpolateError::Missing { name: name.to_owned(), message });
        }
        if use_body {
            return self.expand(body);
        }
        match modifier {
            // Not replaced: the value is empty or unset, and the result is empty either way.
            Modifier::ReplaceIfNonEmpty | Modifier::ReplaceIfSet => Ok(String::new()),
            _ => Ok(value.unwrap_or_default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn run(template: &str, vars: &HashMap<String, String>) -> Result<(String, Vec<Reference>), InterpolateError> {
        interpolate(template, &|k| vars.get(k).cloned())
    }

    fn reference(name: &str, resolved: bool, used_default: bool, m: Option<Modifier>) -> Reference {
        Reference { name: name.to_owned(), resolved, used_default, modifier: m }
    }

    #[test]
    fn plain_references_report_set_and_unset() {
        let vars = env(&[("FOO", "first"), ("EMPTY", "")]);
        let (out, refs) = run("$FOO ${EMPTY} ${MISSING}", &vars).unwrap();
        assert_eq!(out, "first  ");
        assert_eq!(
            refs,
            vec![
                reference("FOO", true, false, None),
                reference("EMPTY", true, false, None),
                reference("MISSING", false, false, None),
            ]
        );
        let blanks: Vec<_> = refs.iter().filter(|r| r.defaulted_to_blank()).collect();
        assert_eq!(blanks.len(), 1);
        assert_eq!(blanks[0].name, "MISSING");
    }

    #[test]
    fn used_default_for_each_modifier() {
        let vars = env(&[("SET", "v"), ("EMPTY", "")]);
        let cases: &[(&str, &str, bool, bool)] = &[
            // template, expected, resolved, used_default
            ("${SET:-d}", "v", true, false),
            ("${EMPTY:-d}", "d", true, true),
            ("${UNSET:-d}", "d", false, true),
            ("${SET-d}", "v", true, false),
            ("${EMPTY-d}", "", true, false),
            ("${UNSET-d}", "d", false, true),
            ("${SET:+r}", "r", true, true),
            ("${EMPTY:+r}", "", true, false),
            ("${UNSET:+r}", "", false, false),
            ("${SET+r}", "r", true, true),
            ("${EMPTY+r}", "r", true, true),
            ("${UNSET+r}", "", false, false),
            ("${SET:?m}", "v", true, false),
            ("${SET?m}", "v", true, false),
            ("${EMPTY?m}", "", true, false),
        ];
        for &(template, expected, resolved, used_default) in cases {
            let (out, refs) = run(template, &vars).unwrap();
            assert_eq!(out, expected, "{template}");
            assert_eq!(refs.len(), 1, "{template}");
            assert_eq!(refs[0].resolved, resolved, "{template}");
            assert_eq!(refs[0].used_default, used_default, "{template}");
            assert!(refs[0].modifier.is_some(), "{template}");
            assert!(!refs[0].defaulted_to_blank(), "{template}");
        }
    }

    #[test]
    fn nested_references_are_listed_after_outer_and_only_when_evaluated() {
        let vars = env(&[("A", "value")]);
        let (out, refs) = run("${B:-${C:-x}}", &vars).unwrap();
        assert_eq!(out, "x");
        let names: Vec<_> = refs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["B", "C"]);
        assert!(refs.iter().all(|r| r.used_default && !r.resolved));

        // Lazy: the default of a set variable is not evaluated.
        let (out, refs) = run("${A:-${NOPE}}", &vars).unwrap();
        assert_eq!(out, "value");
        assert_eq!(refs, vec![reference("A", true, false, Some(Modifier::DefaultIfUnsetOrEmpty))]);

        // The nested plain reference warns, the outer one does not.
        let (_, refs) = run("${A2:-${B2}}", &vars).unwrap();
        let blanks: Vec<_> = refs.iter().filter(|r| r.defaulted_to_blank()).map(|r| r.name.as_str()).collect();
        assert_eq!(blanks, ["B2"]);
    }

    #[test]
    fn lookup_called_once_per_reference() {
        let calls = std::cell::RefCell::new(Vec::new());
        let lookup = |k: &str| {
            calls.borrow_mut().push(k.to_owned());
            None
        };
        let (out, _) = interpolate("$A ${B:-$C} ${D+x} $$E", &lookup).unwrap();
        assert_eq!(out, "   $E");
        assert_eq!(*calls.borrow(), ["A", "B", "C", "D"]);
    }

    #[test]
    fn escapes_and_literal_dollars() {
        let vars = env(&[("FOO", "f")]);
        for (template, expected) in [
            ("$$", "$"),
            ("$$$FOO", "$f"),
            ("$$$$", "$$"),
            ("$${FOO}", "${FOO}"),
            ("$1", "$1"),
            ("$-x", "$-x"),
            ("price: 5$", "price: 5$"),
            ("$é", "$é"),
            ("é$FOO.é", "éf.é"),
        ] {
            assert_eq!(run(template, &vars).unwrap().0, expected, "{template}");
        }
        assert!(run("$$", &vars).unwrap().1.is_empty());
    }

    #[test]
    fn braces_in_defaults() {
        let vars = env(&[]);
        for (template, expected) in [
            ("${A:-{}}", "{}"),
            ("${A:-x}}", "x}"),
            ("${A:-{x}", "{x"),
            ("${A:-a}${B:-b}", "ab"),
            ("${A:-x} and }", "x and }"),
            ("${A:-${B:-1}${C:-2}}-${D:-3}", "12-3"),
            // compose-go skips the character after each `{` while counting braces.
            ("${A:-{}} x}", "{}} x"),
            ("${A:-{}", "{"),
        ] {
            assert_eq!(run(template, &vars).unwrap().0, expected, "{template}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let vars = env(&[]);
        let nested = |n: usize| format!("{}x{}", "${A:-".repeat(n), "}".repeat(n));
        assert_eq!(run(&nested(MAX_NESTING), &vars).unwrap().0, "x");
        let err = run(&nested(100_000), &vars).unwrap_err();
        assert!(err.to_string().contains("nested more than"), "{err}");
    }

    #[test]
    fn long_lines_stay_fast() {
        let vars = env(&[("A", "a")]);
        let template = "${A:-x}-${B:-y} ".repeat(50_000);
        let (out, refs) = run(&template, &vars).unwrap();
        assert_eq!(out, "a-y ".repeat(50_000));
        assert_eq!(refs.len(), 100_000);
    }

    #[test]
    fn modifier_text_must_close_on_its_line() {
        let vars = env(&[]);
        assert!(matches!(run("${A:-x\n}", &vars), Err(InterpolateError::Invalid { .. })));
        assert_eq!(run("${A:-x}\n}", &vars).unwrap().0, "x\n}");
        assert_eq!(run("${A}\n${B:-y}", &vars).unwrap().0, "\ny");
    }

    #[test]
    fn invalid_templates() {
        let vars = env(&[]);
        for template in [
            "${",
            "${}",
            "${ }",
            "${ foo}",
            "${foo }",
            "${foo!}",
            "${foo",
            "${foo:",
            "${foo:x}",
            "${foo:-bar",
            "${1}",
            "x ${A:-${B}",
            "${A:-${}}",
        ] {
            let err = run(template, &vars).unwrap_err();
            match &err {
                InterpolateError::Invalid { template: t, .. } => assert_eq!(t, template),
                other => panic!("{template}: unexpected {other:?}"),
            }
            let message = err.to_string();
            assert!(message.starts_with("invalid interpolation format for "), "{message}");
            assert!(message.contains("invalid template"), "{message}");
        }
    }

    #[test]
    fn error_messages() {
        let vars = env(&[]);
        let err = run("${FOO:?}", &vars).unwrap_err();
        assert_eq!(err.to_string(), "required variable FOO is missing a value");
        let err = run("${FOO?need ${BAR:-it}}", &vars).unwrap_err();
        assert_eq!(err, InterpolateError::Missing { name: "FOO".into(), message: "need it".into() });
        assert_eq!(err.to_string(), "required variable FOO is missing a value: need it");
        assert_eq!(
            err.clone().at_path("svc.environment.X").to_string(),
            "error while interpolating svc.environment.X: required variable FOO is missing a value: need it"
        );

        let err = run("${foo!}", &vars).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid interpolation format for \"${foo!}\": unexpected character \"!\" after \
             variable name \"foo\" (invalid template; you may need to escape any $ with another $)"
        );
        let located = err.at_path("a.b").at_path("servicea.image");
        assert_eq!(
            located.to_string(),
            "invalid interpolation format for servicea.image.\nYou may need to escape any $ with another $.\n${foo!}"
        );
        assert!(matches!(located.innermost(), InterpolateError::Invalid { .. }));
    }

    #[test]
    fn errors_in_unused_branches_are_not_raised() {
        let vars = env(&[("A", "1")]);
        assert_eq!(run("${A:-${}", &vars).unwrap().0, "1");
        assert_eq!(run("${A?${B?boom}}", &vars).unwrap().0, "1");
        assert!(run("${A+${B?boom}}", &vars).is_err());
    }

    #[test]
    fn has_vars_checks_for_dollar() {
        assert!(has_vars("a$b"));
        assert!(has_vars("$"));
        assert!(!has_vars("plain"));
        assert!(!has_vars(""));
    }

    #[test]
    fn modifier_strings() {
        let all = [
            Modifier::DefaultIfUnsetOrEmpty,
            Modifier::DefaultIfUnset,
            Modifier::ReplaceIfNonEmpty,
            Modifier::ReplaceIfSet,
            Modifier::RequiredNonEmpty,
            Modifier::Required,
        ];
        let strs: Vec<_> = all.iter().map(|m| m.to_string()).collect();
        assert_eq!(strs, [":-", "-", ":+", "+", ":?", "?"]);
    }
}
