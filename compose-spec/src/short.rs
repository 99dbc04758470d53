//! Compose's short syntaxes, parsed into their long forms: ports, volumes, devices,
//! `KEY=VALUE` lists and shell-style command strings.

use crate::model::{BindOptions, Device, Port, ServiceVolume, VolumeOptions, VolumeType};

/// Parses `[HOST_IP:][HOST[-HOST]:]CONTAINER[-CONTAINER][/PROTO]` into one or more ports
/// (ranges expand to one port each, as Compose does).
pub fn parse_port(spec: &str) -> Result<Vec<Port>, String> {
    let bad = |why: &str| format!("invalid port {spec:?}: {why}");
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_string()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad("protocol must be tcp, udp or sctp"));
    }
    // An IPv6 host address is written in brackets: `[::1]:8080:80`.
    let (host_ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r.split_once(']').ok_or_else(|| bad("missing `]` after the IPv6 address"))?;
        let after = after.strip_prefix(':').ok_or_else(|| bad("expected `:` after the IPv6 address"))?;
        (Some(ip.to_string()), after)
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (None, rest),
            3 => (Some(parts[0].to_string()), &rest[parts[0].len() + 1..]),
            _ => {
                // `::1:8080:80`-style IPv6 without brackets: the last two parts are the ports.
                let idx = rest.rfind(':').and_then(|i| rest[..i].rfind(':')).expect("several colons");
                if rest[..idx].parse::<std::net::Ipv6Addr>().is_err() {
                    return Err(bad(
                        "too many `:`-separated parts (write an IPv6 host address as `[addr]:host:container`)",
                    ));
                }
                (Some(rest[..idx].to_string()), &rest[idx + 1..])
            }
        }
    };
    let (published, target) = match rest.split_once(':') {
        Some((p, t)) => (Some(p), t),
        None => (None, rest),
    };
    let targets = crate::formats::port_range(target).map_err(|e| bad(&e))?;
    let host_ip = host_ip.filter(|h| !h.is_empty());
    let mut out = Vec::new();
    let port = |target: u16, published: Option<String>| Port {
        mode: Some("ingress".into()),
        host_ip: host_ip.clone(),
        target,
        published,
        protocol: Some(protocol.clone()),
        ..Port::default()
    };
    match published.filter(|p| !p.is_empty()) {
        None => out.extend((targets.0..=targets.1).map(|t| port(t, None))),
        Some(p) => {
            let pubs = crate::formats::port_range(p).map_err(|e| bad(&e))?;
            let ntargets = targets.1 - targets.0;
            let npubs = pubs.1 - pubs.0;
            if ntargets == 0 {
                let published = if npubs == 0 { pubs.0.to_string() } else { p.to_string() };
                out.push(port(targets.0, Some(published)));
            } else if ntargets == npubs {
                for i in 0..=ntargets {
                    out.push(port(targets.0 + i, Some((pubs.0 + i).to_string())));
                }
            } else {
                return Err(bad("the host and container port ranges have different lengths"));
            }
        }
    }
    Ok(out)
}

/// True when a volume source names a host path rather than a named volume.
pub fn is_host_path(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~') || source.starts_with('$')
}

/// Parses `[SOURCE:]TARGET[:MODE]`.
pub fn parse_volume(spec: &str) -> Result<ServiceVolume, String> {
    let bad = |why: &str| format!("invalid volume {spec:?}: {why}");
    if spec.is_empty() {
        return Err(bad("empty specification"));
    }
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => return Err(bad("too many `:`-separated parts")),
    };
    if target.is_empty() {
        return Err(bad("the container path is empty"));
    }
    if !target.starts_with('/') {
        return Err(bad("the container path must be absolute"));
    }
    let mut v = ServiceVolume { target: target.to_string(), ..ServiceVolume::default() };
    match source.filter(|s| !s.is_empty()) {
        None => {
            v.kind = VolumeType::Volume;
            v.volume = Some(VolumeOptions::default());
        }
        Some(s) if is_host_path(s) => {
            v.kind = VolumeType::Bind;
            v.source = Some(s.to_string());
            v.bind = Some(BindOptions { create_host_path: Some(true), ..BindOptions::default() });
        }
        Some(s) => {
            v.kind = VolumeType::Volume;
            v.source = Some(s.to_string());
            v.volume = Some(VolumeOptions::default());
        }
    }
    if let Some(mode) = mode {
        for opt in mode.split(',') {
            match opt {
                "ro" => v.read_only = Some(true),
                "rw" => v.read_only = None,
                "nocopy" => {
                    if v.kind != VolumeType::Volume {
                        return Err(bad("`nocopy` applies to named volumes only"));
                    }
                    v.volume.get_or_insert_with(Default::default).nocopy = Some(true);
                }
                "z" | "Z" => {
                    v.bind.get_or_insert_with(Default::default).selinux = Some(opt.to_string());
                }
                "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                    v.bind.get_or_insert_with(Default::default).propagation = Some(opt.to_string());
                }
                "cached" | "delegated" | "consistent" => v.consistency = Some(opt.to_string()),
                other => return Err(bad(&format!("unknown mode {other:?}"))),
            }
        }
    }
    Ok(v)
}

