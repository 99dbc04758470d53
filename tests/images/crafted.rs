//! Crafted layer tarballs: nothing may land outside the layer directory.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use berth::image;

use crate::support::require_root;

enum Crafted<'a> {
    File(&'a [u8], &'a [u8]),
    Dir(&'a [u8], u32),
    Symlink(&'a [u8], &'a [u8]),
    HardLink(&'a [u8], &'a [u8]),
    CharDev(&'a [u8], u32, u32),
}

/// Writes a tar with raw names (the `tar` crate's path setters refuse `..`, which is the point).
fn craft(entries: &[Crafted]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (name, kind, link, data, mode): (&[u8], tar::EntryType, &[u8], &[u8], u32) = match e {
            Crafted::File(n, d) => (n, tar::EntryType::Regular, b"", d, 0o644),
            Crafted::Dir(n, m) => (n, tar::EntryType::Directory, b"", b"", *m),
            Crafted::Symlink(n, t) => (n, tar::EntryType::Symlink, t, b"", 0o777),
            Crafted::HardLink(n, t) => (n, tar::EntryType::Link, t, b"", 0o644),
            Crafted::CharDev(n, _, _) => (n, tar::EntryType::Char, b"", b"", 0o666),
        };
        if let Crafted::CharDev(_, major, minor) = e {
            h.set_device_major(*major).unwrap();
            h.set_device_minor(*minor).unwrap();
        }
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name);
        gnu.linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn unpack_crafted(entries: &[Crafted]) -> (tempfile::TempDir, Result<image::UnpackReport, image::ImageError>) {
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("layer.tar");
    fs::write(&blob, craft(entries)).unwrap();
    let dest = dir.path().join("layer");
    fs::create_dir(&dest).unwrap();
    let r = image::unpack_layer(&blob, &dest);
    (dir, r)
}

#[test]
fn crafted_layers_cannot_escape() {
    require_root("unpacking with owners");
    let outside = tempfile::tempdir().unwrap();
    let o = outside.path().to_str().unwrap().as_bytes().to_vec();
    let secret = outside.path().join("secret");
    fs::write(&secret, "host file").unwrap();
    fs::set_permissions(outside.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let secret_b = secret.to_str().unwrap().as_bytes().to_vec();

    let cases: Vec<(&str, Vec<Crafted>, &str)> = vec![
        ("dotdot", vec![Crafted::File(b"../../escape.txt", b"x")], "contains `..`"),
        ("absolute", vec![Crafted::File(b"/tmp/berth-abs-escape.txt", b"x")], "absolute path"),
        (
            "symlink parent",
            vec![Crafted::Symlink(b"evil", &o), Crafted::File(b"evil/pwned.txt", b"x")],
            "parent `evil` is a symlink",
        ),
        ("hard link outside", vec![Crafted::HardLink(b"hl", b"../../../../../../etc/passwd")], "outside the layer"),
        ("hard link absolute", vec![Crafted::HardLink(b"hl", &secret_b)], "outside the layer"),
        (
            "hard link via symlink",
            vec![Crafted::Symlink(b"evil", &o), Crafted::HardLink(b"hl", b"evil/secret")],
            "not a file inside the layer",
        ),
        (
            "whiteout via symlink",
            vec![Crafted::Symlink(b"evil", &o), Crafted::File(b"evil/.wh.secret", b"")],
            "is a symlink",
        ),
    ];
    for (name, entries, want) in cases {
        let (_d, r) = unpack_crafted(&entries);
        let err = r.expect_err(name).to_string();
        assert!(err.starts_with("unsafe layer entry") && err.contains(want), "{name}: {err}");
    }
    assert!(!Path::new("/tmp/berth-abs-escape.txt").exists());
    assert_eq!(fs::read_to_string(&secret).unwrap(), "host file");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 1);
    assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1, "no hard link to the host file");

    // A directory replaced by a symlink to the host: its (late) mode must not reach the host dir.
    let (_d, r) = unpack_crafted(&[Crafted::Dir(b"d/", 0o777), Crafted::Symlink(b"d", &o)]);
    r.unwrap();
    assert_eq!(fs::metadata(outside.path()).unwrap().permissions().mode() & 0o777, 0o755);
    // A file entry at a path that holds a symlink replaces the link, never writes through it.
    let (d, r) = unpack_crafted(&[Crafted::Symlink(b"s", &secret_b), Crafted::File(b"s", b"inside")]);
    r.unwrap();
    assert_eq!(fs::read_to_string(&secret).unwrap(), "host file");
    assert_eq!(fs::read_to_string(d.path().join("layer/s")).unwrap(), "inside");
    // Device nodes are created (as root) with their numbers.
    let (d, r) = unpack_crafted(&[Crafted::CharDev(b"dev/null", 1, 3)]);
    r.unwrap();
    let m = fs::symlink_metadata(d.path().join("layer/dev/null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), nix::sys::stat::makedev(1, 3));
    // Symlinks themselves may point anywhere (they are resolved inside the container).
    let (d, r) = unpack_crafted(&[Crafted::Symlink(b"ok", b"/etc/passwd"), Crafted::HardLink(b"ok2", b"ok")]);
    r.unwrap();
    assert_eq!(fs::read_link(d.path().join("layer/ok2")).unwrap(), Path::new("/etc/passwd"));
}
