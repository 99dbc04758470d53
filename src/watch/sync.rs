//! Writing host files into a running container, with no tool inside it: berth opens the
//! container's root through `/proc/<pid>/root` (its own mount namespace, so volumes and binds are
//! seen as the container sees them) and writes there itself.
//!
//! Everything below the rule's target is reached with `openat2(RESOLVE_BENEATH)` from the
//! target directory: a symlink the container made that leads elsewhere (`/etc`, `../..`) makes
//! the write fail rather than land outside the target. Files are written to a temporary name and
//! renamed over the old one, so a process in the container never reads half a file; a symlink
//! in the way is replaced, never followed. Files get the host file's mode and modification time
//! and the container user's ownership.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};

/// Errors of a sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A host path could not be read.
    #[error("cannot read `{path}`: {source}")]
    Host {
        /// The host path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A container path could not be written.
    #[error("cannot write `{path}` in the container: {source}")]
    Container {
        /// The path inside the container.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A path leads out of the target through a symlink.
    #[error("`{path}` leads outside `{target}` through a symlink in the container; not written")]
    Escape {
        /// The path inside the container.
        path: PathBuf,
        /// The rule's target.
        target: PathBuf,
    },
}

/// What a sync changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Synced {
    /// Files and symlinks written.
    pub written: usize,
    /// Paths deleted.
    pub deleted: usize,
    /// Files already as on the host (initial sync).
    pub unchanged: usize,
}

impl std::ops::AddAssign for Synced {
    fn add_assign(&mut self, o: Synced) {
        self.written += o.written;
        self.deleted += o.deleted;
        self.unchanged += o.unchanged;
    }
}

/// A directory inside a container that host files are synced to.
pub struct Target {
    dir: OwnedFd,
    path: PathBuf,
    owner: (u32, u32),
}

const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

impl Target {
    /// The directory `target` (absolute, in the container) of the container whose init is `pid`,
    /// made when missing; files get the init's user and group.
    pub fn of_container(pid: i32, target: &Path) -> Result<Target, SyncError> {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let meta = std::fs::metadata(&proc_dir).map_err(|source| SyncError::Container { path: "/".into(), source })?;
        Target::under(&proc_dir.join("root"), target, (meta.uid(), meta.gid()))
    }

