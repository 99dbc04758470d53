//! Health checks as a pure state machine: when to probe next, and what a probe's result does
//! to the container's health.
//!
//! The check comes from the service's `healthcheck:` (as the loader resolves it: [`HealthCheck`])
//! with its test and each unset field taken from the image's `Healthcheck`, then Docker's defaults (interval 30 s, timeout 30 s, 3 retries).
//! Failures inside `start_period` do not count. Beyond Compose: while a container has not
//! been healthy yet, berth probes every `start_interval` when set, else quickly — 20 ms,
//! doubling up to `interval` — so a dependency that becomes healthy releases its dependents
//! within tens of milliseconds instead of after the first 30 s interval. Those quick probes
//! never make a container unhealthy sooner than Docker's own cadence would: while it starts, a
//! failure counts only once per `interval`.

use std::time::Duration;

use berth_compose::resolved::{HealthCheck, HealthTest};

pub use crate::state::Health;

/// Docker's default interval and timeout.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Docker's default retries.
pub const DEFAULT_RETRIES: u32 = 3;
/// The first quick probe while starting.
pub const FAST_START: Duration = Duration::from_millis(20);

/// A resolved health check.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    /// What a probe runs: [`HealthTest::Exec`] or [`HealthTest::Shell`] (stored in Docker's
    /// tagged form, `["CMD", ...]` or `["CMD-SHELL", "..."]`).
    pub test: HealthTest,
    /// Between probes once started.
    pub interval: Duration,
    /// A probe running longer fails.
    pub timeout: Duration,
    /// Consecutive failures that make the container unhealthy.
    pub retries: u32,
    /// Failures in this time after start do not count.
    pub start_period: Duration,
    /// Between probes while starting, when set.
    pub start_interval: Option<Duration>,
}

/// The `Healthcheck` of an image's config JSON, in the terms of a service's (durations in
/// nanoseconds, as Docker writes them); `None` without one, or with a test berth cannot read.
pub fn image_healthcheck(config: &serde_json::Value) -> Option<HealthCheck> {
    let h = config.get("config")?.get("Healthcheck")?;
    let words: Vec<String> = h.get("Test")?.as_array()?.iter().filter_map(|v| v.as_str().map(String::from)).collect();
    let test = HealthTest::parse(&words).ok()?;
    let nanos = |k: &str| h.get(k).and_then(|v| v.as_u64()).filter(|n| *n > 0).map(Duration::from_nanos);
    Some(HealthCheck {
        test,
        interval: nanos("Interval"),
        timeout: nanos("Timeout"),
        retries: h.get("Retries").and_then(|v| v.as_u64()).map(|r| r as u32),
        start_period: nanos("StartPeriod"),
        start_interval: nanos("StartInterval"),
    })
}

impl Check {
    /// The command a probe runs: a shell command through `/bin/sh -c`, a program as it is.
    pub fn command(&self) -> Vec<String> {
        match &self.test {
            HealthTest::Shell(command) => vec!["/bin/sh".to_string(), "-c".to_string(), command.clone()],
            HealthTest::Exec(args) => args.clone(),
            HealthTest::None | HealthTest::Inherit => Vec::new(),
        }
    }

    /// The check for a container, or `None` when there is none or it is disabled: the service's
    /// test, else the image's (when the service's is [`HealthTest::Inherit`]); each timing the
    /// service's, else the image's, else Docker's default.
    pub fn resolve(service: Option<&HealthCheck>, image: Option<&HealthCheck>) -> Option<Check> {
        let s = service.cloned().unwrap_or_default();
        let i = image.cloned().unwrap_or_default();
        let test = match s.test {
            HealthTest::Inherit => i.test,
            own => own,
        };
        if matches!(test, HealthTest::None | HealthTest::Inherit) {
            return None;
        }
        let d = |o: Option<Duration>| o.filter(|d| !d.is_zero());
        Some(Check {
            test,
            interval: d(s.interval).or(i.interval).unwrap_or(DEFAULT_INTERVAL),
            timeout: d(s.timeout).or(i.timeout).unwrap_or(DEFAULT_INTERVAL),
            retries: s.retries.or(i.retries).filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES),
            start_period: d(s.start_period).or(i.start_period).unwrap_or_default(),
            start_interval: d(s.start_interval).or(i.start_interval),
        })
    }
}

