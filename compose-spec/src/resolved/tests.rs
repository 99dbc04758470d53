use std::path::Path;
use std::time::Duration;

use super::*;

const MIN: Duration = Duration::from_secs(60);

fn load(services: &str) -> crate::Result<crate::Loaded> {
    let yaml = format!("name: t\nservices:\n  db:\n    image: busybox\n  web:\n    image: busybox\n{services}");
    crate::load_str(&yaml, Path::new("/nonexistent"))
}

/// The `web` service resolved, from the lines of its body.
fn web(body: &str) -> ResolvedService {
    let loaded = load(body).unwrap_or_else(|e| panic!("{body}: {e}"));
    ResolvedService::new(&loaded.project.services["web"]).unwrap()
}

/// The load error's `line:col: path` and message.
fn error(body: &str) -> (String, String) {
    let e = load(body).expect_err(body);
    let span = e.span.as_ref().map(|s| format!("{}:{}", s.line, s.col)).unwrap_or_default();
    (format!("{span}: {}", e.path.clone().unwrap_or_default()), e.message)
}

#[test]
fn nothing_written_resolves_to_the_defaults() {
    let r = web("");
    assert_eq!(r, ResolvedService::default());
    assert_eq!(r.pull_policy, PullPolicy::Missing);
    assert_eq!(r.restart.condition, RestartCondition::Never);
}

#[test]
fn namespace_modes() {
    use NamespaceMode::*;
    let cases = [
        ("network_mode: none", None),
        ("network_mode: host", Host),
        ("network_mode: bridge", Network("bridge".into())),
        ("network_mode: service:db", Service("db".into())),
        ("network_mode: container:c1", Container("c1".into())),
        ("ipc: none", None),
        ("ipc: private", Private),
        ("ipc: shareable", Shareable),
        ("ipc: host", Host),
        ("ipc: service:db", Service("db".into())),
        ("pid: host", Host),
        ("pid: container:c1", Container("c1".into())),
        ("uts: host", Host),
        ("uts: service:db", Service("db".into())),
        ("cgroup: host", Host),
        ("cgroup: private", Private),
    ];
    for (line, want) in cases {
        let r = web(&format!("    {line}\n"));
        let got = [r.network_mode, r.ipc, r.pid, r.uts, r.cgroup].into_iter().flatten().next();
        assert_eq!(got, Some(want), "{line}");
    }
    assert_eq!(web("    ipc: \"\"\n").ipc, Option::None, "an empty value is no value");
    assert_eq!(NamespaceMode::Service("db".into()).service(), Some("db"));
    assert_eq!(NamespaceMode::Container("db".into()).service(), Option::None);
}

#[test]
fn volumes_from_entries() {
    let r = web("    volumes_from: [db, \"service:db:ro\", \"container:other-1:rw\", \"container:x:ro\"]\n");
    let v = &r.volumes_from;
    assert_eq!(v[0], VolumesFrom { source: VolumesFromSource::Service("db".into()), read_only: false });
    assert_eq!(v[1], VolumesFrom { source: VolumesFromSource::Service("db".into()), read_only: true });
    assert_eq!(v[2], VolumesFrom { source: VolumesFromSource::Container("other-1".into()), read_only: false });
    assert!(v[3].read_only);
    assert_eq!((v[0].service(), v[2].service()), (Some("db"), Option::None));
}

#[test]
fn restart_policies() {
    let policy = |condition, max_attempts| RestartPolicy { condition, max_attempts, delay: None, window: None };
    for (value, want) in [
        ("no", policy(RestartCondition::Never, None)),
        ("always", policy(RestartCondition::Always, None)),
        ("unless-stopped", policy(RestartCondition::UnlessStopped, None)),
        ("on-failure", policy(RestartCondition::OnFailure, None)),
        ("on-failure:3", policy(RestartCondition::OnFailure, Some(3))),
    ] {
        assert_eq!(web(&format!("    restart: {value}\n")).restart, want, "{value}");
    }
    let deploy = |rp: &str| web(&format!("    restart: always\n    deploy:\n      restart_policy: {rp}\n")).restart;
    assert_eq!(
        deploy("{condition: on-failure, delay: 2s, max_attempts: 5, window: 1m}"),
        RestartPolicy {
            condition: RestartCondition::OnFailure,
            max_attempts: Some(5),
            delay: Some(Duration::from_secs(2)),
            window: Some(MIN),
        },
        "deploy.restart_policy wins over restart:"
    );
    assert_eq!(deploy("{condition: none}").condition, RestartCondition::Never);
    assert_eq!(deploy("{condition: any}").condition, RestartCondition::Always);
    assert_eq!(deploy("{condition: always}").condition, RestartCondition::Always);
    assert_eq!(deploy("{condition: \"no\"}").condition, RestartCondition::Never);
    assert_eq!(deploy("{condition: unless-stopped}").condition, RestartCondition::UnlessStopped);
    assert_eq!(deploy("{max_attempts: 1}").condition, RestartCondition::Always, "`any` is the default");
}

