//! `ps`: which of the project's containers to list; it also looks after the project's
//! supervisor (a missing one is started again, and said).

use crate::app::Session;
use crate::container;
use crate::state::{ContainerRecord, Supervision};

/// A listed container and what the supervisor keeps of it (health, restarts).
#[derive(Clone, Debug)]
pub struct Listed {
    /// The container.
    pub container: ContainerRecord,
    /// Its health and restart reason.
    pub supervision: Supervision,
}

/// Which containers `ps` lists.
#[derive(Clone, Debug, Default)]
pub struct PsQuery {
    /// Services named on the command line (all when empty).
    pub services: Vec<String>,
    /// Stopped containers too (when no state is asked for).
    pub all: bool,
    /// Only these states (`running`, `exited`, ...).
    pub states: Vec<String>,
    /// Only these services (`--filter service=`).
    pub filter_services: Vec<String>,
    /// Containers of services the project no longer declares too.
    pub orphans: bool,
}

/// The containers `query` asks for, their state brought up to date, one-off ones included.
pub fn select(s: &Session<'_>, query: &PsQuery) -> anyhow::Result<Vec<Listed>> {
    let mut rows = Vec::new();
    for c in container::select(s.db, &s.project.name, &query.services, true)? {
        if !query.filter_services.is_empty() && !query.filter_services.contains(&c.service) {
            continue;
        }
        // Compose's orphans: containers of services the project does not declare (any more).
        if !query.orphans && !s.project.services.contains_key(&c.service) {
            continue;
        }
        let c = container::refresh(s.roots, s.db, &c)?;
        let shown = match query.states.is_empty() {
            true => query.all || c.status.is_alive(),
            false => query.states.iter().any(|st| st.as_str() == c.status.as_str()),
        };
        if shown {
            let supervision = s.db.supervision(&c.id)?;
            rows.push(Listed { container: c, supervision });
        }
    }
    // Said on every listing (nothing else shows that restarts, health checks, names and ports
    // are not being served), and a missing supervisor is started again.
    let all = s.db.containers(&s.project.name)?;
    if let Some(w) = crate::supervise::client::look_after(s.roots, s.db, &s.project.name, &all) {
        s.warn(w);
    }
    Ok(rows)
}
