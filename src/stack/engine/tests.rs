//! Unit tests of the engine's decisions with the network crate's recording host and firewall,
//! a state root in a temporary directory and rows written straight into its database: no root,
//! no kernel objects, milliseconds.

use berth_network::nat::RecordingFirewall;
use berth_network::RecordingHost;

use super::*;
use crate::events::Recorder;
use crate::plan::{Operation, Resource};
use crate::supervise::testing::record;

const PROJECT: &str = r#"
name: p
services:
  db:
    image: busybox
    healthcheck: {test: [CMD, "true"]}
  job:
    image: busybox
  web:
    image: busybox
    networks: [front]
    volumes: [data:/data]
networks:
  front: {}
volumes:
  data: {}
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    roots: Roots,
    project: Project,
    events: Recorder,
    host: RecordingHost,
    firewall: RecordingFirewall,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots { root: dir.path().join("root"), run: dir.path().join("run") };
        let project = berth_compose::load_str(PROJECT, dir.path()).expect("valid").project;
        let (host, firewall) = (RecordingHost::default(), RecordingFirewall::default());
        Fixture { _dir: dir, roots, project, events: Recorder::default(), host, firewall }
    }

    fn engine(&self) -> StackEngine<'_> {
        StackEngine::new(&self.project, self.roots.clone(), &self.events)
            .unwrap()
            .with_network(&self.host, &self.firewall)
    }

    fn step(&self, operation: Operation) -> Step {
        Step { id: 1, deps: vec![], operation, cause: "test".into() }
    }

    fn insert(&self, rec: &crate::state::ContainerRecord) {
        StateDb::open(&self.roots.root).unwrap().insert_container(rec).unwrap();
    }
}

#[test]
fn a_network_is_made_and_taken_down_with_its_bridge_and_rules() {
    let f = Fixture::new();
    let engine = f.engine();
    let front = Resource { key: "front".into(), name: "p_front".into() };
    engine.apply(&f.step(Operation::CreateNetwork(front.clone()))).unwrap();
    let calls = f.host.calls();
    assert!(calls.iter().any(|c| c.starts_with("ensure_bridge br-")), "{calls:?}");
    assert!(!f.firewall.rules.lock().unwrap().is_empty(), "the network's rules are in force");
    engine.apply(&f.step(Operation::RemoveNetwork(front))).unwrap();
    assert!(f.host.calls().iter().any(|c| c.starts_with("remove_bridge br-")), "{:?}", f.host.calls());
    assert!(f.firewall.rules.lock().unwrap().is_empty(), "the rules went with the bridge");
    // A network the project does not declare is an error, not a guess.
    let stray = Resource { key: "nope".into(), name: "p_nope".into() };
    let e = engine.apply(&f.step(Operation::CreateNetwork(stray))).unwrap_err();
    assert_eq!(e, StepError::Failed("no network \"nope\" in the project".into()));
}

#[test]
fn a_volume_in_use_is_kept_and_a_free_one_goes() {
    let f = Fixture::new();
    let engine = f.engine();
    let data = Resource { key: "data".into(), name: "p_data".into() };
    engine.apply(&f.step(Operation::CreateVolume(data.clone()))).unwrap();
    let mut holder = record("p-web-1", Status::Exited);
    holder.volumes = vec!["p_data".into()];
    f.insert(&holder);
    let e = engine.apply(&f.step(Operation::RemoveVolume(data.clone()))).unwrap_err();
    assert!(e.reason().contains("p-web-1"), "the holder is named: {e}");
    StateDb::open(&f.roots.root).unwrap().delete_container(&holder.id).unwrap();
    engine.apply(&f.step(Operation::RemoveVolume(data))).unwrap();
}

#[test]
fn dependencies_are_ready_only_as_their_condition_says() {
    let f = Fixture::new();
    let mut job = record("p-job-1", Status::Exited);
    job.exit_code = Some(3);
    f.insert(&job);
    let engine = f.engine();
    let ready = |service: &str, condition| Readiness { service: service.into(), condition, required: true };
    let e = engine.wait_ready(&ready("job", Condition::ServiceCompletedSuccessfully)).unwrap_err();
    assert!(matches!(&e, StepError::Dependency(m) if m.contains("didn't complete successfully: exit 3")), "{e}");
    // Started is enough for `service_started`, whatever the exit code.
    engine.wait_ready(&ready("job", Condition::ServiceStarted)).unwrap();

    // An unhealthy dependency fails a `service_healthy` wait at once, naming the container.
    let mut db = record("p-db-1", Status::Exited);
    db.exit_code = Some(0);
    f.insert(&db);
    let e = engine.wait_ready(&ready("db", Condition::ServiceHealthy)).unwrap_err();
    assert!(matches!(&e, StepError::Dependency(m) if m.contains("container p-db-1 exited (0)")), "{e}");
}

#[test]
fn containers_leaving_for_good_are_never_waited_on() {
    let f = Fixture::new();
    let mut gone = record("p-job-2", Status::Exited);
    gone.number = 2;
    gone.exit_code = Some(1);
    f.insert(&gone);
    let mut stays = record("p-job-1", Status::Exited);
    stays.exit_code = Some(0);
    f.insert(&stays);
    let mut plan = crate::plan::Plan::default();
    let target =
        crate::plan::ContainerTarget { service: "job".into(), number: 2, name: gone.name.clone(), one_off: false };
    plan.add(Operation::RemoveContainer { target, anonymous_volumes: false, leaving: true }, "scale down to 1", vec![]);
    let engine = f.engine().leaving_with(&plan);
    let ready = Readiness { service: "job".into(), condition: Condition::ServiceCompletedSuccessfully, required: true };
    engine.wait_ready(&ready).expect("only the replica that stays counts");
}

#[test]
fn repair_takes_back_an_interrupted_containers_leases_and_those_of_containers_gone() {
    let f = Fixture::new();
    let engine = f.engine();
    engine.apply(&f.step(Operation::CreateNetwork(Resource { key: "front".into(), name: "p_front".into() }))).unwrap();
    let db = StateDb::open(&f.roots.root).unwrap();
    let lease = |owner: &str, addr: &str| berth_network::ipam::Lease {
        network: "p_front".into(),
        owner: owner.into(),
        addr: addr.parse().unwrap(),
    };
    f.insert(&record("p-web-1", Status::Running));
    db.put_lease(&lease("p-web-1", "172.30.0.2")).unwrap();
    // An `up` killed while it made p-web-2, and a container whose row went without its leases.
    db.add_intent("p", "web", "p-web-2").unwrap();
    db.put_lease(&lease("p-web-2", "172.30.0.3")).unwrap();
    db.put_lease(&lease("p-old-1", "172.30.0.4")).unwrap();
    engine.reclaim_interrupted().unwrap();
    assert_eq!(db.all_leases().unwrap(), vec![lease("p-web-1", "172.30.0.2")]);
    assert!(db.intents("p").unwrap().is_empty());
}
