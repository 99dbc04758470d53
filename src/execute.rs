//! Running a plan: each step goes to an [`Engine`] (the thin layer that touches images,
//! volumes, networks and the runtime) as soon as the steps it waits for have succeeded;
//! independent steps run in parallel. A container's start also waits until its
//! dependencies are ready in the sense of their `depends_on` condition. A failed step
//! skips everything that waits on it; the rest goes on, and the report lists both.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;

use crate::events::{Event, EventSink};
use crate::plan::{Operation, Plan, Step};

/// What a dependency must reach before a dependent starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// The dependency's service.
    pub service: String,
    /// `service_started`, `service_healthy` or `service_completed_successfully`.
    pub condition: berth_compose::model::Condition,
    /// When false, failing to become ready only warns.
    pub required: bool,
}

/// Why a step failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// A dependency it waits for did not become ready.
    #[error("dependency failed to start: {0}")]
    Dependency(String),
    /// The operation failed (the whole chain of causes, in words).
    #[error("{0}")]
    Failed(String),
    /// The operation was refused for what it was given (an image or a platform that does not
    /// exist, a service no bundle can be made from): bad input found late, not a failure of the
    /// host.
    #[error("{0}")]
    Refused(String),
}

impl StepError {
    /// A failed operation, from its error with every cause.
    pub fn failed(e: &anyhow::Error) -> StepError {
        // An image that does not exist, a service the bundle cannot be made from (a device that
        // is not there, a relative working directory): input, found when acting on it; a new
        // version that did not become ready is at fault itself, not the host.
        let refused = e.chain().any(|c| {
            c.downcast_ref::<crate::image::ImageError>().is_some_and(|i| i.is_input())
                || c.is::<crate::runtime::bundle::BundleError>()
                || c.is::<crate::stack::engine::UpdateFailed>()
        });
        if refused {
            StepError::Refused(format!("{e:#}"))
        } else {
            StepError::Failed(format!("{e:#}"))
        }
    }

    /// What went wrong, without saying which kind of failure it was.
    pub fn reason(&self) -> &str {
        match self {
            StepError::Dependency(m) | StepError::Failed(m) | StepError::Refused(m) => m,
        }
    }
}

/// The side of berth that acts. Implementations must be safe to call from several threads.
pub trait Engine: Sync {
    /// Performs one step.
    fn apply(&self, step: &Step) -> Result<(), StepError>;
    /// Blocks until `dep` (a service) satisfies its condition, or fails with the reason.
    fn wait_ready(&self, dep: &Readiness) -> Result<(), StepError>;
}

/// How a plan ran.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Steps that succeeded, in completion order.
    pub done: Vec<usize>,
    /// Steps that failed, with the error.
    pub failed: Vec<(usize, StepError)>,
    /// Steps not run because something they wait on failed.
    pub skipped: Vec<usize>,
    /// Optional dependencies that did not become ready.
    pub warnings: Vec<String>,
}

impl Report {
    /// True when every step succeeded.
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }
}

