//! Unit tests of the engine's decisions with the network crate's recording host and firewall,
//! the recording fake runtime (`container::testing`), a state root in a temporary directory and
//! rows written straight into its database: no root, no kernel objects, milliseconds.

use berth_network::nat::RecordingFirewall;
use berth_network::RecordingHost;

use super::*;
use crate::container::testing::FakeDriver;
use crate::events::Recorder;
use crate::plan::{Operation, Resource};
use crate::runtime::testing::Call;
use crate::state::Status;
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
    depends_on: [db]
  proxy:
    image: busybox
    network_mode: none
    depends_on:
      web: {condition: service_started}
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
    driver: FakeDriver,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots { root: dir.path().join("root"), run: dir.path().join("run") };
        let project = berth_compose::load_str(PROJECT, dir.path()).expect("valid").project;
        let (host, firewall) = (RecordingHost::default(), RecordingFirewall::default());
        let driver = FakeDriver::new(&roots);
        Fixture { _dir: dir, roots, project, events: Recorder::default(), host, firewall, driver }
    }

    fn engine(&self) -> StackEngine<'_> {
        StackEngine::new(&self.project, self.roots.clone(), &self.events)
            .unwrap()
            .with_network(&self.host, &self.firewall)
            .with_driver(&self.driver)
    }

    fn step(&self, operation: Operation) -> Step {
        Step { id: 1, deps: vec![], operation, cause: "test".into() }
    }

    fn insert(&self, rec: &crate::state::ContainerRecord) {
        StateDb::open(&self.roots.root).unwrap().insert_container(rec).unwrap();
    }

    /// A created container of `service` (`p-SERVICE-1`) that stops on SIGTERM.
    fn created(&self, service: &str) -> crate::state::ContainerRecord {
        let mut rec = record(&format!("p-{service}-1"), Status::Created);
        rec.config.stop_signal = "SIGTERM".into();
        rec.config.stop_grace_secs = 10.0;
        self.insert(&rec);
        rec
    }

    fn row(&self, rec: &crate::state::ContainerRecord) -> crate::state::ContainerRecord {
        StateDb::open(&self.roots.root).unwrap().container(&rec.id).unwrap().expect("row")
    }

    /// `up`'s start steps for `services`, each after the start of the one before.
    fn start_plan(&self, services: &[&str]) -> crate::plan::Plan {
        let mut plan = crate::plan::Plan::default();
        let mut before = vec![];
        for s in services {
            let target = crate::plan::ContainerTarget {
                service: s.to_string(),
                number: 1,
                name: format!("p-{s}-1"),
                one_off: false,
            };
            before = vec![plan.add(Operation::StartContainer(target), "test", before)];
        }
        plan
    }

    fn run(&self, plan: &crate::plan::Plan) -> crate::execute::Report {
        let readiness = crate::execute::readiness(&self.project);
        crate::execute::run(plan, &self.engine(), &readiness, 4, &self.events)
    }

    /// The containers the runtime was asked to create, in order.
    fn created_in_runtime(&self) -> Vec<String> {
        let names = |id: &str| id.trim_start_matches("id-").to_string();
        self.driver
            .runtime
            .calls()
            .iter()
            .filter_map(|c| match c {
                Call::Create(id) => Some(names(id)),
                _ => None,
            })
            .collect()
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

#[test]
fn a_plan_starts_containers_in_dependency_order() {
    let f = Fixture::new();
    let recs: Vec<_> = ["db", "web", "proxy"].map(|s| f.created(s)).into_iter().collect();
    let report = f.run(&f.start_plan(&["db", "web", "proxy"]));
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.done, [1, 2, 3]);
    assert_eq!(f.created_in_runtime(), ["p-db-1", "p-web-1", "p-proxy-1"]);
    for r in &recs {
        assert_eq!(f.row(r).status, Status::Running, "{}", r.name);
    }
}

#[test]
fn a_start_that_fails_is_a_typed_step_error_and_its_dependents_never_start() {
    let f = Fixture::new();
    let (db, web, proxy) = (f.created("db"), f.created("web"), f.created("proxy"));
    f.driver.runtime.fail_start(&db.id, "OCI runtime error: no space left on device");
    let report = f.run(&f.start_plan(&["db", "web", "proxy"]));
    assert_eq!(report.done, Vec::<usize>::new());
    let [(1, StepError::Failed(reason))] = report.failed.as_slice() else { panic!("{report:?}") };
    assert!(reason.contains("cannot start `p-db-1`") && reason.contains("no space left on device"), "{reason}");
    assert_eq!(report.skipped, [2, 3], "what waits on it is skipped");
    assert_eq!(f.created_in_runtime(), ["p-db-1"], "nothing else reached the runtime");
    assert_eq!(f.driver.runtime.entry(&db.id), None, "the failed start was deleted again");
    for r in [&db, &web, &proxy] {
        assert_eq!(f.row(r).status, Status::Created, "{}", r.name);
    }
}

