//! Compose's storage keys in the volumes crate's terms: a project volume becomes a
//! `VolumeSpec`, a service's `volumes:` and `tmpfs:` become mount requests, and its `secrets:`
//! and `configs:` files with their source, target, owner and mode (`volumes_from:` is resolved
//! by the loader: `berth_compose::resolved::VolumesFrom`). Pure; the executor
//! creates volumes, copies image content up and mounts.

use std::path::PathBuf;

use berth_compose::model::{FileRef, Service, VolumeType};
use berth_compose::Project;
use berth_volumes::bind::BindRequest;
use berth_volumes::secrets::{target_path, Kind, Source};
use berth_volumes::store::VolumeSpec;
use berth_volumes::Mount;

use super::netmodel::ModelError;

/// Labels Compose puts on a project's volumes.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
/// The compose key of a volume.
pub const VOLUME_LABEL: &str = "com.docker.compose.volume";

/// The volume store's description of project volume `key`.
pub fn volume_spec(project: &Project, key: &str) -> VolumeSpec {
    let vol = project.volumes.get(key).cloned().unwrap_or_default();
    let mut labels = vol.labels.clone();
    labels.insert(PROJECT_LABEL.into(), project.name.clone());
    labels.insert(VOLUME_LABEL.into(), key.into());
    VolumeSpec {
        name: vol.name.clone().unwrap_or_else(|| format!("{}_{key}", project.name)),
        driver: vol.driver.clone(),
        driver_opts: vol.driver_opts.clone(),
        labels,
        anonymous: false,
    }
}

/// One mount a service asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountRequest {
    /// A named or anonymous volume.
    Volume {
        /// The volume's name in the store.
        name: String,
        /// Anonymous (`- /data`): created for the container, named by the caller.
        anonymous: bool,
        /// Path in the container.
        target: String,
        /// Read-only.
        read_only: bool,
        /// Do not copy the image's content into a new volume.
        nocopy: bool,
        /// Mount only this directory of the volume.
        subpath: Option<String>,
    },
    /// A host path.
    Bind(BindRequest),
    /// A tmpfs.
    Tmpfs(Mount),
}

/// The mounts of a service, in order: `volumes:` then `tmpfs:`. `anonymous_name` names the
/// anonymous volume for a target (the caller keeps the names stable across recreation).
pub fn service_mounts(
    project: &Project,
    svc: &Service,
    anonymous_name: &dyn Fn(&str) -> String,
) -> Result<Vec<MountRequest>, ModelError> {
    let mut out = Vec::new();
    for (i, v) in svc.volumes.iter().enumerate() {
        let path = || format!("services.{}.volumes[{i}]", svc.name);
        let read_only = v.read_only == Some(true);
        match v.kind {
            VolumeType::Volume => {
                let opts = v.volume.clone().unwrap_or_default();
                let (name, anonymous) = match &v.source {
                    Some(key) => (volume_spec(project, key).name, false),
                    None => (anonymous_name(&v.target), true),
                };
                out.push(MountRequest::Volume {
                    name,
                    anonymous,
                    target: v.target.clone(),
                    read_only,
                    nocopy: opts.nocopy == Some(true),
                    subpath: opts.subpath,
                });
            }
            VolumeType::Bind => {
                let bind = v.bind.clone().unwrap_or_default();
                let source = v
                    .source
                    .clone()
                    .ok_or_else(|| ModelError { path: path(), message: "a bind mount needs `source`".into() })?;
                out.push(MountRequest::Bind(BindRequest {
                    source: PathBuf::from(source),
                    destination: v.target.clone(),
                    create_host_path: bind.create_host_path == Some(true),
                    read_only,
                    propagation: bind.propagation,
                    selinux: bind.selinux,
                }));
            }
            VolumeType::Tmpfs => {
                let t = v.tmpfs.clone().unwrap_or_default();
                out.push(MountRequest::Tmpfs(Mount::tmpfs(&v.target, t.size.map(|s| s.0), t.mode)));
            }
            other => {
                let kind = format!("{other:?}").to_lowercase();
                let m = format!("mount type {kind:?} is not supported by berth (volume, bind and tmpfs are)");
                return Err(ModelError { path: path(), message: m });
            }
        }
    }
    for (i, t) in svc.tmpfs.iter().enumerate() {
        out.push(MountRequest::Tmpfs(
            tmpfs_option(t)
                .map_err(|m| ModelError { path: format!("services.{}.tmpfs[{i}]", svc.name), message: m })?,
        ));
    }
    Ok(out)
}

/// A service `tmpfs:` entry (`/run` or `/run:size=64m,mode=1777,noexec`).
fn tmpfs_option(spec: &str) -> Result<Mount, String> {
    let (target, opts) = spec.split_once(':').unwrap_or((spec, ""));
    if !target.starts_with('/') {
        return Err(format!("tmpfs target {target:?} must be an absolute path"));
    }
    let mut m = Mount::tmpfs(target, None, None);
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        if let Some(v) = o.strip_prefix("size=") {
            let bytes = berth_compose::units::Bytes::parse(v)?;
            m.options.push(format!("size={}", bytes.0));
        } else if let Some(v) = o.strip_prefix("mode=") {
            u32::from_str_radix(v, 8).map_err(|_| format!("invalid tmpfs mode {v:?}"))?;
            m.options.push(format!("mode={v}"));
        } else if !m.options.iter().any(|x| x == o) {
            m.options.push(o.to_string());
        }
    }
    Ok(m)
}

