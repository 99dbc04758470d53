//! System tests (root): volumes through `berth up`/`down` with the real binary — a named
//! volume's data across `down` + `up` and a recreate, copy-up from the image, `down -v`;
//! external volumes; read-only binds and secrets as the container sees them; two projects with
//! the same volume key; `volumes_from`; local-driver volumes mounted only while used; and bad
//! input that fails before anything is made. Each test takes its projects down and checks that
//! no container, volume, bridge, namespace or mount is left, even when it fails.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::path::PathBuf;
use std::process::Output;

use berth_volumes::store::is_mount_point;

const IMAGE: &str = "berth-test/busybox:latest";
/// The compose file a test starts with when it writes its own later.
const PLACEHOLDER: &str = "  app:\n    image: berth-test/busybox:latest\n";

/// A project under test, with the names of any other projects the test brings up from the same
/// files and roots (`-p`). Dropping it takes them all down (`down -v`) and detaches whatever is
/// still mounted under the test's directories, whatever the test did; the harness then removes
/// what is left of the containers.
struct Stack {
    p: harness::Project,
    others: Vec<String>,
}

impl Stack {
    fn new(test: &str, services: &str) -> Stack {
        Stack { p: harness::Project::new(test, services), others: Vec::new() }
    }

    /// Runs berth for project `name` (this one or another), from the same files and roots.
    fn berth_as(&self, name: &str, args: &[&str]) -> Output {
        let mut all = vec!["-p", name];
        all.extend_from_slice(args);
        self.p.berth(&all)
    }

    /// `exec -T SERVICE sh -c SCRIPT` for project `name`; returns the output.
    fn sh_as(&self, name: &str, service: &str, script: &str) -> Output {
        self.berth_as(name, &["exec", "-T", service, "sh", "-c", script])
    }

