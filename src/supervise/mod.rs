//! Supervision of a running project: health checks and restart policies as pure state
//! machines (`health`, `restart`), what a container tells the supervisor about itself (`spec`),
//! and the project supervisor process (`daemon`): a thin loop over its services — names (`dns`),
//! published ports (`ports`), health probes (`prober`), restarts (`restarts`) and when a
//! deployment becomes known-good (`known_good`) — each bringing
//! what it serves in line with the state rows on every pass, reached by other commands over a
//! typed, versioned protocol (`protocol`, `client`).

pub mod client;
pub mod daemon;
pub mod dns;
pub mod health;
pub mod known_good;
pub mod metrics;
pub mod ports;
pub mod probe;
pub mod prober;
pub mod protocol;
pub mod reserve;
pub mod restart;
pub mod restarts;
pub mod spec;

/// Rows for tests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::state::{ContainerRecord, Status};

    /// A container row of project `p` named `name` (`p-SERVICE-N`) with id `id-NAME`.
    pub fn record(name: &str, status: Status) -> ContainerRecord {
        ContainerRecord {
            id: format!("id-{name}"),
            name: name.into(),
            project: "p".into(),
            service: name.split('-').nth(1).unwrap_or("web").into(),
            number: 1,
            oneoff: false,
            image: "busybox".into(),
            image_digest: String::new(),
            config_hash: String::new(),
            runtime: "runc".into(),
            status,
            pid: None,
            monitor_pid: None,
            exit_code: None,
            oom_killed: false,
            restart_count: 0,
            created_at: 0,
            started_at: None,
            finished_at: None,
            config: Default::default(),
            published: Vec::new(),
            volumes: Vec::new(),
        }
    }
}
