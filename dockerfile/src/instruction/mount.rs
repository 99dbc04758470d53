//! `RUN --mount=type=...,key=value,...`: bind, cache, tmpfs, secret and ssh mounts.
//!
//! Mounts are checked when the Dockerfile is parsed (fields whose value holds a `$` are checked once expanded),
//! and parsed again from the written text when the instruction is expanded.

use crate::error::ErrorKind;

/// The kind of a `RUN --mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MountType {
    /// A read-only bind of a stage, image or the context (the default).
    #[default]
    Bind,
    /// A persistent cache directory.
    Cache,
    /// A temporary filesystem.
    Tmpfs,
    /// A build secret.
    Secret,
    /// An SSH agent socket.
    Ssh,
}

/// Sharing mode of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareMode {
    /// Concurrent builds share the cache.
    Shared,
    /// Each concurrent build gets its own cache.
    Private,
    /// Concurrent builds wait for each other.
    Locked,
}

/// Expands one value of a mount specification.
pub type Expander<'a> = &'a dyn Fn(&str) -> Result<String, ErrorKind>;

/// A `RUN --mount` specification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mount {
    /// The text as written after `--mount=`.
    pub raw: String,
    /// `type=`.
    pub kind: MountType,
    /// `from=`: a stage name or index, or an image.
    pub from: Option<String>,
    /// `source=`/`src=`.
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=`.
    pub target: Option<String>,
    /// `readonly`/`ro` (binds and secrets default to read-only, caches and tmpfs to read-write).
    pub read_only: bool,
    /// `size=` of a tmpfs, in bytes.
    pub size_limit: Option<u64>,
    /// `id=`.
    pub id: Option<String>,
    /// `sharing=` of a cache.
    pub sharing: Option<ShareMode>,
    /// `required` (secret, ssh).
    pub required: bool,
    /// `env=` (secret): also expose the secret as this variable.
    pub env: Option<String>,
    /// `mode=` (octal).
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
}

impl Mount {
    /// Parses a mount. With `expand`, every value is expanded first; without, fields whose value holds a `$` are
    /// left for later.
    pub fn parse(raw: &str, expand: Option<Expander<'_>>) -> Result<Mount, ErrorKind> {
        let bad = |msg: String| ErrorKind::syntax(msg);
        let mut m = Mount { raw: raw.to_string(), ..Mount::default() };
        let mut ro_auto = true;
        for field in csv_fields(raw).map_err(|e| bad(format!("failed to parse csv mounts: {e}")))? {
            let (key, value) = match field.split_once('=') {
                Some((k, v)) => (k.to_lowercase(), v.to_string()),
                None => {
                    match &*field.to_lowercase() {
                        "readonly" | "ro" => {
                            m.read_only = true;
                            ro_auto = false;
                        }
                        "readwrite" | "rw" => {
                            m.read_only = false;
                            ro_auto = false;
                        }
                        "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => m.required = true,
                        "required" => {
                            return Err(bad(format!("unexpected key 'required' for mount type '{}'", m.kind.name())))
                        }
                        _ => return Err(bad(format!("invalid field '{field}' must be a key=value pair"))),
                    }
                    continue;
                }
            };
            let value = match expand {
                Some(f) => f(&value)?,
                None if key == "from" => {
                    if value.find('$').is_some_and(|i| i != value.len() - 1) {
                        return Err(bad(format!(
                            "'{key}' doesn't support variable expansion, define alias stage instead"
                        )));
                    }
                    value
                }
                None if value.contains('$') => continue,
                None => value,
            };
            let parse_bool = |v: &str| go_bool(v).ok_or_else(|| bad(format!("invalid value for {key}: {v}")));
            match &*key {
                "type" => {
                    m.kind = match &*value.to_lowercase() {
                        "bind" => MountType::Bind,
                        "cache" => MountType::Cache,
                        "tmpfs" => MountType::Tmpfs,
                        "secret" => MountType::Secret,
                        "ssh" => MountType::Ssh,
                        _ => return Err(bad(format!("unsupported mount type \"{value}\""))),
                    }
                }
                "from" => m.from = Some(value),
                "source" | "src" => m.source = Some(value),
                "target" | "dst" | "destination" => m.target = Some(value),
                "readonly" | "ro" => {
                    m.read_only = parse_bool(&value)?;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.read_only = !parse_bool(&value)?;
                    ro_auto = false;
                }
                "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => m.required = parse_bool(&value)?,
                "size" if m.kind == MountType::Tmpfs => {
                    m.size_limit =
                        Some(ram_in_bytes(&value).ok_or_else(|| bad(format!("invalid value for size: {value}")))?)
                }
                "required" | "size" => {
                    return Err(bad(format!("unexpected key '{key}' for mount type '{}'", m.kind.name())))
                }
                "id" => m.id = Some(value),
                "sharing" => {
                    m.sharing = Some(match &*value.to_lowercase() {
                        "shared" => ShareMode::Shared,
                        "private" => ShareMode::Private,
                        "locked" => ShareMode::Locked,
                        _ => return Err(bad(format!("unsupported sharing value \"{value}\""))),
                    })
                }
                "mode" => {
                    m.mode = Some(
                        u32::from_str_radix(&value, 8).map_err(|_| bad(format!("invalid value {value} for mode")))?,
                    )
                }
                "uid" => m.uid = Some(value.parse().map_err(|_| bad(format!("invalid value {value} for uid")))?),
                "gid" => m.gid = Some(value.parse().map_err(|_| bad(format!("invalid value {value} for gid")))?),
                "env" => m.env = Some(value),
                _ => return Err(bad(format!("unexpected key '{key}' in '{field}'"))),
            }
        }
        m.check(ro_auto)?;
        Ok(m)
    }

    fn check(&mut self, ro_auto: bool) -> Result<(), ErrorKind> {
        let kind = self.kind.name();
        if !matches!(self.kind, MountType::Secret | MountType::Ssh | MountType::Cache) {
            for (set, what) in [(self.mode.is_some(), "mode"), (self.uid.is_some(), "uid"), (self.gid.is_some(), "gid")]
            {
                if set {
                    return Err(ErrorKind::syntax(format!("{what} not allowed for \"{kind}\" type mounts")));
                }
            }
        }
        if ro_auto {
            self.read_only = !matches!(self.kind, MountType::Cache | MountType::Tmpfs);
        }
        if self.kind == MountType::Secret {
            if self.from.is_some() {
                return Err(ErrorKind::syntax("secret mount should not have a from"));
            }
            if self.sharing.is_some() {
                return Err(ErrorKind::syntax("secret mount should not define sharing"));
            }
            if self.source.is_none() && self.target.is_none() && self.id.is_none() {
                return Err(ErrorKind::syntax("invalid secret mount. one of source, target required"));
            }
            if self.source.is_some() && self.id.is_some() {
                return Err(ErrorKind::syntax("both source and id can't be set"));
            }
        }
        if self.sharing.is_some() && self.kind != MountType::Cache {
            return Err(ErrorKind::syntax(format!("invalid cache sharing set for {kind} mount")));
        }
        Ok(())
    }
}

impl MountType {
    /// The type's name as written in `type=`.
    pub fn name(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// `strconv.ParseBool`'s spellings.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A size like `64m`, `1.5GiB`, `100` (bytes), with binary multiples.
fn ram_in_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let num_len = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let value: f64 = s[..num_len].parse().ok()?;
    let unit = s[num_len..].trim_start_matches(' ').to_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let exp = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    Some((value * 1024f64.powi(exp)) as u64)
}

/// Splits one CSV record: fields separated by commas, a field starting with `"` is quoted (`""` is a quote).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field".to_string()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Ok(out);
                }
                Some(',') => out.push(field),
                Some(_) => return Err("extraneous or missing \" in quoted-field".to_string()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        out.push(field);
                        return Ok(out);
                    }
                    Some(',') => {
                        out.push(std::mem::take(&mut field));
                        break;
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts() {
        let m = Mount::parse("type=cache,target=/root/.cache,sharing=locked,id=pip", None).unwrap();
        assert_eq!((m.kind, m.read_only, m.sharing), (MountType::Cache, false, Some(ShareMode::Locked)));
        let m = Mount::parse("from=builder,source=/out,target=/in", None).unwrap();
        assert_eq!((m.kind, m.read_only, m.from.as_deref()), (MountType::Bind, true, Some("builder")));
        let m = Mount::parse("type=tmpfs,target=/t,size=64m", None).unwrap();
        assert_eq!(m.size_limit, Some(64 << 20));
        let m = Mount::parse("type=secret,id=tok,required,env=TOKEN,mode=0400", None).unwrap();
        assert!(m.required && m.mode == Some(0o400));
        assert!(Mount::parse("type=bogus", None).is_err());
        assert!(Mount::parse("type=bind,mode=0700,target=/x", None).is_err());
        assert!(Mount::parse("target=/x,what=1", None).is_err());
        assert!(Mount::parse("from=$STAGE,target=/x", None).is_err());
        assert!(Mount::parse("type=$T,target=/x", None).is_ok());
        let expand = |v: &str| -> Result<String, ErrorKind> { Ok(v.replace("$T", "cache")) };
        assert_eq!(Mount::parse("type=$T,target=/x", Some(&expand)).unwrap().kind, MountType::Cache);
    }

    #[test]
    fn csv() {
        assert_eq!(csv_fields("a,\"b,c\",d").unwrap(), vec!["a", "b,c", "d"]);
        assert!(csv_fields("\"a").is_err());
    }
}
