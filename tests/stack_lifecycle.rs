//! System tests (root) of what happens to running containers: `post_start` and `pre_stop`
//! hooks, `restart` taking along dependents that ask for it (`depends_on: {restart: true}`),
//! the opt-in restart of a container whose health check fails, health events, and `scale`.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

fn run(p: &harness::Project, f: impl FnOnce()) {
    p.finish(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
}

#[test]
fn post_start_and_pre_stop_hooks_run_in_the_container() {
    let services = r#"  sample:
    image: berth-test/busybox:latest
    command: [sleep, "300"]
    init: true
    volumes: ["data:/data"]
    post_start:
      - command: sh -c 'echo started >> /data/log.txt'
    pre_stop:
      - command: sh -c 'echo "In the pre-stop" >> /data/log.txt'
volumes:
  data:
"#;
    let p = harness::Project::new("hooks", services);
    run(&p, || {
        p.ok(&["up", "-d"]);
        assert_eq!(p.ok(&["exec", "-T", "sample", "cat", "/data/log.txt"]), "started\n");
        p.ok(&["stop", "sample"]);
        p.ok(&["start", "sample"]);
        assert_eq!(p.ok(&["exec", "-T", "sample", "cat", "/data/log.txt"]), "started\nIn the pre-stop\nstarted\n");
    });
}

#[test]
fn restart_takes_along_dependents_that_ask_for_it() {
    let services = r#"  base:
    image: berth-test/busybox:latest
    command: [sleep, "300"]
    init: true
  with-restart:
    image: berth-test/busybox:latest
    command: [sleep, "300"]
    init: true
    depends_on:
      base: {condition: service_started, restart: true}
  no-restart:
    image: berth-test/busybox:latest
    command: [sleep, "300"]
    init: true
    depends_on: [base]
"#;
    let p = harness::Project::new("restartdeps", services);
    run(&p, || {
        p.ok(&["up", "-d"]);
        p.ok(&["restart", "base"]);
        let count = |s: &str| p.container(&format!("{}-{s}-1", p.name))["RestartCount"].as_u64().unwrap();
        assert_eq!((count("base"), count("with-restart"), count("no-restart")), (1, 1, 0));
        assert!(p.ps().iter().all(|c| c["State"] == "running"));
        // `stop base` stops base only (as Compose does); `stop` stops the rest; `start no-restart`
        // brings base back first.
        p.ok(&["stop", "base"]);
        let state = |s: &str| p.container(&format!("{}-{s}-1", p.name))["State"].as_str().unwrap().to_string();
        assert_eq!(
            (state("base"), state("no-restart"), state("with-restart")),
            ("exited".into(), "running".into(), "running".into())
        );
        p.ok(&["stop"]);
        assert!(p.ps().iter().all(|c| c["State"] == "exited"), "{:?}", p.ps());
        p.ok(&["start", "no-restart"]);
        assert_eq!(
            (state("base"), state("no-restart"), state("with-restart")),
            ("running".into(), "running".into(), "exited".into())
        );
    });
}

#[test]
fn an_unhealthy_container_that_opted_in_is_restarted() {
    let services = r#"  flaky:
    image: berth-test/busybox:latest
    command: [sleep, "300"]
    init: true
    tmpfs: [/run/state]
    healthcheck:
      test: [CMD-SHELL, "test ! -f /run/state/broken"]
      interval: 1s
      retries: 1
    x-berth:
      restart_on_unhealthy: true
"#;
    let p = harness::Project::new("unhealthy", services);
    run(&p, || {
        p.ok(&["up", "-d", "--wait"]);
        let name = format!("{}-flaky-1", p.name);
        assert_eq!(p.container(&name)["Health"], "healthy");
        p.ok(&["exec", "-T", "flaky", "touch", "/run/state/broken"]);
        p.wait_for(20, "the restart on unhealthy", || {
            let c = p.container(&name);
            c["RestartCount"] == 1 && c["Health"] == "healthy"
        });
        assert_eq!(p.container(&name)["RestartReason"], "unhealthy");
        let log = p.ok(&["events", "--json", "--since", "0", "--until", "0s"]);
        assert!(log.contains("health_status: unhealthy") && log.contains("health_status: healthy"), "{log}");
    });
}

#[test]
fn a_probe_past_its_timeout_is_killed_and_fails() {
    let services = r#"  hung:
    image: berth-test/busybox:latest
    command: [sleep, "300"]
    init: true
    healthcheck:
      test: [CMD, sleep, "1000"]
      interval: 1s
      timeout: 1s
      retries: 2
  shell:
    image: berth-test/busybox:latest
    command: [sleep, "300"]
    init: true
    healthcheck:
      test: [CMD-SHELL, "sleep 1001 & sleep 1002"]
      interval: 1s
      timeout: 1s
      retries: 2
"#;
    let p = harness::Project::new("probetimeout", services);
    run(&p, || {
        p.ok(&["up", "-d"]);
        for svc in ["hung", "shell"] {
            let name = format!("{}-{svc}-1", p.name);
            p.wait_for(30, "the hung probes to make it unhealthy", || p.container(&name)["Health"] == "unhealthy");
        }
        // Probes keep coming every interval; each one past its timeout is killed with what it
        // started, so at most the current one runs.
        for _ in 0..8 {
            let top = p.ok(&["top"]);
            for sleep in ["sleep 1000", "sleep 1001", "sleep 1002"] {
                assert!(top.matches(sleep).count() <= 1, "{sleep} accumulates:\n{top}");
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let log = p.ok(&["events", "--json", "--since", "0", "--until", "0s"]);
        let unhealthy: Vec<serde_json::Value> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["action"] == "health_status: unhealthy")
            .collect();
        assert_eq!(unhealthy.len(), 2, "{log}");
        for e in &unhealthy {
            assert_eq!(e["attributes"]["output"], "Health check exceeded timeout (1s)", "{e}");
        }
    });
}

#[test]
fn scale_reuses_replica_numbers() {
    let services = "  db:\n    image: berth-test/busybox:latest\n    command: [sleep, \"300\"]\n    init: true\n";
    let p = harness::Project::new("scalecmd", services);
    run(&p, || {
        let numbers = || {
            let mut n: Vec<String> = p.ps().iter().map(|c| c["Name"].as_str().unwrap().to_string()).collect();
            n.sort();
            n.iter().map(|s| s.rsplit('-').next().unwrap().to_string()).collect::<Vec<_>>()
        };
        p.ok(&["up", "-d"]);
        // `--progress json`: one object per step event on stderr.
        let out = p.berth(&["--progress", "json", "scale", "db=3"]);
        assert!(out.status.success());
        let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect();
        let started = format!("Container {}-db-3", p.name);
        assert!(events.iter().any(|e| e["id"] == started.as_str() && e["status"] == "Started"), "{events:?}");
        assert_eq!(numbers(), ["1", "2", "3"]);
        let quiet = p.berth(&["--progress", "quiet", "scale", "db=2"]);
        assert!(quiet.status.success() && quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
        p.ok(&["scale", "db=3"]);
        p.ok(&["scale", "db=1"]);
        assert_eq!(numbers(), ["1"]);
        p.ok(&["scale", "db=2"]);
        assert_eq!(numbers(), ["1", "2"]);
        p.ok(&["scale", "db=0"]);
        assert!(numbers().is_empty());
        // Bad input: exit 1, a message naming the problem, nothing made.
        for (args, says) in [
            (&["scale", "db"][..], "expected SERVICE=N"),
            (&["scale", "db=many"][..], "is not a number"),
            (&["scale", "nosuch=1"][..], "no such service"),
            (&["up", "-d", "--exit-code-from", "db"][..], "need a foreground `up`"),
        ] {
            let out = p.berth(args);
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(says), "{args:?}: {err}");
        }
        assert!(numbers().is_empty());
    });
}

#[test]
fn ipc_pid_and_uts_namespaces_are_shared_with_a_service() {
    let services = r#"  main:
    image: berth-test/busybox:latest
    command: [sleep, "301"]
    init: true
    hostname: mainhost
  helper:
    image: berth-test/busybox:latest
    command: [sleep, "302"]
    init: true
    ipc: service:main
    pid: service:main
    uts: service:main
  alone:
    image: berth-test/busybox:latest
    command: [sleep, "303"]
    init: true
"#;
    let p = harness::Project::new("sharens", services);
    run(&p, || {
        p.ok(&["up", "-d"]);
        let ns = |svc: &str, kind: &str| p.ok(&["exec", "-T", svc, "readlink", &format!("/proc/self/ns/{kind}")]);
        for kind in ["ipc", "pid", "uts"] {
            assert_eq!(ns("helper", kind), ns("main", kind), "{kind} shared");
            assert_ne!(ns("alone", kind), ns("main", kind), "{kind} of its own");
        }
        assert_eq!(p.ok(&["exec", "-T", "helper", "hostname"]).trim(), "mainhost");
        let ps = p.ok(&["exec", "-T", "helper", "ps"]);
        assert!(ps.contains("sleep 301") && ps.contains("sleep 302"), "one pid namespace: {ps}");
        // A restart of the helper joins the namespaces again.
        p.ok(&["restart", "helper"]);
        assert_eq!(ns("helper", "pid"), ns("main", "pid"));
    });
}

#[test]
fn the_image_health_check_applies_when_the_service_has_none() {
    // berth-test/config serves HTTP on 8080 and declares a Healthcheck (wget, every 2 s).
    let services = "  web:\n    image: berth-test/config:latest\n    init: true\n";
    let p = harness::Project::new("imagehealth", services);
    run(&p, || {
        p.ok(&["up", "-d", "--wait", "--wait-timeout", "30"]);
        let c = p.container(&format!("{}-web-1", p.name));
        assert_eq!(c["Health"], "healthy", "{c}");
    });
}
