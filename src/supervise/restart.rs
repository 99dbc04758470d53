//! Restart policies as a pure state machine: given how a container ended, decide whether to
//! start it again and after how long.
//!
//! Policies are Compose's, as the loader resolves them ([`RestartPolicy`]: `restart:` or
//! `deploy.restart_policy`). Delays grow exponentially from `delay` (default 100 ms, as Docker does),
//! doubling up to a cap of 30 s, and reset after the container ran for 10 s. Beyond Compose,
//! a service may opt in to being restarted when its health check fails (see
//! [`restart_on_unhealthy`]).

use std::time::Duration;

use berth_compose::model::Service;
pub use berth_compose::resolved::RestartCondition as Condition;
use berth_compose::resolved::RestartPolicy;

/// The first delay before a restart when the policy gives none.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(100);
/// The longest delay between restarts.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// A run at least this long resets the backoff.
pub const STABLE_RUN: Duration = Duration::from_secs(10);

/// A service's restart policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    /// When.
    pub condition: Condition,
    /// Restarts allowed (within `window`, if set); `None` for unlimited.
    pub max_attempts: Option<u32>,
    /// The first delay.
    pub delay: Duration,
    /// Attempts are counted within this window after the first failure, if set.
    pub window: Option<Duration>,
}

impl From<&RestartPolicy> for Policy {
    /// The policy as the supervisor applies it: a delay of 0 or none is [`DEFAULT_DELAY`], a
    /// window of 0 is none.
    fn from(p: &RestartPolicy) -> Policy {
        Policy {
            condition: p.condition,
            max_attempts: p.max_attempts,
            delay: p.delay.filter(|d| !d.is_zero()).unwrap_or(DEFAULT_DELAY),
            window: p.window.filter(|w| !w.is_zero()),
        }
    }
}

impl Policy {
    /// Whether the policy asks for a restart after `ending` (attempts aside).
    pub fn wants(&self, ending: Ending) -> bool {
        match (self.condition, ending) {
            (_, Ending::StoppedByUser) | (Condition::Never, Ending::Exited(_)) => false,
            (_, Ending::Unhealthy) => true,
            (Condition::OnFailure, Ending::Exited(code)) => code != 0,
            (Condition::Always | Condition::UnlessStopped, Ending::Exited(_)) => true,
        }
    }

    /// Whether a container that ended as `ending` after `restarts` restarts will be started
    /// again (a window of attempts aside): what a foreground `up` waits for before it is done.
    pub fn will_restart(&self, ending: Ending, restarts: u32) -> bool {
        self.wants(ending) && self.max_attempts.is_none_or(|max| restarts < max)
    }
}

/// True when the service opted in to a restart when its health check fails: the extension
/// `x-berth: {restart_on_unhealthy: true}` or the label `berth.restart-on-unhealthy=true`.
pub fn restart_on_unhealthy(service: &Service) -> bool {
    let ext = service.extensions.get("x-berth").and_then(|x| x.get("restart_on_unhealthy")).and_then(|v| v.as_bool());
    let label = service.labels.get("berth.restart-on-unhealthy").map(|v| v == "true");
    ext.or(label).unwrap_or(false)
}

/// How a container's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The process exited with this code (128+n for signal n).
    Exited(i32),
    /// The user (or berth, on their behalf) stopped it.
    StoppedByUser,
    /// Its health check failed and the service opted in to restarts on that.
    Unhealthy,
}

/// What to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Leave it stopped.
    Stay,
    /// Start it again after the delay.
    Restart {
        /// How long to wait first.
        after: Duration,
        /// The restart count after this restart.
        count: u32,
    },
    /// The policy's attempts are used up.
    GiveUp {
        /// Restarts made.
        count: u32,
    },
}

/// Restart bookkeeping for one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restarter {
    policy: Policy,
    /// Restarts made so far.
    count: u32,
    /// Restarts counted towards `max_attempts` (reset when the window passes).
    attempts: u32,
    /// The next delay.
    next_delay: Duration,
    /// When the current attempt window started.
    window_start: Option<Duration>,
}

impl Restarter {
    /// A fresh state for a container with `policy`.
    pub fn new(policy: Policy) -> Restarter {
        Restarter { policy, count: 0, attempts: 0, next_delay: policy.delay, window_start: None }
    }

