//! Named and anonymous volumes under the state root.
//!
//! Layout: `<root>/<name>/_data` holds the data, `<root>/<name>/meta.json` what the volume
//! was created with (written atomically). The local driver's `driver_opts` (`type`, `o`,
//! `device`) work like Docker's: the described file system is mounted on `_data` while a
//! container uses the volume and unmounted when the last one lets go. The count is a
//! `holders` file (container names) changed under the volume's lock
//! ([`VolumeStore::acquire`], [`VolumeStore::release`]), so parallel steps and separate berth
//! processes agree on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde::{Deserialize, Serialize};

use crate::error::{io, Error, Result};

/// What a volume is created with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    /// The volume's name (`<project>_<key>` unless the compose file sets `name:`).
    pub name: String,
    /// `local` (the default) is the only driver.
    #[serde(default)]
    pub driver: Option<String>,
    /// The local driver's options: `type`, `o`, `device`.
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// An anonymous volume (`- /data`, or an image `VOLUME`).
    #[serde(default)]
    pub anonymous: bool,
}

/// A volume as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    /// What it was created with.
    #[serde(flatten)]
    pub spec: VolumeSpec,
    /// Where its data is.
    pub mountpoint: PathBuf,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
    /// Image content was copied in already (or the volume was found non-empty).
    #[serde(default)]
    pub populated: bool,
}

/// The volumes of a state root.
#[derive(Clone, Debug)]
pub struct VolumeStore {
    root: PathBuf,
}