/// A secret or config a container gets: where its bytes come from and where they go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRequest {
    /// Secret or config.
    pub kind: Kind,
    /// Its key in the project.
    pub name: String,
    /// Its bytes' source.
    pub source: Source,
    /// Absolute path in the container.
    pub target: String,
    /// Owner (default 0).
    pub uid: u32,
    /// Group (default 0).
    pub gid: u32,
    /// Mode (default 0444).
    pub mode: u32,
}

/// The secrets and configs of a service.
pub fn secret_requests(project: &Project, svc: &Service) -> Result<Vec<SecretRequest>, ModelError> {
    let mut out = Vec::new();
    for (kind, refs, defs, key) in [
        (Kind::Secret, &svc.secrets, &project.secrets, "secrets"),
        (Kind::Config, &svc.configs, &project.configs, "configs"),
    ] {
        for (i, r) in refs.iter().enumerate() {
            let path = format!("services.{}.{key}[{i}]", svc.name);
            let def = defs
                .get(&r.source)
                .ok_or_else(|| ModelError { path: path.clone(), message: format!("undefined {key} {:?}", r.source) })?;
            let source = match (&def.file, &def.environment, &def.content) {
                (Some(f), _, _) => Source::File(PathBuf::from(f)),
                (None, Some(e), _) => Source::Environment(e.clone()),
                (None, None, Some(c)) => Source::Content(c.clone()),
                _ => {
                    let m = format!("{key}.{} is external; berth has no secret store to take it from", r.source);
                    return Err(ModelError { path, message: m });
                }
            };
            out.push(request(kind, r, source, &path)?);
        }
    }
    Ok(out)
}

fn request(kind: Kind, r: &FileRef, source: Source, path: &str) -> Result<SecretRequest, ModelError> {
    let id = |v: &Option<String>, what: &str| -> Result<u32, ModelError> {
        match v {
            None => Ok(0),
            Some(s) => s.parse().map_err(|_| ModelError {
                path: path.to_string(),
                message: format!("{what} must be a number, not {s:?}"),
            }),
        }
    };
    Ok(SecretRequest {
        kind,
        name: r.source.clone(),
        source,
        target: target_path(kind, &r.source, r.target.as_deref()),
        uid: id(&r.uid, "uid")?,
        gid: id(&r.gid, "gid")?,
        mode: r.mode.unwrap_or(0o444),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Project {
        berth_compose::load_str(yaml, std::path::Path::new("/srv/app")).expect("valid").project
    }

    const STACK: &str = r#"
name: shop
services:
  db:
    image: busybox
    volumes:
      - data:/var/lib/db
      - /scratch
      - ./conf:/etc/db:ro
      - type: tmpfs
        target: /cache
        tmpfs: {size: 1m, mode: 0700}
      - type: bind
        source: /srv/must-exist
        target: /x
        bind: {create_host_path: false}
    tmpfs: ["/run:size=64m,mode=1777,noexec"]
    secrets:
      - token
      - source: token
        target: /etc/tok
        uid: "1000"
        gid: "1000"
        mode: 0400
    configs: [app]
volumes:
  data:
    labels: {tier: db}
secrets:
  token:
    environment: TOKEN
configs:
  app:
    content: "x=1"
"#;

    #[test]
    fn volumes_binds_and_tmpfs() {
        let p = project(STACK);
        let spec = volume_spec(&p, "data");
        assert_eq!(spec.name, "shop_data");
        assert_eq!(spec.labels[PROJECT_LABEL], "shop");
        assert_eq!(spec.labels["tier"], "db");
        let mounts = service_mounts(&p, &p.services["db"], &|t| format!("anon{}", t.replace('/', "_"))).unwrap();
        assert_eq!(mounts.len(), 6);
        assert!(matches!(&mounts[0], MountRequest::Volume { name, anonymous: false, .. } if name == "shop_data"));
        assert!(matches!(&mounts[1], MountRequest::Volume { name, anonymous: true, .. } if name == "anon_scratch"));
        let MountRequest::Bind(b) = &mounts[2] else { panic!("{:?}", mounts[2]) };
        assert_eq!(b.source, PathBuf::from("/srv/app/conf"));
        assert!(b.read_only && b.create_host_path);
        let MountRequest::Tmpfs(t) = &mounts[3] else { panic!() };
        assert!(t.options.contains(&"size=1048576".to_string()) && t.options.contains(&"mode=700".to_string()));
        let MountRequest::Bind(b) = &mounts[4] else { panic!() };
        assert!(!b.create_host_path);
        let MountRequest::Tmpfs(t) = &mounts[5] else { panic!() };
        assert_eq!(t.destination, "/run");
        assert!(t.options.contains(&"size=67108864".to_string()) && t.options.contains(&"mode=1777".to_string()));
    }

    #[test]
    fn secrets_and_configs() {
        let p = project(STACK);
        let s = secret_requests(&p, &p.services["db"]).unwrap();
        assert_eq!(s[0].target, "/run/secrets/token");
        assert_eq!((s[0].uid, s[0].mode), (0, 0o444));
        assert_eq!(s[0].source, Source::Environment("TOKEN".into()));
        assert_eq!((s[1].target.as_str(), s[1].uid, s[1].gid, s[1].mode), ("/etc/tok", 1000, 1000, 0o400));
        assert_eq!(s[2].target, "/app");
        assert_eq!(s[2].source, Source::Content("x=1".into()));
    }
}
