//! Layers made by a build: a directory tree (the upper directory of a `RUN` container, or the
//! files a `COPY` staged) written as an OCI layer tar, gzip-compressed, into the image store.
//!
//! The upper directory of an overlay mount is already a diff of the layers below it, in
//! overlayfs' own form: a deleted path is a character device 0/0 (written as `.wh.<name>`), and a
//! directory that replaced one below carries `trusted.overlay.opaque=y` (written as the directory
//! plus `.wh..wh..opq`). Entries are written in byte order of their paths with normalized headers
//! (no user or group names, no access times), hard links as links to their first path, and with
//! a clamp time (`SOURCE_DATE_EPOCH`) every later modification time becomes that time; gzip's
//! own header carries no time. The same tree thus always gives the same blob.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::image::{Digest, ImageStore, LayerRecord};

/// Media type of the layers berth writes.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// Errors of writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Reading the tree or writing the blob failed.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        /// What was done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The image store refused the blob.
    #[error(transparent)]
    Store(#[from] crate::image::ImageError),
}

fn io_err<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> LayerError + 'p {
    move |source| LayerError::Io { action, path: path.to_path_buf(), source }
}

/// A writer that hashes what goes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Whether `tree` holds nothing (a `RUN` that changed no file makes no layer).
pub fn is_empty(tree: &Path) -> Result<bool, LayerError> {
    Ok(fs::read_dir(tree).map_err(io_err("read", tree))?.next().is_none())
}

/// Writes `tree` as a layer into `store` and unpacks it there (without `clamp`, `tree` itself is
/// moved into the store as the layer's directory); `clamp` is the latest modification time
/// written (seconds since the epoch). Returns the layer's record.
pub fn commit_tree(store: &ImageStore, tree: &Path, clamp: Option<u64>) -> Result<LayerRecord, LayerError> {
    let tmp_dir = store.dir().join("tmp");
    let tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io_err("create a file in", &tmp_dir))?;
    let file = tmp.reopen().map_err(io_err("open", tmp.path()))?;
    let gz = Hashing { inner: io::BufWriter::new(file), hash: Sha256::new(), len: 0 };
    let encoder = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
    let mut tar_out = Hashing { inner: encoder, hash: Sha256::new(), len: 0 };
    write_tar(tree, &mut tar_out, clamp)?;
    let diff_id = Digest::from_hasher(tar_out.hash);
    let mut gz = tar_out.inner.finish().map_err(io_err("compress", tree))?;
    gz.flush().map_err(io_err("write", tmp.path()))?;
    let Hashing { inner, hash, len: size } = gz;
    drop(inner);
    let digest = Digest::from_hasher(hash);
    let (_, path) = tmp.keep().map_err(|e| io_err("keep", &tmp_dir)(e.error))?;
    store.import_blob_file(&path, Some(&digest))?;
    // Without a clamp the tree is exactly what unpacking the blob would give: it becomes the layer
    // directory itself (as overlay2 keeps a container's upper directory as its layer).
    let adopted = if clamp.is_none() { store.adopt_layer(tree, &diff_id)? } else { None };
    let unpacked_size = match adopted {
        Some(size) => size,
        None => store.ensure_layer(&digest, &diff_id, true)?.0,
    };
    Ok(LayerRecord { digest, diff_id, media_type: LAYER_MEDIA_TYPE.to_string(), size, unpacked_size })
}

