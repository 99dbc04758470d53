//! System tests (root) of published ports and the liveness of project supervisors: two projects
//! racing for one fixed host port (one fails naming the other's container, the winner serves, the
//! loser gets it once the winner is gone); a port taken by an earlier container of the same
//! project names that container; a stopped supervisor is named with what to do; a killed one
//! comes back on its own (started by `ps`, by a container's monitor, or when a container exits;
//! published port, restart policy and DNS served again) and `ps`/`ls` say while it is missing.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::io::{Read, Write};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// GET / from 127.0.0.1:port (plain HTTP/1.0 over loopback).
fn get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// A web server on `port` of the loopback address answering `text`.
fn web(port: u16, text: &str) -> String {
    format!(
        r#"  web:
    image: berth-test/busybox:latest
    init: true
    restart: always
    command: [sh, -c, "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["127.0.0.1:{port}:80"]
"#
    )
}

/// Pids of live processes whose command line contains all of `words`.
fn pids_with(words: &[&str]) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            words.iter().all(|w| cmd.contains(w))
        })
        .collect()
}

fn signal(pid: i32, sig: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

/// The one supervisor of project `p`.
fn supervisor(p: &harness::Project) -> i32 {
    let sup = pids_with(&["__supervise", &p.name]);
    assert_eq!(sup.len(), 1, "one supervisor of {}: {sup:?}", p.name);
    sup[0]
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs berth in project `p`'s directory with `roots`' state and run directories (projects of
/// one state root share its database and supervisors' directory).
fn berth_in(p: &harness::Project, roots: &harness::Project, args: &[&str]) -> Output {
    p.cmd(args).env("BERTH_ROOT", roots.root.path()).env("BERTH_RUN", roots.run.path()).output().unwrap()
}

#[test]
fn two_projects_racing_for_one_port_one_wins_and_the_other_names_its_container() {
    let port = free_port();
    let a = harness::Project::new("racea", &web(port, "a"));
    let b = harness::Project::new("raceb", &web(port, "b"));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for round in 0..4 {
            // Both at the same moment, sharing one state root.
            let start = |p: &harness::Project| {
                let mut c = p.cmd(&["up", "-d"]);
                c.env("BERTH_ROOT", a.root.path()).env("BERTH_RUN", a.run.path());
                c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
            };
            let (ca, cb) = (start(&a), start(&b));
            let (oa, ob) = (ca.wait_with_output().unwrap(), cb.wait_with_output().unwrap());
            let (winner, loser, lost) = match (oa.status.success(), ob.status.success()) {
                (true, false) => (&a, &b, ob),
                (false, true) => (&b, &a, oa),
                _ => panic!("round {round}: exactly one wins:\na: {}\nb: {}", stderr(&oa), stderr(&ob)),
            };
            assert_eq!(lost.status.code(), Some(1), "round {round}");
            let err = stderr(&lost);
            let named = format!(
                "services.web.ports[0]: port {port}/tcp on 127.0.0.1 is already in use by container {}-web-1 of project {}",
                winner.name, winner.name
            );
            assert!(err.contains(&named), "round {round}: {err}");
            eprintln!("round {round}: {}", err.trim());
            let text = if std::ptr::eq(winner, &a) { "a\n" } else { "b\n" };
            a.wait_for(10, "the winner serving the port", || get(port).as_deref() == Some(text));
            // The loser made nothing and shows no port.
            let ps = berth_in(loser, &a, &["ps", "-a", "--format", "json"]);
            assert!(String::from_utf8_lossy(&ps.stdout).trim().is_empty(), "round {round}: loser has containers");
            // Once the winner is gone, the port is the loser's.
            let down = berth_in(winner, &a, &["down"]);
            assert!(down.status.success(), "{}", stderr(&down));
            let up = berth_in(loser, &a, &["up", "-d"]);
            assert!(up.status.success(), "round {round}: {}", stderr(&up));
            let text = if text == "a\n" { "b\n" } else { "a\n" };
            a.wait_for(10, "the loser serving the port", || get(port).as_deref() == Some(text));
            let down = berth_in(loser, &a, &["down"]);
            assert!(down.status.success(), "{}", stderr(&down));
        }
    }));
    // `b` lives under `a`'s roots: it goes first, then `a` checks that nothing of either is left.
    let _ = berth_in(&b, &a, &["down", "-v"]);
    a.finish(result);
    assert!(get(port).is_none(), "the port is closed after down");
}

