//! System tests (root): Compose behaviours on a running stack — `commit`, `--compatibility`
//! names, `blkio_config` throttles — and the exit codes a Compose user's scripts rely on.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use harness::Project;

const BUSYBOX: &str = "berth-test/busybox:latest";

/// Runs `f` on a new project made of `services` (`IMAGE` is the busybox test image), then
/// `down`s it and checks the host is clean, whether `f` passed or not.
fn scenario(test: &str, services: &str, f: impl FnOnce(&Project)) {
    harness::scenario(test, &services.replace("IMAGE", BUSYBOX), f)
}

#[test]
fn commit_makes_an_image_of_a_containers_changes() {
    let yaml = "  app:\n    image: IMAGE\n    init: true\n    command: [sleep, \"300\"]\n    environment: {FROM_SERVICE: kept}\n    volumes: [\"data:/data\"]\n  copy:\n    image: committed/app:v1\n    init: true\nvolumes:\n  data:\n";
    scenario("commit", yaml, |p| {
        p.ok(&["up", "-d", "app"]);
        p.ok(&["exec", "-T", "app", "sh", "-c", "echo made-here > /etc/made; rm /bin/wget; echo vol > /data/v"]);
        let id = p.ok(&[
            "commit",
            "-a",
            "Jane <jane@example.com>",
            "-m",
            "after the exec",
            "-c",
            "CMD [\"sleep\", \"301\"]",
            "-c",
            "ENV ADDED=by-change",
            "app",
            "committed/app:v1",
        ]);
        assert!(id.trim().starts_with("sha256:") && id.trim().len() == 71, "{id}");
        // Still running after the pause.
        assert_eq!(p.container(&format!("{}-app-1", p.name))["State"], "running");
        let inspect: serde_json::Value =
            serde_json::from_str(&p.ok(&["image", "inspect", "committed/app:v1"])).unwrap();
        let inspect = if inspect.is_array() { inspect[0].clone() } else { inspect };
        assert_eq!(inspect["author"], "Jane <jane@example.com>", "{inspect}");
        let last = inspect["history"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["comment"], "after the exec", "{inspect}");
        assert_eq!(inspect["config"]["Cmd"], serde_json::json!(["sleep", "301"]));

        p.ok(&["up", "-d", "copy"]);
        let sh = |cmd: &str| p.berth(&["exec", "-T", "copy", "sh", "-c", cmd]);
        let made = sh("cat /etc/made");
        assert_eq!(String::from_utf8_lossy(&made.stdout), "made-here\n", "{}", String::from_utf8_lossy(&made.stderr));
        assert!(!sh("test -e /bin/wget").status.success(), "the deleted file is gone");
        assert!(!sh("test -e /data/v").status.success(), "a volume's content is not in the image");
        let env = String::from_utf8_lossy(&sh("env").stdout).into_owned();
        assert!(env.contains("ADDED=by-change") && env.contains("FROM_SERVICE=kept"), "{env}");
        let top = p.ok(&["top", "copy"]);
        assert!(top.contains("sleep 301"), "the changed command runs: {top}");
        p.ok(&["down"]);
        p.ok(&["image", "rm", "committed/app:v1"]);
    });
}

#[test]
fn compatibility_names_containers_as_compose_v1() {
    let yaml = "  web:\n    image: IMAGE\n    init: true\n    command: [sleep, \"300\"]\n    scale: 2\n";
    scenario("compatnames", yaml, |p| {
        p.ok(&["--compatibility", "up", "-d"]);
        let names = p.ok(&["ps", "--format", "{{.Name}}"]);
        let want = format!("{0}_web_1\n{0}_web_2\n", p.name);
        assert_eq!(names, want);
        // COMPOSE_COMPATIBILITY is the same switch; a one-off container is named so too.
        let run = p.cmd(&["run", "-d", "web", "sleep", "300"]).env("COMPOSE_COMPATIBILITY", "1").output().unwrap();
        let run = String::from_utf8_lossy(&run.stdout);
        assert!(run.trim().starts_with(&format!("{}_web_run_", p.name)), "{run}");
        // `down` takes every one away.
        p.ok(&["--compatibility", "down"]);
        assert_eq!(p.ok(&["ps", "-a", "-q"]), "");
    });
}

/// A block device node of this host: the one backing `/` where `/dev` has it, else the first
/// disk in `/sys/block` with a node in `/dev`.
fn a_block_device() -> String {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let root_dev = std::fs::metadata("/").unwrap().dev();
    let nodes: Vec<std::path::PathBuf> = std::fs::read_dir("/dev").unwrap().flatten().map(|e| e.path()).collect();
    let is_block = |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.file_type().is_block_device());
    if let Some(p) = nodes.iter().find(|p| is_block(p) && std::fs::metadata(p).unwrap().rdev() == root_dev) {
        return p.display().to_string();
    }
    let mut disks: Vec<String> = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    disks.sort();
    disks
        .into_iter()
        .map(|d| format!("/dev/{d}"))
        .find(|p| is_block(std::path::Path::new(p)) && !p.contains("/loop"))
        .expect("a block device in /dev")
}

