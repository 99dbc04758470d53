//! System tests (root): names a container finds for itself and for the host, as under Docker:
//! `host.docker.internal:host-gateway` in `extra_hosts` is the host's address on the container's
//! network, reachable from the container.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::io::Read;

#[test]
fn host_gateway_is_the_hosts_address_on_the_network() {
    let p = harness::Project::new(
        "hostgw",
        "  app:\n    image: berth-test/busybox:latest\n    init: true\n    command: [sleep, \"300\"]\n    extra_hosts: [\"host.docker.internal:host-gateway\"]\n",
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        let route = p.ok(&["exec", "-T", "app", "ip", "route", "show", "default"]);
        let gateway =
            route.split_whitespace().nth(2).unwrap_or_else(|| panic!("no default route: {route}")).to_string();
        let hosts = p.ok(&["exec", "-T", "app", "cat", "/etc/hosts"]);
        assert!(
            hosts
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [gateway.as_str(), "host.docker.internal"]),
            "{hosts}"
        );
        // Something the host serves on that address answers the container by that name.
        let listener = std::net::TcpListener::bind((gateway.parse::<std::net::IpAddr>().unwrap(), 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = String::new();
            s.read_to_string(&mut got).unwrap();
            got
        });
        let cmd = format!("echo hello-host | timeout 5 nc host.docker.internal {port}");
        p.ok(&["exec", "-T", "app", "sh", "-c", &cmd]);
        assert_eq!(served.join().unwrap(), "hello-host\n");
    }));
    p.finish(result);
}

#[test]
fn names_resolve_through_dockers_address_inside_each_container() {
    let p = harness::Project::new(
        "dns11",
        "  db:\n    image: berth-test/busybox:latest\n    init: true\n    command: [sleep, \"300\"]\n  app:\n    image: berth-test/busybox:latest\n    init: true\n    command: [sleep, \"300\"]\n",
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        let resolv = p.ok(&["exec", "-T", "app", "cat", "/etc/resolv.conf"]);
        assert!(resolv.lines().any(|l| l == "nameserver 127.0.0.11"), "{resolv}");
        // `resolver 127.0.0.11` as nginx configs say it: UDP, and TCP reaches the server too.
        let out = p.ok(&["exec", "-T", "app", "sh", "-c", "timeout 5 nslookup db 127.0.0.11"]);
        let db_ip = p.ok(&["exec", "-T", "db", "ip", "-4", "-o", "addr", "show", "eth0"]);
        let db_ip = db_ip
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        assert!(out.contains(&db_ip), "{out}");
        p.ok(&["exec", "-T", "app", "sh", "-c", "echo | timeout 5 nc 127.0.0.11 53"]);
        // stats counts what went over the network; -a shows stopped containers too.
        let stats = p.ok(&["stats", "--no-stream", "--format", "json", "app"]);
        let row: serde_json::Value = serde_json::from_str(stats.lines().next().unwrap()).unwrap();
        assert!(row["NetRx"].as_u64().unwrap() > 0 && row["NetTx"].as_u64().unwrap() > 0, "{row}");
        p.ok(&["stop", "db"]);
        let table = p.ok(&["stats", "--no-stream"]);
        assert!(table.contains("NET I/O") && table.contains("BLOCK I/O") && !table.contains("-db-1"), "{table}");
        assert!(p.ok(&["stats", "--no-stream", "-a"]).contains("-db-1"));
    }));
    p.finish(result);
}

#[test]
fn network_create_makes_an_external_network_projects_can_join() {
    let p = harness::Project::new("netcreate", "");
    let net = format!("{}-ext", p.name);
    p.write_compose(&format!(
        "  app:\n    image: berth-test/busybox:latest\n    init: true\n    command: [sleep, \"300\"]\n    networks: [ext]\nnetworks:\n  ext:\n    external: true\n    name: {net}\n"
    ));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Before it exists, up says so.
        let out = p.berth(&["up", "-d"]);
        assert_eq!(out.status.code(), Some(1));
        p.ok(&["network", "create", &net, "--subnet", "10.213.7.0/24", "--label", "team=a"]);
        let again = p.berth(&["network", "create", &net]);
        assert_eq!(again.status.code(), Some(1), "a second create is refused");
        let bad = p.berth(&["network", "create", "../x"]);
        assert_eq!(bad.status.code(), Some(1));
        p.ok(&["up", "-d"]);
        let addr = p.ok(&["exec", "-T", "app", "ip", "-4", "-o", "addr", "show", "eth0"]);
        assert!(addr.contains("10.213.7."), "{addr}");
        p.ok(&["down"]);
        // down leaves an external network; network rm removes it.
        let ls = p.ok(&["network", "ls", "-q"]);
        assert!(ls.lines().any(|l| l == net), "{ls}");
        p.ok(&["network", "rm", &net]);
        assert!(!p.ok(&["network", "ls", "-q"]).lines().any(|l| l == net));
    }));
    p.finish(result);
}

#[test]
fn a_container_finds_its_own_hostname() {
    let p = harness::Project::new(
        "ownname",
        "  app:\n    image: berth-test/busybox:latest\n    init: true\n    command: [sleep, \"300\"]\n  other:\n    image: berth-test/busybox:latest\n    init: true\n    command: [sleep, \"300\"]\n    hostname: custom\n",
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        let me = p.ok(&["exec", "-T", "app", "hostname"]).trim().to_string();
        assert_eq!(me.len(), 12, "the short id: {me}");
        let addr = p.ok(&["exec", "-T", "app", "ip", "-4", "-o", "addr", "show", "eth0"]);
        let addr =
            addr.split_whitespace().skip_while(|w| *w != "inet").nth(1).unwrap().split('/').next().unwrap().to_string();
        // /etc/hosts (what getent and gethostbyname(gethostname()) read) ...
        let hosts = p.ok(&["exec", "-T", "app", "cat", "/etc/hosts"]);
        assert!(hosts.lines().any(|l| l.starts_with(&addr) && l.split_whitespace().any(|w| w == me)), "{hosts}");
        // ... and DNS, from itself and from another container.
        for svc in ["app", "other"] {
            let out = p.ok(&["exec", "-T", svc, "sh", "-c", &format!("timeout 5 nslookup {me}")]);
            assert!(out.contains(&addr), "{svc}: {out}");
        }
        let hosts = p.ok(&["exec", "-T", "other", "cat", "/etc/hosts"]);
        assert!(hosts.lines().any(|l| l.split_whitespace().any(|w| w == "custom")), "{hosts}");
    }));
    p.finish(result);
}
