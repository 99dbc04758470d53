//! `COPY` and `ADD`: which files go where ([`plan`], pure but for reading the source tree), the
//! digest of what is copied (the cache key's input), and writing them into a staging directory
//! that becomes the layer.
//!
//! Destination rules, as Docker's: a relative destination is under `WORKDIR`; the destination is
//! a directory when it ends with `/`, when it is a directory in the image already, or when
//! several sources are copied (then the `/` is required); a directory source copies its
//! contents; a file source lands at the destination, or under it by its own name when the
//! destination is a directory. Parent directories are created (a parent the image has keeps its
//! mode, owner and time). Files keep their mode and modification time; every entry is owned by
//! `--chown` (names resolved through the stage's `/etc/passwd` and `/etc/group`), else root;
//! `--chmod` sets the mode of everything copied. `ADD` unpacks a local tar archive (plain, gzip,
//! bzip2, xz or zstd) into the destination directory.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::config::resolve_path;
use super::error::{io_err, At, Result};
use super::sources::{PickError, SourceRoot};

/// What one copied entry is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    /// A directory.
    Dir,
    /// A regular file, copied from this host path.
    File(PathBuf),
    /// A symbolic link with this target.
    Symlink(PathBuf),
    /// A file given inline (a heredoc).
    Inline(Vec<u8>),
    /// A tar archive unpacked into the destination directory (`ADD`).
    Archive(PathBuf),
}

/// One entry of a copy: what, where, with which mode and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Absolute path in the image, without a trailing slash.
    pub dest: String,
    /// What it is made from.
    pub kind: ItemKind,
    /// Permission bits (before `--chmod`).
    pub mode: u32,
    /// Modification time, seconds since the epoch (`None`: the build's time).
    pub mtime: Option<i64>,
}

/// A `COPY`/`ADD` as the executor gives it here.
pub struct CopySpec<'a> {
    /// Source paths or globs.
    pub sources: &'a [String],
    /// Heredoc sources: (name, content).
    pub inline: Vec<(String, String)>,
    /// The destination as written (expanded).
    pub dest: &'a str,
    /// The stage's working directory.
    pub workdir: &'a str,
    /// `ADD`: unpack local archives.
    pub unpack: bool,
    /// `--parents`: keep each source's path below the destination.
    pub parents: bool,
}

