//! Unit tests of the networks, subnets and leases tables (no root needed).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use berth_network::ipam::{self, Family, Lease, LeaseStore, Pool, SubnetConfig};
use ipnet::IpNet;

use super::migrate::MIGRATIONS;
use super::tests::record;
use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn row(name: &str) -> NetworkRow {
    NetworkRow {
        name: name.into(),
        project: Some("p".into()),
        key: Some("default".into()),
        bridge: format!("br-{name}"),
        internal: false,
        enable_ipv6: false,
        mtu: None,
        labels: BTreeMap::new(),
        created_at: 7,
        subnets: Vec::new(),
    }
}

fn lease(network: &str, owner: &str, addr: &str) -> Lease {
    Lease { network: network.into(), owner: owner.into(), addr: ip(addr) }
}

#[test]
fn networks_keep_their_subnets_and_first_creation_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let mut sub = SubnetConfig::new(net("10.7.0.0/24"));
    sub.ip_range = Some(net("10.7.0.128/25"));
    sub.gateway = Some(ip("10.7.0.254"));
    sub.aux_addresses.insert("router".into(), ip("10.7.0.2"));
    let subs = vec![sub, SubnetConfig::new(net("fd00:7::/64"))];
    let mut first = row("p_default");
    first.labels.insert("a".into(), "b".into());
    let chosen = db.claim_network(&first, |stored, others| {
        assert_eq!((stored, others), (None, vec![]));
        Ok::<_, StateError>(subs.clone())
    });
    assert_eq!(chosen.unwrap(), subs);
    // Claimed again (a later `up`): the stored subnets are offered, the creation time kept.
    let again = db.claim_network(&NetworkRow { created_at: 99, mtu: Some(1400), ..first.clone() }, |stored, _| {
        Ok::<_, StateError>(stored.expect("stored before"))
    });
    assert_eq!(again.unwrap(), subs);
    let got = db.network("p_default").unwrap().unwrap();
    assert_eq!(got, NetworkRow { mtu: Some(1400), subnets: subs.clone(), ..first });
    // Another network is offered this one's subnets as taken.
    db.claim_network(&row("q_default"), |stored, others| {
        assert_eq!((stored, others), (None, vec![net("10.7.0.0/24"), net("fd00:7::/64")]));
        Ok::<_, StateError>(vec![SubnetConfig::new(net("10.8.0.0/24"))])
    })
    .unwrap();
    // A choice that fails records nothing.
    let failed = db.claim_network(&row("r_default"), |_, _| Err(db.bad_network("r_default", "subnet", "none left")));
    assert!(failed.is_err());
    let names: Vec<String> = db.networks().unwrap().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["p_default", "q_default"]);
    assert!(db.forget_network("p_default").unwrap());
    assert!(!db.forget_network("p_default").unwrap());
    assert_eq!(db.subnets_in_use("x").unwrap(), vec![net("10.8.0.0/24")], "its subnets went with it");
}

#[test]
fn leases_are_put_listed_and_released_through_the_network_crate() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let subs = [SubnetConfig::new(net("10.9.0.0/24")), SubnetConfig::new(net("fd00:9::/64"))];
    let mut store = DbLeases(&db);
    let a = ipam::lease(&mut store, "n", &subs, "p-web-1", Family::V4, None).unwrap();
    let a6 = ipam::lease(&mut store, "n", &subs, "p-web-1", Family::V6, None).unwrap();
    let b = ipam::lease(&mut store, "n", &subs, "p-db-1", Family::V4, None).unwrap();
    assert_eq!((a, a6, b), (ip("10.9.0.2"), ip("fd00:9::2"), ip("10.9.0.3")));
    // Reopened, the same owner keeps its address.
    let db2 = StateDb::open(dir.path()).unwrap();
    assert_eq!(ipam::lease(&mut DbLeases(&db2), "n", &subs, "p-web-1", Family::V4, None).unwrap(), a);
    assert_eq!(store.leases("n").unwrap().len(), 3);
    assert!(store.leases("other").unwrap().is_empty());
    // An address is held once: a second owner's put is refused by the table.
    let twice = db2.put_lease(&lease("n", "p-x-1", "10.9.0.3")).unwrap_err();
    assert!(twice.to_string().contains("UNIQUE"), "{twice}");
    store.release("n", "p-web-1").unwrap();
    assert_eq!(db.all_leases().unwrap(), vec![lease("n", "p-db-1", "10.9.0.3")]);
    assert_eq!(ipam::lease(&mut store, "n", &subs, "p-app-1", Family::V4, None).unwrap(), a, "free again");
}

