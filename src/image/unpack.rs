//! Unpacks one layer tarball (gzip, zstd or plain) into its own directory, the way overlayfs wants it.
//!
//! Rules, in the order they are applied to every entry:
//! - The path must be relative and free of `..`; an absolute path or `..` fails the whole layer.
//! - Every parent directory is checked with `lstat`, never followed: a parent that is a symlink fails
//!   the layer (a symlink to `/etc` followed by `evil/passwd` cannot write to the host). Missing parents
//!   are created with mode 0755.
//! - `.wh..wh..opq` marks its directory opaque (`trusted.overlay.opaque=y`); `.wh.NAME` becomes the
//!   overlayfs whiteout for NAME: a character device 0/0.
//! - Anything already at the path is removed first (a directory is kept when the entry is one too),
//!   files are created with `O_EXCL | O_NOFOLLOW`, so the last component is never followed either.
//! - A hard link's target is resolved inside the layer with the same rules and must already exist.
//! - Owners (`lchown`), modes (after chown, so set-id bits survive), mtimes, `SCHILY.xattr.*` PAX
//!   records are applied; directory modes and times last, deepest first. Device nodes that the
//!   process may not create are skipped with a warning; ownership that cannot be set likewise.
//!
//! Both the compressed stream and the uncompressed tar are hashed while they are read, so the caller
//! gets the blob digest and the diff id without reading anything twice.

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{makedev, mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use super::digest::HashingReader;
use super::{Digest, ImageError, Result};

/// What unpacking one layer found out.
#[derive(Debug, Clone)]
pub struct UnpackReport {
    /// Digest of the blob as stored (compressed); None when the caller said it was verified already.
    pub blob_digest: Option<Digest>,
    /// Size of the blob in bytes.
    pub blob_size: u64,
    /// Digest of the uncompressed tar: the layer's diff id.
    pub diff_id: Digest,
    /// Sum of the sizes of the regular files written.
    pub unpacked_size: u64,
    /// Things that could not be preserved (device nodes, owners when not root, xattrs).
    pub warnings: Vec<String>,
}

#[derive(Clone, Copy)]
enum Compression {
    Gzip,
    Zstd,
    None,
}

fn sniff(path: &Path) -> Result<Compression> {
    let mut magic = [0u8; 4];
    let mut f = File::open(path).map_err(ImageError::io("open layer", path))?;
    let n = read_full(&mut f, &mut magic).map_err(ImageError::io("read layer", path))?;
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    })
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Unpacks the layer blob at `blob` into `dest`, an existing empty directory, hashing the blob
/// and the uncompressed tar.
pub fn unpack_layer(blob: &Path, dest: &Path) -> Result<UnpackReport> {
    unpack(blob, dest, true)
}

/// Like [`unpack_layer`]; with `hash_blob` false the blob digest is not computed (the caller
/// verified the file itself moments ago). The diff id is always computed.
pub(crate) fn unpack(blob: &Path, dest: &Path, hash_blob: bool) -> Result<UnpackReport> {
    let compression = sniff(blob)?;
    let file = BufReader::with_capacity(1 << 20, File::open(blob).map_err(ImageError::io("open layer", blob))?);
    let mut outer = if hash_blob { HashingReader::new(file) } else { HashingReader::counting(file) };
    let read_err = ImageError::io("read layer", blob);
    let mut unpacker = Unpacker::new(dest);
    let (diff_id, _) = {
        let decoder: Box<dyn Read + '_> = match compression {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut outer)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::new(&mut outer).map_err(ImageError::io("read layer", blob))?)
            }
            Compression::None => Box::new(&mut outer),
        };
        let mut inner = HashingReader::new(decoder);
        {
            let mut archive = tar::Archive::new(&mut inner);
            let entries = archive.entries().map_err(ImageError::io("read layer", blob))?;
            for entry in entries {
                let entry = entry.map_err(ImageError::io("read layer", blob))?;
                unpacker.entry(entry)?;
            }
        }
        inner.finish().map_err(ImageError::io("read layer", blob))?
    };
    unpacker.finish()?;
    let (blob_digest, blob_size) = outer.finish_opt().map_err(read_err)?;
    Ok(UnpackReport { blob_digest, blob_size, diff_id, unpacked_size: unpacker.size, warnings: unpacker.warnings })
}

