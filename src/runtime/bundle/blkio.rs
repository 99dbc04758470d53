//! Block I/O: `blkio_config` as the runtime spec's `linux.resources.blockIO`.
//!
//! | Compose | spec | cgroup v1 file | cgroup v2 file |
//! |---|---|---|---|
//! | `weight` | `weight` | `blkio.weight` (CFQ) or `blkio.bfq.weight` (BFQ) | `io.bfq.weight` or `io.weight` |
//! | `weight_device` | `weightDevice` | `blkio.weight_device` / `blkio.bfq.weight_device` | `io.bfq.weight` / `io.weight` "MAJ:MIN W" |
//! | `device_read_bps` | `throttleReadBpsDevice` | `blkio.throttle.read_bps_device` "MAJ:MIN BYTES" | `io.max` `rbps=` |
//! | `device_write_bps` | `throttleWriteBpsDevice` | `blkio.throttle.write_bps_device` | `io.max` `wbps=` |
//! | `device_read_iops` | `throttleReadIopsDevice` | `blkio.throttle.read_iops_device` | `io.max` `riops=` |
//! | `device_write_iops` | `throttleWriteIopsDevice` | `blkio.throttle.write_iops_device` | `io.max` `wiops=` |
//!
//! Device paths are the host's, turned into major:minor numbers here. Weights need a
//! proportional I/O scheduler (CFQ or BFQ; `mq-deadline`, `kyber` and `none` have none), which
//! shows as the weight files above; where the host has none, berth does what Docker does: it
//! says so and leaves the weights out, keeping the throttles.

use std::path::Path;

use berth_compose::model::{BlkioConfig, ThrottleDevice};
use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice, LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder};

use super::HostDevice;

/// Whether the cgroup file systems under `root` (`/sys/fs/cgroup`) can weigh block I/O: the
/// v1 `blkio` hierarchy has `blkio.weight` or `blkio.bfq.weight`, or the v2 hierarchy has
/// `io.weight` or `io.bfq.weight` (in its root or, as v2 keeps them out of the root, in a child).
pub fn host_supports_weight(root: &Path) -> bool {
    let v1 = root.join("blkio");
    if ["blkio.weight", "blkio.bfq.weight"].iter().any(|f| v1.join(f).exists()) {
        return true;
    }
    let has_v2 = |dir: &Path| ["io.weight", "io.bfq.weight"].iter().any(|f| dir.join(f).exists());
    [root.to_path_buf(), root.join("unified")].iter().any(|dir| {
        has_v2(dir)
            || std::fs::read_dir(dir)
                .map(|entries| entries.flatten().any(|e| e.path().is_dir() && has_v2(&e.path())))
                .unwrap_or(false)
    })
}

/// The message berth gives when it leaves weights out.
pub const NO_WEIGHT: &str =
    "this kernel does not support block I/O weights (no CFQ or BFQ I/O scheduler): blkio_config weights are left out, limits still apply";

