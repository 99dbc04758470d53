//! The container's mounts: Docker's defaults, the `/etc` name files, the init binary and the
//! mounts the project side prepared.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use super::{BundleRequest, INIT_PATH};
use crate::runtime::defaults;

pub(super) fn bind(dest: &str, source: &Path, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(dest.into());
    m.set_typ(Some("bind".into()));
    m.set_source(Some(source.to_path_buf()));
    m.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    m
}

pub(super) fn mounts(req: &BundleRequest<'_>, privileged: bool) -> Vec<Mount> {
    let svc = req.service;
    let shm = svc.shm_size.map(|b| b.0).filter(|b| *b > 0).unwrap_or(defaults::DEFAULT_SHM_SIZE);
    let mut mounts = defaults::default_mounts(shm, privileged);
    let ro = svc.read_only.unwrap_or(false);
    let etc_opts: &[&str] = if ro { &["rbind", "rprivate", "ro"] } else { &["rbind", "rprivate"] };
    mounts.push(bind("/etc/hosts", &req.files.hosts, etc_opts));
    mounts.push(bind("/etc/hostname", &req.files.hostname, etc_opts));
    mounts.push(bind("/etc/resolv.conf", &req.files.resolv_conf, etc_opts));
    if let Some(init) = &req.host.init_binary {
        if svc.init.unwrap_or(false) {
            mounts.push(bind(INIT_PATH, init, &["rbind", "rprivate", "ro"]));
        }
    }
    for m in req.mounts {
        let mut mount = Mount::default();
        mount.set_destination(PathBuf::from(&m.destination));
        mount.set_typ(Some(
            match m.kind {
                berth_volumes::MountKind::Bind => "bind",
                berth_volumes::MountKind::Tmpfs => "tmpfs",
            }
            .into(),
        ));
        mount.set_source(Some(PathBuf::from(&m.source)));
        mount.set_options(Some(m.options.clone()));
        mounts.push(mount);
    }
    mounts
}
