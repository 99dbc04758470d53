//! Device nodes (`devices`) and the device cgroup rules (`device_cgroup_rules`).

use std::path::Path;

use berth_compose::model::Service;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use super::HostDevice;
use crate::runtime::defaults;

pub(super) type DeviceLookup<'a> = &'a dyn Fn(&Path) -> Option<HostDevice>;

pub(super) fn devices(
    svc: &Service,
    lookup: DeviceLookup<'_>,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), String> {
    let mut devices = Vec::new();
    let mut rules = defaults::default_device_rules();
    for d in &svc.devices {
        let host = lookup(Path::new(&d.source)).ok_or_else(|| format!("device `{}` does not exist", d.source))?;
        let dev = linux_device(Path::new(d.target.as_deref().unwrap_or(&d.source)), &host);
        let typ = dev.typ();
        devices.push(dev);
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(typ));
        rule.set_major(Some(host.major));
        rule.set_minor(Some(host.minor));
        rule.set_access(Some(d.permissions.clone().unwrap_or_else(|| "rwm".into())));
        rules.push(rule);
    }
    for r in &svc.device_cgroup_rules {
        rules.push(parse_device_rule(r).ok_or_else(|| format!("invalid device_cgroup_rules entry `{r}`"))?);
    }
    Ok((devices, rules))
}

/// The runtime creates `path` in the container as a node like the host's `host`.
pub(super) fn linux_device(path: &Path, host: &HostDevice) -> LinuxDevice {
    let mut dev = LinuxDevice::default();
    dev.set_path(path.to_path_buf());
    dev.set_typ(if host.block { LinuxDeviceType::B } else { LinuxDeviceType::C });
    dev.set_major(host.major);
    dev.set_minor(host.minor);
    dev.set_file_mode(Some(host.mode & 0o7777));
    dev.set_uid(Some(host.uid));
    dev.set_gid(Some(host.gid));
    dev
}

/// Parses `c 1:3 rwm`, `a *:* m`, `b 8:* r`.
pub(super) fn parse_device_rule(s: &str) -> Option<LinuxDeviceCgroup> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [typ, nums, access] = parts[..] else { return None };
    let typ = match typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return None,
    };
    let (maj, min) = nums.split_once(':')?;
    let num = |n: &str| if n == "*" { Some(None) } else { n.parse::<i64>().ok().map(Some) };
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_typ(Some(typ));
    r.set_major(num(maj)?);
    r.set_minor(num(min)?);
    r.set_access(Some(access.to_string()));
    Some(r)
}
