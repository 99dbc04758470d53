//! What `up` settles with the supervisor before it starts containers: the fixed host ports its
//! plan's containers publish are checked (also by `--dry-run`) and then reserved by the project's
//! supervisor, which binds them at once and hands them to each container's proxy when it runs.
//! Binding is the reservation, so of two projects started at the same moment only one gets a
//! port; the other fails before it makes anything, naming the container that has the port.

use std::collections::BTreeSet;
use std::time::Duration;

use super::client;
use super::ports::{describe, holder_of, HostPort};
use super::protocol::{Conflict, Reply, Request};
use crate::container::Roots;
use crate::plan::{Operation, Plan};
use crate::state::{ContainerRecord, StateDb};
use berth_compose::model::Service;
use berth_compose::Project;

/// A fixed host port a container of the plan publishes when it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// The container.
    pub container: String,
    /// Its service.
    pub service: String,
    /// The index in the service's `ports`.
    pub index: usize,
    /// The host port.
    pub port: HostPort,
}

impl Wanted {
    fn conflict(&self, who: &str) -> String {
        format!("services.{}.ports[{}]: {} is already in use by {who}", self.service, self.index, self.port)
    }
}

/// The fixed host ports of the containers `plan` creates or starts, in plan order: from the
/// service for new containers, from the state row (host ports as chosen) for existing ones.
/// Random and range host ports are chosen when the container is made and are not listed.
pub fn wanted(project: &Project, plan: &Plan, rows: &[ContainerRecord]) -> anyhow::Result<Vec<Wanted>> {
    let mut out: Vec<Wanted> = Vec::new();
    let created: BTreeSet<&str> = plan.creates().map(|(_, target)| target.name.as_str()).collect();
    for step in &plan.steps {
        let Some(target) = step.container() else { continue };
        let service = target.service.clone();
        match &step.operation {
            Operation::CreateContainer { .. } => {
                let Some(svc) = project.services.get(&service) else { continue };
                for (index, port) in fixed_ports(svc)? {
                    out.push(Wanted { container: target.name.clone(), service: service.clone(), index, port });
                }
            }
            Operation::PublishPorts { .. } => {
                let Some(svc) = project.services.get(&service) else { continue };
                for (index, port) in fixed_ports(svc)? {
                    out.push(Wanted { container: target.name.clone(), service: service.clone(), index, port });
                }
            }
            Operation::StartContainer(_) if !created.contains(target.name.as_str()) => {
                let Some(row) = rows.iter().find(|r| r.name == target.name) else { continue };
                for p in &row.published {
                    let (index, port) = (p.index as usize, HostPort::of(p));
                    out.push(Wanted { container: target.name.clone(), service: service.clone(), index, port });
                }
            }
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|w| seen.insert((w.container.clone(), w.port.proto, w.port.ip, w.port.port)));
    Ok(out)
}

/// The fixed host ports (not a random one, not a range) a container of `svc` publishes, with
/// the index of each in its `ports:`; none when it shares another's network namespace.
pub fn fixed_ports(svc: &Service) -> anyhow::Result<Vec<(usize, HostPort)>> {
    if svc.network_mode.is_some() {
        return Ok(Vec::new());
    }
    let specs = crate::stack::netmodel::publish_specs(svc)?;
    let fixed = specs.iter().enumerate().filter_map(|(index, p)| match p.host_ports {
        Some((a, b)) if a == b => {
            let ip = p.host_ip.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
            Some((index, HostPort { proto: p.proto, ip, port: a }))
        }
        _ => None,
    });
    Ok(fixed.collect())
}

/// The containers `plan` stops or removes (their ports pass to their successors).
pub fn frees(plan: &Plan) -> Vec<String> {
    let names: BTreeSet<String> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.operation, Operation::StopContainer(_) | Operation::RemoveContainer { .. }))
        .map(|s| s.name().to_string())
        .collect();
    names.into_iter().collect()
}

