//! `berth image load` / `save`: OCI archives and `docker save` tarballs.

use std::fs;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;

use berth::events::Recorder;
use berth::image::{self, ImageStore};

use crate::support::{fixture_layout, require_root, Registry, TempRoot};
use crate::{layer_dirs, pull};

#[tokio::test]
async fn save_and_load_oci_and_docker_archives() {
    require_root("unpacking layers with owners");
    let layout = fixture_layout();
    let reg = Registry::with_fixtures(&layout);
    let root = TempRoot::new();
    let store = ImageStore::open(root.path()).unwrap();
    let layered = pull(&store, &reg.image("layered")).await.unwrap();
    let archive = root.path().join("layered.tar");
    image::save_archive(&store, &[reg.image("layered")], &archive).unwrap();

    let root2 = TempRoot::new();
    let store2 = ImageStore::open(root2.path()).unwrap();
    let names = image::load_archive(&store2, &archive, &Recorder::default()).unwrap();
    assert_eq!(names, vec![reg.image("layered")]);
    assert_eq!(store2.resolve(&reg.image("layered")).unwrap().id, layered.id);
    let dirs = layer_dirs(&store2, &reg.image("layered"));
    assert!(fs::symlink_metadata(dirs[1].join("data/remove.txt")).unwrap().file_type().is_char_device());

    // skopeo reads our archive too.
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci-archive:{}", archive.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A `docker save`-style tarball, as skopeo writes it.
    let docker_tar = root.path().join("docker.tar");
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:config", layout.display()))
        .arg(format!("docker-archive:{}:example.org/app/config:v1", docker_tar.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let names = image::load_archive(&store2, &docker_tar, &Recorder::default()).unwrap();
    assert_eq!(names, vec!["example.org/app/config:v1".to_string()]);
    let cfg = store2.inspect("example.org/app/config:v1").unwrap();
    assert_eq!(cfg["config"]["WorkingDir"], "/srv/www");
    let dirs = layer_dirs(&store2, "example.org/app/config:v1");
    assert!(dirs[0].join("bin/busybox").is_file());
}

/// A `docker save` tarball in the legacy layout: `<dir>/layer.tar` per layer, a later image's
/// layer file as a symlink to an earlier one, two images sharing their base layer.
#[test]
fn load_docker_save_with_shared_and_symlinked_layers() {
    require_root("unpacking layers with owners");
    let layout = fixture_layout();
    let blob = |d: &str| fs::read(layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
    let index: serde_json::Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest_of = |name: &str| -> serde_json::Value {
        let d = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string();
        serde_json::from_slice(&blob(&d)).unwrap()
    };
    let gunzip = |data: Vec<u8>| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&data[..]).read_to_end(&mut out).unwrap();
        out
    };
    let (bb, conf) = (manifest_of("busybox"), manifest_of("config"));
    let base = gunzip(blob(bb["layers"][0]["digest"].as_str().unwrap()));
    let top = gunzip(blob(conf["layers"][1]["digest"].as_str().unwrap()));
    let manifest = serde_json::json!([
        {"Config": "a.json", "RepoTags": ["example.org/a:1"], "Layers": ["base/layer.tar"]},
        {"Config": "b.json", "RepoTags": ["example.org/b:1", "example.org/b:latest"], "Layers": ["dup/layer.tar", "top/layer.tar"]},
    ]);
    let root = TempRoot::new();
    let tar_path = root.path().join("save.tar");
    let mut b = tar::Builder::new(fs::File::create(&tar_path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    add("a.json", &blob(bb["config"]["digest"].as_str().unwrap()));
    add("b.json", &blob(conf["config"]["digest"].as_str().unwrap()));
    add("base/layer.tar", &base);
    add("top/layer.tar", &top);
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "dup/layer.tar", "../base/layer.tar").unwrap();
    b.finish().unwrap();
    drop(b);

    let store = ImageStore::open(root.path()).unwrap();
    let names = image::load_archive(&store, &tar_path, &Recorder::default()).unwrap();
    assert_eq!(names, ["example.org/a:1", "example.org/b:1", "example.org/b:latest"]);
    let a = layer_dirs(&store, "example.org/a:1");
    let b = layer_dirs(&store, "example.org/b:latest");
    assert_eq!(a[0], b[0], "the base layer is stored once");
    assert!(b[1].join("srv/www/index.html").is_file());
    assert_eq!(store.inspect("example.org/b:1").unwrap()["config"]["User"], "1000:1000");
    assert_eq!(fs::read_dir(store.dir().join("layers")).unwrap().count(), 2);

    // A symlink that leaves the archive is refused.
    let evil = root.path().join("evil.tar");
    let mut b = tar::Builder::new(fs::File::create(&evil).unwrap());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "manifest.json", "../../../../etc/passwd").unwrap();
    b.finish().unwrap();
    drop(b);
    let err = image::load_archive(&store, &evil, &Recorder::default()).unwrap_err().to_string();
    assert!(err.contains("points outside the archive"), "{err}");
}
