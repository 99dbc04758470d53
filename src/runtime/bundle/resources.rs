//! cgroup resources: memory, CPU and pids limits.

use berth_compose::model::Service;
use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

/// cgroup resources, in the runtime spec's terms, which are the same for cgroup v1 and v2: the
/// runtime writes the files (runc's and crun's `cgroups` code; runtime-spec `config-linux.md`).
///
/// | Compose | spec | v1 file | v2 file |
/// |---|---|---|---|
/// | `mem_limit` | `memory.limit` | `memory.limit_in_bytes` | `memory.max` |
/// | `memswap_limit` (memory + swap; default 2 × `mem_limit`, `-1` unlimited) | `memory.swap` | `memory.memsw.limit_in_bytes` | `memory.swap.max` = swap − limit |
/// | `mem_reservation` | `memory.reservation` | `memory.soft_limit_in_bytes` | `memory.low` |
/// | `cpus` | `cpu.quota` / `cpu.period` (100 ms) | `cpu.cfs_quota_us` / `cpu.cfs_period_us` | `cpu.max` "quota period" |
/// | `cpu_shares` | `cpu.shares` | `cpu.shares` | `cpu.weight` = 1 + (shares − 2) × 9999 / 262142 |
/// | `cpuset` | `cpu.cpus` | `cpuset.cpus` | `cpuset.cpus` |
/// | `pids_limit` (`0`/`-1` unlimited) | `pids.limit` (`-1` unlimited) | `pids.max` | `pids.max` |
///
/// As Docker does, a `memswap_limit` of 0 counts as not set.
pub(super) fn resources(svc: &Service) -> Result<LinuxResources, String> {
    let limits = svc.deploy.as_ref().and_then(|d| d.resources.as_ref()).and_then(|r| r.limits.as_ref());
    let reservations = svc.deploy.as_ref().and_then(|d| d.resources.as_ref()).and_then(|r| r.reservations.as_ref());
    let mut res = LinuxResources::default();

    let mem_limit = svc.mem_limit.map(|b| b.0).or_else(|| limits.and_then(|l| l.memory).map(|b| b.0));
    let mem_reservation = svc.mem_reservation.map(|b| b.0).or_else(|| reservations.and_then(|l| l.memory).map(|b| b.0));
    let swap = svc.memswap_limit.map(|b| b.0).filter(|s| *s != 0);
    if mem_limit.is_some() || mem_reservation.is_some() || swap.is_some() || svc.mem_swappiness.is_some() {
        if let (Some(m), Some(s)) = (mem_limit, swap) {
            if s > 0 && s < m {
                return Err(format!("memswap_limit ({s}) must not be below mem_limit ({m})"));
            }
        }
        let mut mem = LinuxMemory::default();
        mem.set_limit(mem_limit.filter(|m| *m > 0));
        mem.set_reservation(mem_reservation.filter(|m| *m > 0));
        // Docker: without memswap_limit, a container may use as much swap as memory.
        mem.set_swap(swap.or_else(|| mem_limit.filter(|m| *m > 0).map(|m| m * 2)));
        mem.set_swappiness(svc.mem_swappiness.map(|s| s.clamp(0, 100) as u64));
        mem.set_disable_oom_killer(svc.oom_kill_disable);
        res.set_memory(Some(mem));
    }

    let cpus = svc.cpus.filter(|c| *c > 0.0).or_else(|| limits.and_then(|l| l.cpus).filter(|c| *c > 0.0));
    if cpus.is_some() || svc.cpu_shares.is_some() || svc.cpuset.is_some() || svc.cpu_quota.is_some() {
        let mut cpu = LinuxCpu::default();
        if let Some(c) = cpus {
            cpu.set_period(Some(100_000));
            cpu.set_quota(Some((c * 100_000.0).round() as i64));
        } else if let Some(q) = svc.cpu_quota {
            cpu.set_quota(Some(q));
            cpu.set_period(svc.cpu_period.map(|p| p as u64));
        }
        cpu.set_shares(svc.cpu_shares.filter(|s| *s > 0).map(|s| s as u64));
        cpu.set_cpus(svc.cpuset.clone());
        res.set_cpu(Some(cpu));
    }

    if let Some(p) = svc.pids_limit.or_else(|| limits.and_then(|l| l.pids)) {
        let mut pids = LinuxPids::default();
        pids.set_limit(if p <= 0 { -1 } else { p });
        res.set_pids(Some(pids));
    }
    Ok(res)
}
