//! `berth config` through the real binary: the rendered model of real stacks (snapshots), the
//! list and explain views, file discovery, environment precedence, profiles and options.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn berth(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    berth_stdin(dir, args, env, None)
}

fn berth_stdin(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.current_dir(dir).env_clear().env("HOME", "/home/user").env("NO_COLOR", "1").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run berth");
    if let Some(text) = stdin {
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("berth output")
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "berth failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn real_stacks_render_like_compose_config() {
    let base = root().join("fixtures/awesome-compose");
    let mut dirs: Vec<_> =
        std::fs::read_dir(&base).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    assert!(dirs.len() >= 10);
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let out = berth(&dir, &["config"], &[]);
        let text = ok(&out).replace(&dir.display().to_string(), "[DIR]");
        insta::with_settings!({ snapshot_suffix => name, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("stack", text);
        });
    }
}

#[test]
fn example_views() {
    let dir = root().join("examples/webapp");
    let views: &[(&str, &[&str])] = &[
        ("yaml", &["config"]),
        ("json", &["config", "--format", "json"]),
        ("services", &["config", "--services"]),
        ("images", &["config", "--images"]),
        ("volumes", &["config", "--volumes"]),
        ("networks", &["config", "--networks"]),
        ("profiles", &["config", "--profiles"]),
        ("explain", &["config", "--explain"]),
        ("variables", &["config", "--variables"]),
        ("with-profile", &["--profile", "debug", "config", "--services"]),
    ];
    for (name, args) in views {
        let text = ok(&berth(&dir, args, &[("TAG", "1.25")])).replace(&dir.display().to_string(), "[DIR]");
        insta::with_settings!({ snapshot_suffix => *name, prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("webapp", text);
        });
    }
    let json: serde_json::Value =
        serde_json::from_str(&ok(&berth(&dir, &["config", "--format", "json"], &[]))).unwrap();
    assert_eq!(json["services"]["web"]["ports"][0]["published"], "8088", "from .env");
}

#[test]
fn finds_files_in_parent_directories_with_their_override() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = tmp.path().join("My Project");
    std::fs::create_dir_all(proj.join("sub/dir")).unwrap();
    std::fs::write(proj.join("compose.yaml"), "services:\n  web:\n    image: busybox\n    environment: {A: base}\n")
        .unwrap();
    std::fs::write(proj.join("compose.override.yaml"), "services:\n  web:\n    environment: {A: over}\n").unwrap();
    let out = ok(&berth(&proj.join("sub/dir"), &["config", "--format", "json"], &[]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name"], "myproject", "directory name, normalized");
    assert_eq!(v["services"]["web"]["environment"]["A"], "over");
}

#[test]
fn compose_file_variable_and_separator() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.yaml"), "services:\n  a:\n    image: busybox\n").unwrap();
    std::fs::write(tmp.path().join("b.yaml"), "services:\n  b:\n    image: busybox\n").unwrap();
    let out = ok(&berth(
        tmp.path(),
        &["config", "--services"],
        &[("COMPOSE_FILE", "a.yaml;b.yaml"), ("COMPOSE_PATH_SEPARATOR", ";")],
    ));
    assert_eq!(out, "a\nb\n");
}

#[test]
fn reads_standard_input() {
    let tmp = tempfile::tempdir().unwrap();
    let out = berth_stdin(
        tmp.path(),
        &["-f", "-", "-p", "fromstdin", "config", "--services"],
        &[],
        Some("services:\n  x:\n    image: busybox\n"),
    );
    assert_eq!(ok(&out), "x\n");
}

#[test]
fn shell_beats_env_files_and_later_env_files_win() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("compose.yaml"), "services:\n  web:\n    image: \"busybox:${A}-${B}-${C}\"\n").unwrap();
    std::fs::write(d.join(".env"), "A=dotenv\nB=dotenv\nC=dotenv\n").unwrap();
    std::fs::write(d.join("one.env"), "A=one\nB=one\n").unwrap();
    std::fs::write(d.join("two.env"), "B=two\n").unwrap();
    let out = ok(&berth(d, &["config", "--images"], &[]));
    assert_eq!(out, "busybox:dotenv-dotenv-dotenv\n");
    let out =
        ok(&berth(d, &["--env-file", "one.env", "--env-file", "two.env", "config", "--images"], &[("A", "shell")]));
    assert_eq!(out, "busybox:shell-two-\n", "--env-file replaces .env; the shell wins");
}

#[test]
fn project_name_sources_and_validation() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("compose.yaml"), "name: from-file\nservices:\n  web:\n    image: busybox\n").unwrap();
    let name = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = args.to_vec();
        all.extend(["config", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_str(&ok(&berth(d, &all, env))).unwrap();
        v["name"].as_str().unwrap().to_string()
    };
    assert_eq!(name(&[], &[]), "from-file");
    assert_eq!(name(&[], &[("COMPOSE_PROJECT_NAME", "from-env")]), "from-env");
    assert_eq!(name(&["-p", "from-flag"], &[("COMPOSE_PROJECT_NAME", "from-env")]), "from-flag");
    let out = berth(d, &["-p", "Bad Name", "config"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid project name \"Bad Name\""), "{err}");
}

