//! Image tests against a real local registry (Debian's `docker-registry`, seeded with `skopeo`):
//! pulls by tag, digest and platform, unpacked content and whiteouts, no second download, the error
//! messages, crafted malicious layers, archives, remove/prune. Needs root (whiteouts, owners,
//! overlay mounts); fails loudly without it.

#[path = "support/records.rs"]
mod records;
mod support;

#[path = "images/archives.rs"]
mod archives;
#[path = "images/cli.rs"]
mod cli;
#[path = "images/crafted.rs"]
mod crafted;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth::events::{Event, Recorder};
use berth::image::{self, Digest, ImageStore, Platform, PullOptions, Reference};
use support::{fixture_layout, require_root, MountGuard, Registry, TempRoot};

fn opts() -> PullOptions {
    PullOptions::default()
}

pub(crate) async fn pull(store: &ImageStore, r: &str) -> Result<image::PullOutcome, image::ImageError> {
    image::pull(store, &Reference::parse(r).unwrap(), &opts(), &Recorder::default()).await
}

pub(crate) fn layer_dirs(store: &ImageStore, name: &str) -> Vec<PathBuf> {
    store.layer_dirs(name).unwrap()
}

pub(crate) fn getxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the given length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| buf[..r as usize].to_vec())
}

#[tokio::test]
async fn pulls_by_tag_then_by_digest_without_downloading_twice() {
    require_root("unpacking layers with owners");
    let layout = fixture_layout();
    let reg = Registry::with_fixtures(&layout);
    let root = TempRoot::new();
    let store = ImageStore::open(root.path()).unwrap();

    let events = Recorder::default();
    let first = image::pull(&store, &Reference::parse(&reg.image("busybox")).unwrap(), &opts(), &events).await.unwrap();
    assert!(!first.up_to_date);
    assert!(first.downloaded > 1_000_000, "downloaded {}", first.downloaded);
    let ev = events.events();
    assert!(matches!(ev.first(), Some(Event::PullStarted { .. })));
    assert!(ev.iter().any(|e| matches!(e, Event::LayerStarted { .. })));
    assert!(ev.iter().any(|e| matches!(e, Event::LayerDone { cached: false, .. })));
    assert!(matches!(ev.last(), Some(Event::ImagePulled { up_to_date: false, .. })));

    // Unpacked content of the single layer.
    let dirs = layer_dirs(&store, &reg.image("busybox"));
    assert_eq!(dirs.len(), 1);
    let l = &dirs[0];
    assert!(fs::metadata(l.join("bin/busybox")).unwrap().permissions().mode() & 0o111 != 0);
    assert_eq!(fs::read_link(l.join("bin/sh")).unwrap(), Path::new("busybox"));
    for applet in ["sleep", "wget", "nc", "httpd", "nslookup"] {
        assert!(fs::symlink_metadata(l.join("bin").join(applet)).unwrap().file_type().is_symlink(), "{applet}");
    }
    assert!(fs::read_to_string(l.join("etc/passwd")).unwrap().contains("app:x:1000:1000"));
    assert!(fs::read_to_string(l.join("etc/group")).unwrap().contains("app:x:1000:"));
    let motd = fs::metadata(l.join("etc/motd")).unwrap();
    assert_eq!(motd.ino(), fs::metadata(l.join("etc/motd.hardlink")).unwrap().ino(), "hard link kept");
    assert_eq!(getxattr(&l.join("data/xattr.txt"), "user.berth").as_deref(), Some(&b"fixture"[..]));
    assert!(fs::symlink_metadata(l.join("data/fifo")).unwrap().file_type().is_fifo());
    assert_eq!(fs::metadata(l.join("home/app")).unwrap().uid(), 1000);
    assert_eq!(fs::metadata(l.join("tmp")).unwrap().permissions().mode() & 0o7777, 0o1777);
    assert_eq!(fs::metadata(l.join("root")).unwrap().permissions().mode() & 0o7777, 0o700);
    assert_eq!(fs::metadata(l.join("data/keep.txt")).unwrap().permissions().mode() & 0o777, 0o640);
    assert_eq!(fs::metadata(l.join("etc/passwd")).unwrap().mtime(), 0);

    // Again by tag: nothing downloaded.
    let again = pull(&store, &reg.image("busybox")).await.unwrap();
    assert!(again.up_to_date);
    assert_eq!(again.downloaded, 0);
    assert_eq!(again.id, first.id);

    // By digest, into a fresh store and into the same one.
    let by_digest = format!("{}/berth-test/busybox@{}", reg.host(), first.digest);
    let same = pull(&store, &by_digest).await.unwrap();
    assert_eq!((same.id.clone(), same.downloaded), (first.id.clone(), 0));
    let root2 = TempRoot::new();
    let store2 = ImageStore::open(root2.path()).unwrap();
    let fresh = pull(&store2, &by_digest).await.unwrap();
    assert_eq!(fresh.id, first.id);
    assert_eq!(store2.resolve(&by_digest).unwrap().id, first.id);
    assert!(store2.resolve(&reg.image("busybox")).is_err(), "a digest pull adds no tag");
    let rows = store2.list().unwrap();
    assert_eq!(
        (rows[0].repository.as_str(), rows[0].tag.as_str()),
        (format!("{}/berth-test/busybox", reg.host()).as_str(), "<none>")
    );
    assert!(store2.prune(false, &|_| false).unwrap().deleted.is_empty(), "digest-pinned images are not dangling");

    // A wrong digest for an existing repository.
    let wrong = format!("{}/berth-test/busybox@{}", reg.host(), Digest::of(b"nothing"));
    let err = pull(&store2, &wrong).await.unwrap_err().to_string();
    assert!(err.contains("not found"), "{err}");

    // Listing and inspect.
    let rows = store.list().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].repository, format!("{}/berth-test/busybox", reg.host()));
    assert_eq!(rows[0].tag, "latest");
    assert!(rows[0].size > 1_000_000);
    assert_eq!(rows[0].created.as_deref(), Some("2024-01-01T00:00:00Z"));
}

