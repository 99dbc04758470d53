//! `berth check`'s rules over fixtures: each rule's fixture (`fixtures/check/RULE.yaml`) reports
//! that rule and no other, the clean fixture reports nothing, and the awesome-compose stacks
//! report what their JSON snapshots hold.

use std::path::{Path, PathBuf};

use berth::check::{check, ImageFacts, Images, NoImages, Report, RULES};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Images as the fixtures want them: `missing*` is not there, `rootimage*` runs as root,
/// `nohealth*` has no health check; every other one is known, non-root, with a health check.
struct FixtureImages;

impl Images for FixtureImages {
    fn facts(&self, name: &str) -> Option<ImageFacts> {
        if name.starts_with("missing") {
            return None;
        }
        let repo = name.split([':', '@']).next().unwrap();
        Some(ImageFacts {
            user: if name.starts_with("rootimage") { String::new() } else { "1000".into() },
            healthcheck: !name.starts_with("nohealth"),
            pinned: Some(format!("{repo}@sha256:{}", "ab".repeat(32))),
        })
    }
}

/// Loads `file` in `dir` as `berth check` does (run from `dir`, no shell variables).
fn run(dir: &Path, file: Option<&str>, images: &dyn Images) -> Report {
    let opts = berth_compose::LoadOptions {
        files: file.map(PathBuf::from).into_iter().collect(),
        cwd: dir.to_path_buf(),
        ..Default::default()
    };
    let loaded = berth_compose::load(&opts).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    check(&loaded, images, &[]).unwrap()
}

fn rules_of(report: &Report) -> Vec<&'static str> {
    let mut ids: Vec<&str> = report.findings.iter().map(|f| f.rule).collect();
    ids.dedup();
    ids
}

#[test]
fn each_rule_has_a_fixture_that_reports_it_alone() {
    let dir = root().join("fixtures/check");
    for rule in RULES {
        let file = format!("{}.yaml", rule.id);
        let report = run(&dir, Some(&file), &FixtureImages);
        assert_eq!(rules_of(&report), [rule.id], "{file}: {:#?}", report.findings);
        for f in &report.findings {
            assert_eq!(f.file, file);
            assert!(f.line > 0 && f.severity == rule.severity, "{f:?}");
            assert!(!f.fix.is_empty() && f.service.is_some(), "{f:?}");
        }
        let json = berth::check::render::json(&report);
        insta::with_settings!({ snapshot_suffix => rule.id, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("check_rule", json);
        });
    }
}

#[test]
fn the_clean_fixture_reports_nothing() {
    let report = run(&root().join("fixtures/check"), Some("clean.yaml"), &FixtureImages);
    assert_eq!(report.findings, []);
    assert!(!report.has_errors());
}

#[test]
fn findings_point_at_the_key_and_suggest_the_digest_berth_has() {
    let report = run(&root().join("fixtures/check"), Some("image-tag.yaml"), &FixtureImages);
    let f = &report.findings[0];
    assert_eq!((f.service.as_deref(), f.line, f.column), (Some("latest"), 5, 5));
    assert!(f.fix.contains(&format!("busybox@sha256:{}", "ab".repeat(32))), "{}", f.fix);
    let without = run(&root().join("fixtures/check"), Some("image-tag.yaml"), &NoImages);
    let f = without.findings.iter().find(|f| f.rule == "image-tag").unwrap();
    assert!(f.fix.contains("busybox:<version>"), "{}", f.fix);
    assert!(without.findings.iter().any(|f| f.rule == "image-not-inspected"));
}

#[test]
fn secrets_written_in_the_file_are_errors_and_interpolated_ones_are_not() {
    let report = run(&root().join("fixtures/check"), Some("secret-in-env.yaml"), &FixtureImages);
    let keys: Vec<(&str, u32)> =
        report.findings.iter().map(|f| (f.message.split('`').nth(1).unwrap(), f.line)).collect();
    assert_eq!(keys, [("DB_PASSWORD", 7), ("AWS_SECRET_ACCESS_KEY", 30)]);
    assert!(report.has_errors());
}

#[test]
fn only_the_services_named_are_checked() {
    let dir = root().join("fixtures/check");
    let opts =
        berth_compose::LoadOptions { files: vec!["root-user.yaml".into()], cwd: dir.clone(), ..Default::default() };
    let loaded = berth_compose::load(&opts).unwrap();
    let report = check(&loaded, &FixtureImages, &["by-image".into()]).unwrap();
    assert!(report.findings.iter().all(|f| f.service.as_deref() == Some("by-image")), "{report:?}");
    assert_eq!(report.findings.len(), 1);
    let e = check(&loaded, &FixtureImages, &["nope".into()]).unwrap_err();
    assert_eq!(e.to_string(), "no such service: `nope`");
}

/// The awesome-compose stacks (`fixtures/awesome-compose`, data only), run without images.
const STACKS: [&str; 10] = [
    "elasticsearch-logstash-kibana",
    "gitea-postgres",
    "nextcloud-redis-mariadb",
    "nginx-flask-mysql",
    "nginx-golang-postgres",
    "pihole-cloudflared-DoH",
    "postgresql-pgadmin",
    "prometheus-grafana",
    "react-java-mysql",
    "wordpress-mysql",
];

#[test]
fn awesome_compose_stacks() {
    for name in STACKS {
        let report = run(&root().join("fixtures/awesome-compose").join(name), None, &NoImages);
        assert!(!report.findings.is_empty(), "{name}");
        let json = berth::check::render::json(&report);
        insta::with_settings!({ snapshot_suffix => name, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("check_awesome", json);
        });
    }
}