/// True for names Docker accepts for volumes.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl VolumeStore {
    /// Opens (creating) the volume directory `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<VolumeStore> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io("create", &root))?;
        // Volumes hold containers' data: only root may reach them. The path is made canonical
        // so that mount points are recognized in `/proc/self/mountinfo`.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).map_err(io("restrict", &root))?;
        let root = std::fs::canonicalize(&root).map_err(io("resolve", &root))?;
        Ok(VolumeStore { root })
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn meta_path(&self, name: &str) -> PathBuf {
        self.dir(name).join("meta.json")
    }

    /// Creates the volume unless it exists; returns it either way (an existing volume keeps
    /// what it was created with).
    pub fn create(&self, spec: &VolumeSpec) -> Result<VolumeInfo> {
        if !valid_name(&spec.name) {
            return Err(Error::InvalidName(spec.name.clone()));
        }
        if let Some(existing) = self.get(&spec.name)? {
            return Ok(existing);
        }
        check_driver(spec)?;
        let data = self.dir(&spec.name).join("_data");
        std::fs::create_dir_all(&data).map_err(io("create", &data))?;
        // As Docker makes it: containers' users reach the data (the store itself is 0700).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).map_err(io("chmod", &data))?;
        let created_at = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let info = VolumeInfo { spec: spec.clone(), mountpoint: data, created_at, populated: false };
        self.write_meta(&info)?;
        Ok(info)
    }

    /// The volume, if it exists.
    pub fn get(&self, name: &str) -> Result<Option<VolumeInfo>> {
        if !valid_name(name) {
            return Err(Error::InvalidName(name.to_string()));
        }
        let path = self.meta_path(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &path)(e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| Error::Metadata { path, message: e.to_string() })
    }

    /// Every volume, sorted by name.
    pub fn list(&self) -> Result<Vec<VolumeInfo>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(io("list", &self.root))? {
            let entry = entry.map_err(io("list", &self.root))?;
            if let Some(info) = self.get(&entry.file_name().to_string_lossy())? {
                out.push(info);
            }
        }
        out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(out)
    }

    /// Removes the volume and its data; refuses while `users` (containers using it) is not
    /// empty.
    pub fn remove(&self, name: &str, users: &[String]) -> Result<()> {
        if self.get(name)?.is_none() {
            return Err(Error::NoSuchVolume(name.to_string()));
        }
        if !users.is_empty() {
            return Err(Error::InUse { name: name.to_string(), users: users.join(", ") });
        }
        self.deactivate(name)?;
        let dir = self.dir(name);
        if is_mount_point(&dir.join("_data")) {
            // Never delete through a mount: that would empty the host directory behind it.
            let errno = nix::errno::Errno::EBUSY;
            return Err(Error::Mount { action: "remove the still-mounted volume at", path: dir.join("_data"), errno });
        }
        std::fs::remove_dir_all(&dir).map_err(io("remove", &dir))
    }

    /// Makes the volume's data available and returns its path: mounts the file system that
    /// `driver_opts` describe, when they describe one and it is not mounted yet.
    pub fn activate(&self, name: &str) -> Result<PathBuf> {
        self.get(name)?.ok_or_else(|| Error::NoSuchVolume(name.to_string()))?;
        let _lock = self.lock(name)?;
        self.mount_locked(name)
    }

    /// [`VolumeStore::activate`] for `holder` (a container): the volume's file system stays
    /// mounted until its last holder lets go with [`VolumeStore::release`]. Holders are kept in
    /// the volume's `holders` file, so separate berth processes count together.
    pub fn acquire(&self, name: &str, holder: &str) -> Result<PathBuf> {
        self.get(name)?.ok_or_else(|| Error::NoSuchVolume(name.to_string()))?;
        let _lock = self.lock(name)?;
        let data = self.mount_locked(name)?;
        let mut holders = self.read_holders(name)?;
        if holders.insert(holder.to_string()) {
            if let Err(e) = self.write_holders(name, &holders) {
                if holders.len() == 1 {
                    return Err(e.undone(|| format!("the mount of volume {name:?}"), self.deactivate(name)));
                }
                return Err(e);
            }
        }
        Ok(data)
    }

    /// Lets go of the volume for `holder`; the last holder to go unmounts what
    /// [`VolumeStore::acquire`] mounted. Returns whether it unmounted. A volume that is gone
    /// already needs no release.
    pub fn release(&self, name: &str, holder: &str) -> Result<bool> {
        if self.get(name)?.is_none() {
            return Ok(false);
        }
        let _lock = self.lock(name)?;
        let mut holders = self.read_holders(name)?;
        if holders.remove(holder) {
            self.write_holders(name, &holders)?;
        }
        if !holders.is_empty() || !is_mount_point(&self.dir(name).join("_data")) {
            return Ok(false);
        }
        self.deactivate(name)?;
        Ok(true)
    }

    /// The containers holding the volume (see [`VolumeStore::acquire`]).
    pub fn holders(&self, name: &str) -> Result<BTreeSet<String>> {
        self.read_holders(name)
    }

    fn holders_path(&self, name: &str) -> PathBuf {
        self.dir(name).join("holders")
    }

    fn read_holders(&self, name: &str) -> Result<BTreeSet<String>> {
        let path = self.holders_path(name);
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(t.lines().filter(|l| !l.is_empty()).map(str::to_string).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    fn write_holders(&self, name: &str, holders: &BTreeSet<String>) -> Result<()> {
        let path = self.holders_path(name);
        let tmp = path.with_extension("tmp");
        let text: String = holders.iter().map(|h| format!("{h}\n")).collect();
        std::fs::write(&tmp, text).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("write", &path))
    }

    /// Mounts the volume's `driver_opts` file system unless it is mounted; the caller holds the
    /// volume's lock.
    fn mount_locked(&self, name: &str) -> Result<PathBuf> {
        let mut info = self.get(name)?.ok_or_else(|| Error::NoSuchVolume(name.to_string()))?;
        let opts = &info.spec.driver_opts;
        if opts.is_empty() || is_mount_point(&info.mountpoint) {
            return Ok(info.mountpoint);
        }
        let fstype = opts.get("type").map(String::as_str).unwrap_or("none");
        let o = opts.get("o").cloned().unwrap_or_default();
        let (mut flags, data): (MsFlags, Vec<&str>) =
            (MsFlags::empty(), o.split(',').filter(|s| !s.is_empty()).collect());
        let mut rest = Vec::new();
        for opt in data {
            match opt {
                "bind" => flags |= MsFlags::MS_BIND,
                "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
                "ro" => flags |= MsFlags::MS_RDONLY,
                "nosuid" => flags |= MsFlags::MS_NOSUID,
                "nodev" => flags |= MsFlags::MS_NODEV,
                "noexec" => flags |= MsFlags::MS_NOEXEC,
                other => rest.push(other),
            }
        }
        let device = opts.get("device").cloned().unwrap_or_else(|| fstype.to_string());
        let rest = rest.join(",");
        let data = (!rest.is_empty()).then_some(rest.as_str());
        mount(Some(device.as_str()), &info.mountpoint, Some(fstype), flags, data).map_err(|errno| Error::Mount {
            action: "mount the volume on",
            path: info.mountpoint.clone(),
            errno,
        })?;
        if flags.contains(MsFlags::MS_BIND)
            && flags.intersects(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)
        {
            // A new bind mount ignores every flag but MS_REC: apply them with a remount.
            let again = flags | MsFlags::MS_REMOUNT;
            if let Err(errno) = mount(None::<&str>, &info.mountpoint, None::<&str>, again, None::<&str>) {
                let e = Error::Mount { action: "make the volume read-only at", path: info.mountpoint.clone(), errno };
                return Err(unmount_after(e, &info.mountpoint));
            }
        }
        if fstype == "tmpfs" && info.populated {
            // A fresh tmpfs is empty again: the next container fills it from its image.
            info.populated = false;
            if let Err(e) = self.write_meta(&info) {
                return Err(unmount_after(e, &info.mountpoint));
            }
        }
        Ok(info.mountpoint)
    }

    /// Unmounts what [`VolumeStore::activate`] mounted, if anything.
    pub fn deactivate(&self, name: &str) -> Result<()> {
        let data = self.dir(name).join("_data");
        if is_mount_point(&data) {
            umount2(&data, MntFlags::MNT_DETACH).map_err(|errno| Error::Mount {
                action: "unmount the volume from",
                path: data,
                errno,
            })?;
        }
        Ok(())
    }

    /// Copies `from` (the image's content at the mount point) into a new, empty volume —
    /// Docker's copy-up. `target` is the mount point, resolved inside `image_root` as the
    /// container would resolve it (symlinks never lead out of `image_root`). Does nothing when
    /// the volume was populated before or is not empty. Returns whether it copied.
    pub fn copy_up(&self, name: &str, image_root: &Path, target: &str) -> Result<bool> {
        // Replicas sharing a new volume start at once: one copies, the others find it populated.
        let _lock = self.lock(name)?;
        let mut info = self.get(name)?.ok_or_else(|| Error::NoSuchVolume(name.to_string()))?;
        if info.populated {
            return Ok(false);
        }
        let empty = std::fs::read_dir(&info.mountpoint).map_err(io("read", &info.mountpoint))?.next().is_none();
        let from = match crate::copy::resolve_in_root(image_root, target)? {
            Some(p) if empty && std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) => Some(p),
            _ => None,
        };
        let copied = from.is_some();
        if let Some(from) = from {
            crate::copy::copy_tree(&from, &info.mountpoint)?;
        }
        info.populated = true;
        self.write_meta(&info)?;
        Ok(copied)
    }

    /// An exclusive lock on one volume, held until dropped.
    fn lock(&self, name: &str) -> Result<nix::fcntl::Flock<std::fs::File>> {
        let path = self.dir(name).join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("open", &path))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, errno)| Error::Mount {
            action: "lock",
            path,
            errno,
        })
    }

    fn write_meta(&self, info: &VolumeInfo) -> Result<()> {
        let path = self.meta_path(&info.spec.name);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(info).expect("metadata serializes");
        std::fs::write(&tmp, text).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("write", &path))
    }
}

