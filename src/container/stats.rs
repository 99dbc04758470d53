//! Reading a container's cgroup: its processes (`top`) and its CPU, memory and pids usage
//! (`stats`), on cgroup v1 (per-controller trees under `/sys/fs/cgroup/<controller>/`) and v2
//! (one tree: `cpu.stat` `usage_usec`, `memory.current`, `memory.max`, `pids.current`).

use std::path::{Path, PathBuf};

use crate::state::ContainerRecord;

/// One sample of a container's usage.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Cumulated CPU time in nanoseconds.
    pub cpu_nanos: u64,
    /// Memory in use (without page cache on v1), bytes.
    pub memory: u64,
    /// Memory limit in bytes (`None`: unlimited).
    pub memory_limit: Option<u64>,
    /// Processes and threads.
    pub pids: u64,
    /// Bytes received and sent on the container's interfaces (loopback aside).
    pub net_rx: u64,
    /// See `net_rx`.
    pub net_tx: u64,
    /// Bytes read from and written to block devices.
    pub block_read: u64,
    /// See `block_read`.
    pub block_write: u64,
}

/// How the host mounts cgroups, as far as the files of one container's cgroup go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupLayout {
    /// One hierarchy per controller (`<root>/<controller>/<path>`); also the "hybrid" layout,
    /// whose cgroup2 mount at `<root>/unified` holds no controller berth reads.
    V1,
    /// The unified hierarchy (`<root>/<path>`, every controller's files together).
    V2,
}

impl CgroupLayout {
    /// This host's layout.
    pub fn host() -> CgroupLayout {
        if crate::runtime::cgroup_v2_only() {
            CgroupLayout::V2
        } else {
            CgroupLayout::V1
        }
    }

