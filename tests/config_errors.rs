//! Broken compose files: each one must fail `berth config` with exit code 1, print nothing on
//! stdout, and explain itself on stderr with file, line, column and key. Snapshots keep the
//! messages from drifting.

use std::path::Path;
use std::process::Command;

fn berth_config(dir: &Path, file: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .current_dir(dir)
        .env_clear()
        .env("HOME", "/nonexistent-home")
        .env("NO_COLOR", "1")
        .args(["-f", file, "config"])
        .output()
        .expect("run berth");
    let code = out.status.code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn every_broken_file_is_explained() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/errors");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "want at least 30 distinct mistakes, have {}", names.len());
    let mut failures = Vec::new();
    for name in &names {
        let (code, stdout, stderr) = berth_config(&dir, name);
        if code != 1 || !stdout.is_empty() || !stderr.starts_with("error: ") {
            failures.push(format!("{name}: exit {code}, stdout {stdout:?}, stderr {stderr:?}"));
            continue;
        }
        let stderr = stderr.replace(&dir.display().to_string(), "[DIR]");
        let snapshot = name.trim_end_matches(".yaml").to_string();
        insta::with_settings!({ snapshot_suffix => snapshot, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("error", stderr);
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