    /// The directory `target` below the root directory `root` (what the container sees as `/`).
    pub fn under(root: &Path, target: &Path, owner: (u32, u32)) -> Result<Target, SyncError> {
        let err = |source: io::Error| SyncError::Container { path: target.to_path_buf(), source };
        let root_fd = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| err(e.into()))?;
        // The target itself is found as the container would find it (its symlinks stay inside
        // its root), and made when missing.
        let mut dir = rustix::fs::openat2(
            &root_fd,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT,
        )
        .map_err(|e| err(e.into()))?;
        for part in relative(target).components() {
            let Component::Normal(name) = part else { continue };
            dir = match open_dir(&dir, Path::new(name), ResolveFlags::IN_ROOT) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)).map_err(|e| err(e.into()))?;
                    let made = open_dir(&dir, Path::new(name), ResolveFlags::IN_ROOT).map_err(err)?;
                    chown(&made, owner).map_err(err)?;
                    made
                }
                Err(e) => return Err(err(e)),
            };
        }
        Ok(Target { dir, path: target.to_path_buf(), owner })
    }

    /// Makes `rel` (relative to the target) in the container what `host` is on the host: a file,
    /// a symlink, or a directory with everything in it; deleted when `host` does not exist.
    /// With `only_differing`, files already equal (size and modification time) are left alone.
    pub fn apply(&self, host: &Path, rel: &Path, only_differing: bool) -> Result<Synced, SyncError> {
        let rel = &relative(rel);
        let Some(name) = rel.file_name() else {
            // The target itself: its contents.
            return self.apply_dir_contents(host, Path::new(""), only_differing);
        };
        let meta = match std::fs::symlink_metadata(host) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.delete(rel),
            Err(source) => return Err(SyncError::Host { path: host.to_path_buf(), source }),
        };
        let parent = self.make_dirs(rel.parent().unwrap_or(Path::new("")))?;
        let cerr = |source: io::Error| SyncError::Container { path: self.path.join(rel), source };
        if meta.is_dir() {
            match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory => {}
                Ok(_) => {
                    remove_at(&parent, Path::new(name)).map_err(cerr)?;
                    self.mkdir_at(&parent, Path::new(name), &meta).map_err(cerr)?;
                }
                Err(rustix::io::Errno::NOENT) => self.mkdir_at(&parent, Path::new(name), &meta).map_err(cerr)?,
                Err(e) => return Err(cerr(e.into())),
            }
            return self.apply_dir_contents(host, rel, only_differing);
        }
        if meta.file_type().is_symlink() {
            let link =
                std::fs::read_link(host).map_err(|source| SyncError::Host { path: host.to_path_buf(), source })?;
            let tmp = temp_name(name);
            rustix::fs::symlinkat(&link, &parent, &tmp).map_err(|e| cerr(e.into()))?;
            rustix::fs::renameat(&parent, &tmp, &parent, name).map_err(|e| cerr(e.into()))?;
            return Ok(Synced { written: 1, ..Synced::default() });
        }
        if !meta.is_file() {
            return Ok(Synced::default());
        }
        if only_differing && same_file(&parent, Path::new(name), &meta) {
            return Ok(Synced { unchanged: 1, ..Synced::default() });
        }
        self.write_file(&parent, Path::new(name), host, &meta).map_err(cerr)?;
        Ok(Synced { written: 1, ..Synced::default() })
    }

    fn apply_dir_contents(&self, host: &Path, rel: &Path, only_differing: bool) -> Result<Synced, SyncError> {
        let mut done = Synced::default();
        let entries = std::fs::read_dir(host).map_err(|source| SyncError::Host { path: host.to_path_buf(), source })?;
        for entry in entries {
            let entry = entry.map_err(|source| SyncError::Host { path: host.to_path_buf(), source })?;
            done += self.apply(&entry.path(), &rel.join(entry.file_name()), only_differing)?;
        }
        Ok(done)
    }

    /// Deletes `rel` (a file, a symlink or a whole directory) when it is there.
    fn delete(&self, rel: &Path) -> Result<Synced, SyncError> {
        let cerr = |source: io::Error| SyncError::Container { path: self.path.join(rel), source };
        let parent = match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            None => rustix::io::dup(&self.dir).map_err(|e| cerr(e.into()))?,
            Some(p) => match open_dir(&self.dir, p, BENEATH) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Synced::default()),
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => return Err(self.escape(rel)),
                Err(e) => return Err(cerr(e)),
            },
        };
        let name = Path::new(rel.file_name().unwrap_or_default());
        match remove_at(&parent, name) {
            Ok(()) => Ok(Synced { deleted: 1, ..Synced::default() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Synced::default()),
            Err(e) => Err(cerr(e)),
        }
    }

    /// Opens directory `rel` below the target, making what is missing (owned by the container's
    /// user).
    fn make_dirs(&self, rel: &Path) -> Result<OwnedFd, SyncError> {
        let cerr = |source: io::Error| SyncError::Container { path: self.path.join(rel), source };
        let mut dir = rustix::io::dup(&self.dir).map_err(|e| cerr(e.into()))?;
        for part in rel.components() {
            let Component::Normal(name) = part else { continue };
            dir = match open_dir(&dir, Path::new(name), BENEATH) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)).map_err(|e| cerr(e.into()))?;
                    let made = open_dir(&dir, Path::new(name), BENEATH).map_err(cerr)?;
                    chown(&made, self.owner).map_err(cerr)?;
                    made
                }
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) || e.raw_os_error() == Some(libc::ELOOP) => {
                    return Err(self.escape(rel))
                }
                // A file or a symlink in the way of a directory: the host has a directory there.
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                    remove_at(&dir, Path::new(name)).map_err(cerr)?;
                    rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)).map_err(|e| cerr(e.into()))?;
                    let made = open_dir(&dir, Path::new(name), BENEATH).map_err(cerr)?;
                    chown(&made, self.owner).map_err(cerr)?;
                    made
                }
                Err(e) => return Err(cerr(e)),
            };
        }
        Ok(dir)
    }

    fn escape(&self, rel: &Path) -> SyncError {
        SyncError::Escape { path: self.path.join(rel), target: self.path.clone() }
    }

    fn mkdir_at(&self, parent: &OwnedFd, name: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
        rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(meta.permissions().mode() & 0o7777))?;
        let made = open_dir(parent, name, BENEATH)?;
        chown(&made, self.owner)?;
        rustix::fs::fchmod(&made, Mode::from_raw_mode(meta.permissions().mode() & 0o7777))?;
        Ok(())
    }

    fn write_file(&self, parent: &OwnedFd, name: &Path, host: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
        let tmp = temp_name(name.as_os_str());
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(parent, &tmp, flags, Mode::from_raw_mode(0o600))?;
        let written = (|| -> io::Result<()> {
            let mut out = File::from(fd);
            let mut src = File::open(host)?;
            io::copy(&mut src, &mut out)?;
            rustix::fs::fchown(
                &out,
                Some(rustix::fs::Uid::from_raw(self.owner.0)),
                Some(rustix::fs::Gid::from_raw(self.owner.1)),
            )?;
            rustix::fs::fchmod(&out, Mode::from_raw_mode(meta.permissions().mode() & 0o7777))?;
            let mtime = Timespec { tv_sec: meta.mtime(), tv_nsec: meta.mtime_nsec() as _ };
            rustix::fs::futimens(&out, &Timestamps { last_access: mtime, last_modification: mtime })?;
            Ok(())
        })();
        let renamed = written.and_then(|()| Ok(rustix::fs::renameat(parent, &tmp, parent, name)?));
        match renamed {
            Err(e) => match rustix::fs::unlinkat(parent, &tmp, AtFlags::empty()) {
                // The temporary file stays beside the target: the error names it.
                Err(u) => Err(io::Error::new(
                    e.kind(),
                    format!("{e} (and the temporary file `{}` was left behind: {u})", tmp.to_string_lossy()),
                )),
                Ok(()) => Err(e),
            },
            ok => ok,
        }
    }
}

