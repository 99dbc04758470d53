//! Keys berth reads but does not carry out. Each one found is said once per key, with where it
//! is written and what berth does instead; `--strict` (or `x-berth: {strict: true}` at the top
//! of a file) makes them errors. A key leaves this list when berth honours it.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Error;
use crate::model::{CacheEntry, Project, Service};
use crate::resolved::{NamespaceMode, ResolvedService};
use crate::validate::span_of;
use crate::yaml::Node;

/// Why a key is not honoured, and what happens instead.
fn service_keys(svc: &Service) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    let cgroup = ResolvedService::new(svc).ok().and_then(|r| r.cgroup);
    let mut add = |present: bool, key: &'static str, why: &'static str| {
        if present {
            out.push((key, why));
        }
    };
    if let Some(b) = &svc.build {
        let net = b.network.as_deref().is_some_and(|n| !["none", "default", "host"].contains(&n));
        add(net, "build.network", "RUN steps run on the build bridge (only none, default and host are honoured)");
        add(!b.ssh.is_empty(), "build.ssh", "berth forwards no SSH agent into builds");
        let remote = |list: &[String]| list.iter().any(|e| CacheEntry::parse(e).kind != "local");
        add(remote(&b.cache_from), "build.cache_from", "only type=local caches are imported");
        add(remote(&b.cache_to), "build.cache_to", "only type=local caches are exported");
        add(!b.platforms.is_empty(), "build.platforms", "images are built for this host's platform");
        add(!b.entitlements.is_empty(), "build.entitlements", "RUN steps run with the default confinement");
        add(!b.no_cache_filter.is_empty(), "build.no_cache_filter", "use no_cache to build every layer again");
        add(b.isolation.is_some(), "build.isolation", "a Windows-only setting");
        add(b.provenance.is_some() || b.sbom.is_some(), "build.attestations", "berth writes no attestations");
    }
    add(
        matches!(cgroup, Some(NamespaceMode::Service(_) | NamespaceMode::Container(_))),
        "cgroup",
        "joining another container's cgroup namespace is not supported: it sees the host's",
    );
    add(svc.cpu_count.is_some(), "cpu_count", "not applied on Linux (use cpus or cpuset)");
    add(svc.cpu_percent.is_some(), "cpu_percent", "not applied on Linux (use cpus)");
    add(svc.cpu_rt_period.is_some(), "cpu_rt_period", "real-time CPU scheduling is not set up");
    add(svc.cpu_rt_runtime.is_some(), "cpu_rt_runtime", "real-time CPU scheduling is not set up");
    add(svc.credential_spec.is_some(), "credential_spec", "a Windows-only setting");
    add(!svc.external_links.is_empty(), "external_links", "only the project's own names resolve");
    add(svc.gpus.is_some(), "gpus", "berth gives containers no GPUs");
    add(svc.isolation.is_some(), "isolation", "a Windows-only setting");
    add(svc.models.is_some(), "models", "berth runs no models");
    add(svc.provider.is_some(), "provider", "berth runs no provider services");
    add(!svc.storage_opt.is_empty(), "storage_opt", "berth's overlay root file systems take no options");
    add(svc.use_api_socket == Some(true), "use_api_socket", "berth has no Docker API socket to share");
    // `host` is what berth does anyway (no user namespace remapping).
    add(
        svc.userns_mode.as_deref().is_some_and(|m| m != "host"),
        "userns_mode",
        "containers share the host's user namespace",
    );
    let driver = svc.logging.as_ref().and_then(|l| l.driver.as_deref());
    add(
        driver.is_some_and(|d| !matches!(d, "json-file" | "local" | "none" | "syslog" | "journald")),
        "logging.driver",
        "every container's output goes to berth's JSON log (`berth logs`); berth honours json-file, local, none, \
         syslog and journald",
    );
    if let Some(d) = &svc.deploy {
        add(d.placement.is_some(), "deploy.placement", "placement is for swarms; berth runs on this host");
        add(
            d.mode.as_deref() == Some("global"),
            "deploy.mode",
            "`global` is for swarms; berth runs the replicas asked for",
        );
        add(d.endpoint_mode.is_some(), "deploy.endpoint_mode", "names resolve to every replica's address");
        let reservations = d.resources.as_ref().and_then(|r| r.reservations.as_ref());
        add(
            reservations.is_some_and(|r| !r.devices.is_empty() || !r.generic_resources.is_empty()),
            "deploy.resources.reservations",
            "device and generic resource reservations are not applied",
        );
        add(
            reservations.is_some_and(|r| r.cpus.is_some()),
            "deploy.resources.reservations.cpus",
            "CPU reservations are not applied (limits are)",
        );
    }
    out
}

