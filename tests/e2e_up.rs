//! System tests (root): Docker Compose's end-to-end scenarios for `up` and friends
//! (`docker/compose` `pkg/e2e`, see `/work/shared/conformance/docker-compose-e2e/README.md`),
//! run through the real `berth` binary with the busybox test image in place of `alpine`. Each
//! test is one upstream scenario with the same commands and expectations; health-check
//! intervals and sleeps are shortened to keep them fast.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::io::Read;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use harness::Project;

/// Runs `f` on a new project made of `services`, then `down`s it and checks the host is clean,
/// whether `f` passed or not.
fn scenario(test: &str, services: &str, f: impl FnOnce(&Project)) {
    harness::scenario(test, services, f)
}

/// stdout and stderr of a run, together.
fn combined(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Runs berth in the foreground, killing it (and failing) if it is still running after `secs`.
fn run_bounded(p: &Project, args: &[&str], secs: u64) -> Output {
    let mut child =
        p.cmd(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start berth in the foreground");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned();
            let err = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
            panic!("berth {args:?} still running after {secs}s:\n{out}{err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output { status, stdout: out_reader.join().unwrap(), stderr: err_reader.join().unwrap() }
}

/// The `State` of container `<project>-<suffix>`.
fn state(p: &Project, suffix: &str) -> String {
    p.container(&format!("{}-{suffix}", p.name))["State"].as_str().unwrap_or_default().to_string()
}

/// The `ID` of container `<project>-<suffix>`.
fn id_of(p: &Project, suffix: &str) -> String {
    p.container(&format!("{}-{suffix}", p.name))["ID"].as_str().unwrap_or_default().to_string()
}

/// The names of the service's containers (one-off ones left out), sorted, without the project
/// prefix: `["db-1", "db-2"]`.
fn replicas(p: &Project, service: &str) -> Vec<String> {
    let prefix = format!("{}-{service}-", p.name);
    let mut names: Vec<String> = p
        .ps()
        .iter()
        .filter(|c| c["Service"] == service)
        .filter_map(|c| c["Name"].as_str().and_then(|n| n.strip_prefix(&prefix)).map(str::to_string))
        .filter(|n| n.parse::<u32>().is_ok())
        .map(|n| format!("{service}-{n}"))
        .collect();
    names.sort_by_key(|n| n.rsplit('-').next().and_then(|x| x.parse::<u32>().ok()));
    names
}

/// Asserts that a run failed with exit code `code` and said `message`.
fn assert_fails_with(out: &Output, code: i32, message: &str) {
    let text = combined(out);
    assert_eq!(out.status.code(), Some(code), "exit code; output:\n{text}");
    assert!(text.contains(message), "expected {message:?} in:\n{text}");
}

const BUSYBOX: &str = "berth-test/busybox:latest";

/// A service definition block with the busybox image.
fn services(yaml: &str) -> String {
    yaml.replace("IMAGE", BUSYBOX)
}

#[test]
fn up_wait() {
    // testdata/TestUpWait
    let yaml = services(
        r#"  oneshot:
    image: IMAGE
    command: echo 'hello world'
  longrunning:
    image: IMAGE
    init: true
    depends_on:
      oneshot:
        condition: service_completed_successfully
    command: sleep infinity
"#,
    );
    scenario("upwait", &yaml, |p| {
        let out = run_bounded(p, &["up", "--wait", "-d"], 60);
        assert!(out.status.success(), "{}", combined(&out));
        assert_eq!(state(p, "longrunning-1"), "running");
        assert_eq!(state(p, "oneshot-1"), "exited");
        assert_eq!(p.container(&format!("{}-oneshot-1", p.name))["ExitCode"], 0);
    });
}

#[test]
fn up_wait_timeout() {
    // testdata/TestUpWaitTimeout
    let yaml = services(
        r#"  app:
    image: IMAGE
    init: true
    command: sleep infinity
    healthcheck:
      test: ["CMD", "false"]
      interval: 1s
      retries: 3
      start_period: 120s
"#,
    );
    scenario("upwaittimeout", &yaml, |p| {
        let out = run_bounded(p, &["up", "--wait", "--wait-timeout", "3", "-d"], 60);
        assert_fails_with(&out, 1, "application not healthy after 3s");
        assert_eq!(state(p, "app-1"), "running");
    });
}

#[test]
fn up_with_dependency_exit() {
    // testdata/TestUpWithDependencyExit
    let yaml = services(
        r#"  web:
    image: IMAGE
    init: true
    command: sleep infinity
    depends_on:
      db:
        condition: service_healthy
  db:
    image: IMAGE
    command: sh -c "exit 1"
"#,
    );
    scenario("updepexit", &yaml, |p| {
        let out = run_bounded(p, &["up", "-d"], 60);
        assert_fails_with(&out, 1, &format!("dependency failed to start: container {}-db-1 exited (1)", p.name));
        assert_eq!(state(p, "web-1"), "created");
    });
}

#[test]
fn up_service_unhealthy() {
    // testdata/TestUpServiceUnhealthy
    let yaml = services(
        r#"  fail:
    image: IMAGE
    init: true
    command: sleep infinity
    healthcheck:
      test: "false"
      interval: 1s
      retries: 3
  depends:
    image: IMAGE
    init: true
    command: sleep infinity
    depends_on:
      fail:
        condition: service_healthy
"#,
    );
    scenario("upunhealthy", &yaml, |p| {
        let out = run_bounded(p, &["up", "-d"], 60);
        assert_fails_with(&out, 1, &format!("container {}-fail-1 is unhealthy", p.name));
        assert_eq!(state(p, "depends-1"), "created");
    });
}

#[test]
fn up_exit_code_from() {
    // testdata/TestUpExitCodeFrom
    let yaml = services(
        r#"  safe:
    image: 'IMAGE'
    init: true
    command: ['/bin/sh', '-c', 'sleep infinity']  # never exiting
  failure:
    image: 'IMAGE'
    init: true
    command: ['/bin/sh', '-c', 'sleep 1 ; echo "exiting with error" ; exit 42']
  test:
    image: 'IMAGE'
    init: true
    command: ['/bin/sh', '-c', 'sleep 99999 ; echo "tests are OK"']  # very long job
    depends_on: [safe]
"#,
    );
    scenario("upexitcodefrom", &yaml, |p| {
        let out = run_bounded(p, &["up", "--exit-code-from=failure", "failure"], 60);
        assert_eq!(out.status.code(), Some(42), "{}", combined(&out));
    });
}

/// The project of TestCascadeStop and TestCascadeFail.
const CASCADE: &str = r#"  running:
    image: IMAGE
    command: sleep infinity
    init: true

  exit:
    image: IMAGE
    command: /bin/true
    depends_on:
      running:
        condition: service_started

  fail:
    image: IMAGE
    command: sh -c "return 111"
    depends_on:
      exit:
        condition: service_completed_successfully
"#;

#[test]
fn cascade_stop() {
    // testdata/TestCascadeStop
    scenario("cascadestop", &services(CASCADE), |p| {
        let out = run_bounded(p, &["up", "--abort-on-container-exit"], 60);
        let text = combined(&out);
        assert!(text.contains("exit-1 exited with code 0"), "{text}");
        // No --exit-code-from, so this is not an error.
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert_eq!(state(p, "running-1"), "exited");
    });
}

#[test]
fn cascade_fail() {
    // testdata/TestCascadeFail
    scenario("cascadefail", &services(CASCADE), |p| {
        let out = run_bounded(p, &["up", "--abort-on-container-failure"], 60);
        let text = combined(&out);
        assert!(text.contains("exit-1 exited with code 0"), "{text}");
        assert!(text.contains("fail-1 exited with code 111"), "{text}");
        assert_eq!(out.status.code(), Some(111), "{text}");
    });
}

#[test]
fn init_container() {
    // testdata/TestInitContainer
    let yaml = services(
        r#"  foo:
    image: IMAGE
    command: "echo hello"

  bar:
    image: IMAGE
    command: "echo world"
    depends_on:
      foo:
        condition: "service_completed_successfully"
"#,
    );
    scenario("initcontainer", &yaml, |p| {
        let out = run_bounded(p, &["up"], 60);
        let text = combined(&out);
        assert!(out.status.success(), "{text}");
        // Upstream: `foo-1\s+\| hello(?s:.*)bar-1\s+\| world`.
        let lines: Vec<String> = text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
        let hello = lines.iter().position(|l| l.ends_with("foo-1 | hello"));
        let world = lines.iter().position(|l| l.ends_with("bar-1 | world"));
        assert!(hello.is_some() && world.is_some() && hello < world, "hello before world:\n{text}");
    });
}

/// The project of the scale scenarios.
const SCALE: &str = r#"  back:
    image: IMAGE
    init: true
    command: sleep infinity
    depends_on:
      - db
  db:
    image: IMAGE
    init: true
    command: sleep infinity
    environment:
      - MAYBE
  front:
    image: IMAGE
    init: true
    command: sleep infinity
    deploy:
      replicas: 2
  dbadmin:
    image: IMAGE
    init: true
    command: sleep infinity
    deploy:
      replicas: 0
"#;

#[test]
fn scale_basic_cases() {
    // testdata/TestScaleBasicCases
    scenario("scalebasic", &services(SCALE), |p| {
        p.ok(&["up", "-d"]);
        assert_eq!(replicas(p, "back"), ["back-1"]);
        assert_eq!(replicas(p, "db"), ["db-1"]);
        assert_eq!(replicas(p, "front"), ["front-1", "front-2"]);
        assert!(replicas(p, "dbadmin").is_empty(), "replicas: 0 creates nothing");

        // scale up one service
        let out = p.berth(&["scale", "dbadmin=2"]);
        assert!(out.status.success(), "{}", combined(&out));
        assert_eq!(replicas(p, "dbadmin"), ["dbadmin-1", "dbadmin-2"]);
        for n in ["dbadmin-1", "dbadmin-2"] {
            assert!(combined(&out).contains(&format!("Container {}-{n}  Started", p.name)), "{}", combined(&out));
            assert_eq!(state(p, n), "running");
        }

        // scale up 2 services: the existing replicas keep running, untouched
        let kept = [id_of(p, "front-1"), id_of(p, "front-2"), id_of(p, "back-1")];
        let out = p.berth(&["scale", "front=3", "back=2"]);
        assert!(out.status.success(), "{}", combined(&out));
        assert_eq!(replicas(p, "front"), ["front-1", "front-2", "front-3"]);
        assert_eq!(replicas(p, "back"), ["back-1", "back-2"]);
        assert_eq!([id_of(p, "front-1"), id_of(p, "front-2"), id_of(p, "back-1")], kept, "not recreated");
        let text = combined(&out);
        for n in ["front-3", "back-2"] {
            assert!(text.contains(&format!("Container {}-{n}  Started", p.name)), "{text}");
        }
        assert!(p.ps().iter().all(|c| c["State"] == "running"), "{:?}", p.ps());

        // scale down one service
        p.ok(&["scale", "dbadmin=1"]);
        assert_eq!(replicas(p, "dbadmin"), ["dbadmin-1"]);
        assert_eq!(state(p, "dbadmin-1"), "running");

        // scale a service to 0
        let stdout = p.ok(&["scale", "dbadmin=0"]);
        assert_eq!(stdout, "");
        assert!(replicas(p, "dbadmin").is_empty());

        // scale down 2 services
        p.ok(&["scale", "front=2", "back=1"]);
        assert_eq!(replicas(p, "front"), ["front-1", "front-2"]);
        assert_eq!(replicas(p, "back"), ["back-1"]);
        assert_eq!(state(p, "front-1"), "running");
        assert_eq!(state(p, "front-2"), "running");
        assert_eq!(state(p, "back-1"), "running");
    });
}

#[test]
fn scale_up_and_down_preserve_container_number() {
    // testdata/TestScaleUpAndDownPreserveContainerNumber
    scenario("scalepreserve", &services(SCALE), |p| {
        p.ok(&["up", "-d", "--scale", "db=2", "db"]);
        assert_eq!(replicas(p, "db"), ["db-1", "db-2"]);
        p.ok(&["up", "-d", "--scale", "db=1", "db"]);
        assert_eq!(replicas(p, "db"), ["db-1"]);
        p.ok(&["up", "-d", "--scale", "db=2", "db"]);
        assert_eq!(replicas(p, "db"), ["db-1", "db-2"]);
    });
}

#[test]
fn scale_down_removes_obsolete() {
    // testdata/TestScaleDownRemovesObsolete
    scenario("scaleobsolete", &services(SCALE), |p| {
        p.ok(&["up", "-d", "db"]);
        assert_eq!(replicas(p, "db"), ["db-1"]);
        let out = p.cmd(&["up", "-d", "--scale", "db=2", "db"]).env("MAYBE", "value").output().unwrap();
        assert!(out.status.success(), "{}", combined(&out));
        assert_eq!(replicas(p, "db"), ["db-1", "db-2"]);
        p.ok(&["up", "-d", "--scale", "db=1", "db"]);
        assert_eq!(replicas(p, "db"), ["db-1"]);
        assert_eq!(state(p, "db-1"), "running");
    });
}

#[test]
fn remove_orphans() {
    // testdata/TestRemoveOrphans
    let yaml = services(
        r#"  orphan:
    profiles: [run]
    image: IMAGE
    command: echo hello
  test:
    image: IMAGE
    init: true
    command: sleep infinity
"#,
    );
    scenario("removeorphans", &yaml, |p| {
        std::fs::write(p.dir.path().join(".env"), "COMPOSE_REMOVE_ORPHANS=true\n").unwrap();
        let one_off = format!("{}-orphan-run-", p.name);
        p.ok(&["run", "orphan"]);
        let ps = p.ok(&["ps", "--all"]);
        assert!(ps.contains(&one_off), "{ps}");
        p.ok(&["up", "-d"]);
        let ps = p.ok(&["ps", "--all"]);
        assert!(!ps.contains(&one_off), "the exited one-off is an orphan and is removed: {ps}");
    });
}

#[test]
fn recreate_with_no_deps() {
    // testdata/TestRecreateWithNoDeps (health-check interval 2s -> 1s)
    let yaml = services(
        r#"  my-service:
    image: IMAGE
    command: sleep infinity
    init: true
    depends_on:
      dep: {condition: service_healthy}

  dep:
    image: IMAGE
    command: sleep infinity
    init: true
    healthcheck:
      test:     "/bin/true"
      interval: 1s
      timeout:  1s
      retries:  10
"#,
    );
    scenario("recreatenodeps", &yaml, |p| {
        let out = run_bounded(p, &["up", "-d", "--wait"], 60);
        assert!(out.status.success(), "{}", combined(&out));
        let (svc, dep) = (id_of(p, "my-service-1"), id_of(p, "dep-1"));
        p.ok(&["up", "-d", "--force-recreate", "--no-deps", "my-service"]);
        assert_ne!(id_of(p, "my-service-1"), svc, "my-service recreated");
        assert_eq!(id_of(p, "dep-1"), dep, "dep not recreated");
        assert_eq!(state(p, "my-service-1"), "running");
        assert_eq!(state(p, "dep-1"), "running");
    });
}

#[test]
fn start_stop_with_dependencies() {
    // testdata/TestStartStopWithDependencies
    let yaml = services(
        r#"  foo:
    image: IMAGE
    init: true
    command: sleep infinity
    depends_on:
      - bar
  bar:
    image: IMAGE
    init: true
    command: sleep infinity
"#,
    );
    scenario("startstopdeps", &yaml, |p| {
        let (foo, bar) = (format!("{}-foo-1", p.name), format!("{}-bar-1", p.name));
        let out = p.berth(&["up", "-d"]);
        let text = combined(&out);
        assert!(out.status.success(), "{text}");
        assert!(text.contains(&format!("Container {foo}  Started")), "{text}");
        assert!(text.contains(&format!("Container {bar}  Started")), "{text}");
        let ids = (id_of(p, "foo-1"), id_of(p, "bar-1"));

        // stop foo: bar keeps running
        let out = p.berth(&["stop", "foo"]);
        assert!(out.status.success(), "{}", combined(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("Container {foo}  Stopped")));
        let running = p.ok(&["ps", "--status", "running"]);
        assert!(running.contains(&bar) && !running.contains(&foo), "{running}");

        // stop all, then start foo: bar is started too
        let out = p.berth(&["stop"]);
        assert!(out.status.success(), "{}", combined(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("Container {bar}  Stopped")));
        let out = p.berth(&["start", "foo"]);
        let text = combined(&out);
        assert!(out.status.success(), "{text}");
        assert!(text.contains(&format!("Container {bar}  Started")), "{text}");
        assert!(text.contains(&format!("Container {foo}  Started")), "{text}");
        let running = p.ok(&["ps", "--status", "running"]);
        assert!(running.contains(&bar) && running.contains(&foo), "{running}");
        assert_eq!((id_of(p, "foo-1"), id_of(p, "bar-1")), ids, "nothing recreated");

        // stop bar, a dependency: only bar stops (its dependent is not stopped with it)
        let out = p.berth(&["stop", "bar"]);
        assert!(out.status.success(), "{}", combined(&out));
        let running = p.ok(&["ps", "--status", "running"]);
        assert!(running.contains(&foo) && !running.contains(&bar), "{running}");
        p.ok(&["start", "bar"]);
        let running = p.ok(&["ps", "--status", "running"]);
        assert!(running.contains(&bar) && running.contains(&foo), "{running}");
    });
}

#[test]
fn restart() {
    // testdata/TestRestart
    let yaml = services(
        r#"  app:
    image: IMAGE
    init: true
    command: ash -c "if [[ -f /tmp/restart.lock ]] ; then sleep infinity; else touch /tmp/restart.lock; fi"
"#,
    );
    scenario("restart", &yaml, |p| {
        p.ok(&["up", "-d"]);
        p.wait_for(10, "the first run to exit", || state(p, "app-1") == "exited");
        let id = id_of(p, "app-1");
        p.ok(&["restart"]);
        // Give it the same time: it must not exit now.
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(state(p, "app-1"), "running");
        assert_eq!(id_of(p, "app-1"), id, "the same container is restarted");
    });
}

#[test]
fn start_interval() {
    // testdata/TestStartInterval
    let yaml = services(
        r#"  test:
    image: IMAGE
    init: true
    command: sleep infinity
    healthcheck:
      interval: 30s
      start_period: 10s
      start_interval: 1s
      test: "/bin/true"

  error:
    image: IMAGE
    init: true
    command: sleep infinity
    healthcheck:
      interval: 30s
      start_interval: 1s
      test: "/bin/true"
"#,
    );
    scenario("startinterval", &yaml, |p| {
        let out = p.berth(&["up", "--wait", "-d", "error"]);
        assert_fails_with(&out, 1, "healthcheck.start_interval requires healthcheck.start_period to be set");
        assert!(p.ps().is_empty(), "nothing was created: {:?}", p.ps());

        // Healthy after the first 1s start interval, well before the 30s interval (upstream
        // gives up after 30s).
        let out = run_bounded(p, &["up", "--wait", "-d", "test"], 25);
        assert!(out.status.success(), "{}", combined(&out));
        assert_eq!(p.container(&format!("{}-test-1", p.name))["Health"], "healthy");
    });
}

#[test]
fn config_hash_matches_container_label() {
    // fixtures/config_hash (TestConfigHashMatchesContainerLabel)
    let yaml = services(
        r#"  with-env-file:
    image: IMAGE
    init: true
    command: ["sleep", "infinity"]
    env_file:
      - app.env
  plain:
    image: IMAGE
    init: true
    command: ["sleep", "infinity"]
"#,
    );
    scenario("confighash", &yaml, |p| {
        std::fs::write(p.dir.path().join("app.env"), "EXAMPLE=value\n").unwrap();
        p.ok(&["up", "-d"]);
        for svc in ["with-env-file", "plain"] {
            let line = p.ok(&["config", "--hash", svc]);
            let (name, hash) = line.trim().split_once(' ').unwrap();
            assert_eq!(name, svc);
            let c = p.container(&format!("{}-{svc}-1", p.name));
            assert_eq!(c["Labels"]["com.docker.compose.config-hash"], hash, "{c}");
        }
        let all = p.ok(&["config", "--hash", "*"]);
        assert_eq!(all.lines().map(|l| l.split(' ').next().unwrap()).collect::<Vec<_>>(), ["plain", "with-env-file"]);
    });
}

#[test]
fn up_dependencies_not_stopped() {
    // fixtures/ups-deps-stop (TestUpDependenciesNotStopped): an attached `up app`, then Ctrl-C:
    // exit 130, app stopped, its dependency and an unrelated container still running.
    let yaml = services(
        r#"  dependency:
    image: IMAGE
    init: true
    command: /bin/sh -c 'while true; do echo "hello dependency"; sleep 1; done'
  app:
    depends_on: ['dependency']
    image: IMAGE
    init: true
    command: /bin/sh -c 'while true; do echo "hello app"; sleep 1; done'
"#,
    );
    scenario("upsdepsstop", &yaml, |p| {
        std::fs::write(
            p.dir.path().join("orphan.yaml"),
            services("services:\n  orphan:\n    image: IMAGE\n    init: true\n    command: [sleep, infinity]\n"),
        )
        .unwrap();
        let orphan = |args: &[&str]| {
            let mut full = vec!["-p", p.name.as_str(), "-f", "orphan.yaml"];
            full.extend_from_slice(args);
            p.cmd(&full).output().unwrap()
        };
        assert!(orphan(&["up", "-d"]).status.success());
        let mut child = p.cmd(&["up", "app"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = stdout.read_to_end(&mut b);
            String::from_utf8_lossy(&b).into_owned()
        });
        p.wait_for(30, "app logging", || p.ps().iter().any(|c| c["Service"] == "app" && c["State"] == "running"));
        std::thread::sleep(Duration::from_millis(1500));
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "up did not stop after Ctrl-C");
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = reader.join().unwrap();
        assert_eq!(status.code(), Some(130), "{out}");
        assert!(out.contains("app-1 | hello app"), "attached to app: {out}");
        assert!(!out.contains("hello dependency"), "not attached to the dependency: {out}");
        assert_eq!(state(p, "app-1"), "exited");
        assert_eq!(state(p, "dependency-1"), "running");
        assert_eq!(state(p, "orphan-1"), "running");
        assert!(orphan(&["down"]).status.success());
    });
}

#[test]
fn down_timeout() {
    // `down -t N` stops with N seconds' grace instead of the service's stop_grace_period: a
    // service that ignores SIGTERM and asks for an hour is killed after one second.
    let yaml = services(
        r#"  stubborn:
    image: IMAGE
    command: [sh, -c, "trap '' TERM; while true; do sleep 1; done"]
    stop_grace_period: 1h
"#,
    );
    scenario("downtimeout", &yaml, |p| {
        p.ok(&["up", "-d"]);
        // `up -t` bounds the stop of a container it replaces the same way.
        p.ok(&["up", "-d", "--force-recreate", "-t", "1"]);
        let out = p.berth(&["down", "-t", "1"]);
        assert!(out.status.success(), "{}", combined(&out));
        assert!(p.ps().is_empty());
    });
}

#[test]
fn attach_false_keeps_a_service_out_of_the_foreground() {
    let yaml = services(
        r#"  shown:
    image: IMAGE
    command: [sh, -c, "sleep 1; echo shown-line"]
  hidden:
    image: IMAGE
    attach: false
    command: [sh, -c, "echo hidden-line"]
"#,
    );
    scenario("attachfalse", &yaml, |p| {
        let out = p.berth(&["up", "--abort-on-container-exit"]);
        let text = combined(&out);
        assert!(text.contains("shown-line"), "{text}");
        assert!(!text.contains("hidden-line"), "{text}");
        // Named with --attach, it is shown after all.
        let out = p.berth(&["up", "--attach", "hidden", "--attach", "shown", "--abort-on-container-exit"]);
        assert!(combined(&out).contains("hidden-line"), "{}", combined(&out));
    });
}

#[test]
fn project_by_name_from_an_empty_directory() {
    // `-p NAME down` (and ps, stop, ...) where there is no compose file: berth uses the files the
    // project was last used with.
    let yaml = services("  app:\n    image: IMAGE\n    init: true\n    command: [sleep, \"300\"]\n");
    scenario("byname", &yaml, |p| {
        p.ok(&["up", "-d"]);
        let empty = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| p.cmd(args).current_dir(empty.path()).output().unwrap();
        let ps = run(&["-p", &p.name, "ps", "-q"]);
        assert!(ps.status.success(), "{}", combined(&ps));
        assert_eq!(String::from_utf8_lossy(&ps.stdout).lines().count(), 1);
        let down = run(&["-p", &p.name, "down"]);
        assert!(down.status.success(), "{}", combined(&down));
        assert!(p.ps().is_empty());
        assert!(p.bridges().is_empty(), "the project's network went too");
        // A project never seen here is, as with Compose, nothing to take down (berth says so);
        // commands that need its files still refuse it.
        let unknown = run(&["-p", "neverseen", "down"]);
        assert_eq!(unknown.status.code(), Some(0), "{}", combined(&unknown));
        assert!(combined(&unknown).contains("no project \"neverseen\" here"), "{}", combined(&unknown));
        let up = run(&["-p", "neverseen", "up", "-d"]);
        assert_eq!(up.status.code(), Some(1));
        assert!(combined(&up).contains("not known here"), "{}", combined(&up));
    });
}

#[test]
fn wait_down_project() {
    // `wait --down-project`: when the first container stops, print its code, take the project
    // down and exit with that code.
    let yaml = services(
        "  quick:\n    image: IMAGE\n    command: [sh, -c, \"sleep 1; exit 3\"]\n  slow:\n    image: IMAGE\n    init: true\n    command: [sleep, \"300\"]\n",
    );
    scenario("waitdown", &yaml, |p| {
        p.ok(&["up", "-d"]);
        let out = p.berth(&["wait", "--down-project"]);
        assert_eq!(out.status.code(), Some(3), "{}", combined(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
        assert!(p.ps().is_empty(), "the project is down");
    });
}

#[test]
fn scale_down_during_a_dependents_recreate() {
    // Replicas removed by a scale-down are never a dependency that "failed to start": nginx,
    // recreated in the same `up`, waits on the replica that stays.
    let yaml = |v: u32| {
        services(&format!(
            "  app:\n    image: IMAGE\n    init: true\n    command: [sleep, \"300\"]\n    healthcheck: {{test: [CMD, \"true\"], interval: 1s}}\n  web:\n    image: IMAGE\n    init: true\n    command: [sleep, \"300\"]\n    environment: {{V: \"{v}\"}}\n    depends_on:\n      app: {{condition: service_healthy}}\n"
        ))
    };
    scenario("scaledownrecreate", &yaml(0), |p| {
        for round in 1..=3 {
            p.write_compose(&yaml(round));
            p.ok(&["up", "-d", "--scale", "app=3"]);
            p.write_compose(&yaml(round + 10));
            let out = p.berth(&["up", "-d", "--scale", "app=1"]);
            assert!(out.status.success(), "round {round}: {}", combined(&out));
            let ps = p.ps();
            assert_eq!(ps.len(), 2, "round {round}: {ps:?}");
            assert!(ps.iter().all(|c| c["State"] == "running"), "round {round}: {ps:?}");
        }
    });
}

#[test]
fn start_waits_for_dependency_conditions() {
    // `start` (after `stop`) honours depends_on conditions as up does: app starts only once
    // migrate completed (it removes and, a second later, writes back the marker app needs).
    let yaml = services(
        r#"  migrate:
    image: IMAGE
    command: [sh, -c, "rm -f /shared/migrated; sleep 1; touch /shared/migrated"]
    volumes: ["shared:/shared"]
  app:
    image: IMAGE
    init: true
    command: [sh, -c, "test -f /shared/migrated && exec sleep 300"]
    volumes: ["shared:/shared"]
    depends_on:
      migrate: {condition: service_completed_successfully}
volumes:
  shared:
"#,
    );
    scenario("startconditions", &yaml, |p| {
        p.ok(&["up", "-d", "--wait", "app"]);
        p.ok(&["stop"]);
        let out = p.berth(&["start", "--wait", "app"]);
        assert!(out.status.success(), "{}", combined(&out));
        assert_eq!(p.container(&format!("{}-app-1", p.name))["State"], "running");
        assert_eq!(p.container(&format!("{}-migrate-1", p.name))["ExitCode"], 0);
    });
}

#[test]
fn down_rmi() {
    let yaml = services("  app:\n    image: IMAGE\n    init: true\n    command: [sleep, \"300\"]\n");
    scenario("downrmi", &yaml, |p| {
        let has = |p: &Project| p.ok(&["image", "ls"]).contains("berth-test/busybox");
        p.ok(&["up", "-d"]);
        // `local` leaves images the files name; `all` takes them.
        p.ok(&["down", "--rmi", "local"]);
        assert!(has(p));
        p.ok(&["up", "-d"]);
        p.ok(&["down", "--rmi", "all"]);
        assert!(!has(p), "{}", p.ok(&["image", "ls"]));
    });
}

#[test]
fn volumes_lists_the_projects_volumes() {
    let yaml = services(
        "  app:\n    image: IMAGE\n    init: true\n    command: [sleep, \"300\"]\n    volumes: [\"data:/data\"]\n  other:\n    image: IMAGE\n    init: true\n    command: [sleep, \"300\"]\n    volumes: [\"/scratch\"]\nvolumes:\n  data:\n",
    );
    scenario("volumeslist", &yaml, |p| {
        p.ok(&["--parallel", "1", "up", "-d"]);
        let all = p.ok(&["volumes", "-q"]);
        assert!(all.lines().any(|l| l == format!("{}_data", p.name)), "{all}");
        assert_eq!(all.lines().count(), 2, "the named one and other's anonymous one: {all}");
        let app = p.ok(&["volumes", "-q", "app"]);
        assert_eq!(app.trim(), format!("{}_data", p.name));
        assert!(p.ok(&["volumes"]).starts_with("DRIVER    VOLUME NAME"));
    });
}

#[test]
fn export_writes_the_containers_own_file_system() {
    let yaml = services(
        "  app:\n    image: IMAGE\n    init: true\n    command: [sh, -c, \"echo mine > /made-here; exec sleep 300\"]\n    volumes: [\"data:/data\"]\nvolumes:\n  data:\n",
    );
    scenario("export", &yaml, |p| {
        p.ok(&["up", "-d"]);
        p.wait_for(10, "the file", || p.berth(&["exec", "-T", "app", "cat", "/made-here"]).status.success());
        p.ok(&["exec", "-T", "app", "sh", "-c", "echo in-volume > /data/v"]);
        let tar = p.dir.path().join("app.tar");
        p.ok(&["export", "app", "-o", tar.to_str().unwrap()]);
        let list = std::process::Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
        let list = String::from_utf8_lossy(&list.stdout);
        // The image's files and the container's own change; not the volume, not /proc.
        assert!(list.lines().any(|l| l == "made-here"), "{list}");
        assert!(list.lines().any(|l| l == "bin/busybox" || l == "bin/sh"), "{list}");
        assert!(!list.contains("data/v") && !list.lines().any(|l| l.starts_with("proc/")), "{list}");
    });
}

#[test]
fn attach_joins_a_running_container() {
    let yaml = services(
        "  ticker:\n    image: IMAGE\n    command: [sh, -c, \"sleep 1; for i in 1 2 3; do echo tick $$i; sleep 0.2; done; exit 7\"]\n  reader:\n    image: IMAGE\n    stdin_open: true\n    command: [sh, -c, \"head -n1; exit 3\"]\n",
    );
    scenario("attach", &yaml, |p| {
        p.ok(&["up", "-d"]);
        let out = p.berth(&["attach", "ticker"]);
        assert_eq!(out.status.code(), Some(7), "{}", combined(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("tick 3"), "{}", combined(&out));
        // Input goes in when the container keeps stdin open.
        let mut child = p
            .cmd(&["attach", "reader"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"hello from the host\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from the host\n");
    });
}

#[test]
fn cgroup_parent_and_a_private_cgroup_namespace() {
    let parent = format!("berthtest-{}", std::process::id());
    let yaml = services(&format!(
        "  app:\n    image: IMAGE\n    init: true\n    command: [sleep, \"300\"]\n    cgroup_parent: {parent}\n    cgroup: private\n  plain:\n    image: IMAGE\n    init: true\n    command: [sleep, \"300\"]\n"
    ));
    scenario("cgroupparent", &yaml, |p| {
        p.ok(&["up", "-d"]);
        let id = p.container(&format!("{}-app-1", p.name))["ID"].as_str().unwrap().to_string();
        let full = p.ok(&["ps", "-q", "--no-trunc", "app"]).trim().to_string();
        assert!(full.starts_with(&id), "{full} {id}");
        let dir = std::path::Path::new("/sys/fs/cgroup/pids").join(&parent).join(format!("berth-{full}"));
        assert!(dir.is_dir(), "{} is where the container's cgroup is", dir.display());
        // Its own cgroup namespace: it sees itself at the root; the other one sees the host's path.
        let own = p.ok(&["exec", "-T", "app", "cat", "/proc/self/cgroup"]);
        assert!(own.lines().all(|l| l.ends_with(":/")), "{own}");
        let host = p.ok(&["exec", "-T", "plain", "cat", "/proc/self/cgroup"]);
        assert!(host.lines().any(|l| l.contains("/berth-")), "{host}");
        p.ok(&["down"]);
        for ctl in [
            "pids",
            "memory",
            "cpu,cpuacct",
            "cpuset",
            "devices",
            "freezer",
            "blkio",
            "net_cls,net_prio",
            "perf_event",
            "hugetlb",
            "systemd",
            "unified",
        ] {
            let _ = std::fs::remove_dir(std::path::Path::new("/sys/fs/cgroup").join(ctl).join(&parent));
        }
    });
}

#[test]
fn foreground_up_shows_what_an_unlogged_service_prints() {
    // `logging: {driver: none}` keeps no log, yet an attached `up` shows the output, as Compose.
    let yaml = services(
        "  quiet:\n    image: IMAGE\n    command: [sh, -c, \"sleep 1; echo quiet-line; sleep 1\"]\n    logging:\n      driver: none\n",
    );
    scenario("fgnone", &yaml, |p| {
        let out = p.berth(&["up"]);
        let text = combined(&out);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("quiet-1  | quiet-line") || text.contains("quiet-1 | quiet-line"), "{text}");
        assert!(!p.ok(&["logs", "quiet"]).contains("quiet-line"), "and nothing was kept");
    });
}
