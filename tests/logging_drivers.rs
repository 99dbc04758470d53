//! System test (root): `logging.driver: syslog` sends each line of a container's output to a
//! syslog socket — here a datagram socket the test owns, named by `syslog-address` — with the
//! facility, severity and tag asked for, while `berth logs` still reads the JSON log; a socket
//! that does not exist is said at `up`, naming the service. `journald` is tested where the host
//! has the journal's socket.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

fn services(driver: &str, options: &str) -> String {
    format!(
        r#"  web:
    image: berth-test/busybox:latest
    command: [sh, -c, "echo to-stdout; echo to-stderr >&2; sleep 600"]
    init: true
    logging:
      driver: {driver}
      options: {{{options}}}
"#
    )
}

/// The datagrams that arrive on `socket` within `secs`, until `enough` of them.
fn receive(socket: &UnixDatagram, enough: usize, secs: u64) -> Vec<String> {
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while out.len() < enough && start.elapsed() < Duration::from_secs(secs) {
        if let Ok(n) = socket.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    out
}

#[test]
fn syslog_gets_each_line_with_facility_severity_and_tag() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let options = format!(
        "syslog-address: \"unixgram://{}\", syslog-facility: local3, syslog-format: rfc5424, tag: \"app/{{{{.Name}}}}\"",
        path.display()
    );
    let p = harness::Project::new("syslog", &services("syslog", &options));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let out = p.berth(&["up", "-d"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("logging"), "no warning when the socket exists: {stderr}");
        let mut got = receive(&socket, 2, 20);
        got.sort();
        let tag = format!("app/{}-web-1", p.name);
        assert_eq!(got.len(), 2, "{got:?}");
        // local3 (19) × 8 + err (3) for standard error, + info (6) for standard output.
        assert!(got[0].starts_with("<155>1 ") && got[0].contains(&format!(" {tag} ")), "{got:?}");
        assert!(got[0].ends_with(" - - to-stderr"), "{got:?}");
        assert!(got[1].starts_with("<158>1 ") && got[1].ends_with(" - - to-stdout"), "{got:?}");
        // The JSON log keeps the lines too.
        let logs = p.ok(&["logs", "web"]);
        assert!(logs.contains("to-stdout") && logs.contains("to-stderr"), "{logs}");

        // A socket that is not there: said at `up`, and the JSON log alone keeps the output.
        let gone = dir.path().join("gone.sock");
        let options = format!("syslog-address: \"unixgram://{}\"", gone.display());
        p.write_compose(&services("syslog", &options));
        let out = p.berth(&["up", "-d"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("service `web`: logging driver `syslog`") && stderr.contains("JSON log alone"),
            "{stderr}"
        );
        p.wait_for(10, "the JSON log of the new container", || {
            p.ok(&["logs", "web"]).matches("to-stdout").count() >= 1
        });
    }));
    p.finish(result);
}

#[test]
fn journald_gets_each_line_with_the_containers_fields() {
    let journal = std::path::Path::new("/run/systemd/journal/socket");
    if !journal.exists() {
        eprintln!("SKIPPED: this host has no journal socket at {} (no systemd-journald)", journal.display());
        return;
    }
    let p = harness::Project::new("journald", &services("journald", "tag: \"{{.Name}}\""));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        let name = format!("{}-web-1", p.name);
        p.wait_for(20, "the lines in the journal", || {
            let out = std::process::Command::new("journalctl")
                .args(["-o", "cat", &format!("CONTAINER_NAME={name}")])
                .output()
                .expect("journalctl runs where journald does");
            let text = String::from_utf8_lossy(&out.stdout);
            text.contains("to-stdout") && text.contains("to-stderr")
        });
    }));
    p.finish(result);
}
