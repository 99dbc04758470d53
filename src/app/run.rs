//! `run`: a one-off container of a service, made by the stack engine as `up` makes containers,
//! after the service's dependencies are up and their `depends_on` conditions met (unless
//! `no_deps`); started in the background or attached to this process's stdio.

use crate::app::Session;
use crate::container::{self, StartMode};
use crate::lock::ProjectLock;
use crate::stack::engine::{OneOff, StackEngine};

/// What `run` is asked for.
pub struct RunRequest {
    /// The container to make (its service with `run`'s changes, name, overrides, ...).
    pub oneoff: OneOff,
    /// The service as the project names it.
    pub service: String,
    /// Neither start the dependencies nor wait for them.
    pub no_deps: bool,
    /// Start it in the background instead of attaching.
    pub detach: bool,
    /// Attach with a terminal (raw mode, size) rather than forwarding signals.
    pub tty: bool,
    /// The OCI runtime for new containers.
    pub runtime: String,
}

/// How `run` ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ran {
    /// Started in the background: the container's name.
    Detached(String),
    /// Attached until it exited with this code.
    Exited(i32),
}

/// Runs `req`; `lock` (the project's) is held while the container is made and started, not
/// while it runs attached.
pub fn run(s: &Session<'_>, req: RunRequest, lock: ProjectLock) -> anyhow::Result<Ran> {
    if !req.no_deps {
        start_dependencies(s, &req.service, &req.runtime)?;
    }
    let engine = StackEngine::new(s.project, s.roots.clone(), s.events)?.runtime(&req.runtime).supervised(true);
    if !req.no_deps {
        for w in engine.wait_dependencies(&req.service)? {
            s.warn(w);
        }
    }
    let rec = engine.create_oneoff(&req.oneoff)?;
    // With `--rm`, a container that cannot start is removed too, with what was made for it.
    let discard = |e: anyhow::Error| {
        if req.oneoff.auto_remove {
            if let Err(r) = engine.remove_container(&rec.name, true) {
                s.warn(format!("{r:#}"));
            }
        }
        e
    };
    engine.supervise_oneoff(&rec).map_err(discard)?;
    // Its published ports are held by the supervisor until it runs; then theirs to serve.
    let release = || {
        if !rec.published.is_empty() {
            crate::supervise::reserve::release(s.roots, &s.project.name);
        }
    };
    if req.detach {
        let started = engine.start_container(&rec.name);
        release();
        started.map_err(discard)?;
        return Ok(Ran::Detached(rec.name));
    }
    let started = container::launch_monitor(s.roots, &rec, StartMode::WaitForAttach).map_err(discard)?;
    drop(lock);
    let code = super::attach::attached(s.roots, s.db, &rec, started, req.tty);
    release();
    Ok(Ran::Exited(code.map_err(discard)?))
}

/// Brings up the dependencies of `service` as `up` would (created if missing or changed,
/// started), without the service itself.
fn start_dependencies(s: &Session<'_>, service: &str, runtime: &str) -> anyhow::Result<()> {
    let graph = crate::graph::ServiceGraph::new(s.project);
    let deps: Vec<String> = graph.dependencies(service).into_iter().map(|(d, _)| d.to_string()).collect();
    if deps.is_empty() {
        return Ok(());
    }
    let opts = crate::plan::up::UpOptions { services: deps, ..Default::default() };
    super::up::converge(s, &opts, runtime, true)
}
