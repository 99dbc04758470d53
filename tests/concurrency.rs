//! System tests (root): one project, one writer. Commands that change a project take its lock;
//! a second one waits and says for whom, and commands that only read never wait.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::process::Stdio;

const SERVICES: &str = r#"  db:
    image: berth-test/busybox:latest
    init: true
    command: [sh, -c, "sleep 2; touch /ready; exec sleep 300"]
    healthcheck:
      test: [CMD, test, -f, /ready]
      interval: 1s
  app:
    image: berth-test/busybox:latest
    init: true
    command: [sleep, "300"]
    depends_on:
      db: {condition: service_healthy}
    deploy:
      replicas: 2
"#;

#[test]
fn two_ups_at_once_make_one_stack_and_readers_never_wait() {
    let p = harness::Project::new("twoups", SERVICES);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let spawn = || p.cmd(&["up", "-d"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let first = spawn();
        // The first holds the lock while it waits for db to be healthy (about 2 s).
        let lock = p.run.path().join("locks").join(format!("{}.lock", p.name));
        p.wait_for(10, "the first up to take the lock", || {
            std::fs::read_to_string(&lock).is_ok_and(|s| s.contains("berth up"))
        });
        let second = spawn();
        // Readers answer while `up` holds the lock.
        let ps = p.berth(&["ps", "-a"]);
        assert!(ps.status.success(), "{}", String::from_utf8_lossy(&ps.stderr));
        let first = first.wait_with_output().unwrap();
        let second = second.wait_with_output().unwrap();
        let (e1, e2) = (String::from_utf8_lossy(&first.stderr), String::from_utf8_lossy(&second.stderr));
        assert!(first.status.success(), "first up: {e1}");
        assert!(second.status.success(), "second up: {e2}");
        assert!(e2.contains("Waiting for berth up (pid"), "the second says whom it waits for: {e2}");
        let ps = p.ps();
        assert_eq!(ps.len(), 3, "{ps:?}");
        assert!(ps.iter().all(|c| c["State"] == "running"), "{ps:?}");
        // A killed writer leaves nothing locked.
        let mut third = p.cmd(&["up", "-d", "--force-recreate"]).stderr(Stdio::null()).spawn().unwrap();
        p.wait_for(10, "the third up to take the lock", || {
            std::fs::read_to_string(&lock).is_ok_and(|s| s.contains(&format!("pid {})", third.id())))
        });
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(third.id() as i32), nix::sys::signal::Signal::SIGKILL)
            .unwrap();
        third.wait().unwrap();
        p.ok(&["up", "-d"]);
        p.wait_for(20, "the stack to run again", || {
            let ps = p.ps();
            ps.len() == 3 && ps.iter().all(|c| c["State"] == "running")
        });
    }));
    p.finish(result);
}

#[test]
fn two_projects_brought_up_at_once_get_different_subnets() {
    let services = "  app:\n    image: berth-test/busybox:latest\n    init: true\n    command: [sleep, \"300\"]\n";
    let a = harness::Project::new("subneta", services);
    let b = harness::Project::new("subnetb", services);
    // `b` runs under `a`'s state and run directories: the two share one database.
    let under_a = |p: &harness::Project, args: &[&str]| {
        let mut c = p.cmd(args);
        c.env("BERTH_ROOT", a.root.path()).env("BERTH_RUN", a.run.path());
        c
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for round in 0..2 {
            let spawn = |p| under_a(p, &["up", "-d"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
            let (ca, cb) = (spawn(&a), spawn(&b));
            for out in [ca.wait_with_output().unwrap(), cb.wait_with_output().unwrap()] {
                assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
            }
            let db = berth::state::StateDb::open(a.root.path()).unwrap();
            let subnet = |p: &harness::Project| {
                let net = db.network(&format!("{}_default", p.name)).unwrap().expect("the network is recorded");
                assert_eq!(net.project.as_deref(), Some(p.name.as_str()));
                net.subnets[0].subnet
            };
            let (sa, sb) = (subnet(&a), subnet(&b));
            assert!(!berth_network::ipam::overlaps(&sa, &sb), "round {round}: {sa} and {sb}");
            // Each container holds one address, inside its own network's subnet.
            for (p, s) in [(&a, sa), (&b, sb)] {
                let leases: Vec<_> =
                    db.all_leases().unwrap().into_iter().filter(|l| l.owner.starts_with(&p.name)).collect();
                assert!(leases.len() == 1 && s.contains(&leases[0].addr), "round {round}: {leases:?}");
            }
            for p in [&b, &a] {
                let out = under_a(p, &["down"]).output().unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            }
            assert!(db.all_leases().unwrap().is_empty() && db.networks().unwrap().is_empty(), "round {round}");
        }
    }));
    let _ = under_a(&b, &["down", "-v"]).output();
    a.finish(result);
}