#[test]
fn a_port_taken_by_an_earlier_container_of_the_project_names_that_container() {
    let port = free_port();
    let p = harness::Project::new("ownport", &web(port, "web"));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        p.wait_for(10, "the port answering", || get(port).as_deref() == Some("web\n"));
        // A second service asking for the same port: the running one is named, not the new one.
        let api = format!(
            "  api:\n    image: berth-test/busybox:latest\n    command: [sleep, \"300\"]\n    ports: [\"127.0.0.1:{port}:8080\"]\n"
        );
        p.write_compose(&format!("{}{api}", web(port, "web")));
        let out = p.berth(&["up", "-d"]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        let named = format!(
            "services.api.ports[0]: port {port}/tcp on 127.0.0.1 is already in use by container {}-web-1",
            p.name
        );
        assert!(err.contains(&named), "{err}");
        assert!(!err.contains(&format!("{}-api-1", p.name)), "the new container is not the one named: {err}");
        assert!(!err.contains("of project"), "a container of the same project: {err}");
        // A second replica of the same service: the first has it.
        p.write_compose(&web(port, "web"));
        let out = p.berth(&["up", "-d", "--scale", "web=2"]);
        assert_eq!(out.status.code(), Some(1));
        let named = format!(
            "services.web.ports[0]: port {port}/tcp on 127.0.0.1 is already in use by container {}-web-1",
            p.name
        );
        assert!(stderr(&out).contains(&named), "{}", stderr(&out));
        let names: Vec<String> = p.ps().iter().map(|c| c["Name"].as_str().unwrap().to_string()).collect();
        assert_eq!(names, [format!("{}-web-1", p.name)], "nothing was made");
        // Recreating the container that has the port passes it on.
        p.ok(&["up", "-d", "--force-recreate"]);
        p.wait_for(10, "the port answering after recreation", || get(port).as_deref() == Some("web\n"));
    }));
    p.finish(result);
}

#[test]
fn a_stopped_supervisor_is_named_with_what_to_do() {
    let p = harness::Project::new("stoppedsup", &web(free_port(), "web"));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        let pid = supervisor(&p);
        signal(pid, Signal::SIGSTOP);
        let started = Instant::now();
        let out = p.berth(&["up", "-d"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        let what = format!("the supervisor of project \"{}\" (pid {pid}) is not answering", p.name);
        assert!(err.contains(&what) && err.contains(&format!("kill -CONT {pid}")), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "said at once: {:?}", started.elapsed());
        assert_eq!(pids_with(&["__supervise", &p.name]), [pid], "no second supervisor");
        // `ps` and `ls` say so too.
        let ps = p.berth(&["ps"]);
        assert!(stderr(&ps).contains(&format!("(pid {pid}) is stopped")), "{}", stderr(&ps));
        let ls: serde_json::Value = serde_json::from_str(&p.ok(&["ls", "--format", "json"])).unwrap();
        let row = ls.as_array().unwrap().iter().find(|r| r["name"] == p.name.as_str()).unwrap().clone();
        assert_eq!(row["supervisor"], format!("stopped (pid {pid})"), "{ls}");
        // Resumed, it answers again.
        signal(pid, Signal::SIGCONT);
        p.ok(&["up", "-d"]);
        assert_eq!(supervisor(&p), pid);
        // `down` ends a stopped supervisor too.
        signal(pid, Signal::SIGSTOP);
    }));
    p.finish(result);
    assert!(pids_with(&["__supervise", &p.name]).is_empty(), "the supervisor is gone");
}