#[test]
fn pull_policies() {
    let day = 24 * 60 * MIN;
    for (value, want, age) in [
        ("always", PullPolicy::Always, None),
        ("never", PullPolicy::Never, None),
        ("missing", PullPolicy::Missing, None),
        ("if_not_present", PullPolicy::Missing, None),
        ("build", PullPolicy::Build, None),
        ("daily", PullPolicy::Daily, Some(day)),
        ("weekly", PullPolicy::Weekly, Some(7 * day)),
        ("every_1h30m", PullPolicy::Every(90 * MIN), Some(90 * MIN)),
        ("every_2d", PullPolicy::Every(2 * day), Some(2 * day)),
        ("every_1w2d12h", PullPolicy::Every(9 * day + 12 * 60 * MIN), Some(9 * day + 12 * 60 * MIN)),
        ("every_90", PullPolicy::Every(Duration::from_secs(90)), Some(Duration::from_secs(90))),
    ] {
        let got = web(&format!("    pull_policy: {value}\n")).pull_policy;
        assert_eq!((got, got.max_age()), (want, age), "{value}");
    }
    assert_eq!(PullPolicy::Every(90 * MIN).to_string(), "every_1h30m0s");
    assert_eq!(PullPolicy::parse("daily").unwrap().to_string(), "daily");
    for bad in ["sometimes", "every_", "every_5x", "every_0s", "every_d", "Always"] {
        assert!(PullPolicy::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn health_tests_and_timings() {
    let check = |body: &str| web(&format!("    healthcheck:\n{body}")).healthcheck.unwrap();
    let h = check("      test: [CMD, curl, -f, localhost]\n      interval: 5s\n      retries: 2\n");
    assert_eq!(h.test, HealthTest::Exec(vec!["curl".into(), "-f".into(), "localhost".into()]));
    assert_eq!((h.interval, h.timeout, h.retries), (Some(Duration::from_secs(5)), None, Some(2)));
    assert_eq!(check("      test: curl localhost\n").test, HealthTest::Shell("curl localhost".into()));
    assert_eq!(check("      test: [CMD-SHELL, curl localhost]\n").test, HealthTest::Shell("curl localhost".into()));
    assert_eq!(check("      test: [NONE]\n").test, HealthTest::None);
    assert_eq!(check("      test: [CMD, \"true\"]\n      disable: true\n").test, HealthTest::None);
    let inherit = check("      interval: 1m\n      start_period: 10s\n      start_interval: 1s\n");
    assert_eq!(inherit.test, HealthTest::Inherit);
    assert_eq!(
        (inherit.interval, inherit.start_period, inherit.start_interval),
        (Some(MIN), Some(Duration::from_secs(10)), Some(Duration::from_secs(1)))
    );
    assert_eq!(web("").healthcheck, Option::None);
}

#[test]
fn health_tests_keep_their_tagged_form() {
    for test in [
        HealthTest::None,
        HealthTest::Inherit,
        HealthTest::Exec(vec!["a".into(), "b c".into()]),
        HealthTest::Shell("a && b".into()),
    ] {
        let json = serde_json::to_value(&test).unwrap();
        assert_eq!(serde_json::from_value::<HealthTest>(json.clone()).unwrap(), test, "{json}");
    }
    assert_eq!(serde_json::to_value(HealthTest::Shell("x".into())).unwrap(), serde_json::json!(["CMD-SHELL", "x"]));
    assert!(serde_json::from_value::<HealthTest>(serde_json::json!(["RUN", "x"])).is_err());
}

#[test]
fn published_ports() {
    let r = web("    ports: [\"8080:80\", \"127.0.0.1:53:53/udp\", \"9000-9010:90/sctp\", \"443\"]\n");
    let p = &r.ports;
    assert_eq!(
        p[0],
        PublishedPort { host_ip: None, host_ports: Some((8080, 8080)), target: 80, protocol: Protocol::Tcp }
    );
    assert_eq!((p[1].host_ip, p[1].protocol), (Some([127, 0, 0, 1].into()), Protocol::Udp));
    assert_eq!((p[2].host_ports, p[2].protocol), (Some((9000, 9010)), Protocol::Sctp));
    assert_eq!((p[3].host_ports, p[3].target), (None, 443));
    assert_eq!(Protocol::Sctp.to_string(), "sctp");
    assert_eq!(serde_json::to_value(Protocol::Udp).unwrap(), "udp");
}

#[test]
fn errors_point_at_the_key_or_value_in_the_file() {
    let cases = [
        ("    restart: sometimes\n", "7:5: services.web.restart", "invalid restart policy \"sometimes\""),
        ("    restart: on-failure:x\n", "7:5: services.web.restart", "on-failure[:max-retries]"),
        (
            "    deploy: {restart_policy: {condition: often}}\n",
            "7:42: services.web.deploy.restart_policy.condition",
            "none, on-failure or any",
        ),
        ("    pull_policy: every_0s\n", "7:5: services.web.pull_policy", "invalid pull policy \"every_0s\""),
        ("    healthcheck: {test: [RUN, x]}\n", "7:19: services.web.healthcheck.test", "not \"RUN\""),
        ("    healthcheck: {test: [CMD]}\n", "7:19: services.web.healthcheck.test", "needs a command"),
        ("    ipc: shared\n", "7:10: services.web.ipc", "use none, private, shareable, host, service:NAME"),
        ("    pid: private\n", "7:10: services.web.pid", "invalid pid \"private\": use host, service:NAME"),
        ("    uts: \"service:\"\n", "7:10: services.web.uts", "no service name"),
        ("    network_mode: \"container:\"\n", "7:19: services.web.network_mode", "no container name"),
        ("    cgroup: shared\n", "7:13: services.web.cgroup", "invalid cgroup \"shared\": use host or private"),
        ("    volumes_from: [db, \"volume:db\"]\n", "7:24: services.web.volumes_from[1]", "expected `[service:|"),
        ("    volumes_from: [\"service:\"]\n", "7:20: services.web.volumes_from[0]", "no name"),
        ("    ports: [{target: 80, protocol: icmp}]\n", "7:36: services.web.ports[0].protocol", "use tcp, udp or sctp"),
        ("    ports: [{target: 80, mode: x}]\n", "7:32: services.web.ports[0].mode", "invalid port mode \"x\""),
        ("    ports: [{target: 80, host_ip: x}]\n", "7:35: services.web.ports[0].host_ip", "invalid host IP \"x\""),
        ("    ports: [{target: 80, published: \"9-8\"}]\n", "7:37: services.web.ports[0].published", "ends before"),
    ];
    for (body, at, msg) in cases {
        let (where_, message) = error(body);
        assert_eq!(where_, at, "{body}: {message}");
        assert!(message.contains(msg), "{body}: {message}");
    }
}

#[test]
fn a_service_changed_after_loading_resolves_with_its_path() {
    let mut svc = load("").unwrap().project.services["web"].clone();
    svc.restart = Some("sometimes".into());
    let e = ResolvedService::new(&svc).unwrap_err();
    assert_eq!(e.path(), "services.web.restart");
    assert!(e.to_string().starts_with("services.web.restart: invalid restart policy"), "{e}");
}

#[test]
fn references_to_other_services() {
    let yaml = "    network_mode: service:db\n    ipc: service:db\n    uts: container:x\n    volumes_from: [db, \"container:y\"]\n";
    let svc = load(yaml).unwrap().project.services["web"].clone();
    let refs = service_refs(&svc);
    assert_eq!(refs, [("network_mode", "db".to_string()), ("ipc", "db".into()), ("volumes_from", "db".into())]);
    // Normalization makes each reference a dependency, so an undefined one is found there.
    let (at, m) = error("    uts: service:nope\n");
    assert_eq!(at, "5:3: services.web.depends_on.nope");
    assert_eq!(m, "service \"web\" depends on undefined service \"nope\"");
}

#[test]
fn update_policies() {
    assert_eq!(web("").update, UpdatePolicy::default());
    let r = web(
        "    deploy:\n      update_config:\n        order: start-first\n        parallelism: 2\n        delay: 3s\n        \
         monitor: 1s\n        failure_action: rollback\n        max_failure_ratio: 0.5\n",
    );
    let want = UpdatePolicy {
        order: UpdateOrder::StartFirst,
        parallelism: 2,
        delay: Duration::from_secs(3),
        monitor: Duration::from_secs(1),
        failure_action: FailureAction::Rollback,
        max_failure_ratio: 0.5,
    };
    assert_eq!(r.update, want);
    assert_eq!(r.rollback, None);
    let r = web(
        "    deploy:\n      rollback_config:\n        order: start-first\n        parallelism: 0\n        delay: 1s\n",
    );
    let want = UpdatePolicy {
        order: UpdateOrder::StartFirst,
        parallelism: 0,
        delay: Duration::from_secs(1),
        ..UpdatePolicy::default()
    };
    assert_eq!(r.rollback, Some(want));
    let (at, message) = error("    deploy:\n      rollback_config:\n        order: sideways\n");
    assert_eq!(at, "9:16: services.web.deploy.rollback_config.order");
    assert!(message.contains("invalid order"), "{message}");
    let (at, message) = error("    deploy:\n      update_config:\n        order: sideways\n");
    assert_eq!(at, "9:16: services.web.deploy.update_config.order");
    assert_eq!(message, "invalid order \"sideways\": use start-first or stop-first");
    let (at, message) = error("    deploy:\n      update_config:\n        failure_action: shrug\n");
    assert_eq!(at, "9:25: services.web.deploy.update_config.failure_action");
    assert!(message.contains("use pause, rollback or continue"), "{message}");
    let (at, message) = error("    deploy:\n      update_config:\n        max_failure_ratio: 2\n");
    assert_eq!(at, "9:28: services.web.deploy.update_config.max_failure_ratio");
    assert_eq!(message, "invalid max_failure_ratio 2: use a share from 0 to 1");
}
