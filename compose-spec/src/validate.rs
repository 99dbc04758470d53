//! Checks on a loaded project. [`check`]: references to undefined services, networks,
//! volumes, secrets and configs, dependency cycles, and values Compose refuses.
//! [`check_formats`]: names that become paths or kernel objects, addresses, subnets, ids, sizes
//! and bounds, so that `config` and `up` refuse at load time what would otherwise fail, or do
//! harm, at run time (the single-value rules are in [`crate::formats`]). Each error points at
//! the key or value in the file that caused it.

use std::collections::{BTreeMap, HashSet};

use crate::error::{Error, Result};
use crate::formats::{self, Cidr, MAX_ID, MAX_REPLICAS};
use crate::model::{Project, Resource, Service, ServiceNetwork, VolumeType};
use crate::units::Bytes;
use crate::yaml::{Node, Span, Value};

/// A list index in a key path: `[3]` → 3.
fn index(key: &str) -> Option<usize> {
    key.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// One step down `keys[0]`: a map entry (with its key's position) or a list item.
fn step<'a>(node: &'a Node, key: &str) -> Option<(&'a Node, Span)> {
    if let (Some(i), Some(items)) = (index(key), node.as_seq()) {
        let item = items.get(i)?;
        return Some((item, item.span.clone()));
    }
    let entry = node.as_map().and_then(|m| m.get(key))?;
    Some((&entry.node, entry.key_span.clone()))
}

/// Where the key `keys` is written in `tree`: the key of a map entry, or the item of a list
/// (written `[i]` in `keys`); `None` when it is not there.
pub fn span_of(tree: &Node, keys: &[&str]) -> Option<Span> {
    let mut node = tree;
    let mut best = None;
    for k in keys {
        let (next, span) = step(node, k)?;
        best = Some(span);
        node = next;
    }
    best
}

/// Where the value at `keys` is written, else the nearest key above it that is written.
fn value_span(tree: &Node, keys: &[&str]) -> Option<Span> {
    let mut node = tree;
    let mut best = None;
    for k in keys {
        match step(node, k) {
            Some((next, span)) => {
                best = Some(span);
                node = next;
            }
            None => return best,
        }
    }
    if node.span.is_synthetic() {
        return best;
    }
    Some(node.span.clone())
}

/// `["services", "web", "ports", "[1]"]` → `services.web.ports[1]`.
fn key_path(keys: &[&str]) -> String {
    let mut path = String::new();
    for k in keys {
        if !path.is_empty() && index(k).is_none() {
            path.push('.');
        }
        path.push_str(&k.replace('\0', "\\0"));
    }
    path
}

fn span_near(tree: &Node, keys: &[&str]) -> Option<Span> {
    (1..=keys.len()).rev().find_map(|n| span_of(tree, &keys[..n]))
}

fn err(tree: &Node, keys: &[&str], message: String) -> Error {
    let path = key_path(keys);
    match span_near(tree, keys) {
        Some(span) => Error::at(span, Some(path), message),
        None => Error::msg(message).with_path(&path),
    }
}

/// Checks the project; `disabled` are services left out by profiles.
pub fn check(project: &Project, tree: &Node, disabled: &[String]) -> Result<()> {
    for (name, svc) in &project.services {
        check_service(project, tree, name, svc, disabled)?;
    }
    check_cycles(project, tree)?;
    for (kind, items) in [("secrets", &project.secrets), ("configs", &project.configs)] {
        for (key, s) in items {
            let has_source = s.file.is_some() || s.environment.is_some() || s.content.is_some();
            if s.external != Some(true) && !has_source {
                let what =
                    if kind == "configs" { "`file`, `environment` or `content`" } else { "`file` or `environment`" };
                return Err(err(tree, &[kind, key], format!("{kind}.{key} needs {what}, or `external: true`")));
            }
        }
    }
    Ok(())
}