/// Whether the local driver can make `spec`: its driver, its options, and a `bind` device that
/// exists. `create` checks this; `up` asks first, before anything is made.
pub fn check_driver(spec: &VolumeSpec) -> Result<()> {
    let err = |m: &str| Error::Driver { name: spec.name.clone(), message: m.to_string() };
    if let Some(d) = spec.driver.as_deref().filter(|d| *d != "local") {
        return Err(err(&format!("driver {d:?} is not supported; berth has the \"local\" driver")));
    }
    let opts = &spec.driver_opts;
    if let Some(k) = opts.keys().find(|k| !matches!(k.as_str(), "type" | "o" | "device")) {
        return Err(err(&format!("unknown driver option {k:?} (the local driver takes type, o and device)")));
    }
    let bind = opts.get("o").is_some_and(|o| o.split(',').any(|x| x == "bind" || x == "rbind"));
    if bind {
        match opts.get("device") {
            Some(dev) if Path::new(dev).is_dir() => {}
            Some(dev) => return Err(err(&format!("bind device `{dev}` is not a directory"))),
            None => return Err(err("a bind volume needs `device`")),
        }
    } else if !opts.is_empty() && !opts.contains_key("type") {
        return Err(err("driver_opts need `type` (e.g. tmpfs) or `o: bind` with `device`"));
    }
    Ok(())
}

