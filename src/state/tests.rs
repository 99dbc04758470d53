//! Unit tests of the state database (no root needed).

use super::*;

pub(super) fn record(id: &str, name: &str, service: &str, number: u32) -> ContainerRecord {
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
        config: crate::container::ContainerConfig { command: vec!["sleep".into()], ..Default::default() },
        published: Vec::new(),
        volumes: Vec::new(),
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

/// A container's `config` as schema version 3 stored it, after `up` recorded its supervision:
/// published ports under `supervise.publish` (their host ports also patched into `ports`), its
/// volumes under `volumes`.
const V3_CONFIG: &str = r#"{
  "command": ["httpd", "-f", "-p", "80"],
  "stop_signal": "SIGTERM",
  "stop_grace_secs": 2.5,
  "tty": false,
  "stdin_open": true,
  "log": {"max_size": 1048576, "max_file": 2},
  "layers": ["/var/lib/berth/layers/aa", "/var/lib/berth/layers/bb"],
  "cgroups_path": "berth/p/p-web-1",
  "network": {"path": "/run/berth/netns/p-web-1"},
  "ports": [
    {"target": 80, "protocol": "tcp", "host_ip": "", "published": "32768"},
    {"target": 53, "protocol": "udp", "host_ip": "127.0.0.1", "published": "5353"}
  ],
  "labels": {"tier": "front"},
  "auto_remove": false,
  "volumes": ["p_data", "0123abcd"],
  "mounts": [
    {"source": "/var/lib/berth/volumes/p_data/_data", "destination": "/data", "kind": "bind",
     "options": ["rbind"], "origin": {"volume": "p_data"}}
  ],
  "service": {"image": "busybox", "command": ["httpd", "-f", "-p", "80"]},
  "supervise": {
    "dns": {"service": "web", "hostname": "0123456789ab",
            "endpoints": [["p_front", ["172.30.0.2"], ["www"], false]],
            "links": [], "upstreams": []},
    "gateways": ["172.30.0.1"],
    "health": {"test": ["CMD", "true"], "interval": {"secs": 1, "nanos": 0},
               "timeout": {"secs": 30, "nanos": 0}, "retries": 3,
               "start_period": {"secs": 0, "nanos": 0}, "start_interval": null},
    "restart": {"condition": "OnFailure", "max_attempts": 3, "delay": {"secs": 0, "nanos": 100000000},
                "window": null},
    "restart_on_unhealthy": false,
    "publish": [
      {"udp": false, "host_ip": "0.0.0.0", "host_port": 32768, "container_ip": "172.30.0.2", "container_port": 80},
      {"udp": true, "host_ip": "127.0.0.1", "host_port": 5353, "container_ip": "172.30.0.2", "container_port": 53}
    ],
    "post_start": [{"command": ["touch", "/started"]}],
    "pre_stop": [],
    "share": [["ipc", "p-db-1"]]
  }
}"#;

