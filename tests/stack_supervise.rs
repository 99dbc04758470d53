//! System tests (root) of the project supervisor: a three-tier stack (a db with a health check,
//! an app that waits for it healthy and reaches it by a network alias, a web with a published
//! port) answers on the host's loopback through the port proxy, finds its services through the
//! DNS server, survives `kill -9` of the app's process (restarted by its policy), of its monitor
//! and of the supervisor, and `down` leaves nothing behind. Also: a scaled service resolves to
//! every replica, and a port in use fails `up` before anything is made.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::io::{Read, Write};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// GET / from 127.0.0.1:port (plain HTTP/1.0 over loopback).
fn get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

fn stack(port: u16) -> String {
    format!(
        r#"  db:
    image: berth-test/busybox:latest
    init: true
    command: [sh, -c, "mkdir -p /www && echo db-ok > /www/index.html && exec httpd -f -p 80 -h /www"]
    healthcheck:
      test: [CMD, wget, -q, -O-, "http://127.0.0.1/"]
      interval: 1s
    networks:
      default:
        aliases: [database]
  app:
    image: berth-test/busybox:latest
    init: true
    command: [sh, -c, "mkdir -p /www && wget -q -O /www/index.html http://database/ && exec httpd -f -p 8080 -h /www"]
    restart: always
    depends_on:
      db: {{condition: service_healthy}}
  web:
    image: berth-test/busybox:latest
    init: true
    command: [sh, -c, "mkdir -p /www && until wget -q -O /www/index.html http://app:8080/; do sleep 0.1; done; exec httpd -f -p 80 -h /www"]
    ports: ["{port}:80"]
    depends_on: [app]
"#
    )
}

/// Pids of processes whose command line contains all of `words`.
fn pids_with(words: &[&str]) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            words.iter().all(|w| cmd.contains(w))
        })
        .collect()
}

fn kill9(pid: i32) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
}

/// `down -v`, then checks that nothing of the project is left, on the host's network side too.
fn finish(p: &harness::Project, result: std::thread::Result<()>) {
    p.finish(result);
    assert!(p.bridges().is_empty(), "bridges left: {:?}", p.bridges());
    // No rules (the root's table goes with its last network) and no leases.
    let table = berth::stack::engine::firewall_table(p.root.path());
    let rules = std::process::Command::new("nft").args(["list", "table", "inet", &table]).output().unwrap();
    assert!(!rules.status.success(), "table {table} left: {}", String::from_utf8_lossy(&rules.stdout));
    let leases = p.leases_of(&p.name);
    assert!(leases.is_empty(), "leases left: {leases:?}");
    let netns = p.run.path().join("netns");
    let left: Vec<_> = std::fs::read_dir(&netns).map(|d| d.filter_map(|e| e.ok()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "namespaces left: {left:?}");
}

#[test]
fn three_tiers_answer_resolve_survive_kills_and_go_away() {
    let port = free_port();
    let p = harness::Project::new("supervise", &stack(port));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        p.wait_for(20, "the web page through the published port", || get(port).as_deref() == Some("db-ok\n"));
        assert_eq!(p.ok(&["port", "web", "80"]).trim(), format!("0.0.0.0:{port}"));
        // External traffic takes the DNAT rule the supervisor installed (loopback the proxy).
        let table = berth::stack::engine::firewall_table(p.root.path());
        let rules = std::process::Command::new("nft").args(["list", "table", "inet", &table]).output().unwrap();
        let rules = String::from_utf8_lossy(&rules.stdout);
        assert!(rules.contains(&format!("dport {port}")) && rules.contains("dnat"), "{rules}");
        let db = p.container(&format!("{}-db-1", p.name));
        assert_eq!(db["Health"], "healthy", "{db}");
        assert!(db["Status"].as_str().unwrap().contains("(healthy)"), "{db}");

        // Names: service, container name, alias; all from the project's DNS server.
        let db_ip = p.ok(&["exec", "-T", "db", "ip", "-4", "-o", "addr", "show", "eth0"]);
        let db_ip = db_ip.split_whitespace().skip_while(|w| *w != "inet").nth(1).unwrap().split('/').next().unwrap();
        for name in ["db", &format!("{}-db-1", p.name), "database"] {
            let out = p.ok(&["exec", "-T", "web", "nslookup", name]);
            assert!(out.contains(db_ip), "{name} resolves to {db_ip}: {out}");
        }
        let out = p.berth(&["exec", "-T", "web", "nslookup", "nosuchservice"]);
        assert!(!out.status.success() || String::from_utf8_lossy(&out.stdout).contains("can't find"));

        // kill -9 of the app's process: its restart policy starts it again, same container.
        let app = p.container(&format!("{}-app-1", p.name));
        kill9(app["Pid"].as_i64().unwrap() as i32);
        p.wait_for(20, "the app restarted", || {
            let c = p.container(&format!("{}-app-1", p.name));
            c["State"] == "running" && c["RestartCount"] == 1
        });
        let again = p.container(&format!("{}-app-1", p.name));
        assert_eq!(again["ID"], app["ID"], "restarted, not recreated");
        assert!(again["Status"].as_str().unwrap().contains("1 restart: exited with code 137"), "{again}");

        // kill -9 of the app's monitor: the container runs on.
        kill9(p.monitor_pid(again["ID"].as_str().unwrap()));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(p.ok(&["exec", "-T", "app", "cat", "/www/index.html"]), "db-ok\n");

        // kill -9 of the supervisor: the stack keeps serving what runs in the kernel; the port
        // proxy goes with the supervisor and `up` brings a new one that adopts the stack.
        let sup = pids_with(&["__supervise", &p.name]);
        assert_eq!(sup.len(), 1, "one supervisor: {sup:?}");
        kill9(sup[0]);
        let out = p.berth(&["up", "-d"]);
        assert!(out.status.success(), "up again: {}", String::from_utf8_lossy(&out.stderr));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("Created"), "nothing recreated: {stderr}");
        p.wait_for(20, "the port answering again", || get(port).as_deref() == Some("db-ok\n"));
        assert_eq!(pids_with(&["__supervise", &p.name]).len(), 1);
    }));
    finish(&p, result);
    assert!(get(port).is_none(), "the port is closed after down");
    assert!(pids_with(&["__supervise", &p.name]).is_empty(), "the supervisor is gone");
}