/// Parses a device mapping `HOST[:CONTAINER[:PERMISSIONS]]`.
pub fn parse_device(spec: &str) -> Result<Device, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, permissions) = match parts.as_slice() {
        [s] => (*s, *s, "rwm"),
        [s, t] if !t.is_empty() && t.chars().all(|c| "rwm".contains(c)) => (*s, *s, *t),
        [s, t] => (*s, *t, "rwm"),
        [s, t, p] => (*s, *t, *p),
        _ => return Err(format!("invalid device {spec:?}: expected HOST[:CONTAINER[:PERMISSIONS]]")),
    };
    if source.is_empty() {
        return Err(format!("invalid device {spec:?}: empty host path"));
    }
    Ok(Device { source: source.into(), target: Some(target.into()), permissions: Some(permissions.into()) })
}

/// Splits a command string the way a POSIX shell splits words (quotes and backslashes),
/// as Compose does for `command:` and `entrypoint:` strings.
pub fn shell_split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("unterminated single quote in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some('\n') => {}
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err(format!("unterminated double quote in {s:?}")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(format!("unterminated double quote in {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') | None => {}
                    Some(x) => cur.push(x),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(s: &str) -> Vec<(Option<String>, u16, Option<String>, String)> {
        parse_port(s).unwrap().into_iter().map(|p| (p.host_ip, p.target, p.published, p.protocol.unwrap())).collect()
    }

    #[test]
    fn port_forms() {
        assert_eq!(ports("80"), vec![(None, 80, None, "tcp".into())]);
        assert_eq!(ports("8080:80/udp"), vec![(None, 80, Some("8080".into()), "udp".into())]);
        assert_eq!(ports("127.0.0.1:8001:8001")[0].0.as_deref(), Some("127.0.0.1"));
        assert_eq!(ports("3000-3002").len(), 3);
        assert_eq!(ports("9090-9091:8080-8081")[1], (None, 8081, Some("9091".into()), "tcp".into()));
        assert_eq!(ports("8000-8010:80")[0].2.as_deref(), Some("8000-8010"));
        assert_eq!(ports("[::1]:80:80")[0].0.as_deref(), Some("::1"));
        assert_eq!(ports("127.0.0.1::80")[0].2, None);
        assert!(parse_port("80:80:80:80x").is_err());
        assert!(parse_port("1:2:3:4").is_err());
        assert_eq!(ports("::1:8080:80")[0].0.as_deref(), Some("::1"));
        assert!(parse_port("99999").is_err());
        assert!(parse_port("80/icmp").is_err());
        assert!(parse_port("81-80").is_err());
        assert_eq!(ports("3000-3999").len(), 1000);
        assert!(parse_port("1-65535").unwrap_err().contains("at most 1000"));
        assert!(parse_port("8000-9000:80").is_err());
        assert!(parse_port("8000-8001:80-82").unwrap_err().contains("different lengths"));
    }

    #[test]
    fn volume_forms() {
        let v = parse_volume("/data").unwrap();
        assert_eq!((v.kind, v.source), (VolumeType::Volume, None));
        let v = parse_volume("./src:/app:ro").unwrap();
        assert_eq!(v.kind, VolumeType::Bind);
        assert_eq!(v.read_only, Some(true));
        let v = parse_volume("db:/var/lib/db:nocopy").unwrap();
        assert_eq!(v.volume.unwrap().nocopy, Some(true));
        assert!(parse_volume("a:b:c:d").is_err());
        assert!(parse_volume("data:relative").is_err());
        assert!(parse_volume("x:/y:bogus").is_err());
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_split("bundle exec thin -p 3000").unwrap(), ["bundle", "exec", "thin", "-p", "3000"]);
        assert_eq!(shell_split(r#"sh -c 'echo "hi there"'"#).unwrap(), ["sh", "-c", "echo \"hi there\""]);
        assert_eq!(shell_split(r#"a "b c" d\ e"#).unwrap(), ["a", "b c", "d e"]);
        assert_eq!(shell_split(r#"echo """#).unwrap(), ["echo", ""]);
        assert!(shell_split("echo 'oops").is_err());
    }
}
