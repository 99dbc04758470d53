//! `pull_policy`: when to pull a service's image.

use std::fmt;
use std::time::Duration;

use super::{invalid_key, Resolved};

const DAY: Duration = Duration::from_secs(86_400);

/// When to pull a service's image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull every time (`always`).
    Always,
    /// Never pull; fail when the image is missing (`never`).
    Never,
    /// Pull only when the image is not present (`missing`, `if_not_present`; the default).
    #[default]
    Missing,
    /// Build the image instead of pulling it (`build`).
    Build,
    /// Pull when the local copy is a day old (`daily`).
    Daily,
    /// Pull when the local copy is a week old (`weekly`).
    Weekly,
    /// Pull when the local copy is older than this (`every_<duration>`, e.g. `every_12h`).
    Every(Duration),
}

impl PullPolicy {
    /// Parses Compose's spelling (also that of `--pull`).
    pub fn parse(s: &str) -> Result<PullPolicy, String> {
        Ok(match s {
            "always" => PullPolicy::Always,
            "never" => PullPolicy::Never,
            "missing" | "if_not_present" => PullPolicy::Missing,
            "build" => PullPolicy::Build,
            "daily" => PullPolicy::Daily,
            "weekly" => PullPolicy::Weekly,
            other => match other.strip_prefix("every_").and_then(every) {
                Some(d) => PullPolicy::Every(d),
                None => {
                    return Err(format!(
                        "invalid pull policy {s:?}: use always, never, missing, build, daily, weekly or \
                         every_<duration>"
                    ))
                }
            },
        })
    }

    /// How old a local copy may be before it is pulled again (`daily`, `weekly`, `every_`).
    pub fn max_age(self) -> Option<Duration> {
        match self {
            PullPolicy::Daily => Some(DAY),
            PullPolicy::Weekly => Some(7 * DAY),
            PullPolicy::Every(d) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PullPolicy::Always => f.write_str("always"),
            PullPolicy::Never => f.write_str("never"),
            PullPolicy::Missing => f.write_str("missing"),
            PullPolicy::Build => f.write_str("build"),
            PullPolicy::Daily => f.write_str("daily"),
            PullPolicy::Weekly => f.write_str("weekly"),
            PullPolicy::Every(d) => write!(f, "every_{}", crate::units::Duration(*d)),
        }
    }
}

/// The duration of `every_<duration>`: Compose's units, and days (`d`) and weeks (`w`) in
/// whole numbers (`every_2d12h`); not zero.
fn every(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s;
    // Leading whole days and weeks, then the rest in Compose's duration syntax.
    while let Some(n) = rest.find(|c: char| !c.is_ascii_digit()).filter(|n| *n > 0) {
        let unit = match rest[n..].chars().next() {
            Some('d') => DAY,
            Some('w') => 7 * DAY,
            _ => break,
        };
        total = total.checked_add(unit.checked_mul(rest[..n].parse().ok()?)?)?;
        rest = &rest[n + 1..];
    }
    if !rest.is_empty() {
        total = total.checked_add(crate::units::Duration::parse(rest).ok()?.0)?;
    }
    (!total.is_zero()).then_some(total)
}

pub(super) fn resolve(policy: Option<&str>) -> Resolved<PullPolicy> {
    policy.map_or(Ok(PullPolicy::Missing), |p| PullPolicy::parse(p).map_err(|m| invalid_key(&["pull_policy"], m)))
}
