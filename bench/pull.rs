//! `cargo bench --bench pull [-- RUNS]`: runs `bench/pull.sh` against the berth binary cargo just
//! built. Under `cargo test --all-targets` (no `--bench` argument) it only says how to run it.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("bench `pull`: run it with `cargo bench --bench pull` (needs docker-registry, skopeo)");
        return;
    }
    let runs = args.iter().find(|a| a.parse::<u32>().is_ok()).cloned().unwrap_or_else(|| "3".into());
    let status = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/pull.sh"))
        .arg(runs)
        .env("BERTH", env!("CARGO_BIN_EXE_berth"))
        .env("BERTH_BENCH_FIXTURES", concat!(env!("CARGO_TARGET_TMPDIR"), "/berth-fixtures-bench"))
        .status()
        .expect("run bench/pull.sh");
    std::process::exit(status.code().unwrap_or(1));
}
