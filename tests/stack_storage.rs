//! System test (root): a service's storage prepared for a container — a named volume filled
//! from the image (copy-up through an overlay of the image's layers), an anonymous volume, a
//! bind, tmpfs, and secrets on a tmpfs with their owner — then released.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth::stack::storage::Storage;
use berth::stack::volmodel::volume_spec;
use berth_compose::env::Environment;
use berth_compose::{load, LoadOptions};
use berth_volumes::store::{is_mount_point, VolumeStore};
use berth_volumes::MountKind;

/// Detaches every mount under the directory when dropped.
struct Scratch(tempfile::TempDir);

impl Drop for Scratch {
    fn drop(&mut self) {
        let prefix = self.0.path().to_string_lossy().into_owned();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<PathBuf> = info
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

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn storage_for_a_container() {
    assert!(nix::unistd::geteuid().is_root(), "this test mounts file systems and must run as root");
    let scratch = Scratch(tempfile::tempdir().unwrap());
    let dir = scratch.0.path();
    // Two image layers: the lower one has the data the volume starts with.
    let (l1, l2) = (dir.join("layers/1"), dir.join("layers/2"));
    write(&l1.join("var/lib/app/seed"), "from the image");
    std::os::unix::fs::chown(l1.join("var/lib/app/seed"), Some(1234), Some(1234)).unwrap();
    write(&l2.join("etc/motd"), "hi");
    let project_dir = dir.join("project");
    write(&project_dir.join("conf/app.conf"), "x=1");
    let yaml = "name: st\nservices:\n  app:\n    image: busybox\n    volumes:\n      - data:/var/lib/app\n      - /scratch\n      - ./conf:/etc/conf:ro\n    \
                tmpfs: [\"/run:size=1m\"]\n    secrets:\n      - source: token\n        uid: \"1000\"\n        mode: 0400\n    configs: [motd]\n\
                volumes:\n  data:\nsecrets:\n  token:\n    environment: ST_TOKEN\nconfigs:\n  motd:\n    content: hello\n";
    let opts = LoadOptions {
        files: vec!["-".into()],
        stdin: Some(yaml.into()),
        cwd: project_dir.clone(),
        shell: Environment::default(),
        ..LoadOptions::default()
    };
    let p = load(&opts).unwrap().project;
    let store = VolumeStore::open(dir.join("volumes")).unwrap();
    store.create(&volume_spec(&p, "data")).unwrap();
    let layers = vec![l1, l2];
    let env = |k: &str| (k == "ST_TOKEN").then(|| "s3cret".to_string());
    let storage = Storage {
        volumes: &store,
        layers: &layers,
        scratch: dir.join("scratch"),
        secrets_dir: dir.join("run/secrets/st-app-1"),
        env: &env,
        renew_anonymous: false,
    };
    let prepared = storage.prepare(&p, &p.services["app"], 1).unwrap();

    let data = store.get("st_data").unwrap().unwrap();
    assert!(data.populated);
    let seed = data.mountpoint.join("seed");
    assert_eq!(std::fs::read_to_string(&seed).unwrap(), "from the image");
    assert_eq!(std::fs::metadata(&seed).unwrap().uid(), 1234, "copy-up keeps owners");
    assert!(!dir.join("scratch").exists(), "the image view is gone again");
    assert_eq!(prepared.volumes.len(), 2);
    assert!(store.get(&prepared.volumes[1]).unwrap().unwrap().spec.anonymous);

    let dests: Vec<(&str, MountKind)> = prepared.mounts.iter().map(|m| (m.destination.as_str(), m.kind)).collect();
    assert_eq!(
        dests,
        [
            ("/var/lib/app", MountKind::Bind),
            ("/scratch", MountKind::Bind),
            ("/etc/conf", MountKind::Bind),
            ("/run", MountKind::Tmpfs),
            ("/run/secrets/token", MountKind::Bind),
            ("/motd", MountKind::Bind)
        ]
    );
    assert!(prepared.mounts[2].options.contains(&"ro".to_string()));
    let token = Path::new(&prepared.mounts[4].source);
    assert_eq!(std::fs::read_to_string(token).unwrap(), "s3cret");
    assert_eq!(
        (std::fs::metadata(token).unwrap().uid(), std::fs::metadata(token).unwrap().mode() & 0o777),
        (1000, 0o400)
    );
    assert!(is_mount_point(&dir.join("run/secrets/st-app-1")), "secrets sit on a tmpfs");

    // A second container of the same replica finds the volume populated and does not copy again.
    std::fs::remove_file(&seed).unwrap();
    prepared.release().unwrap();
    assert!(!dir.join("run/secrets/st-app-1").exists());
    let again = storage.prepare(&p, &p.services["app"], 1).unwrap();
    assert!(!seed.exists());
    again.release().unwrap();
}
