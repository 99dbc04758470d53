//! The commands: `berth pull`, `images`, `image ...`, `login`, `logout` run as a user would.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{fixture_layout, require_root, Registry, TempRoot};

fn berth(root: &Path, dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .current_dir(dir)
        .env("BERTH_ROOT", root)
        .env("DOCKER_CONFIG", root.join("docker-config"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run berth")
}

#[test]
fn cli_pull_images_inspect_rm() {
    require_root("unpacking layers with owners");
    let layout = fixture_layout();
    let reg = Registry::with_fixtures(&layout);
    let root = TempRoot::new();
    let project = root.path().join("project");
    fs::create_dir(&project).unwrap();
    let compose = format!(
        "services:\n  web:\n    image: {}\n  sh:\n    image: {}\n  other:\n    image: {}\n    platform: linux/s390x\n  local:\n    image: {}/berth-test/nothere\n    pull_policy: never\n",
        reg.image("config"),
        reg.image("busybox"),
        reg.image("multiarch"),
        reg.host()
    );
    fs::write(project.join("compose.yaml"), compose).unwrap();

    let out = berth(root.path(), &project, &["pull", "web", "sh"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("{}: pulled sha256:", reg.image("busybox"))), "{stderr}");

    let out = berth(root.path(), &project, &["pull"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("{}: up to date", reg.image("config"))), "{stderr}");
    assert!(stderr.contains("error: no image for platform `linux/s390x`"), "{stderr}");

    let out = berth(root.path(), &project, &["pull", "--ignore-pull-failures", "--policy", "missing"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: pulling") && stderr.contains("skipped (present locally)"), "{stderr}");

    let out = berth(root.path(), &project, &["images"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("REPOSITORY") && lines[0].contains("DIGEST") && lines[0].contains("CREATED"));
    assert!(lines[1].contains("berth-test/busybox") && lines[1].contains("latest") && lines[1].contains("2024-01-01"));

    let out = berth(root.path(), &project, &["image", "inspect", &reg.image("config")]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["config"]["StopSignal"], "SIGINT");

    // A container made from the image (any state) keeps it from being removed.
    let id = berth::image::ImageStore::open(root.path()).unwrap().resolve(&reg.image("config")).unwrap().id.to_string();
    let db = berth::state::StateDb::open(root.path()).unwrap();
    let user = crate::records::container_record("proj", "web", berth::state::Status::Exited, &id, &[]);
    db.insert_container(&user).unwrap();
    let out = berth(root.path(), &project, &["image", "rm", &reg.image("config")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"), "{}", String::from_utf8_lossy(&out.stderr));
    db.delete_container(&user.id).unwrap();

    let out = berth(root.path(), &project, &["image", "rm", &reg.image("config")]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Deleted: sha256:"));
    let out = berth(root.path(), &project, &["image", "ls", "-q"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn cli_login_logout_and_basic_auth_registry() {
    require_root("unpacking layers with owners");
    let layout = fixture_layout();
    let reg = Registry::start_with_auth("alice", "s3cret");
    reg.seed(&layout, "busybox", "private/busybox:latest");
    let root = TempRoot::new();
    let project = root.path().join("project");
    fs::create_dir(&project).unwrap();
    fs::write(project.join("compose.yaml"), format!("services:\n  a:\n    image: {}/private/busybox\n", reg.host()))
        .unwrap();
    let docker_config = root.path().join("docker");
    let helpers = root.path().join("bin");
    fs::create_dir(&helpers).unwrap();
    let run = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .current_dir(&project)
            .env("BERTH_ROOT", root.path())
            .env("DOCKER_CONFIG", &docker_config)
            .env("PATH", format!("{}:{}", helpers.display(), std::env::var("PATH").unwrap_or_default()))
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let host = reg.host();
    let (ok, out) = run(&["pull"], "");
    assert!(!ok && out.contains("denied") && out.contains(&format!("berth login {host}")), "{out}");
    let (ok, out) = run(&["login", &host, "-u", "alice", "--password-stdin"], "wrong\n");
    assert!(!ok && out.contains("the registry refused these credentials"), "{out}");
    assert!(!docker_config.join("config.json").exists());
    let (ok, out) = run(&["login", &host, "-u", "alice", "--password-stdin"], "s3cret\n");
    assert!(ok && out.contains("Login Succeeded"), "{out}");
    let meta = fs::metadata(docker_config.join("config.json")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let (ok, out) = run(&["pull"], "");
    assert!(ok, "{out}");
    let (ok, out) = run(&["logout", &host], "");
    assert!(ok && out.contains("Removing login credentials"), "{out}");
    let cfg: serde_json::Value = serde_json::from_slice(&fs::read(docker_config.join("config.json")).unwrap()).unwrap();
    assert!(cfg["auths"].as_object().unwrap().is_empty());
    let (ok, out) = run(&["pull"], "");
    assert!(!ok && out.contains("denied"), "{out}");

    // A credential helper named in `credHelpers` is asked with the server on stdin.
    let helper = helpers.join("docker-credential-berthtest");
    let script = format!(
        "#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = {host} ] || exit 1\necho '{{\"ServerURL\":\"{host}\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}}'\n"
    );
    fs::write(&helper, script).unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(docker_config.join("config.json"), format!(r#"{{"credHelpers": {{"{host}": "berthtest"}}}}"#)).unwrap();
    let (ok, out) = run(&["pull"], "");
    assert!(ok, "{out}");
}

#[test]
fn pull_includes_dependencies_and_skips_what_is_built() {
    require_root("unpacking layers with owners");
    let layout = fixture_layout();
    let reg = Registry::with_fixtures(&layout);
    let root = TempRoot::new();
    let project = root.path().join("project");
    fs::create_dir(&project).unwrap();
    let compose = format!(
        "services:\n  app:\n    image: {}\n    depends_on: [db]\n  db:\n    image: {}\n  made:\n    image: {}/berth-test/made-here\n    build: .\n",
        reg.image("busybox"),
        reg.image("config"),
        reg.host()
    );
    fs::write(project.join("compose.yaml"), compose).unwrap();
    let out = berth(root.path(), &project, &["pull", "app"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains(&reg.image("config")), "{stderr}");
    let out = berth(root.path(), &project, &["pull", "--include-deps", "app"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains(&format!("{}: pulled", reg.image("config"))), "{stderr}");
    let out = berth(root.path(), &project, &["pull", "--ignore-buildable"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("made-here") && stderr.contains("skipped (it is built)"), "{stderr}");
}

#[test]
fn up_pulls_the_platform_a_service_names() {
    require_root("unpacking layers with owners");
    let layout = fixture_layout();
    let reg = Registry::with_fixtures(&layout);
    let root = TempRoot::new();
    let project = root.path().join("project");
    fs::create_dir(&project).unwrap();
    let compose = format!(
        "name: upplatform\nservices:\n  other:\n    image: {}\n    platform: linux/s390x\n",
        reg.image("multiarch")
    );
    fs::write(project.join("compose.yaml"), compose).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["up", "-d"])
        .current_dir(&project)
        .env("BERTH_ROOT", root.path())
        .env("BERTH_RUN", root.path().join("run"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no image for platform `linux/s390x`"), "{stderr}");
    assert!(!stderr.contains("`platform` is not supported"), "{stderr}");
    let down = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["down"])
        .current_dir(&project)
        .env("BERTH_ROOT", root.path())
        .env("BERTH_RUN", root.path().join("run"))
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", String::from_utf8_lossy(&down.stderr));
}

#[test]
fn push_sends_a_services_image_to_its_registry_with_the_same_digest() {
    require_root("unpacking layers with owners");
    let layout = fixture_layout();
    let reg = Registry::with_fixtures(&layout);
    let root = TempRoot::new();
    let project = root.path().join("project");
    fs::create_dir(&project).unwrap();
    let pushed = format!("{}/pushed/busybox:v1", reg.host());
    fs::write(
        project.join("compose.yaml"),
        format!("services:\n  app:\n    image: {pushed}\n  plain:\n    image: {}\n", reg.image("busybox")),
    )
    .unwrap();
    let ok = |args: &[&str]| {
        let out = berth(root.path(), &project, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    // Not in the registry yet, and not here: nothing to push.
    let out = berth(root.path(), &project, &["push", "app"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    ok(&["pull", "plain"]);
    ok(&["image", "tag", &reg.image("busybox"), &pushed]);
    let dry = ok(&["--dry-run", "push", "app"]);
    assert!(String::from_utf8_lossy(&dry.stdout).contains(&format!("Image {pushed}  Pushing")));
    let out = ok(&["push", "app"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("Pushed"), "{said}");
    // What the registry now has is the same image: removed here, pulled back, same id.
    let id_of = |out: std::process::Output| -> String {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["rootfs"]["diff_ids"].to_string()
    };
    let before = id_of(ok(&["image", "inspect", &pushed]));
    ok(&["image", "rm", &pushed]);
    ok(&["pull", "app"]);
    assert_eq!(id_of(ok(&["image", "inspect", &pushed])), before);
}
