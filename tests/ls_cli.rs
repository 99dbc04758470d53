//! `berth ls` through the real binary, over a state database filled by hand.

#[path = "support/records.rs"]
mod records;

use std::path::Path;
use std::process::Command;

use berth::state::{ContainerRecord, StateDb, Status};

fn record(project: &str, service: &str, status: Status) -> ContainerRecord {
    records::container_record(project, service, status, "sha256:0", &[])
}

fn ls(root: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_berth")).arg("ls").args(args).env("BERTH_ROOT", root).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn lists_running_projects_and_all_with_a() {
    let tmp = tempfile::tempdir().unwrap();
    let db = StateDb::open(tmp.path()).unwrap();
    db.upsert_project("shop", Path::new("/srv/shop"), &["/srv/shop/compose.yaml".into()]).unwrap();
    db.upsert_project("idle", Path::new("/srv/idle"), &["/srv/idle/compose.yaml".into()]).unwrap();
    db.insert_container(&record("shop", "web", Status::Running)).unwrap();
    db.insert_container(&record("shop", "db", Status::Exited)).unwrap();
    db.insert_container(&record("idle", "job", Status::Exited)).unwrap();
    let text = ls(tmp.path(), &[]);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains("shop") && text.contains("exited(1), running(1)") && text.contains("/srv/shop/compose.yaml"),
        "{text}"
    );
    assert_eq!(ls(tmp.path(), &["-a", "-q"]), "idle\nshop\n");
    let v: serde_json::Value = serde_json::from_str(&ls(tmp.path(), &["--format", "json"])).unwrap();
    assert_eq!(v[0]["name"], "shop");
}

#[test]
fn projects_without_containers_are_not_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let db = StateDb::open(tmp.path()).unwrap();
    // `down` forgets an empty project, but any later command in its directory (`ps`, `config`,
    // `rm`) records it again; `rm` of its last container leaves the row too.
    db.upsert_project("gone", Path::new("/srv/gone"), &["/srv/gone/compose.yaml".into()]).unwrap();
    db.upsert_project("idle", Path::new("/srv/idle"), &["/srv/idle/compose.yaml".into()]).unwrap();
    db.insert_container(&record("idle", "job", Status::Exited)).unwrap();
    assert_eq!(ls(tmp.path(), &["-a", "-q"]), "idle\n");
    let v: serde_json::Value = serde_json::from_str(&ls(tmp.path(), &["-a", "--format", "json"])).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    assert!(!ls(tmp.path(), &["-a"]).contains("gone"));
}

#[test]
fn a_damaged_state_database_is_named_and_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let db = StateDb::open(tmp.path()).unwrap();
    db.upsert_project("shop", Path::new("/srv/shop"), &["/srv/shop/compose.yaml".into()]).unwrap();
    drop(db);
    let path = tmp.path().join("state.db");
    for damage in [&b"SQLite format 3\0"[..], &[0x5a; 4096][..]] {
        // What a full disk, a bad copy or a stray redirection leaves: a stub, or garbage.
        let _ = std::fs::remove_file(tmp.path().join("state.db-wal"));
        let _ = std::fs::remove_file(tmp.path().join("state.db-shm"));
        std::fs::write(&path, damage).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["ls", "-a"])
            .env("BERTH_ROOT", tmp.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(&format!("the state database `{}` is damaged", path.display())), "{err}");
    }
}

#[test]
fn filter_by_name_as_compose_does() {
    let tmp = tempfile::tempdir().unwrap();
    let db = StateDb::open(tmp.path()).unwrap();
    for (name, status) in [("shop", Status::Running), ("shopfront", Status::Running), ("blog", Status::Exited)] {
        db.upsert_project(name, Path::new("/srv"), &["/srv/compose.yaml".into()]).unwrap();
        db.insert_container(&record(name, "web", status)).unwrap();
    }
    // A pattern found in the name (Compose matches a regular expression).
    assert_eq!(ls(tmp.path(), &["-q", "--filter", "name=shop"]), "shop\nshopfront\n");
    assert_eq!(ls(tmp.path(), &["-q", "--filter", "name=^shop$"]), "shop\n");
    assert_eq!(ls(tmp.path(), &["-q", "--filter", "name=front"]), "shopfront\n");
    // -a still decides whether stopped projects are listed.
    assert_eq!(ls(tmp.path(), &["-q", "--filter", "name=blog"]), "");
    assert_eq!(ls(tmp.path(), &["-a", "-q", "--filter", "name=blog"]), "blog\n");
    // Several filters: a project matching any of them.
    assert_eq!(ls(tmp.path(), &["-a", "-q", "--filter", "name=^b", "--filter", "name=front$"]), "blog\nshopfront\n");
    let table = ls(tmp.path(), &["--filter", "name=^shop$"]);
    assert_eq!(table.lines().count(), 2, "{table}");
    let v: serde_json::Value =
        serde_json::from_str(&ls(tmp.path(), &["--filter", "name=front", "--format", "json"])).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["ls", "--filter", "label=x"])
        .env("BERTH_ROOT", tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("unknown filter `label`"), "{err}");
}