/// Turns an entry path into a relative path without `..`, or says why not.
pub(crate) fn safe_rel_path(raw: &Path) -> Result<PathBuf> {
    let mut rel = PathBuf::new();
    for comp in raw.components() {
        match comp {
            Component::Normal(c) => rel.push(c),
            Component::CurDir => {}
            Component::ParentDir => return Err(unsafe_entry(raw, "path contains `..`")),
            Component::RootDir | Component::Prefix(_) => return Err(unsafe_entry(raw, "absolute path")),
        }
    }
    Ok(rel)
}

fn unsafe_entry(raw: &Path, reason: &str) -> ImageError {
    ImageError::UnsafeEntry { entry: raw.display().to_string(), reason: reason.to_string() }
}

/// What one tar entry says about the file it describes.
struct Meta {
    raw: PathBuf,
    rel: PathBuf,
    path: PathBuf,
    kind: tar::EntryType,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    device: (Option<u32>, Option<u32>),
    link: Option<PathBuf>,
}

struct DirMeta {
    rel: PathBuf,
    mode: u32,
    mtime: i64,
}

struct Unpacker<'a> {
    root: &'a Path,
    /// Relative directories known to exist as real directories (cleared whenever anything is removed).
    known_dirs: HashSet<PathBuf>,
    dirs: Vec<DirMeta>,
    size: u64,
    warnings: Vec<String>,
    chown_failed: bool,
    /// Copy buffer for file contents (large: fewer read/write calls than `io::copy`'s 8 KiB).
    buf: Vec<u8>,
}

impl<'a> Unpacker<'a> {
    fn new(root: &'a Path) -> Self {
        Unpacker {
            root,
            known_dirs: HashSet::new(),
            dirs: Vec::new(),
            size: 0,
            warnings: Vec::new(),
            chown_failed: false,
            buf: vec![0; 256 * 1024],
        }
    }