#[tokio::test]
async fn whiteouts_opaque_dirs_and_shared_layers_through_overlay() {
    require_root("whiteouts and overlay mounts");
    let layout = fixture_layout();
    let reg = Registry::with_fixtures(&layout);
    let root = TempRoot::new();
    let store = ImageStore::open(root.path()).unwrap();
    let refs: Vec<(Reference, Option<Platform>)> =
        ["busybox", "layered"].iter().map(|n| (Reference::parse(&reg.image(n)).unwrap(), None)).collect();
    let events = Recorder::default();
    let results = image::pull_many(&store, &refs, &opts(), &events).await;
    for r in &results {
        r.as_ref().unwrap();
    }
    // The base layer is shared: three layer directories for four layers, downloaded once.
    assert_eq!(fs::read_dir(store.dir().join("layers")).unwrap().count(), 3);
    let started: Vec<_> = events.events().into_iter().filter(|e| matches!(e, Event::LayerStarted { .. })).collect();
    assert_eq!(started.len(), 3, "{started:?}");

    let dirs = layer_dirs(&store, &reg.image("layered"));
    assert_eq!(dirs.len(), 3);
    let wh = fs::symlink_metadata(dirs[1].join("data/remove.txt")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "whiteout is a 0/0 char device");
    assert!(!dirs[1].join("data/.wh.remove.txt").exists());
    assert_eq!(getxattr(&dirs[1].join("data/opaque"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));

    let run = root.path().join("c1");
    let target = run.join("rootfs");
    image::mount_rootfs(&dirs, &run.join("upper"), &run.join("work"), &target).unwrap();
    let guard = MountGuard(target.clone());
    assert_eq!(fs::read_to_string(target.join("data/keep.txt")).unwrap(), "keep\n");
    assert!(!target.join("data/remove.txt").exists(), "whiteout hides the lower file");
    assert!(!target.join("data/opaque/a.txt").exists(), "opaque dir hides lower content");
    assert_eq!(fs::read_to_string(target.join("data/opaque/c.txt")).unwrap(), "c\n");
    assert_eq!(fs::read_to_string(target.join("etc/motd")).unwrap(), "overridden by layer 2\n");
    assert_eq!(fs::read_to_string(target.join("data/third.txt")).unwrap(), "third\n");
    assert!(target.join("bin/busybox").is_file());
    fs::write(target.join("data/written.txt"), "x").unwrap();
    image::unmount_rootfs(&target).unwrap();
    std::mem::forget(guard);
    assert!(run.join("upper/data/written.txt").is_file(), "writes land in the upper dir");
    assert!(!dirs[2].join("data/written.txt").exists());
}

#[tokio::test]
async fn config_fields_platforms_and_indexes() {
    require_root("unpacking layers with owners");
    let layout = fixture_layout();
    let reg = Registry::with_fixtures(&layout);
    let root = TempRoot::new();
    let store = ImageStore::open(root.path()).unwrap();

    pull(&store, &reg.image("config")).await.unwrap();
    let cfg = store.inspect(&reg.image("config")).unwrap();
    let c = &cfg["config"];
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["WorkingDir"], "/srv/www");
    assert_eq!(c["Env"][1], "GREETING=hello world");
    assert_eq!(c["Entrypoint"][0], "/bin/sh");
    assert_eq!(c["Cmd"][0], "httpd -f -p 8080 -h /srv/www");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object());
    assert_eq!(c["StopSignal"], "SIGINT");
    assert!(c["Volumes"]["/data"].is_object());
    assert_eq!(c["Healthcheck"]["Test"][0], "CMD-SHELL");
    let dirs = layer_dirs(&store, &reg.image("config"));
    assert_eq!(fs::metadata(dirs[1].join("srv/www/index.html")).unwrap().uid(), 1000);

    // Docker schema 2 manifests and media types (what Docker Hub mostly serves).
    reg.seed_with(&layout, "config", "berth-test/config-v2s2:latest", &["--format", "v2s2"]);
    let v2 = pull(&store, &format!("{}/berth-test/config-v2s2", reg.host())).await.unwrap();
    let rec = store.resolve(v2.id.as_str()).unwrap();
    assert!(rec.layers[0].media_type.starts_with("application/vnd.docker.image.rootfs.diff.tar"), "{rec:?}");
    assert!(layer_dirs(&store, v2.id.as_str())[1].join("srv/www/index.html").is_file());

    // An index resolves to the host platform: the same image as `busybox`.
    let multi = pull(&store, &reg.image("multiarch")).await.unwrap();
    let bb = pull(&store, &reg.image("busybox")).await.unwrap();
    assert_eq!(multi.id, bb.id);
    assert_ne!(multi.digest, bb.digest, "the index digest is what the tag resolved to");
    let host = Platform::host();
    let other = if host.architecture == "arm64" { "linux/amd64" } else { "linux/arm64" };
    let o = PullOptions { platform: Some(Platform::parse(other).unwrap()), ..opts() };
    let foreign = image::pull(&store, &Reference::parse(&reg.image("multiarch")).unwrap(), &o, &Recorder::default())
        .await
        .unwrap();
    assert_ne!(foreign.id, bb.id);
    assert_eq!(store.inspect(foreign.id.as_str()).unwrap()["config"]["Env"][0], "FOREIGN=1");
    let o = PullOptions { platform: Some(Platform::parse("linux/s390x").unwrap()), ..opts() };
    let err = image::pull(&store, &Reference::parse(&reg.image("multiarch")).unwrap(), &o, &Recorder::default())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("no image for platform `linux/s390x`") && msg.contains("linux/amd64"), "{msg}");
}

