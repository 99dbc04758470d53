//! State rows made by hand, for tests that need containers in the database without running any.

use berth::state::{ContainerRecord, Status};

/// A container row of `project`'s `service` (replica 1) in `status`, made from `image_digest`,
/// holding `volumes`, with an empty config.
pub fn container_record(
    project: &str,
    service: &str,
    status: Status,
    image_digest: &str,
    volumes: &[&str],
) -> ContainerRecord {
    ContainerRecord {
        id: format!("{project}{service}").repeat(64).chars().take(64).collect(),
        name: format!("{project}-{service}-1"),
        project: project.into(),
        service: service.into(),
        number: 1,
        oneoff: false,
        image: "busybox".into(),
        image_digest: image_digest.into(),
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
        volumes: volumes.iter().map(|v| v.to_string()).collect(),
    }
}
