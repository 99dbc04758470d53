//! System test (root): zero-downtime updates. A 2-replica service with `update_config.order:
//! start-first` is updated (an image change, then an environment change) while the host hammers
//! its published ports on loopback and another container hammers its DNS name: no request
//! fails, and `ps` ends with new containers under the old names. A version whose health check
//! fails is rolled back (`failure_action: rollback`): traffic never drops, `up` fails naming
//! the service, and the old containers keep serving.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use harness::Project;

/// Two free neighbouring ports on loopback.
fn free_pair() -> u16 {
    loop {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

fn stack(port: u16, image: &str, version: &str) -> String {
    format!(
        r#"  api:
    image: {image}
    command: [sh, -c, "mkdir -p /www && echo $$VERSION > /www/index.html && exec httpd -f -p 80 -h /www"]
    environment: {{VERSION: "{version}"}}
    ports: ["127.0.0.1:{port}-{}:80"]
    stop_grace_period: 3s
    healthcheck:
      test: ["CMD-SHELL", "test \"$$VERSION\" != bad && wget -q -O- http://127.0.0.1/ >/dev/null"]
      interval: 500ms
      retries: 1
    deploy:
      replicas: 2
      update_config: {{order: start-first, failure_action: rollback}}
  client:
    image: berth-test/busybox:latest
    depends_on: {{api: {{condition: service_healthy}}}}
    command: [sh, -c, "ok=0; bad=0; while true; do if wget -q -O /dev/null http://api/ 2>/dev/null; then ok=$$((ok+1)); else bad=$$((bad+1)); fi; echo $$ok $$bad > /tmp/count; sleep 0.02; done"]
"#,
        port + 1
    )
}

/// One HTTP request to `127.0.0.1:port`; the body's first line.
fn get(port: u16) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").map_err(|e| e.to_string())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).map_err(|e| e.to_string())?;
    let body = reply.split("\r\n\r\n").nth(1).ok_or_else(|| format!("no body in {reply:?}"))?;
    if !reply.starts_with("HTTP/1.1 200") && !reply.starts_with("HTTP/1.0 200") {
        return Err(format!("answered {reply:?}"));
    }
    Ok(body.trim().to_string())
}

/// Requests to both published ports from the host until stopped: (answers, failures).
struct Hammer {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hammer {
    fn start(port: u16) -> Hammer {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let threads = [port, port + 1]
            .into_iter()
            .map(|p| {
                let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match get(p) {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
                                failures.lock().unwrap().push(format!("port {p} at {:.3}: {e}", at.as_secs_f64()));
                                0
                            }
                        };
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            })
            .collect();
        Hammer { stop, ok, failures, threads }
    }

    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        (self.ok.load(Ordering::Relaxed), self.failures.lock().unwrap().clone())
    }
}