/// Runs `plan` on `engine`. `readiness` gives, per service, what its containers' start
/// steps wait for. At most `parallel` steps run at once.
pub fn run(
    plan: &Plan,
    engine: &dyn Engine,
    readiness: &BTreeMap<String, Vec<Readiness>>,
    parallel: usize,
    events: &dyn EventSink,
) -> Report {
    let mut report = Report::default();
    let mut pending: BTreeSet<usize> = plan.steps.iter().map(|s| s.id).collect();
    let mut finished_ok: BTreeSet<usize> = BTreeSet::new();
    let mut running = 0usize;
    let (tx, rx) = mpsc::channel::<(usize, Result<(), StepError>, Vec<String>)>();
    std::thread::scope(|scope| loop {
        // Skip what waits on a failure, and what waits on a step so skipped, down the chain.
        let mut failed: BTreeSet<usize> =
            report.failed.iter().map(|(id, _)| *id).chain(report.skipped.iter().copied()).collect();
        loop {
            let doomed: Vec<usize> = pending
                .iter()
                .copied()
                .filter(|id| plan.steps[id - 1].deps.iter().any(|d| failed.contains(d)))
                .collect();
            if doomed.is_empty() {
                break;
            }
            for id in doomed {
                pending.remove(&id);
                failed.insert(id);
                report.skipped.push(id);
                events.emit(Event::StepSkipped { step: plan.steps[id - 1].subject() });
            }
        }
        let ready: Vec<usize> = pending
            .iter()
            .copied()
            .filter(|id| plan.steps[id - 1].deps.iter().all(|d| finished_ok.contains(d)))
            .take(parallel.max(1).saturating_sub(running))
            .collect();
        for id in ready {
            pending.remove(&id);
            running += 1;
            let step = &plan.steps[id - 1];
            let tx = tx.clone();
            let waits = waits_for(step, readiness);
            events.emit(Event::StepStarted { step: step.subject() });
            scope.spawn(move || {
                let mut warnings = Vec::new();
                let mut result = Ok(());
                for w in &waits {
                    if let Err(e) = engine.wait_ready(w) {
                        if w.required {
                            result = Err(e);
                            break;
                        }
                        warnings.push(format!("optional dependency {:?} is not ready: {}", w.service, e.reason()));
                    }
                }
                let result = result.and_then(|()| engine.apply(step));
                // The receiver is gone only when the walk has ended (a panic there).
                let _ = tx.send((id, result, warnings));
            });
        }
        if running == 0 {
            break;
        }
        let Ok((id, result, warnings)) = rx.recv() else { break };
        running -= 1;
        report.warnings.extend(warnings);
        let step = plan.steps[id - 1].subject();
        match result {
            Ok(()) => {
                finished_ok.insert(id);
                report.done.push(id);
                events.emit(Event::StepDone { step });
            }
            Err(error) => {
                events.emit(Event::StepFailed { step, error: error.to_string() });
                report.failed.push((id, error));
            }
        }
    });
    report
}