/// Checks `wanted` against the project's own containers `rows` (one that runs and stays, or one
/// the plan starts earlier, has the port: it is named) and the host (`free` says whether the port
/// can be had for the container that wants it: see [`free_for`]; `outside` names who has a port
/// taken outside the project).
pub fn check(
    wanted: &[Wanted],
    rows: &[ContainerRecord],
    frees: &[String],
    free: impl Fn(&Wanted) -> bool,
    outside: impl Fn(&HostPort) -> String,
) -> Result<(), String> {
    let publish = |r: &ContainerRecord| -> Vec<HostPort> { r.published.iter().map(HostPort::of).collect() };
    let running = rows.iter().filter(|r| r.status.is_alive());
    let (going, staying): (Vec<&ContainerRecord>, Vec<&ContainerRecord>) =
        running.partition(|r| frees.contains(&r.name));
    let mut held: Vec<(HostPort, String)> =
        staying.iter().flat_map(|r| publish(r).into_iter().map(|p| (p, r.name.clone()))).collect();
    // Served by this project's supervisor for containers the plan replaces: theirs to pass on.
    let passed: Vec<HostPort> = going.iter().flat_map(|r| publish(r)).collect();
    for w in wanted {
        if let Some((_, who)) = held.iter().find(|(p, who)| p.overlaps(&w.port) && *who != w.container) {
            return Err(w.conflict(&format!("container {who}")));
        }
        if held.iter().any(|(p, who)| p.overlaps(&w.port) && *who == w.container) {
            continue;
        }
        if !passed.iter().any(|p| p.overlaps(&w.port)) && !free(w) {
            return Err(w.conflict(&outside(&w.port)));
        }
        held.push((w.port, w.container.clone()));
    }
    Ok(())
}

/// Whether `port` can be bound now. Other berth commands probe ports the same way (bind and let
/// go), so a port found taken is tried a few more times in the next tens of milliseconds.
pub fn free(port: &HostPort) -> bool {
    (0..TRIES).any(|i| {
        if i > 0 {
            std::thread::sleep(RETRY);
        }
        super::spec::bindable(port.ip, port.proto, port.port).is_some()
    })
}

/// Whether the port `w` wants can be had for its container: it binds, or the project's own
/// supervisor still serves or holds it for that container or for one of `frees` (a container that
/// stopped a moment ago, or that an `up` killed since reserved it for, whose socket the supervisor
/// has not let go of yet: [`reserve`] passes it on).
pub fn free_for<'a>(roots: &'a Roots, project: &'a str, frees: &'a [String]) -> impl Fn(&Wanted) -> bool + 'a {
    move |w| {
        free(&w.port) || {
            let status = client::status(roots, project, Duration::from_secs(1));
            status.is_ok_and(|s| {
                s.ports
                    .iter()
                    .chain(&s.reserved)
                    .any(|e| e.port.overlaps(&w.port) && (e.container == w.container || frees.contains(&e.container)))
            })
        }
    }
}

/// How often, and how far apart, a port found taken is tried again before it counts as taken.
const TRIES: u32 = 5;
const RETRY: Duration = Duration::from_millis(20);

/// Who has `port`, which project `project` cannot bind: a running container of another project
/// (from the state database), one another project's supervisor serves or holds for a container it
/// is starting (asked over its socket), or another program.
pub fn holder(roots: &Roots, db: &StateDb, project: &str, port: &HostPort) -> String {
    if let Some(who) = holder_of(db, project, port, "") {
        return who;
    }
    let others = std::fs::read_dir(client::dir(roots)).into_iter().flatten().filter_map(|e| {
        let name = e.ok()?.file_name().into_string().ok()?;
        Some(name.strip_suffix(".sock")?.to_string()).filter(|p| p != project)
    });
    for other in others {
        let Ok(status) = client::status(roots, &other, Duration::from_secs(1)) else { continue };
        if let Some(e) = status.ports.iter().chain(&status.reserved).find(|e| e.port.overlaps(port)) {
            return describe(&e.container, &other, project);
        }
    }
    "another program".into()
}

/// Has the project's supervisor hold `wanted` for the containers about to start (all, or none
/// when one cannot be had: the error names the port and who has it). The reservations are this
/// process's: [`release`] lets go of those no container claimed, and they go when it exits.
pub fn reserve(roots: &Roots, db: &StateDb, project: &str, wanted: &[Wanted], frees: &[String]) -> anyhow::Result<()> {
    let result = reserve_all(roots, db, project, wanted, frees);
    if result.is_err() {
        release(roots, project);
    }
    result
}

