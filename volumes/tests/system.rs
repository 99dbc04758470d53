//! System tests (root): driver_opts mounts, the secrets tmpfs, copy-up ownership. Each test
//! works in its own temporary directory and unmounts everything under it even when it fails.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_volumes::secrets::{Kind, SecretFile, SecretsDir};
use berth_volumes::store::{is_mount_point, VolumeSpec, VolumeStore};

fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "this test mounts file systems and must run as root");
}

/// A temporary directory whose mounts are all detached when dropped.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Scratch {
        require_root();
        Scratch(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let prefix = self.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<PathBuf> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&prefix))
            .map(PathBuf::from)
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        for p in points {
            let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn mount_type(path: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mounts.lines().rev().find(|l| l.split(' ').nth(4) == Some(&path.to_string_lossy())).and_then(|l| {
        let after = l.split(" - ").nth(1)?;
        after.split(' ').next().map(str::to_string)
    })
}

#[test]
fn tmpfs_volume_is_mounted_while_active() {
    let scratch = Scratch::new();
    let store = VolumeStore::open(scratch.path().join("volumes")).unwrap();
    let mut spec = VolumeSpec { name: "proj_cache".into(), ..Default::default() };
    spec.driver_opts.insert("type".into(), "tmpfs".into());
    spec.driver_opts.insert("device".into(), "tmpfs".into());
    spec.driver_opts.insert("o".into(), "size=1m,mode=0700".into());
    let info = store.create(&spec).unwrap();
    let data = store.activate("proj_cache").unwrap();
    assert_eq!(data, info.mountpoint);
    assert_eq!(mount_type(&data).as_deref(), Some("tmpfs"));
    assert_eq!(std::fs::metadata(&data).unwrap().mode() & 0o777, 0o700);
    store.activate("proj_cache").unwrap(); // idempotent
    store.deactivate("proj_cache").unwrap();
    assert!(!is_mount_point(&data));
    store.remove("proj_cache", &[]).unwrap();
    assert!(!info.mountpoint.exists());
}

#[test]
fn a_tmpfs_volume_stays_mounted_until_its_last_holder_lets_go() {
    let scratch = Scratch::new();
    let store = VolumeStore::open(scratch.path().join("volumes")).unwrap();
    let mut spec = VolumeSpec { name: "proj_shared".into(), ..Default::default() };
    spec.driver_opts.insert("type".into(), "tmpfs".into());
    spec.driver_opts.insert("device".into(), "tmpfs".into());
    let info = store.create(&spec).unwrap();
    let data = store.acquire("proj_shared", "proj-a-1").unwrap();
    store.acquire("proj_shared", "proj-b-1").unwrap();
    store.acquire("proj_shared", "proj-b-1").unwrap(); // the same holder counts once
    assert_eq!(store.holders("proj_shared").unwrap().len(), 2);
    std::fs::write(data.join("f"), "x").unwrap();
    assert!(!store.release("proj_shared", "proj-a-1").unwrap(), "b still holds it");
    assert!(is_mount_point(&data));
    assert!(store.release("proj_shared", "proj-b-1").unwrap(), "the last holder unmounts");
    assert!(!is_mount_point(&data));
    assert!(!data.join("f").exists(), "the data was on the tmpfs");
    assert!(!store.release("proj_shared", "proj-b-1").unwrap(), "releasing twice is harmless");
    // Mounted afresh, the tmpfs is empty again, so the next container fills it from its image.
    assert!(store.copy_up("proj_shared", scratch.path(), "/missing").is_ok());
    assert!(store.get("proj_shared").unwrap().unwrap().populated);
    store.acquire("proj_shared", "proj-c-1").unwrap();
    assert!(!store.get("proj_shared").unwrap().unwrap().populated);
    store.remove("proj_shared", &[]).unwrap();
    assert!(!info.mountpoint.exists());
    assert!(!store.release("proj_shared", "proj-c-1").unwrap(), "a removed volume needs no release");
}

#[test]
fn bind_volume_shows_the_device_directory() {
    let scratch = Scratch::new();
    let device = scratch.path().join("host-dir");
    std::fs::create_dir(&device).unwrap();
    std::fs::write(device.join("hello"), "from host").unwrap();
    let store = VolumeStore::open(scratch.path().join("volumes")).unwrap();
    let mut spec = VolumeSpec { name: "proj_bound".into(), ..Default::default() };
    spec.driver_opts.insert("type".into(), "none".into());
    spec.driver_opts.insert("o".into(), "bind".into());
    spec.driver_opts.insert("device".into(), device.display().to_string());
    store.create(&spec).unwrap();
    let data = store.activate("proj_bound").unwrap();
    assert_eq!(std::fs::read_to_string(data.join("hello")).unwrap(), "from host");
    store.remove("proj_bound", &[]).unwrap();
    assert!(!is_mount_point(&data));
    assert_eq!(
        std::fs::read_to_string(device.join("hello")).unwrap(),
        "from host",
        "removing a bind volume keeps the host data"
    );
}

#[test]
fn secrets_live_on_a_tmpfs_with_their_owner_and_mode() {
    let scratch = Scratch::new();
    let dir = scratch.path().join("run/containers/c1/secrets");
    let files = [
        SecretFile {
            kind: Kind::Secret,
            name: "token".into(),
            target: "/run/secrets/token".into(),
            data: b"s3cret".to_vec(),
            uid: 1000,
            gid: 1001,
            mode: 0o400,
        },
        SecretFile {
            kind: Kind::Config,
            name: "app".into(),
            target: "/etc/app.conf".into(),
            data: b"x=1".to_vec(),
            uid: 0,
            gid: 0,
            mode: 0o444,
        },
    ];
    let (secrets, mounts) = SecretsDir::create(&dir, &files).unwrap();
    assert_eq!(mount_type(&dir).as_deref(), Some("tmpfs"));
    assert_eq!(mounts.len(), 2);
    assert_eq!(mounts[0].destination, "/run/secrets/token");
    assert!(mounts[0].options.contains(&"ro".to_string()));
    let token = Path::new(&mounts[0].source);
    let meta = std::fs::metadata(token).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777), (1000, 1001, 0o400));
    assert_eq!(std::fs::read(token).unwrap(), b"s3cret");
    secrets.remove().unwrap();
    assert!(!dir.exists());
}

