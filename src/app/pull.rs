//! `pull`: the images of a project's services, pulled as their pull policies and the command's
//! own policy say; progress and skips go out as events.

use std::collections::BTreeSet;

use anyhow::{bail, Context};
use berth_compose::resolved::ResolvedService;
use berth_compose::Project;

use crate::events::{Event, EventSink};
use crate::image::{self, ImageStore, Platform, PullDecision, PullOptions, PullPolicy, Reference};

/// What `pull` is asked for.
#[derive(Clone, Debug, Default)]
pub struct PullRequest {
    /// Services (all when empty).
    pub services: Vec<String>,
    /// The named services' dependencies too.
    pub include_deps: bool,
    /// Skip services with a `build:` section.
    pub ignore_buildable: bool,
    /// The command's policy (`missing`, or `always` when `None`).
    pub policy: Option<PullPolicy>,
    /// Report failed pulls as warnings and succeed.
    pub ignore_failures: bool,
}

/// Pulls the images `req` asks for into `store`, at once; fails naming every image that failed.
pub fn pull(project: &Project, store: &ImageStore, req: &PullRequest, events: &dyn EventSink) -> anyhow::Result<()> {
    for s in &req.services {
        if !project.services.contains_key(s) {
            bail!("no such service: `{s}`");
        }
    }
    let mut wanted: BTreeSet<String> = req.services.iter().cloned().collect();
    if req.include_deps && !wanted.is_empty() {
        let named: Vec<String> = wanted.iter().cloned().collect();
        wanted.extend(crate::graph::ServiceGraph::new(project).with_dependencies(&named));
    }
    let refs = to_pull(project, store, req, &wanted, events)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let results = runtime.block_on(image::pull_many(store, &refs, &PullOptions::default(), events));
    let mut failures = Vec::new();
    for ((reference, _), result) in refs.iter().zip(results) {
        match result {
            Err(e) if req.ignore_failures => {
                events.emit(Event::Warning { message: format!("pulling `{reference}` failed: {e}") })
            }
            Err(e) => failures.push(e.to_string()),
            Ok(_) => {}
        }
    }
    match failures.len() {
        0 => Ok(()),
        1 => bail!("{}", failures[0]),
        n => bail!("{n} images failed to pull:\n  {}", failures.join("\n  ")),
    }
}

/// The images of the `wanted` services (all when empty) that are to be pulled, each once; the
/// others are reported as skipped.
fn to_pull(
    project: &Project,
    store: &ImageStore,
    req: &PullRequest,
    wanted: &BTreeSet<String>,
    events: &dyn EventSink,
) -> anyhow::Result<Vec<(Reference, Option<Platform>)>> {
    let mut refs: Vec<(Reference, Option<Platform>)> = Vec::new();
    let skipped = |image: String, reason: &str| events.emit(Event::ImageSkipped { image, reason: reason.into() });
    for (name, svc) in &project.services {
        if !wanted.is_empty() && !wanted.contains(name) {
            continue;
        }
        if req.ignore_buildable && svc.build.is_some() {
            skipped(svc.image_name(project), "it is built");
            continue;
        }
        let Some(img) = &svc.image else { continue };
        let reference = Reference::parse(img).with_context(|| format!("service `{name}`"))?;
        let platform =
            svc.platform.as_deref().map(Platform::parse).transpose().with_context(|| format!("service `{name}`"))?;
        if matches!(ResolvedService::new(svc)?.pull_policy, PullPolicy::Never | PullPolicy::Build) {
            skipped(reference.to_string(), "pull_policy of the service");
            continue;
        }
        let local = store.lookup(&reference)?.map(|r| r.pulled_at());
        let age = local.and_then(|at| image::age(at, std::time::SystemTime::now()));
        let policy = req.policy.unwrap_or(PullPolicy::Always);
        if image::should_pull(policy, local.is_some(), age) == PullDecision::UseLocal {
            skipped(reference.to_string(), "present locally");
            continue;
        }
        if !refs.iter().any(|(r, p)| r == &reference && p == &platform) {
            refs.push((reference, platform));
        }
    }
    Ok(refs)
}
