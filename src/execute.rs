//! Running a plan: each step goes to an [`Engine`] (the thin layer that touches images,
//! volumes, networks and the runtime) as soon as the steps it waits for have succeeded;
//! independent steps run in parallel. A container's start also waits until its
//! dependencies are ready in the sense of their `depends_on` condition. A failed step
//! skips everything that waits on it; the rest goes on, and the report lists both.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;

use crate::events::{Event, EventSink};
use crate::plan::{Kind, Op, Plan, Step};

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

/// The side of berth that acts. Implementations must be safe to call from several threads.
pub trait Engine: Sync {
    /// Performs one step.
    fn apply(&self, step: &Step) -> Result<(), String>;
    /// Blocks until `dep` (a service) satisfies its condition, or fails with the reason.
    fn wait_ready(&self, dep: &Readiness) -> Result<(), String>;
}

/// How a plan ran.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Steps that succeeded, in completion order.
    pub done: Vec<usize>,
    /// Steps that failed, with the error.
    pub failed: Vec<(usize, String)>,
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
    let (tx, rx) = mpsc::channel::<(usize, Result<(), String>, Vec<String>)>();
    std::thread::scope(|scope| loop {
        // Skip what waits on a failure.
        let failed: BTreeSet<usize> =
            report.failed.iter().map(|(id, _)| *id).chain(report.skipped.iter().copied()).collect();
        let doomed: Vec<usize> =
            pending.iter().copied().filter(|id| plan.steps[id - 1].deps.iter().any(|d| failed.contains(d))).collect();
        for id in doomed {
            pending.remove(&id);
            report.skipped.push(id);
            events.emit(Event::StepSkipped { step: describe(&plan.steps[id - 1]) });
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
            events.emit(Event::StepStarted { step: describe(step) });
            scope.spawn(move || {
                let mut warnings = Vec::new();
                let mut result = Ok(());
                for w in &waits {
                    if let Err(e) = engine.wait_ready(w) {
                        if w.required {
                            result = Err(e);
                            break;
                        }
                        warnings.push(format!("optional dependency {:?} is not ready: {e}", w.service));
                    }
                }
                let result = result.and_then(|()| engine.apply(step));
                let _ = tx.send((id, result, warnings));
            });
        }
        if running == 0 {
            break;
        }
        let Ok((id, result, warnings)) = rx.recv() else { break };
        running -= 1;
        report.warnings.extend(warnings);
        let step = describe(&plan.steps[id - 1]);
        match result {
            Ok(()) => {
                finished_ok.insert(id);
                report.done.push(id);
                events.emit(Event::StepDone { step });
            }
            Err(error) => {
                events.emit(Event::StepFailed { step, error: error.clone() });
                report.failed.push((id, error));
            }
        }
    });
    report
}

fn waits_for(step: &Step, readiness: &BTreeMap<String, Vec<Readiness>>) -> Vec<Readiness> {
    match (step.kind, step.op, &step.service) {
        (Kind::Container, Op::Start, Some(service)) => readiness.get(service).cloned().unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn describe(step: &Step) -> String {
    format!("{} {} {}", step.kind, step.name, step.op)
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
        fn apply(&self, step: &Step) -> Result<(), String> {
            if let (Some(b), Kind::Container, Op::Create) = (&self.barrier, step.kind, step.op) {
                b.wait(); // both creates must be running at once
            }
            self.log.lock().unwrap().push(describe(step));
            if self.fail.contains(&step.name) {
                return Err(format!("{} broke", step.name));
            }
            Ok(())
        }

        fn wait_ready(&self, dep: &Readiness) -> Result<(), String> {
            self.log.lock().unwrap().push(format!("wait {} {:?}", dep.service, dep.condition));
            if self.not_ready.contains(&dep.service) {
                return Err(format!("{} is unhealthy", dep.service));
            }
            Ok(())
        }
    }

    fn plan() -> Plan {
        let mut p = Plan::default();
        let net = p.add(Kind::Network, "n", Op::Create, "not found", vec![]);
        let db = p.add_for(Kind::Container, "db-1", Some("db"), Op::Create, "not found", vec![net]);
        let db_start = p.add_for(Kind::Container, "db-1", Some("db"), Op::Start, "created", vec![db]);
        let app = p.add_for(Kind::Container, "app-1", Some("app"), Op::Create, "not found", vec![net]);
        p.add_for(Kind::Container, "app-1", Some("app"), Op::Start, "created", vec![app, db_start]);
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
        assert_eq!(r.failed, vec![(2, "db-1 broke".to_string())]);
        assert_eq!(r.skipped, vec![3, 5]);
        assert!(r.done.contains(&4), "app-1 is still created");
    }

    #[test]
    fn unready_dependencies_fail_or_warn() {
        let fake = Fake { not_ready: ["db".to_string()].into(), ..Fake::default() };
        let r = run(&plan(), &fake, &ready(true), 2, &Recorder::default());
        assert_eq!(r.failed, vec![(5, "db is unhealthy".to_string())]);
        let fake = Fake { not_ready: ["db".to_string()].into(), ..Fake::default() };
        let r = run(&plan(), &fake, &ready(false), 2, &Recorder::default());
        assert!(r.ok());
        assert_eq!(r.warnings, vec!["optional dependency \"db\" is not ready: db is unhealthy".to_string()]);
    }
}
