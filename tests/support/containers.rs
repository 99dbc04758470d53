//! Harness of the container system tests: a project in a temp dir with its own `BERTH_ROOT` and
//! `BERTH_RUN`, the fixture images loaded through `berth image load` (Docker archives made from
//! the fixture layout with skopeo), the real binary, and a Drop guard that removes everything the
//! test made — containers, monitors, runtime state, mounts, cgroups — and checks that nothing is
//! left.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::fixture_layout;

/// The `berth` binary under test.
pub fn berth_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

/// `docker save`-style archives of the fixture images (`busybox`, `config`), built once.
fn archives() -> &'static Vec<PathBuf> {
    static A: OnceLock<Vec<PathBuf>> = OnceLock::new();
    A.get_or_init(|| {
        let layout = fixture_layout();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("berth-container-images");
        std::fs::create_dir_all(&dir).unwrap();
        ["busybox", "config"]
            .iter()
            .map(|name| {
                // Made once per fixture build (the layout's index names it), shared by test processes.
                let stamp = std::fs::metadata(layout.join("index.json")).and_then(|m| m.modified()).ok();
                let stamp = stamp.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs());
                let out = dir.join(format!("{name}-{}.tar", stamp.unwrap_or(0)));
                if out.exists() {
                    return out;
                }
                let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
                let _ = std::fs::remove_file(&tmp);
                let st = Command::new("skopeo")
                    .args(["copy", "--quiet"])
                    .arg(format!("oci:{}:{name}", layout.display()))
                    .arg(format!("docker-archive:{}:berth-test/{name}:latest", tmp.display()))
                    .status()
                    .expect("run skopeo (Debian package skopeo)");
                assert!(st.success(), "skopeo could not export {name}");
                std::fs::rename(&tmp, &out).unwrap();
                out
            })
            .collect()
    })
}

/// One test's project: compose file, roots, and cleanup.
pub struct Project {
    /// Unique project name.
    pub name: String,
    /// The project directory (holds `compose.yaml`).
    pub dir: tempfile::TempDir,
    /// `BERTH_ROOT`.
    pub root: tempfile::TempDir,
    /// `BERTH_RUN`.
    pub run: tempfile::TempDir,
    /// Every container id `ps` ever showed (to check their cgroups are gone).
    seen: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

const CGROUP_CONTROLLERS: &[&str] =
    &["memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "systemd", "unified", ""];

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Project {
    /// A project whose `services:` block is `services` (YAML, indented by two spaces); the
    /// images `berth-test/busybox:latest` and `berth-test/config:latest` are loaded.
    pub fn new(test: &str, services: &str) -> Project {
        crate::support::require_root("running containers");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{}x{n}{}", std::process::id(), test.replace('_', "").chars().take(16).collect::<String>());
        let p = Project {
            name: name.clone(),
            dir: tempfile::Builder::new().prefix("berth-proj-").tempdir().unwrap(),
            root: tempfile::Builder::new().prefix("berth-root-").tempdir().unwrap(),
            run: tempfile::Builder::new().prefix("berth-run-").tempdir().unwrap(),
            seen: Default::default(),
        };
        p.write_compose(services);
        p.load_images();
        p
    }

    /// Loads the fixture images into the project's root (again, after it was replaced by a
    /// mount, say).
    pub fn load_images(&self) {
        for a in archives() {
            let out = self.berth(&["image", "load", "-i", a.to_str().unwrap()]);
            assert!(out.status.success(), "image load: {}", String::from_utf8_lossy(&out.stderr));
        }
    }

    /// Rewrites `compose.yaml`.
    pub fn write_compose(&self, services: &str) {
        std::fs::write(self.dir.path().join("compose.yaml"), format!("name: {}\nservices:\n{services}", self.name))
            .unwrap();
    }

    /// A command running berth in the project.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(berth_bin());
        c.args(args)
            .current_dir(self.dir.path())
            .env("BERTH_ROOT", self.root.path())
            .env("BERTH_RUN", self.run.path())
            .env("NO_COLOR", "1")
            .env_remove("BERTH_RUNTIME")
            .stdin(Stdio::null());
        c
    }

    /// Runs berth and returns its output.
    pub fn berth(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run berth")
    }

    /// Runs berth, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pid of container `id`'s monitor, as its state row records it.
    #[allow(dead_code)]
    pub fn monitor_pid(&self, id: &str) -> i32 {
        let db = berth::state::StateDb::open(self.root.path()).unwrap();
        let rec = db.container(id).unwrap().unwrap_or_else(|| panic!("no container {id}"));
        let pid = rec.monitor_pid.unwrap_or_else(|| panic!("container {id} has no monitor"));
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "monitor {pid} of {id} is gone");
        pid
    }

