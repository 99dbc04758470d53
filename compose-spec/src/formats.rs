//! The shapes single values must have before berth hands them to the kernel or to the file
//! system: names that become paths or kernel objects, addresses and subnets, user and group
//! ids, signals, CPU lists, MAC addresses, sysctl names, resource bounds.
//!
//! Each check returns, on failure, a lower-case message that says what is wrong and what is
//! allowed; [`crate::validate`] places it at the key in the file.

use std::net::IpAddr;

/// The most containers one service may ask for (`scale`, `deploy.replicas`).
pub const MAX_REPLICAS: u64 = 1000;

/// The most ports one port mapping may cover (`3000-3999:3000-3999`).
pub const MAX_PORT_RANGE: u32 = 1000;

/// The shortest IPv4 prefix accepted for a network's subnet.
pub const MIN_IPV4_PREFIX: u8 = 8;

/// The shortest IPv6 prefix accepted for a network's subnet.
pub const MIN_IPV6_PREFIX: u8 = 16;

/// The largest user or group id (2^32 - 2: 2^32 - 1 is `(uid_t) -1`, "no id").
pub const MAX_ID: u64 = u32::MAX as u64 - 1;

/// The longest host or domain name the kernel takes (`HOST_NAME_MAX`).
pub const MAX_HOSTNAME: usize = 64;

/// The resource limits `ulimits` may set (`setrlimit`).
pub const ULIMITS: [&str; 16] = [
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// The signals a container can be stopped with, without `SIG`.
pub const SIGNALS: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM",
    "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO",
    "PWR", "SYS",
];

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A service, network, volume, secret or config key: `^[a-zA-Z0-9._-]+$` (the compose
/// specification), and not made of dots only (berth uses these names in paths).
pub fn resource_key(kind: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.chars().all(|c| c == '.');
    if ok {
        return Ok(());
    }
    Err(format!("invalid {kind} name {name:?}: use only letters, digits, \".\", \"_\" and \"-\" (and not only dots)"))
}

/// A `container_name`: Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn container_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        return Ok(());
    }
    Err(format!(
        "invalid container name {name:?}: it must start with a letter or digit and contain only letters, digits, \
         \".\", \"_\" and \"-\""
    ))
}

/// A volume's name on the host (explicit `name:`, external or derived): Docker's local-driver
/// rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, as berth's volume store checks it.
pub fn volume_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        return Ok(());
    }
    Err(format!(
        "invalid volume name {name:?}: it must be at least two characters, start with a letter or digit and \
         contain only letters, digits, \".\", \"_\" and \"-\""
    ))
}

/// A network's, secret's or config's name on the host (`name:`, possibly external): anything
/// but empty, `.`, `..`, a `/` or a control character.
pub fn object_name(kind: &str, name: &str) -> Result<(), String> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name == "." || name == ".." {
        "\".\" and \"..\" are not names"
    } else if name.contains('/') {
        "it contains \"/\""
    } else if has_control(name) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(format!("invalid {kind} name {name:?}: {why}; a name must not be empty, \".\" or \"..\", nor contain \"/\""))
}

/// A `hostname` or `domainname`: at most 64 bytes, no `/`, whitespace or control characters.
pub fn hostname(what: &str, name: &str) -> Result<(), String> {
    if name.len() > MAX_HOSTNAME {
        return Err(format!(
            "invalid {what} {name:?}: it is {} bytes long, at most {MAX_HOSTNAME} are allowed",
            name.len()
        ));
    }
    if name.contains('/') || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("invalid {what} {name:?}: it must not contain \"/\", spaces or control characters"));
    }
    Ok(())
}

/// A network interface name (`interface_name`): the kernel's `dev_valid_name`.
pub fn interface_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if ok {
        return Ok(());
    }
    Err(format!(
        "invalid interface name {name:?}: it must be 1 to 15 bytes, not \".\" or \"..\", without \"/\", \":\" or \
         spaces"
    ))
}

/// An IPv4 or IPv6 address.
pub fn ip(what: &str, s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| format!("invalid {what} {s:?}: must be an IPv4 or IPv6 address"))
}