#[test]
fn profiles_from_flag_and_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let text = "services:\n  web:\n    image: busybox\n  debug:\n    image: busybox\n    profiles: [dev]\n  \
                tools:\n    image: busybox\n    profiles: [ops, dev]\n";
    std::fs::write(d.join("compose.yaml"), text).unwrap();
    assert_eq!(ok(&berth(d, &["config", "--services"], &[])), "web\n");
    assert_eq!(ok(&berth(d, &["--profile", "ops", "config", "--services"], &[])), "tools\nweb\n");
    assert_eq!(ok(&berth(d, &["config", "--services"], &[("COMPOSE_PROFILES", "dev")])), "debug\ntools\nweb\n");
    assert_eq!(ok(&berth(d, &["config", "--profiles"], &[])), "dev\nops\n");
    assert_eq!(ok(&berth(d, &["config", "--services", "debug"], &[])), "debug\n", "named services are enabled");
    let out = berth(d, &["config", "nope"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such service: \"nope\""));
}

#[test]
fn quiet_output_file_and_no_interpolate() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("compose.yaml"), "services:\n  web:\n    image: \"busybox:${TAG:-1}\"\n").unwrap();
    assert_eq!(ok(&berth(d, &["config", "-q"], &[])), "");
    assert_eq!(ok(&berth(d, &["config", "-o", "out.yaml"], &[])), "");
    let written = std::fs::read_to_string(d.join("out.yaml")).unwrap();
    assert!(written.contains("image: busybox:1\n"), "{written}");
    let raw = ok(&berth(d, &["config", "--no-interpolate", "--images"], &[]));
    assert_eq!(raw, "busybox:${TAG:-1}\n");
}

#[test]
fn version_and_completions() {
    let tmp = tempfile::tempdir().unwrap();
    let v = ok(&berth(tmp.path(), &["version"], &[]));
    assert_eq!(v, format!("berth version {}\n", env!("CARGO_PKG_VERSION")));
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&berth(tmp.path(), &["completion", shell], &[]));
        assert!(script.contains("berth") && script.contains("config"), "{shell}");
    }
    let help = ok(&berth(tmp.path(), &["config", "--help"], &[]));
    assert!(help.contains("--explain"));
}

#[test]
fn a_named_service_turns_on_its_profiles_for_its_dependencies() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let text = "services:\n  web:\n    image: busybox\n  debug:\n    image: busybox\n    profiles: [dev]\n    \
                depends_on: [mock]\n  mock:\n    image: busybox\n    profiles: [dev]\n";
    std::fs::write(d.join("compose.yaml"), text).unwrap();
    assert_eq!(ok(&berth(d, &["config", "--services", "debug"], &[])), "debug\nmock\n");
}

#[test]
fn env_files_see_earlier_env_files() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("compose.yaml"),
        "services:\n  app:\n    image: busybox\n    env_file: [common.env, app.env]\n",
    )
    .unwrap();
    std::fs::write(d.join("common.env"), "DB_HOST=db\n").unwrap();
    std::fs::write(d.join("app.env"), "DATABASE_URL=postgres://${DB_HOST}/app\n").unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(&berth(d, &["config", "--format", "json"], &[]))).unwrap();
    assert_eq!(v["services"]["app"]["environment"]["DATABASE_URL"], "postgres://db/app");
}

#[test]
fn a_missing_include_points_at_the_include_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("compose.yaml"), "include:\n  - other/compose.yaml\nservices:\n  a:\n    image: busybox\n")
        .unwrap();
    let out = berth(d, &["config"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: compose.yaml:2:5: include[0]: included file"), "{err}");
}

#[test]
fn every_command_has_help() {
    let tmp = tempfile::tempdir().unwrap();
    let help = ok(&berth(tmp.path(), &["--help"], &[]));
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(commands.len() > 20, "{help}");
    for c in commands {
        let out = berth(tmp.path(), &[c, "--help"], &[]);
        assert!(out.status.success(), "`berth {c} --help`: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Docker Compose's `config --hash` (fixtures/config_hash): `SERVICE HASH` lines, `*` for every
/// service sorted by name; the hash follows the env_file's content.
#[test]
fn config_hash_prints_the_recreate_hash_per_service() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/e2e/config_hash");
    for f in ["compose.yaml", "app.env"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    let all = ok(&berth(tmp.path(), &["config", "--hash", "*"], &[]));
    let names: Vec<&str> = all.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(names, ["optional-env", "plain", "with-env-file"]);
    assert!(all.lines().all(|l| l.split(' ').nth(1).is_some_and(|h| h.len() == 64)), "{all}");
    let one = ok(&berth(tmp.path(), &["config", "--hash", "with-env-file"], &[]));
    assert!(all.contains(&one), "{one}");
    std::fs::write(tmp.path().join("app.env"), "EXAMPLE=changed\n").unwrap();
    let changed = ok(&berth(tmp.path(), &["config", "--hash", "with-env-file"], &[]));
    assert_ne!(one, changed, "the env_file's values are part of the hash");
    let plain = ok(&berth(tmp.path(), &["config", "--hash", "plain"], &[]));
    assert!(all.contains(&plain), "other services keep theirs");
    let bad = berth(tmp.path(), &["config", "--hash", "nosuch"], &[]);
    assert_eq!(bad.status.code(), Some(1));
}