fn waits_for(step: &Step, readiness: &BTreeMap<String, Vec<Readiness>>) -> Vec<Readiness> {
    match &step.operation {
        Operation::StartContainer(target) => readiness.get(&target.service).cloned().unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The readiness each service's containers wait for, from the project's `depends_on`.
pub fn readiness(project: &berth_compose::Project) -> BTreeMap<String, Vec<Readiness>> {
    project
        .services
        .iter()
        .map(|(name, svc)| {
            let deps = svc
                .depends_on
                .iter()
                .filter(|(d, _)| project.services.contains_key(*d))
                .map(|(d, dep)| Readiness { service: d.clone(), condition: dep.condition, required: dep.required })
                .collect();
            (name.clone(), deps)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Recorder;
    use crate::plan::{ContainerTarget, Resource};
    use berth_compose::model::Condition;
    use std::sync::{Arc, Barrier, Mutex};

    #[derive(Default)]
    struct Fake {
        log: Mutex<Vec<String>>,
        fail: BTreeSet<String>,
        not_ready: BTreeSet<String>,
        barrier: Option<Arc<Barrier>>,
    }

    impl Engine for Fake {
        fn apply(&self, step: &Step) -> Result<(), StepError> {
            if let (Some(b), Operation::CreateContainer { .. }) = (&self.barrier, &step.operation) {
                b.wait(); // both creates must be running at once
            }
            self.log.lock().unwrap().push(step.operation.to_string());
            if self.fail.contains(step.name()) {
                return Err(StepError::Failed(format!("{} broke", step.name())));
            }
            Ok(())
        }

        fn wait_ready(&self, dep: &Readiness) -> Result<(), StepError> {
            self.log.lock().unwrap().push(format!("wait {} {:?}", dep.service, dep.condition));
            if self.not_ready.contains(&dep.service) {
                return Err(StepError::Dependency(format!("{} is unhealthy", dep.service)));
            }
            Ok(())
        }
    }

    fn container(service: &str) -> ContainerTarget {
        ContainerTarget { service: service.into(), number: 1, name: format!("{service}-1"), one_off: false }
    }

    fn plan() -> Plan {
        let mut p = Plan::default();
        let net = p.add(Operation::CreateNetwork(Resource { key: "n".into(), name: "n".into() }), "not found", vec![]);
        let create =
            |service| Operation::CreateContainer { target: container(service), renew_anonymous_volumes: false };
        let db = p.add(create("db"), "not found", vec![net]);
        let db_start = p.add(Operation::StartContainer(container("db")), "created", vec![db]);
        let app = p.add(create("app"), "not found", vec![net]);
        p.add(Operation::StartContainer(container("app")), "created", vec![app, db_start]);
        p
    }

    fn ready(required: bool) -> BTreeMap<String, Vec<Readiness>> {
        [("app".to_string(), vec![Readiness { service: "db".into(), condition: Condition::ServiceHealthy, required }])]
            .into()
    }

    #[test]
    fn runs_in_order_waiting_for_readiness() {
        let fake = Fake::default();
        let events = Recorder::default();
        let r = run(&plan(), &fake, &ready(true), 4, &events);
        assert!(r.ok(), "{r:?}");
        let log = fake.log.lock().unwrap().clone();
        let pos = |s: &str| log.iter().position(|l| l == s).unwrap_or_else(|| panic!("{s} in {log:?}"));
        assert!(pos("network n create") < pos("container db-1 create"));
        assert!(pos("container db-1 start") < pos("wait db ServiceHealthy"));
        assert!(pos("wait db ServiceHealthy") < pos("container app-1 start"));
        assert_eq!(events.events().len(), 10, "a start and an end event per step");
    }

    #[test]
    fn independent_steps_run_in_parallel() {
        let fake = Fake { barrier: Some(Arc::new(Barrier::new(2))), ..Fake::default() };
        let r = run(&plan(), &fake, &BTreeMap::new(), 4, &Recorder::default());
        assert!(r.ok());
    }

    #[test]
    fn a_failure_skips_what_waits_on_it() {
        let fake = Fake { fail: ["db-1".to_string()].into(), ..Fake::default() };
        let r = run(&plan(), &fake, &ready(true), 1, &Recorder::default());
        assert_eq!(r.failed, vec![(2, StepError::Failed("db-1 broke".to_string()))]);
        assert_eq!(r.skipped, vec![3, 5]);
        assert!(r.done.contains(&4), "app-1 is still created");
    }

    #[test]
    fn a_failure_skips_the_whole_chain_waiting_on_it() {
        // Nothing else runs when the failure is known: the steps two and three links away are
        // skipped all the same, not left out of the report.
        let mut chain = Plan::default();
        let mut before = vec![];
        for name in ["db", "app", "web"] {
            let target = ContainerTarget { service: name.into(), number: 1, name: format!("{name}-1"), one_off: false };
            before = vec![chain.add(Operation::StartContainer(target), "test", before)];
        }
        let fake = Fake { fail: ["db-1".to_string()].into(), ..Fake::default() };
        let events = Recorder::default();
        let r = run(&chain, &fake, &BTreeMap::new(), 4, &events);
        assert_eq!(r.skipped, vec![2, 3]);
        let skipped = events.events().iter().filter(|e| matches!(e, Event::StepSkipped { .. })).count();
        assert_eq!(skipped, 2);
    }

    #[test]
    fn unready_dependencies_fail_or_warn() {
        let fake = Fake { not_ready: ["db".to_string()].into(), ..Fake::default() };
        let r = run(&plan(), &fake, &ready(true), 2, &Recorder::default());
        assert_eq!(r.failed, vec![(5, StepError::Dependency("db is unhealthy".to_string()))]);
        assert_eq!(r.failed[0].1.to_string(), "dependency failed to start: db is unhealthy");
        let fake = Fake { not_ready: ["db".to_string()].into(), ..Fake::default() };
        let r = run(&plan(), &fake, &ready(false), 2, &Recorder::default());
        assert!(r.ok());
        assert_eq!(r.warnings, vec!["optional dependency \"db\" is not ready: db is unhealthy".to_string()]);
    }
}
