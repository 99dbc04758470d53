//! `cargo bench --bench stack [-- RUNS]`: runs `bench/stack.sh` (whole-stack `up -d` and `down` of
//! 10-service chains and fan-outs, with and without health checks) against the berth binary cargo
//! just built. Under `cargo test --all-targets` (no `--bench` argument) it only says how to run it.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("bench `stack`: run it with `cargo bench --bench stack` (needs root, runc, skopeo, tini-static)");
        return;
    }
    let runs = args.iter().find(|a| a.parse::<u32>().is_ok()).cloned().unwrap_or_else(|| "5".into());
    let status = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/stack.sh"))
        .arg(runs)
        .env("BERTH", env!("CARGO_BIN_EXE_berth"))
        .env("BERTH_BENCH_FIXTURES", concat!(env!("CARGO_TARGET_TMPDIR"), "/berth-fixtures"))
        .status()
        .expect("run bench/stack.sh");
    std::process::exit(status.code().unwrap_or(1));
}
