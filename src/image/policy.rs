//! The pure decision whether to pull an image, given its pull policy (the loader's
//! [`PullPolicy`], from `pull_policy` or `--pull`) and its local copy.

use std::time::{Duration, SystemTime};

pub use berth_compose::resolved::PullPolicy;

/// What to do for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullDecision {
    /// Fetch it: the policy pulls every time (`always`).
    PullAlways,
    /// Fetch it: there is no local copy.
    PullMissing,
    /// Fetch it: the local copy is older than the policy allows (`daily`, `weekly`, `every_`).
    PullStale,
    /// The local copy is good enough.
    UseLocal,
    /// The image is missing and the policy forbids pulling.
    MissingNever,
}

impl PullDecision {
    /// Whether the image is fetched.
    pub fn pulls(self) -> bool {
        matches!(self, PullDecision::PullAlways | PullDecision::PullMissing | PullDecision::PullStale)
    }
}

/// Decides for an image that is `present` locally or not, its local copy `age` old when known.
/// berth builds no images: `build` pulls a missing image, as `missing` does.
pub fn should_pull(policy: PullPolicy, present: bool, age: Option<Duration>) -> PullDecision {
    match (policy, present) {
        (PullPolicy::Always, _) => PullDecision::PullAlways,
        (PullPolicy::Never, false) => PullDecision::MissingNever,
        (_, false) => PullDecision::PullMissing,
        (p, true) => match (p.max_age(), age) {
            (Some(max), Some(age)) if age > max => PullDecision::PullStale,
            _ => PullDecision::UseLocal,
        },
    }
}

/// The age of a local copy pulled at `pulled_at`, when it is not "in the future" (the clock moved
/// back).
pub fn age(pulled_at: SystemTime, now: SystemTime) -> Option<Duration> {
    now.duration_since(pulled_at).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        let hour = Some(Duration::from_secs(3600));
        use PullDecision::*;
        assert_eq!(should_pull(PullPolicy::Missing, false, None), PullMissing);
        assert_eq!(should_pull(PullPolicy::Missing, true, hour), UseLocal);
        assert_eq!(should_pull(PullPolicy::Always, true, hour), PullAlways);
        assert_eq!(should_pull(PullPolicy::Never, false, None), MissingNever);
        assert_eq!(should_pull(PullPolicy::Never, true, hour), UseLocal);
        assert_eq!(should_pull(PullPolicy::Build, false, None), PullMissing);
        assert_eq!(should_pull(PullPolicy::Build, true, None), UseLocal);
        let every_30m = PullPolicy::parse("every_30m").unwrap();
        assert_eq!(should_pull(every_30m, true, hour), PullStale);
        assert_eq!(should_pull(every_30m, true, None), UseLocal, "an unknown age is not stale");
        assert_eq!(should_pull(PullPolicy::Daily, true, hour), UseLocal);
        assert_eq!(should_pull(every_30m, false, None), PullMissing);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(age(now - Duration::from_secs(10), now), Some(Duration::from_secs(10)));
        assert_eq!(age(now + Duration::from_secs(10), now), None);
        assert!(PullStale.pulls() && !UseLocal.pulls() && !MissingNever.pulls());
    }
}
