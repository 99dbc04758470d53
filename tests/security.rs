//! System tests (root) of berth's safety guarantees: what other local users can read after a
//! full `up` (nothing), names that would become paths outside berth's directories (refused
//! before anything is made), and containers whose users are not root still working with berth's
//! private umask.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const SERVICES: &str = r#"  db:
    image: berth-test/busybox:latest
    init: true
    environment:
      DB_PASSWORD: hunter2-in-env
    command: [sh, -c, "echo started with $$DB_PASSWORD; exec sleep 300"]
    volumes: ["data:/var/lib/db"]
    secrets: [token]
  app:
    image: berth-test/busybox:latest
    init: true
    user: "65534:65534"
    command: [sleep, "300"]
    volumes: ["data:/data:ro", "/scratch"]
    secrets:
      - source: token
        uid: "65534"
        mode: 0400
volumes:
  data:
secrets:
  token:
    environment: SEC_TOKEN
"#;

/// What user `nobody` can read under `dir`, as `find -readable` (access(2)) sees it.
fn readable_by_nobody(dir: &Path) -> Vec<String> {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "find"])
        .arg(dir)
        .args(["-readable", "-print"])
        .output()
        .expect("run setpriv (util-linux)");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Files under `dir` whose mode lets group or others in at all.
fn open_files(dir: &Path, names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            // Container file systems mirror their images (0644 is right there): do not descend.
            if meta.is_dir() && !matches!(name.as_str(), "rootfs" | "upper" | "_data" | "layers" | "secrets") {
                stack.push(path.clone());
            }
            let sensitive = names.iter().any(|n| name == *n || name.starts_with(&format!("{n}.")));
            if sensitive && meta.permissions().mode() & 0o077 != 0 {
                out.push(format!("{} {:o}", path.display(), meta.permissions().mode() & 0o7777));
            }
        }
    }
    out
}

#[test]
fn nothing_berth_keeps_is_readable_by_other_users() {
    let p = harness::Project::new("perms", SERVICES);
    // Roots left open by an older berth (or made by hand) are closed again.
    for d in [p.root.path(), p.run.path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let out = p.cmd(&["up", "-d"]).env("SEC_TOKEN", "s3cret-token").output().unwrap();
        assert!(out.status.success(), "up: {}", String::from_utf8_lossy(&out.stderr));
        p.wait_for(10, "db's log line", || p.ok(&["logs", "db"]).contains("hunter2"));

        for d in [p.root.path(), p.run.path()] {
            let mode = std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", d.display());
            let seen = readable_by_nobody(d);
            assert!(seen.is_empty(), "user nobody can read under {}: {seen:?}", d.display());
        }
        // Each file that holds a secret is private by itself too, not only through its parent.
        let names = ["state.db", "config.json", "container.log", "runtime.log", "monitor.log"];
        let mut open = open_files(p.root.path(), &names);
        open.extend(open_files(p.run.path(), &names));
        assert!(open.is_empty(), "files open to group or others: {open:?}");

        // Containers do not inherit berth's umask: a non-root user reads its name files, lists
        // `/`, reads its own secret and the volume, and files made in them are 0644.
        let check = "cat /etc/hosts /etc/resolv.conf /etc/hostname >/dev/null && ls / >/dev/null \
                     && cat /run/secrets/token && ls /data >/dev/null && touch /tmp/f && stat -c %a /tmp/f";
        assert_eq!(p.ok(&["exec", "-T", "app", "sh", "-c", check]), "s3cret-token644\n");
        let made =
            p.ok(&["exec", "-T", "db", "sh", "-c", "touch /var/lib/db/f && stat -c %a /var/lib/db/f /var/lib/db"]);
        assert_eq!(made, "644\n755\n", "files made in a container get Docker's umask");
        let mounted = p.ok(&["exec", "-T", "-u", "65534", "db", "sh", "-c", "stat -c %a /run/secrets"]);
        assert_eq!(mounted.trim(), "755", "mount points the runtime makes are open");
    }));
    p.finish(result);
}

#[test]
fn a_container_name_that_climbs_out_is_refused_and_nothing_is_touched() {
    let p =
        harness::Project::new("escape", "  ok:\n    image: berth-test/busybox:latest\n    command: [sleep, \"1\"]\n");
    let victim = p.dir.path().join("x/victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("keep"), "precious").unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let bad = [
            "  app:\n    image: berth-test/busybox:latest\n    container_name: \"../../x/victim\"\n",
            "  app:\n    image: berth-test/busybox:latest\n    container_name: \"a/b\"\n",
            "  \"a/../../x\":\n    image: berth-test/busybox:latest\n",
        ];
        for services in bad {
            p.write_compose(services);
            for args in [&["config"][..], &["up", "-d"], &["up", "--dry-run"], &["down"]] {
                let out = p.berth(args);
                let err = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(1), "{args:?} with {services:?}: {err}");
                assert!(err.contains("compose.yaml:"), "{args:?}: the error names the file and line: {err}");
            }
        }
        assert_eq!(std::fs::read_to_string(victim.join("keep")).unwrap(), "precious");
        assert!(!p.run.path().join("x").exists() && !p.run.path().join("secrets").exists());
        // A container name from the command line gets the same check.
        p.write_compose("  ok:\n    image: berth-test/busybox:latest\n    command: [sleep, \"1\"]\n");
        let out = p.berth(&["run", "--name", "../../x/victim", "ok", "true"]);
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("invalid container name"));
        assert_eq!(std::fs::read_to_string(victim.join("keep")).unwrap(), "precious");
    }));
    p.finish(result);
}

