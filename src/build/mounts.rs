//! `RUN --mount`s as container mounts:
//!
//! * `type=cache`: a directory under `<state root>/build/mounts/`, named by the mount's `id`
//!   (default: its target), kept between builds and never part of a layer;
//! * `type=tmpfs`: a fresh tmpfs (`size=` honoured);
//! * `type=bind`: a path of the build context or, with `from=`, of a stage or image; read-only
//!   unless `rw`, and then writes go to a throwaway overlay and are dropped;
//! * `type=secret`: the file given by `--secret id=ID,src=PATH`, or the value of
//!   `--secret id=ID,env=VAR` (or of a compose `build.secrets` entry: `file:`, `environment:`,
//!   `content:`), read-only at `target` (default `/run/secrets/ID`), or as the variable `env=`;
//!   a missing secret is skipped unless `required`. The mount point is removed from the layer;
//! * `type=ssh` is refused: berth forwards no SSH agent into builds.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use berth_dockerfile::instruction::{Mount as RunMount, MountType};
use berth_volumes::{Mount, MountKind, Origin};
use sha2::{Digest as _, Sha256};

use super::config::resolve_path;
use super::error::{io_err, At, Result};
use super::exec::{Build, Source};
use super::run::bind_file;
use super::tree::View;
use super::Secret;

/// The mounts of one `RUN`, with the views that back them (unmounted on drop).
#[derive(Default)]
pub struct Prepared<'a> {
    /// Container mounts, in order.
    pub mounts: Vec<Mount>,
    /// Variables from `type=secret,env=`.
    pub env: Vec<(String, String)>,
    _views: Vec<View<'a>>,
    _files: Vec<tempfile::TempPath>,
}

/// A secret value as a file only its mount reads: in the build's scratch directory (on the
/// state root, never in a layer), `mode` (default 0400) and `uid`/`gid` (default root) as the
/// mount asks; removed when the `RUN` ends.
fn value_file(b: &Build<'_>, value: &str, m: &RunMount) -> Result<tempfile::TempPath> {
    let dir = b.work.join("secrets");
    std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err("chmod", &dir))?;
    let mut file = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(&dir)
        .map_err(io_err("create a file in", &dir))?;
    std::io::Write::write_all(&mut file, value.as_bytes()).map_err(io_err("write", file.path()))?;
    let path = file.into_temp_path();
    std::os::unix::fs::chown(&path, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)))
        .map_err(io_err("change the owner of", &path))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m.mode.unwrap_or(0o400)))
        .map_err(io_err("chmod", &path))?;
    Ok(path)
}

fn bind(source: PathBuf, target: &str, read_only: bool) -> Mount {
    Mount {
        source: source.display().to_string(),
        destination: target.to_string(),
        kind: MountKind::Bind,
        options: vec!["rbind".into(), if read_only { "ro" } else { "rw" }.into(), "rprivate".into()],
        origin: Origin::Private,
    }
}

/// Prepares `mounts` of a `RUN` in stage `stage` whose working directory is `workdir`.
pub fn prepare<'a>(b: &Build<'a>, stage: usize, mounts: &[RunMount], workdir: &str, at: &At) -> Result<Prepared<'a>> {
    let mut out = Prepared::default();
    for m in mounts {
        let target = m.target.as_deref().map(|t| resolve_path(workdir, t));
        let need_target = || target.clone().ok_or_else(|| at.fail("a mount needs a target"));
        match m.kind {
            MountType::Ssh => {
                return Err(at.fail("RUN --mount=type=ssh is not supported: berth forwards no SSH agent into builds"))
            }
            MountType::Tmpfs => {
                let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                if let Some(size) = m.size_limit {
                    opts.push(format!("size={size}"));
                }
                out.mounts.push(Mount {
                    source: "tmpfs".into(),
                    destination: need_target()?,
                    kind: MountKind::Tmpfs,
                    options: opts,
                    origin: Origin::Private,
                });
            }
            MountType::Cache => {
                let target = need_target()?;
                let id = m.id.clone().unwrap_or_else(|| target.clone());
                let dir = b.roots.root.join("build/mounts").join(hex::encode(Sha256::digest(id.as_bytes())));
                if !dir.exists() {
                    std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
                    let mode = m.mode.unwrap_or(0o755);
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                        .map_err(io_err("chmod", &dir))?;
                    std::os::unix::fs::chown(&dir, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)))
                        .map_err(io_err("change the owner of", &dir))?;
                }
                out.mounts.push(bind(dir, &target, m.read_only));
            }
            MountType::Secret => {
                let id =
                    m.id.clone().or_else(|| target.as_deref().and_then(|t| t.rsplit('/').next()).map(str::to_string));
                let Some(id) = id else { return Err(at.fail("a secret mount needs an id or a target")) };
                let Some(src) = b.req.secrets.get(&id) else {
                    if m.required {
                        return Err(at.fail(format!(
                            "secret \"{id}\" is required but was not given (--secret id={id},src=PATH)"
                        )));
                    }
                    continue;
                };
                if let Some(var) = &m.env {
                    let value = match src {
                        Secret::File(path) => std::fs::read_to_string(path).map_err(io_err("read the secret", path))?,
                        Secret::Value(v) => v.clone(),
                    };
                    out.env.push((var.clone(), value));
                }
                if m.env.is_none() || m.target.is_some() {
                    let target = target.clone().unwrap_or_else(|| format!("/run/secrets/{id}"));
                    let host = match src {
                        Secret::File(path) => path.clone(),
                        Secret::Value(v) => {
                            let file = value_file(b, v, m)?;
                            let path = file.to_path_buf();
                            out._files.push(file);
                            path
                        }
                    };
                    out.mounts.push(bind_file(&host, &target));
                }
            }
            MountType::Bind => {
                let target = need_target()?;
                let source = super::sources::relative(m.source.as_deref().unwrap_or("/"));
                let read_only = m.read_only;
                let layers = match &m.from {
                    None if read_only => {
                        out.mounts.push(bind(b.context.host(&source), &target, true));
                        continue;
                    }
                    None => vec![b.context.dir.clone()],
                    Some(from) => match b.resolve(from, stage, at)? {
                        Source::Stage(i) => b.stage(i).dirs.clone(),
                        Source::Image(name) => b.base_image(&name, at)?.dirs,
                        Source::Dir(dir) => vec![dir],
                    },
                };
                let view = View::mount(&layers, &b.work, b.events)?;
                let host = view.path().join(&source);
                if !host.exists() {
                    return Err(at.fail(format!("bind mount source \"{source}\" not found")));
                }
                out.mounts.push(bind(host, &target, read_only));
                out._views.push(view);
            }
        }
    }
    Ok(out)
}
