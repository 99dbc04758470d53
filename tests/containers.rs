//! Container system tests: real containers from the fixture images through runc, driven by the
//! berth binary. Exit codes, signals and grace periods, stdin and terminals, users and groups,
//! environment precedence, read-only root, capabilities, the memory limit, log rotation, the
//! monitor outliving the CLI, exec, cp. Each test checks that nothing is left behind. Needs root;
//! fails loudly without it.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use harness::Project;

const BUSYBOX: &str = "berth-test/busybox:latest";

fn svc(name: &str, body: &str) -> String {
    let mut s = format!("  {name}:\n    image: {BUSYBOX}\n    network_mode: none\n");
    for l in body.lines().filter(|l| !l.trim().is_empty()) {
        s.push_str("    ");
        s.push_str(l);
        s.push('\n');
    }
    s
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn run_passes_exit_code_and_both_streams() {
    let p = Project::new("run_exit", &svc("app", "command: [\"sh\", \"-c\", \"echo out; echo err >&2; exit 3\"]"));
    let out = p.berth(&["run", "--rm", "-T", "app"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "out\n");
    assert!(stderr_of(&out).contains("err\n"), "{}", stderr_of(&out));
    // A command on the command line replaces the service's.
    let out = p.berth(&["run", "--rm", "-T", "app", "sh", "-c", "exit 0"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    // Without --rm the one-off container stays, exited, named <project>-<service>-run-<id>.
    let out = p.berth(&["run", "-T", "app", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    p.wait_for(5, "the --rm containers to go", || p.ps().len() == 1);
    let rows = p.ps();
    assert_eq!(rows.len(), 1);
    let name = rows[0]["Name"].as_str().unwrap();
    assert!(name.starts_with(&format!("{}-app-run-", p.name)), "{name}");
    assert_eq!(rows[0]["State"], "exited");
    assert_eq!(rows[0]["ExitCode"], 0);
    p.ok(&["rm"]);
    p.assert_clean();
}

#[test]
fn stop_sends_stop_signal_then_sigkill_after_grace_period() {
    let services = svc(
        "polite",
        "command: [\"sh\", \"-c\", \"trap 'echo bye; exit 7' USR1; while true; do sleep 0.1; done\"]\nstop_signal: SIGUSR1",
    ) + &svc(
        "stubborn",
        "command: [\"sh\", \"-c\", \"trap '' TERM; while true; do sleep 0.1; done\"]\nstop_grace_period: 1s",
    );
    let p = Project::new("stop_grace", &services);
    p.ok(&["create"]);
    p.ok(&["start"]);
    let rows = p.ps();
    assert!(rows.iter().all(|r| r["State"] == "running"), "{rows:?}");
    let t = Instant::now();
    p.ok(&["stop", "polite"]);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(p.container(&format!("{}-polite-1", p.name))["ExitCode"], 7);
    assert!(p.ok(&["logs", "polite"]).contains("bye"));

    let t = Instant::now();
    p.ok(&["stop", "stubborn"]);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(900), "SIGKILL came before the grace period: {took:?}");
    let c = p.container(&format!("{}-stubborn-1", p.name));
    assert_eq!(c["ExitCode"], 137, "{c}");
    assert_eq!(c["State"], "exited");

    // kill -s, and -t 0 on stop.
    p.ok(&["start"]);
    p.ok(&["kill", "-s", "USR1", "polite"]);
    p.wait_for(10, "polite to exit", || p.container(&format!("{}-polite-1", p.name))["State"] == "exited");
    assert_eq!(p.container(&format!("{}-polite-1", p.name))["ExitCode"], 7);
    let t = Instant::now();
    p.ok(&["stop", "-t", "0", "stubborn"]);
    assert!(t.elapsed() < Duration::from_secs(5));

    // A foreground `run` passes the signals it gets on to the container.
    let mut cli = p.cmd(&["run", "--rm", "-T", "polite"]).stdout(Stdio::piped()).spawn().unwrap();
    p.wait_for(10, "the one-off to run", || {
        p.ps().iter().any(|c| c["Name"].as_str().unwrap().contains("-run-") && c["State"] == "running")
    });
    std::thread::sleep(Duration::from_millis(200));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(cli.id() as i32), nix::sys::signal::Signal::SIGUSR1).unwrap();
    let status = cli.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    p.ok(&["rm"]);
    p.assert_clean();
}

#[test]
fn stdin_is_forwarded_and_tty_is_a_real_terminal() {
    let p = Project::new("stdin_tty", &svc("app", "command: [\"sh\"]"));
    let mut child = p
        .cmd(&["run", "--rm", "-T", "app", "sh", "-c", "read a; read b; echo \"got $a $b\"; cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"one\ntwo\nrest\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "got one two\nrest\n");

    // `script` gives berth a terminal: the container gets one too.
    let cmdline = format!("{} run --rm app sh -c 'tty; stty size; exit 4'", harness::berth_bin().display());
    let out = std::process::Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .current_dir(p.dir.path())
        .env("BERTH_ROOT", p.root.path())
        .env("BERTH_RUN", p.run.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = stdout_of(&out);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert_eq!(out.status.code(), Some(4), "{text}");

    // `exec -it` gets a terminal too, and passes the exit code through.
    p.write_compose(&svc("app", "command: [\"sleep\", \"60\"]"));
    p.ok(&["create"]);
    p.ok(&["start"]);
    let cmdline = format!("{} exec -it app sh -c 'tty; exit 6'", harness::berth_bin().display());
    let out = std::process::Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .current_dir(p.dir.path())
        .env("BERTH_ROOT", p.root.path())
        .env("BERTH_RUN", p.run.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = stdout_of(&out);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert_eq!(out.status.code(), Some(6), "{text}");
    p.ok(&["rm", "--force"]);
    p.assert_clean();
}

#[test]
fn user_groups_and_environment_precedence() {
    std::fs::create_dir_all(std::env::temp_dir()).unwrap();
    let services = String::from(
        "  app:\n    image: berth-test/config:latest\n    network_mode: none\n    entrypoint: [\"sh\", \"-c\"]\n    \
         command: [\"id; echo $$GREETING/$$FROM_FILE/$$BOTH/$$HOME/$$PWD\"]\n    env_file: [app.env]\n    \
         environment:\n      BOTH: from-environment\n    group_add: [\"4242\"]\n    working_dir: /tmp\n",
    ) + &svc("root", "user: app:root\ncommand: [\"id\"]");
    let p = Project::new("user_env", &services);
    std::fs::write(p.dir.path().join("app.env"), "FROM_FILE=file\nBOTH=from-file\nGREETING=from-file\n").unwrap();
    // The image says User 1000:1000 and GREETING; env_file overrides the image, environment the file.
    let out = p.ok(&["run", "--rm", "-T", "app"]);
    // Like Docker: supplementary groups are the memberships in /etc/group plus group_add.
    assert_eq!(out, "uid=1000(app) gid=1000(app) groups=4242\nfrom-file/file/from-environment//home/app//tmp\n");
    // run -e and -u win over everything.
    let out = p.ok(&["run", "--rm", "-T", "-e", "BOTH=cli", "-u", "0", "app", "echo $BOTH; id -u"]);
    assert_eq!(out, "cli\n0\n");
    let out = p.ok(&["run", "--rm", "-T", "root"]);
    assert_eq!(out, "uid=1000(app) gid=0(root)\n");
    p.assert_clean();
}

#[test]
fn read_only_root_and_tmpfs() {
    let p = Project::new(
        "read_only",
        &svc("app", "read_only: true\ntmpfs: [\"/scratch:size=1m\"]\ncommand: [\"sh\", \"-c\", \"touch /x 2>&1; echo ok > /scratch/f && cat /scratch/f\"]"),
    );
    let out = p.ok(&["run", "--rm", "-T", "app"]);
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.ends_with("ok\n"), "{out}");
    p.assert_clean();
}

fn cap_mask(status: &str, key: &str) -> u64 {
    let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn capabilities_are_dropped_and_added() {
    let services = svc("default", "command: [\"cat\", \"/proc/self/status\"]")
        + &svc(
            "minimal",
            "cap_drop: [ALL]\ncap_add: [CHOWN, net_bind_service]\ncommand: [\"cat\", \"/proc/self/status\"]",
        )
        + &svc("extra", "cap_add: [SYS_ADMIN]\ncap_drop: [NET_RAW]\ncommand: [\"cat\", \"/proc/self/status\"]");
    let p = Project::new("caps", &services);
    // Docker's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    let default = p.ok(&["run", "--rm", "-T", "default"]);
    assert_eq!(cap_mask(&default, "CapBnd:"), 0xa80425fb);
    assert_eq!(cap_mask(&default, "CapEff:"), 0xa80425fb);
    let minimal = p.ok(&["run", "--rm", "-T", "minimal"]);
    assert_eq!(cap_mask(&minimal, "CapBnd:"), (1 << 0) | (1 << 10));
    assert_eq!(cap_mask(&minimal, "CapEff:"), (1 << 0) | (1 << 10));
    let extra = p.ok(&["run", "--rm", "-T", "extra"]);
    assert_eq!(cap_mask(&extra, "CapBnd:"), (0xa80425fb & !(1 << 13)) | (1 << 21));
    // The default seccomp profile is on.
    assert!(default.lines().any(|l| l.starts_with("Seccomp:") && l.trim_end().ends_with('2')), "{default}");
    p.assert_clean();
}

#[test]
fn memory_limit_is_enforced_and_oom_kill_reported() {
    let p = Project::new(
        "oom",
        &(svc("hog", "mem_limit: 32m\nmemswap_limit: 32m\ncommand: [\"dd\", \"if=/dev/zero\", \"of=/dev/null\", \"bs=128M\", \"count=1\"]")
            + &svc("small", "mem_limit: 32m\ncommand: [\"cat\", \"/sys/fs/cgroup/memory/memory.limit_in_bytes\"]")),
    );
    let out = p.berth(&["run", "-T", "hog"]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr_of(&out));
    let rows = p.ps();
    assert_eq!(rows[0]["OOMKilled"], true, "{rows:?}");
    assert!(p.ok(&["ps", "-a"]).contains("OOMKilled"));
    assert_eq!(p.ok(&["run", "--rm", "-T", "small"]).trim(), (32 * 1024 * 1024).to_string());
    p.ok(&["rm"]);
    p.assert_clean();
}

#[test]
fn logs_rotate_and_follow_keeps_going_across_restarts() {
    let p = Project::new(
        "logs",
        &svc(
            "chatty",
            "logging:\n  options:\n    max-size: 2k\n    max-file: \"3\"\n\
             command: [\"sh\", \"-c\", \"n=$$(cat /n 2>/dev/null || echo 0); n=$$((n+1)); echo $$n > /n; i=0; while [ $$i -lt 300 ]; do echo line-$$i; i=$$((i+1)); done; echo ready-$$n; exec sleep 60\"]",
        ),
    );
    p.ok(&["create"]);
    p.ok(&["start"]);
    let follower =
        p.cmd(&["logs", "--follow", "--no-log-prefix", "--tail", "0"]).stdout(Stdio::piped()).spawn().unwrap();
    p.wait_for(20, "the first run's output", || p.ok(&["logs", "--tail", "1", "--no-log-prefix"]) == "ready-1\n");
    let logs = p.root.path().join("containers").join(p.ps()[0]["ID"].as_str().unwrap()).join("logs");
    let mut files: Vec<_> = std::fs::read_dir(&logs).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 3, "max-file 3: {files:?}");
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() <= 2048, "{} is over max-size", f.display());
    }
    let tail = p.ok(&["logs", "--tail", "2", "--no-log-prefix"]);
    assert_eq!(tail, "line-299\nready-1\n");
    assert_eq!(p.ok(&["logs", "--since", "1h", "--tail", "1", "--no-log-prefix"]), "ready-1\n");
    assert_eq!(p.ok(&["logs", "--until", "2000-01-01T00:00:00Z"]), "");
    assert_eq!(p.ok(&["logs", "--since", "2100-01-01T00:00:00Z"]), "");
    let with_prefix = p.ok(&["logs", "--tail", "1", "-t"]);
    assert!(with_prefix.starts_with("chatty-1 | 20") && with_prefix.ends_with("Z ready-1\n"), "{with_prefix}");
    // The follower stays through a restart and sees the second run.
    p.ok(&["restart", "-t", "0"]);
    p.wait_for(20, "the second run's output", || p.ok(&["logs", "--tail", "1", "--no-log-prefix"]) == "ready-2\n");
    std::thread::sleep(Duration::from_millis(300));
    p.ok(&["stop", "-t", "0"]);
    let out = follower.wait_with_output().unwrap();
    let text = stdout_of(&out);
    assert!(text.ends_with("ready-2\n"), "{text}");
    p.ok(&["rm"]);
    p.assert_clean();
}

#[test]
fn monitor_outlives_a_killed_cli_and_records_the_exit_code() {
    let p = Project::new(
        "monitor",
        &svc("app", "command: [\"sh\", \"-c\", \"echo started; sleep 2; echo after; exit 4\"]"),
    );
    let mut cli = p.cmd(&["run", "-T", "app"]).stdout(Stdio::piped()).spawn().unwrap();
    p.wait_for(10, "the container to run", || p.ps().first().is_some_and(|c| c["State"] == "running"));
    cli.kill().unwrap(); // SIGKILL
    cli.wait().unwrap();
    assert_eq!(p.ps()[0]["State"], "running", "the container keeps running");
    let name = p.ps()[0]["Name"].as_str().unwrap().to_string();
    p.wait_for(10, "the exit to be recorded", || p.container(&name)["State"] == "exited");
    assert_eq!(p.container(&name)["ExitCode"], 4);
    let id = p.container(&name)["ID"].as_str().unwrap().to_string();
    let log = std::fs::read_to_string(p.root.path().join("containers").join(&id).join("logs/container.log")).unwrap();
    assert!(log.contains("\"log\":\"started\\n\",\"stream\":\"stdout\"") && log.contains("after"), "{log}");
    // And a monitor killed with -9 is noticed: the container is marked dead and cleaned up.
    p.ok(&["rm"]);
    p.write_compose(&svc("app", "command: [\"sleep\", \"60\"]"));
    p.ok(&["create"]);
    p.ok(&["start"]);
    let monitor = std::fs::read_dir(p.run.path().join("c")).unwrap().count();
    assert_eq!(monitor, 1);
    let pid = p.monitor_pid(p.ps()[0]["ID"].as_str().unwrap());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    p.ok(&["stop", "-t", "1"]);
    p.ok(&["rm"]);
    p.assert_clean();
}

/// The monitors' run directories (`$BERTH_RUN/c/*`).
fn run_dirs(p: &Project) -> Vec<String> {
    std::fs::read_dir(p.run.path().join("c"))
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn run_directories_go_whatever_becomes_of_the_monitor() {
    let p = Project::new("rundirs", &svc("app", "command: [\"sleep\", \"60\"]\ninit: true"));
    // A monitor that cannot start the container (its root file system cannot be mounted, as
    // when `down` removes the container while `up` starts it) removes the run directory made
    // for it: once the row is gone, nothing else would.
    p.ok(&["create"]);
    let id = p.container_ids().pop().unwrap();
    std::fs::write(p.root.path().join("containers").join(&id).join("upper"), "not a directory").unwrap();
    let out = p.berth(&["start"]);
    assert!(!out.status.success(), "{}", stderr_of(&out));
    assert_eq!(run_dirs(&p), Vec::<String>::new());
    p.ok(&["rm"]);
    // A container whose monitor was killed with SIGKILL, removed.
    p.ok(&["create"]);
    p.ok(&["start"]);
    assert_eq!(run_dirs(&p).len(), 1);
    let pid = p.monitor_pid(p.ps()[0]["ID"].as_str().unwrap());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    p.ok(&["rm", "--force"]);
    assert_eq!(run_dirs(&p), Vec::<String>::new());
    // `down` of containers probed by their health checks while they stop.
    p.write_compose(&svc(
        "app",
        "command: [\"sleep\", \"60\"]\ninit: true\nscale: 3\nhealthcheck:\n  test: [CMD, \"false\"]\n  interval: 1s",
    ));
    for _ in 0..3 {
        p.ok(&["up", "-d"]);
        std::thread::sleep(Duration::from_millis(300));
        p.ok(&["down"]);
        assert_eq!(run_dirs(&p), Vec::<String>::new());
    }
    p.assert_clean();
}

/// Processes named `name` whose environment has this project's run directory.
fn processes_named(p: &Project, name: &str) -> Vec<i32> {
    let run = p.run.path().to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            comm.trim() == name && String::from_utf8_lossy(&env).contains(&run)
        })
        .collect()
}

#[test]
fn monitors_come_from_the_launcher_and_keep_nothing_of_the_cli() {
    let p = Project::new("launcher", &svc("app", "command: [\"sleep\", \"600\"]"));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // `$(berth run -d ...)`: the output ends when the CLI exits, not when the container does;
        // neither the monitor nor the launcher holds the CLI's stdout or stderr.
        let child = p.cmd(&["run", "-d", "app"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(child.wait_with_output()).unwrap());
        let out = rx.recv_timeout(Duration::from_secs(60)).expect("run -d's output never ended").unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(name.starts_with(&format!("{}-app-run-", p.name)), "{name}");
        let id = p.container(&name)["ID"].as_str().unwrap().to_string();
        let monitor = p.monitor_pid(&id);
        assert_eq!(processes_named(&p, "berth-monitor"), vec![monitor], "one monitor, named");
        // Its descriptors: /dev/null, its log, the database, the container's pipes, its sockets.
        for fd in std::fs::read_dir(format!("/proc/{monitor}/fd")).unwrap().flatten() {
            let target = std::fs::read_link(fd.path()).unwrap().to_string_lossy().into_owned();
            let known = target == "/dev/null"
                || target.starts_with("pipe:")
                || target.starts_with("socket:")
                || target.starts_with("anon_inode:")
                || target.starts_with(&*p.root.path().to_string_lossy())
                || target.starts_with(&*p.run.path().to_string_lossy());
            assert!(known, "monitor holds {target}");
        }
        // The launcher went with the CLI.
        p.wait_for(10, "the launcher to exit", || processes_named(&p, "berth-launcher").is_empty());
        p.ok(&["rm", "-f", "-s"]);
        p.assert_clean();
    }));
    p.finish(result);
}

#[test]
fn a_start_the_runtime_refuses_says_why_and_leaves_nothing() {
    let p = Project::new("refused", &svc("app", "command: [\"/no/such/binary\"]"));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let why = "exec: \"/no/such/binary\": stat /no/such/binary: no such file or directory";
        // The runtime's refusal is an operational failure (125), told from refused input (1);
        // for `run`, a command that is not there is `docker run`'s 127.
        let out = p.berth(&["run", "--rm", "-T", "app"]);
        assert_eq!(out.status.code(), Some(127));
        assert!(stderr_of(&out).contains("cannot start") && stderr_of(&out).contains(why), "{}", stderr_of(&out));
        assert!(p.ps().is_empty(), "run --rm removed its container");
        assert_eq!(p.berth(&["run", "--rm", "-T", "nosuchservice"]).status.code(), Some(1));
        let out = p.berth(&["up", "-d"]);
        assert_eq!(out.status.code(), Some(125), "a failed step: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains(why), "{}", stderr_of(&out));
        p.ok(&["rm", "-f"]);
        p.ok(&["create", "app"]);
        let out = p.berth(&["start", "app"]);
        assert_eq!(out.status.code(), Some(125));
        assert!(stderr_of(&out).contains(why), "{}", stderr_of(&out));
        assert_eq!(p.ps()[0]["State"], "created", "left as it was");
        // No mount, runtime state or run directory of the failed start is left.
        assert!(!std::fs::read_to_string("/proc/mounts").unwrap().contains(&*p.root.path().to_string_lossy()));
        let runtime_root = p.run.path().join("runtime/runc");
        assert_eq!(std::fs::read_dir(&runtime_root).map(|d| d.count()).unwrap_or(0), 0);
        assert_eq!(std::fs::read_dir(p.run.path().join("c")).map(|d| d.count()).unwrap_or(0), 0);
        p.ok(&["rm"]);
        p.assert_clean();
    }));
    p.finish(result);
}

