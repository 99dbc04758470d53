//! Compose's `pull_policy` and the pure decision whether to pull.

use std::time::{Duration, SystemTime};

use super::ImageError;

/// When to pull a service's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull every time.
    Always,
    /// Pull only when the image is not present locally (compose's default; also `if_not_present`).
    Missing,
    /// Never pull; fail when the image is missing.
    Never,
    /// Build the image instead of pulling it.
    Build,
    /// Pull when the local copy was pulled longer ago than this (`daily`, `weekly`, `every_<duration>`).
    Every(Duration),
}

/// What to do for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullDecision {
    /// Fetch from the registry.
    Pull,
    /// The local image is good enough.
    UseLocal,
    /// The caller should build the image.
    Build,
    /// The image is missing and the policy forbids pulling.
    MissingNever,
}

impl PullPolicy {
    /// Parses compose's spelling.
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        let bad = || ImageError::InvalidPolicy(s.to_string());
        Ok(match s {
            "always" => PullPolicy::Always,
            "missing" | "if_not_present" => PullPolicy::Missing,
            "never" => PullPolicy::Never,
            "build" => PullPolicy::Build,
            "daily" => PullPolicy::Every(Duration::from_secs(86_400)),
            "weekly" => PullPolicy::Every(Duration::from_secs(7 * 86_400)),
            other => match other.strip_prefix("every_") {
                Some(d) => PullPolicy::Every(parse_duration(d).ok_or_else(bad)?),
                None => return Err(bad()),
            },
        })
    }

    /// Decides for an image last pulled at `pulled_at` (None: not present locally).
    pub fn should_pull(self, pulled_at: Option<SystemTime>, now: SystemTime) -> PullDecision {
        match (self, pulled_at) {
            (PullPolicy::Always, _) => PullDecision::Pull,
            (PullPolicy::Build, _) => PullDecision::Build,
            (PullPolicy::Never, None) => PullDecision::MissingNever,
            (PullPolicy::Never | PullPolicy::Missing, Some(_)) => PullDecision::UseLocal,
            (PullPolicy::Missing | PullPolicy::Every(_), None) => PullDecision::Pull,
            (PullPolicy::Every(max_age), Some(at)) => match now.duration_since(at) {
                Ok(age) if age < max_age => PullDecision::UseLocal,
                Ok(_) => PullDecision::Pull,
                Err(_) => PullDecision::UseLocal, // pulled "in the future": clock moved back
            },
        }
    }
}

/// Parses compose durations: a sequence of `<number><unit>` with units `ms`, `s`, `m`, `h`, `d`, `w`
/// (e.g. `12h`, `1h30m`, `2d`). A bare number is seconds.
fn parse_duration(s: &str) -> Option<Duration> {
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            "w" => Duration::from_secs(7 * 86_400),
            _ => return None,
        };
        total = total.checked_add(unit.checked_mul(u32::try_from(n).ok()?)?)?;
        rest = &rest[unit_end..];
    }
    (!total.is_zero()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compose_spellings() {
        assert_eq!(PullPolicy::parse("always").unwrap(), PullPolicy::Always);
        assert_eq!(PullPolicy::parse("if_not_present").unwrap(), PullPolicy::Missing);
        assert_eq!(PullPolicy::parse("daily").unwrap(), PullPolicy::Every(Duration::from_secs(86_400)));
        assert_eq!(PullPolicy::parse("every_1h30m").unwrap(), PullPolicy::Every(Duration::from_secs(5400)));
        assert_eq!(PullPolicy::parse("every_2d").unwrap(), PullPolicy::Every(Duration::from_secs(172_800)));
        for bad in ["sometimes", "every_", "every_5x", "every_0s", "Always"] {
            assert!(PullPolicy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decisions() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour_ago = Some(now - Duration::from_secs(3600));
        use PullDecision::*;
        assert_eq!(PullPolicy::Missing.should_pull(None, now), Pull);
        assert_eq!(PullPolicy::Missing.should_pull(hour_ago, now), UseLocal);
        assert_eq!(PullPolicy::Always.should_pull(hour_ago, now), Pull);
        assert_eq!(PullPolicy::Never.should_pull(None, now), MissingNever);
        assert_eq!(PullPolicy::Never.should_pull(hour_ago, now), UseLocal);
        assert_eq!(PullPolicy::Build.should_pull(None, now), Build);
        let every_30m = PullPolicy::parse("every_30m").unwrap();
        assert_eq!(every_30m.should_pull(hour_ago, now), Pull);
        assert_eq!(PullPolicy::parse("daily").unwrap().should_pull(hour_ago, now), UseLocal);
        assert_eq!(every_30m.should_pull(None, now), Pull);
    }
}