    /// Like [`Stack::sh_as`] for this project, asserting success; returns stdout.
    fn sh(&self, service: &str, script: &str) -> String {
        let out = self.sh_as(&self.p.name, service, script);
        assert!(out.status.success(), "{service}: `{script}` failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn names(&self) -> Vec<String> {
        std::iter::once(self.p.name.clone()).chain(self.others.iter().cloned()).collect()
    }

    /// The host path of volume `name`'s data.
    fn volume_data(&self, name: &str) -> PathBuf {
        self.p.root.path().join("volumes").join(name).join("_data")
    }

    fn volumes(&self) -> Vec<String> {
        self.p.ok(&["volume", "ls", "-q"]).lines().map(str::to_string).collect()
    }

    /// `down -v` for every project, then checks that nothing of them is left on the host.
    fn down_and_check(&self) {
        for name in self.names() {
            let out = self.berth_as(&name, &["down", "-v"]);
            assert!(out.status.success(), "down -v {name}: {}", String::from_utf8_lossy(&out.stderr));
        }
        self.assert_nothing_made();
    }

    /// No container, bridge, namespace or mount of the test's projects exists.
    fn assert_nothing_made(&self) {
        for name in &self.others {
            assert_eq!(String::from_utf8_lossy(&self.berth_as(name, &["ps", "-a", "-q"]).stdout), "");
        }
        self.p.assert_clean();
        let links = std::process::Command::new("ip").args(["-br", "link"]).output().unwrap();
        let links = String::from_utf8_lossy(&links.stdout);
        for name in self.names() {
            let bridge = bridge_of(&name);
            assert!(!links.contains(&bridge), "bridge {bridge} of {name} left");
        }
        let left = mounts_under(&self.dirs());
        assert!(left.is_empty(), "mounts left: {left:?}");
        let netns: Vec<_> = std::fs::read_dir(self.p.run.path().join("netns"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(netns.is_empty(), "namespaces left: {netns:?}");
    }

    fn dirs(&self) -> Vec<PathBuf> {
        [&self.p.root, &self.p.run, &self.p.dir].iter().map(|d| d.path().to_path_buf()).collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for name in self.names() {
            let _ = self.berth_as(&name, &["down", "-v", "--remove-orphans"]);
        }
        for m in mounts_under(&self.dirs()) {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        for name in self.names() {
            let bridge = bridge_of(&name);
            let _ = std::process::Command::new("ip").args(["link", "del", &bridge]).output();
        }
    }
}

/// The bridge of a project's `default` network.
fn bridge_of(project: &str) -> String {
    berth_network::names::bridge_name(&format!("{project}_default")).to_string()
}

/// Mount points under any of `dirs`, deepest first.
fn mounts_under(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|m| dirs.iter().any(|d| m.starts_with(d)))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    points
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn id_of(s: &Stack, service: &str) -> String {
    s.p.container(&format!("{}-{service}-1", s.p.name))["ID"].as_str().unwrap().to_string()
}

#[test]
fn named_volume_data_outlives_down_up_and_recreate_until_down_v() {
    let services = format!(
        "  app:\n    image: {IMAGE}\n    command: [sleep, \"300\"]\n    volumes: [\"data:/data\"]\nvolumes:\n  data:\n"
    );
    let s = Stack::new("namedvolume", &services);
    s.p.ok(&["up", "-d"]);
    assert_eq!(s.sh("app", "cat /data/keep.txt"), "keep\n", "a new volume is filled from the image");
    s.sh("app", "echo mine > /data/mine && rm /data/keep.txt");

    s.p.ok(&["down"]);
    assert_eq!(s.volumes(), [format!("{}_data", s.p.name)], "down keeps the volume");
    s.p.ok(&["up", "-d"]);
    assert_eq!(s.sh("app", "cat /data/mine"), "mine\n");
    let out = s.sh_as(&s.p.name, "app", "cat /data/keep.txt");
    assert!(!out.status.success(), "copy-up happens once: the deleted file stays deleted");

    let before = id_of(&s, "app");
    s.p.write_compose(&services.replace("    volumes:", "    environment: {CHANGED: \"1\"}\n    volumes:"));
    s.p.ok(&["up", "-d"]);
    assert_ne!(id_of(&s, "app"), before, "the changed config recreated the container");
    assert_eq!(s.sh("app", "cat /data/mine"), "mine\n", "the recreated container has the data");

    s.down_and_check();
    assert!(s.volumes().is_empty(), "down -v deleted the volume");
}

#[test]
fn external_volumes_must_exist_and_outlive_down_v() {
    let s = Stack::new("externalvolume", PLACEHOLDER);
    let ext = format!("{}-ext", s.p.name);
    s.p.write_compose(&format!(
        "  app:\n    image: {IMAGE}\n    command: [sleep, \"300\"]\n    volumes: [\"ext:/data\", \"own:/own\"]\n\
         volumes:\n  ext:\n    external: true\n    name: {ext}\n  own:\n"
    ));
    let out = s.p.berth(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("external volume \"{ext}\" not found")), "{}", stderr(&out));
    assert!(s.volumes().is_empty(), "nothing created: {:?}", s.volumes());
    s.assert_nothing_made();

    s.p.ok(&["volume", "create", &ext]);
    s.p.ok(&["up", "-d"]);
    s.sh("app", "echo precious > /data/f");
    s.down_and_check();
    assert_eq!(s.volumes(), vec![ext.clone()], "down -v never removes an external volume");
    assert_eq!(std::fs::read_to_string(s.volume_data(&ext).join("f")).unwrap(), "precious\n");
    s.p.ok(&["volume", "rm", &ext]);
}

#[test]
fn read_only_binds_and_secret_files_as_the_container_sees_them() {
    let s = Stack::new("bindsecret", PLACEHOLDER);
    let dir = s.p.dir.path();
    std::fs::create_dir(dir.join("conf")).unwrap();
    std::fs::write(dir.join("conf/app.conf"), "x=1\n").unwrap();
    std::fs::write(dir.join("token.txt"), "s3cret\n").unwrap();
    s.p.write_compose(&format!(
        "  app:\n    image: {IMAGE}\n    command: [sleep, \"300\"]\n    volumes:\n      - ./conf:/conf:ro\n\
         \x20     - type: bind\n        source: ./conf\n        target: /conf2\n        read_only: true\n\
         \x20   secrets:\n      - source: token\n        uid: \"1000\"\n        gid: \"1001\"\n        mode: 0440\n\
         secrets:\n  token:\n    file: ./token.txt\n"
    ));
    s.p.ok(&["up", "-d"]);
    assert_eq!(s.sh("app", "cat /conf/app.conf"), "x=1\n");
    for target in ["/conf", "/conf2"] {
        let out = s.sh_as(&s.p.name, "app", &format!("echo no > {target}/new"));
        assert!(!out.status.success(), "writing to the read-only bind {target} succeeded");
        assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));
    }
    assert!(!dir.join("conf/new").exists());

    assert_eq!(s.sh("app", "cat /run/secrets/token"), "s3cret\n");
    assert_eq!(s.sh("app", "stat -c '%u %g %a' /run/secrets/token"), "1000 1001 440\n");
    let mounts = s.sh("app", "cat /proc/mounts");
    let line = mounts.lines().find(|l| l.split(' ').nth(1) == Some("/run/secrets/token")).unwrap_or_else(|| {
        panic!("no mount at /run/secrets/token:\n{mounts}");
    });
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[2], "tmpfs", "the secret sits on a tmpfs: {line}");
    assert!(fields[3].split(',').any(|o| o == "ro"), "and is read-only: {line}");
    s.down_and_check();
}