/// What the project sets that berth does not carry out: one line per key, naming where each
/// use of it is written.
pub fn find(project: &Project, tree: &Node) -> Vec<Error> {
    // key -> (why, places)
    let mut found: BTreeMap<(String, &'static str), Vec<Error>> = BTreeMap::new();
    for (name, svc) in &project.services {
        for (key, why) in service_keys(svc) {
            let mut keys = vec!["services", name.as_str()];
            keys.extend(key.split('.'));
            let path = keys.join(".");
            let value = match key {
                "logging.driver" => svc.logging.as_ref().and_then(|l| l.driver.clone()).map(|d| format!(": {d}")),
                "deploy.mode" => Some(": global".to_string()),
                "build.cache_from" | "build.cache_to" => svc.build.as_ref().map(|b| {
                    let list = if key == "build.cache_from" { &b.cache_from } else { &b.cache_to };
                    let kinds: BTreeSet<&str> =
                        list.iter().map(|e| CacheEntry::parse(e).kind).filter(|k| *k != "local").collect();
                    format!(" type={}", kinds.into_iter().collect::<Vec<_>>().join(", type="))
                }),
                _ => None,
            };
            let message =
                format!("`{key}{}` is not supported by berth and is ignored: {why}", value.unwrap_or_default());
            let e = match span_of(tree, &keys) {
                Some(span) => Error::at(span, Some(path), message),
                None => Error::msg(message).with_path(&path),
            };
            found.entry((key.to_string(), why)).or_default().push(e);
        }
    }
    if !project.models.is_empty() {
        let e = match span_of(tree, &["models"]) {
            Some(span) => Error::at(span, Some("models".into()), "`models` is not supported by berth and is ignored"),
            None => Error::msg("`models` is not supported by berth and is ignored"),
        };
        found.entry(("models".into(), "")).or_default().push(e);
    }
    for (key, net) in &project.networks {
        for opt in net.driver_opts.keys() {
            if matches!(opt.as_str(), "com.docker.network.bridge.name" | "com.docker.network.driver.mtu") {
                continue;
            }
            let keys = ["networks", key.as_str(), "driver_opts"];
            let message = format!(
                "driver option {opt:?} is not supported by berth and is ignored (it takes com.docker.network.bridge.name and com.docker.network.driver.mtu)"
            );
            let e = match span_of(tree, &keys) {
                Some(span) => Error::at(span, Some(keys.join(".")), message),
                None => Error::msg(message).with_path(&keys.join(".")),
            };
            found.entry((format!("driver_opts.{opt}"), "")).or_default().push(e);
        }
    }
    found
        .into_values()
        .map(|mut places| {
            let first = places.remove(0);
            if places.is_empty() {
                first
            } else {
                let more = places.len();
                let message = format!("{} (and {more} more use{})", first.message, if more == 1 { "" } else { "s" });
                Error { message, ..first }
            }
        })
        .collect()
}

/// Whether the project asks for strictness itself (`x-berth: {strict: true}` at the top level).
pub fn strict_in(project: &Project) -> bool {
    project.extensions.get("x-berth").and_then(|x| x.get("strict")).and_then(|v| v.as_bool()) == Some(true)
}

#[cfg(test)]
mod tests {
    use crate::{load, LoadOptions};

    fn opts(yaml: &str, strict: bool) -> LoadOptions {
        LoadOptions {
            files: vec!["-".into()],
            stdin: Some(yaml.into()),
            cwd: std::env::temp_dir(),
            strict,
            ..LoadOptions::default()
        }
    }

    const YAML: &str = "name: u\nservices:\n  a:\n    image: busybox\n    gpus: all\n    cpu_count: 2\n    logging:\n      driver: gelf\n  b:\n    image: busybox\n    cpu_count: 2\n    deploy:\n      placement:\n        constraints: [a]\n      resources:\n        limits:\n          cpus: 1\nnetworks:\n  default:\n    driver_opts:\n      com.docker.network.driver.mtu: \"1400\"\n      com.docker.network.bridge.enable_icc: \"false\"\n";

    #[test]
    fn each_ignored_key_is_said_once_where_it_is_written() {
        let loaded = load(&opts(YAML, false)).unwrap();
        let w = loaded.warnings.join("\n");
        assert!(w.contains("-:6:5: services.a.cpu_count: `cpu_count` is not supported"), "{w}");
        assert!(w.contains("(and 1 more use)"), "{w}");
        assert_eq!(w.matches("cpu_count").count(), 2, "one line for both uses: {w}");
        assert!(w.contains("-:5:5: services.a.gpus"), "{w}");
        assert!(w.contains("services.a.logging.driver: `logging.driver: gelf`"), "{w}");
        assert!(w.contains("-:13:7: services.b.deploy.placement"), "{w}");
        assert!(w.contains("enable_icc") && !w.contains("driver.mtu\" is"), "{w}");
        // What berth honours is not mentioned.
        assert!(!w.contains("limits"), "{w}");
        assert_eq!(loaded.warnings.len(), 5, "{w}");
    }

    #[test]
    fn the_logging_drivers_berth_honours_are_not_warned_about() {
        for driver in ["json-file", "local", "none", "syslog", "journald"] {
            let yaml = format!("name: u\nservices:\n  a:\n    image: busybox\n    logging:\n      driver: {driver}\n");
            let loaded = load(&opts(&yaml, true)).unwrap();
            assert!(loaded.warnings.is_empty(), "{driver}: {:?}", loaded.warnings);
        }
        for driver in ["gelf", "fluentd", "awslogs"] {
            let yaml = format!("name: u\nservices:\n  a:\n    image: busybox\n    logging:\n      driver: {driver}\n");
            let w = load(&opts(&yaml, false)).unwrap().warnings.join("\n");
            assert!(w.contains(&format!("`logging.driver: {driver}` is not supported")), "{w}");
            assert!(load(&opts(&yaml, true)).is_err(), "{driver} is refused by --strict");
        }
    }

    #[test]
    fn the_build_keys_berth_honours_are_not_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let build =
            |keys: &str| format!("name: u\nservices:\n  a:\n    build:\n      context: .\n{keys}  b:\n    build: .\n");
        let honoured = "      network: host\n      extra_hosts: [\"h=10.0.0.1\"]\n      shm_size: 64m\n      \
                        ulimits: {nofile: {soft: 1024, hard: 2048}}\n      privileged: true\n      additional_contexts: {x: ., y: \"service:b\"}\n";
        let mut o = opts(&build(honoured), true);
        o.cwd = dir.path().to_path_buf();
        let loaded = load(&o).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let ignored = "      network: front\n      cache_from: [\"type=local,src=/c\", \"type=gha\", \"user/app:cache\"]\n      cache_to: [\"type=local,dest=/c\", \"type=s3,region=x\", \"type=inline\"]\n";
        let mut o = opts(&build(ignored), false);
        o.cwd = dir.path().to_path_buf();
        let w = load(&o).unwrap().warnings.join("\n");
        assert!(w.contains("build.network"), "{w}");
        assert!(w.contains("`build.cache_from type=gha, type=registry` is not supported"), "{w}");
        assert!(w.contains("`build.cache_to type=inline, type=s3` is not supported"), "{w}");
        let local = "      cache_from: [\"type=local,src=/c\"]\n      cache_to: [\"type=local,dest=/c\"]\n";
        let mut o = opts(&build(local), false);
        o.cwd = dir.path().to_path_buf();
        let w = load(&o).unwrap().warnings;
        assert!(w.is_empty(), "local caches are honoured: {w:?}");
    }

    #[test]
    fn strict_mode_refuses_them() {
        let e = load(&opts(YAML, true)).unwrap_err();
        assert!(e.to_string().contains("is not supported by berth"), "{e}");
        let in_file = format!("x-berth:\n  strict: true\n{YAML}");
        assert!(load(&opts(&in_file, false)).is_err());
        let clean = "name: u\nservices:\n  a:\n    image: busybox\n";
        assert!(load(&opts(clean, true)).unwrap().warnings.is_empty());
    }
}