#[test]
fn a_containers_leases_go_with_its_row_and_orphans_are_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    db.insert_container(&record("c1", "p-web-1", "web", 1)).unwrap();
    db.insert_container(&record("c2", "p-web-2", "web", 2)).unwrap();
    db.add_intent("p", "web", "p-web-3").unwrap();
    for l in [
        lease("front", "p-web-1", "10.1.0.2"),
        lease("back", "p-web-1", "10.2.0.2"),
        lease("front", "p-web-2", "10.1.0.3"),
        lease("front", "p-web-3", "10.1.0.4"),
        lease("front", "p-gone-1", "10.1.0.5"),
    ] {
        db.put_lease(&l).unwrap();
    }
    // Only the lease of a container with neither a row nor an intent is reclaimed.
    assert_eq!(db.reclaim_leases().unwrap(), vec![lease("front", "p-gone-1", "10.1.0.5")]);
    assert!(db.reclaim_leases().unwrap().is_empty());
    assert!(db.delete_container("c1").unwrap());
    let left: Vec<String> = db.all_leases().unwrap().into_iter().map(|l| l.owner).collect();
    assert_eq!(left, ["p-web-2", "p-web-3"], "p-web-1's leases went with its row");
    // A delete that cannot commit keeps both the row and its leases.
    let other = StateDb::open(dir.path()).unwrap();
    other.conn.busy_timeout(Duration::ZERO).unwrap();
    let held = db.write_transaction().unwrap();
    assert!(other.delete_container("c2").is_err(), "the write lock is held");
    drop(held);
    assert!(other.container("c2").unwrap().is_some());
    assert_eq!(other.all_leases().unwrap().len(), 2);
}

/// Chooses the first subnet of a small pool that `others` leave free, slowly: two processes that
/// read what is taken before either wrote would both choose the same one.
fn slow_pick(others: Vec<IpNet>) -> std::result::Result<Vec<SubnetConfig>, StateError> {
    std::thread::sleep(Duration::from_millis(150));
    let pools = [Pool::new(net("10.50.0.0/22"), 24)];
    let subnet = ipam::pick_subnet(&pools, &others).expect("a free subnet");
    Ok(vec![SubnetConfig::new(subnet)])
}

#[test]
fn two_connections_claiming_at_once_get_different_subnets() {
    let dir = tempfile::tempdir().unwrap();
    drop(StateDb::open(dir.path()).unwrap());
    let start = Arc::new(Barrier::new(2));
    let claims: Vec<_> = ["a_default", "b_default"]
        .into_iter()
        .map(|name| {
            let (root, start) = (dir.path().to_path_buf(), start.clone());
            std::thread::spawn(move || {
                let db = StateDb::open(&root).unwrap();
                start.wait();
                db.claim_network(&row(name), |_, others| slow_pick(others)).unwrap()[0].subnet
            })
        })
        .collect();
    let mut got: Vec<IpNet> = claims.into_iter().map(|t| t.join().unwrap()).collect();
    got.sort();
    assert_eq!(got, [net("10.50.0.0/24"), net("10.50.1.0/24")]);
}