#[test]
fn blkio_config_limits_reach_the_containers_cgroup() {
    use std::os::unix::fs::MetadataExt;
    let dev = a_block_device();
    let rdev = std::fs::metadata(&dev).unwrap().rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    let yaml = format!(
        "  app:\n    image: IMAGE\n    init: true\n    command: [sleep, \"300\"]\n    blkio_config:\n      weight: 300\n      device_read_bps:\n        - {{path: {dev}, rate: 1mb}}\n      device_write_iops:\n        - {{path: {dev}, rate: 120}}\n"
    );
    scenario("blkio", &yaml, |p| {
        let out = p.berth(&["up", "-d"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("blkio_config: block I/O"), "no longer an ignored key: {stderr}");
        let weighs = berth::runtime::bundle::host_supports_weight(std::path::Path::new("/sys/fs/cgroup"));
        assert_eq!(stderr.contains("block I/O weights"), !weighs, "{stderr}");
        let id = p.ok(&["ps", "-q", "--no-trunc", "app"]).trim().to_string();
        let dir = std::path::Path::new("/sys/fs/cgroup/blkio").join(format!("berth-{id}"));
        let read = std::fs::read_to_string(dir.join("blkio.throttle.read_bps_device")).unwrap();
        assert_eq!(read.trim(), format!("{major}:{minor} 1048576"), "{}", dir.display());
        let write = std::fs::read_to_string(dir.join("blkio.throttle.write_iops_device")).unwrap();
        assert_eq!(write.trim(), format!("{major}:{minor} 120"));
    });
    // A path that is no device is refused, naming the service and key.
    let yaml = "  app:\n    image: IMAGE\n    command: [sleep, \"300\"]\n    blkio_config:\n      device_read_bps:\n        - {path: /dev/no-such-disk, rate: 1mb}\n";
    scenario("blkiobad", yaml, |p| {
        let out = p.berth(&["up", "-d"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("service `app`") && stderr.contains("blkio_config.device_read_bps[0].path"),
            "{stderr}"
        );
    });
}

/// The exit status of `berth ARGS` in project `p`, with its output for messages.
fn status(p: &Project, args: &[&str]) -> (Option<i32>, String) {
    let out = p.berth(args);
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn exit_codes_are_composes() {
    let yaml = "  app:\n    image: IMAGE\n    command: [sleep, \"300\"]\n    stop_grace_period: 1s\n  job:\n    image: IMAGE\n    command: [sh, -c, \"exit 42\"]\n";
    scenario("exitcodes", yaml, |p| {
        p.ok(&["up", "-d", "app"]);
        let code = |args: &[&str]| status(p, args).0;
        // Unknown services are refused input.
        for args in [&["up", "-d", "nope"][..], &["exec", "-T", "nope", "true"], &["logs", "nope"], &["stop", "nope"]] {
            assert_eq!(code(args), Some(1), "{args:?}");
        }
        // The process's own status passes through `exec` and `run`, 255 included.
        assert_eq!(code(&["exec", "-T", "app", "sh", "-c", "exit 4"]), Some(4));
        assert_eq!(code(&["exec", "-T", "app", "sh", "-c", "exit 255"]), Some(255));
        assert_eq!(code(&["run", "--rm", "app", "sh", "-c", "exit 3"]), Some(3));
        // A command that is not there is 127, one that cannot be run 126, as with Docker.
        let (c, out) = status(p, &["exec", "-T", "app", "no-such-command"]);
        assert_eq!(c, Some(127), "{out}");
        assert!(out.contains("no-such-command"), "the runtime's message is shown: {out}");
        assert_eq!(code(&["exec", "-T", "app", "/etc/passwd"]), Some(126));
        assert_eq!(code(&["run", "--rm", "app", "no-such-command"]), Some(127));
        assert_eq!(code(&["run", "--rm", "app", "/etc/passwd"]), Some(126));
        // `wait` exits with the code of the container that stopped.
        p.ok(&["up", "-d", "job"]);
        let (c, out) = status(p, &["wait", "job"]);
        assert_eq!((c, out.trim()), (Some(42), "42"));
        // A project known by name only, never run here: nothing to show or take down.
        let empty = tempfile::tempdir().unwrap();
        for args in
            [&["-p", "never-ran-here", "ps"][..], &["-p", "never-ran-here", "logs"], &["-p", "never-ran-here", "down"]]
        {
            let out = p.cmd(args).current_dir(empty.path()).output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        // `down` of a project with nothing left is 0 too.
        p.ok(&["down"]);
        assert_eq!(code(&["down"]), Some(0));
    });
}
