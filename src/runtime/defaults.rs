//! What Docker gives every container unless told otherwise: capabilities, mounts, devices, masked
//! and read-only paths. berth gives the same, so images behave as they do under Docker.

use oci_spec::runtime::{Capability, LinuxDeviceCgroup, LinuxDeviceType, Mount};

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability the kernel knows (for `privileged` and `cap_add: [ALL]`).
pub const ALL_CAPS: &[Capability] = &[
    Capability::AuditControl,
    Capability::AuditRead,
    Capability::AuditWrite,
    Capability::BlockSuspend,
    Capability::Bpf,
    Capability::CheckpointRestore,
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::Kill,
    Capability::Lease,
    Capability::LinuxImmutable,
    Capability::MacAdmin,
    Capability::MacOverride,
    Capability::Mknod,
    Capability::NetAdmin,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetRaw,
    Capability::Perfmon,
    Capability::Setfcap,
    Capability::Setgid,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysChroot,
    Capability::SysModule,
    Capability::SysNice,
    Capability::SysPacct,
    Capability::SysPtrace,
    Capability::SysRawio,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Syslog,
    Capability::WakeAlarm,
];

/// Paths Docker hides from containers (a `/dev/null` bind or an empty read-only tmpfs over them).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths Docker makes read-only.
pub const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The kernel's number of a capability (its bit in `CapBnd`).
pub fn cap_number(c: Capability) -> u32 {
    use Capability::*;
    match c {
        Chown => 0,
        DacOverride => 1,
        DacReadSearch => 2,
        Fowner => 3,
        Fsetid => 4,
        Kill => 5,
        Setgid => 6,
        Setuid => 7,
        Setpcap => 8,
        LinuxImmutable => 9,
        NetBindService => 10,
        NetBroadcast => 11,
        NetAdmin => 12,
        NetRaw => 13,
        IpcLock => 14,
        IpcOwner => 15,
        SysModule => 16,
        SysRawio => 17,
        SysChroot => 18,
        SysPtrace => 19,
        SysPacct => 20,
        SysAdmin => 21,
        SysBoot => 22,
        SysNice => 23,
        SysResource => 24,
        SysTime => 25,
        SysTtyConfig => 26,
        Mknod => 27,
        Lease => 28,
        AuditWrite => 29,
        AuditControl => 30,
        Setfcap => 31,
        MacOverride => 32,
        MacAdmin => 33,
        Syslog => 34,
        WakeAlarm => 35,
        BlockSuspend => 36,
        AuditRead => 37,
        Perfmon => 38,
        Bpf => 39,
        CheckpointRestore => 40,
        #[allow(unreachable_patterns)]
        _ => 63,
    }
}

/// The bounding set of this process (`CapBnd` in `/proc/self/status`); a container cannot get more.
pub fn host_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string())))
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(u64::MAX)
}

/// Parses `NET_ADMIN` or `CAP_NET_ADMIN` (any case).
pub fn parse_capability(name: &str) -> Option<Capability> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    bare.parse().ok()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(dest.into());
    m.set_typ(Some(typ.into()));
    m.set_source(Some(source.into()));
    m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// Docker's standard mounts: `/proc`, `/dev`, `/dev/pts`, `/sys`, the cgroup tree, `/dev/mqueue`
/// and `/dev/shm` of `shm_size` bytes (`/sys` and cgroups writable when `privileged`).
pub fn default_mounts(shm_size: i64, privileged: bool) -> Vec<Mount> {
    let sys_mode = if privileged { "rw" } else { "ro" };
    let shm_opts = format!("size={}k", (shm_size.max(4096) + 1023) / 1024);
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", sys_mode]),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", sys_mode]),
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", &shm_opts]),
    ]
}

/// Docker's default `/dev/shm` size.
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

fn dev_rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.into()));
    r
}

/// The device cgroup rules of an unprivileged container: deny everything, then allow `mknod` of
/// any device and use of null, zero, full, random, urandom, tty, console, ptmx, the pty slaves and tun.
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{A, B, C};
    vec![
        dev_rule(false, A, None, None, "rwm"),
        dev_rule(true, C, None, None, "m"),
        dev_rule(true, B, None, None, "m"),
        dev_rule(true, C, Some(1), Some(3), "rwm"),
        dev_rule(true, C, Some(1), Some(5), "rwm"),
        dev_rule(true, C, Some(1), Some(7), "rwm"),
        dev_rule(true, C, Some(1), Some(8), "rwm"),
        dev_rule(true, C, Some(1), Some(9), "rwm"),
        dev_rule(true, C, Some(5), Some(0), "rwm"),
        dev_rule(true, C, Some(5), Some(1), "rwm"),
        dev_rule(true, C, Some(5), Some(2), "rwm"),
        dev_rule(true, C, Some(136), None, "rwm"),
        dev_rule(true, C, Some(10), Some(200), "rwm"),
    ]
}

/// The device rule of a privileged container: everything.
pub fn allow_all_devices() -> Vec<LinuxDeviceCgroup> {
    vec![dev_rule(true, LinuxDeviceType::A, None, None, "rwm")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names() {
        assert_eq!(parse_capability("net_admin"), Some(Capability::NetAdmin));
        assert_eq!(parse_capability("CAP_SYS_ADMIN"), Some(Capability::SysAdmin));
        assert_eq!(parse_capability("NOPE"), None);
        assert_eq!(DEFAULT_CAPS.len(), 14);
    }
}