/// A file as the previous release made it (schema version 4), with one container row.
fn v4_database(dir: &Path) {
    let conn = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    for m in &MIGRATIONS[..4] {
        conn.execute_batch(m.sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 4).unwrap();
    conn.execute(
        "INSERT INTO containers (id, name, project, service, number, image, image_digest, config_hash, runtime,
                                 status, created_at, config)
         VALUES ('c1', 'shop-web-1', 'shop', 'web', 1, 'busybox', 'sha256:abc', 'h', 'runc', 'running', 1, '{}')",
        [],
    )
    .unwrap();
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_v4_database_takes_in_the_network_files_and_they_go() {
    let dir = tempfile::tempdir().unwrap();
    v4_database(dir.path());
    let files = dir.path().join("networks");
    write(
        &files.join("subnets.json"),
        r#"{"shop_front": [{"subnet": "172.17.0.0/16", "ip_range": null, "gateway": null, "aux_addresses": {}}],
            "shop_back": [{"subnet": "10.5.0.0/24", "ip_range": "10.5.0.128/25", "gateway": "10.5.0.254",
                           "aux_addresses": {"router": "10.5.0.3"}}]}"#,
    );
    write(
        &files.join("networks.json"),
        r#"{"shop_back": {"bridge": "br-0123456789ab", "internal": true, "enable_ipv6": false, "mtu": 1400,
                          "labels": {"tier": "db"}, "created_at": 1700000000000}}"#,
    );
    write(
        &files.join("leases.json"),
        r#"[{"network": "shop_back", "owner": "shop-web-1", "addr": "10.5.0.130"},
            {"network": "shop_front", "owner": "shop-web-1", "addr": "172.17.0.2"}]"#,
    );
    write(&files.join("lock"), "");
    let db = StateDb::open(dir.path()).unwrap();
    let version: i64 = db.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
    let back = db.network("shop_back").unwrap().unwrap();
    let mut sub = SubnetConfig::new(net("10.5.0.0/24"));
    sub.ip_range = Some(net("10.5.0.128/25"));
    sub.gateway = Some(ip("10.5.0.254"));
    sub.aux_addresses.insert("router".into(), ip("10.5.0.3"));
    let labels = BTreeMap::from([("tier".to_string(), "db".to_string())]);
    assert_eq!(
        back,
        NetworkRow {
            name: "shop_back".into(),
            project: None,
            key: None,
            bridge: "br-0123456789ab".into(),
            internal: true,
            enable_ipv6: false,
            mtu: Some(1400),
            labels,
            created_at: 1_700_000_000_000,
            subnets: vec![sub],
        }
    );
    // Without a record of its own, a network's bridge is the one its name gives.
    let front = db.network("shop_front").unwrap().unwrap();
    let bridge = berth_network::network::NetworkSpec::new("shop_front", &BTreeMap::new()).unwrap().bridge;
    assert_eq!((front.bridge, front.subnets), (bridge.to_string(), vec![SubnetConfig::new(net("172.17.0.0/16"))]));
    assert_eq!(
        db.all_leases().unwrap(),
        vec![lease("shop_back", "shop-web-1", "10.5.0.130"), lease("shop_front", "shop-web-1", "172.17.0.2")]
    );
    let left: Vec<String> =
        std::fs::read_dir(&files).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, ["lock"], "the files are gone");
    // The container's leases go with its row, as those of a container made now.
    assert!(db.delete_container("c1").unwrap());
    assert!(db.all_leases().unwrap().is_empty());
}

#[test]
fn a_network_file_that_cannot_be_read_stops_the_migration_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    v4_database(dir.path());
    let leases = dir.path().join("networks/leases.json");
    write(&leases, "[{\"network\": ");
    let err = StateDb::open(dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("cannot take") && text.contains("leases.json") && text.contains("hint:"), "{text}");
    assert!(leases.exists());
    let conn = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, 4, "nothing of the migration was committed");
    // Repaired, it is taken in.
    std::fs::write(&leases, r#"[{"network": "n", "owner": "shop-web-1", "addr": "10.0.0.2"}]"#).unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    assert_eq!(db.all_leases().unwrap(), vec![lease("n", "shop-web-1", "10.0.0.2")]);
    assert!(!leases.exists());
}

#[test]
fn files_that_appear_after_the_migration_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    assert!(db.networks().unwrap().is_empty() && db.all_leases().unwrap().is_empty());
    // Files that appear later (an older berth run against this root) are never read.
    drop(db);
    write(&dir.path().join("networks/leases.json"), r#"[{"network": "n", "owner": "x", "addr": "10.0.0.2"}]"#);
    let db = StateDb::open(dir.path()).unwrap();
    assert!(db.all_leases().unwrap().is_empty());
}

#[test]
fn a_successor_that_took_another_name_keeps_its_leases_under_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    // Made under a name of its own, it then takes its predecessor's.
    db.insert_container(&record("c2", "p-web-1-next", "web", 1)).unwrap();
    db.put_lease(&lease("front", "p-web-1-next", "10.1.0.3")).unwrap();
    db.rename_container("c2", "p-web-1").unwrap();
    assert!(db.reclaim_leases().unwrap().is_empty(), "its key holds them");
    assert!(db.delete_container("c2").unwrap());
    assert!(db.all_leases().unwrap().is_empty(), "they went with its row");
}