/// A tmpfs over the project's state root, unmounted on drop.
struct SmallFs(std::path::PathBuf);

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Fills the file system under `dir` to the last byte.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 1 << 16];
    while f.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    while f.write_all(&small[..1]).is_ok() {}
}

/// A sleep no other test process runs.
fn sleep_secs() -> u32 {
    100_000 + std::process::id()
}

fn running(p: &harness::Project) -> usize {
    let _ = p;
    let out = Command::new("pgrep").args(["-f", &format!("^sleep {}$", sleep_secs())]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn a_full_state_disk_never_keeps_a_container_running() {
    let p = harness::Project::new("fulldisk", "");
    let sleep = format!("[sleep, \"{}\"]", sleep_secs());
    let services = format!(
        "  a:\n    image: berth-test/busybox:latest\n    command: {sleep}\n  b:\n    image: berth-test/busybox:latest\n    command: {sleep}\n  c:\n    image: berth-test/busybox:latest\n    init: true\n    command: {sleep}\n    volumes: [\"data:/data\"]\nvolumes:\n  data:\n"
    );
    p.write_compose(&services);
    nix::mount::mount(
        Some("tmpfs"),
        p.root.path(),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=64m,mode=0700"),
    )
    .unwrap();
    let fs = SmallFs(p.root.path().to_path_buf());
    p.load_images();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        assert_eq!(running(&p), 3);
        fill(p.root.path());
        // Each command does what it is for first; what it cannot write down it says.
        let out = p.berth(&["kill", "a"]);
        assert!(out.status.success(), "kill: {}", String::from_utf8_lossy(&out.stderr));
        let out = p.berth(&["stop", "-t", "1", "b"]);
        assert!(out.status.success(), "stop: {}", String::from_utf8_lossy(&out.stderr));
        p.wait_for(10, "a and b to exit", || running(&p) == 1);
        let out = p.berth(&["down"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        eprintln!("down on a full disk said:\n{err}");
        assert_eq!(running(&p), 0, "down stopped everything: {err}");
        assert!(p.bridges().is_empty(), "down removed the network: {err}");
        // With room again, the state catches up: nothing is left.
        std::fs::remove_file(p.root.path().join("filler")).unwrap();
        p.ok(&["down"]);
        assert!(p.ps().is_empty());
    }));
    let down = p.berth(&["down", "-v"]);
    drop(fs);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(down.status.success(), "down: {}", String::from_utf8_lossy(&down.stderr));
    p.assert_clean();
}

#[test]
fn a_dry_run_that_passes_means_up_can_run() {
    let p = harness::Project::new("dryhost", "");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let image = "    image: berth-test/busybox:latest\n    command: [sleep, \"5\"]\n";
    let cases = [
        (format!("  a:\n{image}    secrets: [s]\nsecrets:\n  s:\n    file: ./missing.txt\n"), "missing.txt"),
        (format!("  a:\n{image}    secrets: [s]\nsecrets:\n  s:\n    external: true\n"), "external"),
        (format!("  a:\n{image}    volumes: [\"v:/v\"]\nvolumes:\n  v:\n    driver: nfs-magic\n"), "nfs-magic"),
        (format!("  a:\n{image}    networks: [n]\nnetworks:\n  n:\n    driver: overlay\n"), "overlay"),
        (format!("  a:\n{image}    volumes: [{{type: image, source: busybox, target: /i}}]\n"), "image"),
        (
            format!(
                "  a:\n{image}    volumes: [{{type: bind, source: /nonexistent-{}, target: /x, bind: {{create_host_path: false}}}}]\n",
                p.name
            ),
            "nonexistent",
        ),
        (format!("  a:\n{image}    ports: [\"127.0.0.1:{port}:80\"]\n"), "in use"),
    ];
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for (services, says) in &cases {
            p.write_compose(services);
            for args in [&["up", "--dry-run"][..], &["up", "-d"]] {
                let out = p.berth(args);
                let err = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(1), "{args:?} of {services}: {err}");
                assert!(err.contains(says), "{args:?} of {services}: {err}");
                assert!(p.ps().is_empty(), "{args:?} made a container");
                assert!(p.bridges().is_empty(), "{args:?} made a network: {services}");
                let volumes = p.ok(&["volume", "ls", "-q"]);
                assert!(volumes.trim().is_empty(), "{args:?} made volumes: {volumes}");
            }
        }
    }));
    drop(taken);
    p.finish(result);
}

#[test]
fn a_services_own_runtime_is_used_and_checked() {
    let p = harness::Project::new(
        "ownruntime",
        "  app:\n    image: berth-test/busybox:latest\n    init: true\n    command: [sleep, \"300\"]\n    runtime: runc\n",
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        p.ok(&["exec", "-T", "app", "true"]);
        p.write_compose("  app:\n    image: berth-test/busybox:latest\n    runtime: no-such-runtime\n");
        for args in [&["up", "--dry-run"][..], &["up", "-d", "--force-recreate"]] {
            let out = p.berth(args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(err.contains("services.app.runtime") && err.contains("no-such-runtime"), "{err}");
        }
    }));
    p.finish(result);
}