#[tokio::test]
async fn error_messages_name_the_problem() {
    require_root("tmpfs mount for the disk-full case");
    let layout = fixture_layout();
    let reg = Registry::with_fixtures(&layout);
    let root = TempRoot::new();
    let store = ImageStore::open(root.path()).unwrap();

    let err = pull(&store, &format!("{}/berth-test/nosuchimage:latest", reg.host())).await.unwrap_err().to_string();
    assert!(err.contains("not found in the registry"), "{err}");
    let err = pull(&store, &format!("{}/berth-test/busybox:nosuchtag", reg.host())).await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!("manifest for `{}/berth-test/busybox:nosuchtag` not found: unknown tag or digest", reg.host())
    );

    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = pull(&store, &format!("127.0.0.1:{closed}/x/y:1")).await.unwrap_err().to_string();
    assert!(err.starts_with(&format!("registry `127.0.0.1:{closed}` is not reachable")), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");

    // Disk full: a 512 KiB tmpfs as the state root.
    let small = TempRoot::new();
    nix::mount::mount(Some("tmpfs"), small.path(), Some("tmpfs"), nix::mount::MsFlags::empty(), Some("size=512k"))
        .unwrap();
    let _m = MountGuard(small.path().to_path_buf());
    let tiny = ImageStore::open(small.path()).unwrap();
    let err = pull(&tiny, &reg.image("busybox")).await.unwrap_err().to_string();
    assert!(err.contains("No space left on device"), "{err}");
    assert!(tiny.list().unwrap().is_empty());
    assert_eq!(fs::read_dir(tiny.dir().join("blobs/sha256")).unwrap().count(), 1, "only the config blob is stored");
}

