//! The namespaces a container gets and the (namespaced) sysctls it sets.

use std::collections::HashMap;
use std::path::PathBuf;

use berth_compose::model::Service;
use berth_compose::resolved::{NamespaceMode, ResolvedService};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use super::NetworkNs;

/// `sysctls`, plus `kernel.domainname` for `domainname`: runc before 1.2 ignores the spec's
/// `domainname`, and the sysctl sets it in the container's own UTS namespace with any runtime.
pub(super) fn sysctls(svc: &Service, resolved: &ResolvedService) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = svc.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(d) = svc.domainname.as_ref().filter(|_| !is_host(&resolved.uts)) {
        out.entry("kernel.domainname".into()).or_insert_with(|| d.clone());
    }
    out
}

/// `host`: the host's namespace.
fn is_host(mode: &Option<NamespaceMode>) -> bool {
    mode == &Some(NamespaceMode::Host)
}

pub(super) fn namespaces(svc: &ResolvedService, network: &NetworkNs) -> Vec<LinuxNamespace> {
    let ns = |typ: LinuxNamespaceType, path: Option<PathBuf>| {
        let mut n = LinuxNamespace::default();
        n.set_typ(typ);
        n.set_path(path);
        n
    };
    let mut out = Vec::new();
    if !is_host(&svc.pid) {
        out.push(ns(LinuxNamespaceType::Pid, None));
    }
    if !is_host(&svc.ipc) {
        out.push(ns(LinuxNamespaceType::Ipc, None));
    }
    if !is_host(&svc.uts) {
        out.push(ns(LinuxNamespaceType::Uts, None));
    }
    out.push(ns(LinuxNamespaceType::Mount, None));
    // `cgroup: private` gives the container a cgroup namespace of its own; by default (and with
    // `host`) it sees the host's cgroup tree, as Docker does on cgroup v1.
    if svc.cgroup == Some(NamespaceMode::Private) {
        out.push(ns(LinuxNamespaceType::Cgroup, None));
    }
    match network {
        NetworkNs::None => out.push(ns(LinuxNamespaceType::Network, None)),
        NetworkNs::Host => {}
        NetworkNs::Path(p) => out.push(ns(LinuxNamespaceType::Network, Some(p.clone()))),
    }
    out
}
