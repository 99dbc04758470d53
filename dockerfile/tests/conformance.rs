//! Conformance against the shared Dockerfile data in `tests/data` (see its README.md): parser dumps, refused
//! files, word expansion, word splitting and `.dockerignore` matching. Every case is checked; mismatches are
//! collected and reported together, and the number of cases run is asserted.

use std::fs;
use std::path::{Path, PathBuf};

use berth_dockerfile::ignore::{read_patterns, PatternMatcher};
use berth_dockerfile::parser;
use berth_dockerfile::shell::Lexer;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn case_dirs(dir: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(data().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn report(suite: &str, run: usize, expected_cases: usize, failures: Vec<String>) {
    assert!(failures.is_empty(), "{suite}: {} of {run} cases failed:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(run, expected_cases, "{suite}: number of cases run");
}

#[test]
fn parser_testfiles() {
    let mut failures = Vec::new();
    let dirs = case_dirs("parser/testfiles");
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let expected = fs::read_to_string(dir.join("result")).unwrap();
        match parser::parse("Dockerfile", &text) {
            Ok(ast) => {
                let got = ast.dump();
                if got.trim_end() != expected.trim_end() {
                    failures.push(format!("{name}:\n--- expected\n{expected}--- got\n{got}"));
                }
            }
            Err(e) => failures.push(format!("{name}: refused: {e}")),
        }
    }
    report("parser/testfiles", dirs.len(), 33, failures);
}

#[test]
fn parser_testfiles_negative() {
    let mut failures = Vec::new();
    let dirs = case_dirs("parser/testfiles-negative");
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        match berth_dockerfile::Dockerfile::parse("Dockerfile", &text) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(e) => {
                let msg = e.to_string();
                if e.line == 0 || !msg.starts_with(&format!("Dockerfile:{}:", e.line)) {
                    failures.push(format!("{name}: error does not name a line: {msg}"));
                }
            }
        }
    }
    report("parser/testfiles-negative", dirs.len(), 4, failures);
}

#[test]
fn shell_env_var_test() {
    let env: Vec<(String, String)> = [("PWD", "/home"), ("SHELL", "bash"), ("KOREAN", "한국어"), ("NULL", "")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let text = fs::read_to_string(data().join("shell/envVarTest")).unwrap();
    let lex = Lexer::new('\\');
    let mut failures = Vec::new();
    let mut run = 0;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(parts.len(), 3, "envVarTest line {}", i + 1);
        let (platform, source, expected) = (parts[0].trim(), parts[1].trim(), parts[2].trim());
        if platform == "W" {
            continue;
        }
        run += 1;
        let got = lex.process_word(source, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(w), exp) => exp != "error" && w == exp,
            _ => false,
        };
        if !ok {
            failures.push(format!("line {}: {source:?}: expected {expected:?}, got {got:?}", i + 1));
        }
    }
    report("shell/envVarTest", run, 228, failures);
}

#[test]
fn shell_words_test() {
    let text = fs::read_to_string(data().join("shell/wordsTest")).unwrap();
    let lex = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let mut failures = Vec::new();
    let mut run = 0;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            let (k, v) = rest.trim_start_matches(' ').split_once('=').unwrap();
            env.push((k.to_string(), v.to_string()));
            continue;
        }
        let (input, expected) = line.split_once('|').unwrap_or_else(|| panic!("wordsTest line {}", i + 1));
        let input = input.trim();
        let expected: Vec<String> = expected.trim_start_matches(' ').split(',').map(String::from).collect();
        run += 1;
        let got = lex.process_words(input, &env).unwrap_or_else(|_| vec!["error".to_string()]);
        if got != expected {
            failures.push(format!("line {}: {input:?}: expected {expected:?}, got {got:?}", i + 1));
        }
    }
    report("shell/wordsTest", run, 24, failures);
}

fn tsv_rows(file: &str) -> Vec<(usize, String, String, bool)> {
    let text = fs::read_to_string(data().join("dockerignore").join(file)).unwrap();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        .map(|(i, l)| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "{file} line {}", i + 1);
            (i + 1, cols[0].to_string(), cols[1].to_string(), cols[2] == "true")
        })
        .collect()
}

fn check_ignore(file: &str, split: bool, expected_cases: usize) {
    let rows = tsv_rows(file);
    let mut failures = Vec::new();
    for (line, patterns, path, excluded) in &rows {
        let list: Vec<String> =
            if split { patterns.split(" ; ").map(String::from).collect() } else { vec![patterns.clone()] };
        let got = PatternMatcher::new(&list).map(|m| m.matches_or_parent_matches(path));
        if got.as_ref().ok() != Some(excluded) {
            failures.push(format!("{file} line {line}: {patterns:?} vs {path:?}: expected {excluded}, got {got:?}"));
        }
    }
    report(&format!("dockerignore/{file}"), rows.len(), expected_cases, failures);
}

#[test]
fn dockerignore_single() {
    check_ignore("single.tsv", false, 68);
}

#[test]
fn dockerignore_multi() {
    check_ignore("multi.tsv", true, 9);
}

#[test]
fn dockerignore_reader_then_matcher() {
    let patterns = read_patterns("# comment\n\n  /docs/  \n!docs/README.md\n*.go\n!fileutils.go\n");
    assert_eq!(patterns, vec!["docs", "!docs/README.md", "*.go", "!fileutils.go"]);
    let m = PatternMatcher::new(&patterns).unwrap();
    assert!(m.matches_or_parent_matches("docs/a/b"));
    assert!(!m.matches_or_parent_matches("docs/README.md"));
    assert!(!m.matches_or_parent_matches("fileutils.go"));
    assert!(m.matches_or_parent_matches("x.go"));
}
