//! System test (root): `berth run` makes its one-off container by the path `up` uses. It starts
//! the service's dependencies first (waiting for a health check when `depends_on` asks),
//! unless `--no-deps`; the one-off joins the service's networks and reaches them by name, is
//! known by its own name only (by the service's too with `--use-aliases`), shares the
//! service's named volumes, publishes only what `-p`/`--service-ports` ask for, and with `--rm`
//! leaves no container, namespace, lease or anonymous volume once it ends. `start` gives a
//! container whose namespace is gone (as after a reboot) its networks back. `down -v` leaves
//! nothing.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::io::{Read, Write};
use std::time::Duration;

use harness::Project;

fn services(app_port: u16) -> String {
    format!(
        r#"  db:
    image: berth-test/busybox:latest
    init: true
    command: [sh, -c, "echo hello from db > /srv/index.html && exec httpd -f -p 8080 -h /srv"]
    volumes: ["site:/srv"]
    healthcheck:
      test: [CMD, wget, -q, -O-, "http://127.0.0.1:8080/index.html"]
      interval: 1s
  app:
    image: berth-test/busybox:latest
    init: true
    command: [sleep, "300"]
    volumes: ["site:/site", "/scratch"]
    ports: ["127.0.0.1:{app_port}:8080"]
    networks:
      default:
        aliases: [application]
    depends_on:
      db: {{condition: service_healthy}}
volumes:
  site:
"#
    )
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET /index.html` from `127.0.0.1:port`; the body, or `None` when nothing answers.
fn http_get(port: u16) -> Option<String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// The names of the one-off containers of `service`.
fn oneoffs(p: &Project, service: &str) -> Vec<String> {
    let prefix = format!("{}-{service}-run-", p.name);
    p.ps().iter().filter_map(|c| c["Name"].as_str().filter(|n| n.starts_with(&prefix)).map(str::to_string)).collect()
}

/// What a one-off container leaves on the host: namespace files and leases named after it,
/// and anonymous volumes of one-offs.
fn oneoff_leftovers(p: &Project) -> Vec<String> {
    let marker = format!("{}-app-run-", p.name);
    let mut left: Vec<String> = std::fs::read_dir(p.run.path().join("netns"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&marker))
        .map(|n| format!("netns {n}"))
        .collect();
    left.extend(p.leases_of(&marker).into_iter().map(|l| format!("lease {l}")));
    let volumes = p.ok(&["volume", "ls", "-q"]);
    left.extend(volumes.lines().filter(|v| v.starts_with(&marker)).map(|v| format!("volume {v}")));
    left
}

#[test]
fn run_brings_up_dependencies_joins_networks_and_cleans_up() {
    let app_port = free_port();
    let p = Project::new("runcli", &services(app_port));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // --no-deps: db is neither started nor waited for, so its name does not resolve; the
        // one-off still gets the service's network and named volume.
        let out = p.berth(&[
            "run",
            "--rm",
            "-T",
            "--no-deps",
            "app",
            "sh",
            "-c",
            "timeout 3 nslookup db >/dev/null 2>&1 && echo found || echo no-db; ls -d /site",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "no-db\n/site\n");
        assert!(p.ps().iter().all(|c| c["Service"] != "db"), "--no-deps started db: {:?}", p.ps());

        // Without it, run starts db, waits until it is healthy, and reaches it by name.
        let out = p.berth(&["run", "--rm", "-T", "app", "sh", "-c", "wget -q -O- http://db:8080/index.html"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from db\n");
        let db = p.container(&format!("{}-db-1", p.name));
        assert_eq!((db["State"].as_str(), db["Health"].as_str()), (Some("running"), Some("healthy")), "{db}");
        // The named volume is the service's: what db wrote into it is there.
        assert_eq!(p.ok(&["run", "--rm", "-T", "app", "cat", "/site/index.html"]), "hello from db\n");

        // --rm leaves nothing: no container, namespace, lease or anonymous volume.
        p.wait_for(10, "the --rm one-offs to go", || oneoffs(&p, "app").is_empty());
        p.wait_for(10, "their namespaces, leases and volumes to go", || oneoff_leftovers(&p).is_empty());

        // A one-off answers to its own name only; with --use-aliases to the service's and its
        // aliases too.
        let plain = p.ok(&["run", "-d", "app", "sleep", "60"]).trim().to_string();
        assert!(plain.starts_with(&format!("{}-app-run-", p.name)) && plain.len() == p.name.len() + 21, "{plain}");
        let lookup = |name: &str| {
            p.berth(&["exec", "-T", "db", "sh", "-c", &format!("timeout 3 nslookup {name} >/dev/null 2>&1")])
                .status
                .success()
        };
        p.wait_for(10, "the one-off's name to resolve", || lookup(&plain));
        assert!(!lookup("app") && !lookup("application"), "a one-off is not the service");
        let aliased = p.ok(&["run", "-d", "--use-aliases", "app", "sleep", "60"]).trim().to_string();
        p.wait_for(10, "the service's names to resolve", || lookup("app") && lookup("application"));
        assert!(oneoffs(&p, "app").contains(&aliased));
        p.ok(&["rm", "-s", "-f", "-v", "app"]);

        // Ports: none without -p or --service-ports (not even the service's), then each.
        let httpd = ["httpd", "-f", "-p", "8080", "-h", "/site"];
        let plain = p.ok(&[&["run", "-d", "--rm", "app"][..], &httpd].concat()).trim().to_string();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(http_get(app_port), None, "a one-off publishes nothing by default");
        let publish = free_port();
        let spec = format!("127.0.0.1:{publish}:8080");
        let published = p.ok(&[&["run", "-d", "--rm", "-p", &spec, "app"][..], &httpd].concat()).trim().to_string();
        let mut body = None;
        p.wait_for(10, "the -p port to answer", || {
            body = http_get(publish);
            body.is_some()
        });
        assert_eq!(body.as_deref(), Some("hello from db\n"));
        let out = p.berth(&[&["run", "-d", "--rm", "-p", &spec, "app"][..], &httpd].concat());
        assert_eq!(out.status.code(), Some(1), "a port taken is refused");
        assert!(stderr_of(&out).contains(&published), "the message names who has it: {}", stderr_of(&out));
        let service_ports = p.ok(&[&["run", "-d", "--rm", "--service-ports", "app"][..], &httpd].concat());
        p.wait_for(10, "the service's port to answer", || http_get(app_port).is_some());
        let out = p.berth(&["run", "--rm", "-T", "--service-ports", "-p", &spec, "app", "true"]);
        assert!(stderr_of(&out).contains("--service-ports and --publish are incompatible"), "{}", stderr_of(&out));
        for name in [plain.as_str(), published.as_str(), service_ports.trim()] {
            assert!(oneoffs(&p, "app").iter().any(|o| o == name), "{name}");
        }
        p.ok(&["kill", "app"]);
        p.wait_for(10, "the killed --rm one-offs to go", || oneoffs(&p, "app").is_empty());
        p.wait_for(10, "what they had to go", || oneoff_leftovers(&p).is_empty());
        assert_eq!(http_get(publish), None, "the port went with the container");

        // -v, -l, --env-from-file, --cap-drop.
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("f"), "from the host\n").unwrap();
        std::fs::write(host.path().join("env"), "FROM_FILE=file\nBOTH=file\n").unwrap();
        let bind = format!("{}:/host:ro", host.path().display());
        let env_file = host.path().join("env");
        let out = p.ok(&[
            "run",
            "--rm",
            "-T",
            "-v",
            &bind,
            "--env-from-file",
            env_file.to_str().unwrap(),
            "-e",
            "BOTH=cli",
            "--cap-drop",
            "ALL",
            "app",
            "sh",
            "-c",
            "cat /host/f; echo $FROM_FILE $BOTH; grep CapEff /proc/self/status",
        ]);
        assert_eq!(out, "from the host\nfile cli\nCapEff:\t0000000000000000\n");
        let labelled = p.ok(&["run", "-d", "-l", "purpose=test", "app", "true"]).trim().to_string();
        assert_eq!(p.container(&labelled)["Labels"]["purpose"], "test", "{}", p.container(&labelled));
    }));
    // `down -v` takes the one-offs too, and leaves nothing.
    p.finish(result);
}

#[test]
fn start_gives_a_container_its_networks_back() {
    let p = Project::new("runstart", &services(free_port()));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let out = p.berth(&["up", "-d", "--wait", "db"]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        p.ok(&["stop", "-t", "1"]);
        // As after a reboot: the namespace is gone (`/run` is a new tmpfs).
        let netns = p.run.path().join("netns").join(format!("{}-db-1", p.name));
        nix::mount::umount2(&netns, nix::mount::MntFlags::MNT_DETACH).unwrap();
        std::fs::remove_file(&netns).unwrap();
        p.ok(&["start", "db"]);
        assert!(netns.exists(), "start made the namespace again");
        let out = p.berth(&["run", "--rm", "-T", "app", "sh", "-c", "wget -q -O- http://db:8080/index.html"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from db\n");
        // `restart` does the same.
        p.ok(&["stop", "-t", "1"]);
        nix::mount::umount2(&netns, nix::mount::MntFlags::MNT_DETACH).unwrap();
        std::fs::remove_file(&netns).unwrap();
        p.ok(&["restart", "db"]);
        assert!(netns.exists(), "restart made the namespace again");
        let out = p.berth(&["run", "--rm", "-T", "app", "sh", "-c", "wget -q -O- http://db:8080/index.html"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    }));
    p.finish(result);
}
