//! The restart policy: `restart:` (`no`, `always`, `on-failure[:N]`, `unless-stopped`), or
//! `deploy.restart_policy` (`condition: none|on-failure|any`, or `restart:`'s words; `max_attempts`,
//! `delay`, `window`), which wins when both are written, as in Compose.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{invalid, invalid_key, Resolved};
use crate::model::Service;

/// When a container is started again after it ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartCondition {
    /// Never (`no`, `condition: none`).
    #[default]
    Never,
    /// After a non-zero exit (`on-failure`).
    OnFailure,
    /// After any exit (`always`, `condition: any`).
    Always,
    /// After any exit, unless the user stopped it (`unless-stopped`).
    UnlessStopped,
}

/// A service's restart policy as written; berth's defaults (the first delay) are the
/// supervisor's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestartPolicy {
    /// When.
    pub condition: RestartCondition,
    /// Restarts allowed (`on-failure:N`, `max_attempts`); `None` for unlimited.
    pub max_attempts: Option<u32>,
    /// The delay before the first restart (`delay`), when written.
    pub delay: Option<Duration>,
    /// The time in which attempts are counted (`window`), when written.
    pub window: Option<Duration>,
}

pub(super) fn resolve(svc: &Service) -> Resolved<RestartPolicy> {
    if let Some(rp) = svc.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()) {
        let keys = ["deploy", "restart_policy", "condition"];
        // `any` is the default; Compose takes `restart:`'s words here too.
        let condition = match rp.condition.as_deref() {
            Some("none" | "no") => RestartCondition::Never,
            Some("on-failure") => RestartCondition::OnFailure,
            Some("unless-stopped") => RestartCondition::UnlessStopped,
            Some("any" | "always") | None => RestartCondition::Always,
            Some(other) => {
                return Err(invalid(&keys, format!("invalid restart condition {other:?}: use none, on-failure or any")))
            }
        };
        let max_attempts = match rp.max_attempts {
            Some(n) => Some(u32::try_from(n).map_err(|_| {
                invalid(&["deploy", "restart_policy", "max_attempts"], format!("{n} restart attempts are too many"))
            })?),
            None => None,
        };
        return Ok(RestartPolicy {
            condition,
            max_attempts,
            delay: rp.delay.map(|d| d.0),
            window: rp.window.map(|w| w.0),
        });
    }
    let Some(r) = svc.restart.as_deref() else { return Ok(RestartPolicy::default()) };
    let (condition, max_attempts) = match r {
        "no" => (RestartCondition::Never, None),
        "always" => (RestartCondition::Always, None),
        "unless-stopped" => (RestartCondition::UnlessStopped, None),
        "on-failure" => (RestartCondition::OnFailure, None),
        other => match other.strip_prefix("on-failure:").map(str::parse::<u32>) {
            Some(Ok(n)) => (RestartCondition::OnFailure, Some(n)),
            _ => {
                let m =
                    format!("invalid restart policy {r:?}: use no, always, on-failure[:max-retries] or unless-stopped");
                return Err(invalid_key(&["restart"], m));
            }
        },
    };
    Ok(RestartPolicy { condition, max_attempts, delay: None, window: None })
}