    /// The directory of `controller`'s files for the cgroup at `rel` (a `cgroupsPath`) under
    /// `root` (`/sys/fs/cgroup`).
    pub fn dir(self, root: &Path, controller: &str, rel: &str) -> PathBuf {
        let rel = rel.trim_start_matches('/');
        match self {
            CgroupLayout::V1 => root.join(controller).join(rel),
            CgroupLayout::V2 => root.join(rel),
        }
    }
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

fn cgroup_dir(controller: &str, rel: &str) -> PathBuf {
    CgroupLayout::host().dir(Path::new(CGROUP_ROOT), controller, rel)
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn keyed(p: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.lines().find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

/// A sample of the container's cgroup.
pub fn stats(rec: &ContainerRecord) -> anyhow::Result<Stats> {
    let cfg = &rec.config;
    let mut s = read_stats(Path::new(CGROUP_ROOT), CgroupLayout::host(), &cfg.cgroups_path);
    if s.memory_limit.is_none() {
        s.memory_limit = host_memory();
    }
    if let Some(pid) = rec.pid.filter(|_| rec.status.is_alive()) {
        // The init's view of the network is the container's.
        let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
        (s.net_rx, s.net_tx) = net_bytes(&dev);
    }
    Ok(s)
}

/// Reads the usage of the cgroup at `rel` under `root`. v1: `cpuacct.usage` (ns),
/// `memory.usage_in_bytes` less `total_inactive_file`, `memory.limit_in_bytes` (unlimited is a
/// huge number), `pids.current`. v2: `cpu.stat` `usage_usec`, `memory.current` less
/// `inactive_file`, `memory.max` (`max` when unlimited), `pids.current`.
pub fn read_stats(root: &Path, layout: CgroupLayout, rel: &str) -> Stats {
    let dir = |controller: &str| layout.dir(root, controller, rel);
    let mut s = Stats::default();
    match layout {
        CgroupLayout::V2 => {
            let d = dir("");
            s.cpu_nanos = keyed(&d.join("cpu.stat"), "usage_usec ").unwrap_or(0) * 1000;
            s.memory = read_u64(&d.join("memory.current")).unwrap_or(0);
            s.memory = s.memory.saturating_sub(keyed(&d.join("memory.stat"), "inactive_file ").unwrap_or(0));
            s.memory_limit = read_u64(&d.join("memory.max"));
            s.pids = read_u64(&d.join("pids.current")).unwrap_or(0);
            // io.stat: `MAJ:MIN rbytes=N wbytes=N ...` per device.
            for line in std::fs::read_to_string(d.join("io.stat")).unwrap_or_default().lines() {
                for field in line.split_whitespace() {
                    let value = |k: &str| field.strip_prefix(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                    s.block_read += value("rbytes=");
                    s.block_write += value("wbytes=");
                }
            }
        }
        CgroupLayout::V1 => {
            s.cpu_nanos = read_u64(&dir("cpuacct").join("cpuacct.usage")).unwrap_or(0);
            let mem = dir("memory");
            let usage = read_u64(&mem.join("memory.usage_in_bytes")).unwrap_or(0);
            let cache = keyed(&mem.join("memory.stat"), "total_inactive_file ").unwrap_or(0);
            s.memory = usage.saturating_sub(cache);
            s.memory_limit = read_u64(&mem.join("memory.limit_in_bytes")).filter(|l| *l < (1 << 62));
            s.pids = read_u64(&dir("pids").join("pids.current")).unwrap_or(0);
            // `MAJ:MIN Read N` / `MAJ:MIN Write N` per device, and a `Total` line.
            let io = std::fs::read_to_string(dir("blkio").join("blkio.throttle.io_service_bytes")).unwrap_or_default();
            for line in io.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                match f.as_slice() {
                    [_, "Read", n] => s.block_read += n.parse::<u64>().unwrap_or(0),
                    [_, "Write", n] => s.block_write += n.parse::<u64>().unwrap_or(0),
                    _ => {}
                }
            }
        }
    }
    s
}

/// Received and sent bytes summed over the interfaces of a `/proc/<pid>/net/dev` text, loopback
/// aside.
pub fn net_bytes(dev: &str) -> (u64, u64) {
    let mut total = (0, 0);
    for line in dev.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else { continue };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if f.len() >= 9 {
            total.0 += f[0];
            total.1 += f[8];
        }
    }
    total
}

/// Whether the kernel's OOM killer killed a process of the cgroup at `rel` under `root`: the
/// `oom_kill` count of `memory.oom_control` (v1) or `memory.events` (v2).
pub fn oom_killed(root: &Path, layout: CgroupLayout, rel: &str) -> bool {
    let file = match layout {
        CgroupLayout::V1 => "memory.oom_control",
        CgroupLayout::V2 => "memory.events",
    };
    keyed(&layout.dir(root, "memory", rel).join(file), "oom_kill ").is_some_and(|n| n > 0)
}

/// [`oom_killed`] on this host.
pub fn host_oom_killed(rel: &str) -> bool {
    oom_killed(Path::new(CGROUP_ROOT), CgroupLayout::host(), rel)
}

fn host_memory() -> Option<u64> {
    keyed(Path::new("/proc/meminfo"), "MemTotal:").map(|kb| kb * 1024).or_else(|| {
        let t = std::fs::read_to_string("/proc/meminfo").ok()?;
        let l = t.lines().next()?;
        l.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
    })
}

/// The container's processes: `(uid, pid, ppid, command line)`, by pid.
pub fn top(rec: &ContainerRecord) -> anyhow::Result<Vec<(u32, i32, i32, String)>> {
    let cfg = &rec.config;
    let procs = cgroup_dir("pids", &cfg.cgroups_path).join("cgroup.procs");
    let procs = if procs.exists() { procs } else { cgroup_dir("memory", &cfg.cgroups_path).join("cgroup.procs") };
    let text = std::fs::read_to_string(&procs).unwrap_or_default();
    let mut out = Vec::new();
    for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string());
        let uid = field("Uid:").and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0);
        let ppid = field("PPid:").and_then(|v| v.parse().ok()).unwrap_or(0);
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd: Vec<String> =
            cmd.split(|b| *b == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
        let cmd =
            if cmd.is_empty() { field("Name:").map(|n| format!("[{n}]")).unwrap_or_default() } else { cmd.join(" ") };
        out.push((uid, pid, ppid, cmd));
    }
    out.sort_by_key(|p| p.1);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = root.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        root
    }

    #[test]
    fn network_bytes_leave_loopback_out() {
        let dev = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0\n  eth0:    1000      10    0    0    0     0          0         0     2000      20    0    0    0     0       0          0\n  eth1:      10       1    0    0    0     0          0         0       20       2    0    0    0     0       0          0\n";
        assert_eq!(net_bytes(dev), (1010, 2020));
    }

    #[test]
    fn cgroup_directories_per_layout() {
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(CgroupLayout::V1.dir(root, "memory", "/berth-abc"), Path::new("/sys/fs/cgroup/memory/berth-abc"));
        assert_eq!(CgroupLayout::V2.dir(root, "memory", "/berth-abc"), Path::new("/sys/fs/cgroup/berth-abc"));
        assert_eq!(CgroupLayout::V2.dir(root, "pids", "berth-abc"), Path::new("/sys/fs/cgroup/berth-abc"));
    }

    #[test]
    fn v2_usage_limit_and_oom() {
        let root = tree(&[
            ("berth-abc/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"),
            ("berth-abc/memory.current", "10485760\n"),
            ("berth-abc/memory.stat", "anon 4096\nfile 2097152\ninactive_file 1048576\nactive_file 0\n"),
            ("berth-abc/memory.max", "33554432\n"),
            ("berth-abc/pids.current", "3\n"),
            ("berth-abc/memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n"),
            ("berth-abc/io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n"),
            ("berth-def/memory.max", "max\n"),
            ("berth-def/memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
        ]);
        let s = read_stats(root.path(), CgroupLayout::V2, "/berth-abc");
        let want = Stats {
            cpu_nanos: 1_500_000,
            memory: 9 * 1024 * 1024,
            memory_limit: Some(32 << 20),
            pids: 3,
            block_read: 4097,
            block_write: 8194,
            ..Stats::default()
        };
        assert_eq!(s, want);
        assert!(oom_killed(root.path(), CgroupLayout::V2, "/berth-abc"));
        // `max` is no limit; a cgroup that never hit one was not OOM-killed.
        assert_eq!(read_stats(root.path(), CgroupLayout::V2, "/berth-def").memory_limit, None);
        assert!(!oom_killed(root.path(), CgroupLayout::V2, "/berth-def"));
        // The v1 files are not where v2 looks, and the other way round.
        assert_eq!(read_stats(root.path(), CgroupLayout::V1, "/berth-abc"), Stats::default());
        assert!(!oom_killed(root.path(), CgroupLayout::V1, "/berth-abc"));
    }

    #[test]
    fn v1_usage_limit_and_oom() {
        let root = tree(&[
            ("cpuacct/berth-abc/cpuacct.usage", "2000000\n"),
            ("memory/berth-abc/memory.usage_in_bytes", "8388608\n"),
            ("memory/berth-abc/memory.stat", "cache 0\ntotal_inactive_file 4194304\n"),
            ("memory/berth-abc/memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory/berth-abc/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            ("pids/berth-abc/pids.current", "5\n"),
            (
                "blkio/berth-abc/blkio.throttle.io_service_bytes",
                "8:0 Read 100\n8:0 Write 20\n8:0 Total 120\nTotal 120\n",
            ),
        ]);
        let s = read_stats(root.path(), CgroupLayout::V1, "/berth-abc");
        let want = Stats {
            cpu_nanos: 2_000_000,
            memory: 4 << 20,
            pids: 5,
            block_read: 100,
            block_write: 20,
            ..Stats::default()
        };
        assert_eq!(s, want);
        assert!(oom_killed(root.path(), CgroupLayout::V1, "/berth-abc"));
    }
}