/// A subnet in CIDR notation (`172.28.0.0/16`, `2001:db8::/64`); host bits may be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// The address as written.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `ADDRESS/PREFIX`.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = |why: &str| format!("invalid subnet {s:?}: {why}");
        let (a, p) = s.split_once('/').ok_or_else(|| bad("expected ADDRESS/PREFIX, e.g. 172.28.0.0/16"))?;
        let addr: IpAddr = a.parse().map_err(|_| bad(&format!("{a:?} is not an IPv4 or IPv6 address")))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = p
            .parse::<u8>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| bad(&format!("the prefix length must be a number from 0 to {max}")))?;
        Ok(Cidr { addr, prefix })
    }

    fn bits(addr: IpAddr) -> (u128, u8) {
        match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        }
    }

    /// True when `addr` (of the same family) lies inside.
    pub fn contains(&self, addr: IpAddr) -> bool {
        if addr.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        let (a, width) = Cidr::bits(self.addr);
        let (b, _) = Cidr::bits(addr);
        let host = width - self.prefix;
        if host >= 128 {
            return true;
        }
        (a >> host) == (b >> host)
    }

    /// True when `other` lies wholly inside.
    pub fn covers(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }
}

/// A network's subnet: valid CIDR, and not so wide it covers most of the address space.
pub fn subnet(s: &str) -> Result<Cidr, String> {
    let c = Cidr::parse(s)?;
    let min = if c.addr.is_ipv4() { MIN_IPV4_PREFIX } else { MIN_IPV6_PREFIX };
    if c.prefix < min {
        let family = if c.addr.is_ipv4() { "IPv4" } else { "IPv6" };
        return Err(format!(
            "invalid subnet {s:?}: a /{} would cover {} of the {family} address space; use a prefix of /{min} or \
             longer",
            c.prefix,
            if c.prefix == 0 { "all" } else { "much" },
        ));
    }
    Ok(c)
}

/// An `extra_hosts` entry in its long form `host=address`: the address is an IPv4 or IPv6
/// address (the latter possibly in brackets), or `host-gateway`.
pub fn extra_host(entry: &str) -> Result<(), String> {
    let (host, addr) = entry.split_once('=').unwrap_or((entry, ""));
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("invalid extra host {entry:?}: the host name must not be empty or contain spaces"));
    }
    let bare = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')).unwrap_or(addr);
    if addr == "host-gateway" || bare.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    Err(format!(
        "invalid extra host {entry:?}: {addr:?} is not an IP address; use \"host:IP\" or \"host=IP\" with an IPv4 or \
         IPv6 address, or \"host-gateway\""
    ))
}

fn id_or_name(what: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u64>() {
            Ok(n) if n <= MAX_ID => Ok(()),
            _ => Err(format!("{what} id {s} is out of range: numeric ids go from 0 to {MAX_ID}")),
        };
    }
    if s.starts_with('-') || s.chars().any(|c| matches!(c, '/' | ':') || c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{what} {s:?} is neither an id (0 to {MAX_ID}) nor a name (no leading \"-\", no \"/\", \":\" or spaces)"
        ));
    }
    Ok(())
}

/// `user:`: `USER[:GROUP]`, each a name or a numeric id from 0 to 2^32 - 2.
pub fn user(s: &str) -> Result<(), String> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    id_or_name("user", u).map_err(|why| format!("invalid user {s:?}: {why}"))?;
    if let Some(g) = g {
        id_or_name("group", g).map_err(|why| format!("invalid user {s:?}: {why}"))?;
    }
    Ok(())
}

/// A `group_add` entry: a group name or id.
pub fn group(s: &str) -> Result<(), String> {
    id_or_name("group", s).map_err(|why| format!("invalid group {s:?}: {why}"))
}

/// A signal name (`SIGTERM`, `term`) or number (1 to 31).
pub fn signal(s: &str) -> Result<(), String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i64>() {
        return if (1..=31).contains(&n) {
            Ok(())
        } else {
            Err(format!("invalid signal {s:?}: signal numbers go from 1 to 31"))
        };
    }
    let upper = t.to_ascii_uppercase();
    if SIGNALS.contains(&upper.strip_prefix("SIG").unwrap_or(&upper)) {
        return Ok(());
    }
    Err(format!("invalid signal {s:?}: use a signal name such as SIGTERM, SIGINT or SIGQUIT, or a number from 1 to 31"))
}

