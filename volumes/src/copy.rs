//! Copying a directory tree with its owners, modes and symlinks (for copy-up of image content
//! into a new volume). Symlinks are copied as links, never followed.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

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