fn base_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// The entries a copy makes. `is_dir_in_image` tells whether an absolute path is a directory
/// in the stage's file system.
pub fn plan(
    spec: &CopySpec<'_>,
    root: &SourceRoot,
    is_dir_in_image: &dyn Fn(&str) -> bool,
    at: &At,
) -> Result<Vec<Item>> {
    let dest = resolve_path(spec.workdir, spec.dest);
    let slash = dest.ends_with('/');
    let dest = dest.trim_end_matches('/').to_string();
    let dest = if dest.is_empty() { "/".to_string() } else { dest };
    let mut picked = Vec::new();
    for s in spec.sources {
        match root.pick(s) {
            Ok(p) => picked.extend(p),
            Err(PickError::NotFound { excluded: true }) => {
                return Err(at.fail(format!("\"{s}\": not found: excluded by .dockerignore")))
            }
            Err(PickError::NotFound { excluded: false }) => return Err(at.fail(format!("\"{s}\": not found"))),
            Err(PickError::BadPattern(e)) => return Err(at.fail(format!("\"{s}\": {e}"))),
        }
    }
    let count = picked.len() + spec.inline.len();
    let several = count > 1 || spec.sources.iter().any(|s| s.contains(['*', '?', '[']));
    if count > 1 && !slash {
        return Err(at.fail(
            "When using COPY with more than one source file, the destination must be a directory and end with a /",
        ));
    }
    let dest_is_dir = slash || several || is_dir_in_image(&dest);
    let join = |a: &str, b: &str| if a == "/" { format!("/{b}") } else { format!("{a}/{b}") };
    let mut items = Vec::new();
    for p in &picked {
        let target_dir = if spec.parents && !p.rel.is_empty() {
            let parent = p.rel.rsplit_once('/').map_or("", |(d, _)| d);
            if parent.is_empty() {
                dest.clone()
            } else {
                join(&dest, parent)
            }
        } else {
            dest.clone()
        };
        let host = root.host(&p.rel);
        let meta = fs::metadata(&host).map_err(io_err("read", &host))?;
        if p.is_dir {
            let base =
                if spec.parents && !p.rel.is_empty() { join(&target_dir, base_name(&p.rel)) } else { target_dir };
            items.push(Item {
                dest: base.clone(),
                kind: ItemKind::Dir,
                mode: meta.mode() & 0o7777,
                mtime: Some(meta.mtime()),
            });
            for rel in root.walk(&p.rel).map_err(io_err("read", &host))? {
                let full = if p.rel.is_empty() { rel.clone() } else { format!("{}/{rel}", p.rel) };
                items.push(entry(&root.host(&full), join(&base, &rel))?);
            }
            continue;
        }
        let target = if dest_is_dir || spec.parents { join(&target_dir, base_name(&p.rel)) } else { dest.clone() };
        let mut item = Item {
            dest: target,
            kind: ItemKind::File(host.clone()),
            mode: meta.mode() & 0o7777,
            mtime: Some(meta.mtime()),
        };
        if spec.unpack && super::archive::is_archive(&host).map_err(io_err("read", &host))? {
            item.dest = dest.clone();
            item.kind = ItemKind::Archive(host);
        }
        items.push(item);
    }
    for (name, data) in &spec.inline {
        let target = if dest_is_dir { join(&dest, name) } else { dest.clone() };
        items.push(Item { dest: target, kind: ItemKind::Inline(data.clone().into_bytes()), mode: 0o644, mtime: None });
    }
    Ok(items)
}

/// An entry below a copied directory, as it is (symlinks not followed).
fn entry(host: &Path, dest: String) -> Result<Item> {
    let meta = fs::symlink_metadata(host).map_err(io_err("read", host))?;
    let kind = if meta.is_dir() {
        ItemKind::Dir
    } else if meta.file_type().is_symlink() {
        ItemKind::Symlink(fs::read_link(host).map_err(io_err("read the link", host))?)
    } else {
        ItemKind::File(host.to_path_buf())
    };
    Ok(Item { dest, kind, mode: meta.mode() & 0o7777, mtime: Some(meta.mtime()) })
}

/// The digest of everything under `dir` (names, modes, contents), as [`digest`] of copying it all.
pub fn tree_digest(dir: &Path, at: &At) -> Result<String> {
    let sources = [".".to_string()];
    let spec =
        CopySpec { sources: &sources, inline: Vec::new(), dest: "/", workdir: "/", unpack: false, parents: false };
    let root = SourceRoot { dir: dir.to_path_buf(), ignore: None };
    digest(&plan(&spec, &root, &|_| false, at)?)
}

/// The digest of everything a copy writes: paths, kinds, modes, link targets and file contents
/// (times are not part of it, as in Docker's cache).
pub fn digest(items: &[Item]) -> Result<String> {
    let mut h = Sha256::new();
    for item in items {
        h.update(item.dest.as_bytes());
        h.update([0]);
        h.update(item.mode.to_le_bytes());
        match &item.kind {
            ItemKind::Dir => h.update(b"d"),
            ItemKind::Symlink(t) => {
                h.update(b"l");
                h.update(t.as_os_str().as_encoded_bytes());
            }
            ItemKind::Inline(data) => {
                h.update(b"i");
                h.update(data);
            }
            ItemKind::File(p) | ItemKind::Archive(p) => {
                h.update(if matches!(item.kind, ItemKind::File(_)) { b"f" } else { b"a" });
                let mut f = File::open(p).map_err(io_err("read", p))?;
                io::copy(&mut f, &mut h).map_err(io_err("read", p))?;
            }
        }
        h.update([0xff]);
    }
    Ok(hex::encode(h.finalize()))
}

