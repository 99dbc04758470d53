//! Runs compose-go's dotenv expectations (fixtures/compose-go/dotenv/expected.json and the
//! fixture files next to it) against `berth_compose::dotenv`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_compose::dotenv::{parse, parse_with_fallback, to_map};
use indexmap::IndexMap;
use serde_json::Value;

/// Cases that cannot or should not pass, by fixture file or input, with the reason.
/// Empty: all pass.
const SKIPPED: &[&str] = &[];

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/compose-go")
}

fn expected() -> Value {
    let path = data_dir().join("dotenv/expected.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("expected.json is valid JSON")
}

fn string_map(value: &Value) -> HashMap<String, String> {
    value
        .as_object()
        .map(|object| object.iter().map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_owned())).collect())
        .unwrap_or_default()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn no_lookup(_: &str) -> Option<String> {
    None
}

#[test]
fn fixture_files() {
    let data = expected();
    let fixtures = data["fixtures"].as_array().expect("fixtures");
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut notes_only = Vec::new();
    for fixture in fixtures {
        let file = fixture["file"].as_str().expect("file");
        if SKIPPED.contains(&file) {
            continue;
        }
        let has_expectation = ["expected_subset", "expected_exact", "expected_absent", "error_contains"]
            .iter()
            .any(|k| fixture.get(*k).is_some());
        if !has_expectation {
            // e.g. the types/fixtures entry: a pointer to a loader-level test, no values here.
            notes_only.push(file);
            continue;
        }
        checked += 1;
        let os_env = string_map(&fixture["os_env"]);
        let lookup = |k: &str| os_env.get(k).cloned();
        let text = read(&data_dir().join(file));
        let label = format!("{file} (os env {:?})", fixture["os_env"]);
        let result = parse(&text, &lookup);

        if let Some(want) = fixture.get("error_contains").and_then(Value::as_str) {
            match result {
                Err(e) if e.to_string().contains(want) => {}
                Err(e) => failures.push(format!("{label}: error {e} lacks {want:?}")),
                Ok(entries) => failures.push(format!("{label}: parsed {entries:?}, want error")),
            }
            continue;
        }
        let map = match result {
            Ok(entries) => to_map(&entries),
            Err(e) => {
                failures.push(format!("{label}: unexpected error {e}"));
                continue;
            }
        };
        if let Some(exact) = fixture.get("expected_exact") {
            let want: IndexMap<String, String> = string_map(exact).into_iter().collect();
            let mut got: Vec<_> = map.iter().collect();
            let mut wanted: Vec<_> = want.iter().collect();
            got.sort();
            wanted.sort();
            if got != wanted {
                failures.push(format!("{label}: got {got:?}, want exactly {wanted:?}"));
            }
        }
        for (k, v) in string_map(&fixture["expected_subset"]) {
            if map.get(&k) != Some(&v) {
                failures.push(format!("{label}: {k} = {:?}, want {v:?}", map.get(&k)));
            }
        }
        for absent in fixture["expected_absent"].as_array().into_iter().flatten() {
            let key = absent.as_str().expect("key");
            if map.contains_key(key) {
                failures.push(format!("{label}: {key} should be absent"));
            }
        }
    }
    assert_eq!(notes_only, ["types/fixtures/base.env + types/fixtures/override.env"]);
    assert_eq!(checked + notes_only.len() + SKIPPED.len(), fixtures.len());
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn plain_fixture_keeps_digit_keys() {
    // Not asserted upstream (the note calls it unverified): compose-go's Parse keeps `456`.
    let text = read(&data_dir().join("dotenv/fixtures/plain.env"));
    let map = to_map(&parse(&text, &no_lookup).unwrap());
    assert_eq!(map.get("456").map(String::as_str), Some("ABC"));
}

#[test]
fn line_cases() {
    let data = expected();
    let cases = data["line_cases"].as_array().expect("line_cases");
    assert_eq!(cases.len(), 61, "line case count changed");
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in cases {
        let input = case["input"].as_str().expect("input");
        if SKIPPED.contains(&input) {
            continue;
        }
        ran += 1;
        let key = case["key"].as_str().expect("key");
        let want = case["value"].as_str().expect("value");
        match parse(input, &no_lookup) {
            Ok(entries) => {
                let map = to_map(&entries);
                if map.get(key).map(String::as_str) != Some(want) {
                    failures.push(format!("{input:?}: {key:?} = {:?}, want {want:?}", map.get(key)));
                }
            }
            Err(e) => failures.push(format!("{input:?}: unexpected error {e}")),
        }
    }
    assert_eq!(ran + SKIPPED.len(), cases.len());
    assert!(failures.is_empty(), "{} of {ran} failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn error_cases() {
    let data = expected();
    let cases = data["error_cases"].as_array().expect("error_cases");
    let mut failures = Vec::new();
    for case in cases {
        let input = case["input"].as_str().expect("input");
        let want = case["error_contains"].as_str().expect("error_contains");
        match parse(input, &no_lookup) {
            Ok(entries) => failures.push(format!("{input:?}: parsed {entries:?}, want error")),
            Err(e) => {
                if want != "(any error)" && !e.to_string().contains(want) {
                    failures.push(format!("{input:?}: error {e} lacks {want:?}"));
                }
                if e.line != 1 {
                    failures.push(format!("{input:?}: error on line {}, want 1", e.line));
                }
            }
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn ignored_lines() {
    let data = expected();
    for line in data["ignored_lines"].as_array().expect("ignored_lines") {
        let line = line.as_str().expect("line");
        let entries =
            parse(line, &|_| Some("x".to_owned())).unwrap_or_else(|e| panic!("{line:?}: unexpected error {e}"));
        assert!(entries.is_empty(), "{line:?} gave {entries:?}");
        // Also in the middle of a file.
        let text = format!("A=1\n{line}\nB=2\n");
        let map = to_map(&parse(&text, &no_lookup).unwrap());
        assert_eq!(map.len(), 2, "{line:?} in a file gave {map:?}");
    }
}

/// Reads env files in turn the way Compose does for `--env-file` / `.env`: the environment wins
/// for `${}` resolution, then the file's own earlier values, then the files read before; later
/// files override earlier ones.
fn read_env_files(os_env: &HashMap<String, String>, files: &[&str]) -> IndexMap<String, String> {
    let mut acc: IndexMap<String, String> = IndexMap::new();
    for text in files {
        let entries = {
            let lookup = |k: &str| os_env.get(k).cloned();
            let fallback = |k: &str| acc.get(k).cloned();
            parse_with_fallback(text, &lookup, &fallback).expect("env file parses")
        };
        acc.extend(to_map(&entries));
    }
    acc
}

#[test]
fn multi_file_precedence() {
    let data = expected();
    let case = &data["multi_file_case"];
    let files = string_map(&case["files"]);
    let texts = [files["base.env"].as_str(), files["override.env"].as_str()];

    let got = read_env_files(&HashMap::new(), &texts);
    let want = string_map(&case["without_os_env"]);
    assert_eq!(got.len(), want.len());
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "without os env: {k}");
    }

    let with = &case["with_os_env"];
    let got = read_env_files(&string_map(&with["os_env"]), &texts);
    let want = string_map(&with["expected"]);
    assert_eq!(got.len(), want.len());
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "with os env: {k}");
    }
}

#[test]
fn previous_file_values_are_a_fallback_only() {
    // A value from an earlier file is used when neither the environment nor this file has one.
    let got = read_env_files(
        &HashMap::new(),
        &["HOST=base\nPORT=1\n", "URL=${HOST}:${PORT}\nPORT=2\nURL2=${HOST}:${PORT}\n"],
    );
    assert_eq!(got["URL"], "base:1");
    assert_eq!(got["URL2"], "base:2");
}

#[test]
fn invalid_fixture_reports_line_seven() {
    let text = read(&data_dir().join("dotenv/fixtures/invalid1.env"));
    let err = parse(&text, &no_lookup).unwrap_err();
    assert_eq!(err.line, 7);
    assert_eq!(err.message, "key cannot contain a space");
}

#[test]
fn quoted_fixture_lines() {
    let text = read(&data_dir().join("dotenv/fixtures/quoted.env"));
    let entries = parse(&text, &no_lookup).unwrap();
    let lines: Vec<_> = entries.iter().map(|e| (e.key.as_str(), e.line)).collect();
    assert_eq!(
        lines,
        [
            ("OPTION_A", 1),
            ("OPTION_B", 2),
            ("OPTION_C", 3),
            ("OPTION_D", 4),
            ("OPTION_E", 5),
            ("OPTION_F", 6),
            ("OPTION_G", 7),
            ("OPTION_H", 8),
            ("OPTION_I", 9),
            ("OPTION_J", 10),
            ("OPTION_K", 14),
            ("OPTION_Z", 15),
        ]
    );
}