/// A probe's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Exit status 0.
    Pass,
    /// Another status, or the command could not run.
    Fail,
    /// It ran past `timeout`.
    Timeout,
}

/// Health bookkeeping for one container run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Monitor {
    check: Check,
    health: Health,
    failures: u32,
    started: Duration,
    fast: Duration,
    /// When the last failure that counted happened.
    counted: Option<Duration>,
}

impl Monitor {
    /// A container that started at `started` (a monotonic time).
    pub fn new(check: Check, started: Duration) -> Monitor {
        Monitor { check, health: Health::Starting, failures: 0, started, fast: FAST_START, counted: None }
    }

    /// The current health.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Consecutive failures counted so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The check.
    pub fn check(&self) -> &Check {
        &self.check
    }

    /// How long to wait before the next probe (call once per probe).
    pub fn next_delay(&mut self) -> Duration {
        if self.health != Health::Starting {
            return self.check.interval;
        }
        if let Some(si) = self.check.start_interval {
            return si;
        }
        let d = self.fast.min(self.check.interval);
        self.fast = (self.fast * 2).min(self.check.interval);
        d
    }

    /// Whether a failure at `now` counts towards `retries`. Once the container was healthy (or
    /// is unhealthy) probes run at `interval` and every failure counts. While it starts, the
    /// quick probes must not make it unhealthy sooner than Docker would: a failure counts only
    /// once `interval` has passed since the last one that counted (since the start, or at the
    /// end of `start_period` when there is one).
    fn counts(&self, now: Duration) -> bool {
        if self.health != Health::Starting {
            return true;
        }
        let since = match self.counted {
            Some(t) => now.saturating_sub(t),
            None if !self.check.start_period.is_zero() => return true,
            None => now.saturating_sub(self.started),
        };
        since >= self.check.interval
    }