#[test]
fn a_dependent_waits_for_a_dependency_that_exited_and_fails_when_it_must_complete() {
    let f = Fixture::new();
    let (job, web) = (f.created("job"), f.created("web"));
    // `web` needs `job` started only; a job that ran and exited counts as started.
    f.run(&f.start_plan(&["job"]));
    f.driver.runtime.exit(&job.id, 4);
    f.driver.settle();
    let engine = f.engine();
    let ready = |condition| Readiness { service: "job".into(), condition, required: true };
    engine.wait_ready(&ready(Condition::ServiceStarted)).unwrap();
    let e = engine.wait_ready(&ready(Condition::ServiceCompletedSuccessfully)).unwrap_err();
    assert!(matches!(&e, StepError::Dependency(m) if m.contains("exit 4")), "{e}");
    assert_eq!(f.row(&web).status, Status::Created);
}

#[test]
fn stop_and_remove_steps_go_through_the_runtime() {
    let f = Fixture::new();
    let db = f.created("db");
    f.run(&f.start_plan(&["db"]));
    let target =
        crate::plan::ContainerTarget { service: "db".into(), number: 1, name: db.name.clone(), one_off: false };
    let engine = f.engine().stop_timeout(Some(Duration::from_secs(3)));
    engine.apply(&f.step(Operation::StopContainer(target.clone()))).unwrap();
    assert!(f.driver.runtime.calls().contains(&Call::Kill(db.id.clone(), nix::sys::signal::Signal::SIGTERM, false)));
    assert_eq!(f.row(&db).exit_code, Some(143));

    // A running container is removed with force: SIGKILL at once, then the row goes.
    f.run(&f.start_plan(&["db"]));
    let remove = Operation::RemoveContainer { target, anonymous_volumes: true, leaving: true };
    engine.apply(&f.step(remove)).unwrap();
    assert_eq!(
        f.driver
            .runtime
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Kill(_, s, true) if *s == nix::sys::signal::Signal::SIGKILL))
            .count(),
        1
    );
    assert!(StateDb::open(&f.roots.root).unwrap().container(&db.id).unwrap().is_none());
    assert_eq!(f.driver.runtime.entry(&db.id), None);
}

#[test]
fn a_running_container_joins_and_leaves_a_network_in_place() {
    use crate::plan::hash::{config_hash, hashed_config};
    use crate::supervise::spec::{DnsSpec, SuperviseSpec};
    let mut f = Fixture::new();
    let before = f.project.clone();
    let joined = PROJECT
        .replace("networks: [front]", "networks: [front, zback]")
        .replace("  front: {}\n", "  front: {}\n  zback: {}\n");
    f.project = berth_compose::load_str(&joined, f._dir.path()).expect("valid").project;
    let mut rec = record("p-web-1", Status::Running);
    rec.config.service = hashed_config(&before.services["web"]);
    let front = ("p_front".to_string(), vec!["10.9.0.2".parse().unwrap()], vec![], false);
    let dns = DnsSpec { service: "web".into(), endpoints: vec![front], ..Default::default() };
    rec.config.supervise = Some(SuperviseSpec { dns: Some(dns), ..Default::default() });
    f.insert(&rec);
    let target =
        crate::plan::ContainerTarget { service: "web".into(), number: 1, name: "p-web-1".into(), one_off: false };
    let zback = Resource { key: "zback".into(), name: "p_zback".into() };
    let connect = Operation::ConnectNetwork { target: target.clone(), network: zback.clone() };
    f.engine().apply(&f.step(connect.clone())).unwrap();
    let attaches = |f: &Fixture| f.host.calls().into_iter().filter(|c| c.starts_with("attach ")).collect::<Vec<_>>();
    let attached = attaches(&f);
    assert_eq!(attached.len(), 1, "{attached:?}");
    assert!(attached[0].contains(" eth1 "), "the interface after front's eth0: {attached:?}");
    let row = f.row(&rec);
    let endpoints = &row.config.supervise.as_ref().unwrap().dns.as_ref().unwrap().endpoints;
    assert!(endpoints.iter().any(|e| e.0 == "p_zback" && e.1.len() == 1), "{endpoints:?}");
    assert_eq!(row.config_hash, config_hash(&f.project.services["web"]), "the new definition is recorded");
    let said = StateDb::open(&f.roots.root).unwrap().events_after("p", 0).unwrap();
    assert!(said.iter().any(|e| e.action == "connect" && e.name == "p-web-1"), "{said:?}");
    // Connected already (a change cut short and planned again): nothing more is attached.
    f.engine().apply(&f.step(connect)).unwrap();
    assert_eq!(attaches(&f).len(), 1);
    let leases = || StateDb::open(&f.roots.root).unwrap().all_leases().unwrap();
    assert!(leases().iter().any(|l| l.network == "p_zback" && l.owner == "p-web-1"));

    f.project = before;
    let disconnect = Operation::DisconnectNetwork { target, network: zback };
    f.engine().apply(&f.step(disconnect)).unwrap();
    assert!(f.host.calls().iter().any(|c| c.starts_with("detach ") && c.ends_with(" eth1")), "{:?}", f.host.calls());
    assert!(!leases().iter().any(|l| l.network == "p_zback"), "the lease went");
    let row = f.row(&rec);
    assert_eq!(row.config_hash, config_hash(&f.project.services["web"]));
}
