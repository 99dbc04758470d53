//! Reading a container's cgroup: its processes (`top`) and its CPU, memory and pids usage
//! (`stats`), on cgroup v1 (per-controller trees under `/sys/fs/cgroup/<controller>/`) and v2
//! (one tree: `cpu.stat` `usage_usec`, `memory.current`, `memory.max`, `pids.current`).

use std::path::{Path, PathBuf};

use super::ContainerConfig;
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
}

fn cgroup_dir(controller: &str, rel: &str) -> PathBuf {
    let rel = rel.trim_start_matches('/');
    if crate::runtime::cgroup_v2_only() {
        Path::new("/sys/fs/cgroup").join(rel)
    } else {
        Path::new("/sys/fs/cgroup").join(controller).join(rel)
    }
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn keyed(p: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.lines().find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

/// A sample of the container's cgroup.
pub fn stats(rec: &ContainerRecord) -> anyhow::Result<Stats> {
    let cfg = ContainerConfig::of(rec)?;
    let rel = &cfg.cgroups_path;
    let mut s = Stats::default();
    if crate::runtime::cgroup_v2_only() {
        let d = cgroup_dir("", rel);
        s.cpu_nanos = keyed(&d.join("cpu.stat"), "usage_usec ").unwrap_or(0) * 1000;
        s.memory = read_u64(&d.join("memory.current")).unwrap_or(0);
        s.memory = s.memory.saturating_sub(keyed(&d.join("memory.stat"), "inactive_file ").unwrap_or(0));
        s.memory_limit = read_u64(&d.join("memory.max"));
        s.pids = read_u64(&d.join("pids.current")).unwrap_or(0);
    } else {
        s.cpu_nanos = read_u64(&cgroup_dir("cpuacct", rel).join("cpuacct.usage")).unwrap_or(0);
        let mem = cgroup_dir("memory", rel);
        let usage = read_u64(&mem.join("memory.usage_in_bytes")).unwrap_or(0);
        let cache = keyed(&mem.join("memory.stat"), "total_inactive_file ").unwrap_or(0);
        s.memory = usage.saturating_sub(cache);
        s.memory_limit = read_u64(&mem.join("memory.limit_in_bytes")).filter(|l| *l < (1 << 62));
        s.pids = read_u64(&cgroup_dir("pids", rel).join("pids.current")).unwrap_or(0);
    }
    if s.memory_limit.is_none() {
        s.memory_limit = host_memory();
    }
    Ok(s)
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
    let cfg = ContainerConfig::of(rec)?;
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