/// `p` without its root, so it joins below a directory.
fn relative(p: &Path) -> PathBuf {
    p.components().filter(|c| matches!(c, Component::Normal(_))).collect()
}

fn temp_name(name: &std::ffi::OsStr) -> std::ffi::OsString {
    let mut t = std::ffi::OsString::from(".berth-sync-");
    t.push(name);
    t
}

fn open_dir(dir: &impl AsFd, rel: &Path, resolve: ResolveFlags) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat2(dir, rel, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty(), resolve)?)
}

fn chown(fd: &OwnedFd, (uid, gid): (u32, u32)) -> io::Result<()> {
    Ok(rustix::fs::fchown(fd, Some(rustix::fs::Uid::from_raw(uid)), Some(rustix::fs::Gid::from_raw(gid)))?)
}

/// Whether `name` in `parent` is a regular file of the host file's size and modification time.
fn same_file(parent: &OwnedFd, name: &Path, meta: &std::fs::Metadata) -> bool {
    rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
            && st.st_size as u64 == meta.len()
            && st.st_mtime == meta.mtime()
            && st.st_mtime_nsec as i64 == meta.mtime_nsec()
    })
}

/// Removes `name` in `dir`: a file or symlink, or a directory with everything in it (never
/// following a symlink).
fn remove_at(dir: &OwnedFd, name: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::ISDIR) => {}
        Err(e) => return Err(e.into()),
    }
    let sub = open_dir(dir, name, BENEATH)?;
    let names: Vec<std::ffi::OsString> = {
        let listing = rustix::fs::Dir::read_from(&sub)?;
        listing
            .filter_map(|e| e.ok())
            .map(|e| std::ffi::OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
            .filter(|n| n != "." && n != "..")
            .collect()
    };
    for n in names {
        remove_at(&sub, Path::new(&n))?;
    }
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        host: tempfile::TempDir,
        root: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture { host: tempfile::tempdir().unwrap(), root: tempfile::tempdir().unwrap() }
        }

        fn target(&self) -> Target {
            Target::under(self.root.path(), Path::new("/app"), (1000, 1000)).unwrap()
        }

        fn sync(&self, rel: &str) -> Result<Synced, SyncError> {
            self.target().apply(&self.host.path().join(rel), Path::new(rel), false)
        }

        fn inside(&self, rel: &str) -> PathBuf {
            self.root.path().join("app").join(rel)
        }
    }

    #[test]
    fn files_directories_and_links_follow_the_host() {
        let f = Fixture::new();
        std::fs::create_dir_all(f.host.path().join("src/deep")).unwrap();
        std::fs::write(f.host.path().join("src/deep/a.txt"), "one").unwrap();
        std::fs::set_permissions(f.host.path().join("src/deep/a.txt"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("deep/a.txt", f.host.path().join("src/link")).unwrap();
        assert_eq!(f.sync("src").unwrap().written, 2);
        let a = f.inside("src/deep/a.txt");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "one");
        let meta = std::fs::metadata(&a).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.uid(), meta.gid()), (0o750, 1000, 1000));
        assert_eq!(std::fs::read_link(f.inside("src/link")).unwrap(), Path::new("deep/a.txt"));
        std::fs::write(f.host.path().join("src/deep/a.txt"), "two").unwrap();
        f.sync("src/deep/a.txt").unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "two");
        std::fs::remove_dir_all(f.host.path().join("src/deep")).unwrap();
        assert_eq!(f.sync("src/deep").unwrap().deleted, 1);
        assert!(!f.inside("src/deep").exists());
        assert_eq!(f.sync("src/deep").unwrap(), Synced::default(), "deleting what is gone is nothing");
        let stray: Vec<_> = std::fs::read_dir(f.inside("src")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(stray, ["link"], "no temporary file is left");
    }

    #[test]
    fn a_symlink_the_container_made_never_leads_a_write_outside_the_target() {
        let f = Fixture::new();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(f.inside("")).unwrap();
        std::os::unix::fs::symlink(outside.path(), f.inside("abs")).unwrap();
        std::os::unix::fs::symlink("../..", f.inside("up")).unwrap();
        for dir in ["abs", "up"] {
            std::fs::create_dir_all(f.host.path().join(dir)).unwrap();
            std::fs::write(f.host.path().join(dir).join("x"), "x").unwrap();
            let r = f.target().apply(&f.host.path().join(dir).join("x"), &Path::new(dir).join("x"), false);
            assert!(matches!(r, Err(SyncError::Escape { .. })), "{dir}: {r:?}");
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // Syncing the directory itself replaces the link with a directory.
        f.sync("abs").unwrap();
        assert!(std::fs::symlink_metadata(f.inside("abs")).unwrap().is_dir());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_initial_sync_writes_only_what_differs() {
        let f = Fixture::new();
        for n in ["a", "b", "c"] {
            std::fs::write(f.host.path().join(n), n).unwrap();
        }
        let t = f.target();
        assert_eq!(t.apply(f.host.path(), Path::new(""), true).unwrap().written, 3);
        std::fs::write(f.host.path().join("b"), "changed").unwrap();
        let again = t.apply(f.host.path(), Path::new(""), true).unwrap();
        assert_eq!((again.written, again.unchanged), (1, 2));
    }
}
