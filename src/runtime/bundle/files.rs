//! The files berth writes for a container: `/etc/hosts` and the bundle's `config.json`.

use oci_spec::runtime::Spec;

/// The contents of `/etc/hosts` for a container.
pub fn hosts_file(hostname: &str, extra_hosts: &[String]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in extra_hosts {
        // `host=addr` (long form) or `host:addr` (Docker's short form; IPv6 addresses contain `:`).
        let (name, addr) = h.split_once('=').or_else(|| h.split_once(':')).unwrap_or((h.as_str(), ""));
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        s.push_str(&format!("{addr}\t{name}\n"));
    }
    s.push_str(&format!("127.0.1.1\t{hostname}\n"));
    s
}

/// Serializes a spec deterministically: capability sets and maps (annotations, sysctls) sorted.
pub fn to_json(spec: &Spec) -> serde_json::Value {
    let mut v = serde_json::to_value(spec).unwrap_or_default();
    if let Some(caps) = v.pointer_mut("/process/capabilities").and_then(|c| c.as_object_mut()) {
        for set in caps.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    for ptr in ["/annotations", "/linux/sysctl"] {
        if let Some(map) = v.pointer_mut(ptr).and_then(|m| m.as_object_mut()) {
            map.sort_keys();
        }
    }
    v
}