fn check_service(project: &Project, tree: &Node, name: &str, svc: &Service, disabled: &[String]) -> Result<()> {
    let at = |keys: &[&str], m: String| {
        let mut full = vec!["services", name];
        full.extend_from_slice(keys);
        err(tree, &full, m)
    };
    if svc.image.is_none() && svc.build.is_none() && svc.provider.is_none() {
        return Err(at(&[], format!("service {name:?} has neither an image nor a build context specified")));
    }
    for (dep, d) in &svc.depends_on {
        if project.services.contains_key(dep) || !d.required {
            continue;
        }
        let m = if disabled.contains(dep) {
            format!("service {name:?} depends on service {dep:?}, which is disabled by its profiles")
        } else {
            format!("service {name:?} depends on undefined service {dep:?}")
        };
        return Err(at(&["depends_on", dep], m).with_hint("define the service, or enable its profile with `--profile`"));
    }
    for (key, value) in [("network_mode", &svc.network_mode), ("ipc", &svc.ipc), ("pid", &svc.pid)] {
        if let Some(other) = value.as_deref().and_then(|v| v.strip_prefix("service:")) {
            if !project.services.contains_key(other) {
                return Err(at(&[key], format!("service {name:?} depends on undefined service {other:?}")));
            }
        }
    }
    for v in &svc.volumes_from {
        let other = v.strip_prefix("service:").unwrap_or(v).split(':').next().unwrap_or_default();
        if !v.starts_with("container:") && !project.services.contains_key(other) {
            return Err(at(&["volumes_from"], format!("service {name:?} depends on undefined service {other:?}")));
        }
    }
    for l in &svc.links {
        let other = l.split(':').next().unwrap_or_default();
        if !project.services.contains_key(other) {
            return Err(at(&["links"], format!("service {name:?} depends on undefined service {other:?}")));
        }
    }
    if svc.network_mode.is_some() && !svc.networks.is_empty() {
        let m = format!("service {name:?} declares mutually exclusive `network_mode` and `networks`");
        return Err(at(&["network_mode"], m));
    }
    for net in svc.networks.keys() {
        if !project.networks.contains_key(net) && net != "default" {
            return Err(at(&["networks", net], format!("service {name:?} refers to undefined network {net:?}")));
        }
    }
    for (i, v) in svc.volumes.iter().enumerate() {
        if v.kind != VolumeType::Volume {
            continue;
        }
        if let Some(src) = &v.source {
            if !project.volumes.contains_key(src) {
                let m = format!("service {name:?} refers to undefined volume {src:?}");
                let idx = format!("volumes[{i}]");
                return Err(at(&["volumes"], m).with_hint("declare it under the top-level `volumes:` key")).map_err(
                    |e| {
                        let mut e = e;
                        e.path = Some(format!("services.{name}.{idx}"));
                        e
                    },
                );
            }
        }
    }
    for (kind, refs, defined) in
        [("secret", &svc.secrets, &project.secrets), ("config", &svc.configs, &project.configs)]
    {
        for r in refs.iter() {
            if !defined.contains_key(&r.source) {
                let m = format!("service {name:?} refers to undefined {kind} {:?}", r.source);
                return Err(at(&[&format!("{kind}s")], m));
            }
        }
    }
    check_values(name, svc).map_err(|(keys, m)| at(&keys, m))
}

fn check_values(name: &str, svc: &Service) -> std::result::Result<(), (Vec<&'static str>, String)> {
    if let Some(r) = &svc.restart {
        let ok = matches!(r.as_str(), "no" | "always" | "unless-stopped" | "on-failure")
            || r.strip_prefix("on-failure:").is_some_and(|n| n.parse::<u32>().is_ok());
        if !ok {
            return Err((
                vec!["restart"],
                format!("invalid restart policy {r:?}: use no, always, on-failure[:max-retries] or unless-stopped"),
            ));
        }
    }
    if let Some(p) = &svc.pull_policy {
        let ok = matches!(p.as_str(), "always" | "never" | "missing" | "if_not_present" | "build" | "daily" | "weekly")
            || p.strip_prefix("every_").is_some_and(|d| crate::units::Duration::parse(d).is_ok());
        if !ok {
            let m = format!(
                "invalid pull policy {p:?}: use always, never, missing, build, daily, weekly or every_<duration>"
            );
            return Err((vec!["pull_policy"], m));
        }
    }
    if let Some(test) = svc.healthcheck.as_ref().and_then(|h| h.test.as_ref()) {
        if let Some(first) = test.first() {
            if !matches!(first.as_str(), "NONE" | "CMD" | "CMD-SHELL") {
                let m = format!("healthcheck test must start with \"CMD\", \"CMD-SHELL\" or \"NONE\", not {first:?}");
                return Err((vec!["healthcheck", "test"], m));
            }
        }
    }
    if svc.container_name.is_some() && svc.replicas() > 1 {
        let m = format!(
            "service {name:?} sets `container_name` and wants {} replicas; container names must be unique",
            svc.replicas()
        );
        return Err((vec!["container_name"], m));
    }
    Ok(())
}

