//! Instruction flags (`--name=value`, `--bool`, repeated `--name=v1 --name=v2`): checking them against what an
//! instruction accepts, and Go-style durations for `HEALTHCHECK`.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::ErrorKind;

/// The kind of value a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FlagType {
    /// `--flag`, `--flag=true|false`.
    Bool,
    /// `--flag=value`, once.
    String,
    /// `--flag=value`, any number of times.
    Strings,
}

/// Flags checked against a specification.
#[derive(Debug, Default)]
pub(super) struct Flags {
    values: HashMap<&'static str, Vec<String>>,
    bools: HashMap<&'static str, bool>,
}

impl Flags {
    /// Checks `args` (as the parser gives them) for `instruction`, which accepts `spec`.
    pub(super) fn parse(
        instruction: &str,
        args: &[String],
        spec: &[(&'static str, FlagType)],
    ) -> Result<Self, ErrorKind> {
        let mut out = Flags::default();
        let mut used: Vec<&str> = Vec::new();
        for a in args {
            if a == "--" {
                break;
            }
            let Some(body) = a.strip_prefix("--") else {
                return Err(ErrorKind::syntax(format!("arg should start with -- : {a}")));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let flag = format!("--{name}");
            let Some(&(key, kind)) = spec.iter().find(|(k, _)| *k == name) else {
                return Err(ErrorKind::UnknownFlag { instruction: instruction.to_uppercase(), flag });
            };
            if used.contains(&key) && kind != FlagType::Strings {
                return Err(ErrorKind::syntax(format!("duplicate flag specified: {flag}")));
            }
            used.push(key);
            match kind {
                FlagType::Bool => {
                    let v = match value.map(str::to_lowercase).as_deref() {
                        None => true,
                        Some("") => return Err(ErrorKind::syntax(format!("missing a value on flag: {flag}"))),
                        Some("true") => true,
                        Some("false") => false,
                        Some(other) => {
                            return Err(ErrorKind::syntax(format!(
                                "expecting boolean value for flag {flag}, not: {other}"
                            )))
                        }
                    };
                    out.bools.insert(key, v);
                }
                FlagType::String | FlagType::Strings => {
                    let Some(v) = value else {
                        return Err(ErrorKind::syntax(format!("missing a value on flag: {flag}")));
                    };
                    out.values.entry(key).or_default().push(v.to_string());
                }
            }
        }
        Ok(out)
    }

    /// A string flag's value; an empty value counts as not given.
    pub(super) fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last()).filter(|v| !v.is_empty()).cloned()
    }

    /// Every value of a repeatable flag.
    pub(super) fn strings(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// A bool flag's value if it was given.
    pub(super) fn bool(&self, name: &str) -> Option<bool> {
        self.bools.get(name).copied()
    }
}

/// Parses a Go duration (`300ms`, `1.5h`, `2h45m`, `0`); negative durations are refused.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("time: invalid duration {}", crate::parser::go_quote(s));
    let body = s.strip_prefix('+').unwrap_or(s);
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() || body.starts_with('-') {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    let mut rest = body;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {}", crate::parser::go_quote(s))),
            u => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    crate::parser::go_quote(u),
                    crate::parser::go_quote(s)
                ))
            }
        };
        total += value * nanos_per;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// A `HEALTHCHECK` interval flag: absent or zero is `None`; below one millisecond is refused.
pub(super) fn parse_interval(flags: &Flags, name: &str) -> Result<Option<Duration>, ErrorKind> {
    let Some(v) = flags.string(name) else { return Ok(None) };
    let d = parse_duration(&v).map_err(ErrorKind::Syntax)?;
    if d.is_zero() {
        return Ok(None);
    }
    if d < Duration::from_millis(1) {
        return Err(ErrorKind::syntax(format!("Interval \"{name}\" cannot be less than 1ms")));
    }
    Ok(Some(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1h2m3.5s").unwrap(), Duration::from_millis(3_723_500));
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "5", "s", "-1s", "1x", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flag_checks() {
        let spec = [("link", FlagType::Bool), ("from", FlagType::String), ("exclude", FlagType::Strings)];
        let args: Vec<String> =
            ["--link", "--from=a", "--exclude=x", "--exclude=y"].iter().map(|s| s.to_string()).collect();
        let f = Flags::parse("copy", &args, &spec).unwrap();
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert_eq!(f.strings("exclude"), vec!["x", "y"]);
        let unknown = Flags::parse("copy", &["--nope".to_string()], &spec).unwrap_err();
        assert_eq!(unknown.to_string(), "unknown flag for COPY: --nope");
        assert!(Flags::parse("copy", &["--from".to_string()], &spec).is_err());
        assert!(Flags::parse("copy", &["--from=a".to_string(), "--from=b".to_string()], &spec).is_err());
        assert!(Flags::parse("copy", &["--link=maybe".to_string()], &spec).is_err());
    }
}