    /// Records a probe's result at `now`; returns the new health when it changed.
    pub fn record(&mut self, probe: Probe, now: Duration) -> Option<Health> {
        let before = self.health;
        match probe {
            Probe::Pass => {
                self.failures = 0;
                self.health = Health::Healthy;
            }
            Probe::Fail | Probe::Timeout => {
                let in_start_period = now.saturating_sub(self.started) < self.check.start_period;
                if !(in_start_period && self.health == Health::Starting) && self.counts(now) {
                    self.failures += 1;
                    self.counted = Some(now);
                    if self.failures >= self.check.retries {
                        self.health = Health::Unhealthy;
                    }
                }
            }
        }
        (self.health != before).then_some(self.health)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(retries: u32, start_period: u64) -> Check {
        Check {
            test: HealthTest::Exec(vec!["true".into()]),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            retries,
            start_period: Duration::from_secs(start_period),
            start_interval: None,
        }
    }

    #[test]
    fn service_fields_override_image_fields_then_defaults() {
        let svc = HealthCheck { interval: Some(Duration::from_secs(2)), retries: Some(5), ..HealthCheck::default() };
        let img = HealthCheck {
            test: HealthTest::Shell("wget -q localhost".into()),
            interval: Some(Duration::from_secs(9)),
            timeout: Some(Duration::from_secs(3)),
            ..Default::default()
        };
        let c = Check::resolve(Some(&svc), Some(&img)).unwrap();
        assert_eq!(c.test, img.test);
        assert_eq!((c.interval, c.timeout, c.retries), (Duration::from_secs(2), Duration::from_secs(3), 5));
        let none = HealthCheck { test: HealthTest::None, ..HealthCheck::default() };
        assert!(Check::resolve(Some(&none), Some(&img)).is_none());
        let exec = HealthCheck { test: HealthTest::Exec(vec!["true".into()]), ..HealthCheck::default() };
        assert_eq!(Check::resolve(Some(&exec), Some(&img)).unwrap().command(), ["true"]);
        assert!(Check::resolve(None, None).is_none());
    }

    #[test]
    fn image_healthchecks_come_from_the_config_blob() {
        let cfg = serde_json::json!({"config": {"Healthcheck": {"Test": ["CMD-SHELL", "true"],
            "Interval": 2_000_000_000u64, "Retries": 3}}});
        let h = image_healthcheck(&cfg).unwrap();
        assert_eq!(h.test, HealthTest::Shell("true".into()));
        assert_eq!((h.interval, h.timeout, h.retries), (Some(Duration::from_secs(2)), None, Some(3)));
        let c = Check::resolve(None, Some(&h)).unwrap();
        assert_eq!(c.command(), ["/bin/sh", "-c", "true"]);
        assert!(image_healthcheck(&serde_json::json!({"config": {}})).is_none());
        let none = serde_json::json!({"config": {"Healthcheck": {"Test": ["NONE"]}}});
        assert!(Check::resolve(None, image_healthcheck(&none).as_ref()).is_none());
    }

    #[test]
    fn probes_fast_while_starting_then_at_the_interval() {
        let mut m = Monitor::new(check(3, 0), Duration::ZERO);
        let first: Vec<u128> = (0..4).map(|_| m.next_delay().as_millis()).collect();
        assert_eq!(first, [20, 40, 80, 160]);
        m.record(Probe::Pass, Duration::from_secs(1));
        assert_eq!(m.next_delay(), Duration::from_secs(30));
        let mut c = check(3, 0);
        c.start_interval = Some(Duration::from_secs(1));
        let mut m = Monitor::new(c, Duration::ZERO);
        assert_eq!(m.next_delay(), Duration::from_secs(1));
    }

    #[test]
    fn retries_consecutive_failures_make_it_unhealthy() {
        let mut m = Monitor::new(check(2, 0), Duration::ZERO);
        assert_eq!(m.record(Probe::Pass, Duration::from_secs(1)), Some(Health::Healthy));
        assert_eq!(m.record(Probe::Fail, Duration::from_secs(2)), None);
        assert_eq!(m.record(Probe::Pass, Duration::from_secs(3)), None, "a pass resets the count");
        assert_eq!(m.record(Probe::Timeout, Duration::from_secs(4)), None);
        assert_eq!(m.record(Probe::Fail, Duration::from_secs(5)), Some(Health::Unhealthy));
        assert_eq!(m.record(Probe::Pass, Duration::from_secs(6)), Some(Health::Healthy));
    }

    #[test]
    fn quick_probes_while_starting_do_not_make_it_unhealthy_sooner_than_docker() {
        let mut c = check(3, 0);
        c.interval = Duration::from_secs(1);
        let mut m = Monitor::new(c, Duration::ZERO);
        let ms = Duration::from_millis;
        for t in [100, 300, 700] {
            assert_eq!(m.record(Probe::Fail, ms(t)), None);
        }
        assert_eq!(m.failures(), 0, "no interval has passed yet");
        assert_eq!(m.record(Probe::Fail, ms(1000)), None);
        assert_eq!(m.record(Probe::Fail, ms(1500)), None);
        assert_eq!(m.failures(), 1);
        assert_eq!(m.record(Probe::Fail, ms(2000)), None);
        assert_eq!(m.record(Probe::Fail, ms(3000)), Some(Health::Unhealthy), "after retries x interval");
    }

    #[test]
    fn failures_in_the_start_period_do_not_count() {
        let mut m = Monitor::new(check(1, 10), Duration::ZERO);
        assert_eq!(m.record(Probe::Fail, Duration::from_secs(5)), None);
        assert_eq!(m.health(), Health::Starting);
        assert_eq!(m.record(Probe::Fail, Duration::from_secs(11)), Some(Health::Unhealthy));
    }
}
