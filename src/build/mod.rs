//! Image builds: Dockerfiles run by berth itself, with no daemon. The Dockerfile front end
//! (parsing, expansion, build args, stages, `.dockerignore`) is the `berth-dockerfile` crate;
//! this module executes it against the image store and the OCI runtime.
//!
//! * [`exec`]: one build — the stages the target needs, level by level, independent stages in
//!   parallel threads — and the resulting image (OCI config and manifest) tagged in the store;
//! * [`stage`]: one stage's instructions; [`config`]: the image config they change;
//! * [`run`] and [`mounts`]: `RUN` in a container of the stage's file system, with its
//!   `--mount`s; [`copy`] and [`sources`]: `COPY`/`ADD` from the context or another stage, [`archive`] the
//!   archives `ADD` unpacks;
//! * [`layer`]: directory trees as reproducible layer blobs; [`cache`]: the layer cache,
//!   [`cachedir`] its export to and import from local directories (`cache_to`, `cache_from`);
//! * [`compose`]: a compose service's `build:` as a [`BuildRequest`].

pub mod archive;
pub mod cache;
pub mod cachedir;
pub mod compose;
pub mod config;
pub mod copy;
pub mod error;
pub mod exec;
pub mod layer;
pub mod mounts;
pub mod network;
pub mod run;
pub mod sources;
pub mod stage;
pub mod tree;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use berth_dockerfile::instruction::NetworkMode;
pub use error::{BuildError, Result};

use crate::container::Roots;
use crate::events::EventSink;
use crate::image::Digest;

/// What to build.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildRequest {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile (relative paths are under the context); default `Dockerfile`.
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile's text, given inline (then `dockerfile` is not read).
    pub dockerfile_inline: Option<String>,
    /// The stage to build (default: the last).
    pub target: Option<String>,
    /// `--build-arg`s.
    pub args: BTreeMap<String, String>,
    /// Labels added to the image.
    pub labels: BTreeMap<String, String>,
    /// Names the image is tagged with (the first names it in progress output).
    pub tags: Vec<String>,
    /// Build every layer again.
    pub no_cache: bool,
    /// Pull base images even when present.
    pub pull: bool,
    /// Build secrets by id.
    pub secrets: BTreeMap<String, Secret>,
    /// `SOURCE_DATE_EPOCH`: the latest time in layers, and the image's `created`.
    pub source_date_epoch: Option<u64>,
    /// The OCI runtime for `RUN` (default: as for containers).
    pub runtime: Option<String>,
    /// How `RUN` steps run: network, hosts, limits, privileges.
    pub run: RunOptions,
    /// Named contexts (`build.additional_contexts`): what `FROM NAME` and `COPY --from=NAME` name.
    pub contexts: BTreeMap<String, NamedContext>,
    /// Local cache directories to take layers from (`cache_from: type=local,src=DIR`).
    pub cache_from: Vec<PathBuf>,
    /// Local cache directories to export the build's layers to (`cache_to: type=local,dest=DIR`).
    pub cache_to: Vec<PathBuf>,
}

/// A build secret: what `RUN --mount=type=secret` sees, never part of a layer or the image
/// config, and not part of any cache key (changing a secret's value does not rebuild).
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A file on the host (`--secret id=ID,src=PATH`, a compose `file:` secret).
    File(PathBuf),
    /// A value held in memory (`--secret id=ID,env=VAR`, a compose `environment:` or
    /// `content:` secret); a mount of it is a private file in the build's scratch directory,
    /// removed when the `RUN` ends.
    Value(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::File(p) => f.debug_tuple("File").field(p).finish(),
            Secret::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

/// What every `RUN` of a build gets (a `RUN --network` flag overrides the network).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    /// `build.network`, `--network`: the default is the build bridge.
    pub network: Option<NetworkMode>,
    /// `build.extra_hosts` (`host=address`; `host-gateway` is the build bridge's gateway).
    pub extra_hosts: Vec<String>,
    /// `build.shm_size`: the size of `/dev/shm`.
    pub shm_size: Option<berth_compose::units::Bytes>,
    /// `build.ulimits`.
    pub ulimits: BTreeMap<String, berth_compose::model::Ulimit>,
    /// `build.privileged`: `RUN` with the privileges a `privileged` service container gets.
    pub privileged: bool,
}

/// A named build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory: `FROM NAME` starts from its files, `COPY --from=NAME` copies from it.
    Dir(PathBuf),
    /// An image in the store (a compose `service:NAME` context: that service's image).
    Image(String),
}

/// What a build did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    /// The image id (config digest).
    pub id: Digest,
    /// Steps gone through.
    pub steps: usize,
    /// Layer steps whose layer came from the cache.
    pub cached: usize,
    /// `RUN` containers started.
    pub containers: usize,
    /// Time taken.
    pub millis: u64,
}

impl BuildRequest {
    /// The Dockerfile's path.
    pub fn dockerfile_path(&self) -> PathBuf {
        let f = self.dockerfile.clone().unwrap_or_else(|| PathBuf::from("Dockerfile"));
        if f.is_absolute() {
            f
        } else {
            self.context.join(f)
        }
    }
}

/// The `.dockerignore` patterns of `req` (`<Dockerfile>.dockerignore` beside the Dockerfile
/// first, else `.dockerignore` in the context).
pub(crate) fn context_patterns(req: &BuildRequest) -> Result<Vec<String>> {
    berth_dockerfile::ignore::load_patterns(&req.context, &req.dockerfile_path()).map_err(|e| BuildError::Input {
        what: ".dockerignore of",
        path: req.context.clone(),
        detail: e.to_string(),
    })
}

/// Builds the image `req` describes into the store under `roots`; progress goes to `events`.
pub fn build(req: &BuildRequest, roots: &Roots, events: &dyn EventSink) -> Result<BuildReport> {
    if !req.context.is_dir() {
        return Err(BuildError::Input {
            what: "build context",
            path: req.context.clone(),
            detail: "not a directory".into(),
        });
    }
    let (name, text) = match &req.dockerfile_inline {
        Some(t) => ("Dockerfile".to_string(), t.clone()),
        None => {
            let path = req.dockerfile_path();
            let text = std::fs::read_to_string(&path).map_err(|e| BuildError::Input {
                what: "Dockerfile",
                path: path.clone(),
                detail: e.to_string(),
            })?;
            let name = req.dockerfile.as_ref().map_or("Dockerfile".to_string(), |d| d.display().to_string());
            (name, text)
        }
    };
    let df = berth_dockerfile::Dockerfile::parse(&name, &text)?;
    exec::execute(req, df, roots.clone(), events)
}
