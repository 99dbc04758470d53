//! One build: the Dockerfile's stages the target needs, level by level (the stages of a level in
//! parallel threads), then the target stage written as an image and tagged.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use berth_dockerfile::{BuildArgs, Dockerfile, GlobalScope};

use super::cache::Cache;
use super::config::RunConfig;
use super::error::{io_err, At, BuildError, Result};
use super::sources::SourceRoot;
use super::stage::StageOut;
use super::{BuildReport, BuildRequest, NamedContext};
use crate::container::Roots;
use crate::events::{Event, EventSink};
use crate::image::{Digest, ImageStore, LayerRecord, NewImage, PullOptions, Reference};
use crate::runtime::{OciCli, Runtime};

/// A base image as a stage starts from it.
#[derive(Debug, Clone)]
pub struct Base {
    /// Its id.
    pub id: Digest,
    /// Its layers.
    pub layers: Vec<LayerRecord>,
    /// Their directories, bottom first.
    pub dirs: Vec<PathBuf>,
    /// Its whole config blob.
    pub config: serde_json::Value,
}

/// What a `FROM`, `COPY --from` or `RUN --mount=from=` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A stage of the Dockerfile.
    Stage(usize),
    /// An image (a named `service:` context names its image).
    Image(String),
    /// A named context's local directory.
    Dir(PathBuf),
}

/// What every stage of one build shares.
pub struct Build<'a> {
    /// The request.
    pub req: &'a BuildRequest,
    /// State and run roots.
    pub roots: Roots,
    /// The image store.
    pub store: ImageStore,
    /// The layer cache.
    pub cache: Cache,
    /// The entries of the `cache_from` directories.
    pub imported: super::cachedir::Imported,
    /// The cache entries of the layer steps gone through (for `cache_to`).
    pub used: Mutex<Vec<(super::cache::Key, super::cache::Entry)>>,
    /// Where progress goes.
    pub events: &'a dyn EventSink,
    /// The image's name (for events).
    pub image: String,
    /// The Dockerfile.
    pub df: Dockerfile,
    /// `--build-arg`s.
    pub args: BuildArgs,
    /// What `FROM` lines see.
    pub global: GlobalScope,
    /// The build context.
    pub context: SourceRoot,
    /// The `.dockerignore` patterns.
    pub patterns: Vec<String>,
    /// `SOURCE_DATE_EPOCH`: the latest time written into layers, and the images' `created`.
    pub clamp: Option<u64>,
    /// The build's time, seconds since the epoch.
    pub now: i64,
    /// A directory for this build's scratch files, removed at the end.
    pub work: PathBuf,
    /// `RUN` containers started.
    pub containers: AtomicUsize,
    /// Steps whose layer came from the cache.
    pub cached: AtomicUsize,
    /// Whether a `RUN` was on the build bridge (then it is tidied at the end).
    pub on_bridge: std::sync::atomic::AtomicBool,
    /// Finished stages.
    stages: Mutex<BTreeMap<usize, Arc<StageOut>>>,
    /// The first build step number of each stage.
    pub first_step: BTreeMap<usize, usize>,
    runtime: OnceLock<std::result::Result<OciCli, String>>,
    bases: Mutex<BTreeMap<String, Base>>,
}

impl Build<'_> {
    /// The OCI runtime, chosen the first time a `RUN` needs one.
    pub fn runtime(&self) -> Result<&dyn Runtime> {
        let rt = self.runtime.get_or_init(|| {
            crate::runtime::select(self.req.runtime.as_deref(), &self.roots.run).map_err(|e| e.to_string())
        });
        match rt {
            Ok(r) => Ok(r),
            Err(e) => Err(BuildError::Unsupported(e.clone())),
        }
    }

    /// A finished stage (stages run after the ones they depend on).
    pub fn stage(&self, i: usize) -> Arc<StageOut> {
        self.stages.lock().expect("stages")[&i].clone()
    }

    /// The base image `name`: pulled when missing (always with `--pull`), once per build.
    pub fn base_image(&self, name: &str, at: &At) -> Result<Base> {
        if let Some(b) = self.bases.lock().expect("bases").get(name) {
            return Ok(b.clone());
        }
        let reference = Reference::parse(name).map_err(|e| at.fail(format!("base image \"{name}\": {e}")))?;
        let local = match self.store.lookup(&reference)? {
            Some(r) if !self.req.pull => Some(r),
            _ => None,
        };
        let rec = match local {
            Some(r) => r,
            None => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(io_err("start a runtime for pulling", &self.work))?;
                rt.block_on(crate::image::pull(&self.store, &reference, &PullOptions::default(), self.events))
                    .map_err(|e| at.fail(format!("base image \"{name}\": {e}")))?;
                self.store.resolve(&reference.to_string())?
            }
        };
        let base = Base {
            dirs: self.store.layer_dirs_of(&rec, name)?,
            config: self.store.config_of(&rec, name)?,
            id: rec.id.clone(),
            layers: rec.layers.clone(),
        };
        self.bases.lock().expect("bases").insert(name.to_string(), base.clone());
        Ok(base)
    }

    /// What `name` names in stage `idx`: a stage of the Dockerfile, else a named context, else
    /// an image.
    pub fn resolve(&self, name: &str, idx: usize, at: &At) -> Result<Source> {
        Ok(match self.df.resolve(name, idx, at.line)? {
            berth_dockerfile::StageRef::Stage(i) => Source::Stage(i),
            berth_dockerfile::StageRef::Image(n) => match self.req.contexts.get(&n) {
                Some(NamedContext::Dir(d)) => Source::Dir(d.clone()),
                Some(NamedContext::Image(image)) => Source::Image(image.clone()),
                None => Source::Image(n),
            },
        })
    }

    /// The time of a layer made now: `SOURCE_DATE_EPOCH` when set.
    pub fn created(&self) -> String {
        self.created_at(self.clamp.map_or(self.now, |c| c as i64))
    }

    /// `secs` since the epoch in RFC 3339.
    pub fn created_at(&self, secs: i64) -> String {
        time::OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_default()
    }
}