/// Writes the tar stream of `tree` to `out`.
pub fn write_tar(tree: &Path, out: &mut impl Write, clamp: Option<u64>) -> Result<(), LayerError> {
    let mut paths = Vec::new();
    collect(tree, Path::new(""), &mut paths)?;
    paths.sort_by(|a, b| a.as_os_str().as_encoded_bytes().cmp(b.as_os_str().as_encoded_bytes()));
    let mut builder = tar::Builder::new(out);
    builder.mode(tar::HeaderMode::Deterministic);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for rel in &paths {
        let full = tree.join(rel);
        let meta = fs::symlink_metadata(&full).map_err(io_err("read", &full))?;
        let ft = meta.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(u64::from(meta.uid()));
        header.set_gid(u64::from(meta.gid()));
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        header.set_mtime(clamp.map_or(mtime, |c| mtime.min(c)));
        header.set_size(0);
        let err = |e: io::Error| LayerError::Io { action: "write the layer entry for", path: full.clone(), source: e };
        if ft.is_char_device() && meta.rdev() == 0 {
            // A whiteout: the path was deleted.
            let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let wh = rel.with_file_name(format!(".wh.{name}"));
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            builder.append_data(&mut header, &wh, io::empty()).map_err(err)?;
            continue;
        }
        if ft.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            builder.append_data(&mut header, rel, io::empty()).map_err(err)?;
            if is_opaque(&full) {
                let mut wh = tar::Header::new_gnu();
                wh.set_entry_type(tar::EntryType::Regular);
                wh.set_mode(0o644);
                wh.set_mtime(header.mtime().unwrap_or(0));
                wh.set_size(0);
                builder.append_data(&mut wh, rel.join(".wh..wh..opq"), io::empty()).map_err(err)?;
            }
            continue;
        }
        if ft.is_symlink() {
            let target = fs::read_link(&full).map_err(io_err("read the link", &full))?;
            header.set_entry_type(tar::EntryType::Symlink);
            builder.append_link(&mut header, rel, &target).map_err(err)?;
            continue;
        }
        if meta.nlink() > 1 && !ft.is_dir() {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                header.set_entry_type(tar::EntryType::Link);
                builder.append_link(&mut header, rel, first).map_err(err)?;
                continue;
            }
            links.insert((meta.dev(), meta.ino()), rel.clone());
        }
        if ft.is_file() {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            let file = File::open(&full).map_err(io_err("open", &full))?;
            builder.append_data(&mut header, rel, file.take(meta.len())).map_err(err)?;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            header.set_entry_type(if ft.is_fifo() {
                tar::EntryType::Fifo
            } else if ft.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            let rdev = meta.rdev();
            header.set_device_major(libc::major(rdev)).map_err(err)?;
            header.set_device_minor(libc::minor(rdev)).map_err(err)?;
            builder.append_data(&mut header, rel, io::empty()).map_err(err)?;
        }
        // Sockets are not kept in layers.
    }
    builder.finish().map_err(io_err("finish the layer of", tree))?;
    Ok(())
}

fn collect(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), LayerError> {
    let dir = root.join(rel);
    for entry in fs::read_dir(&dir).map_err(io_err("read", &dir))? {
        let entry = entry.map_err(io_err("read", &dir))?;
        let child = rel.join(entry.file_name());
        let is_dir = entry.file_type().map_err(io_err("read", &dir))?.is_dir();
        out.push(child.clone());
        if is_dir {
            collect(root, &child, out)?;
        }
    }
    Ok(())
}

/// Whether `dir` (in an overlay upper directory) is opaque: it hides what is below it.
pub(crate) fn is_opaque(dir: &Path) -> bool {
    OPAQUE_XATTRS.iter().any(|name| xattr_is_y(dir, name))
}

fn xattr_is_y(path: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(p), Ok(n)) = (std::ffi::CString::new(path.as_os_str().as_bytes()), std::ffi::CString::new(name)) else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: both strings are NUL-terminated and `buf` is valid for its length.
    let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    len == 1 && buf[0] == b'y'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(tar: &[u8]) -> Vec<(String, tar::EntryType, u64)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (e.path().unwrap().to_string_lossy().into_owned(), h.entry_type(), h.mtime().unwrap())
            })
            .collect()
    }

    #[test]
    fn a_tree_is_written_in_order_with_clamped_times() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("b/c")).unwrap();
        fs::write(d.path().join("b/c/z"), "z").unwrap();
        fs::write(d.path().join("a"), "a").unwrap();
        fs::hard_link(d.path().join("a"), d.path().join("b/a2")).unwrap();
        std::os::unix::fs::symlink("../a", d.path().join("b/link")).unwrap();
        let mut one = Vec::new();
        write_tar(d.path(), &mut one, Some(1000)).unwrap();
        let e = entries(&one);
        let names: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(names, ["a", "b", "b/a2", "b/c", "b/c/z", "b/link"]);
        assert_eq!(e[2].1, tar::EntryType::Link, "the second name of a file is a hard link");
        assert_eq!(e[5].1, tar::EntryType::Symlink);
        assert!(e.iter().all(|x| x.2 == 1000), "times clamped: {e:?}");
        let mut two = Vec::new();
        write_tar(d.path(), &mut two, Some(1000)).unwrap();
        assert_eq!(one, two, "the same tree gives the same bytes");
    }

    #[test]
    fn whiteouts_become_wh_files() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("etc")).unwrap();
        nix::sys::stat::mknod(
            &d.path().join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .expect("mknod needs root (tests run as root)");
        let mut out = Vec::new();
        write_tar(d.path(), &mut out, None).unwrap();
        let names: Vec<String> = entries(&out).into_iter().map(|x| x.0).collect();
        assert_eq!(names, ["etc", "etc/.wh.gone"]);
    }
}