/// The client container's count of (answered, failed) requests by name.
fn client_count(p: &Project) -> (u64, u64) {
    // The file is written anew after every request: read until a whole line is there.
    for _ in 0..100 {
        let out = p.berth(&["exec", "-T", "client", "cat", "/tmp/count"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let nums: Vec<u64> = text.split_whitespace().filter_map(|n| n.parse().ok()).collect();
        if let [ok, bad] = nums[..] {
            return (ok, bad);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the client container keeps no count");
}

fn api_containers(p: &Project) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = p
        .ps()
        .into_iter()
        .filter(|c| c["Service"] == "api")
        .map(|c| (c["Name"].as_str().unwrap().to_string(), c["ID"].as_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

/// Runs one update of the stack to `yaml` under load; returns `up`'s output.
fn update_under_load(p: &Project, port: u16, yaml: &str) -> std::process::Output {
    let (before, _) = client_count(p);
    let hammer = Hammer::start(port);
    std::thread::sleep(Duration::from_millis(300));
    p.write_compose(yaml);
    let out = p.berth(&["up", "-d"]);
    std::thread::sleep(Duration::from_millis(300));
    let (answered, failures) = hammer.finish();
    assert!(failures.is_empty(), "requests from the host failed during the update: {failures:?}");
    assert!(answered > 20, "the host's requests were answered {answered} times");
    let (after, bad) = client_count(p);
    assert_eq!(bad, 0, "requests by name from the client container failed");
    assert!(after > before + 10, "the client's requests went on ({before} → {after})");
    out
}

#[test]
fn start_first_updates_drop_no_request_and_failed_ones_roll_back() {
    let port = free_pair();
    let p = Project::new("update", &stack(port, "berth-test/busybox:latest", "1"));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d", "--wait"]);
        assert_eq!(get(port).unwrap(), "1");
        p.wait_for(10, "the client's first requests", || client_count(&p).0 > 5);
        let first = api_containers(&p);
        let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [format!("{}-api-1", p.name), format!("{}-api-2", p.name)]);

        // An image change.
        p.ok(&["image", "tag", "berth-test/busybox:latest", "berth-test/busybox:v2"]);
        let out = update_under_load(&p, port, &stack(port, "berth-test/busybox:v2", "1"));
        assert!(out.status.success(), "up: {}", String::from_utf8_lossy(&out.stderr));
        let second = api_containers(&p);
        assert_eq!(second.iter().map(|(n, _)| n).collect::<Vec<_>>(), names, "the old names");
        for ((_, old), (_, new)) in first.iter().zip(&second) {
            assert_ne!(old, new, "each replica was replaced");
        }

        // An environment change.
        let out = update_under_load(&p, port, &stack(port, "berth-test/busybox:v2", "2"));
        assert!(out.status.success(), "up: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(get(port).unwrap(), "2");
        assert_eq!(get(port + 1).unwrap(), "2");
        let third = api_containers(&p);
        assert_eq!(third.iter().map(|(n, _)| n).collect::<Vec<_>>(), names);

        // A version that never becomes healthy: rolled back, the old ones keep serving.
        let out = update_under_load(&p, port, &stack(port, "berth-test/busybox:v2", "bad"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "up of a bad version: {stderr}");
        assert!(stderr.contains("service \"api\"") && stderr.contains("rolled back"), "{stderr}");
        assert_eq!(api_containers(&p), third, "the running version stays, and no successor is left");
        assert_eq!(get(port).unwrap(), "2");
    }));
    p.finish(result);
}

/// `web` publishing `ports` on networks `networks`; `db` on `back` only.
fn in_place_stack(ports: &str, networks: &str) -> String {
    format!(
        r#"  web:
    image: berth-test/busybox:latest
    command: [sh, -c, "mkdir -p /www && echo web > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: [{ports}]
    networks: [{networks}]
  db:
    image: berth-test/busybox:latest
    command: [sh, -c, "mkdir -p /www && echo db > /www/index.html && exec httpd -f -p 80 -h /www"]
    networks: [zback]
networks:
  default: {{}}
  zback: {{}}
"#
    )
}

/// What `web` gets asking `db` by name.
fn web_asks_db(p: &Project) -> Result<String, String> {
    let out = p.berth(&["exec", "web", "wget", "-q", "-O-", "http://db/"]);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn networks_and_ports_change_in_place_without_a_new_container() {
    let port = free_pair();
    let (a, b) = (format!("\"127.0.0.1:{port}:80\""), format!("\"127.0.0.1:{}:80\"", port + 1));
    harness::scenario("inplace", &in_place_stack(&a, "default"), |p| {
        p.ok(&["up", "-d", "--wait"]);
        let web = || p.ps().into_iter().find(|c| c["Service"] == "web").map(|c| c["ID"].as_str().unwrap().to_string());
        let id = web().expect("web runs");
        // Running is not yet listening: httpd starts after the shell's first commands.
        p.wait_for(10, "web to answer on its port", || get(port).as_deref() == Ok("web"));
        assert!(web_asks_db(p).is_err(), "web reached db before it was on db's network");

        // Joins `zback` and moves its port: same container.
        p.write_compose(&in_place_stack(&b, "default, zback"));
        let out = p.berth(&["up", "-d", "--wait"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("Connected") && stderr.contains("Published"), "{stderr}");
        assert_eq!(web().as_deref(), Some(id.as_str()), "web was made anew: {stderr}");
        assert_eq!(get(port + 1).as_deref(), Ok("web"));
        assert!(get(port).is_err(), "the old port still answers");
        assert_eq!(web_asks_db(p).as_deref(), Ok("db"));
        let port_out = p.ok(&["port", "web", "80"]);
        assert_eq!(port_out.trim(), format!("127.0.0.1:{}", port + 1));
        // The change is recorded: nothing more to do.
        let again = p.berth(&["up", "-d", "--dry-run"]);
        let text = String::from_utf8_lossy(&again.stdout).into_owned() + &String::from_utf8_lossy(&again.stderr);
        assert!(!text.contains("web"), "a second up still changes web: {text}");

        // Leaves it again.
        p.write_compose(&in_place_stack(&a, "default"));
        p.ok(&["up", "-d", "--wait"]);
        assert_eq!(web().as_deref(), Some(id.as_str()));
        assert!(web_asks_db(p).is_err(), "web still reaches db after leaving its network");
        assert_eq!(get(port).as_deref(), Ok("web"));
        assert!(get(port + 1).is_err(), "the port given up still answers");
        assert!(p.leases_of("web").len() == 1, "leases of web: {:?}", p.leases_of("web"));
    });
}

/// Two replicas, start-first, whose new version's first container fails its health check for
/// good (the one that makes the claim directory in the shared volume marks itself bad).
fn tolerant_stack(version: &str, ratio: &str) -> String {
    format!(
        r#"  api:
    image: berth-test/busybox:latest
    command: [sh, -c, "if [ $$VERSION != 1 ] && mkdir /marks/claim 2>/dev/null; then touch /tmp/bad; fi; exec sleep 600"]
    environment: {{VERSION: "{version}"}}
    volumes: ["marks:/marks"]
    healthcheck:
      test: ["CMD", "sh", "-c", "test ! -e /tmp/bad"]
      interval: 300ms
      retries: 1
    deploy:
      replicas: 2
      update_config: {{order: start-first, failure_action: rollback{ratio}}}
volumes:
  marks: {{}}
"#
    )
}

#[test]
fn max_failure_ratio_tolerates_that_share_of_failed_successors() {
    harness::scenario("ratio", &tolerant_stack("1", ", max_failure_ratio: 0.5"), |p| {
        p.ok(&["up", "-d", "--wait"]);
        let before = api_containers(p);
        p.write_compose(&tolerant_stack("2", ", max_failure_ratio: 0.5"));
        let out = p.berth(&["up", "-d"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "one failure of two replicas is tolerated: {stderr}");
        assert!(stderr.contains("max_failure_ratio tolerates"), "{stderr}");
        let after = api_containers(p);
        let names: Vec<&String> = after.iter().map(|(n, _)| n).collect();
        assert_eq!(names, before.iter().map(|(n, _)| n).collect::<Vec<_>>(), "the old names stay");
        let kept = after.iter().filter(|c| before.contains(c)).count();
        assert_eq!(kept, 1, "one replica keeps its old container, one is new: {before:?} → {after:?}");
    });
}