/// True when `path` is a mount point (per `/proc/self/mountinfo`).
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let target = path.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4).is_some_and(|m| unescape_mount(m) == target))
}

fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

/// `error`, after unmounting what the failed operation had mounted at `mountpoint`.
fn unmount_after(error: Error, mountpoint: &Path) -> Error {
    let undo = umount2(mountpoint, MntFlags::MNT_DETACH).map_err(|errno| Error::Mount {
        action: "unmount",
        path: mountpoint.to_path_buf(),
        errno,
    });
    error.undone(|| format!("the mount at `{}`", mountpoint.display()), undo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> VolumeSpec {
        VolumeSpec { name: name.into(), ..VolumeSpec::default() }
    }

    #[test]
    fn create_is_idempotent_and_keeps_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(dir.path()).unwrap();
        let mut s = spec("proj_data");
        s.labels.insert("com.docker.compose.project".into(), "proj".into());
        let a = store.create(&s).unwrap();
        std::fs::write(a.mountpoint.join("f"), "x").unwrap();
        let b = store.create(&spec("proj_data")).unwrap();
        assert_eq!(a, b);
        assert_eq!(store.list().unwrap().len(), 1);
        assert_eq!(std::fs::read_to_string(b.mountpoint.join("f")).unwrap(), "x");
    }

    #[test]
    fn remove_refuses_while_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(dir.path()).unwrap();
        store.create(&spec("v1")).unwrap();
        let e = store.remove("v1", &["proj-web-1".into()]).unwrap_err();
        assert_eq!(e.to_string(), "volume \"v1\" is in use by proj-web-1");
        store.remove("v1", &[]).unwrap();
        assert!(store.get("v1").unwrap().is_none());
        assert!(matches!(store.remove("v1", &[]), Err(Error::NoSuchVolume(_))));
    }

    #[test]
    fn names_and_driver_options_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(dir.path()).unwrap();
        assert!(matches!(store.create(&spec("-bad")), Err(Error::InvalidName(_))));
        assert!(matches!(store.create(&spec("../x")), Err(Error::InvalidName(_))));
        let mut s = spec("v2");
        s.driver = Some("nfs-plugin".into());
        assert!(store.create(&s).unwrap_err().to_string().contains("not supported"));
        let mut s = spec("v3");
        s.driver_opts.insert("o".into(), "bind".into());
        s.driver_opts.insert("device".into(), "/does/not/exist".into());
        assert!(store.create(&s).unwrap_err().to_string().contains("is not a directory"));
        assert!(store.list().unwrap().is_empty(), "nothing half-created");
    }

    #[test]
    fn copy_up_fills_a_new_volume_once() {
        let dir = tempfile::tempdir().unwrap();
        let image = tempfile::tempdir().unwrap();
        std::fs::create_dir(image.path().join("sub")).unwrap();
        std::fs::write(image.path().join("sub/file"), "from image").unwrap();
        std::os::unix::fs::symlink("sub/file", image.path().join("link")).unwrap();
        let store = VolumeStore::open(dir.path()).unwrap();
        let v = store.create(&spec("v4")).unwrap();
        assert!(store.copy_up("v4", image.path(), "/").unwrap());
        assert_eq!(std::fs::read_to_string(v.mountpoint.join("sub/file")).unwrap(), "from image");
        assert_eq!(std::fs::read_link(v.mountpoint.join("link")).unwrap(), Path::new("sub/file"));
        std::fs::remove_file(v.mountpoint.join("sub/file")).unwrap();
        assert!(!store.copy_up("v4", image.path(), "/").unwrap(), "only the first mount copies");
        assert!(!v.mountpoint.join("sub/file").exists());
    }
}
