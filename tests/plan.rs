//! Plan snapshots: `reconcile` for `up` and `down` in many situations, as the text
//! `berth up --dry-run` prints. Pure; needs no root.

use berth::plan::down::{self, DownOptions};
use berth::plan::hash::{config_hash, hashed_config};
use berth::plan::up::{self, PlanError, UpOptions};
use berth::plan::{Observed, ObservedContainer, Status};
use berth_compose::Project;

const STACK: &str = r#"
name: demo
services:
  db:
    image: busybox:db
    volumes: ["data:/data"]
    environment: {FOO: "1"}
    healthcheck: {test: ["CMD", "true"], interval: 1s}
  app:
    image: busybox:app
    depends_on:
      db: {condition: service_healthy}
  web:
    image: busybox:app
    ports: ["8080:80"]
    depends_on: [app]
volumes:
  data:
"#;

fn project(yaml: &str) -> Project {
    berth_compose::load_str(yaml, &std::env::temp_dir()).expect("valid").project
}

/// Everything of `p` exists and runs, as created from `p`.
fn converged(p: &Project) -> Observed {
    let mut o = Observed::default();
    for (name, svc) in &p.services {
        for n in 1..=svc.replicas() as u32 {
            o.containers.push(container(p, name, n, Status::Running));
        }
        o.images.insert(svc.image_name(p), format!("sha256:{}", svc.image_name(p)));
    }
    o.networks.extend(p.networks.values().filter_map(|n| n.name.clone()));
    o.volumes.extend(p.volumes.values().filter_map(|v| v.name.clone()));
    o
}

fn container(p: &Project, service: &str, number: u32, status: Status) -> ObservedContainer {
    let svc = &p.services[service];
    ObservedContainer {
        name: p.container_name(svc, number),
        key: None,
        service: service.to_string(),
        number,
        one_off: false,
        config_hash: config_hash(svc),
        config: Some(hashed_config(svc)),
        image_digest: Some(format!("sha256:{}", svc.image_name(p))),
        status,
        broken: false,
    }
}

fn up_text(p: &Project, o: &Observed, opts: &UpOptions) -> String {
    let plan = up::reconcile(p, o, opts).expect("plan");
    let text = plan.to_string();
    if text.is_empty() {
        "(nothing to do)\n".into()
    } else {
        text
    }
}

#[test]
fn fresh_project() {
    let p = project(STACK);
    insta::assert_snapshot!(up_text(&p, &Observed::default(), &UpOptions::default()));
}

#[test]
fn converged_project_has_nothing_to_do() {
    let p = project(STACK);
    assert_eq!(up_text(&p, &converged(&p), &UpOptions::default()), "(nothing to do)\n");
}

#[test]
fn changed_environment_recreates_and_says_why() {
    let old = project(STACK);
    let new = project(&STACK.replace("FOO: \"1\"", "FOO: \"2\", BAR: x"));
    insta::assert_snapshot!(up_text(&new, &converged(&old), &UpOptions::default()));
}

#[test]
fn changed_image_recreates() {
    let p = project(STACK);
    let mut o = converged(&p);
    o.images.insert("busybox:db".into(), "sha256:newer".into());
    insta::assert_snapshot!(up_text(&p, &o, &UpOptions::default()));
}

#[test]
fn always_recreate_deps_recreates_dependents() {
    let old = project(STACK);
    let new = project(&STACK.replace("FOO: \"1\"", "FOO: \"2\""));
    let opts = UpOptions { always_recreate_deps: true, ..UpOptions::default() };
    insta::assert_snapshot!(up_text(&new, &converged(&old), &opts));
}

#[test]
fn force_and_no_recreate() {
    let old = project(STACK);
    let new = project(&STACK.replace("FOO: \"1\"", "FOO: \"2\""));
    let forced =
        UpOptions { services: vec!["app".into()], no_deps: true, force_recreate: true, ..UpOptions::default() };
    insta::assert_snapshot!("forced_app_only", up_text(&new, &converged(&old), &forced));
    let keep = UpOptions { no_recreate: true, ..UpOptions::default() };
    assert_eq!(up_text(&new, &converged(&old), &keep), "(nothing to do)\n");
    let both = UpOptions { no_recreate: true, force_recreate: true, ..UpOptions::default() };
    assert_eq!(up::reconcile(&new, &converged(&old), &both), Err(PlanError::Conflict("--force-recreate")));
}

#[test]
fn stopped_containers_are_started_in_dependency_order() {
    let p = project(STACK);
    let mut o = converged(&p);
    for c in &mut o.containers {
        c.status = Status::Exited;
    }
    insta::assert_snapshot!(up_text(&p, &o, &UpOptions::default()));
}

#[test]
fn service_selection_pulls_in_dependencies_unless_no_deps() {
    let p = project(STACK);
    let with = UpOptions { services: vec!["app".into()], ..UpOptions::default() };
    insta::assert_snapshot!("app_with_deps", up_text(&p, &Observed::default(), &with));
    let without = UpOptions { services: vec!["app".into()], no_deps: true, ..UpOptions::default() };
    insta::assert_snapshot!("app_no_deps", up_text(&p, &Observed::default(), &without));
    let bad = UpOptions { services: vec!["nope".into()], ..UpOptions::default() };
    assert_eq!(up::reconcile(&p, &Observed::default(), &bad), Err(PlanError::NoSuchService("nope".into())));
}