/// A fake registry that serves the fixture `busybox` with one byte of its layer flipped.
fn corrupt_registry(layout: &Path) -> (u16, std::thread::JoinHandle<()>) {
    let index: serde_json::Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mdesc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "busybox")
        .unwrap()
        .clone();
    let blob = |d: &str| fs::read(layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
    let mdigest = mdesc["digest"].as_str().unwrap().to_string();
    let manifest = blob(&mdigest);
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let cdigest = m["config"]["digest"].as_str().unwrap().to_string();
    let ldigest = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let config = blob(&cdigest);
    let mut layer = blob(&ldigest);
    let n = layer.len();
    layer[n / 2] ^= 0xff;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        // Serves a bounded number of requests, then stops by itself.
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { break };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (ctype, body): (&str, &[u8]) = if path == "/v2/" {
                ("application/json", b"{}")
            } else if path.contains("/manifests/") {
                ("application/vnd.oci.image.manifest.v1+json", &manifest)
            } else if path.ends_with(&cdigest) {
                ("application/octet-stream", &config)
            } else if path.ends_with(&ldigest) {
                ("application/octet-stream", &layer)
            } else {
                ("text/plain", b"")
            };
            let status = if body.is_empty() { "404 Not Found" } else { "200 OK" };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
            if path.ends_with(&ldigest) {
                break;
            }
        }
    });
    (port, handle)
}

#[tokio::test]
async fn corrupted_blob_is_rejected_and_not_kept() {
    require_root("unpacking layers with owners");
    let layout = fixture_layout();
    let (port, handle) = corrupt_registry(&layout);
    let root = TempRoot::new();
    let store = ImageStore::open(root.path()).unwrap();
    let err = pull(&store, &format!("127.0.0.1:{port}/berth-test/busybox:latest")).await.unwrap_err().to_string();
    handle.join().unwrap();
    assert!(err.contains("digest mismatch for layer sha256:"), "{err}");
    let left: Vec<_> = fs::read_dir(store.dir().join("tmp")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.iter().all(|n| n.to_string_lossy().ends_with(".lock")), "no partial left behind: {left:?}");
    assert!(fs::read_dir(store.dir().join("layers")).unwrap().next().is_none());
    assert!(store.list().unwrap().is_empty());
    // A later garbage collection removes the lock files too.
    store.gc().unwrap();
    assert!(fs::read_dir(store.dir().join("tmp")).unwrap().next().is_none());
}

