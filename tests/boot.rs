//! System test (root): after a reboot (every process, mount, namespace, bridge and firewall rule
//! gone, the run directory emptied), `berth boot` brings back the containers with `restart:
//! always` and those with `unless-stopped` the user had not stopped — in dependency order, with
//! their names and published ports — and leaves the others down. `berth systemd install`
//! writes the units that run it; `up --wait` tells a `Type=notify` unit when the project is ready.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use harness::Project;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn stack(port: u16) -> String {
    format!(
        r#"  db:
    image: berth-test/busybox:latest
    restart: always
    command: [sh, -c, "mkdir -p /srv && echo db is back > /srv/index.html && exec httpd -f -p 80 -h /srv"]
    ports: ["127.0.0.1:{port}:80"]
  app:
    image: berth-test/busybox:latest
    restart: unless-stopped
    depends_on: [db]
    command: [sleep, "600"]
  idle:
    image: berth-test/busybox:latest
    restart: unless-stopped
    command: [sleep, "600"]
  once:
    image: berth-test/busybox:latest
    command: [sleep, "600"]
"#
    )
}

fn http_get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.split("\r\n\r\n").nth(1).map(str::to_string)
}

fn state_of(p: &Project, service: &str) -> String {
    let ps = p.ps();
    let c = ps.iter().find(|c| c["Service"] == service).unwrap_or_else(|| panic!("no {service} in {ps:?}"));
    c["State"].as_str().unwrap_or_default().to_string()
}

#[test]
fn boot_brings_back_what_restarts_after_a_reboot() {
    let port = free_port();
    let p = Project::new("boot", &stack(port));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d", "--wait"]);
        p.ok(&["stop", "idle"]);
        assert_eq!(http_get(port).as_deref(), Some("db is back\n"));
        p.reboot();
        assert!(http_get(port).is_none(), "nothing serves after the reboot");
        let out = p.cmd(&["boot"]).output().unwrap();
        let told = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && told.contains(&format!("Project {}: 2 containers back", p.name)), "{told}");
        p.wait_for(30, "the published port", || http_get(port).as_deref() == Some("db is back\n"));
        assert_eq!(state_of(&p, "db"), "running");
        assert_eq!(state_of(&p, "app"), "running");
        assert_ne!(state_of(&p, "idle"), "running", "stopped by the user: stays down");
        assert_ne!(state_of(&p, "once"), "running", "no restart policy: stays down");
        // Names resolve again between the containers that came back.
        let got = p.ok(&["exec", "-T", "app", "wget", "-qO-", "http://db/"]);
        assert_eq!(got, "db is back\n");
        // A second boot finds everything running and changes nothing.
        p.ok(&["boot"]);
        assert_eq!(state_of(&p, "db"), "running");
    }));
    p.finish(result);
}

#[test]
fn systemd_units_run_boot_and_up_wait_notifies_readiness() {
    let p = Project::new("units", &stack(free_port()));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let units = p.dir.path().join("units");
        let dir = units.to_str().unwrap();
        p.ok(&["systemd", "install", "--unit-dir", dir, "--project", &p.name]);
        let boot = std::fs::read_to_string(units.join("berth.service")).unwrap();
        let exe = harness::berth_bin();
        assert!(boot.contains(&format!("ExecStart={} boot", exe.display())), "{boot}");
        assert!(boot.contains("After=network-online.target") && boot.contains("WantedBy=multi-user.target"), "{boot}");
        assert!(boot.contains(&format!("Environment=\"BERTH_ROOT={}\"", p.root.path().display())), "{boot}");
        let unit = std::fs::read_to_string(units.join(format!("berth-{}.service", p.name))).unwrap();
        assert!(unit.contains("Type=notify") && unit.contains("up --detach --wait"), "{unit}");
        assert_eq!(p.berth(&["systemd", "install", "--unit-dir", dir, "--project", "../x"]).status.code(), Some(1));
        p.ok(&["systemd", "uninstall", "--unit-dir", dir, "--project", &p.name]);
        assert_eq!(std::fs::read_dir(&units).unwrap().count(), 0);

        // `up --wait` under a Type=notify unit: READY=1 once everything runs.
        let socket_path = p.dir.path().join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
        socket.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
        let out = p.cmd(&["up", "-d", "--wait"]).env("NOTIFY_SOCKET", &socket_path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a readiness message");
        let message = String::from_utf8_lossy(&buf[..n]);
        assert!(message.starts_with("READY=1\n"), "{message}");
        assert!(p.ps().iter().filter(|c| c["Service"] != "").all(|c| c["State"] == "running"));
    }));
    p.finish(result);
}
