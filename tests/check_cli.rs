//! `berth check` through the real binary: exit codes, the three formats, both ways of silencing
//! a finding, and the services named. No image store: image checks are reported skipped.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/check"))
}

fn berth(args: &[&str]) -> Output {
    let state = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .current_dir(fixtures())
        .env_clear()
        .env("HOME", "/home/user")
        .env("NO_COLOR", "1")
        .env("BERTH_ROOT", state.path().join("root"))
        .env("BERTH_RUN", state.path().join("run"))
        .args(args)
        .output()
        .expect("run berth")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json(file: &str, format: &str) -> (i32, Value) {
    let out = berth(&["-f", file, "check", "--format", format]);
    let value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), value)
}

#[test]
fn an_error_level_finding_exits_1_and_warnings_alone_exit_0() {
    let out = berth(&["-f", "privileged.yaml", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let table = stdout(&out);
    let header = table.lines().next().unwrap();
    for column in ["SEVERITY", "RULE", "SERVICE", "FILE:LINE", "MESSAGE", "FIX"] {
        assert!(header.contains(column), "{table}");
    }
    let row: Vec<&str> = table.lines().find(|l| l.starts_with("error")).unwrap().split_whitespace().take(4).collect();
    assert_eq!(row, ["error", "privileged", "app", "privileged.yaml:6"], "{table}");
    assert!(table.ends_with("1 error(s), 0 warning(s), 1 info, 0 suppressed\n"), "{table}");

    let out = berth(&["-f", "no-restart.yaml", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // The store is empty: the image check is said to be skipped, nothing else but the rule.
    let table = stdout(&out);
    assert!(table.contains("image-not-inspected") && table.contains("no-restart"), "{table}");
    let out = berth(&["-f", "clean.yaml", "check"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).ends_with("0 error(s), 0 warning(s), 2 info, 0 suppressed\n"), "{}", stdout(&out));
}

#[test]
fn json_lists_every_field() {
    let (code, findings) = json("secret-in-env.yaml", "json");
    assert_eq!(code, 1);
    let secret = findings.as_array().unwrap().iter().find(|f| f["rule"] == "secret-in-env").unwrap();
    assert_eq!(secret["severity"], "error");
    assert_eq!(secret["service"], "api");
    assert_eq!(secret["file"], "secret-in-env.yaml");
    assert_eq!((secret["line"].as_u64(), secret["column"].as_u64()), (Some(7), Some(7)));
    assert!(secret["message"].as_str().unwrap().contains("DB_PASSWORD"));
    assert!(secret["fix"].as_str().unwrap().contains("secrets:"));
}

#[test]
fn sarif_names_the_rules_and_locates_the_results() {
    let (code, log) = json("host-pid.yaml", "sarif");
    assert_eq!(code, 1);
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "berth");
    let rules: Vec<&str> =
        run["tool"]["driver"]["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(rules.contains(&"host-pid") && rules.contains(&"secret-in-env"), "{rules:?}");
    assert!(run["tool"]["driver"]["rules"][0]["help"]["text"].is_string());
    let result = run["results"].as_array().unwrap().iter().find(|r| r["ruleId"] == "host-pid").unwrap();
    assert_eq!(result["level"], "error");
    let location = &result["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "host-pid.yaml");
    assert_eq!(location["region"]["startLine"], 6);
    let info = run["results"].as_array().unwrap().iter().find(|r| r["ruleId"] == "image-not-inspected").unwrap();
    assert_eq!(info["level"], "note");
}

#[test]
fn comments_and_x_berth_silence_findings_which_stay_listed() {
    let out = berth(&["-f", "suppressed.yaml", "check"]);
    // `privileged` is an error, silenced by the comment above it.
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let table = stdout(&out);
    assert!(!table.contains("privileged") && table.ends_with(", 4 suppressed\n"), "{table}");

    let (_, findings) = json("suppressed.yaml", "json");
    let silenced: Vec<(&str, &str, &str)> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f.get("suppressed").is_some())
        .map(|f| {
            let s = &f["suppressed"];
            (f["rule"].as_str().unwrap(), s["kind"].as_str().unwrap(), s["reason"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        silenced,
        [
            ("no-log-limit", "x-berth", "berth's default cap is enough here"),
            ("no-restart", "x-berth", "restarted by the host's supervisor"),
            ("image-tag", "comment", "pinned by the deploy script"),
            ("privileged", "comment", "it drives a USB device"),
        ]
    );

    let (code, log) = json("suppressed.yaml", "sarif");
    assert_eq!(code, 0);
    let results = log["runs"][0]["results"].as_array().unwrap();
    let privileged = results.iter().find(|r| r["ruleId"] == "privileged").unwrap();
    assert_eq!(privileged["suppressions"][0]["kind"], "inSource");
    assert_eq!(privileged["suppressions"][0]["justification"], "it drives a USB device");
    let restart = results.iter().find(|r| r["ruleId"] == "no-restart").unwrap();
    assert_eq!(restart["suppressions"][0]["kind"], "external");
    assert!(results.iter().find(|r| r["ruleId"] == "image-not-inspected").unwrap().get("suppressions").is_none());
}

#[test]
fn services_named_are_the_only_ones_checked() {
    let (_, findings) = json("root-user.yaml", "json");
    assert!(findings.as_array().unwrap().iter().any(|f| f["service"] == "explicit"));
    let out = berth(&["-f", "root-user.yaml", "check", "--format", "json", "by-image"]);
    let findings: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(findings.as_array().unwrap().iter().all(|f| f["service"] == "by-image"), "{findings}");
    let out = berth(&["-f", "root-user.yaml", "check", "nope"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such service"), "{out:?}");
}