impl Drop for Build<'_> {
    /// Takes the build bridge away when this build used it and no other build does.
    fn drop(&mut self) {
        if self.on_bridge.load(Ordering::SeqCst) {
            if let Err(e) = super::network::tidy(&self.roots) {
                self.events.emit(Event::Warning { message: e.to_string() });
            }
        }
    }
}

/// Carries out `req` (its Dockerfile already read as `df`).
pub fn execute(req: &BuildRequest, df: Dockerfile, roots: Roots, events: &dyn EventSink) -> Result<BuildReport> {
    let started = Instant::now();
    let store = ImageStore::open(&roots.root)?;
    // Blobs written before the image is recorded must survive a concurrent `image prune`.
    let _guard = store.writer_guard()?;
    let cache = Cache::open(&roots.root).map_err(io_err("create the build cache in", &roots.root))?;
    let imported = super::cachedir::Imported::load(&req.cache_from)?;
    let base_work = roots.root.join("build/tmp");
    std::fs::create_dir_all(&base_work).map_err(io_err("create", &base_work))?;
    let work = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&base_work)
        .map_err(io_err("create a directory in", &base_work))?;
    let mut args = BuildArgs::new();
    for (k, v) in &req.args {
        args.set(k.clone(), v.clone());
    }
    let global = args.global_scope(&df)?;
    let plan = df.plan(req.target.as_deref(), &global)?;
    let mut first_step = BTreeMap::new();
    let mut steps = 0;
    for i in plan.order() {
        first_step.insert(i, steps + 1);
        steps += 1 + df.stages[i].instructions.len();
    }
    let patterns = super::context_patterns(req)?;
    let ignore = berth_dockerfile::ignore::PatternMatcher::new(&patterns).map_err(|e| BuildError::Input {
        what: ".dockerignore of",
        path: req.context.clone(),
        detail: e.to_string(),
    })?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let b = Build {
        req,
        store,
        cache,
        imported,
        used: Mutex::new(Vec::new()),
        events,
        image: req.tags.first().cloned().unwrap_or_default(),
        args,
        global,
        context: SourceRoot { dir: req.context.clone(), ignore: Some(ignore) },
        patterns,
        clamp: req.source_date_epoch,
        now,
        work: work.path().to_path_buf(),
        containers: AtomicUsize::new(0),
        cached: AtomicUsize::new(0),
        on_bridge: Default::default(),
        stages: Mutex::new(BTreeMap::new()),
        first_step,
        runtime: OnceLock::new(),
        bases: Mutex::new(BTreeMap::new()),
        df,
        roots,
    };
    events.emit(Event::BuildStarted { image: b.image.clone(), steps });
    for level in &plan.levels {
        let results: Vec<(usize, Result<StageOut>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = level
                .iter()
                .map(|&i| {
                    (
                        i,
                        scope.spawn({
                            let b = &b;
                            move || super::stage::run_stage(b, i)
                        }),
                    )
                })
                .collect();
            handles.into_iter().map(|(i, h)| (i, h.join().expect("stage thread"))).collect()
        });
        for (i, r) in results {
            b.stages.lock().expect("stages").insert(i, Arc::new(r?));
        }
    }
    let out = b.stage(plan.target);
    let id = write_image(&b, &out)?;
    let used = std::mem::take(&mut *b.used.lock().expect("used"));
    for dir in &req.cache_to {
        super::cachedir::export(dir, &used, &b.store)?;
    }
    let report = BuildReport {
        id,
        steps,
        cached: b.cached.load(Ordering::SeqCst),
        containers: b.containers.load(Ordering::SeqCst),
        millis: started.elapsed().as_millis() as u64,
    };
    events.emit(Event::ImageBuilt {
        image: b.image.clone(),
        id: report.id.to_string(),
        steps: report.steps,
        cached: report.cached,
        containers: report.containers,
        millis: report.millis,
    });
    Ok(report)
}

/// Writes the image of stage `out` (config, manifest) and tags it.
fn write_image(b: &Build<'_>, out: &StageOut) -> Result<Digest> {
    let mut config: RunConfig = out.config.clone();
    if !b.req.labels.is_empty() {
        let labels = config.labels.get_or_insert_with(BTreeMap::new);
        labels.extend(b.req.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let platform = &b.args.target_platform;
    let created = out.created.clone();
    let mut doc = serde_json::json!({
        "created": created,
        "architecture": platform.arch,
        "os": platform.os,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": out.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
        "history": out.history,
    });
    if !platform.variant.is_empty() {
        doc["variant"] = platform.variant.clone().into();
    }
    let id = b.store.write_image(&NewImage {
        config: &doc,
        layers: &out.layers,
        platform: platform.to_string(),
        tags: &b.req.tags,
        now: b.now.max(0) as u64,
    })?;
    Ok(id)
}