#[test]
fn projects_with_the_same_volume_key_keep_their_own_data() {
    let mut s = Stack::new(
        "twoprojects",
        &format!("  app:\n    image: {IMAGE}\n    command: [sleep, \"300\"]\n    volumes: [\"data:/data\"]\nvolumes:\n  data:\n"),
    );
    let other = format!("{}b", s.p.name);
    s.others.push(other.clone());
    for name in s.names() {
        let out = s.berth_as(&name, &["up", "-d"]);
        assert!(out.status.success(), "up {name}: {}", stderr(&out));
        let out = s.sh_as(&name, "app", &format!("echo {name} > /data/owner"));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for name in s.names() {
        let out = s.sh_as(&name, "app", "cat /data/owner");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{name}\n"), "{}", stderr(&out));
    }
    let mut volumes = s.volumes();
    volumes.sort();
    let mut expected = vec![format!("{}_data", s.p.name), format!("{other}_data")];
    expected.sort();
    assert_eq!(volumes, expected);
    s.down_and_check();
    assert!(s.volumes().is_empty());
}

#[test]
fn volumes_from_shares_volumes_and_binds_read_only_when_asked() {
    let s = Stack::new("volumesfrom", PLACEHOLDER);
    std::fs::create_dir(s.p.dir.path().join("host")).unwrap();
    std::fs::write(s.p.dir.path().join("host/h"), "from the host\n").unwrap();
    // `vault` sorts last, yet `up` makes it first: the others take its mounts.
    let services = format!(
        "  vault:\n    image: {IMAGE}\n    command: [sleep, \"300\"]\n    volumes: [\"shared:/shared\", \"./host:/host\", \"/anon\"]\n\
         \x20   tmpfs: [/scratch]\n\
         \x20 app:\n    image: {IMAGE}\n    command: [sleep, \"300\"]\n    volumes_from: [vault]\n\
         \x20 backup:\n    image: {IMAGE}\n    command: [sleep, \"300\"]\n    volumes_from: [\"service:vault:ro\"]\n\
         volumes:\n  shared:\n"
    );
    s.p.write_compose(&services);
    s.p.ok(&["up", "-d"]);
    s.sh("app", "echo from app > /shared/a && echo anon > /anon/a");
    assert_eq!(s.sh("vault", "cat /shared/a /anon/a"), "from app\nanon\n", "app writes into vault's volumes");
    assert_eq!(s.sh("backup", "cat /shared/a /anon/a /host/h"), "from app\nanon\nfrom the host\n");
    for target in ["/shared", "/anon", "/host"] {
        let out = s.sh_as(&s.p.name, "backup", &format!("echo no > {target}/b"));
        assert!(!out.status.success(), ":ro made {target} read-only");
        assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));
    }
    let scratch = s.sh_as(&s.p.name, "app", "grep -q ' /scratch ' /proc/mounts");
    assert!(!scratch.status.success(), "a tmpfs belongs to its container alone");

    // `container:` names any container; here the one `up` made for vault.
    let by_name = format!("  byname:\n    image: {IMAGE}\n    command: [sleep, \"300\"]\n    volumes_from: [\"container:{}-vault-1:ro\"]\n", s.p.name);
    s.p.write_compose(&services.replace("volumes:\n  shared:\n", &format!("{by_name}volumes:\n  shared:\n")));
    s.p.ok(&["up", "-d"]);
    assert_eq!(s.sh("byname", "cat /shared/a /host/h"), "from app\nfrom the host\n");
    let out = s.sh_as(&s.p.name, "byname", "echo no > /shared/b");
    assert!(!out.status.success(), "container:...:ro is read-only too");

    // Removing vault with -v keeps the anonymous volume the others still use.
    s.p.ok(&["rm", "-s", "-f", "-v", "vault"]);
    assert_eq!(s.sh("app", "cat /anon/a"), "anon\n");
    s.down_and_check();
    assert!(s.volumes().is_empty(), "down -v removed the named and the anonymous volume: {:?}", s.volumes());
}