fn reserve_all(roots: &Roots, db: &StateDb, project: &str, wanted: &[Wanted], frees: &[String]) -> anyhow::Result<()> {
    let mut containers: Vec<&str> = Vec::new();
    for w in wanted {
        if !containers.contains(&w.container.as_str()) {
            containers.push(&w.container);
        }
    }
    for c in containers {
        let mine: Vec<&Wanted> = wanted.iter().filter(|w| w.container == c).collect();
        let request = Request::Reserve {
            container: c.to_string(),
            owner: std::process::id() as i32,
            frees: frees.to_vec(),
            ports: mine.iter().map(|w| w.port).collect(),
        };
        let mut reply = client::call(roots, project, &request, Duration::from_secs(10))?;
        // Taken outside the project: perhaps only for the instant another command probes it.
        for _ in 1..TRIES {
            if !matches!(&reply, Reply::Conflict(Conflict { in_use: true, holder: None, .. })) {
                break;
            }
            std::thread::sleep(RETRY);
            reply = client::call(roots, project, &request, Duration::from_secs(10))?;
        }
        let conflict = match reply {
            Reply::Done => continue,
            Reply::Conflict(conflict) => conflict,
            Reply::Error { error } => {
                anyhow::bail!("the supervisor of project {project:?} cannot reserve the ports of {c}: {error}")
            }
            other => anyhow::bail!("unexpected answer from the supervisor of project {project:?}: {other:?}"),
        };
        let port = conflict.port;
        let w = mine.iter().find(|w| w.port == port).copied().unwrap_or(mine[0]);
        if let Some(name) = conflict.holder {
            anyhow::bail!(w.conflict(&format!("container {name}")));
        }
        if conflict.in_use {
            anyhow::bail!(w.conflict(&holder(roots, db, project, &port)));
        }
        anyhow::bail!("services.{}.ports[{}]: cannot bind {port}: {}", w.service, w.index, conflict.error);
    }
    Ok(())
}

/// Lets go of the ports this process reserved that no container claimed (the containers that
/// started have theirs served by now).
pub fn release(roots: &Roots, project: &str) {
    let request = Request::Release { owner: std::process::id() as i32 };
    // A supervisor that does not answer holds no reservation it could release; a new one starts with none.
    let _ = client::call(roots, project, &request, Duration::from_secs(5));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Status;
    use crate::supervise::spec::Published;

    fn row(name: &str, status: Status, port: u16) -> ContainerRecord {
        let mut rec = crate::supervise::testing::record(name, status);
        rec.published = vec![Published {
            index: 0,
            proto: berth_network::proxy::Proto::Tcp,
            host_ip: "0.0.0.0".parse().unwrap(),
            host_port: port,
            container_ip: "10.0.0.2".parse().unwrap(),
            container_port: 80,
        }];
        rec
    }

    fn want(container: &str, service: &str, port: u16) -> Wanted {
        Wanted {
            container: container.into(),
            service: service.into(),
            index: 0,
            port: HostPort { proto: berth_network::proxy::Proto::Tcp, ip: "127.0.0.1".parse().unwrap(), port },
        }
    }

    #[test]
    fn a_port_taken_by_an_earlier_container_of_the_project_names_that_container() {
        let rows = [row("p-web-1", Status::Running, 8080), row("p-old-1", Status::Exited, 9090)];
        let outside = |_: &HostPort| "another program".to_string();
        // A running container that stays has it.
        let err = check(&[want("p-api-1", "api", 8080)], &rows, &[], |_: &Wanted| true, outside).unwrap_err();
        assert_eq!(err, "services.api.ports[0]: port 8080/tcp on 127.0.0.1 is already in use by container p-web-1");
        // Unless the plan replaces it: then its port passes on (no probe: the supervisor holds it).
        let frees = ["p-web-1".to_string()];
        check(&[want("p-web-1", "web", 8080)], &rows, &frees, |_: &Wanted| false, outside).unwrap();
        // An earlier container of the same plan has it: the first is named, not the new one.
        let both = [want("p-web-1", "web", 7070), want("p-web-2", "web", 7070)];
        let err = check(&both, &rows, &[], |_: &Wanted| true, outside).unwrap_err();
        assert!(err.ends_with("in use by container p-web-1"), "{err}");
        // A stopped container holds nothing; a port taken outside the project names who has it.
        check(&[want("p-api-1", "api", 9090)], &rows, &[], |_: &Wanted| true, outside).unwrap();
        let err = check(&[want("p-api-1", "api", 9090)], &rows, &[], |_: &Wanted| false, outside).unwrap_err();
        assert!(err.ends_with("in use by another program"), "{err}");
    }
}
