//! Benchmark: load and normalize a generated 500-service project (anchors, merge keys,
//! interpolation, an `.env` file, service `env_file`s and two override files), the way
//! `berth config` does. Prints min / median / max over repeated runs.
//!
//! Run with `cargo bench -p berth-compose --bench load`.

use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_compose::env::Environment;
use berth_compose::{load, LoadOptions};

const SERVICES: usize = 500;

fn generate(dir: &Path) {
    let mut env = String::new();
    for i in 0..100 {
        writeln!(env, "VAR_{i}=value-{i}").unwrap();
    }
    writeln!(env, "TAG=1.2.3\nREGISTRY=127.0.0.1:5000").unwrap();
    std::fs::write(dir.join(".env"), env).unwrap();
    std::fs::write(dir.join("common.env"), "COMMON_A=1\nCOMMON_B=\"two words\"\nexport COMMON_C=${VAR_1}\n").unwrap();

    let mut base = String::from(
        "name: bench\nx-defaults: &defaults\n  restart: unless-stopped\n  env_file: [common.env]\n  logging:\n    \
         driver: json-file\n    options: {max-size: 10m}\n  healthcheck:\n    test: wget -q -O- http://127.0.0.1/\n    \
         interval: 10s\n\nservices:\n",
    );
    for i in 0..SERVICES {
        writeln!(base, "  svc{i}:").unwrap();
        writeln!(base, "    <<: *defaults").unwrap();
        writeln!(base, "    image: ${{REGISTRY}}/app/svc{i}:${{TAG:-latest}}").unwrap();
        writeln!(base, "    command: sh -c 'exec httpd -f -p {}'", 8000 + i).unwrap();
        writeln!(base, "    ports: [\"{}:80\", \"127.0.0.1:{}:81/udp\"]", 10000 + i, 20000 + i).unwrap();
        writeln!(base, "    volumes: [\"data{}:/data\", \"./src:/src:ro\"]", i % 10).unwrap();
        writeln!(base, "    environment:\n      - A=${{VAR_{}}}\n      - B=${{MISSING:-default}}\n      - C", i % 100)
            .unwrap();
        if i > 0 {
            writeln!(base, "    depends_on: [svc{}]", i - 1).unwrap();
        }
        writeln!(base, "    networks: [front, back]").unwrap();
    }
    base.push_str("networks:\n  front:\n  back:\n    internal: true\nvolumes:\n");
    for v in 0..10 {
        writeln!(base, "  data{v}:").unwrap();
    }
    std::fs::write(dir.join("compose.yaml"), base).unwrap();

    let mut o1 = String::from("services:\n");
    for i in (0..SERVICES).step_by(2) {
        writeln!(o1, "  svc{i}:\n    environment:\n      B: overridden\n    ports: [\"{}:90\"]", 30000 + i).unwrap();
    }
    std::fs::write(dir.join("compose.override.yaml"), o1).unwrap();
    let mut o2 = String::from("services:\n");
    for i in (0..SERVICES).step_by(3) {
        writeln!(o2, "  svc{i}:\n    labels:\n      com.example.tier: \"{}\"\n    command: !reset []", i % 3).unwrap();
    }
    std::fs::write(dir.join("compose.prod.yaml"), o2).unwrap();
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let opts = LoadOptions {
        files: vec!["compose.yaml".into(), "compose.override.yaml".into(), "compose.prod.yaml".into()],
        cwd: dir.path().to_path_buf(),
        shell: Environment::from_shell([("HOME".to_string(), "/root".to_string())]),
        ..LoadOptions::default()
    };
    let first = load(&opts).expect("the generated project loads");
    assert_eq!(first.project.services.len(), SERVICES);
    let runs = 30;
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let loaded = load(&opts).expect("loads");
            std::hint::black_box(&loaded);
            t.elapsed()
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let bytes: u64 = ["compose.yaml", "compose.override.yaml", "compose.prod.yaml"]
        .iter()
        .map(|f| std::fs::metadata(dir.path().join(f)).unwrap().len())
        .sum();
    println!(
        "load+normalize {SERVICES} services ({} KiB in 3 files, anchors, .env, env_file): min {:.2} ms, median {:.2} ms, max {:.2} ms over {runs} runs",
        bytes / 1024,
        ms(times[0]),
        ms(times[runs / 2]),
        ms(times[runs - 1])
    );
}