#[test]
fn exec_passes_exit_codes_user_workdir_and_env() {
    let p = Project::new("exec", &svc("app", "command: [\"sleep\", \"60\"]\nenvironment:\n  FROM_SERVICE: yes"));
    p.ok(&["create"]);
    p.ok(&["start"]);
    let out = p.berth(&["exec", "-T", "app", "sh", "-c", "exit 42"]);
    assert_eq!(out.status.code(), Some(42));
    let out = p.ok(&[
        "exec",
        "-T",
        "-u",
        "app",
        "-w",
        "/tmp",
        "-e",
        "X=1",
        "app",
        "sh",
        "-c",
        "id -u; pwd; echo $X $FROM_SERVICE",
    ]);
    assert_eq!(out, "1000\n/tmp\n1 yes\n");
    let out = p.berth(&["exec", "-T", "--index", "2", "app", "true"]);
    assert!(!out.status.success() && stderr_of(&out).contains("no container number 2"), "{}", stderr_of(&out));
    // top sees the exec'd process while it runs.
    let top = p.ok(&["top"]);
    assert!(top.contains("sleep 60"), "{top}");
    p.ok(&["pause"]);
    assert_eq!(p.ps()[0]["State"], "paused");
    p.ok(&["unpause"]);
    assert_eq!(p.ps()[0]["State"], "running");
    let stats = p.ok(&["stats", "--no-stream"]);
    assert!(stats.contains(&format!("{}-app-1", p.name)), "{stats}");
    let out = p.berth(&["rm", "app"]);
    assert!(!out.status.success() && stderr_of(&out).contains("is running"), "{}", stderr_of(&out));
    p.ok(&["rm", "--force"]);
    p.assert_clean();
}

