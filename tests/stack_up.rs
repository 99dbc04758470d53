//! System test (root): `berth up -d` brings a two-service project up on its own bridge — a
//! database-like service with a health check serving a named volume, and a dependent that
//! waits for it to be healthy and then reaches it over the network — `up` again changes
//! nothing, and `down -v` leaves nothing behind.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

const SERVICES: &str = r#"  db:
    image: berth-test/busybox:latest
    init: true
    command: [sh, -c, "echo hello from db > /srv/index.html && exec httpd -f -p 8080 -h /srv"]
    volumes: ["site:/srv"]
    healthcheck:
      test: [CMD, wget, -q, -O-, "http://127.0.0.1:8080/index.html"]
      interval: 2s
  web:
    image: berth-test/busybox:latest
    init: true
    command: [sleep, "300"]
    volumes: ["/cache"]
    depends_on:
      db: {condition: service_healthy}
volumes:
  site:
"#;

fn address_of(p: &harness::Project, service: &str) -> String {
    let out = p.ok(&["exec", "-T", service, "ip", "-4", "-o", "addr", "show", "eth0"]);
    let inet =
        out.split_whitespace().skip_while(|w| *w != "inet").nth(1).unwrap_or_else(|| panic!("no address: {out}"));
    inet.split('/').next().unwrap().to_string()
}

#[test]
fn up_waits_for_health_connects_services_and_down_cleans_up() {
    let p = harness::Project::new("stackup", SERVICES);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let plan = p.ok(&["up", "--dry-run"]);
        assert!(plan.contains("network") && plan.contains("create (not found)"), "{plan}");
        let out = p.berth(&["up", "-d"]);
        assert!(out.status.success(), "up: {}", String::from_utf8_lossy(&out.stderr));
        let ps = p.ps();
        assert_eq!(ps.len(), 2, "{ps:?}");
        assert!(ps.iter().all(|c| c["State"] == "running"), "{ps:?}");

        let db = address_of(&p, "db");
        let body =
            p.ok(&["exec", "-T", "web", "timeout", "5", "wget", "-q", "-O-", &format!("http://{db}:8080/index.html")]);
        assert_eq!(body, "hello from db\n");
        let by_name = p.ok(&["exec", "-T", "web", "timeout", "5", "wget", "-q", "-O-", "http://db:8080/index.html"]);
        assert_eq!(by_name, "hello from db\n", "services find each other by name");

        assert_eq!(p.ok(&["up", "--dry-run"]), "", "a converged project has nothing to do");
        let out = p.berth(&["up", "-d"]);
        assert!(out.status.success(), "second up: {}", String::from_utf8_lossy(&out.stderr));

        // `rm` takes what `up` made for the container with it; `up` makes it again.
        let web = format!("{}-web-1", p.name);
        p.ok(&["rm", "-s", "-f", "-v", "web"]);
        assert!(!p.run.path().join("netns").join(&web).exists(), "the namespace went with the container");
        let out = p.berth(&["up", "-d"]);
        assert!(out.status.success(), "third up: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(p.ps().len(), 2);
        let again = p.ok(&["exec", "-T", "web", "timeout", "5", "wget", "-q", "-O-", "http://db:8080/index.html"]);
        assert_eq!(again, "hello from db\n");

        // An anonymous volume outlives recreation, and `-V` starts it afresh.
        p.ok(&["exec", "-T", "web", "sh", "-c", "echo kept > /cache/f"]);
        p.ok(&["up", "-d", "--force-recreate", "--no-deps", "web"]);
        assert_eq!(p.ok(&["exec", "-T", "web", "cat", "/cache/f"]), "kept\n");
        p.ok(&["up", "-d", "-V", "--no-deps", "web"]);
        let out = p.berth(&["exec", "-T", "web", "cat", "/cache/f"]);
        assert!(!out.status.success(), "-V gave web a new, empty anonymous volume");
    }));
    let down = p.berth(&["down", "-v"]);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(down.status.success(), "down: {}", String::from_utf8_lossy(&down.stderr));
    let volumes = p.ok(&["volume", "ls", "-q"]);
    assert_eq!(volumes, "", "down -v removed the named volume");
    assert!(p.bridges().is_empty(), "no bridge of the project left: {:?}", p.bridges());
    p.assert_clean();
}