/// A CPU or memory-node list: `0-3,5,7-8`.
pub fn cpuset(s: &str) -> Result<(), String> {
    let bad = |why: String| {
        Err(format!("invalid cpuset {s:?}: {why}; write CPUs as a list of numbers and ranges like \"0-3,5\""))
    };
    if s.trim().is_empty() {
        return bad("it is empty".into());
    }
    for part in s.split(',') {
        let num = |x: &str| x.trim().parse::<u32>().map_err(|_| format!("{x:?} is not a CPU number"));
        let r = match part.split_once('-') {
            Some((a, b)) => num(a).and_then(|a| num(b).map(|b| (a, b))),
            None => num(part).map(|a| (a, a)),
        };
        match r {
            Ok((a, b)) if a > b => return bad(format!("range {part:?} ends before it starts")),
            Ok(_) => {}
            Err(why) => return bad(why),
        }
    }
    Ok(())
}

/// A MAC address: six two-digit hex groups separated by `:` or `-`.
pub fn mac_address(s: &str) -> Result<(), String> {
    let sep = if s.contains('-') { '-' } else { ':' };
    let groups: Vec<&str> = s.split(sep).collect();
    if groups.len() == 6 && groups.iter().all(|g| g.len() == 2 && g.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Ok(());
    }
    Err(format!("invalid MAC address {s:?}: write six hex bytes like \"02:42:ac:11:00:02\""))
}

/// A sysctl name (`net.core.somaxconn` or `net/core/somaxconn`): it becomes a path under
/// `/proc/sys`, so no empty, `.` or `..` components.
pub fn sysctl_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "invalid sysctl {name:?}: {why}; write names like \"net.core.somaxconn\" or \"net/core/somaxconn\""
        ))
    };
    if name.is_empty() {
        return bad("the name is empty");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains spaces or control characters");
    }
    // With `/` separators a component may contain dots (`net/ipv4/conf/eth0.1/forwarding`).
    let sep = if name.contains('/') { '/' } else { '.' };
    if name.split(sep).any(|c| c.is_empty() || c == "." || c == "..") {
        return bad("it has an empty, \".\" or \"..\" component");
    }
    Ok(())
}

/// A `cgroup_parent`: a relative cgroup path (`my-group`, `a/b`) with no empty, `.` or `..`
/// component.
pub fn cgroup_parent(path: &str) -> Result<(), String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty()
        || trimmed.split('/').any(|c| c.is_empty() || c == "." || c == "..")
        || path.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "invalid cgroup_parent {path:?}: write a cgroup path such as \"my-group\" or \"a/b\", without empty, \".\" or \"..\" parts"
        ));
    }
    Ok(())
}

/// A port or a range of ports (`8000`, `8000-8010`) of at most [`MAX_PORT_RANGE`] ports.
pub fn port_range(s: &str) -> Result<(u16, u16), String> {
    let one = |x: &str| -> Result<u16, String> {
        x.trim().parse::<u16>().map_err(|_| format!("{x:?} is not a port number (0-65535)"))
    };
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let p = one(s)?;
            (p, p)
        }
    };
    if b < a {
        return Err(format!("range {s:?} ends before it starts"));
    }
    let n = u32::from(b - a) + 1;
    if n > MAX_PORT_RANGE {
        return Err(format!("range {s:?} covers {n} ports, at most {MAX_PORT_RANGE} are allowed in one mapping"));
    }
    Ok((a, b))
}

