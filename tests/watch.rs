//! System test (root): `berth watch` applies `develop.watch` rules to running containers —
//! files created, rewritten and deleted, ignored paths left alone, subdirectories, a directory
//! removed and one renamed into the watched path, `initial_sync`, `sync+restart`, `sync+exec` —
//! with no shell or `tar` needed in the container; an edit of the compose file recreates the
//! changed service only, a broken edit keeps the stack running, a second watch of the same
//! project is refused, and a `rebuild` rule builds the image again and recreates the service.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::process::{Child, Stdio};

use harness::Project;

const IMAGE: &str = "berth-test/busybox:latest";

/// A running `berth watch --no-up` whose stderr goes to a file; stopped with SIGINT on drop.
struct Watching {
    child: Child,
    log: std::path::PathBuf,
}

impl Watching {
    fn start(p: &Project) -> Watching {
        let log = p.dir.path().join("watch.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = p.cmd(&["watch", "--no-up"]).stdout(Stdio::null()).stderr(file).spawn().expect("start watch");
        let w = Watching { child, log };
        p.wait_for(30, "the watch to start", || w.output().contains("watching"));
        w
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(mut self) -> String {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::Signal::SIGINT)
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "watch ended with {status}: {}", self.output());
        self.output()
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The content of `path` in service `service`'s container, read with busybox itself (the
/// container has no `sh`, `cat` or `tar` on its PATH).
fn read(p: &Project, service: &str, path: &str) -> Option<String> {
    let out = p.berth(&["exec", "-T", service, "/bin/busybox", "cat", path]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn write(p: &Project, rel: &str, text: &str) {
    let path = p.dir.path().join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn stack() -> String {
    format!(
        r#"  app:
    image: {IMAGE}
    # No shell or tar left on the PATH: sync needs no tool in the image.
    command: [/bin/busybox, sh, -c, "rm -f /bin/sh /bin/tar /bin/cat; exec /bin/busybox sleep 600"]
    environment: {{COLOR: blue}}
    develop:
      watch:
        - {{path: ./src, action: sync, target: /app, ignore: [ignored/, "*.tmp"]}}
        - {{path: ./seed, action: sync, target: /seed, initial_sync: true}}
        - {{path: ./cmd, action: sync+exec, target: /cmd, exec: {{command: [/bin/busybox, echo, "exec ran"]}}}}
        - {{path: ./conf, action: sync+restart, target: /conf}}
        - {{path: ./later/deep, action: sync, target: /later}}
  other:
    image: {IMAGE}
    command: [/bin/busybox, sleep, "600"]
    # Follows app's restarts.
    depends_on:
      app: {{condition: service_started, restart: true}}
"#
    )
}

#[test]
fn watch_syncs_restarts_execs_and_reloads() {
    let p = Project::new("watch", &stack());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        write(&p, "seed/a.txt", "seeded");
        std::fs::create_dir_all(p.dir.path().join("src")).unwrap();
        p.ok(&["up", "-d"]);
        let w = Watching::start(&p);
        let twice = p.berth(&["watch", "--no-up"]);
        assert_eq!(twice.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&twice.stderr).contains("already runs"), "{twice:?}");
        // initial_sync brought the seed over before the watch began.
        assert_eq!(read(&p, "app", "/seed/a.txt").as_deref(), Some("seeded"));

        // Create, rewrite, delete.
        write(&p, "src/hello.txt", "one");
        p.wait_for(20, "a new file", || read(&p, "app", "/app/hello.txt").as_deref() == Some("one"));
        write(&p, "src/hello.txt", "two");
        p.wait_for(20, "a rewritten file", || read(&p, "app", "/app/hello.txt").as_deref() == Some("two"));
        std::fs::remove_file(p.dir.path().join("src/hello.txt")).unwrap();
        p.wait_for(20, "a deleted file", || read(&p, "app", "/app/hello.txt").is_none());
        // Ignored paths stay out; a subdirectory comes over, then goes with its directory.
        write(&p, "src/ignored/secret.txt", "no");
        write(&p, "src/note.tmp", "no");
        write(&p, "src/sub/deep/file.txt", "deep");
        p.wait_for(20, "a file in a new subdirectory", || {
            read(&p, "app", "/app/sub/deep/file.txt").as_deref() == Some("deep")
        });
        assert!(read(&p, "app", "/app/ignored/secret.txt").is_none() && read(&p, "app", "/app/note.tmp").is_none());
        std::fs::remove_dir_all(p.dir.path().join("src/sub")).unwrap();
        p.wait_for(20, "a removed directory", || read(&p, "app", "/app/sub/deep/file.txt").is_none());
        // A directory renamed into the watched path comes over whole.
        write(&p, "staging/moved/inner.txt", "moved");
        std::fs::rename(p.dir.path().join("staging/moved"), p.dir.path().join("src/moved")).unwrap();
        p.wait_for(20, "a directory moved in", || read(&p, "app", "/app/moved/inner.txt").as_deref() == Some("moved"));
        // Many repeated writes end with the last.
        for i in 0..50 {
            write(&p, "src/counter.txt", &i.to_string());
        }
        p.wait_for(20, "the last of many writes", || read(&p, "app", "/app/counter.txt").as_deref() == Some("49"));

        // A rule path that did not exist when the watch began is watched once it appears.
        write(&p, "later/deep/first.txt", "appeared");
        p.wait_for(20, "a path that appeared", || read(&p, "app", "/later/first.txt").as_deref() == Some("appeared"));
        write(&p, "later/deep/second.txt", "and then changed");
        p.wait_for(20, "a change in it", || {
            read(&p, "app", "/later/second.txt").as_deref() == Some("and then changed")
        });

        // sync+exec runs the command after syncing, and shows its output.
        write(&p, "cmd/x", "x");
        p.wait_for(20, "sync+exec", || {
            w.output().contains("exec ran") && w.output().contains("ran `/bin/busybox echo")
        });
        // sync+restart restarts the container after syncing.
        // The start time of the container's init (in clock ticks since boot) changes with a restart.
        let init_start = || p.ok(&["exec", "-T", "app", "/bin/busybox", "cut", "-d", " ", "-f22", "/proc/1/stat"]);
        let started = init_start();
        let other_start = || p.ok(&["exec", "-T", "other", "/bin/busybox", "cut", "-d", " ", "-f22", "/proc/1/stat"]);
        let other_started = other_start();
        write(&p, "conf/app.conf", "v2");
        p.wait_for(30, "sync+restart", || w.output().contains("restarted"));
        assert_ne!(init_start(), started, "restarted");
        assert_ne!(other_start(), other_started, "a dependent with `restart: true` follows");
        assert_eq!(read(&p, "app", "/conf/app.conf").as_deref(), Some("v2"));

        // An edit of the compose file recreates the changed service only.
        let other = p.container(&format!("{}-other-1", p.name))["ID"].clone();
        let app = p.container(&format!("{}-app-1", p.name))["ID"].clone();
        std::fs::write(
            p.dir.path().join("compose.yaml"),
            format!("name: {}\nservices:\n{}", p.name, stack().replace("COLOR: blue", "COLOR: green")),
        )
        .unwrap();
        p.wait_for(60, "the reload", || w.output().contains("reloaded and applied"));
        let ids = || p.container_ids().into_iter().collect::<std::collections::BTreeSet<_>>();
        let green = ids();
        assert_ne!(p.container(&format!("{}-app-1", p.name))["ID"], app, "app recreated");
        assert_eq!(p.container(&format!("{}-other-1", p.name))["ID"], other, "other untouched");
        let env = p.ok(&["exec", "-T", "app", "/bin/busybox", "env"]);
        assert!(env.contains("COLOR=green"), "{env}");
        // A broken edit says where, and the stack runs as it was.
        std::fs::write(
            p.dir.path().join("compose.yaml"),
            format!("name: {}\nservices:\n  app: [not, a, service\n", p.name),
        )
        .unwrap();
        p.wait_for(30, "the refused reload", || w.output().contains("not reloaded"));
        assert!(w.output().contains("compose.yaml"), "the error names the file: {}", w.output());
        let out = w.stop();
        assert!(out.contains("app  synced 1 file"), "{out}");
        p.write_compose(&stack().replace("COLOR: blue", "COLOR: green"));
        assert_eq!(p.ps().iter().filter(|c| c["State"] == "running").count(), 2, "the stack ran on");
        assert_eq!(ids(), green);
    }));
    p.finish(result);
}

#[test]
fn up_watch_streams_logs_syncs_and_ctrl_c_stops_the_stack() {
    let services = format!(
        r#"  web:
    image: {IMAGE}
    command: [/bin/busybox, sh, -c, "echo web is up; exec /bin/busybox sleep 600"]
    develop:
      watch:
        - {{path: ./site, action: sync, target: /site}}
"#
    );
    let p = Project::new("upwatch", &services);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        std::fs::create_dir_all(p.dir.path().join("site")).unwrap();
        let log = p.dir.path().join("up.log");
        let file = std::fs::File::create(&log).unwrap();
        let err = file.try_clone().unwrap();
        let mut child = p.cmd(&["up", "--watch"]).stdout(file).stderr(err).spawn().unwrap();
        let output = || std::fs::read_to_string(&log).unwrap_or_default();
        p.wait_for(30, "logs and the watch", || output().contains("web is up") && output().contains("watching"));
        write(&p, "site/index.html", "hi");
        p.wait_for(20, "the sync", || read(&p, "web", "/site/index.html").as_deref() == Some("hi"));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{}", output());
        assert!(p.ps().iter().all(|c| c["State"] == "exited"), "Ctrl-C stops the stack: {:?}", p.ps());
        assert!(p.berth(&["up", "-d", "--watch"]).status.code() == Some(1), "--watch needs the foreground");
    }));
    p.finish(result);
}