#[test]
fn cp_copies_both_ways() {
    let p = Project::new("cp", &svc("app", "command: [\"sleep\", \"60\"]"));
    p.ok(&["create"]);
    p.ok(&["start"]);
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from the host\n").unwrap();
    p.ok(&["cp", host.path().join("in.txt").to_str().unwrap(), "app:/tmp/"]);
    assert_eq!(p.ok(&["exec", "-T", "app", "cat", "/tmp/in.txt"]), "from the host\n");
    p.ok(&[
        "exec",
        "-T",
        "app",
        "sh",
        "-c",
        "mkdir -p /data/d && echo inner > /data/d/f && ln -s /etc/shadow /data/d/link",
    ]);
    p.ok(&["cp", "app:/data/d", host.path().join("copy").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(host.path().join("copy/f")).unwrap(), "inner\n");
    assert_eq!(std::fs::read_link(host.path().join("copy/link")).unwrap(), std::path::Path::new("/etc/shadow"));
    // Owners: root's copy by default, the file's own with -a; -L copies what a link points to.
    p.ok(&[
        "exec",
        "-T",
        "app",
        "sh",
        "-c",
        "echo owned > /data/o && chown 1234:5678 /data/o && ln -s /data/o /data/ln",
    ]);
    p.ok(&["cp", "app:/data/o", host.path().join("plain").to_str().unwrap()]);
    p.ok(&["cp", "-a", "app:/data/o", host.path().join("kept").to_str().unwrap()]);
    use std::os::unix::fs::MetadataExt;
    let owner = |n: &str| std::fs::metadata(host.path().join(n)).map(|m| (m.uid(), m.gid())).unwrap();
    assert_eq!((owner("plain"), owner("kept")), ((0, 0), (1234, 5678)));
    p.ok(&["cp", "app:/data/ln", host.path().join("asis").to_str().unwrap()]);
    assert!(std::fs::symlink_metadata(host.path().join("asis")).unwrap().file_type().is_symlink());
    p.ok(&["cp", "-L", "app:/data/ln", host.path().join("followed").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(host.path().join("followed")).unwrap(), "owned\n");
    // A stopped container too.
    p.ok(&["stop", "-t", "0"]);
    p.ok(&["cp", "app:/etc/motd", host.path().join("motd").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(host.path().join("motd")).unwrap(), "berth test image\n");
    p.ok(&["rm"]);
    p.assert_clean();
}

#[test]
fn exec_says_when_the_monitor_run_directory_is_gone() {
    let p = Project::new("execgone", &svc("app", "command: [\"sleep\", \"60\"]\ninit: true"));
    p.ok(&["create"]);
    p.ok(&["start"]);
    let dirs: Vec<_> = std::fs::read_dir(p.run.path().join("c")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1);
    std::fs::remove_dir_all(&dirs[0]).unwrap();
    let out = p.berth(&["exec", "-T", "app", "true"]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("its run directory `{}` is gone", dirs[0].display()))
            && err.contains("berth restart app"),
        "{err}"
    );
    assert!(!err.contains("No such file"), "{err}");
    // What it advises works.
    p.ok(&["restart", "-t", "1", "app"]);
    assert_eq!(p.ok(&["exec", "-T", "app", "echo", "back"]), "back\n");
    p.ok(&["rm", "--force"]);
    p.assert_clean();
}

/// Runs berth to completion, failing the test when it takes more than `secs` (a copy that hangs).
fn output_within(p: &Project, args: &[&str], secs: u64) -> std::process::Output {
    let child = p.cmd(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !waiter.is_finished() {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            panic!("berth {args:?} still runs after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    waiter.join().unwrap()
}

/// Names in a host directory.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// `cp` as `args`, which must fail with exit code 1 and say each of `what`, and promptly.
fn cp_refused(p: &Project, args: &[&str], what: &[&str]) {
    let out = output_within(p, args, 20);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    for w in what {
        assert!(err.contains(w), "{args:?}: {err}");
    }
    assert!(!err.contains("paths in archives"), "{args:?}: {err}");
}

#[test]
fn cp_refuses_fifos_sockets_and_devices_by_name() {
    let p = Project::new("cpspecial", &svc("app", "command: [\"sleep\", \"60\"]"));
    p.ok(&["create"]);
    p.ok(&["start"]);
    p.ok(&[
        "exec",
        "-T",
        "app",
        "sh",
        "-c",
        "mkfifo /tmp/fifo && mkdir /tmp/d && echo a > /tmp/d/a.txt && mkfifo /tmp/d/z.fifo",
    ]);
    let host = tempfile::tempdir().unwrap();
    let h = |name: &str| host.path().join(name).to_str().unwrap().to_string();
    // Refused before they are opened (reading a FIFO would wait for a writer, a device never ends).
    cp_refused(&p, &["cp", "app:/tmp/fifo", &h("")], &["`/tmp/fifo` is a FIFO"]);
    cp_refused(&p, &["cp", "app:/dev/zero", &h("zero")], &["`/dev/zero` is a character device"]);
    // Inside a directory too, rather than copied as empty files.
    cp_refused(&p, &["cp", "app:/tmp/d", &h("d")], &["`/tmp/d/z.fifo` is a FIFO"]);
    // The other way: a host FIFO, and a device as the destination.
    nix::unistd::mkfifo(host.path().join("fifo").as_path(), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    cp_refused(&p, &["cp", &h("fifo"), "app:/tmp/"], &["is a FIFO", &h("fifo")]);
    std::fs::write(h("file"), "x\n").unwrap();
    cp_refused(&p, &["cp", &h("file"), "app:/dev/null"], &["`/dev/null` is a character device"]);
    assert_eq!(p.ok(&["exec", "-T", "app", "ls", "-A", "/tmp"]), "d\nfifo\n");
    p.ok(&["rm", "--force"]);
    p.assert_clean();
}

#[test]
fn a_failed_cp_leaves_the_destination_as_it_was() {
    let p = Project::new("cpfail", &svc("app", "command: [\"sleep\", \"60\"]"));
    p.ok(&["create"]);
    p.ok(&["start"]);
    p.ok(&[
        "exec",
        "-T",
        "app",
        "sh",
        "-c",
        "mkdir /tmp/d && echo a > /tmp/d/a.txt && mkfifo /tmp/d/z.fifo && echo old > /tmp/keep",
    ]);
    let host = tempfile::tempdir().unwrap();
    let h = |name: &str| host.path().join(name).to_str().unwrap().to_string();
    std::fs::write(h("keep"), "old\n").unwrap();
    // A source that is not there, one that fails while it is read (its header is sent, its data
    // cannot be read), a directory that fails half-way: no file, no partial copy, no temporary.
    cp_refused(&p, &["cp", "app:/nonexistent", &h("out")], &["`/nonexistent` does not exist"]);
    cp_refused(&p, &["cp", "app:/proc/1/mem", &h("keep")], &["/proc/1/mem"]);
    cp_refused(&p, &["cp", "app:/tmp/d", &h("d")], &["/tmp/d/z.fifo"]);
    cp_refused(&p, &["cp", "app:/tmp/d", &h("")], &["/tmp/d/z.fifo"]);
    assert_eq!(names_in(host.path()), ["keep"]);
    assert_eq!(std::fs::read_to_string(h("keep")).unwrap(), "old\n");
    // The other way: a host file that fails while it is read.
    cp_refused(&p, &["cp", "/proc/self/mem", "app:/tmp/keep"], &["/proc/self/mem"]);
    assert_eq!(p.ok(&["exec", "-T", "app", "ls", "-A", "/tmp"]), "d\nkeep\n");
    assert_eq!(p.ok(&["exec", "-T", "app", "cat", "/tmp/keep"]), "old\n");
    // A good copy onto an existing directory merges into it.
    p.ok(&["exec", "-T", "app", "rm", "/tmp/d/z.fifo"]);
    std::fs::create_dir(h("d")).unwrap();
    std::fs::write(h("d/mine"), "mine\n").unwrap();
    p.ok(&["cp", "app:/tmp/d", &h("")]);
    assert_eq!(names_in(&host.path().join("d")), ["a.txt", "mine"]);
    assert_eq!(names_in(host.path()), ["d", "keep"]);
    p.ok(&["rm", "--force"]);
    p.assert_clean();
}

#[test]
fn events_and_restart() {
    let p = Project::new("events", &svc("app", "command: [\"sleep\", \"60\"]"));
    // From the project's first event: a follower that starts late must not miss `create`.
    let events = p.cmd(&["events", "--json", "--since", "0"]).stdout(Stdio::piped()).spawn().unwrap();
    p.ok(&["create"]);
    p.ok(&["start"]);
    p.ok(&["restart", "-t", "0"]);
    assert_eq!(p.ps()[0]["State"], "running");
    p.ok(&["rm", "--force"]);
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(events.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = events.wait_with_output().unwrap();
    let actions: Vec<String> = stdout_of(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].as_str().unwrap().to_string())
        .collect();
    for a in ["create", "start", "die", "restart", "destroy"] {
        assert!(actions.contains(&a.to_string()), "{a} missing from {actions:?}");
    }
    p.assert_clean();
}

#[test]
fn init_ulimits_ports_wait_and_listing() {
    let services = svc(
        "app",
        "init: true\nulimits:\n  nofile: {soft: 1024, hard: 100000000}\nports: [\"127.0.0.1:8080:80\"]\n\
         command: [\"sh\", \"-c\", \"cat /proc/1/cmdline | tr '\\\\0' ' '; echo; ulimit -Sn; ulimit -Hn; sleep 1; exit 5\"]",
    ) + &svc("idle", "command: [\"sleep\", \"60\"]\nstop_signal: KILL");
    let p = Project::new("misc", &services);
    let created = p.berth(&["create"]);
    assert!(created.status.success(), "{}", stderr_of(&created));
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap().1;
    assert!(
        stderr_of(&created)
            .contains(&format!("ulimit `nofile` 100000000 is above the host's hard limit {hard}; using {hard}")),
        "{}",
        stderr_of(&created)
    );
    p.ok(&["start"]);
    assert_eq!(p.ok(&["ps", "-q"]).lines().count(), 2);
    assert_eq!(p.ok(&["ps", "--services"]), "app\nidle\n");
    assert_eq!(p.ok(&["port", "app", "80"]), "127.0.0.1:8080\n");
    // `wait` prints the exit code and exits with it, as Compose does.
    let waited = p.berth(&["wait", "app"]);
    assert_eq!((waited.status.code(), String::from_utf8_lossy(&waited.stdout).into_owned()), (Some(5), "5\n".into()));
    assert_eq!(p.ok(&["ps", "--status", "exited", "--format", "json"]).lines().count(), 1);
    let logs = p.ok(&["logs", "--no-log-prefix", "app"]);
    assert_eq!(logs, format!("/sbin/berth-init -- sh -c cat /proc/1/cmdline | tr '\\0' ' '; echo; ulimit -Sn; ulimit -Hn; sleep 1; exit 5 \n1024\n{hard}\n"));
    // exec -d runs in the background; run -d prints the one-off container's name.
    p.ok(&["exec", "-d", "idle", "sh", "-c", "echo bg > /tmp/bg"]);
    p.wait_for(5, "the detached exec", || p.berth(&["exec", "-T", "idle", "cat", "/tmp/bg"]).status.success());
    let name = p.ok(&["run", "-d", "--name", "custom-oneoff", "idle", "true"]);
    assert_eq!(name, "custom-oneoff\n");
    p.wait_for(10, "the one-off to exit", || p.container("custom-oneoff")["State"] == "exited");
    // An unknown runtime is a clear error.
    let out = p.berth(&["run", "--runtime", "no-such-runtime", "idle", "true"]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("`no-such-runtime` is not installed") && stderr_of(&out).contains("hint:"),
        "{}",
        stderr_of(&out)
    );
    p.ok(&["rm", "--stop"]);
    p.assert_clean();
}

#[test]
fn host_files_security_options_and_limits() {
    let services = svc(
        "app",
        "hostname: web\ndomainname: example.test\nextra_hosts: [\"db=10.0.0.2\"]\nshm_size: 16m\n\
         sysctls:\n  net.core.somaxconn: \"1024\"\nsecurity_opt: [\"no-new-privileges:true\"]\npids_limit: 10\ncpus: 0.5\n\
         devices: [\"/dev/zero:/dev/myzero:rwm\"]\n\
         command:\n  - sh\n  - -c\n  - |\n    hostname; cat /proc/sys/kernel/domainname; grep db /etc/hosts\n    df -k /dev/shm | tail -1 | awk '{print $$2}'\n    \
         cat /proc/sys/net/core/somaxconn; grep NoNewPrivs /proc/self/status\n    \
         cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us\n    head -c 3 /dev/myzero | wc -c\n    \
         cat /proc/timer_list 2>&1 | wc -c; echo 1 > /proc/sys/vm/overcommit_memory || echo ro-proc-sys\n    \
         unshare -n true 2>/dev/null && echo unshared || echo no-unshare",
    ) + &svc("boss", "privileged: true\ncommand: [\"sh\", \"-c\", \"grep CapBnd /proc/self/status; unshare -n true && echo unshared\"]");
    let p = Project::new("host_files", &services);
    let out = p.ok(&["run", "--rm", "-T", "app"]);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        vec![
            "web",
            "example.test",
            "10.0.0.2\tdb",
            "16384",
            "1024",
            "NoNewPrivs:\t1",
            "10",
            "50000",
            "3",
            "0",
            "ro-proc-sys",
            "no-unshare",
        ],
        "{out}"
    );
    let out = p.ok(&["run", "--rm", "-T", "boss"]);
    assert!(out.contains("unshared"), "{out}");
    let bnd = cap_mask(&out, "CapBnd:");
    assert_eq!(bnd & (1 << 21), 1 << 21, "privileged has CAP_SYS_ADMIN: {out}");
    p.assert_clean();
}

/// The host's character and block devices directly under `/dev` (runc leaves out `console`).
fn host_device_names() -> Vec<String> {
    use std::os::unix::fs::FileTypeExt;
    std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_char_device() || t.is_block_device()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "console")
        .collect()
}

#[test]
fn privileged_gets_the_host_devices_and_plain_does_not() {
    // `/dev/kmsg` (the kernel log) is on every Linux host; `/dev/loop-control` where the loop
    // driver is, as on Debian's kernels; both are in none of Docker's default devices.
    let host = host_device_names();
    assert!(host.iter().any(|n| n == "kmsg"), "this host has no /dev/kmsg: {host:?}");
    let services = svc(
        "boss",
        "privileged: true\ncommand: [\"sh\", \"-c\", \"ls /dev; head -n 1 /dev/kmsg >/dev/null && echo kmsg-readable\"]",
    ) + &svc(
        "plain",
        // The device cgroup lets it make the node (Docker allows mknod) but not open it.
        "command: [\"sh\", \"-c\", \"ls /dev; mknod /kmsg-node c 1 11; head -n 1 /kmsg-node >/dev/null 2>&1 \
         && echo kmsg-readable || echo kmsg-denied\"]",
    );
    let p = Project::new("privdev", &services);
    let boss = p.ok(&["run", "--rm", "-T", "boss"]);
    let seen: Vec<&str> = boss.lines().map(str::trim).collect();
    for name in &host {
        assert!(seen.contains(&name.as_str()), "privileged container lacks /dev/{name}: {seen:?}");
    }
    assert!(seen.contains(&"kmsg-readable"), "{boss}");
    let plain = p.ok(&["run", "--rm", "-T", "plain"]);
    let seen: Vec<&str> = plain.lines().map(str::trim).collect();
    for name in ["kmsg", "loop-control", "loop0"] {
        assert!(!seen.contains(&name), "unprivileged container has /dev/{name}: {seen:?}");
    }
    assert!(seen.contains(&"kmsg-denied"), "{plain}");
    p.assert_clean();
}

#[test]
fn a_state_row_that_cannot_be_read_is_named_and_down_takes_down_the_rest() {
    let services = svc("keep", "init: true\ncommand: [\"sleep\", \"60\"]")
        + &svc("spoilt", "init: true\ncommand: [\"sleep\", \"60\"]\nstop_signal: KILL");
    let p = Project::new("badrow", &services);
    let db = p.root.path().join("state.db");
    let config_of = |name: &str| -> String {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row("SELECT config FROM containers WHERE name = ?1", [name], |r| r.get(0)).unwrap()
    };
    let set_config = |name: &str, config: &str| {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute("UPDATE containers SET config = ?2 WHERE name = ?1", [name, config]).unwrap();
    };
    let spoilt = format!("{}-spoilt-1", p.name);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        let good = config_of(&spoilt);
        set_config(&spoilt, r#"{"command": "not a list"}"#);
        // A command that reads it says which container's row is bad, and stops.
        let out = p.berth(&["ps"]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr_of(&out);
        assert!(err.contains(&format!("the row of container `{spoilt}` cannot be read: its config")), "{err}");
        // `down` says so too and takes down the rest.
        let out = p.berth(&["down"]);
        let err = stderr_of(&out);
        assert!(out.status.success(), "{err}");
        assert!(err.contains(&format!("container `{spoilt}` cannot be read")), "{err}");
        let conn = rusqlite::Connection::open(&db).unwrap();
        let left: Vec<String> = conn
            .prepare("SELECT name FROM containers")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(left, [spoilt.as_str()]);
        // Mended, it goes with the next `down`.
        set_config(&spoilt, &good);
    }));
    p.finish(result);
}