#[test]
fn scale_reuses_replica_numbers() {
    let p = project(STACK);
    let mut o = converged(&p);
    let three = UpOptions { scale: [("web".to_string(), 3)].into(), ..UpOptions::default() };
    insta::assert_snapshot!("scale_up_1_to_3", up_text(&p, &o, &three));
    o.containers.push(container(&p, "web", 2, Status::Running));
    o.containers.push(container(&p, "web", 3, Status::Running));
    let one = UpOptions { scale: [("web".to_string(), 1)].into(), ..UpOptions::default() };
    insta::assert_snapshot!("scale_down_3_to_1", up_text(&p, &o, &one));
    o.containers.retain(|c| !(c.service == "web" && c.number > 1));
    let two = UpOptions { scale: [("web".to_string(), 2)].into(), ..UpOptions::default() };
    let text = up_text(&p, &o, &two);
    assert!(text.contains("container demo-web-2 create (scale up to 2)"), "{text}");
}

#[test]
fn orphans_warn_or_go() {
    let p = project(STACK);
    let mut o = converged(&p);
    let mut orphan = container(&p, "web", 1, Status::Running);
    orphan.service = "old".into();
    orphan.name = "demo-old-1".into();
    o.containers.push(orphan);
    insta::assert_snapshot!("orphan_warning", up_text(&p, &o, &UpOptions::default()));
    let rm = UpOptions { remove_orphans: true, ..UpOptions::default() };
    insta::assert_snapshot!("orphan_removed", up_text(&p, &o, &rm));
}

#[test]
fn new_network_recreates_attached_containers() {
    let p = project(STACK);
    let mut o = converged(&p);
    o.networks.clear();
    insta::assert_snapshot!(up_text(&p, &o, &UpOptions::default()));
}

#[test]
fn external_resources_and_pull_policies() {
    let p = project(
        "name: demo\nservices:\n  a:\n    image: busybox\n    networks: [ext]\nnetworks:\n  ext:\n    external: true\n",
    );
    assert_eq!(
        up::reconcile(&p, &Observed::default(), &UpOptions::default()),
        Err(PlanError::ExternalNetworkMissing("ext".into()))
    );
    let p = project("name: demo\nservices:\n  a:\n    image: busybox\n    pull_policy: never\n");
    let err = up::reconcile(&p, &Observed::default(), &UpOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), "image \"busybox\" of service \"a\" is not present and its pull policy is \"never\"");
    let p = project("name: demo\nservices:\n  a:\n    image: busybox\n    pull_policy: always\n");
    let text = up_text(&p, &converged(&p), &UpOptions::default());
    assert_eq!(text, "[] #1 image busybox pull (pull policy \"always\")\n");
    // `daily`: a copy pulled an hour ago is kept, one pulled two days ago is pulled again.
    let p = project("name: demo\nservices:\n  a:\n    image: busybox\n    pull_policy: daily\n");
    let mut o = converged(&p);
    o.image_ages.insert("busybox".into(), std::time::Duration::from_secs(3600));
    assert_eq!(up_text(&p, &o, &UpOptions::default()), "(nothing to do)\n");
    o.image_ages.insert("busybox".into(), std::time::Duration::from_secs(2 * 86_400));
    let text = up_text(&p, &o, &UpOptions::default());
    assert_eq!(text, "[] #1 image busybox pull (pull policy \"daily\": the local copy is older)\n");
}

#[test]
fn down_stops_dependents_first_and_keeps_what_it_must() {
    let p = project(STACK);
    let mut o = converged(&p);
    o.containers.push(container(&p, "web", 2, Status::Exited));
    insta::assert_snapshot!("down", down::reconcile(&p, &o, &DownOptions::default()).to_string());
    insta::assert_snapshot!(
        "down_volumes",
        down::reconcile(&p, &o, &DownOptions { volumes: true, ..Default::default() }).to_string()
    );
    o.networks_in_use_elsewhere.insert("demo_default".into());
    let text = down::reconcile(&p, &o, &DownOptions::default()).to_string();
    assert!(text.contains("warning: network \"demo_default\" is kept"), "{text}");
    // `down web`: web's containers only; networks and volumes stay.
    let only = DownOptions { services: vec!["web".into()], volumes: true, ..Default::default() };
    let text = down::reconcile(&p, &o, &only).to_string();
    assert!(text.contains("container demo-web-1 remove") && text.contains("container demo-web-2 remove"), "{text}");
    assert!(!text.contains("demo-db-1") && !text.contains("network") && !text.contains(" volume "), "{text}");
}

#[test]
fn volumes_from_waits_for_the_source_container_to_be_made() {
    let p = project(
        "name: demo\nservices:\n  vault:\n    image: busybox\n    volumes: [\"/data\"]\n  app:\n    image: busybox\n    volumes_from: [\"vault:ro\"]\n",
    );
    let plan = up::reconcile(&p, &Observed::default(), &UpOptions::default()).expect("plan");
    let create = |name: &str| {
        plan.steps.iter().find(|s| s.name() == name && s.op() == berth::plan::Op::Create).expect("a create step")
    };
    assert!(create("demo-app-1").deps.contains(&create("demo-vault-1").id), "{plan}");
}

