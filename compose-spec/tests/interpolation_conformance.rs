//! Runs compose-go's interpolation cases (fixtures/compose-go/interpolation/cases.json) against
//! `berth_compose::interpolate`.

use std::collections::HashMap;
use std::path::PathBuf;

use berth_compose::interpolate::{interpolate, InterpolateError};
use serde_json::Value;

/// Cases that cannot or should not pass, by template, with the reason. Empty: all pass.
const SKIPPED: &[&str] = &[];

fn cases_file() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/compose-go/interpolation/cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("cases.json is valid JSON")
}

fn env_of(case: &Value, envs: &Value) -> HashMap<String, String> {
    let table = match &case["env"] {
        Value::String(name) => &envs[name.as_str()],
        inline @ Value::Object(_) => inline,
        other => panic!("unexpected env {other}"),
    };
    table
        .as_object()
        .expect("env table is an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("env value").to_owned()))
        .collect()
}

/// The compose path a case's note says the value sits at, and the full message the note quotes
/// for that path, if any.
fn path_from_note(note: &str) -> Option<(String, Option<String>)> {
    if let Some(rest) = note.split("'error while interpolating ").nth(1) {
        let full = format!("error while interpolating {}", rest.strip_suffix('\'').expect("quoted message"));
        let path = rest.split(':').next().expect("path").to_owned();
        return Some((path, Some(full)));
    }
    let rest = note.split("value at path services.").nth(1)?;
    Some((rest.trim().to_owned(), None))
}

/// Whether `message` satisfies `error_contains`.
///
/// compose-go's own message for bad templates is `Invalid template: "..."`; ours is lower-case
/// (`invalid interpolation format for "...": ... (invalid template; ...)`), so that one expected
/// string is compared ignoring case. Everything else must match exactly.
fn satisfies(message: &str, expected: &str) -> bool {
    if expected == "Invalid template" {
        return message.to_lowercase().contains(&expected.to_lowercase());
    }
    message.contains(expected)
}

#[test]
fn all_interpolation_cases_pass() {
    let file = cases_file();
    let envs = &file["envs"];
    let cases = file["cases"].as_array().expect("cases array");
    assert_eq!(cases.len(), 93, "case count changed");

    let mut failures = Vec::new();
    let mut ran = 0;
    let mut located_checks = 0;
    for (index, case) in cases.iter().enumerate() {
        let template = case["template"].as_str().expect("template");
        if SKIPPED.contains(&template) {
            continue;
        }
        ran += 1;
        let env = env_of(case, envs);
        let lookup = |name: &str| env.get(name).cloned();
        let result = interpolate(template, &lookup);
        let label = format!("case {index} {template:?} (env {})", case["env"]);

        if let Some(expected) = case.get("expected").and_then(Value::as_str) {
            match result {
                Ok((out, _)) if out == expected => {}
                Ok((out, _)) => failures.push(format!("{label}: got {out:?}, want {expected:?}")),
                Err(e) => failures.push(format!("{label}: unexpected error: {e}")),
            }
            continue;
        }

        let expected = case["error_contains"].as_str().expect("expected or error");
        let err = match result {
            Ok((out, _)) => {
                failures.push(format!("{label}: got {out:?}, want error {expected:?}"));
                continue;
            }
            Err(e) => e,
        };
        let note = case.get("note").and_then(Value::as_str).unwrap_or_default();
        let located = path_from_note(note);
        let message = match &located {
            Some((path, _)) if expected.contains(path.as_str()) => {
                located_checks += 1;
                err.clone().at_path(path.clone()).to_string()
            }
            _ => err.to_string(),
        };
        if !satisfies(&message, expected) {
            failures.push(format!("{label}: error {message:?} lacks {expected:?}"));
        }
        if let Some((path, Some(full))) = located {
            located_checks += 1;
            let got = err.at_path(path).to_string();
            if got != full {
                failures.push(format!("{label}: located error {got:?}, want {full:?}"));
            }
        }
    }
    assert_eq!(ran + SKIPPED.len(), cases.len());
    // 6 notes quote the full `error while interpolating <path>: ...` message, 1 case expects the
    // located `invalid interpolation format for <path>.` message.
    assert_eq!(located_checks, 7);
    assert!(failures.is_empty(), "{} of {ran} cases failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn missing_errors_are_structured() {
    let err = interpolate("${FOO:?foo} ${BAR:?bar}", &|_| None).unwrap_err();
    assert_eq!(err, InterpolateError::Missing { name: "FOO".into(), message: "foo".into() });
}

#[test]
fn references_in_order_with_defaults() {
    let env: HashMap<&str, &str> = [("FOO", "first"), ("BAR", "")].into_iter().collect();
    let lookup = |name: &str| env.get(name).map(|v| v.to_string());
    let (out, refs) = interpolate("${BAR:-${FOO}}-${BAR-x}-$NOPE-${NOPE2:+y}", &lookup).unwrap();
    assert_eq!(out, "first---");
    let summary: Vec<_> =
        refs.iter().map(|r| (r.name.as_str(), r.resolved, r.used_default, r.defaulted_to_blank())).collect();
    assert_eq!(
        summary,
        [
            ("BAR", true, true, false),
            ("FOO", true, false, false),
            ("BAR", true, false, false),
            ("NOPE", false, false, true),
            ("NOPE2", false, false, false),
        ]
    );
}
