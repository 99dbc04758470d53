//! Copying a directory tree with its owners, modes and symlinks (for copy-up of image content
//! into a new volume). Symlinks are copied as links, never followed.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{io, Result};

/// Copies the contents of `from` into the existing directory `to`.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(from).map_err(io("read", from))?;
    set_owner_and_mode(to, &meta)?;
    for entry in std::fs::read_dir(from).map_err(io("list", from))? {
        let entry = entry.map_err(io("list", from))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src).map_err(io("read", &src))?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&src).map_err(io("read the link", &src))?;
            std::os::unix::fs::symlink(&target, &dst).map_err(io("create the link", &dst))?;
            std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid())).map_err(io("chown", &dst))?;
        } else if ft.is_dir() {
            std::fs::create_dir(&dst).map_err(io("create", &dst))?;
            copy_tree(&src, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst).map_err(io("copy to", &dst))?;
            set_owner_and_mode(&dst, &meta)?;
        }
        // Sockets, fifos and device nodes are not copied: a volume is for data.
    }
    Ok(())
}

fn set_owner_and_mode(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid())).map_err(io("chown", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o7777)).map_err(io("chmod", path))
}

/// Resolves `path` inside `root` the way the container will see it: symlinks are followed, but
/// relative to `root` (an absolute link starts again at `root`, `..` stops at it), so nothing
/// outside `root` is ever reached. Returns `None` when the path does not exist.
pub fn resolve_in_root(root: &Path, path: &str) -> Result<Option<PathBuf>> {
    let mut todo: VecDeque<OsString> = components(Path::new(path));
    let mut cur = PathBuf::new();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&c);
        let full = root.join(&next);
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err(io("resolve", &full)(std::io::Error::other("too many levels of symbolic links")));
                }
                let link = std::fs::read_link(&full).map_err(io("read the link", &full))?;
                if link.is_absolute() {
                    cur = PathBuf::new();
                }
                for part in components(&link).into_iter().rev() {
                    todo.push_front(part);
                }
            }
            Ok(_) => cur = next,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &full)(e)),
        }
    }
    Ok(Some(root.join(cur)))
}

fn components(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("real/data")).unwrap();
        std::os::unix::fs::symlink("/real/data", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", r.join("up")).unwrap();
        std::os::unix::fs::symlink("real", r.join("rel")).unwrap();
        assert_eq!(resolve_in_root(r, "/abs").unwrap(), Some(r.join("real/data")));
        assert_eq!(resolve_in_root(r, "/rel/data").unwrap(), Some(r.join("real/data")));
        assert_eq!(resolve_in_root(r, "/up").unwrap(), None, "`..` stops at the root: /etc inside it does not exist");
        std::fs::create_dir(r.join("etc")).unwrap();
        assert_eq!(resolve_in_root(r, "/up").unwrap(), Some(r.join("etc")));
        assert_eq!(resolve_in_root(r, "/missing/x").unwrap(), None);
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert!(resolve_in_root(r, "/loop").is_err());
    }
}
