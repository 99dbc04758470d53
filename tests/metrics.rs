//! System test (root): a project with `x-berth: {metrics: ADDRESS}` has its supervisor serve
//! Prometheus metrics there — per container up, restarts, health and probe latency, CPU, memory, network and
//! block I/O, per project the containers by state — with project, service and container labels.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::io::{Read, Write};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

#[test]
fn the_supervisor_serves_prometheus_metrics() {
    let port = free_port();
    let services = r#"  web:
    image: berth-test/busybox:latest
    command: [sleep, "600"]
    mem_limit: 64m
    healthcheck: {test: [CMD, sleep, "0.2"], interval: 1s}
  job:
    image: berth-test/busybox:latest
    command: ["true"]
"#;
    let p = harness::Project::new("metrics", services);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let compose = std::fs::read_to_string(p.dir.path().join("compose.yaml")).unwrap();
        std::fs::write(
            p.dir.path().join("compose.yaml"),
            format!("{compose}x-berth:\n  metrics: \"127.0.0.1:{port}\"\n"),
        )
        .unwrap();
        p.ok(&["up", "-d", "--wait"]);
        let web = format!("project=\"{0}\",service=\"web\",container=\"{0}-web-1\"", p.name);
        let mut text = String::new();
        p.wait_for(30, "metrics with web healthy", || {
            text = scrape(port).unwrap_or_default();
            text.contains(&format!("berth_container_health{{{web},status=\"healthy\"}} 1"))
        });
        assert!(text.contains(&format!("berth_container_up{{{web}}} 1")), "{text}");
        assert!(text.contains(&format!("berth_container_memory_limit_bytes{{{web}}} 67108864")), "{text}");
        assert!(text.contains(&format!("berth_container_cpu_seconds_total{{{web}}} ")), "{text}");
        assert!(text.contains(&format!("berth_container_restarts_total{{{web}}} 0")), "{text}");
        // The probe sleeps 0.2 s: its latency is at least that, and under its timeout.
        let probe_line = format!("berth_container_health_probe_seconds{{{web}}} ");
        let latency: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&probe_line))
            .unwrap_or_else(|| panic!("no probe latency: {text}"))
            .parse()
            .unwrap();
        assert!((0.2..30.0).contains(&latency), "probe latency {latency}");
        let stats = p.ok(&["stats", "--no-stream", "--format", "json", "web"]);
        let row: serde_json::Value = serde_json::from_str(stats.lines().next().unwrap_or_default()).unwrap();
        let seconds = row["HealthProbeSeconds"].as_f64().unwrap_or_else(|| panic!("no HealthProbeSeconds: {row}"));
        assert!((0.2..30.0).contains(&seconds), "stats probe latency {seconds}");
        assert!(
            !text.contains(&format!("berth_container_health_probe_seconds{{project=\"{}\",service=\"job\"", p.name))
        );
        let job = format!("project=\"{0}\",service=\"job\",container=\"{0}-job-1\"", p.name);
        assert!(text.contains(&format!("berth_container_up{{{job}}} 0")), "{text}");
        assert!(text.contains(&format!("berth_project_containers{{project=\"{}\",state=\"running\"}} 1", p.name)));
        assert!(text.contains(&format!("berth_project_containers{{project=\"{}\",state=\"exited\"}} 1", p.name)));
        // A bad address is refused at `up`, naming the key.
        std::fs::write(p.dir.path().join("compose.yaml"), format!("{compose}x-berth:\n  metrics: nowhere\n")).unwrap();
        let out = p.berth(&["up", "-d"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("x-berth.metrics"));
        p.write_compose(services);
    }));
    p.finish(result);
}