/// A file as the previous release made it (schema version 3): `rows` containers of project `p`
/// (id, name, status, config), a supervision row for `c1`, an intent.
fn v3_database(dir: &Path, rows: &[(&str, &str, &str, &str)]) {
    let conn = Connection::open(dir.join("state.db")).unwrap();
    for m in &MIGRATIONS[..3] {
        conn.execute_batch(m.sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 3).unwrap();
    for (id, name, status, config) in rows {
        conn.execute(
            "INSERT INTO containers (id, name, project, service, number, image, image_digest, config_hash, runtime,
                                     status, pid, monitor_pid, restart_count, created_at, started_at, config)
             VALUES (?1, ?2, 'p', 'web', 1, 'busybox', 'sha256:abc', 'h', 'runc', ?3, 42, 41, 2, 1, 5, ?4)",
            rusqlite::params![id, name, status, config],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO supervision (id, health, failing_streak, stop_requested, restart_reason)
         VALUES ('c1', 'healthy', 0, 1, 'exited with code 1')",
        [],
    )
    .unwrap();
    conn.execute("INSERT INTO intents (name, project, service, created_at) VALUES ('p-web-9', 'p', 'web', 1)", [])
        .unwrap();
}

#[test]
fn a_database_of_the_previous_schema_is_migrated_with_every_field_typed() {
    let dir = tempfile::tempdir().unwrap();
    v3_database(dir.path(), &[("c1", "p-web-1", "running", V3_CONFIG)]);

    let db = StateDb::open(dir.path()).unwrap();
    let version: i64 = db.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
    let c = db.container_by_name("p-web-1").unwrap().expect("the row survives");
    assert_eq!((c.id.as_str(), c.status, c.pid, c.monitor_pid), ("c1", Status::Running, Some(42), Some(41)));
    assert_eq!((c.restart_count, c.started_at, c.oneoff), (2, Some(5), false));

    let cfg = &c.config;
    assert_eq!(cfg.command, ["httpd", "-f", "-p", "80"]);
    assert_eq!((cfg.stop_signal.as_str(), cfg.stop_grace_secs, cfg.tty, cfg.stdin_open), ("SIGTERM", 2.5, false, true));
    assert_eq!((cfg.log.max_size, cfg.log.max_file), (1 << 20, 2));
    assert_eq!(cfg.layers.len(), 2);
    assert_eq!(cfg.cgroups_path, "berth/p/p-web-1");
    assert_eq!(cfg.network, Some(crate::runtime::bundle::NetworkNs::Path("/run/berth/netns/p-web-1".into())));
    assert_eq!(cfg.labels["tier"], "front");
    assert_eq!(cfg.mounts[0].origin, berth_volumes::Origin::Volume("p_data".into()));
    assert_eq!(cfg.service["image"], "busybox");
    let spec = cfg.supervise.as_ref().expect("its supervision spec");
    let dns = spec.dns.as_ref().unwrap();
    assert_eq!((dns.service.as_str(), dns.endpoints[0].0.as_str()), ("web", "p_front"));
    assert_eq!(spec.gateways, ["172.30.0.1".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(spec.health.as_ref().unwrap().interval, std::time::Duration::from_secs(1));
    assert_eq!(spec.restart.condition, crate::supervise::restart::Condition::OnFailure);
    assert_eq!(spec.restart.max_attempts, Some(3));
    assert_eq!(spec.post_start[0].command, ["touch", "/started"]);
    assert_eq!(spec.share, [("ipc".to_string(), "p-db-1".to_string())]);

    // The published ports moved to their table, in `ports` order, and `ps`/`port` show them.
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert_eq!(
        c.published,
        [
            Published {
                index: 0,
                proto: berth_network::proxy::Proto::Tcp,
                host_ip: ip("0.0.0.0"),
                host_port: 32768,
                container_ip: ip("172.30.0.2"),
                container_port: 80
            },
            Published {
                index: 1,
                proto: berth_network::proxy::Proto::Udp,
                host_ip: ip("127.0.0.1"),
                host_port: 5353,
                container_ip: ip("172.30.0.2"),
                container_port: 53
            },
        ]
    );
    let shown: Vec<(String, String, u16, String)> =
        c.ports().into_iter().map(|p| (p.host_ip, p.published, p.target, p.protocol)).collect();
    assert_eq!(
        shown,
        [
            ("0.0.0.0".to_string(), "32768".to_string(), 80, "tcp".to_string()),
            ("127.0.0.1".to_string(), "5353".to_string(), 53, "udp".to_string())
        ]
    );
    // The volumes it holds moved to theirs.
    assert_eq!(c.volumes, ["p_data", "0123abcd"]);
    assert_eq!(db.volume_holders("p_data").unwrap(), ["p-web-1"]);
    // Nothing of either is left in the config column.
    let text: String = db.conn.query_row("SELECT config FROM containers WHERE id = 'c1'", [], |r| r.get(0)).unwrap();
    let stored: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(stored.get("volumes").is_none() && stored["supervise"].get("publish").is_none(), "{stored}");

    let s = db.supervision("c1").unwrap();
    assert_eq!((s.health, s.stop_requested), (Some(Health::Healthy), true));
    assert_eq!(s.restart_reason.as_deref(), Some("exited with code 1"));
    assert_eq!(db.intents("p").unwrap().len(), 1);
    // What the new schema adds works on the migrated file; the row goes with its ports and volumes.
    assert!(db.delete_container("c1").unwrap());
    assert!(db.volume_holders("p_data").unwrap().is_empty());
    let left: i64 = db.conn.query_row("SELECT count(*) FROM published", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 0);
}

#[test]
fn a_row_that_cannot_be_read_is_an_error_that_names_its_container() {
    let dir = tempfile::tempdir().unwrap();
    // Migrated along with a good row: a config that is not JSON, one of the wrong shape, and an
    // unknown status.
    let good = V3_CONFIG;
    v3_database(
        dir.path(),
        &[
            ("c1", "p-web-1", "running", good),
            ("c2", "p-web-2", "running", "{not json"),
            ("c3", "p-web-3", "exited", r#"{"command": "not a list"}"#),
            ("c4", "p-web-4", "sleeping", good),
        ],
    );
    let db = StateDb::open(dir.path()).unwrap();
    let err = db.containers("p").unwrap_err();
    assert!(matches!(err, StateError::Unreadable { .. }), "{err:?}");
    let err = db.container("c3").unwrap_err().to_string();
    assert!(err.contains("container `p-web-3` cannot be read: its config"), "{err}");
    let err = db.container("c4").unwrap_err().to_string();
    assert!(err.contains("container `p-web-4` cannot be read: its status: unknown status \"sleeping\""), "{err}");
    // A command that goes on past bad rows gets the readable ones and an error for each other.
    let (rows, bad) = db.scan_containers("p").unwrap();
    assert_eq!(rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["p-web-1"]);
    let named: Vec<String> = bad
        .iter()
        .map(|e| match e {
            StateError::Unreadable { container, .. } => container.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(named, ["p-web-2", "p-web-3", "p-web-4"]);
    // A published port stored wrong is the same kind of error.
    db.conn.execute("UPDATE published SET host_ip = 'nowhere' WHERE container = 'c1'", []).unwrap();
    let err = db.container("c1").unwrap_err().to_string();
    assert!(err.contains("container `p-web-1` cannot be read: its published port #0: invalid address"), "{err}");
    // And a health that is none of the three.
    db.conn.execute("UPDATE supervision SET health = 'fine' WHERE id = 'c1'", []).unwrap();
    let err = db.supervision("c1").unwrap_err().to_string();
    assert!(err.contains("container `c1` cannot be read: its health: unknown health \"fine\""), "{err}");
}

#[test]
fn published_ports_and_volumes_are_stored_with_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let mut a = record("a", "p-web-1", "web", 1);
    a.config.ports = vec![crate::container::PortBinding {
        target: 80,
        protocol: "tcp".into(),
        host_ip: String::new(),
        published: "8000-8010".into(),
    }];
    a.volumes = vec!["v1".into(), "shared".into()];
    db.insert_container(&a).unwrap();
    let mut b = record("b", "p-web-2", "web", 2);
    b.volumes = vec!["shared".into()];
    db.insert_container(&b).unwrap();
    // Before `up` chose a host port, the declared one shows.
    let a1 = db.container("a").unwrap().unwrap();
    assert_eq!(a1.ports()[0].published, "8000-8010");
    assert_eq!(a1.volumes, ["v1", "shared"]);
    let port = Published {
        index: 0,
        proto: berth_network::proxy::Proto::Tcp,
        host_ip: "0.0.0.0".parse().unwrap(),
        host_port: 8003,
        container_ip: "10.0.0.2".parse().unwrap(),
        container_port: 80,
    };
    db.set_config("a", &a1.config, &[port]).unwrap();
    let a2 = db.container("a").unwrap().unwrap();
    assert_eq!(a2.published, [port]);
    assert_eq!(a2.ports()[0].published, "8003");
    assert_eq!(a2.config.ports[0].published, "8000-8010", "the declared port stays as declared");
    assert_eq!(db.volume_holders("shared").unwrap(), ["p-web-1", "p-web-2"]);
    let all = db.all_volume_holders().unwrap();
    assert_eq!(all["v1"], ["p-web-1"]);
    assert!(db.delete_container("a").unwrap());
    assert_eq!(db.volume_holders("shared").unwrap(), ["p-web-2"]);
    assert!(db.volume_holders("v1").unwrap().is_empty());
}