    /// Creates the parents of `rel` as needed; fails if one of them is a symlink or not a directory.
    fn ensure_parents(&mut self, raw: &Path, rel: &Path) -> Result<()> {
        let mut prefix = PathBuf::new();
        let parent = rel.parent().unwrap_or(Path::new(""));
        for comp in parent.components() {
            prefix.push(comp);
            if self.known_dirs.contains(&prefix) {
                continue;
            }
            let full = self.root.join(&prefix);
            match fs::symlink_metadata(&full) {
                Ok(m) if m.file_type().is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(unsafe_entry(raw, &format!("parent `{}` is a symlink", prefix.display())))
                }
                Ok(_) => return Err(unsafe_entry(raw, &format!("parent `{}` is not a directory", prefix.display()))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // A parent the archive does not list gets the usual 0755, whatever the umask.
                    fs::create_dir(&full).map_err(ImageError::io("create directory", &full))?;
                    fs::set_permissions(&full, Permissions::from_mode(0o755))
                        .map_err(ImageError::io("chmod", &full))?;
                }
                Err(e) => return Err(ImageError::io("inspect", &full)(e)),
            }
            self.known_dirs.insert(prefix.clone());
        }
        Ok(())
    }

    /// Checks that every component of `rel` (including the last) exists and none of its parents is a
    /// symlink; used for hard-link targets and for the final directory pass.
    fn resolves_inside(&self, rel: &Path) -> Option<fs::Metadata> {
        let mut prefix = PathBuf::new();
        let comps: Vec<_> = rel.components().collect();
        for (i, comp) in comps.iter().enumerate() {
            prefix.push(comp);
            let m = fs::symlink_metadata(self.root.join(&prefix)).ok()?;
            if i + 1 == comps.len() {
                return Some(m);
            }
            if !m.file_type().is_dir() {
                return None;
            }
        }
        fs::symlink_metadata(self.root).ok()
    }

    /// Removes whatever is at `path` unless both it and the new entry are directories; returns
    /// whether a directory was kept.
    fn clear(&mut self, path: &Path, new_is_dir: bool) -> Result<bool> {
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ImageError::io("inspect", path)(e)),
            Ok(m) if m.file_type().is_dir() && new_is_dir => Ok(true),
            Ok(m) => {
                self.known_dirs.clear();
                if m.file_type().is_dir() {
                    fs::remove_dir_all(path).map_err(ImageError::io("remove", path))?;
                } else {
                    fs::remove_file(path).map_err(ImageError::io("remove", path))?;
                }
                Ok(false)
            }
        }
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path().map_err(ImageError::io("read entry path in", self.root))?.into_owned();
        let rel = safe_rel_path(&raw)?;
        let header = entry.header();
        let m = Meta {
            kind: header.entry_type(),
            mode: header.mode().unwrap_or(0o644) & 0o7777,
            uid: header.uid().unwrap_or(0) as u32,
            gid: header.gid().unwrap_or(0) as u32,
            mtime: header.mtime().unwrap_or(0) as i64,
            device: (header.device_major().ok().flatten(), header.device_minor().ok().flatten()),
            link: entry.link_name().ok().flatten().map(|l| l.into_owned()),
            path: self.root.join(&rel),
            raw,
            rel,
        };
        let xattrs = pax_xattrs(&mut entry);
        if m.rel.as_os_str().is_empty() {
            if m.kind.is_dir() {
                self.chown(self.root, m.uid, m.gid)?;
                self.dirs.push(DirMeta { rel: m.rel, mode: m.mode, mtime: m.mtime });
            }
            return Ok(());
        }
        let name = m.rel.file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_default();
        if name.starts_with(b".wh.") {
            return self.whiteout(&m.raw, &m.rel, &name[4..]);
        }
        self.ensure_parents(&m.raw, &m.rel)?;
        use tar::EntryType as T;
        let created = match m.kind {
            T::Regular | T::Continuous | T::GNUSparse => self.file(&m, &mut entry)?,
            T::Directory => self.dir(&m)?,
            T::Symlink => self.symlink(&m)?,
            T::Link => self.hard_link(&m)?,
            T::Char | T::Block | T::Fifo => self.node(&m)?,
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => false,
            other => {
                self.warnings.push(format!("skipped `{}`: unsupported entry type {other:?}", m.raw.display()));
                false
            }
        };
        if !created {
            return Ok(());
        }
        for (key, value) in xattrs {
            // Overlay's own attributes (opaque, redirect, metacopy) would let a layer bypass the
            // whiteout rules: they come only from whiteout entries, never from a layer's xattrs.
            if key.starts_with("trusted.overlay.") {
                self.warnings.push(format!("xattr `{key}` on `{}` ignored", m.raw.display()));
                continue;
            }
            if let Err(e) = lsetxattr(&m.path, &key, &value) {
                self.warnings.push(format!("xattr `{key}` on `{}` not kept: {e}", m.raw.display()));
            }
        }
        if !m.kind.is_dir() {
            set_mtime(&m.path, m.mtime).map_err(ImageError::io("set times of", &m.path))?;
        }
        Ok(())
    }

    /// A regular file: created exclusively without following a symlink, owner before mode.
    fn file(&mut self, m: &Meta, data: &mut impl Read) -> Result<bool> {
        self.clear(&m.path, false)?;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&m.path)
            .map_err(ImageError::io("create", &m.path))?;
        self.size += copy_with(&mut self.buf, data, &mut f).map_err(ImageError::io("write", &m.path))?;
        self.chown(&m.path, m.uid, m.gid)?;
        f.set_permissions(Permissions::from_mode(m.mode)).map_err(ImageError::io("chmod", &m.path))?;
        Ok(true)
    }

    /// A directory: kept if one exists; its mode and times are applied in [`Self::finish`].
    fn dir(&mut self, m: &Meta) -> Result<bool> {
        if !self.clear(&m.path, true)? {
            fs::create_dir(&m.path).map_err(ImageError::io("create directory", &m.path))?;
        }
        self.chown(&m.path, m.uid, m.gid)?;
        self.known_dirs.insert(m.rel.clone());
        self.dirs.push(DirMeta { rel: m.rel.clone(), mode: m.mode, mtime: m.mtime });
        Ok(true)
    }

    /// A symlink: its target may be anything, it is never followed here.
    fn symlink(&mut self, m: &Meta) -> Result<bool> {
        let target = m.link.as_ref().ok_or_else(|| unsafe_entry(&m.raw, "symlink without target"))?;
        self.clear(&m.path, false)?;
        std::os::unix::fs::symlink(target, &m.path).map_err(ImageError::io("create symlink", &m.path))?;
        self.chown(&m.path, m.uid, m.gid)?;
        Ok(true)
    }

    /// A hard link: the target must be a non-directory already inside the layer.
    fn hard_link(&mut self, m: &Meta) -> Result<bool> {
        let target = m.link.as_ref().ok_or_else(|| unsafe_entry(&m.raw, "hard link without target"))?;
        let outside = || unsafe_entry(&m.raw, &format!("hard link target `{}` is outside the layer", target.display()));
        let target_rel = safe_rel_path(target).map_err(|_| outside())?;
        if target_rel == m.rel {
            return Ok(false);
        }
        match self.resolves_inside(&target_rel) {
            Some(meta) if !meta.file_type().is_dir() => {}
            _ => {
                let why = format!("hard link target `{}` is not a file inside the layer", target.display());
                return Err(unsafe_entry(&m.raw, &why));
            }
        }
        self.clear(&m.path, false)?;
        // link(2) without AT_SYMLINK_FOLLOW: a symlink target is linked itself, never followed.
        fs::hard_link(self.root.join(&target_rel), &m.path).map_err(ImageError::io("create hard link", &m.path))?;
        Ok(false)
    }

    /// A device node or fifo; devices the process may not create are skipped with a warning.
    fn node(&mut self, m: &Meta) -> Result<bool> {
        self.clear(&m.path, false)?;
        let (sflag, what) = match m.kind {
            tar::EntryType::Char => (SFlag::S_IFCHR, "character device"),
            tar::EntryType::Block => (SFlag::S_IFBLK, "block device"),
            _ => (SFlag::S_IFIFO, "fifo"),
        };
        let dev = makedev(u64::from(m.device.0.unwrap_or(0)), u64::from(m.device.1.unwrap_or(0)));
        if let Err(e) = mknod(&m.path, sflag, Mode::from_bits_truncate(m.mode), dev) {
            if e == nix::errno::Errno::EPERM {
                self.warnings.push(format!("skipped {what} `{}`: not permitted", m.raw.display()));
                return Ok(false);
            }
            return Err(ImageError::io(format!("create {what}"), &m.path)(e.into()));
        }
        self.chown(&m.path, m.uid, m.gid)?;
        fs::set_permissions(&m.path, Permissions::from_mode(m.mode)).map_err(ImageError::io("chmod", &m.path))?;
        Ok(true)
    }

    fn whiteout(&mut self, raw: &Path, rel: &Path, name: &[u8]) -> Result<()> {
        self.ensure_parents(raw, rel)?;
        let parent = self.root.join(rel.parent().unwrap_or(Path::new("")));
        if name == b".wh..opq" {
            return lsetxattr(&parent, "trusted.overlay.opaque", b"y").map_err(ImageError::io("mark opaque", &parent));
        }
        if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
            return Err(unsafe_entry(raw, "invalid whiteout name"));
        }
        let target = parent.join(std::ffi::OsStr::from_bytes(name));
        self.clear(&target, false)?;
        mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
            .map_err(|e| ImageError::io("create whiteout (needs root)", &target)(e.into()))
    }

    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> Result<()> {
        if self.chown_failed {
            return Ok(());
        }
        match std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                self.chown_failed = true;
                self.warnings.push("file owners not preserved: not permitted (not root)".to_string());
                Ok(())
            }
            Err(e) => Err(ImageError::io("chown", path)(e)),
        }
    }

    /// Applies directory modes and times, deepest first, to directories that are still directories.
    fn finish(&mut self) -> Result<()> {
        self.dirs.sort_by_key(|d| std::cmp::Reverse(d.rel.components().count()));
        for d in &self.dirs {
            match self.resolves_inside(&d.rel) {
                Some(m) if m.file_type().is_dir() => {}
                _ => continue, // replaced by a later entry
            }
            let path = self.root.join(&d.rel);
            fs::set_permissions(&path, Permissions::from_mode(d.mode)).map_err(ImageError::io("chmod", &path))?;
            set_mtime(&path, d.mtime).map_err(ImageError::io("set times of", &path))?;
        }
        Ok(())
    }
}

fn copy_with(buf: &mut [u8], from: &mut impl Read, to: &mut impl io::Write) -> io::Result<u64> {
    let mut total = 0;
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts.flatten() {
            if let Ok(key) = ext.key() {
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    out.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    out
}

fn set_mtime(path: &Path, mtime: i64) -> io::Result<()> {
    let t = TimeSpec::new(mtime, 0);
    utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(io::Error::from)
}

fn lsetxattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let cpath =
        CString::new(path.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let cname = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: both strings are valid NUL-terminated C strings that outlive the call, and `value`
    // points to `value.len()` readable bytes.
    let rc = unsafe { libc::lsetxattr(cpath.as_ptr(), cname.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(safe_rel_path(Path::new("./a/b")).unwrap(), PathBuf::from("a/b"));
        assert_eq!(safe_rel_path(Path::new("./")).unwrap(), PathBuf::new());
        assert!(safe_rel_path(Path::new("a/../../b")).is_err());
        assert!(safe_rel_path(Path::new("/etc/passwd")).is_err());
    }
}
