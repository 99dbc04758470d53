//! How `up` replaces a service's containers: `deploy.update_config` (`order: start-first` starts
//! the new container beside the old one and switches to it once it is ready; `stop-first`, the
//! default, stops the old one first), with `parallelism`, `delay`, `monitor`, `failure_action` and `max_failure_ratio`;
//! `deploy.rollback_config`, in the same terms, paces a rollback (`berth rollback`, and the
//! replicas an update had already replaced when a later one failed under `failure_action:
//! rollback`).

use std::time::Duration;

use super::{invalid, Resolved};
use crate::model::Service;

/// In which order a container and its replacement run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpdateOrder {
    /// Stop the old container, then start the new one (`stop-first`, the default).
    #[default]
    StopFirst,
    /// Start the new one, wait until it is ready, switch names and ports to it, then stop the
    /// old one (`start-first`).
    StartFirst,
}

/// What happens when a new container does not become ready.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailureAction {
    /// The new container is left as it is, not switched to; the old one keeps serving and the
    /// replicas not yet replaced are left alone (`pause`, the default).
    #[default]
    Pause,
    /// The new container is removed and the old one keeps serving; the replicas not yet
    /// replaced are left alone (`rollback`).
    Rollback,
    /// The new container is removed and the old one keeps serving; the other replicas are
    /// still replaced (`continue`).
    Continue,
}

/// `deploy.update_config`, resolved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdatePolicy {
    /// `order`.
    pub order: UpdateOrder,
    /// `parallelism`: how many replicas are replaced at once (0: all).
    pub parallelism: u64,
    /// `delay` between groups of replicas.
    pub delay: Duration,
    /// `monitor`: how long a new container must stay ready before it is switched to.
    pub monitor: Duration,
    /// `failure_action`.
    pub failure_action: FailureAction,
    /// `max_failure_ratio`: the share of the service's replicas whose new container may fail
    /// to become ready before `failure_action` is taken (the old ones keep serving).
    pub max_failure_ratio: f64,
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        UpdatePolicy {
            order: UpdateOrder::StopFirst,
            parallelism: 1,
            delay: Duration::ZERO,
            monitor: Duration::ZERO,
            failure_action: FailureAction::Pause,
            max_failure_ratio: 0.0,
        }
    }
}

/// The update policy of `svc` (the default when it writes none).
pub(super) fn resolve(svc: &Service) -> Resolved<UpdatePolicy> {
    let update = svc.deploy.as_ref().and_then(|d| d.update_config.as_ref());
    update.map_or(Ok(UpdatePolicy::default()), |u| policy(u, "update_config"))
}

/// The rollback policy of `svc`: its `rollback_config`, when it writes one.
pub(super) fn resolve_rollback(svc: &Service) -> Resolved<Option<UpdatePolicy>> {
    let rollback = svc.deploy.as_ref().and_then(|d| d.rollback_config.as_ref());
    rollback.map(|r| policy(r, "rollback_config")).transpose()
}

fn policy(u: &crate::model::UpdateConfig, key: &str) -> Resolved<UpdatePolicy> {
    let keys = |k: &str| ["deploy", key, k].map(String::from);
    let order = match u.order.as_deref() {
        None | Some("stop-first") => UpdateOrder::StopFirst,
        Some("start-first") => UpdateOrder::StartFirst,
        Some(other) => {
            return Err(invalid(&keys("order"), format!("invalid order {other:?}: use start-first or stop-first")))
        }
    };
    let failure_action = match u.failure_action.as_deref() {
        None | Some("pause") => FailureAction::Pause,
        Some("rollback") => FailureAction::Rollback,
        Some("continue") => FailureAction::Continue,
        Some(other) => {
            return Err(invalid(
                &keys("failure_action"),
                format!("invalid failure action {other:?}: use pause, rollback or continue"),
            ))
        }
    };
    let max_failure_ratio = u.max_failure_ratio.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&max_failure_ratio) {
        return Err(invalid(
            &keys("max_failure_ratio"),
            format!("invalid max_failure_ratio {max_failure_ratio}: use a share from 0 to 1"),
        ));
    }
    let d = |o: Option<crate::units::Duration>| o.map(|d| d.0).unwrap_or_default();
    Ok(UpdatePolicy {
        order,
        parallelism: u.parallelism.unwrap_or(1),
        delay: d(u.delay),
        monitor: d(u.monitor),
        failure_action,
        max_failure_ratio,
    })
}