#[tokio::test]
async fn interrupted_download_resumes_from_the_partial_file() {
    require_root("unpacking layers with owners");
    let layout = fixture_layout();
    let reg = Registry::with_fixtures(&layout);
    let root = TempRoot::new();
    let store = ImageStore::open(root.path()).unwrap();
    // Simulate an interrupted pull: the first half of the layer blob as a partial download...
    let m: serde_json::Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let md = m["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let man: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(md)).unwrap()).unwrap();
    let ld = man["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let blob = fs::read(layout.join("blobs/sha256").join(&ld)).unwrap();
    fs::write(store.dir().join("tmp").join(format!("{ld}.partial")), &blob[..blob.len() / 2]).unwrap();
    let out = pull(&store, &reg.image("busybox")).await.unwrap();
    assert_eq!(out.downloaded, (blob.len() - blob.len() / 2) as u64, "only the rest was downloaded");
    // ...and a garbage partial of the right length is discarded, never trusted.
    let root2 = TempRoot::new();
    let store2 = ImageStore::open(root2.path()).unwrap();
    fs::write(store2.dir().join("tmp").join(format!("{ld}.partial")), vec![0u8; blob.len() / 2]).unwrap();
    let err = pull(&store2, &reg.image("busybox")).await.unwrap_err().to_string();
    assert!(err.contains("digest mismatch"), "{err}");
    let ok = pull(&store2, &reg.image("busybox")).await.unwrap();
    assert_eq!(ok.downloaded, blob.len() as u64, "the retry starts from scratch");
}

#[tokio::test]
async fn remove_prune_and_in_use() {
    require_root("unpacking layers with owners");
    let layout = fixture_layout();
    let reg = Registry::with_fixtures(&layout);
    let root = TempRoot::new();
    let store = ImageStore::open(root.path()).unwrap();
    let bb = pull(&store, &reg.image("busybox")).await.unwrap();
    let layered = pull(&store, &reg.image("layered")).await.unwrap();
    let in_use = |id: &Digest| *id == layered.id;
    let err = store.remove(&reg.image("layered"), false, &in_use).unwrap_err().to_string();
    assert!(err.contains("in use"), "{err}");
    let rep = store.remove(&reg.image("layered"), false, &|_| false).unwrap();
    assert_eq!(rep.deleted, vec![layered.id.clone()]);
    assert!(rep.reclaimed > 0);
    assert_eq!(fs::read_dir(store.dir().join("layers")).unwrap().count(), 1, "busybox's layer stays");
    assert!(store.layer_dirs(&reg.image("busybox")).is_ok());
    let rep = store.prune(false, &|_| false).unwrap();
    assert!(rep.deleted.is_empty(), "busybox is tagged");
    let rep = store.prune(true, &|_| false).unwrap();
    assert_eq!(rep.deleted, vec![bb.id]);
    assert_eq!(fs::read_dir(store.dir().join("layers")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(store.dir().join("blobs/sha256")).unwrap().count(), 0);
    let err = store.remove("nosuch:latest", false, &|_| false).unwrap_err().to_string();
    assert_eq!(err, "image `nosuch:latest` not found locally");
}

#[test]
fn deep_images_mount_past_the_option_page_limit() {
    require_root("overlay mounts");
    let root = TempRoot::new();
    let layers_dir = root.path().join("images/layers");
    let layers: Vec<PathBuf> = (0..50u32)
        .map(|i| {
            let d = layers_dir.join(Digest::of(&i.to_be_bytes()).hex());
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join(format!("f{i}")), "x").unwrap();
            fs::write(d.join("top.txt"), format!("layer {i}")).unwrap();
            d
        })
        .collect();
    let abs_len: usize = layers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(abs_len > 4096, "the absolute lowerdir list must not fit one page ({abs_len})");
    let run = root.path().join("c");
    let target = run.join("rootfs");
    image::mount_rootfs(&layers, &run.join("upper"), &run.join("work"), &target).unwrap();
    let _guard = MountGuard(target.clone());
    assert_eq!(fs::read_to_string(target.join("top.txt")).unwrap(), "layer 49", "the last layer is on top");
    assert!((0..50).all(|i| target.join(format!("f{i}")).is_file()));
}