#[test]
fn a_tree_of_fifty_thousand_files_is_watched_whole() {
    let services = format!(
        r#"  app:
    image: {IMAGE}
    command: [/bin/busybox, sleep, "600"]
    develop:
      watch:
        - {{path: ./tree, action: sync, target: /tree}}
"#
    );
    let p = Project::new("bigtree", &services);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // 50,000 files in 500 directories, two levels deep.
        for d in 0..500 {
            let dir = p.dir.path().join(format!("tree/d{}/e{d}", d % 25));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..100 {
                std::fs::write(dir.join(format!("f{f}.txt")), "x").unwrap();
            }
        }
        p.ok(&["up", "-d"]);
        let w = Watching::start(&p);
        write(&p, "tree/d24/e499/f99.txt", "the last one changed");
        p.wait_for(20, "a change deep in the tree", || {
            read(&p, "app", "/tree/d24/e499/f99.txt").as_deref() == Some("the last one changed")
        });
        write(&p, "tree/d0/e0/new.txt", "and the first directory");
        p.wait_for(20, "a new file in the first directory", || {
            read(&p, "app", "/tree/d0/e0/new.txt").as_deref() == Some("and the first directory")
        });
        let out = w.stop();
        assert!(out.contains("synced 1 file"), "{out}");
    }));
    p.finish(result);
}

