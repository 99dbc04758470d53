//! System test (root): history and rollback. A good version is deployed and becomes
//! known-good; a bad version (a new image under the same tag, whose health check fails) is
//! deployed stop-first and `up --wait` reports it; `image prune -a` keeps the known-good image
//! (naming the service); `berth rollback api` makes the service's container from the stored
//! config and the known-good image by id, though its tag now names the bad one, and the service
//! answers with the good content again; `history` shows the three deployments. And a start-first
//! update under `failure_action: rollback` whose second replica fails returns the first, already
//! replaced, to the version the second still runs (paced by `rollback_config`).

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::io::{Read, Write};
use std::time::Duration;

use harness::Project;

fn stack(port: u16, build: bool) -> String {
    format!(
        r#"  api:
    image: berth-test/app:live{}
    init: true
    command: [sh, -c, "mkdir -p /www && (cat /marker 2>/dev/null || echo good) > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["127.0.0.1:{port}:80"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD-SHELL", "test ! -f /marker"]
      interval: 300ms
      retries: 1
"#,
        if build { "\n    build: ." } else { "" }
    )
}

/// The body of one HTTP request to `127.0.0.1:port`.
fn get(port: u16) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").map_err(|e| e.to_string())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).map_err(|e| e.to_string())?;
    Ok(reply.split("\r\n\r\n").nth(1).unwrap_or_default().trim().to_string())
}

fn history(p: &Project) -> serde_json::Value {
    serde_json::from_str(&p.ok(&["history", "api", "--format", "json"])).expect("history is JSON")
}

fn outcomes(h: &serde_json::Value) -> Vec<String> {
    h["deployments"].as_array().unwrap().iter().map(|d| d["outcome"].as_str().unwrap().to_string()).collect()
}

#[test]
fn rollback_returns_a_service_to_its_known_good_image_and_config() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let p = Project::new("rollback", &stack(port, false));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["image", "tag", "berth-test/busybox:latest", "berth-test/app:live"]);
        p.ok(&["up", "-d", "--wait"]);
        p.wait_for(10, "the good version answering", || get(port).as_deref() == Ok("good"));
        p.wait_for(10, "the first deployment known-good", || outcomes(&history(&p)) == ["known-good"]);

        // A bad version: another image under the same tag, stop-first.
        std::fs::write(p.dir.path().join("Dockerfile"), "FROM berth-test/busybox:latest\nCOPY marker /marker\n")
            .unwrap();
        std::fs::write(p.dir.path().join("marker"), "bad\n").unwrap();
        p.write_compose(&stack(port, true));
        let out = p.berth(&["up", "-d", "--build", "--wait", "--wait-timeout", "30"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "up of the bad version succeeded: {stderr}");
        assert!(stderr.contains("unhealthy") && stderr.contains("api"), "{stderr}");
        p.wait_for(10, "the bad deployment failed", || outcomes(&history(&p)) == ["known-good", "failed"]);
        let h = history(&p);
        let digests: Vec<&str> =
            h["deployments"].as_array().unwrap().iter().map(|d| d["image_digest"].as_str().unwrap()).collect();
        assert_ne!(digests[0], digests[1], "the bad version is another image");
        assert_eq!(h["current"], h["deployments"][1]["seq"]);
        assert_eq!(h["rollback"], h["deployments"][0]["seq"]);

        // The known-good image is no container's now, yet pruning keeps it.
        let pruned = p.ok(&["image", "prune", "-a"]);
        assert!(pruned.contains(&format!("Kept: {}", digests[0])) && pruned.contains("service `api`"), "{pruned}");
        let rm = p.berth(&["image", "rm", "-f", digests[0]]);
        let rm_err = String::from_utf8_lossy(&rm.stderr);
        assert!(!rm.status.success() && rm_err.contains("known-good image of service `api`"), "{rm_err}");

        p.ok(&["rollback", "api"]);
        p.wait_for(10, "the good version answering again", || get(port).as_deref() == Ok("good"));
        let c = p.container(&format!("{}-api-1", p.name));
        assert_eq!(c["Image"], "berth-test/app:live", "{c}");
        p.wait_for(10, "the rolled-back deployment known-good", || {
            outcomes(&history(&p)) == ["known-good", "failed", "known-good"]
        });
        let h = history(&p);
        let d = h["deployments"].as_array().unwrap();
        assert_eq!(d[2]["image_digest"], d[0]["image_digest"]);
        assert_eq!(d[2]["config_hash"], d[0]["config_hash"], "the stored config, hashed as before");
        assert_eq!(h["current"], d[2]["seq"]);
        let table = p.ok(&["history", "api"]);
        assert!(table.contains("failed") && table.contains("current"), "{table}");

        // Nothing known-good but what runs: nothing to return to.
        let again = p.berth(&["rollback", "api"]);
        let err = String::from_utf8_lossy(&again.stderr);
        assert!(!again.status.success() && err.contains("no known-good deployment other than"), "{err}");
        assert_eq!(get(port).as_deref(), Ok("good"));
    }));
    p.finish(result);
}

fn replicated(port: u16, version: &str) -> String {
    format!(
        r#"  api:
    image: berth-test/busybox:latest
    init: true
    command: [sh, -c, "mkdir -p /www && echo $$VERSION > /www/index.html && if [ $$VERSION != bad ] || mkdir /data/claimed; then touch /tmp/ok; fi; exec httpd -f -p 80 -h /www"]
    environment: {{VERSION: "{version}"}}
    volumes: [data:/data]
    ports: ["127.0.0.1:{port}-{}:80"]
    stop_grace_period: 1s
    healthcheck: {{test: [CMD, test, -f, /tmp/ok], interval: 300ms, retries: 1}}
    deploy:
      replicas: 2
      update_config: {{order: start-first, failure_action: rollback}}
      rollback_config: {{order: start-first, parallelism: 1}}
volumes:
  data: {{}}
"#,
        port + 1
    )
}

#[test]
fn a_failed_update_returns_the_replicas_it_replaced_to_the_previous_version() {
    let port = loop {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            break port;
        }
    };
    let p = Project::new("rollbackreplicas", &replicated(port, "good"));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d", "--wait"]);
        let before: Vec<String> = p.ps().iter().map(|c| c["ID"].as_str().unwrap().to_string()).collect();
        // The first bad replica claims the volume's marker and is healthy; the second is not.
        p.write_compose(&replicated(port, "bad"));
        let out = p.berth(&["up", "-d"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("rolled back to the version the others run"), "{stderr}");
        for port in [port, port + 1] {
            p.wait_for(10, "both ports answering with the previous version", || get(port).as_deref() == Ok("good"));
        }
        let after = p.ps();
        let mut names: Vec<&str> = after.iter().map(|c| c["Name"].as_str().unwrap()).collect();
        names.sort();
        assert_eq!(names, [format!("{}-api-1", p.name), format!("{}-api-2", p.name)]);
        let ids: Vec<&str> = after.iter().map(|c| c["ID"].as_str().unwrap()).collect();
        assert_eq!(
            ids.iter().filter(|id| before.iter().any(|b| b == *id)).count(),
            1,
            "one replica was never replaced"
        );
        let h = history(&p);
        let d = h["deployments"].as_array().unwrap();
        assert_eq!(d.len(), 3, "{h}");
        assert_eq!(d[2]["config_hash"], d[0]["config_hash"]);
        assert_ne!(d[1]["config_hash"], d[0]["config_hash"]);
    }));
    p.finish(result);
}
