//! Capabilities and `security_opt` (`no-new-privileges`, seccomp).

use berth_compose::model::Service;
use oci_spec::runtime::Capability;

use crate::runtime::defaults::{self, parse_capability};

pub(super) fn capabilities(svc: &Service, privileged: bool) -> Result<Vec<Capability>, String> {
    if privileged {
        return Ok(defaults::ALL_CAPS.to_vec());
    }
    let is_all = |s: &String| s.trim().eq_ignore_ascii_case("all") || s.trim().eq_ignore_ascii_case("cap_all");
    let mut caps: Vec<Capability> =
        if svc.cap_add.iter().any(is_all) { defaults::ALL_CAPS.to_vec() } else { defaults::DEFAULT_CAPS.to_vec() };
    for c in svc.cap_add.iter().filter(|c| !is_all(c)) {
        let cap = parse_capability(c).ok_or_else(|| format!("unknown capability `{c}` in cap_add"))?;
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    if svc.cap_drop.iter().any(is_all) {
        // `cap_drop: [ALL]` keeps only what cap_add names explicitly.
        caps.retain(|c| svc.cap_add.iter().filter_map(|a| parse_capability(a)).any(|a| a == *c));
    }
    for c in svc.cap_drop.iter().filter(|c| !is_all(c)) {
        let cap = parse_capability(c).ok_or_else(|| format!("unknown capability `{c}` in cap_drop"))?;
        caps.retain(|x| *x != cap);
    }
    caps.sort_by_key(|c| c.to_string());
    Ok(caps)
}

pub(super) enum SeccompMode {
    Default,
    Unconfined,
    Profile(oci_spec::runtime::LinuxSeccomp),
}

pub(super) fn security_opts(svc: &Service, warnings: &mut Vec<String>) -> Result<(bool, SeccompMode), String> {
    let mut nnp = false;
    let mut mode = SeccompMode::Default;
    for opt in &svc.security_opt {
        let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt.as_str(), ""));
        match key {
            "no-new-privileges" => nnp = value.is_empty() || value == "true",
            "seccomp" if value == "unconfined" => mode = SeccompMode::Unconfined,
            "seccomp" => {
                let text = std::fs::read_to_string(value).map_err(|e| format!("seccomp profile `{value}`: {e}"))?;
                let profile = serde_json::from_str(&text)
                    .map_err(|e| format!("seccomp profile `{value}` is not an OCI seccomp profile: {e}"))?;
                mode = SeccompMode::Profile(profile);
            }
            "apparmor" | "label" | "systempaths" => {
                warnings.push(format!("service `{}`: security_opt `{opt}` is not supported and ignored", svc.name))
            }
            _ => return Err(format!("unknown security_opt `{opt}`")),
        }
    }
    Ok((nnp, mode))
}