#[test]
fn local_driver_volumes_are_mounted_only_while_a_container_uses_them() {
    let s = Stack::new("driveropts", PLACEHOLDER);
    let device = s.p.dir.path().join("device");
    std::fs::create_dir(&device).unwrap();
    std::fs::write(device.join("h"), "on the host\n").unwrap();
    let service = |name: &str| {
        format!("  {name}:\n    image: {IMAGE}\n    command: [sleep, \"300\"]\n    volumes: [\"cache:/cache\", \"hostdir:/h\"]\n")
    };
    s.p.write_compose(&format!(
        "{}{}volumes:\n  cache:\n    driver_opts: {{type: tmpfs, device: tmpfs, o: \"size=1m\"}}\n\
         \x20 hostdir:\n    driver_opts: {{type: none, o: bind, device: \"{}\"}}\n",
        service("one"),
        service("two"),
        device.display()
    ));
    let cache = s.volume_data(&format!("{}_cache", s.p.name));
    let hostdir = s.volume_data(&format!("{}_hostdir", s.p.name));
    s.p.ok(&["up", "-d"]);
    assert!(is_mount_point(&cache) && is_mount_point(&hostdir), "mounted while used");
    let mounts = s.sh("one", "cat /proc/mounts");
    assert!(mounts.lines().any(|l| l.starts_with("tmpfs /cache tmpfs")), "{mounts}");
    s.sh("one", "echo shared > /cache/x");
    assert_eq!(s.sh("two", "cat /cache/x /h/h"), "shared\non the host\n");

    s.p.ok(&["rm", "-s", "-f", "one"]);
    assert!(is_mount_point(&cache) && is_mount_point(&hostdir), "two still uses them");
    assert_eq!(s.sh("two", "cat /cache/x"), "shared\n");
    s.p.ok(&["down"]);
    assert!(!is_mount_point(&cache) && !is_mount_point(&hostdir), "unmounted when no container uses them");
    assert_eq!(s.volumes().len(), 2, "down keeps the volumes");
    assert_eq!(std::fs::read_to_string(device.join("h")).unwrap(), "on the host\n");

    s.p.ok(&["up", "-d"]);
    assert!(is_mount_point(&cache), "mounted again");
    let out = s.sh_as(&s.p.name, "two", "cat /cache/x");
    assert!(!out.status.success(), "a tmpfs volume starts empty on each mount");
    s.down_and_check();
    assert!(s.volumes().is_empty());
    assert_eq!(std::fs::read_to_string(device.join("h")).unwrap(), "on the host\n", "down -v keeps the device's data");
}

#[test]
fn bad_storage_input_fails_before_anything_is_made() {
    let s = Stack::new("badstorage", PLACEHOLDER);
    let app = |extra: &str| {
        format!("  app:\n    image: {IMAGE}\n    command: [sleep, \"300\"]\n    volumes:\n      - data:/data\n{extra}")
    };
    let cases = [
        (
            app("    secrets: [token]\nvolumes:\n  data:\nsecrets:\n  token:\n    file: ./missing-token.txt\n"),
            vec!["services.app.secrets[0]", "secret \"token\"", "missing-token.txt"],
        ),
        (
            app("      - type: bind\n        source: ./nowhere\n        target: /x\n        bind: {create_host_path: false}\nvolumes:\n  data:\n"),
            vec!["services.app.volumes[1]", "nowhere", "does not exist"],
        ),
        (app("      - ghost:/ghost\nvolumes:\n  data:\n"), vec!["compose.yaml", "ghost"]),
    ];
    for (compose, expected) in cases {
        s.p.write_compose(&compose);
        let out = s.p.berth(&["up", "-d"]);
        assert_eq!(out.status.code(), Some(1), "{compose}\n{}", stderr(&out));
        for e in expected {
            assert!(stderr(&out).contains(e), "`{e}` missing from:\n{}", stderr(&out));
        }
        assert!(s.volumes().is_empty(), "no volume made: {:?}", s.volumes());
        assert!(!s.p.dir.path().join("nowhere").exists(), "the bind source was not made");
        s.p.write_compose(PLACEHOLDER); // `ps` in the check loads the files
        s.assert_nothing_made();
    }
}
