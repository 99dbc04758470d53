//! Resolving a Compose/Docker `user` (`name`, `uid`, `name:group`, `uid:gid`) to numeric ids through
//! the image's `/etc/passwd` and `/etc/group`, the way Docker does it:
//!
//! - a name must exist in `/etc/passwd`; a number need not (it then gets gid 0 and home `/`);
//! - without a group the primary group of the passwd entry is used;
//! - supplementary groups are the groups that list the user as a member, plus `group_add`;
//! - a group name must exist in `/etc/group`.

use std::path::{Path, PathBuf};

/// The parts of `/etc/passwd` and `/etc/group` that matter, as read from a container's file system.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserDb {
    /// `name, uid, gid, home` per passwd line.
    pub users: Vec<(String, u32, u32, String)>,
    /// `name, gid, members` per group line.
    pub groups: Vec<(String, u32, Vec<String>)>,
}

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary group ids, sorted, without duplicates.
    pub additional_gids: Vec<u32>,
    /// Home directory (for `HOME`).
    pub home: String,
}

impl UserDb {
    /// Parses the contents of `/etc/passwd` and `/etc/group` (either may be empty).
    pub fn parse(passwd: &str, group: &str) -> UserDb {
        let users = passwd
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 4).then(|| {
                    let home = f.get(5).copied().unwrap_or("/").to_string();
                    Some((f[0].to_string(), f[2].parse().ok()?, f[3].parse().ok()?, home))
                })?
            })
            .collect();
        let groups = group
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                if f.len() < 3 {
                    return None;
                }
                let members = f
                    .get(3)
                    .map(|m| m.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
                    .unwrap_or_default();
                Some((f[0].to_string(), f[2].parse().ok()?, members))
            })
            .collect();
        UserDb { users, groups }
    }

    /// Reads `etc/passwd` and `etc/group` from a container's layered file system: `dirs` top first
    /// (the container's upper dir, then the image layers top to bottom). Symlinks are not followed.
    pub fn from_layers(dirs: &[PathBuf]) -> UserDb {
        let read = |rel: &str| layered_file(dirs, Path::new(rel)).unwrap_or_default();
        UserDb::parse(&read("etc/passwd"), &read("etc/group"))
    }

    fn group_id(&self, spec: &str) -> Result<u32, String> {
        if let Ok(n) = spec.parse::<u32>() {
            return Ok(n);
        }
        self.groups
            .iter()
            .find(|g| g.0 == spec)
            .map(|g| g.1)
            .ok_or_else(|| format!("unable to find group `{spec}`: no matching entries in the image's /etc/group"))
    }

    /// Resolves `user` (empty means root) plus the `group_add` entries.
    pub fn resolve(&self, user: &str, group_add: &[String]) -> Result<ResolvedUser, String> {
        let (user_part, group_part) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        let user_part = if user_part.is_empty() { "0" } else { user_part };
        let entry = match user_part.parse::<u32>() {
            Ok(uid) => self.users.iter().find(|u| u.1 == uid).cloned(),
            Err(_) => Some(self.users.iter().find(|u| u.0 == user_part).cloned().ok_or_else(|| {
                format!("unable to find user `{user_part}`: no matching entries in the image's /etc/passwd")
            })?),
        };
        let uid = match &entry {
            Some(e) => e.1,
            None => user_part.parse().unwrap_or(0),
        };
        let gid = match group_part {
            Some(g) if !g.is_empty() => self.group_id(g)?,
            _ => entry.as_ref().map(|e| e.2).unwrap_or(0),
        };
        let mut additional = Vec::new();
        if let Some(e) = &entry {
            // Docker adds the groups that list the user only when no group was given explicitly.
            if group_part.is_none() {
                additional.extend(self.groups.iter().filter(|g| g.2.contains(&e.0)).map(|g| g.1));
            }
        }
        for g in group_add {
            additional.push(self.group_id(g)?);
        }
        additional.sort_unstable();
        additional.dedup();
        let home = entry.map(|e| e.3).filter(|h| !h.is_empty()).unwrap_or_else(|| "/".into());
        Ok(ResolvedUser { uid, gid, additional_gids: additional, home })
    }
}

/// The content of `rel` in a layered file system (`dirs` top first), as overlayfs would show it:
/// the first layer that has it wins; a whiteout (character device 0/0) hides it; anything but a
/// regular file counts as absent.
pub fn layered_file(dirs: &[PathBuf], rel: &Path) -> Option<String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    for d in dirs {
        let p = d.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            return None;
        }
        if !meta.file_type().is_file() {
            return None;
        }
        return std::fs::read_to_string(&p).ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> UserDb {
        UserDb::parse(
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n# comment\nbad line\n",
            "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\naudio:x:29:app\n",
        )
    }

    #[test]
    fn names_numbers_and_groups() {
        let d = db();
        let r = d.resolve("", &[]).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (0, 0, "/root"));
        let r = d.resolve("app", &[]).unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids.clone()), (1000, 1000, vec![10, 29]));
        assert_eq!(r.home, "/home/app");
        let r = d.resolve("1000:wheel", &["audio".into(), "4242".into()]).unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids), (1000, 10, vec![29, 4242]));
        let r = d.resolve("4000:4001", &[]).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (4000, 4001, "/"));
        let r = d.resolve("4000", &[]).unwrap();
        assert_eq!((r.uid, r.gid), (4000, 0));
        assert!(d.resolve("nobody", &[]).unwrap_err().contains("unable to find user `nobody`"));
        assert!(d.resolve("app:nogroup", &[]).unwrap_err().contains("unable to find group `nogroup`"));
    }

    #[test]
    fn layered_lookup_honours_whiteouts() {
        let top = tempfile::tempdir().unwrap();
        let bottom = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(bottom.path().join("etc")).unwrap();
        std::fs::write(bottom.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        let dirs = vec![top.path().to_path_buf(), bottom.path().to_path_buf()];
        assert!(layered_file(&dirs, Path::new("etc/passwd")).unwrap().starts_with("root"));
        std::fs::create_dir_all(top.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", top.path().join("etc/passwd")).unwrap();
        assert_eq!(layered_file(&dirs, Path::new("etc/passwd")), None, "symlinks are not followed");
    }
}
