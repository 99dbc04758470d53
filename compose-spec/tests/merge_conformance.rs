//! Runs compose-go's merge expectations (fixtures/compose-go/merge) against
//! `berth_compose::merge`: the `override/merge_*_test.go` cases (base + override → expected,
//! compared after canonicalizing all three) and the loader scenarios that are pure merge
//! behaviour (multi-file override, `!reset`, `!override`, `!override` in `extends` chains).

use std::path::{Path, PathBuf};

use berth_compose::canonical::canonicalize;
use berth_compose::merge::{merge, strip_tags};
use berth_compose::yaml::{self, Node};
use serde_json::{json, Value};

/// Cases that cannot or should not pass, with the reason.
const SKIPPED: &[(&str, &str)] = &[(
    "Test_mergeYamlModelsRuntimeFlagsMerge",
    "commented out upstream (merge_models_test.go); compose-go appends `runtime_flags`, as we do",
)];

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/compose-go/merge")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Parses and canonicalizes one file.
fn load(path: &Path) -> Result<Node, String> {
    let name = path.display().to_string();
    let mut docs = yaml::parse(&read(path), &name).map_err(|e| e.to_string())?;
    if docs.is_empty() {
        return Err(format!("{name}: no YAML document"));
    }
    let mut node = docs.remove(0);
    canonicalize(&mut node).map_err(|e| e.to_string())?;
    Ok(node)
}

/// Merges `files` in order, as a multi-file project, and applies the tags.
fn merge_files(files: &[PathBuf]) -> Result<Value, String> {
    let mut nodes = files.iter().map(|f| load(f));
    let mut acc = nodes.next().expect("at least one file")?;
    for node in nodes {
        acc = merge(acc, node?, "").map_err(|e| e.to_string())?;
    }
    strip_tags(&mut acc);
    Ok(acc.to_json())
}

fn run_case(dir: &Path) -> Result<(), String> {
    let got = merge_files(&[dir.join("base.yaml"), dir.join("override.yaml")])?;
    let mut expected = load(&dir.join("expected.yaml"))?;
    strip_tags(&mut expected);
    let expected = expected.to_json();
    if got == expected {
        return Ok(());
    }
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    Err(format!("got:\n{}\nexpected:\n{}", pretty(&got), pretty(&expected)))
}

fn case_dirs() -> Vec<PathBuf> {
    let root = data_dir().join("cases");
    let entries = std::fs::read_dir(&root).unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()));
    let mut dirs: Vec<PathBuf> = entries.map(|e| e.expect("directory entry").path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs
}

#[test]
fn compose_go_merge_cases() {
    let dirs = case_dirs();
    let names: Vec<String> = dirs.iter().map(|d| d.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for (listed, _) in SKIPPED {
        assert!(names.iter().any(|n| n == listed), "unknown case {listed} in a skip list");
    }
    let mut failures = Vec::new();
    let mut passed = 0;
    for (dir, name) in dirs.iter().zip(&names) {
        if SKIPPED.iter().any(|(s, _)| s == name) {
            continue;
        }
        match run_case(dir) {
            Ok(()) => passed += 1,
            Err(why) => failures.push(format!("== {name}\n{why}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} merge cases failed:\n{}",
        failures.len(),
        failures.len() + passed,
        failures.join("\n")
    );
    assert_eq!(passed + SKIPPED.len(), 68, "expected 68 cases");
}

fn scenario(name: &str) -> PathBuf {
    data_dir().join("loader-scenarios").join(name)
}

fn scenario_files(name: &str, files: &[&str]) -> Value {
    let dir = scenario(name);
    let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
    merge_files(&paths).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn override_build_context() {
    let got = scenario_files("override-build-context", &["compose.yaml", "override.yaml"]);
    assert_eq!(got["services"]["test"]["build"], json!({"context": "src"}));
}

#[test]
fn override_depends_on() {
    let got = scenario_files("override-depends-on", &["compose.yaml", "override.yaml"]);
    let foo = json!({"condition": "service_healthy", "required": false});
    assert_eq!(got["services"]["test"]["depends_on"], json!({ "foo": foo }));
}

#[test]
fn override_networks() {
    let got = scenario_files("override-networks", &["compose.yaml", "override.yaml"]);
    let net = json!({"test_network": {"aliases": ["alias1", "alias2"]}});
    assert_eq!(got["services"]["test"]["networks"], net);
}

#[test]
fn override_partial_depends_on() {
    let got = scenario_files("override-partial-depends-on", &["compose.yaml", "override.yaml"]);
    let foo = json!({"condition": "service_healthy", "required": false});
    assert_eq!(got["services"]["test"]["depends_on"], json!({ "foo": foo }));
}

#[test]
fn override_replace_network() {
    let got = scenario_files("override-replace-network", &["compose.yaml", "override.yaml"]);
    // `!override {}` replaces the whole network: `external` (and `name`) are gone.
    assert_eq!(got["networks"]["test"], json!({}));
}

#[test]
fn override_volume_dedup() {
    let got = scenario_files("override-volume-dedup", &["compose.yaml", "override.yaml"]);
    assert_eq!(got["services"]["test"]["volumes"].as_array().map(Vec::len), Some(1));
}

#[test]
fn reset_build_and_env() {
    let got = scenario_files("reset-build-and-env", &["base.yml", "override.yml"]);
    assert_eq!(got["services"]["foo"], json!({"image": "foo", "environment": {}}));
}

#[test]
fn reset_remove_network() {
    let got = scenario_files("reset-remove-network", &["compose.yaml", "override.yaml"]);
    assert_eq!(got["networks"], json!({}));
}

fn service(file: &Node, name: &str) -> Node {
    let found = file.get("services").and_then(|s| s.get(name));
    found.unwrap_or_else(|| panic!("no service {name}")).clone()
}

/// Resolves `extends` by hand: merges each extended service onto the extending one.
fn extend(chain: &[(&Node, &str)], name: &str) -> Value {
    let mut acc = service(chain[0].0, chain[0].1);
    for (file, svc) in &chain[1..] {
        acc = merge(acc, service(file, svc), &format!("services.{name}")).expect("merge");
    }
    strip_tags(&mut acc);
    acc.to_json()
}

#[test]
fn override_tag_in_extends_chain() {
    let dir = scenario("override-tag-in-extends-chain");
    let base = load(&dir.join("base.yaml")).unwrap();
    let middle = load(&dir.join("override.yaml")).unwrap();
    let top = load(&dir.join("compose.yaml")).unwrap();
    let chain = [(&base, "base"), (&middle, "override"), (&top, "test")];
    let got = extend(&chain, "test");
    let targets: Vec<&str> = got["volumes"].as_array().unwrap().iter().map(|v| v["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["/bar", "/zot"]);
    assert_eq!(got["volumes"][0]["source"], json!("/bar"));
    assert_eq!(got["networks"], json!({"zot": null}));
}

#[test]
fn override_tag_self_extends() {
    let file = load(&scenario("override-tag-self-extends").join("compose.yaml")).unwrap();
    let chain = [(&file, "main_one"), (&file, "main_two"), (&file, "main")];
    let got = extend(&chain, "main");
    let started = json!({"condition": "service_started", "required": true});
    let expected = json!({"depend_two": started.clone(), "depend_base": started});
    assert_eq!(got["depends_on"], expected);
    assert_eq!(got["ports"].as_array().map(Vec::len), Some(1));
}