/// How the copied entries are owned and moded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `--chmod`.
    pub chmod: Option<u32>,
    /// The build's time for entries without one (`SOURCE_DATE_EPOCH`, else now).
    pub now: i64,
}

/// Metadata of a path in the stage's file system (for parents the copy creates).
pub type LowerMeta<'a> = &'a dyn Fn(&str) -> Option<fs::Metadata>;

/// Writes `items` under `staging` (the layer's tree).
pub fn write(items: &[Item], staging: &Path, attrs: Attrs, lower: LowerMeta<'_>) -> Result<()> {
    // Directory times are set last: writing their children changes them.
    let mut dir_times: BTreeMap<PathBuf, i64> = BTreeMap::new();
    for item in items {
        let rel = item.dest.trim_start_matches('/');
        let target = staging.join(rel);
        make_parents(staging, rel, lower, attrs, &mut dir_times)?;
        let mode = attrs.chmod.unwrap_or(item.mode);
        let time = item.mtime.unwrap_or(attrs.now);
        match &item.kind {
            ItemKind::Dir => {
                if !target.is_dir() {
                    fs::create_dir(&target).map_err(io_err("create", &target))?;
                }
                dir_times.insert(target.clone(), time);
            }
            ItemKind::File(src) => {
                remove_existing(&target)?;
                fs::copy(src, &target).map_err(io_err("copy to", &target))?;
            }
            ItemKind::Inline(data) => {
                remove_existing(&target)?;
                fs::write(&target, data).map_err(io_err("write", &target))?;
            }
            ItemKind::Symlink(t) => {
                remove_existing(&target)?;
                std::os::unix::fs::symlink(t, &target).map_err(io_err("create the link", &target))?;
                lchown(&target, attrs.uid, attrs.gid)?;
                set_time(&target, time)?;
                continue;
            }
            ItemKind::Archive(src) => {
                fs::create_dir_all(&target).map_err(io_err("create", &target))?;
                super::archive::unpack(src, &target)?;
                continue;
            }
        }
        lchown(&target, attrs.uid, attrs.gid)?;
        fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(io_err("chmod", &target))?;
        if !matches!(item.kind, ItemKind::Dir) {
            set_time(&target, time)?;
        }
    }
    for (dir, time) in dir_times.iter().rev() {
        set_time(dir, *time)?;
    }
    Ok(())
}

fn remove_existing(target: &Path) -> Result<()> {
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(target).map_err(io_err("replace", target)),
        Ok(_) => fs::remove_file(target).map_err(io_err("replace", target)),
        Err(_) => Ok(()),
    }
}

/// Creates the missing parents of `rel` under `staging`: as the stage has them, else root's
/// 0755 directories.
fn make_parents(
    staging: &Path,
    rel: &str,
    lower: LowerMeta<'_>,
    attrs: Attrs,
    times: &mut BTreeMap<PathBuf, i64>,
) -> Result<()> {
    let mut sofar = String::new();
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        sofar = if sofar.is_empty() { (*part).to_string() } else { format!("{sofar}/{part}") };
        let dir = staging.join(&sofar);
        if dir.is_dir() {
            continue;
        }
        fs::create_dir(&dir).map_err(io_err("create", &dir))?;
        let (mode, uid, gid, time) = match lower(&format!("/{sofar}")).filter(|m| m.is_dir()) {
            Some(m) => (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()),
            None => (0o755, 0, 0, attrs.now),
        };
        lchown(&dir, uid, gid)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).map_err(io_err("chmod", &dir))?;
        times.insert(dir, time);
    }
    Ok(())
}

fn lchown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io_err("change the owner of", path))
}