#[test]
fn a_scaled_service_resolves_to_every_replica() {
    let services = r#"  echo:
    image: berth-test/busybox:latest
    command: [sleep, "300"]
    init: true
    scale: 2
  client:
    image: berth-test/busybox:latest
    command: [sleep, "300"]
    init: true
"#;
    let p = harness::Project::new("scaledns", services);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        let out = p.ok(&["exec", "-T", "client", "nslookup", "echo"]);
        let addrs = out.lines().filter(|l| l.starts_with("Address") && !l.contains(":53")).count();
        assert_eq!(addrs, 2, "both replicas: {out}");
        // A replica that exits stops resolving.
        let second = p.container(&format!("{}-echo-2", p.name));
        kill9(second["Pid"].as_i64().unwrap() as i32);
        p.wait_for(5, "one address left", || {
            let out = p.ok(&["exec", "-T", "client", "nslookup", "echo"]);
            out.lines().filter(|l| l.starts_with("Address") && !l.contains(":53")).count() == 1
        });
    }));
    finish(&p, result);
}

#[test]
fn a_port_in_use_fails_up_before_anything_is_made() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let services = format!(
        "  web:\n    image: berth-test/busybox:latest\n    command: [sleep, \"300\"]\n    ports: [\"127.0.0.1:{port}:80\"]\n"
    );
    let p = harness::Project::new("portinuse", &services);
    let out = p.berth(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("services.web.ports[0]") && err.contains("already in use"), "{err}");
    assert!(p.ps().is_empty());
    assert!(p.bridges().is_empty(), "no network made");
    p.assert_clean();
    drop(taken);
}

#[test]
fn random_and_range_host_ports_are_chosen_and_reported() {
    let services = r#"  rnd:
    image: berth-test/busybox:latest
    command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]
    init: true
    ports: ["127.0.0.1::80"]
  ranged:
    image: berth-test/busybox:latest
    command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]
    init: true
    scale: 2
    ports: ["127.0.0.1:RANGE:80"]
"#;
    let base = free_port().clamp(20000, 60000);
    let services = services.replace("RANGE", &format!("{base}-{}", base + 20));
    let p = harness::Project::new("randomports", &services);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        let addr = p.ok(&["port", "rnd", "80"]);
        let port: u16 = addr.trim().rsplit_once(':').unwrap().1.parse().unwrap();
        assert!(port != 0 && addr.starts_with("127.0.0.1:"), "{addr}");
        p.wait_for(10, "the random port answering", || get(port).is_some());
        let ports: Vec<u16> = (1..=2)
            .map(|i| {
                let a = p.ok(&["port", "--index", &i.to_string(), "ranged", "80"]);
                a.trim().rsplit_once(':').unwrap().1.parse().unwrap()
            })
            .collect();
        assert_ne!(ports[0], ports[1], "each replica its own port");
        assert!(ports.iter().all(|p| (base..=base + 20).contains(p)), "{ports:?} in {base}-{}", base + 20);
        for port in ports {
            p.wait_for(10, "a ranged port answering", || get(port).is_some());
        }
    }));
    finish(&p, result);
}
