//! The container's process: its command line, environment and rlimits, and the stop signal.

use berth_compose::model::Service;
use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};

use super::BundleRequest;

pub(super) const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `entrypoint + command`, Docker's way.
pub(super) fn command(req: &BundleRequest<'_>) -> Option<Vec<String>> {
    let svc = req.service;
    let (entrypoint, entry_overridden) = match (&req.overrides.entrypoint, &svc.entrypoint) {
        (Some(e), _) => (e.clone(), true),
        (None, Some(e)) => (e.clone(), true),
        (None, None) => (req.image.entrypoint.clone().unwrap_or_default(), false),
    };
    let entrypoint: Vec<String> = entrypoint.into_iter().filter(|s| !(s.is_empty() && entry_overridden)).collect();
    let cmd = match (&req.overrides.command, &svc.command) {
        (Some(c), _) if !c.is_empty() => c.clone(),
        (_, Some(c)) => c.clone(),
        _ if entry_overridden => Vec::new(),
        _ => req.image.cmd.clone().unwrap_or_default(),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    (!args.is_empty()).then_some(args)
}

pub(super) fn environment(req: &BundleRequest<'_>, hostname: &str, home: &str, tty: bool) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| match env.iter_mut().find(|(ek, _)| ek == k) {
        Some(e) => e.1 = v.to_string(),
        None => env.push((k.to_string(), v.to_string())),
    };
    for kv in req.image.env.iter().flatten() {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        set(k, v);
    }
    for (k, v) in &req.service.environment {
        if let Some(v) = v {
            set(k, v);
        }
    }
    for (k, v) in &req.overrides.env {
        set(k, v);
    }
    let has = |env: &[(String, String)], k: &str| env.iter().any(|(ek, _)| ek == k);
    let mut out = Vec::new();
    if !has(&env, "PATH") {
        out.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOSTNAME") {
        out.push(format!("HOSTNAME={hostname}"));
    }
    if tty && !has(&env, "TERM") {
        out.push("TERM=xterm".into());
    }
    out.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    if !has(&env, "HOME") {
        out.push(format!("HOME={home}"));
    }
    out
}

/// Maps a Compose ulimit name to the OCI rlimit type.
pub(super) fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    use PosixRlimitType::*;
    Some(match name {
        "core" => RlimitCore,
        "cpu" => RlimitCpu,
        "data" => RlimitData,
        "fsize" => RlimitFsize,
        "locks" => RlimitLocks,
        "memlock" => RlimitMemlock,
        "msgqueue" => RlimitMsgqueue,
        "nice" => RlimitNice,
        "nofile" => RlimitNofile,
        "nproc" => RlimitNproc,
        "rss" => RlimitRss,
        "rtprio" => RlimitRtprio,
        "rttime" => RlimitRttime,
        "sigpending" => RlimitSigpending,
        "stack" => RlimitStack,
        "as" => RlimitAs,
        _ => return None,
    })
}

pub(super) fn rlimits(
    svc: &Service,
    hard_limits: &dyn Fn(&str) -> Option<u64>,
    warnings: &mut Vec<String>,
) -> Result<Vec<PosixRlimit>, String> {
    let mut out = Vec::new();
    for (name, u) in &svc.ulimits {
        let typ = rlimit_type(name).ok_or_else(|| format!("unknown ulimit `{name}`"))?;
        let to_u64 = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
        let soft = to_u64(u.single.or(u.soft).unwrap_or(0));
        let hard = to_u64(u.single.or(u.hard).or(u.soft).unwrap_or(0));
        if soft > hard {
            return Err(format!("ulimit `{name}`: soft limit {soft} is above the hard limit {hard}"));
        }
        let (mut s, mut h) = (soft, hard);
        if let Some(max) = hard_limits(name) {
            if h > max {
                warnings.push(format!(
                    "service `{}`: ulimit `{name}` {hard} is above the host's hard limit {max}; using {max}",
                    svc.name
                ));
                h = max;
                s = s.min(max);
            }
        }
        let r = PosixRlimitBuilder::default().typ(typ).soft(s).hard(h).build();
        out.push(r.map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// `SIGTERM` for `TERM`, `SIGTERM`, `sigterm` or `15`; `None` for an unknown signal.
pub fn canonical_signal(s: &str) -> Option<String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).ok().map(|sig| sig.as_str().to_string());
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<nix::sys::signal::Signal>().ok().map(|sig| sig.as_str().to_string())
}