#[test]
fn copy_up_keeps_owners_and_modes() {
    let scratch = Scratch::new();
    let image = scratch.path().join("image/var/lib/app");
    std::fs::create_dir_all(&image).unwrap();
    std::fs::write(image.join("db"), "seed").unwrap();
    std::os::unix::fs::chown(image.join("db"), Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(image.join("db"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&image, Some(1234), Some(5678)).unwrap();
    let store = VolumeStore::open(scratch.path().join("volumes")).unwrap();
    let v = store.create(&VolumeSpec { name: "proj_app".into(), ..Default::default() }).unwrap();
    assert!(store.copy_up("proj_app", &scratch.path().join("image"), "/var/lib/app").unwrap());
    let meta = std::fs::metadata(v.mountpoint.join("db")).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.permissions().mode() & 0o777), (1234, 5678, 0o640));
    let root = std::fs::metadata(&v.mountpoint).unwrap();
    assert_eq!((root.uid(), root.gid()), (1234, 5678), "the volume root takes the image directory's owner");
}

#[test]
fn copy_up_never_follows_a_symlink_out_of_the_image() {
    let scratch = Scratch::new();
    let image = scratch.path().join("image");
    let secret = scratch.path().join("host-secret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("key"), "host data").unwrap();
    std::fs::create_dir_all(&image).unwrap();
    // The image's /data points at a host path; inside the image that path does not exist.
    std::os::unix::fs::symlink(&secret, image.join("data")).unwrap();
    let store = VolumeStore::open(scratch.path().join("volumes")).unwrap();
    let v = store.create(&VolumeSpec { name: "proj_data".into(), ..Default::default() }).unwrap();
    assert!(!store.copy_up("proj_data", &image, "/data").unwrap());
    assert!(!v.mountpoint.join("key").exists(), "host files never reach the volume");
}

#[test]
fn a_read_only_bind_volume_is_read_only() {
    let scratch = Scratch::new();
    let device = scratch.path().join("host-ro");
    std::fs::create_dir(&device).unwrap();
    let store = VolumeStore::open(scratch.path().join("volumes")).unwrap();
    let mut spec = VolumeSpec { name: "proj_ro".into(), ..Default::default() };
    spec.driver_opts.insert("type".into(), "none".into());
    spec.driver_opts.insert("o".into(), "bind,ro".into());
    spec.driver_opts.insert("device".into(), device.display().to_string());
    store.create(&spec).unwrap();
    let data = store.activate("proj_ro").unwrap();
    let err = std::fs::write(data.join("x"), "no").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    store.remove("proj_ro", &[]).unwrap();
    assert!(device.exists(), "the host directory stays");
}