fn check_cycles(project: &Project, tree: &Node) -> Result<()> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    fn visit<'a>(
        p: &'a Project,
        name: &'a str,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        match marks.get(name) {
            Some(Mark::Done) => return None,
            Some(Mark::Active) => {
                let start = stack.iter().position(|s| *s == name).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(name);
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(name, Mark::Active);
        stack.push(name);
        if let Some(svc) = p.services.get(name) {
            for dep in svc.depends_on.keys() {
                if let Some(c) = visit(p, dep, marks, stack) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        marks.insert(name, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for name in project.services.keys() {
        if let Some(cycle) = visit(project, name, &mut marks, &mut Vec::new()) {
            let m = format!("dependency cycle detected: {}", cycle.join(" -> "));
            return Err(err(tree, &["services", cycle[0], "depends_on"], m));
        }
    }
    Ok(())
}

/// A value refused by [`check_formats`]: the key path below the checked object, and why.
struct Bad {
    keys: Vec<String>,
    message: String,
}

type Checked = std::result::Result<(), Bad>;

fn bad<S: AsRef<str>>(keys: &[S], message: String) -> Bad {
    Bad { keys: keys.iter().map(|k| k.as_ref().to_string()).collect(), message }
}

/// Places a format check's message at `keys`.
trait At<T> {
    fn at<S: AsRef<str>>(self, keys: &[S]) -> std::result::Result<T, Bad>;
}

impl<T> At<T> for std::result::Result<T, String> {
    fn at<S: AsRef<str>>(self, keys: &[S]) -> std::result::Result<T, Bad> {
        self.map_err(|m| bad(keys, m))
    }
}

fn ix(i: usize) -> String {
    format!("[{i}]")
}

/// An error at the value written at `prefix` + `bad.keys`.
fn place(tree: &Node, prefix: &[&str], bad: Bad) -> Error {
    let mut keys: Vec<&str> = prefix.to_vec();
    keys.extend(bad.keys.iter().map(String::as_str));
    let path = key_path(&keys);
    match value_span(tree, &keys) {
        Some(span) => Error::at(span, Some(path), bad.message),
        None => Error::msg(bad.message).with_path(&path),
    }
}

/// Checks what berth would otherwise hand, malformed, to the kernel, the file system or a
/// network later: names that become paths or kernel objects, addresses, subnets, ids, sizes
/// and bounds. Unlike [`check`], these hold whatever `--no-consistency` says.
pub fn check_formats(project: &Project, tree: &Node) -> Result<()> {
    no_nul(tree, &mut Vec::new())?;
    for (kind, what) in [
        ("services", "service"),
        ("networks", "network"),
        ("volumes", "volume"),
        ("secrets", "secret"),
        ("configs", "config"),
    ] {
        for key in tree.get(kind).and_then(Node::as_map).into_iter().flat_map(|m| m.keys()) {
            formats::resource_key(what, key).map_err(|m| err(tree, &[kind, key], m))?;
        }
    }
    for (name, svc) in &project.services {
        service_formats(svc).map_err(|b| place(tree, &["services", name], b))?;
    }
    for (key, net) in &project.networks {
        if let Some(n) = &net.name {
            formats::object_name("network", n).map_err(|m| name_err(tree, "networks", key, m))?;
        }
        for (i, pool) in net.ipam.iter().flat_map(|p| p.config.iter()).enumerate() {
            ipam_pool(pool).map_err(|b| place(tree, &["networks", key, "ipam", "config", &ix(i)], b))?;
        }
    }
    for (key, vol) in &project.volumes {
        if let Some(n) = &vol.name {
            formats::volume_name(n).map_err(|m| name_err(tree, "volumes", key, m))?;
        }
    }
    for (kind, what, items) in [("secrets", "secret", &project.secrets), ("configs", "config", &project.configs)] {
        for (key, item) in items {
            if let Some(n) = &item.name {
                formats::object_name(what, n).map_err(|m| name_err(tree, kind, key, m))?;
            }
        }
    }
    Ok(())
}

/// An error about a resource's name: at its `name:` when one is written, else at its key (the
/// name was derived from it).
fn name_err(tree: &Node, kind: &str, key: &str, message: String) -> Error {
    if span_of(tree, &[kind, key, "name"]).is_some() {
        return place(tree, &[kind, key], bad(&["name"], message));
    }
    err(tree, &[kind, key], message)
}

/// Refuses NUL bytes in keys and strings: nothing handed to the kernel (arguments, environment,
/// paths, labels) can hold one.
fn no_nul(node: &Node, keys: &mut Vec<String>) -> Result<()> {
    const MSG: &str = "must not contain a NUL byte (\\0): the kernel cannot take strings that hold one";
    let path = |keys: &[String]| key_path(&keys.iter().map(String::as_str).collect::<Vec<_>>());
    match &node.value {
        Value::Str(s) if s.contains('\0') => Err(Error::at(node.span.clone(), Some(path(keys)), MSG)),
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                keys.push(ix(i));
                no_nul(item, keys)?;
                keys.pop();
            }
            Ok(())
        }
        Value::Map(m) => {
            for (k, e) in m {
                keys.push(k.clone());
                if k.contains('\0') {
                    return Err(Error::at(e.key_span.clone(), Some(path(keys)), format!("the key {MSG}")));
                }
                no_nul(&e.node, keys)?;
                keys.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// One `ipam.config` entry: a valid subnet, and a range, gateway and aux addresses inside it.
fn ipam_pool(pool: &crate::model::IpamPool) -> Checked {
    let subnet = match &pool.subnet {
        Some(s) => Some(formats::subnet(s).at(&["subnet"])?),
        None => None,
    };
    let inside = |what: &str, text: &str, ok: bool| -> std::result::Result<(), String> {
        match (&pool.subnet, ok) {
            (Some(net), false) => Err(format!("{what} {text:?} is not inside the subnet {net:?}")),
            _ => Ok(()),
        }
    };
    if let Some(r) = &pool.ip_range {
        let range =
            Cidr::parse(r).map_err(|m| m.replacen("invalid subnet", "invalid ip_range", 1)).at(&["ip_range"])?;
        inside("ip_range", r, subnet.is_none_or(|n| n.covers(&range))).at(&["ip_range"])?;
    }
    if let Some(g) = &pool.gateway {
        let addr = formats::ip("gateway", g).at(&["gateway"])?;
        inside("gateway", g, subnet.is_none_or(|n| n.contains(addr))).at(&["gateway"])?;
    }
    for (host, a) in &pool.aux_addresses {
        let keys = ["aux_addresses", host.as_str()];
        let addr = formats::ip("aux address", a).at(&keys)?;
        inside("aux address", a, subnet.is_none_or(|n| n.contains(addr))).at(&keys)?;
    }
    Ok(())
}

/// `keys` and one more key.
fn sub<'a>(keys: &[&'a str], k: &'a str) -> Vec<&'a str> {
    keys.iter().copied().chain([k]).collect()
}

fn size_not_negative(keys: &[&str], size: Option<Bytes>) -> Checked {
    match size {
        Some(Bytes(n)) if n < 0 => Err(bad(keys, format!("invalid size {n}: a size must not be negative"))),
        _ => Ok(()),
    }
}

fn cpus(keys: &[&str], cpus: Option<f64>) -> Checked {
    match cpus {
        Some(c) if !c.is_finite() || c < 0.0 => {
            Err(bad(keys, format!("invalid number of CPUs {c}: must be a number from 0 up (0 means no limit)")))
        }
        _ => Ok(()),
    }
}

fn pids(keys: &[&str], pids: Option<i64>) -> Checked {
    match pids {
        Some(p) if p < -1 => Err(bad(
            keys,
            format!("invalid pids limit {p}: use a number of processes from 1 up, or 0 or -1 for no limit"),
        )),
        _ => Ok(()),
    }
}

fn in_range(keys: &[&str], what: &str, value: Option<i64>, ok: impl Fn(i64) -> bool, allowed: &str) -> Checked {
    match value {
        Some(v) if !ok(v) => Err(bad(keys, format!("invalid {what} {v}: {allowed}"))),
        _ => Ok(()),
    }
}

fn resource(keys: &[&str], r: Option<&Resource>) -> Checked {
    let Some(r) = r else { return Ok(()) };
    cpus(&sub(keys, "cpus"), r.cpus)?;
    size_not_negative(&sub(keys, "memory"), r.memory)?;
    pids(&sub(keys, "pids"), r.pids)
}

fn absolute(keys: &[&str], what: &str, path: &str) -> Checked {
    if path.is_empty() || path.starts_with('/') {
        return Ok(());
    }
    Err(bad(keys, format!("invalid {what} {path:?}: it must be an absolute path")))
}

fn hook(keys: &[&str], user: Option<&String>, working_dir: Option<&String>) -> Checked {
    if let Some(u) = user {
        formats::user(u).at(&sub(keys, "user"))?;
    }
    if let Some(w) = working_dir {
        absolute(&sub(keys, "working_dir"), "working_dir", w)?;
    }
    Ok(())
}

fn service_network(net: &str, sn: &ServiceNetwork) -> Checked {
    let keys = |k: &str| -> [String; 3] { ["networks".to_string(), net.to_string(), k.to_string()] };
    let at = |k: &str, m: String| Bad { keys: keys(k).to_vec(), message: m };
    for (k, v4, value) in [("ipv4_address", true, &sn.ipv4_address), ("ipv6_address", false, &sn.ipv6_address)] {
        let Some(text) = value else { continue };
        let family = if v4 { "IPv4" } else { "IPv6" };
        // Whether it lies in the network's subnet is left to the network's IPAM: compose-go's
        // own full example attaches an address outside the subnet it declares.
        match text.parse() {
            Ok(std::net::IpAddr::V4(_)) if v4 => {}
            Ok(std::net::IpAddr::V6(_)) if !v4 => {}
            _ => return Err(at(k, format!("invalid {k} {text:?}: must be an {family} address"))),
        }
    }
    for (i, a) in sn.link_local_ips.iter().enumerate() {
        formats::ip("link-local IP", a).map_err(|m| Bad {
            keys: vec!["networks".into(), net.into(), "link_local_ips".into(), ix(i)],
            message: m,
        })?;
    }
    if let Some(m) = &sn.mac_address {
        formats::mac_address(m).map_err(|e| at("mac_address", e))?;
    }
    if let Some(n) = &sn.interface_name {
        formats::interface_name(n).map_err(|e| at("interface_name", e))?;
    }
    Ok(())
}

fn service_formats(svc: &Service) -> Checked {
    if let Some(n) = &svc.container_name {
        formats::container_name(n).at(&["container_name"])?;
    }
    for (k, v) in [("hostname", &svc.hostname), ("domainname", &svc.domainname)] {
        if let Some(v) = v {
            formats::hostname(k, v).at(&[k])?;
        }
    }
    let deploy = svc.deploy.as_ref();
    for (keys, n) in [(&["scale"][..], svc.scale), (&["deploy", "replicas"][..], deploy.and_then(|d| d.replicas))] {
        if let Some(n) = n.filter(|n| *n > MAX_REPLICAS) {
            let m = format!("{n} replicas are too many: berth runs at most {MAX_REPLICAS} containers per service");
            return Err(bad(keys, m));
        }
    }
    for (i, p) in svc.ports.iter().enumerate() {
        let i = ix(i);
        let sub = |k: &'static str| -> [String; 3] { ["ports".into(), i.clone(), k.into()] };
        if p.target == 0 {
            return Err(bad(&sub("target"), "invalid container port 0: it must be from 1 to 65535".into()));
        }
        if let Some(pb) = p.published.as_deref().filter(|p| !p.is_empty()) {
            formats::port_range(pb).map_err(|m| format!("invalid published port: {m}")).at(&sub("published"))?;
        }
        if let Some(ip) = p.host_ip.as_deref().filter(|h| !h.is_empty()) {
            formats::ip("host IP", ip).at(&sub("host_ip"))?;
        }
        if let Some(proto) = p.protocol.as_deref().filter(|x| !matches!(*x, "tcp" | "udp" | "sctp")) {
            return Err(bad(&sub("protocol"), format!("invalid protocol {proto:?}: use tcp, udp or sctp")));
        }
        if let Some(mode) = p.mode.as_deref().filter(|x| !matches!(*x, "host" | "ingress")) {
            return Err(bad(&sub("mode"), format!("invalid port mode {mode:?}: use host or ingress")));
        }
    }
    for (k, u) in &svc.ulimits {
        let keys = ["ulimits", k.as_str()];
        if !formats::ULIMITS.contains(&k.as_str()) {
            let m = format!("unknown ulimit {k:?}: use one of {}", formats::ULIMITS.join(", "));
            return Err(bad(&keys, m));
        }
        for (what, v) in [("single", u.single), ("soft", u.soft), ("hard", u.hard)] {
            if let Some(v) = v.filter(|v| *v < -1) {
                let keys = if what == "single" { keys.to_vec() } else { vec!["ulimits", k, what] };
                let m = format!("invalid ulimit {k:?} value {v}: use a number from 0 up, or -1 for unlimited");
                return Err(bad(&keys, m));
            }
        }
        if u.single.is_none() {
            let (Some(s), Some(h)) = (u.soft, u.hard) else {
                return Err(bad(&keys, format!("ulimit {k:?} needs both `soft` and `hard`, or a single number")));
            };
            // -1 is "unlimited", above every number.
            let unlimited = |v: i64| if v == -1 { u64::MAX } else { v as u64 };
            if unlimited(s) > unlimited(h) {
                return Err(bad(&keys, format!("ulimit {k:?}: soft limit {s} is above hard limit {h}")));
            }
        }
    }
    for (i, h) in svc.extra_hosts.iter().enumerate() {
        formats::extra_host(h).at(&["extra_hosts", &ix(i)])?;
    }
    if let Some(b) = &svc.build {
        for (i, h) in b.extra_hosts.iter().enumerate() {
            formats::extra_host(h).at(&["build", "extra_hosts", &ix(i)])?;
        }
    }
    hook(&[], svc.user.as_ref(), svc.working_dir.as_ref())?;
    for (i, g) in svc.group_add.iter().enumerate() {
        formats::group(g).at(&["group_add", &ix(i)])?;
    }
    for (kind, hooks) in [("post_start", &svc.post_start), ("pre_stop", &svc.pre_stop)] {
        for (i, h) in hooks.iter().enumerate() {
            hook(&[kind, &ix(i)], h.user.as_ref(), h.working_dir.as_ref())?;
        }
    }
    for (i, h) in svc.pre_start.iter().enumerate() {
        hook(&["pre_start", &ix(i)], h.user.as_ref(), h.working_dir.as_ref())?;
    }
    for (k, v) in &svc.environment {
        let keys = ["environment", k.as_str()];
        if k.is_empty() || k.contains('=') {
            return Err(bad(&keys, format!("invalid variable name {k:?}: it must not be empty or contain \"=\"")));
        }
        if k.contains('\0') || v.as_deref().is_some_and(|v| v.contains('\0')) {
            return Err(bad(&keys, format!("variable {k:?} must not contain a NUL byte (\\0)")));
        }
    }
    for (k, v) in &svc.labels {
        if k.contains('\0') || v.contains('\0') {
            return Err(bad(&["labels", k], format!("label {k:?} must not contain a NUL byte (\\0)")));
        }
    }
    for (k, size) in
        [("mem_limit", svc.mem_limit), ("mem_reservation", svc.mem_reservation), ("shm_size", svc.shm_size)]
    {
        size_not_negative(&[k], size)?;
    }
    let resources = deploy.and_then(|d| d.resources.as_ref());
    resource(&["deploy", "resources", "limits"], resources.and_then(|r| r.limits.as_ref()))?;
    resource(&["deploy", "resources", "reservations"], resources.and_then(|r| r.reservations.as_ref()))?;
    for k in svc.sysctls.keys() {
        formats::sysctl_name(k).at(&["sysctls", k])?;
    }
    cpus(&["cpus"], svc.cpus)?;
    pids(&["pids_limit"], svc.pids_limit)?;
    in_range(&["cpu_shares"], "cpu_shares", svc.cpu_shares, |v| v >= 0, "must be a relative weight from 0 up")?;
    in_range(&["cpu_count"], "cpu_count", svc.cpu_count, |v| v >= 0, "must be a number of CPUs from 0 up")?;
    in_range(
        &["cpu_period"],
        "cpu_period",
        svc.cpu_period,
        |v| v == 0 || (1000..=1_000_000).contains(&v),
        "must be from 1000 to 1000000 microseconds (or 0 for the default)",
    )?;
    in_range(
        &["cpu_quota"],
        "cpu_quota",
        svc.cpu_quota,
        |v| v == -1 || v == 0 || v >= 1000,
        "must be 1000 microseconds or more (or 0 or -1 for no limit)",
    )?;
    if let Some(p) = svc.cpu_percent.filter(|p| !(0.0..=100.0).contains(p)) {
        return Err(bad(&["cpu_percent"], format!("invalid cpu_percent {p}: must be from 0 to 100")));
    }
    if let Some(c) = &svc.cpuset {
        formats::cpuset(c).at(&["cpuset"])?;
    }
    in_range(
        &["oom_score_adj"],
        "oom_score_adj",
        svc.oom_score_adj,
        |v| (-1000..=1000).contains(&v),
        "must be from -1000 to 1000",
    )?;
    in_range(
        &["mem_swappiness"],
        "mem_swappiness",
        svc.mem_swappiness,
        |v| (-1..=100).contains(&v),
        "must be from 0 to 100 (or -1 for the default)",
    )?;
    if let Some(b) = &svc.blkio_config {
        let weight = |v: i64| v == 0 || (10..=1000).contains(&v);
        let allowed = "a block I/O weight must be from 10 to 1000 (or 0 for the default)";
        in_range(&["blkio_config", "weight"], "weight", b.weight.map(i64::from), weight, allowed)?;
        for (i, d) in b.weight_device.iter().enumerate() {
            in_range(
                &["blkio_config", "weight_device", &ix(i), "weight"],
                "weight",
                Some(i64::from(d.weight)),
                weight,
                allowed,
            )?;
        }
    }
    for (i, d) in svc.dns.iter().enumerate() {
        formats::ip("DNS server", d).at(&["dns", &ix(i)])?;
    }
    if let Some(m) = &svc.mac_address {
        formats::mac_address(m).at(&["mac_address"])?;
    }
    for (net, sn) in &svc.networks {
        if let Some(sn) = sn {
            service_network(net, sn)?;
        }
    }
    if let Some(s) = &svc.stop_signal {
        formats::signal(s).at(&["stop_signal"])?;
    }
    for (i, t) in svc.tmpfs.iter().enumerate() {
        let target = t.split_once(':').map_or(t.as_str(), |(t, _)| t);
        absolute(&["tmpfs", &ix(i)], "tmpfs target", target)?;
        if target.is_empty() {
            return Err(bad(&["tmpfs", &ix(i)], "invalid tmpfs target \"\": it must be an absolute path".into()));
        }
    }
    for (kind, refs) in [("secrets", &svc.secrets), ("configs", &svc.configs)] {
        for (i, r) in refs.iter().enumerate() {
            let i = ix(i);
            if let Some(t) = &r.target {
                formats::no_parent_components("target", t).at(&[kind, &i, "target"])?;
            }
            for (k, id) in [("uid", &r.uid), ("gid", &r.gid)] {
                if let Some(id) = id.as_deref().filter(|id| !id.parse::<u64>().is_ok_and(|n| n <= MAX_ID)) {
                    let m = format!("invalid {k} {id:?}: must be a numeric id from 0 to {MAX_ID}");
                    return Err(bad(&[kind, &i, k], m));
                }
            }
        }
    }
    Ok(())
}

/// Non-fatal findings worth telling the user.
pub fn warnings(project: &Project) -> Vec<String> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (name, svc) in &project.services {
        if let Some(c) = &svc.container_name {
            if !names.insert(c.clone()) {
                out.push(format!("service {name:?}: container name {c:?} is used by another service too"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn load(yaml: &str) -> crate::Result<crate::Loaded> {
        crate::load_str(&format!("name: t\n{yaml}"), Path::new("/nonexistent"))
    }

    /// The error's `line:col: path` and message.
    fn error(yaml: &str) -> (String, String) {
        let e = load(yaml).expect_err("should be refused");
        let span = e.span.as_ref().map(|s| format!("{}:{}", s.line, s.col)).unwrap_or_default();
        (format!("{span}: {}", e.path.clone().unwrap_or_default()), e.message)
    }

    #[test]
    fn values_compose_accepts_load() {
        let yaml = r#"
services:
  web.1:
    image: busybox
    container_name: my-web_1.x
    hostname: web-1
    domainname: example.com
    user: "1000:1000"
    group_add: [audio, "4242"]
    working_dir: /app
    ports: ["0:80", "127.0.0.1:8000-8999:8000-8999", "[::1]:53:53/udp", {target: 443, published: "9000-9010"}]
    ulimits:
      memlock: {soft: -1, hard: -1}
      nofile: {soft: 1024, hard: -1}
      nproc: 512
    extra_hosts: ["a:1.2.3.4", "b=::1", "c:[fe80::1]", "d=host-gateway", "e:::1"]
    memswap_limit: -1
    mem_limit: 8388607t
    pids_limit: -1
    cpus: 0
    cpuset: "0-3,5"
    cpu_shares: 512
    cpu_period: 100000
    cpu_quota: -1
    oom_score_adj: -1000
    mem_swappiness: -1
    blkio_config: {weight: 0, weight_device: [{path: /dev/sda, weight: 1000}]}
    dns: [8.8.8.8, "2001:4860:4860::8888"]
    mac_address: 02:42:ac:11:65:43
    stop_signal: sigquit
    sysctls: {net.core.somaxconn: 1024, net/ipv4/conf/eth0.1/forwarding: 1}
    tmpfs: ["/run:size=64m"]
    secrets: [{source: token, target: token.txt, uid: "1000", gid: "0"}]
    networks:
      back: {ipv4_address: 172.28.5.1, ipv6_address: "2001:db8::5", interface_name: eth1, mac_address: 02-42-ac-11-65-44}
    deploy: {replicas: 1, resources: {limits: {cpus: "0.5", memory: 1g, pids: 0}}}
  many:
    image: busybox
    scale: 1000
networks:
  back:
    name: corp.net_back-1
    ipam:
      config:
        - {subnet: 172.28.0.0/16, ip_range: 172.28.5.0/24, gateway: 172.28.5.254, aux_addresses: {h: 172.28.1.5}}
        - {subnet: "2001:db8::/64", gateway: "2001:db8::1"}
volumes:
  data: {external: true, name: my.vol-1}
secrets:
  token: {environment: HOME, name: team.token}
"#;
        load(yaml).unwrap();
    }

    #[test]
    fn errors_point_at_the_value() {
        let svc = |body: &str| format!("services:\n  web:\n    image: busybox\n{body}");
        let cases = [
            ("    container_name: a/b\n", "5:21: services.web.container_name", "invalid container name"),
            ("    user: \"-1:-1\"\n", "5:11: services.web.user", "user id -1 is out of range"),
            ("    ports: [\"80\", \"8080:0\"]\n", "5:19: services.web.ports[1].target", "container port 0"),
            ("    extra_hosts: [\"foo:not-ip\"]\n", "5:19: services.web.extra_hosts[0]", "is not an IP address"),
            ("    ulimits: {nofile: {soft: 10}}\n", "5:23: services.web.ulimits.nofile", "needs both"),
            ("    ulimits: {nofile: {soft: -1, hard: 10}}\n", "5:23: services.web.ulimits.nofile", "above hard"),
            ("    cpus: -2\n", "5:11: services.web.cpus", "from 0 up"),
            ("    pids_limit: -5\n", "5:17: services.web.pids_limit", "or 0 or -1"),
            ("    mem_reservation: -1\n", "5:22: services.web.mem_reservation", "must not be negative"),
            ("    stop_signal: SIGRTMIN\n", "5:18: services.web.stop_signal", "invalid signal"),
            ("    environment: {GREETING: \"a\\0b\"}\n", "5:29: services.web.environment.GREETING", "NUL"),
            ("    labels: [\"a\\0=b\"]\n", "5:14: services.web.labels.a\\0", "NUL"),
            ("    deploy: {replicas: 1001}\n", "5:24: services.web.deploy.replicas", "at most 1000"),
            (
                "    networks: {default: {ipv6_address: 10.0.0.1}}\n",
                "5:40: services.web.networks.default.ipv6_address",
                "IPv6",
            ),
        ];
        for (body, at, msg) in cases {
            let (where_, message) = error(&svc(body));
            assert_eq!(where_, at, "{body}: {message}");
            assert!(message.contains(msg), "{body}: {message}");
        }
    }

    #[test]
    fn resource_names_and_subnets() {
        let (at, m) = error("services:\n  web: {image: busybox}\nnetworks:\n  n:\n    name: ..\n");
        assert_eq!(at, "6:11: networks.n.name");
        assert!(m.contains("invalid network name"), "{m}");
        let (at, m) = error("services:\n  web: {image: busybox}\nvolumes:\n  \"a/b\": {}\n");
        assert_eq!(at, "5:3: volumes.a/b");
        assert!(m.contains("invalid volume name"), "{m}");
        let (at, m) = error("services:\n  web: {image: busybox}\nvolumes:\n  v: {external: true}\n");
        assert_eq!(at, "5:3: volumes.v", "a derived name is blamed on the key");
        assert!(m.contains("at least two characters"), "{m}");
        let net = |pool: &str| {
            format!(
                "services:\n  web: {{image: busybox}}\nnetworks:\n  n:\n    ipam:\n      config:\n        - {pool}\n"
            )
        };
        for (pool, msg) in [
            ("{subnet: 300.1.1.0/24}", "is not an IPv4 or IPv6 address"),
            ("{subnet: 0.0.0.0/0}", "all of the IPv4 address space"),
            ("{subnet: 10.0.0.0/4}", "/8 or longer"),
            ("{subnet: 10.0.0.0/8, gateway: 11.0.0.1}", "not inside the subnet"),
            ("{subnet: 10.0.0.0/8, gateway: \"::1\"}", "not inside the subnet"),
            ("{subnet: 10.0.0.0/8, ip_range: 10.0.0.0/7}", "not inside the subnet"),
            ("{subnet: 10.0.0.0/8, aux_addresses: {a: x}}", "invalid aux address"),
        ] {
            let (at, m) = error(&net(pool));
            assert!(at.starts_with("8:"), "{pool}: {at}");
            assert!(m.contains(msg), "{pool}: {m}");
        }
    }

    #[test]
    fn formats_hold_without_consistency_checks_but_not_without_interpolation() {
        let yaml = "services:\n  web:\n    image: busybox\n    container_name: ${NAME:-a/b}\n";
        let opts = |no_interpolate| crate::LoadOptions {
            files: vec!["-".into()],
            stdin: Some(yaml.to_string()),
            cwd: "/nonexistent".into(),
            project_name: Some("t".into()),
            no_consistency: true,
            no_interpolate,
            ..crate::LoadOptions::default()
        };
        assert!(crate::load(&opts(false)).is_err());
        assert!(crate::load(&opts(true)).is_ok());
    }
}