#[test]
fn images_with_a_build_section_are_built_not_pulled() {
    let p = project(
        "name: b\nservices:\n  app:\n    build: .\n  named:\n    image: me/named:1\n    build: .\n    pull_policy: build\n  pulled:\n    image: busybox:1\n",
    );
    let fresh = up_text(&p, &Observed::default(), &UpOptions::default());
    assert!(fresh.contains("image b-app build (not present)"), "{fresh}");
    assert!(fresh.contains("image me/named:1 build (pull policy \"build\")"), "{fresh}");
    assert!(fresh.contains("image busybox:1 pull (not present)"), "{fresh}");
    let o = converged(&p);
    let again = up_text(&p, &o, &UpOptions::default());
    assert!(!again.contains("b-app build"), "a present image is not built again: {again}");
    assert!(again.contains("me/named:1 build"), "pull_policy: build always builds: {again}");
    let forced = up_text(&p, &o, &UpOptions { build: true, ..UpOptions::default() });
    assert!(forced.contains("image b-app build (up --build)"), "{forced}");
    assert_eq!(up_text(&p, &o, &UpOptions { no_build: true, ..UpOptions::default() }), "(nothing to do)\n");
    let err = up::reconcile(&p, &Observed::default(), &UpOptions { no_build: true, ..UpOptions::default() });
    assert!(matches!(err, Err(PlanError::NotBuilt { .. })), "{err:?}");
    let plan = up::reconcile(&p, &Observed::default(), &UpOptions::default()).unwrap();
    assert_eq!(plan.builds().steps.len(), 2, "the builds alone, to run before planning again");
}

const ROLLING: &str = r#"
name: demo
services:
  api:
    image: busybox:api
    environment: {VERSION: "1"}
    ports: ["8080:80"]
    deploy:
      replicas: 3
      update_config: {order: start-first, parallelism: 2, delay: 1s, monitor: 2s, failure_action: rollback}
  web:
    image: busybox:web
    depends_on: [api]
"#;

#[test]
fn start_first_replaces_beside_the_old_containers_in_groups() {
    let old = project(ROLLING);
    let new = project(&ROLLING.replace("VERSION: \"1\"", "VERSION: \"2\""));
    insta::assert_snapshot!(up_text(&new, &converged(&old), &UpOptions::default()));
}

#[test]
fn start_first_does_not_apply_to_stopped_containers_or_no_start() {
    let old = project(ROLLING);
    let new = project(&ROLLING.replace("VERSION: \"1\"", "VERSION: \"2\""));
    let mut o = converged(&old);
    o.containers.retain(|c| c.service == "api" && c.number == 1);
    o.containers[0].status = Status::Exited;
    let text = up_text(&new, &o, &UpOptions { services: vec!["api".into()], no_deps: true, ..Default::default() });
    assert!(!text.contains("-next"), "{text}");
    let o = converged(&old);
    let opts = UpOptions { no_start: true, ..Default::default() };
    assert!(!up_text(&new, &o, &opts).contains("-next"));
}

#[test]
fn an_interrupted_start_first_replacement_is_finished_or_undone() {
    let p = project(ROLLING);
    let mut o = converged(&p);
    // Replica 1: the successor took over but never got the name; replica 2: both are there.
    let mut next1 = container(&p, "api", 1, Status::Running);
    next1.name = "demo-api-1-next".into();
    let mut next2 = container(&p, "api", 2, Status::Running);
    next2.name = "demo-api-2-next".into();
    o.containers.retain(|c| c.name != "demo-api-1");
    o.containers.push(next1);
    o.containers.push(next2);
    insta::assert_snapshot!(up_text(&p, &o, &UpOptions::default()));
}

#[test]
fn networks_and_ports_of_running_containers_change_in_place() {
    let before = project(STACK);
    let mut o = converged(&before);
    let after = STACK.replace(
        "    ports: [\"8080:80\"]\n",
        "    ports: [\"8081:80\", \"9000:90/udp\"]\n    networks: [default, zback]\n",
    ) + "networks:\n  zback: {}\n";
    let p = project(&after);
    o.networks.extend(p.networks.get("default").and_then(|n| n.name.clone()));
    insta::assert_snapshot!(up_text(&p, &o, &UpOptions::default()));
    // A stopped container, or another key changed with them: made anew.
    let mut stopped = o.clone();
    stopped.containers.iter_mut().filter(|c| c.service == "web").for_each(|c| c.status = Status::Exited);
    assert!(up_text(&p, &stopped, &UpOptions::default()).contains("container demo-web-1 create"));
    let p = project(&after.replace("depends_on: [app]", "depends_on: [app]\n    environment: {A: '1'}"));
    let text = up_text(&p, &o, &UpOptions::default());
    assert!(text.contains("container demo-web-1 create") && !text.contains("connect"), "{text}");
}