#[test]
fn a_rebuild_rule_builds_the_image_again_and_recreates_the_service() {
    let services = "  base:\n    build: ./base\n    init: true\n    command: [sleep, \"300\"]\n  app:\n    build: ./app\n    init: true\n    command: [sleep, \"300\"]\n    depends_on: [base]\n    develop:\n      watch:\n        - {path: ./app, action: rebuild}\n";
    let p = Project::new("watchrebuild", services);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        write(&p, "app/Dockerfile", &format!("FROM {IMAGE}\nCOPY msg /msg\n"));
        write(&p, "app/msg", "one\n");
        write(&p, "base/Dockerfile", &format!("FROM {IMAGE}\nRUN echo base > /base\n"));
        p.ok(&["up", "-d"]);
        let name = format!("{}-app-1", p.name);
        let first = p.container(&name)["ID"].clone();
        let base = p.container(&format!("{}-base-1", p.name))["ID"].clone();
        let w = Watching::start(&p);
        write(&p, "app/msg", "two\n");
        p.wait_for(60, "the service recreated from the new image", || {
            p.ps().iter().any(|c| c["Name"] == name.as_str() && c["ID"] != first && c["State"] == "running")
        });
        assert_eq!(read(&p, "app", "/msg").as_deref(), Some("two\n"));
        assert_eq!(p.container(&format!("{}-base-1", p.name))["ID"], base, "its dependency is not rebuilt");
        w.stop();
    }));
    p.finish(result);
}
