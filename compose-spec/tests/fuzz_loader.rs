//! Property tests: the loader never panics, whatever the input. Arbitrary bytes, and
//! compose-shaped documents built from real keys and tricky values (anchors, tags,
//! interpolation, short syntax), go through the whole pipeline; every outcome must be `Ok`
//! or a located `Err`. Raise `PROPTEST_CASES` for a longer run.

use berth_compose::env::Environment;
use berth_compose::{load, LoadOptions};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
}

fn load_text(text: &str) -> Result<(), berth_compose::Error> {
    let opts = LoadOptions {
        files: vec!["-".into()],
        stdin: Some(text.to_string()),
        cwd: std::env::temp_dir(),
        project_name: Some("fuzz".into()),
        shell: Environment::from_shell([("SET".to_string(), "value".to_string())]),
        ..LoadOptions::default()
    };
    load(&opts).map(|_| ())
}

const KEYS: &[&str] = &[
    "services",
    "web",
    "db",
    "image",
    "ports",
    "volumes",
    "environment",
    "depends_on",
    "extends",
    "service",
    "include",
    "networks",
    "x-ext",
    "<<",
    "command",
    "entrypoint",
    "healthcheck",
    "test",
    "interval",
    "deploy",
    "replicas",
    "resources",
    "limits",
    "memory",
    "cpus",
    "env_file",
    "build",
    "context",
    "secrets",
    "configs",
    "profiles",
    "labels",
    "ulimits",
    "nofile",
    "soft",
    "hard",
    "logging",
    "options",
    "tmpfs",
    "condition",
    "external",
    "name",
    "version",
    "scale",
    "restart",
    "extra_hosts",
    "devices",
    "network_mode",
    "volumes_from",
    "links",
    "develop",
    "watch",
    "path",
    "action",
    "target",
    "published",
    "mode",
    "type",
    "source",
    "file",
];

const SCALARS: &[&str] = &[
    "busybox",
    "\"80:80\"",
    "8080:80/udp",
    "1:2:3:4",
    "70000",
    "\"${SET}\"",
    "${UNSET:-x}",
    "${",
    "$$",
    "${A:?boom}",
    "~",
    "null",
    "true",
    "0440",
    "-1",
    "1e999",
    ".inf",
    "\"\"",
    "!reset",
    "!override",
    "*a",
    "&a x",
    "[a, b]",
    "{a: 1}",
    "./src:/app:ro",
    "/data",
    "web",
    "service:web",
    "10s",
    "10 parsecs",
    "512m",
    "lots",
    "-",
    "'[",
    "\"a: b\"",
    "|\n  block",
    "CMD-SHELL",
    "[\"CMD\", \"true\"]",
    "sync",
    "0x1F",
    "::1",
    "a=b",
    "=",
];

fn doc() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(SCALARS).prop_map(|s| s.to_string());
    let tree = leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec((prop::sample::select(KEYS), inner.clone()), 0..6).prop_map(|entries| {
                let mut out = String::from("\n");
                for (k, v) in entries {
                    for line in format!("{k}: {v}").lines() {
                        out.push_str("  ");
                        out.push_str(line);
                        out.push('\n');
                    }
                }
                out
            }),
            prop::collection::vec(inner, 0..4).prop_map(|items| {
                let mut out = String::from("\n");
                for v in items {
                    for (i, line) in v.lines().filter(|l| !l.is_empty()).enumerate() {
                        out.push_str(if i == 0 { "  - " } else { "    " });
                        out.push_str(line.trim_start());
                        out.push('\n');
                    }
                }
                out
            }),
        ]
    });
    (prop::sample::select(&["services", "x-base", "volumes", "networks", "include", "name"][..]), tree)
        .prop_map(|(k, v)| format!("{k}: {v}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = load_text(&text);
    }

    #[test]
    fn compose_shaped_documents_never_panic(docs in prop::collection::vec(doc(), 1..4)) {
        let text = docs.join("\n");
        if let Err(e) = load_text(&text) {
            // Every error points somewhere or names what failed.
            prop_assert!(!e.message.is_empty());
        }
    }
}
