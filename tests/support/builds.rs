//! Helpers of the build system tests: a scenario on a fresh project that is taken down and
//! checked afterwards, files in the build context, `berth build --progress json` and its events,
//! and the check that a build left nothing behind.
#![allow(dead_code)]

use std::path::Path;

use crate::harness;

/// The base image of test builds.
pub const BASE: &str = "berth-test/busybox:latest";

/// Runs `body` on a new project with `services`, then takes the project down and checks that
/// nothing is left, whatever the body did.
pub fn scenario(test: &str, services: &str, body: impl FnOnce(&harness::Project)) {
    let p = harness::Project::new(test, services);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&p)));
    p.finish(result);
}

pub fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

/// The JSON events of a `--progress json` run (stderr lines that are objects with a `kind`).
pub fn events(stderr: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("kind").is_some())
        .collect()
}

/// Builds with `--progress json` and returns the `image_built` event and every event.
pub fn build(
    p: &harness::Project,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (serde_json::Value, Vec<serde_json::Value>) {
    let mut args = vec!["build", "--progress", "json"];
    args.extend_from_slice(extra);
    let mut cmd = p.cmd(&args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let ev = events(&out.stderr);
    let built = ev.iter().find(|e| e["kind"] == "image_built").cloned().expect("an image_built event");
    (built, ev)
}

/// Step numbers whose layer came from the cache.
pub fn cached_steps(ev: &[serde_json::Value]) -> Vec<u64> {
    ev.iter()
        .filter(|e| e["kind"] == "build_step_done" && e["cached"] == true)
        .map(|e| e["step"].as_u64().unwrap())
        .collect()
}

pub fn run_in(p: &harness::Project, service: &str, script: &str) -> String {
    p.ok(&["run", "--rm", "-T", service, "sh", "-c", script])
}

/// Nothing a build made is left: no mount under the root, no scratch directory, no runtime
/// state, no build cgroup, and nothing of the build network (bridge, namespace, lease, intent).
pub fn assert_build_clean(p: &harness::Project) {
    // A `run --rm` container's monitor removes it (and its root file system) just after `run` returns.
    let root = p.root.path().to_string_lossy().into_owned();
    let ours = || -> Vec<String> {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        mounts.lines().filter(|l| l.contains(&root)).map(str::to_string).collect()
    };
    p.wait_for(10, "mounts under the root to go", || ours().iter().all(|l| l.contains("/containers/")));
    assert!(ours().iter().all(|l| l.contains("/containers/")), "build mounts left: {:?}", ours());
    let tmp = p.root.path().join("build/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "build scratch left: {left:?}");
    let runtime_state = || -> Vec<std::path::PathBuf> {
        ["runc", "crun"]
            .iter()
            .flat_map(|rt| std::fs::read_dir(p.run.path().join("runtime").join(rt)).into_iter().flatten().flatten())
            .map(|e| e.path())
            .collect()
    };
    p.wait_for(10, "runtime state to go", || runtime_state().is_empty());
    // Other tests build at the same time: a cgroup of theirs goes within moments, a leaked one stays.
    let build_cgroups = || -> Vec<std::path::PathBuf> {
        ["/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"]
            .iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
            .filter(|e| e.file_name().to_string_lossy().starts_with("berth-build-"))
            .map(|e| e.path())
            .collect()
    };
    let seen = build_cgroups();
    p.wait_for(10, "build cgroups to go", || seen.iter().all(|c| !c.exists()));
    assert_build_network_gone(p);
}

/// The build bridge of the project's root, its namespaces, leases, intents and nftables table
/// are gone.
pub fn assert_build_network_gone(p: &harness::Project) {
    let bridge = berth::build::network::bridge_name(p.root.path());
    assert!(!Path::new("/sys/class/net").join(bridge.as_str()).exists(), "build bridge {bridge:?} left");
    let netns: Vec<_> = std::fs::read_dir(p.run.path().join("netns"))
        .map(|d| {
            d.flatten().map(|e| e.file_name()).filter(|n| n.to_string_lossy().starts_with("berth-build-")).collect()
        })
        .unwrap_or_default();
    assert!(netns.is_empty(), "build namespaces left: {netns:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let run = p.run.path().to_string_lossy().into_owned();
    assert!(!mounts.lines().any(|l| l.contains(&run) && l.contains("berth-build-")), "a namespace mount left");
    let db = berth::state::StateDb::open(p.root.path()).unwrap();
    let leases: Vec<_> = db.all_leases().unwrap().into_iter().filter(|l| l.network == "berth-build").collect();
    assert!(leases.is_empty(), "build leases left: {leases:?}");
    assert!(db.intents("(build)").unwrap().is_empty(), "build intents left");
    assert!(db.network("berth-build").unwrap().is_none(), "the build network's row is left");
    if !db.networks().unwrap().is_empty() {
        return; // The project's own networks keep berth's table.
    }
    let table = berth::stack::engine::firewall_table(p.root.path());
    let tables =
        std::process::Command::new("nft").args(["list", "tables"]).output().map(|o| o.stdout).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&tables).contains(&format!(" {table}\n")), "nftables table {table} left");
}
