//! Unit tests of the deployment history (no root needed).

use super::tests::record;
use super::*;

fn made(db: &StateDb, id: &str, number: u32, hash: &str, digest: &str) -> ContainerRecord {
    let mut c = record(id, &format!("p-web-{id}"), "web", number);
    c.config_hash = hash.into();
    c.image_digest = digest.into();
    c.config.service = serde_json::json!({"image": "busybox", "environment": {"V": hash}});
    db.insert_container(&c).unwrap();
    c
}

#[test]
fn replicas_of_one_configuration_are_one_deployment_and_a_change_is_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let a1 = made(&db, "a1", 1, "h1", "sha256:1");
    made(&db, "a2", 2, "h1", "sha256:1");
    made(&db, "b1", 1, "h2", "sha256:1");
    made(&db, "c1", 1, "h2", "sha256:2");
    // A one-off container is no deployment.
    let mut run = record("r", "p-web-run-1", "web", 1);
    run.oneoff = true;
    db.insert_container(&run).unwrap();
    let history = db.deployments("p", "web").unwrap();
    let ids: Vec<(&str, &str)> = history.iter().map(|d| (d.config_hash.as_str(), d.image_digest.as_str())).collect();
    assert_eq!(ids, [("h1", "sha256:1"), ("h2", "sha256:1"), ("h2", "sha256:2")]);
    assert!(history.iter().all(|d| d.outcome == Outcome::Deployed));
    assert_eq!(history[0].config["environment"]["V"], "h1");
    // Going back to the first configuration is a new entry: history says what ran when.
    made(&db, "d1", 1, "h1", "sha256:1");
    assert_eq!(db.deployments("p", "web").unwrap().len(), 4);
    assert!(db.mark_deployment(&a1, Outcome::KnownGood).unwrap());
    let history = db.deployments("p", "web").unwrap();
    // The latest deployment of that configuration is the one marked.
    assert_eq!(history[3].outcome, Outcome::KnownGood);
    assert_eq!(history[0].outcome, Outcome::Deployed);
}

#[test]
fn known_good_stays_and_failed_is_only_for_one_never_good() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let good = made(&db, "a1", 1, "h1", "sha256:1");
    assert!(db.mark_deployment(&good, Outcome::KnownGood).unwrap());
    assert!(!db.mark_deployment(&good, Outcome::KnownGood).unwrap(), "marked once");
    assert!(!db.mark_deployment(&good, Outcome::Failed).unwrap(), "a later failure keeps it known-good");
    let bad = made(&db, "b1", 1, "h2", "sha256:2");
    assert!(db.mark_deployment(&bad, Outcome::Failed).unwrap());
    let history = db.deployments("p", "web").unwrap();
    assert_eq!(history.iter().map(|d| d.outcome).collect::<Vec<_>>(), [Outcome::KnownGood, Outcome::Failed]);
    assert!(history[0].good_at.is_some() && history[1].good_at.is_none());
    // Rollback from the failed one goes to the good one; from the good one, nowhere.
    assert_eq!(rollback_target(&history, Some(&history[1])).map(|d| d.seq), Some(history[0].seq));
    assert_eq!(rollback_target(&history, Some(&history[0])), None);
}

#[test]
fn the_last_two_known_good_deployments_of_each_service_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    for (i, digest) in ["sha256:1", "sha256:2", "sha256:3"].iter().enumerate() {
        let c = made(&db, &format!("c{i}"), 1, &format!("h{i}"), digest);
        db.mark_deployment(&c, Outcome::KnownGood).unwrap();
    }
    made(&db, "bad", 1, "h9", "sha256:9");
    let kept: Vec<String> = db.kept_deployments().unwrap().into_iter().map(|d| d.image_digest).collect();
    assert_eq!(kept, ["sha256:3", "sha256:2"]);
}

#[test]
fn a_definition_changed_in_place_is_a_deployment_as_good_as_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let c = made(&db, "a1", 1, "h1", "sha256:1");
    assert!(db.mark_deployment(&c, Outcome::KnownGood).unwrap());
    let mut config = c.config.clone();
    config.service = serde_json::json!({"image": "busybox", "ports": ["8081:80"]});
    db.set_definition(&c.id, &config, &[], "h2").unwrap();
    let row = db.container(&c.id).unwrap().unwrap();
    assert_eq!((row.config_hash.as_str(), &row.config.service), ("h2", &config.service));
    let history = db.deployments("p", "web").unwrap();
    let went: Vec<(&str, Outcome)> = history.iter().map(|d| (d.config_hash.as_str(), d.outcome)).collect();
    assert_eq!(went, [("h1", Outcome::KnownGood), ("h2", Outcome::KnownGood)]);
    // One not yet good passes on no verdict.
    let d = made(&db, "b1", 1, "h3", "sha256:1");
    db.set_definition(&d.id, &config, &[], "h4").unwrap();
    assert_eq!(db.deployment_outcome(&db.container(&d.id).unwrap().unwrap()).unwrap(), Some(Outcome::Deployed));
}