    /// `ps -a --format json`, one value per container.
    pub fn ps(&self) -> Vec<serde_json::Value> {
        let rows: Vec<serde_json::Value> =
            self.ok(&["ps", "-a", "--format", "json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        for r in &rows {
            self.seen.borrow_mut().insert(r["ID"].as_str().unwrap_or_default().to_string());
        }
        rows
    }

    /// The `ps` entry of a container by name.
    pub fn container(&self, name: &str) -> serde_json::Value {
        self.ps().into_iter().find(|c| c["Name"] == name).unwrap_or_else(|| panic!("no container {name}"))
    }

    /// Waits until `f` holds (up to `secs`).
    pub fn wait_for(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Container ids known under the root (from their directories).
    pub fn container_ids(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path().join("containers"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }

    /// Ends a test body run under `catch_unwind`: `down -v` whatever happened, then the body's
    /// panic if it had one, else checks that `down` worked and nothing is left.
    pub fn finish(&self, result: std::thread::Result<()>) {
        let down = self.berth(&["down", "-v"]);
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
        assert!(down.status.success(), "down: {}", String::from_utf8_lossy(&down.stderr));
        self.assert_clean();
    }

    /// The bridges of the project's networks (per `compose.yaml`) that exist on the host.
    pub fn bridges(&self) -> Vec<String> {
        let yaml = std::fs::read_to_string(self.dir.path().join("compose.yaml")).unwrap();
        let project = berth_compose::load_str(&yaml, self.dir.path()).unwrap().project;
        project
            .networks
            .iter()
            .filter_map(|(k, n)| Some(berth::stack::netmodel::network_spec(k, n).ok()?.bridge.to_string()))
            .filter(|b| Path::new("/sys/class/net").join(b).exists())
            .collect()
    }

    /// The leases of this root's state database held by containers whose name contains `part`,
    /// as `network owner address` lines.
    pub fn leases_of(&self, part: &str) -> Vec<String> {
        let db = berth::state::StateDb::open(self.root.path()).unwrap();
        let leases = db.all_leases().unwrap();
        leases
            .iter()
            .filter(|l| l.owner.contains(part))
            .map(|l| format!("{} {} {}", l.network, l.owner, l.addr))
            .collect()
    }

    /// Asserts that nothing of the project is left: state rows, container directories, mounts,
    /// cgroups, monitor or container processes, runtime state.
    pub fn assert_clean(&self) {
        // A `run --rm` container is removed by its monitor just after its client heard of the exit.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut rows = self.ps();
        while !rows.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            rows = self.ps();
        }
        assert!(rows.is_empty(), "containers left: {rows:?}");
        let ids = self.container_ids();
        assert!(ids.is_empty(), "container directories left: {ids:?}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let root = self.root.path().to_string_lossy().into_owned();
        assert!(!mounts.contains(&root), "mounts left under {root}");
        let runc_root = self.run.path().join("runtime/runc");
        let runtime_state = || -> Vec<std::fs::DirEntry> {
            std::fs::read_dir(&runc_root).map(|d| d.filter_map(|e| e.ok()).collect()).unwrap_or_default()
        };
        // The monitor of a `run --rm` container deletes its runtime state after the row.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut left = runtime_state();
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            left = runtime_state();
        }
        assert!(left.is_empty(), "runtime state left: {left:?}");
        for id in self.seen.borrow().iter() {
            for ctl in CGROUP_CONTROLLERS {
                let p = Path::new("/sys/fs/cgroup").join(ctl).join(format!("berth-{id}"));
                assert!(!p.exists(), "cgroup left: {}", p.display());
            }
        }
        // A monitor may still be on its last steps after its client heard of the exit.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut procs = processes_mentioning(self.run.path());
        while !procs.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            procs = processes_mentioning(self.run.path());
        }
        assert!(procs.is_empty(), "processes left: {procs:?}");
    }
}

/// Runs `f` on a new project made of `services`, then `down`s it (`-v --remove-orphans`) and
/// checks the host is clean, whether `f` passed or not.
pub fn scenario(test: &str, services: &str, f: impl FnOnce(&Project)) {
    let p = Project::new(test, services);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&p)));
    let down = p.berth(&["down", "-v", "--remove-orphans"]);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(down.status.success(), "down: {}", String::from_utf8_lossy(&down.stderr));
    p.assert_clean();
}

/// Pids whose environment or command line mentions `needle` (our monitors carry `BERTH_RUN`).
pub fn processes_mentioning(needle: &Path) -> Vec<i32> {
    let n = needle.to_string_lossy().into_owned();
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
            !zombie && (String::from_utf8_lossy(&env).contains(&n) || String::from_utf8_lossy(&cmd).contains(&n))
        })
        .collect()
}

impl Project {
    /// What a reboot does to the project: every process gone, the runtime's state, mounts,
    /// cgroups, bridges and firewall rules gone, and the run directory (a tmpfs) emptied; the
    /// state root stays.
    pub fn reboot(&self) {
        self.tear_down_by_hand();
        for e in std::fs::read_dir(self.run.path()).unwrap().flatten() {
            let _ = std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
        }
    }

    fn tear_down_by_hand(&self) {
        let runc_root = self.run.path().join("runtime/runc");
        for pid in processes_mentioning(self.run.path()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        for id in self.container_ids() {
            let _ = Command::new("runc").arg("--root").arg(&runc_root).args(["delete", "--force", &id]).output();
            let rootfs = self.root.path().join("containers").join(&id).join("bundle/rootfs");
            let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
            for ctl in CGROUP_CONTROLLERS {
                let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(ctl).join(format!("berth-{id}")));
            }
        }
        // Mounts under the roots (namespace files, secrets, scratch, volumes), deepest first.
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let roots = [self.root.path().to_string_lossy().into_owned(), self.run.path().to_string_lossy().into_owned()];
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| roots.iter().any(|r| m.starts_with(r)))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
        }
        // The bridges this root made (every one it recorded is the test's), and its nft table.
        let networks = berth::state::StateDb::open(self.root.path()).and_then(|db| db.networks()).unwrap_or_default();
        for record in networks {
            let _ = Command::new("ip").args(["link", "del", &record.bridge]).output();
        }
        let table = berth::stack::engine::firewall_table(self.root.path());
        let _ = Command::new("nft").args(["delete", "table", "inet", &table]).output();
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // Best effort, whatever state the test left: the CLI first, then by hand.
        let _ = self.berth(&["down", "-v", "--remove-orphans", "-t", "0"]);
        let _ = self.berth(&["rm", "--force"]);
        self.tear_down_by_hand();
    }
}
