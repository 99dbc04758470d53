//! `cargo bench --bench containers [-- RUNS]`: runs `bench/containers.sh` against the berth binary cargo just
//! built. Under `cargo test --all-targets` (no `--bench` argument) it only says how to run it.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("bench `containers`: run it with `cargo bench --bench containers` (needs root, runc, skopeo)");
        return;
    }
    let runs = args.iter().find(|a| a.parse::<u32>().is_ok()).cloned().unwrap_or_else(|| "5".into());
    let status = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/containers.sh"))
        .arg(runs)
        .env("BERTH", env!("CARGO_BIN_EXE_berth"))
        .env("BERTH_BENCH_FIXTURES", concat!(env!("CARGO_TARGET_TMPDIR"), "/berth-fixtures"))
        .status()
        .expect("run bench/containers.sh");
    std::process::exit(status.code().unwrap_or(1));
}
