//! [`check_formats`]: names that become paths or kernel objects, addresses, subnets, ids, sizes
//! and bounds, each refused at the value in the file that holds it.

use super::{err, key_path, span_of, value_span};
use crate::error::{Error, Result};
use crate::formats::{self, Cidr, MAX_ID, MAX_REPLICAS};
use crate::model::{Project, Resource, Service, ServiceNetwork};
use crate::units::Bytes;
use crate::yaml::{Node, Value};

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
/// and bounds. Unlike [`check`](super::check), these hold whatever `--no-consistency` says.
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
    if let Some(p) = &svc.cgroup_parent {
        formats::cgroup_parent(p).at(&["cgroup_parent"])?;
    }
    let deploy = svc.deploy.as_ref();
    for (keys, n) in [(&["scale"][..], svc.scale), (&["deploy", "replicas"][..], deploy.and_then(|d| d.replicas))] {
        if let Some(n) = n.filter(|n| *n > MAX_REPLICAS) {
            let m = format!("{n} replicas are too many: berth runs at most {MAX_REPLICAS} containers per service");
            return Err(bad(keys, m));
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
