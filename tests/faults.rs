//! System test (root): crash safety. `up`, `down`, `run --rm` and `rm` are killed with SIGKILL at
//! random points, and in other rounds every berth process of the project is killed at once (the
//! command, its launcher, the monitors and the supervisor, as a power cut would). After each
//! round the next `up` must converge, and at the end `down -v` must leave no mount, namespace,
//! bridge, nft table, lease, cgroup, process or state row. Other rounds kill an `up` that changes
//! running containers in place (a network joined or left, ports published or not), and the `up`
//! after it must leave nothing more to change. The seed is printed: set
//! `BERTH_FAULT_SEED` to replay a run, `BERTH_FAULT_ROUNDS` for a longer one.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::process::Stdio;
use std::time::Duration;

const SERVICES: &str = r#"  db:
    image: berth-test/busybox:latest
    init: true
    command: [sleep, "300"]
    volumes: ["data:/data"]
    secrets: [token]
    healthcheck:
      test: [CMD, "true"]
      interval: 1s
  app:
    image: berth-test/busybox:latest
    init: true
    command: [sleep, "300"]
    networks: [default, back]
    depends_on:
      db: {condition: service_healthy}
    deploy:
      replicas: 2
networks:
  back:
volumes:
  data:
secrets:
  token:
    environment: FAULT_TOKEN
"#;

/// `SERVICES` with `app` on one more network and publishing a port: a change `up` makes to the
/// running `app` containers in place.
fn joined() -> String {
    SERVICES
        .replace("networks: [default, back]", "networks: [default, back, zfront]\n    ports: [\"127.0.0.1::80\"]")
        .replace("networks:\n  back:\n", "networks:\n  back:\n  zfront:\n")
}

/// A small deterministic generator (xorshift), so a failing run can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn kill9(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
}

/// Runs berth with `args` and kills it after `ms` milliseconds (if it still runs).
fn kill_after(p: &harness::Project, args: &[&str], ms: u64) {
    let mut child =
        p.cmd(args).env("FAULT_TOKEN", "t0k3n").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    kill9(child.id() as i32);
    let _ = child.wait();
}

/// Kills every process of the project's berth: anything carrying its `BERTH_RUN`.
fn power_cut(p: &harness::Project) {
    for pid in harness::processes_mentioning(p.run.path()) {
        kill9(pid);
    }
}

