//! Prometheus metrics of a project, served by its supervisor on the address the project's
//! top-level `x-berth: {metrics: "127.0.0.1:9323"}` names (`up` leaves it in the run directory,
//! so a supervisor started again serves it too). Every scrape reads the containers' rows, their
//! health and their cgroups afresh: per container CPU, memory and its limit, network and block
//! I/O, restarts, health and how long its last probe took, and whether it is up; per project the containers by state. Names start
//! with `berth_`; labels name the project, service and container.

use std::fmt::Write as _;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::container::{Roots, Stats};
use crate::state::{ContainerRecord, StateDb};

/// Where `up` leaves the metrics address of `project`.
pub fn address_file(roots: &Roots, project: &str) -> PathBuf {
    super::client::dir(roots).join(format!("{project}.metrics"))
}

/// The metrics address `x-berth: {metrics: ...}` asks for, checked.
pub fn address_of(project: &berth_compose::Project) -> anyhow::Result<Option<std::net::SocketAddr>> {
    let Some(v) = project.extensions.get("x-berth").and_then(|x| x.get("metrics")) else { return Ok(None) };
    let text = v.as_str().ok_or_else(|| anyhow::anyhow!("x-berth.metrics: an address such as \"127.0.0.1:9323\""))?;
    let addr = text.parse().map_err(|e| anyhow::anyhow!("x-berth.metrics: {text:?} is not an address: {e}"))?;
    Ok(Some(addr))
}