/// `blkio_config` in the spec's terms; `device` stats a host device, `weight_supported` says
/// whether weights can apply (else they are dropped with a warning).
pub(super) fn block_io(
    cfg: &BlkioConfig,
    device: &dyn Fn(&Path) -> Option<HostDevice>,
    weight_supported: bool,
    warnings: &mut Vec<String>,
) -> Result<LinuxBlockIo, String> {
    let dev = |key: &str, i: usize, path: &str| {
        device(Path::new(path))
            .filter(|d| d.block)
            .ok_or_else(|| format!("blkio_config.{key}[{i}].path: `{path}` is not a block device on this host"))
    };
    let mut io = LinuxBlockIo::default();
    let mut weights = Vec::new();
    for (i, w) in cfg.weight_device.iter().enumerate() {
        let d = dev("weight_device", i, &w.path)?;
        let wd = LinuxWeightDeviceBuilder::default().major(d.major).minor(d.minor).weight(w.weight).build();
        weights.push(wd.map_err(|e| e.to_string())?);
    }
    let weight = cfg.weight.filter(|w| *w > 0);
    if weight_supported {
        io.set_weight(weight);
        io.set_weight_device((!weights.is_empty()).then_some(weights));
    } else if weight.is_some() || !weights.is_empty() {
        warnings.push(NO_WEIGHT.to_string());
    }
    let throttles = |key: &str, list: &[ThrottleDevice]| -> Result<Option<Vec<LinuxThrottleDevice>>, String> {
        let mut out = Vec::new();
        for (i, t) in list.iter().enumerate() {
            let d = dev(key, i, &t.path)?;
            let rate =
                u64::try_from(t.rate.0).map_err(|_| format!("blkio_config.{key}[{i}].rate: must not be negative"))?;
            let td = LinuxThrottleDeviceBuilder::default().major(d.major).minor(d.minor).rate(rate).build();
            out.push(td.map_err(|e| e.to_string())?);
        }
        Ok((!out.is_empty()).then_some(out))
    };
    io.set_throttle_read_bps_device(throttles("device_read_bps", &cfg.device_read_bps)?);
    io.set_throttle_write_bps_device(throttles("device_write_bps", &cfg.device_write_bps)?);
    io.set_throttle_read_iops_device(throttles("device_read_iops", &cfg.device_read_iops)?);
    io.set_throttle_write_iops_device(throttles("device_write_iops", &cfg.device_write_iops)?);
    Ok(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(p: &Path) -> Option<HostDevice> {
        (p == Path::new("/dev/vdz")).then_some(HostDevice {
            block: true,
            major: 254,
            minor: 16,
            mode: 0o600,
            uid: 0,
            gid: 0,
        })
    }

    fn cfg() -> BlkioConfig {
        serde_json::from_value(serde_json::json!({
            "weight": 300,
            "weight_device": [{"path": "/dev/vdz", "weight": 500}],
            "device_read_bps": [{"path": "/dev/vdz", "rate": 1048576}],
            "device_write_iops": [{"path": "/dev/vdz", "rate": 100}],
        }))
        .unwrap()
    }

    #[test]
    fn weights_and_limits_apply_with_a_weighing_scheduler() {
        let mut warnings = Vec::new();
        let io = block_io(&cfg(), &disk, true, &mut warnings).unwrap();
        assert_eq!(io.weight(), Some(300));
        let wd = &io.weight_device().as_ref().unwrap()[0];
        assert_eq!((wd.major(), wd.minor(), wd.weight()), (254, 16, Some(500)));
        let r = &io.throttle_read_bps_device().as_ref().unwrap()[0];
        assert_eq!((r.major(), r.minor(), r.rate()), (254, 16, 1048576));
        assert_eq!(io.throttle_write_iops_device().as_ref().unwrap()[0].rate(), 100);
        assert!(warnings.is_empty());
    }

    #[test]
    fn without_weight_support_weights_are_dropped_with_a_warning_and_limits_kept() {
        let mut warnings = Vec::new();
        let io = block_io(&cfg(), &disk, false, &mut warnings).unwrap();
        assert_eq!(io.weight(), None);
        assert!(io.weight_device().is_none());
        assert_eq!(io.throttle_read_bps_device().as_ref().unwrap()[0].rate(), 1048576);
        assert_eq!(warnings, [NO_WEIGHT]);
        // Limits alone need no warning.
        let limits: BlkioConfig =
            serde_json::from_value(serde_json::json!({"device_read_bps": [{"path": "/dev/vdz", "rate": 1}]})).unwrap();
        let mut warnings = Vec::new();
        block_io(&limits, &disk, false, &mut warnings).unwrap();
        assert!(warnings.is_empty());
    }

    #[test]
    fn a_missing_device_names_its_key() {
        let bad: BlkioConfig = serde_json::from_value(
            serde_json::json!({"device_read_bps": [{"path": "/dev/vdz", "rate": 1}, {"path": "/dev/nope", "rate": 1}]}),
        )
        .unwrap();
        let err = block_io(&bad, &disk, true, &mut Vec::new()).unwrap_err();
        assert_eq!(err, "blkio_config.device_read_bps[1].path: `/dev/nope` is not a block device on this host");
    }

    #[test]
    fn weight_support_is_read_from_the_cgroup_files() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("blkio")).unwrap();
        std::fs::write(root.path().join("blkio/blkio.throttle.read_bps_device"), "").unwrap();
        assert!(!host_supports_weight(root.path()), "throttles only (mq-deadline)");
        std::fs::write(root.path().join("blkio/blkio.bfq.weight"), "100").unwrap();
        assert!(host_supports_weight(root.path()));
        let v2 = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(v2.path().join("system.slice")).unwrap();
        assert!(!host_supports_weight(v2.path()));
        std::fs::write(v2.path().join("system.slice/io.weight"), "default 100").unwrap();
        assert!(host_supports_weight(v2.path()));
    }
}
