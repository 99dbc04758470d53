//! berth under Compose's names: linked as `docker-compose` it takes Compose's command lines, as
//! `docker` it takes `docker compose ...` and refuses the rest.

use std::process::Command;

#[test]
fn berth_answers_as_docker_compose_and_docker_compose() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n  db:\n    image: busybox\n",
    )
    .unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_berth"));
    for name in ["docker", "docker-compose"] {
        std::os::unix::fs::symlink(bin, dir.path().join(name)).unwrap();
    }
    let run = |name: &str, args: &[&str]| {
        Command::new(dir.path().join(name)).args(args).current_dir(dir.path()).env("NO_COLOR", "1").output().unwrap()
    };
    for (name, args) in
        [("docker", &["compose", "config", "--services"][..]), ("docker-compose", &["config", "--services"])]
    {
        let out = run(name, args);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "db\nweb\n", "{name}");
    }
    let other = run("docker", &["ps"]);
    assert_eq!(other.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&other.stderr).contains("`docker compose` only"));
}

#[test]
fn ansi_decides_colour() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yaml"), "services:\n  web:\n    image: busybox\n    gpus: all\n").unwrap();
    let run = |ansi: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["--ansi", ansi, "config", "-q"])
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Not a terminal and NO_COLOR: plain, unless --ansi always says otherwise.
    assert!(run("always").contains("\x1b["), "{}", run("always"));
    assert!(!run("auto").contains("\x1b[") && !run("never").contains("\x1b["));
}