    /// Restarts made so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Decides after a run that lasted `ran` and ended as `ending`; `now` is a monotonic time.
    pub fn on_end(&mut self, ending: Ending, ran: Duration, now: Duration) -> Decision {
        if !self.policy.wants(ending) {
            return Decision::Stay;
        }
        if ran >= STABLE_RUN {
            self.next_delay = self.policy.delay;
        }
        if let (Some(window), Some(start)) = (self.policy.window, self.window_start) {
            if now.saturating_sub(start) > window {
                self.attempts = 0;
                self.window_start = None;
            }
        }
        if self.policy.max_attempts.is_some_and(|max| self.attempts >= max) {
            return Decision::GiveUp { count: self.count };
        }
        self.window_start.get_or_insert(now);
        self.attempts += 1;
        self.count += 1;
        let after = self.next_delay;
        self.next_delay = (self.next_delay * 2).min(MAX_DELAY);
        Decision::Restart { after, count: self.count }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_compose::resolved::ResolvedService;

    fn policy(yaml: &str) -> Policy {
        let text = format!("name: t\nservices:\n  app:\n    image: busybox\n{yaml}");
        let svc = &berth_compose::load_str(&text, &std::env::temp_dir()).expect("valid").project.services["app"];
        Policy::from(&ResolvedService::new(svc).unwrap().restart)
    }

    fn svc(restart: &str) -> Policy {
        policy(&format!("    restart: {restart}\n"))
    }

    const SHORT: Duration = Duration::from_millis(50);

    #[test]
    fn whether_an_ending_is_restarted() {
        let on_failure = Policy { condition: Condition::OnFailure, max_attempts: Some(2), ..Policy::default() };
        assert!(!on_failure.will_restart(Ending::Exited(0), 0));
        assert!(on_failure.will_restart(Ending::Exited(1), 1));
        assert!(!on_failure.will_restart(Ending::Exited(1), 2), "attempts used up");
        let always = Policy { condition: Condition::Always, ..Policy::default() };
        assert!(always.will_restart(Ending::Exited(0), 100));
        assert!(!always.will_restart(Ending::StoppedByUser, 0));
        assert!(!Policy::default().will_restart(Ending::Exited(1), 0));
    }

    #[test]
    fn policies_from_compose() {
        assert_eq!(policy("").condition, Condition::Never);
        let p = svc("on-failure:3");
        assert_eq!((p.condition, p.max_attempts, p.delay), (Condition::OnFailure, Some(3), DEFAULT_DELAY));
        let p = policy(
            "    restart: always\n    deploy:\n      restart_policy: {condition: on-failure, delay: 2s, max_attempts: 5, window: 1m}\n",
        );
        assert_eq!(
            p,
            Policy {
                condition: Condition::OnFailure,
                max_attempts: Some(5),
                delay: Duration::from_secs(2),
                window: Some(Duration::from_secs(60))
            }
        );
        let p = policy("    deploy:\n      restart_policy: {delay: 0s, window: 0s}\n");
        assert_eq!((p.condition, p.delay, p.window), (Condition::Always, DEFAULT_DELAY, None));
    }

    #[test]
    fn backoff_doubles_caps_and_resets_after_a_stable_run() {
        let mut r = Restarter::new(svc("always"));
        let delays: Vec<Duration> = (0..12)
            .map(|i| match r.on_end(Ending::Exited(1), SHORT, Duration::from_secs(i)) {
                Decision::Restart { after, .. } => after,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(delays[0], Duration::from_millis(100));
        assert_eq!(delays[1], Duration::from_millis(200));
        assert_eq!(delays[11], MAX_DELAY);
        let d = r.on_end(Ending::Exited(0), STABLE_RUN, Duration::from_secs(100));
        assert_eq!(d, Decision::Restart { after: Duration::from_millis(100), count: 13 });
    }

    #[test]
    fn on_failure_counts_attempts_and_gives_up() {
        let mut r = Restarter::new(svc("on-failure:2"));
        assert_eq!(r.on_end(Ending::Exited(0), SHORT, Duration::ZERO), Decision::Stay);
        assert!(matches!(r.on_end(Ending::Exited(3), SHORT, Duration::ZERO), Decision::Restart { count: 1, .. }));
        assert!(matches!(r.on_end(Ending::Exited(3), SHORT, Duration::ZERO), Decision::Restart { count: 2, .. }));
        assert_eq!(r.on_end(Ending::Exited(3), SHORT, Duration::ZERO), Decision::GiveUp { count: 2 });
    }

    #[test]
    fn window_resets_attempts() {
        let mut p = svc("on-failure:1");
        p.window = Some(Duration::from_secs(60));
        let mut r = Restarter::new(p);
        assert!(matches!(r.on_end(Ending::Exited(1), SHORT, Duration::from_secs(0)), Decision::Restart { .. }));
        assert!(matches!(r.on_end(Ending::Exited(1), SHORT, Duration::from_secs(30)), Decision::GiveUp { .. }));
        assert!(matches!(
            r.on_end(Ending::Exited(1), SHORT, Duration::from_secs(61)),
            Decision::Restart { count: 2, .. }
        ));
    }

    #[test]
    fn user_stops_are_respected_and_unhealthy_restarts_when_opted_in() {
        let mut r = Restarter::new(svc("always"));
        assert_eq!(r.on_end(Ending::StoppedByUser, SHORT, Duration::ZERO), Decision::Stay);
        let mut never = Restarter::new(policy(""));
        assert!(matches!(never.on_end(Ending::Unhealthy, SHORT, Duration::ZERO), Decision::Restart { .. }));
        let mut s = Service::default();
        assert!(!restart_on_unhealthy(&s));
        s.labels.insert("berth.restart-on-unhealthy".into(), "true".into());
        assert!(restart_on_unhealthy(&s));
        s.extensions.insert("x-berth".into(), serde_json::json!({"restart_on_unhealthy": false}));
        assert!(!restart_on_unhealthy(&s), "the extension wins over the label");
    }
}