/// Records (or forgets) the metrics address the supervisor of the project serves.
pub fn record_address(roots: &Roots, project: &berth_compose::Project) -> anyhow::Result<()> {
    let file = address_file(roots, &project.name);
    match address_of(project)? {
        Some(addr) => {
            std::fs::create_dir_all(super::client::dir(roots))?;
            std::fs::write(&file, addr.to_string())?
        }
        None => match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}

/// A metric read from a container's usage: name, type, help, and how to read it.
type Family = (&'static str, &'static str, &'static str, fn(&Stats) -> Option<f64>);

/// One container's numbers.
pub struct Sample<'a> {
    /// Its row.
    pub rec: &'a ContainerRecord,
    /// Its health; none without a health check.
    pub health: Option<crate::state::Health>,
    /// How long its last health probe took; none before the first.
    pub probe: Option<std::time::Duration>,
    /// Its cgroup's usage, when it runs.
    pub stats: Option<Stats>,
}

/// The metrics text of `project`.
pub fn render(project: &str, samples: &[Sample<'_>]) -> String {
    let mut out = String::new();
    let labels = |r: &ContainerRecord| {
        format!("project=\"{}\",service=\"{}\",container=\"{}\"", esc(project), esc(&r.service), esc(&r.name))
    };
    let mut family = |name: &str, kind: &str, help: &str, rows: &mut dyn Iterator<Item = String>| {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for row in rows {
            // As above.
            let _ = writeln!(out, "{name}{row}");
        }
    };
    family(
        "berth_container_up",
        "gauge",
        "1 when the container runs.",
        &mut samples.iter().map(|s| format!("{{{}}} {}", labels(s.rec), u8::from(s.rec.status.is_alive()))),
    );
    family(
        "berth_container_restarts_total",
        "counter",
        "Restarts made by the container's restart policy.",
        &mut samples.iter().map(|s| format!("{{{}}} {}", labels(s.rec), s.rec.restart_count)),
    );
    family(
        "berth_container_health",
        "gauge",
        "1 for the container's health status (containers with a health check).",
        &mut samples.iter().filter_map(|s| {
            let h = s.health?;
            Some(format!("{{{},status=\"{}\"}} 1", labels(s.rec), h.as_str()))
        }),
    );
    family(
        "berth_container_health_probe_seconds",
        "gauge",
        "How long the container's last health probe took.",
        &mut samples.iter().filter_map(|s| Some(format!("{{{}}} {}", labels(s.rec), s.probe?.as_secs_f64()))),
    );
    let stat = |f: fn(&Stats) -> Option<f64>| {
        move |s: &Sample<'_>| Some(format!("{{{}}} {}", labels(s.rec), f(s.stats.as_ref()?)?))
    };
    let families: [Family; 7] = [
        ("berth_container_cpu_seconds_total", "counter", "CPU time used.", |s| Some(s.cpu_nanos as f64 / 1e9)),
        ("berth_container_memory_bytes", "gauge", "Memory in use.", |s| Some(s.memory as f64)),
        ("berth_container_memory_limit_bytes", "gauge", "Memory limit.", |s| s.memory_limit.map(|l| l as f64)),
        ("berth_container_network_receive_bytes_total", "counter", "Bytes received.", |s| Some(s.net_rx as f64)),
        ("berth_container_network_transmit_bytes_total", "counter", "Bytes sent.", |s| Some(s.net_tx as f64)),
        ("berth_container_block_read_bytes_total", "counter", "Bytes read from block devices.", |s| {
            Some(s.block_read as f64)
        }),
        ("berth_container_block_write_bytes_total", "counter", "Bytes written to block devices.", |s| {
            Some(s.block_write as f64)
        }),
    ];
    for (name, kind, help, f) in families {
        family(name, kind, help, &mut samples.iter().filter_map(stat(f)));
    }
    let mut by_state: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for s in samples {
        *by_state.entry(s.rec.status.as_str()).or_default() += 1;
    }
    family(
        "berth_project_containers",
        "gauge",
        "The project's containers by state.",
        &mut by_state.iter().map(|(state, n)| format!("{{project=\"{}\",state=\"{state}\"}} {n}", esc(project))),
    );
    out
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Reads the project's numbers now.
pub fn scrape(roots: &Roots, project: &str) -> anyhow::Result<String> {
    let db = StateDb::open(&roots.root)?;
    let rows = db.containers(project)?;
    let rows: Vec<ContainerRecord> =
        rows.into_iter().map(|r| crate::container::refresh(roots, &db, &r).unwrap_or(r)).collect();
    let mut samples = Vec::new();
    for rec in &rows {
        let supervision = db.supervision(&rec.id)?;
        let (health, probe) = (supervision.health, supervision.last_probe);
        let stats = rec.status.is_alive().then(|| crate::container::stats(rec).ok()).flatten();
        samples.push(Sample { rec, health, probe, stats });
    }
    Ok(render(project, &samples))
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, roots: Roots, project: String) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else { continue };
        let (roots, project) = (roots.clone(), project.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let n = conn.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = if path == "/metrics" || path == "/" {
                match tokio::task::spawn_blocking(move || scrape(&roots, &project)).await {
                    Ok(Ok(text)) => ("200 OK", text),
                    Ok(Err(e)) => ("500 Internal Server Error", format!("{e:#}\n")),
                    Err(e) => ("500 Internal Server Error", format!("{e}\n")),
                }
            } else {
                ("404 Not Found", "metrics are at /metrics\n".to_string())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: \
                 close\r\n\r\n",
                body.len()
            );
            // A scraper that went away does not want the answer.
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_name_project_service_and_container() {
        let mut rec = crate::supervise::testing::record("shop-web-1", crate::state::Status::Running);
        rec.restart_count = 2;
        let stats = Stats { cpu_nanos: 1_500_000_000, memory: 4096, memory_limit: Some(8192), ..Stats::default() };
        let text = render(
            "shop",
            &[Sample {
                rec: &rec,
                health: Some(crate::state::Health::Healthy),
                probe: Some(std::time::Duration::from_millis(250)),
                stats: Some(stats),
            }],
        );
        let labels = format!("project=\"shop\",service=\"web\",container=\"{}\"", rec.name);
        assert!(text.contains(&format!("berth_container_up{{{labels}}} 1")), "{text}");
        assert!(text.contains(&format!("berth_container_restarts_total{{{labels}}} 2")), "{text}");
        assert!(text.contains(&format!("berth_container_health{{{labels},status=\"healthy\"}} 1")), "{text}");
        assert!(text.contains(&format!("berth_container_cpu_seconds_total{{{labels}}} 1.5")), "{text}");
        assert!(text.contains(&format!("berth_container_health_probe_seconds{{{labels}}} 0.25")), "{text}");
        assert!(text.contains(&format!("berth_container_memory_limit_bytes{{{labels}}} 8192")), "{text}");
        assert!(text.contains("berth_project_containers{project=\"shop\",state=\"running\"} 1"), "{text}");
        assert!(text.contains("# TYPE berth_container_restarts_total counter"), "{text}");
    }
}