/// A path inside a container that must not climb out of where it is put (secret and config
/// targets): no `..` components.
pub fn no_parent_components(what: &str, path: &str) -> Result<(), String> {
    if path.split('/').any(|c| c == "..") {
        return Err(format!("invalid {what} {path:?}: it must not contain \"..\" components"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_keys() {
        for ok in ["web", "web.1", "my_db-2", "A", "..a"] {
            assert!(resource_key("service", ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "...", "a/b", "a b", "a\0b", "café"] {
            assert!(resource_key("service", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn container_names() {
        for ok in ["web", "w", "my-web_1.x", "9"] {
            assert!(container_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../../x/victim", "a/b", "-x", ".x", "_x", "a b", "a\0"] {
            assert!(container_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn volume_and_object_names() {
        assert!(volume_name("shop_data").is_ok());
        assert!(volume_name("my.vol-1").is_ok());
        for bad in ["", "a", "..", "a/b", "-a", "a b"] {
            assert!(volume_name(bad).is_err(), "{bad:?}");
        }
        for ok in ["n", "my.net", "corp_net-1", "with space"] {
            assert!(object_name("network", ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "/x", "a\0b", "a\nb"] {
            assert!(object_name("network", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostnames_and_interfaces() {
        assert!(hostname("hostname", "web-1.example.com").is_ok());
        assert!(hostname("hostname", "a/b").is_err());
        assert!(hostname("hostname", "a b").is_err());
        assert!(hostname("hostname", &"x".repeat(65)).is_err());
        assert!(hostname("hostname", &"x".repeat(64)).is_ok());
        assert!(interface_name("eth0").is_ok());
        for bad in ["", ".", "..", "a/b", "a:b", "averyveryverylongname"] {
            assert!(interface_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subnets() {
        let c = subnet("172.28.0.0/16").unwrap();
        assert!(c.contains("172.28.5.254".parse().unwrap()));
        assert!(!c.contains("172.29.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        assert!(c.covers(&Cidr::parse("172.28.5.0/24").unwrap()));
        assert!(!c.covers(&Cidr::parse("172.0.0.0/8").unwrap()));
        let c6 = subnet("2001:3984:3989::/64").unwrap();
        assert!(c6.contains("2001:3984:3989::1".parse().unwrap()));
        assert!(subnet("10.0.0.1/8").is_ok());
        for bad in
            ["300.1.1.0/24", "10.0.0.0", "10.0.0.0/33", "10.0.0.0/x", "0.0.0.0/0", "::/0", "10.0.0.0/7", "fd00::/8"]
        {
            assert!(subnet(bad).is_err(), "{bad}");
        }
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("1.2.3.4".parse().unwrap()));
        assert!(subnet("0.0.0.0/0").unwrap_err().contains("all of the IPv4 address space"));
    }

    #[test]
    fn extra_hosts() {
        for ok in ["a=1.2.3.4", "a=::1", "a=[::1]", "a=host-gateway", "my.host=2001:db8::1"] {
            assert!(extra_host(ok).is_ok(), "{ok}");
        }
        for bad in ["foo=not-ip", "=1.2.3.4", "a=", "a=1.2.3", "a b=1.2.3.4", "a=[::1"] {
            assert!(extra_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn users_and_groups() {
        for ok in ["0", "1000:1000", "postgres", "www-data:www-data", "4294967294", "nobody:65534", "user$"] {
            assert!(user(ok).is_ok(), "{ok}");
        }
        for bad in ["-1:-1", "-1", "4294967295", "99999999999999999999", ":100", "100:", "a:b:c", "a/b", "-rf"] {
            assert!(user(bad).is_err(), "{bad}");
        }
        assert!(group("audio").is_ok());
        assert!(group("-5").is_err());
    }

    #[test]
    fn signals() {
        for ok in ["SIGTERM", "sigint", "QUIT", "9", "SIGUSR1", "31"] {
            assert!(signal(ok).is_ok(), "{ok}");
        }
        for bad in ["", "0", "32", "-9", "SIGFOO", "TERMINATE"] {
            assert!(signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpusets_macs_sysctls() {
        for ok in ["0", "0-3", "0-3,5,7-8", "1,2"] {
            assert!(cpuset(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "3-1", "0-", "1,,2", "-1"] {
            assert!(cpuset(bad).is_err(), "{bad}");
        }
        for ok in ["02:42:ac:11:65:43", "02-42-AC-11-65-43"] {
            assert!(mac_address(ok).is_ok(), "{ok}");
        }
        for bad in ["02:42:ac:11:65", "02:42:ac:11:65:4g", "0242ac116543", "02:42-ac:11:65:43"] {
            assert!(mac_address(bad).is_err(), "{bad}");
        }
        for ok in ["net.core.somaxconn", "net/ipv4/conf/eth0.1/forwarding", "kernel.shm_rmid_forced"] {
            assert!(sysctl_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "net..core", "../../etc/x", "net/../../x", "/net/core", "net.core.", "a b"] {
            assert!(sysctl_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_ranges() {
        assert_eq!(port_range("80"), Ok((80, 80)));
        assert_eq!(port_range("0"), Ok((0, 0)));
        assert_eq!(port_range("8000-8999"), Ok((8000, 8999)));
        assert!(port_range("8000-9000").unwrap_err().contains("covers 1001 ports"));
        assert!(port_range("1-65535").is_err());
        assert!(port_range("81-80").is_err());
        assert!(port_range("65536").is_err());
        assert!(port_range("-1").is_err());
    }

    #[test]
    fn parent_components() {
        assert!(no_parent_components("target", "db_password").is_ok());
        assert!(no_parent_components("target", "/etc/app.conf").is_ok());
        assert!(no_parent_components("target", "a..b").is_ok());
        assert!(no_parent_components("target", "../../etc/passwd").is_err());
        assert!(no_parent_components("target", "/run/../etc").is_err());
    }
}