fn up_converges(p: &harness::Project, round: &str) {
    let out = p.cmd(&["up", "-d", "--wait"]).env("FAULT_TOKEN", "t0k3n").output().unwrap();
    if !out.status.success() {
        // What the runtime said, for the record.
        for e in std::fs::read_dir(p.run.path().join("c")).into_iter().flatten().flatten() {
            let log = std::fs::read_to_string(e.path().join("runtime.log")).unwrap_or_default();
            eprintln!("{}: {log}", e.path().display());
        }
    }
    assert!(
        out.status.success(),
        "{round}: up after the fault failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ps = p.ps();
    let running = ps.iter().filter(|c| c["State"] == "running" && c["Service"] != "").count();
    assert!(running >= 3, "{round}: not everything runs: {ps:?}");
    let out =
        p.berth(&["exec", "-T", "--index", "2", "app", "sh", "-c", "timeout 5 nslookup db 2>&1 | grep -q Address"]);
    assert!(out.status.success(), "{round}: app cannot resolve db: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn killed_commands_never_leave_a_project_that_cannot_come_up() {
    let p = harness::Project::new("faults", SERVICES);
    let seed: u64 = std::env::var("BERTH_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    let rounds: u64 = std::env::var("BERTH_FAULT_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
    eprintln!("fault test seed {seed} ({rounds} rounds): BERTH_FAULT_SEED={seed} replays it");
    let mut rng = Rng(seed);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        up_converges(&p, "first up");
        let mut joined_now = false;
        let joined_services = joined();
        for i in 0..rounds {
            let ms = 20 + rng.below(700);
            let what = rng.below(7);
            let round = format!("round {i} (seed {seed}): fault {what} at {ms} ms");
            eprintln!("{round}");
            match what {
                0 => kill_after(&p, &["down"], ms),
                1 => {
                    kill_after(&p, &["down"], ms);
                    kill_after(&p, &["up", "-d"], ms / 2 + 10);
                }
                2 => kill_after(&p, &["up", "-d", "--force-recreate"], ms),
                3 => kill_after(&p, &["run", "--rm", "-T", "app", "sh", "-c", "sleep 1"], ms),
                4 => kill_after(&p, &["rm", "-s", "-f", "app"], ms),
                5 => {
                    joined_now = !joined_now;
                    p.write_compose(if joined_now { &joined_services } else { SERVICES });
                    kill_after(&p, &["up", "-d"], ms / 3);
                }
                _ => {
                    let mut child = p
                        .cmd(&["up", "-d", "--force-recreate"])
                        .env("FAULT_TOKEN", "t0k3n")
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap();
                    std::thread::sleep(Duration::from_millis(ms));
                    power_cut(&p);
                    let _ = child.wait();
                }
            }
            up_converges(&p, &round);
            if what == 5 {
                // The change was finished, and recorded: nothing is left to do.
                let out = p.cmd(&["up", "-d", "--dry-run"]).env("FAULT_TOKEN", "t0k3n").output().unwrap();
                let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
                assert!(!text.contains("container "), "{round}: a second up still has work: {text}");
            }
        }
        // As with Compose, `down` takes down the networks the compose file declares: the file
        // that declares every network the rounds made.
        p.write_compose(&joined_services);
        let out = p.berth(&["down", "-v"]);
        assert!(out.status.success(), "final down: {}", String::from_utf8_lossy(&out.stderr));
        assert!(p.bridges().is_empty(), "bridges left: {:?}", p.bridges());
        let table = berth::stack::engine::firewall_table(p.root.path());
        let rules = std::process::Command::new("nft").args(["list", "table", "inet", &table]).output().unwrap();
        assert!(!rules.status.success(), "table {table} left: {}", String::from_utf8_lossy(&rules.stdout));
        let leases = p.leases_of(&p.name);
        assert!(leases.is_empty(), "leases left: {leases:?}");
        for dir in ["netns", "secrets", "scratch"] {
            let left: Vec<_> = std::fs::read_dir(p.run.path().join(dir))
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{dir} left: {left:?}");
        }
        let volumes = p.ok(&["volume", "ls", "-q"]);
        assert!(volumes.trim().is_empty(), "volumes left: {volumes}");
    }));
    p.finish(result);
}

#[test]
fn a_bridge_keeps_its_address_as_containers_come_and_go() {
    let p = harness::Project::new(
        "bridgemac",
        "  app:\n    image: berth-test/busybox:latest\n    init: true\n    command: [sleep, \"300\"]\n",
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        let bridge = p.bridges().pop().expect("the project's bridge");
        let mac = || std::fs::read_to_string(format!("/sys/class/net/{bridge}/address")).unwrap().trim().to_string();
        let first = mac();
        let want = berth_network::bridge_mac(&bridge);
        let want: Vec<String> = want.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(first, want.join(":"));
        for n in ["4", "1", "3"] {
            p.ok(&["up", "-d", "--scale", &format!("app={n}")]);
            assert_eq!(mac(), first, "after scaling to {n}");
        }
        // The gateway answers at once from every replica (no stale ARP entry to wait out).
        for i in ["1", "2", "3"] {
            let out = p.berth(&[
                "exec",
                "-T",
                "--index",
                i,
                "app",
                "sh",
                "-c",
                "timeout 3 nslookup app 2>&1 | grep -q Address",
            ]);
            assert!(out.status.success(), "replica {i}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }));
    p.finish(result);
}
