//! `berth volume ...` through the real binary, with its own `BERTH_ROOT`.

#[path = "support/records.rs"]
mod records;

use std::path::Path;
use std::process::{Command, Output};

fn berth(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .current_dir(root)
        .env("BERTH_ROOT", root)
        .env("BERTH_RUN", root.join("run"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run berth")
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn create_list_inspect_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    assert_eq!(
        stdout(&berth(
            root,
            &["volume", "create", "data", "--label", "tier=db", "-o", "type=tmpfs", "-o", "o=size=1m"]
        )),
        "data\n"
    );
    assert_eq!(stdout(&berth(root, &["volume", "ls", "-q"])), "data\n");
    let v: serde_json::Value = serde_json::from_str(&stdout(&berth(root, &["volume", "inspect", "data"]))).unwrap();
    assert_eq!(v[0]["labels"]["tier"], "db");
    assert_eq!(v[0]["driver_opts"]["type"], "tmpfs");
    assert!(v[0]["mountpoint"].as_str().unwrap().ends_with("volumes/data/_data"));

    let bad = berth(root, &["volume", "create", "xx", "-o", "size=1m"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown driver option \"size\""));

    assert_eq!(stdout(&berth(root, &["volume", "rm", "data"])), "data\n");
    let gone = berth(root, &["volume", "rm", "data"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no such volume: \"data\""));
}

#[test]
fn volumes_in_use_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    stdout(&berth(root, &["volume", "create", "used"]));
    stdout(&berth(root, &["volume", "create", "spare"]));
    let db = berth::state::StateDb::open(root).unwrap();
    let user = records::container_record("proj", "db", berth::state::Status::Exited, "sha256:0", &["used"]);
    db.insert_container(&user).unwrap();
    let out = berth(root, &["volume", "rm", "used"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("volume \"used\" is in use by proj-db-1"));
    assert_eq!(stdout(&berth(root, &["volume", "prune"])), "", "named volumes need --all");
    assert_eq!(stdout(&berth(root, &["volume", "prune", "--all"])), "Deleted: spare\n");
    assert_eq!(stdout(&berth(root, &["volume", "ls", "-q"])), "used\n");
}