fn set_time(path: &Path, secs: i64) -> Result<()> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let t = TimeSpec::new(secs, 0);
    utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| io_err("set the time of", path)(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_dockerfile::ignore::PatternMatcher;

    fn ctx() -> (tempfile::TempDir, SourceRoot) {
        let d = tempfile::tempdir().unwrap();
        for f in ["a.txt", "b.txt", "dir/x", "dir/sub/y"] {
            let p = d.path().join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, f).unwrap();
        }
        let root = SourceRoot { dir: d.path().to_path_buf(), ignore: Some(PatternMatcher::new(&["dir/sub"]).unwrap()) };
        (d, root)
    }

    fn at() -> At {
        At { file: "Dockerfile".into(), line: 3 }
    }

    fn dests(sources: &[&str], dest: &str, workdir: &str, dir_in_image: bool) -> Result<Vec<String>> {
        let (_d, root) = ctx();
        let sources: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
        let spec = CopySpec { sources: &sources, inline: vec![], dest, workdir, unpack: false, parents: false };
        Ok(plan(&spec, &root, &|_| dir_in_image, &at())?.into_iter().map(|i| i.dest).collect())
    }

    #[test]
    fn destinations_follow_docker() {
        assert_eq!(dests(&["a.txt"], "/x", "/", false).unwrap(), ["/x"], "a file to a new path");
        assert_eq!(dests(&["a.txt"], "/x/", "/", false).unwrap(), ["/x/a.txt"], "trailing slash: into");
        assert_eq!(dests(&["a.txt"], "/x", "/", true).unwrap(), ["/x/a.txt"], "an existing directory: into");
        assert_eq!(dests(&["a.txt"], "rel", "/app", false).unwrap(), ["/app/rel"], "relative to WORKDIR");
        assert_eq!(dests(&["a.txt"], ".", "/app", true).unwrap(), ["/app/a.txt"]);
        assert_eq!(
            dests(&["dir"], "/d", "/", false).unwrap(),
            ["/d", "/d/x"],
            "a directory's contents, ignore applied"
        );
        assert_eq!(dests(&["*.txt"], "/t/", "/", false).unwrap(), ["/t/a.txt", "/t/b.txt"]);
        let err = dests(&["a.txt", "b.txt"], "/t", "/", false).unwrap_err().to_string();
        assert!(err.starts_with("Dockerfile:3: When using COPY with more than one source"), "{err}");
        let err = dests(&["dir/sub/y"], "/t", "/", false).unwrap_err().to_string();
        assert_eq!(err, "Dockerfile:3: \"dir/sub/y\": not found: excluded by .dockerignore");
        let err = dests(&["missing"], "/t", "/", false).unwrap_err().to_string();
        assert_eq!(err, "Dockerfile:3: \"missing\": not found");
    }

    #[test]
    fn content_changes_change_the_digest_and_staging_has_the_files() {
        let (d, root) = ctx();
        let sources = vec!["dir".to_string()];
        let spec = CopySpec {
            sources: &sources,
            inline: vec![("h".into(), "hi\n".into())],
            dest: "/out/",
            workdir: "/",
            unpack: false,
            parents: false,
        };
        let items = plan(&spec, &root, &|_| false, &at()).unwrap();
        let one = digest(&items).unwrap();
        fs::write(d.path().join("dir/x"), "changed").unwrap();
        assert_ne!(one, digest(&items).unwrap());
        let staging = tempfile::tempdir().unwrap();
        let attrs = Attrs { uid: 1000, gid: 1000, chmod: Some(0o600), now: 1000 };
        write(&items, staging.path(), attrs, &|_| None).unwrap();
        let x = fs::metadata(staging.path().join("out/x")).unwrap();
        assert_eq!((x.uid(), x.mode() & 0o777), (1000, 0o600));
        assert_eq!(fs::read_to_string(staging.path().join("out/h")).unwrap(), "hi\n");
        assert_eq!(fs::metadata(staging.path().join("out")).unwrap().mode() & 0o777, 0o600, "--chmod on dirs too");
    }
}