#[test]
fn a_killed_supervisor_comes_back_on_its_own() {
    let port = free_port();
    let client = "  client:\n    image: berth-test/busybox:latest\n    init: true\n    command: [sleep, \"300\"]\n";
    let p = harness::Project::new("killedsup", &format!("{}{client}", web(port, "web")));
    let web1 = format!("{}-web-1", p.name);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        p.wait_for(10, "the port answering", || get(port).as_deref() == Some("web\n"));
        // Hold the monitors (what brings a supervisor back) while it is gone, to look at `ls`
        // and `ps`.
        let monitors: Vec<i32> = p.ps().iter().map(|c| p.monitor_pid(c["ID"].as_str().unwrap())).collect();
        for m in &monitors {
            signal(*m, Signal::SIGSTOP);
        }
        let sup = supervisor(&p);
        signal(sup, Signal::SIGKILL);
        p.wait_for(5, "the supervisor gone", || pids_with(&["__supervise", &p.name]).is_empty());
        let ls: serde_json::Value = serde_json::from_str(&p.ok(&["ls", "--format", "json"])).unwrap();
        assert_eq!(ls[0]["supervisor"], "none", "{ls}");
        // `ps` says so, and starts a new one.
        let ps = p.berth(&["ps"]);
        assert!(ps.status.success());
        let warning = format!(
            "project \"{}\" is not supervised: restart policies, health checks, DNS and published ports are stopped; a new supervisor is starting",
            p.name
        );
        assert!(stderr(&ps).contains(&warning), "{}", stderr(&ps));
        p.wait_for(10, "a supervisor started by ps", || pids_with(&["__supervise", &p.name]).len() == 1);
        p.wait_for(10, "the port answering again", || get(port).as_deref() == Some("web\n"));
        for m in &monitors {
            signal(*m, Signal::SIGCONT);
        }
        // Killed again, with nothing but the monitors to notice: they bring it back.
        signal(supervisor(&p), Signal::SIGKILL);
        p.wait_for(5, "the supervisor gone", || pids_with(&["__supervise", &p.name]).is_empty());
        p.wait_for(10, "a supervisor started by a monitor", || pids_with(&["__supervise", &p.name]).len() == 1);
        p.wait_for(10, "the port answering again", || get(port).as_deref() == Some("web\n"));
        assert!(!stderr(&p.berth(&["ps"])).contains("not supervised"));
        let ls: serde_json::Value = serde_json::from_str(&p.ok(&["ls", "--format", "json"])).unwrap();
        assert_eq!(ls[0]["supervisor"], "running", "{ls}");
        let out = p.ok(&["exec", "-T", "client", "nslookup", "web"]);
        assert!(out.lines().any(|l| l.starts_with("Address") && !l.contains(":53")), "{out}");
        let before = p.container(&web1);
        signal(before["Pid"].as_i64().unwrap() as i32, Signal::SIGKILL);
        p.wait_for(15, "web restarted by its policy", || {
            let c = p.container(&web1);
            c["State"] == "running" && c["RestartCount"] == 1
        });
        // Killed again, and the container exits before any monitor's periodic check: the exit
        // brings a supervisor back, and that one applies the restart policy to it.
        let sup = supervisor(&p);
        let web = p.container(&web1);
        signal(sup, Signal::SIGKILL);
        signal(web["Pid"].as_i64().unwrap() as i32, Signal::SIGKILL);
        p.wait_for(5, "the supervisor gone", || !pids_with(&["__supervise", &p.name]).contains(&sup));
        p.wait_for(10, "a supervisor started by the exit", || pids_with(&["__supervise", &p.name]).len() == 1);
        p.wait_for(15, "web restarted by a new supervisor", || {
            let c = p.container(&web1);
            c["State"] == "running" && c["RestartCount"] == 2
        });
        p.wait_for(10, "the port answering after the restart", || get(port).as_deref() == Some("web\n"));
        assert_eq!(pids_with(&["__supervise", &p.name]).len(), 1, "one supervisor");
        // Who started each: `ps`, then a running container's monitor (then the exit, or a monitor).
        let log = std::fs::read_to_string(p.run.path().join("supervisors").join(format!("{}.log", p.name))).unwrap();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("starting a new supervisor")).collect();
        // (Two monitors that look at the same instant may both start one: the second gives way.)
        assert!(lines.first().is_some_and(|l| l.contains("`berth ps` found the project unsupervised")), "{log}");
        assert!(lines.iter().any(|l| l.contains("is running and project")), "{log}");
    }));
    p.finish(result);
    assert!(pids_with(&["__supervise", &p.name]).is_empty(), "the supervisor is gone");
}

#[test]
fn a_port_taken_while_its_container_was_stopped_is_served_once_free() {
    let port = free_port();
    let p = harness::Project::new("takenport", &web(port, "web"));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        p.wait_for(10, "the port answering", || get(port).as_deref() == Some("web\n"));
        p.ok(&["stop", "web"]);
        p.wait_for(5, "the port let go", || std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
        let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        p.ok(&["start", "web"]);
        // Said in the supervisor's log, and tried again until the port is free.
        let log = p.run.path().join("supervisors").join(format!("{}.log", p.name));
        let said = format!(
            "container {}-web-1 cannot publish port {port}/tcp on 127.0.0.1: it is in use by another program",
            p.name
        );
        p.wait_for(5, "the supervisor saying so", || std::fs::read_to_string(&log).unwrap_or_default().contains(&said));
        drop(squatter);
        p.wait_for(10, "the port answering once free", || get(port).as_deref() == Some("web\n"));
    }));
    p.finish(result);
}
