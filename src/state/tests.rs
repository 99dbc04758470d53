//! Unit tests of the state database (no root needed).

use super::*;

fn record(id: &str, name: &str, service: &str, number: u32) -> ContainerRecord {
    ContainerRecord {
        id: id.into(),
        name: name.into(),
        project: "p".into(),
        service: service.into(),
        number,
        oneoff: false,
        image: "busybox".into(),
        image_digest: "sha256:abc".into(),
        config_hash: "h".into(),
        runtime: "runc".into(),
        status: Status::Created,
        pid: None,
        monitor_pid: None,
        exit_code: None,
        oom_killed: false,
        restart_count: 0,
        created_at: 1,
        started_at: None,
        finished_at: None,
        config: serde_json::json!({"k": 1}),
    }
}

#[test]
fn schema_is_created_once_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    db.insert_container(&record("a", "p-web-1", "web", 1)).unwrap();
    drop(db);
    let db = StateDb::open(dir.path()).unwrap();
    let mode: String = db.conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(db.containers("p").unwrap().len(), 1);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(StateDb::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join("state.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = StateDb::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[test]
fn container_lifecycle_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    db.insert_container(&record("a", "p-web-1", "web", 1)).unwrap();
    db.insert_container(&record("b", "p-web-2", "web", 2)).unwrap();
    assert!(db.insert_container(&record("c", "p-web-1", "web", 3)).is_err(), "names are unique");
    assert_eq!(db.next_number("p", "web", false).unwrap(), 3);
    assert_eq!(db.next_number("p", "db", false).unwrap(), 1);

    db.record_start("a", 42, 41).unwrap();
    let a = db.container("a").unwrap().unwrap();
    assert_eq!((a.status, a.pid, a.monitor_pid), (Status::Running, Some(42), Some(41)));
    assert!(a.started_at.is_some());

    db.record_exit("a", ExitRecord { code: Some(137), oom_killed: true }).unwrap();
    let a = db.container_by_name("p-web-1").unwrap().unwrap();
    assert_eq!((a.status, a.pid, a.exit_code, a.oom_killed), (Status::Exited, None, Some(137), true));

    // `restarting` survives the exit record; an unknown exit code means dead.
    db.set_status("b", Status::Restarting).unwrap();
    db.record_exit("b", ExitRecord { code: Some(0), oom_killed: false }).unwrap();
    assert_eq!(db.container("b").unwrap().unwrap().status, Status::Restarting);
    db.set_status("b", Status::Running).unwrap();
    db.record_exit("b", ExitRecord { code: None, oom_killed: false }).unwrap();
    assert_eq!(db.container("b").unwrap().unwrap().status, Status::Dead);

    assert!(db.image_in_use("sha256:abc").unwrap());
    assert!(db.delete_container("a").unwrap());
    assert!(db.delete_container("b").unwrap());
    assert!(!db.delete_container("b").unwrap());
    assert!(!db.image_in_use("sha256:abc").unwrap());
    assert!(db.containers("p").unwrap().is_empty());
}

#[test]
fn projects_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    db.upsert_project("p", Path::new("/srv"), &[PathBuf::from("/srv/compose.yaml")]).unwrap();
    db.upsert_project("p", Path::new("/srv2"), &[]).unwrap();
    assert_eq!(db.projects().unwrap(), vec!["p".to_string()]);
    let mut attrs = serde_json::Map::new();
    attrs.insert("exitCode".into(), 3.into());
    let s1 = db.append_event("p", "web", "a", "p-web-1", "start", Default::default()).unwrap();
    let s2 = db.append_event("p", "web", "a", "p-web-1", "die", attrs).unwrap();
    assert!(s2 > s1);
    let ev = db.events_after("p", s1).unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].action, "die");
    assert_eq!(ev[0].attributes["exitCode"], 3);
    assert_eq!(db.last_event_seq("p").unwrap(), s2);
    assert!(db.remove_project_if_empty("p").unwrap());
}

#[test]
fn two_connections_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let a = StateDb::open(dir.path()).unwrap();
    let b = StateDb::open(dir.path()).unwrap();
    a.insert_container(&record("a", "p-web-1", "web", 1)).unwrap();
    b.record_start("a", 7, 6).unwrap();
    assert_eq!(a.container("a").unwrap().unwrap().pid, Some(7));
}

/// Makes a database with a row, everything checkpointed into the main file.
fn checkpointed_db(dir: &Path) -> PathBuf {
    let db = StateDb::open(dir).unwrap();
    db.insert_container(&record("a", "p-web-1", "web", 1)).unwrap();
    db.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE").unwrap();
    drop(db);
    dir.join("state.db")
}

#[test]
fn a_damaged_file_is_said_to_be_damaged_with_its_path() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 4] = [
        ("truncated to 100 bytes", |p| std::fs::OpenOptions::new().write(true).open(p).unwrap().set_len(100).unwrap()),
        ("truncated to 50 bytes", |p| std::fs::OpenOptions::new().write(true).open(p).unwrap().set_len(50).unwrap()),
        ("garbage", |p| std::fs::write(p, vec![0x5a; 8192]).unwrap()),
        ("garbage after the header", |p| {
            use std::io::{Seek, Write};
            let mut f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            f.seek(std::io::SeekFrom::Start(100)).unwrap();
            f.write_all(&[0xa5; 8000]).unwrap();
        }),
    ];
    for (what, damage) in damages {
        let dir = tempfile::tempdir().unwrap();
        let path = checkpointed_db(dir.path());
        // Another process keeps the file open, as a monitor or the supervisor does.
        let holder = Connection::open(&path).unwrap();
        damage(&path);
        let err = StateDb::open(dir.path()).and_then(|db| db.containers("p")).unwrap_err();
        assert!(matches!(err, StateError::Damaged { .. }), "{what}: {err:?}");
        let text = err.to_string();
        assert!(text.contains("is damaged") && text.contains(&path.display().to_string()), "{what}: {text}");
        drop(holder);
    }
}

#[test]
fn an_empty_file_is_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.db"), b"").unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    assert!(db.containers("p").unwrap().is_empty());
}

#[test]
fn a_database_of_an_earlier_schema_is_migrated_with_its_rows() {
    // A file as the previous release made it: the first two migrations, one container, one
    // supervision row.
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("state.db")).unwrap();
    for sql in &MIGRATIONS[..2] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 2).unwrap();
    conn.execute(
        "INSERT INTO containers (id, name, project, service, number, image, image_digest, config_hash, runtime,
                                 status, created_at, config)
         VALUES ('c1', 'p-web-1', 'p', 'web', 1, 'busybox', 'sha256:abc', 'h', 'runc', 'running', 1, '{}')",
        [],
    )
    .unwrap();
    conn.execute("INSERT INTO supervision (id, health, stop_requested) VALUES ('c1', 'healthy', 1)", []).unwrap();
    drop(conn);

    let db = StateDb::open(dir.path()).unwrap();
    let version: i64 = db.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
    let c = db.container_by_name("p-web-1").unwrap().expect("the row survives");
    assert_eq!((c.id.as_str(), c.status), ("c1", Status::Running));
    let s = db.supervision("c1").unwrap();
    assert_eq!((s.health.as_deref(), s.stop_requested), (Some("healthy"), true));
    // What the new schema adds works on the migrated file.
    db.add_intent("p", "web", "p-web-2").unwrap();
    assert_eq!(db.intents("p").unwrap().len(), 1);
}
