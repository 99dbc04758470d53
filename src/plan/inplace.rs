//! Changes `up` makes to a running container in place. When a service's definition differs
//! from the one its running container was made from only in the networks it is on or the ports
//! it publishes, the container is connected to the new networks, taken off the old ones and has
//! its ports republished, and keeps running: Compose would make it anew. A change that would
//! move what the container sees of its network — its first network (where published ports and
//! `host-gateway` lead), its default route, the name of an interface it keeps — is not made in
//! place.

use std::collections::BTreeMap;

use berth_compose::model::{Project, Service, ServiceNetwork};
use serde_json::Value;

use super::hash::hashed_config;
use super::{ContainerTarget, Operation, Plan, Resource};
use crate::stack::netmodel::{memberships, network_name};

/// The keys of a service definition that can change in place.
const IN_PLACE_KEYS: [&str; 2] = ["networks", "ports"];

/// What changes in place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InPlace {
    /// Networks joined.
    pub connect: Vec<Resource>,
    /// Networks left.
    pub disconnect: Vec<Resource>,
    /// Ports published now (as declared: `127.0.0.1:8080:80/tcp`).
    pub publish: Vec<String>,
    /// Ports no longer published.
    pub unpublish: Vec<String>,
}

impl InPlace {
    /// True when the ports change.
    pub fn ports(&self) -> bool {
        !self.publish.is_empty() || !self.unpublish.is_empty()
    }
}

/// The in-place change that takes a container made from `old` (its hashed service
/// configuration) to `svc`, if there is one: `None` when anything else differs, when nothing
/// does, or when the change cannot be made in place.
pub fn changes(project: &Project, svc: &Service, old: &Value) -> Option<InPlace> {
    let new = hashed_config(svc);
    let (old_map, new_map) = (old.as_object()?, new.as_object()?);
    let others_equal = old_map
        .keys()
        .chain(new_map.keys())
        .filter(|k| !IN_PLACE_KEYS.contains(&k.as_str()))
        .all(|k| old_map.get(k) == new_map.get(k));
    if !others_equal || svc.network_mode.is_some() {
        return None;
    }
    let before = as_made(svc, old).ok()?;
    let mut change = InPlace::default();
    networks(project, svc, &before, &mut change)?;
    let none = Vec::new();
    let list = |m: &serde_json::Map<String, Value>| m.get("ports").and_then(Value::as_array).unwrap_or(&none).clone();
    let (old_ports, new_ports) = (list(old_map), list(new_map));
    change.publish = new_ports.iter().filter(|p| !old_ports.contains(p)).map(describe).collect();
    change.unpublish = old_ports.iter().filter(|p| !new_ports.contains(p)).map(describe).collect();
    if change.ports() && old_ports.len() == new_ports.len() && change.publish.is_empty() {
        // Only the order changed: the indexes published ports go by are new.
        change.publish = new_ports.iter().map(describe).collect();
    }
    let changed = !change.connect.is_empty() || !change.disconnect.is_empty() || old_ports != new_ports;
    changed.then_some(change)
}

/// Plans `change` of running container `target`: networks joined (once made, by the steps in
/// `made`, by network key), networks left, then its ports, one after the other.
pub fn plan(target: ContainerTarget, change: InPlace, made: &BTreeMap<String, usize>, plan: &mut Plan) {
    let ports = change.ports();
    let mut last: Option<usize> = None;
    let mut add = |op: Operation, cause: &str, mut deps: Vec<usize>| {
        deps.extend(last);
        last = Some(plan.add(op, cause, deps));
    };
    for network in change.connect {
        let deps = made.get(&network.key).copied().into_iter().collect();
        add(Operation::ConnectNetwork { target: target.clone(), network }, "networks changed", deps);
    }
    for network in change.disconnect {
        add(Operation::DisconnectNetwork { target: target.clone(), network }, "networks changed", vec![]);
    }
    if ports {
        let op = Operation::PublishPorts { target, publish: change.publish, unpublish: change.unpublish };
        add(op, "ports changed", vec![]);
    }
}

/// `svc` on the networks its container was made on (`made`: the hashed service configuration
/// it was made from): the interfaces it has are this service's.
pub fn as_made(svc: &Service, made: &Value) -> Result<Service, serde_json::Error> {
    let networks: BTreeMap<String, Option<ServiceNetwork>> = match made.get("networks") {
        Some(v) => serde_json::from_value(v.clone())?,
        None => BTreeMap::new(),
    };
    Ok(Service { networks, ..svc.clone() })
}

/// The networks joined and left going from `before` (the service as its container was made) to
/// `svc`, when that can be done in place.
fn networks(project: &Project, svc: &Service, before: &Service, change: &mut InPlace) -> Option<()> {
    let (old, new) = (&before.networks, &svc.networks);
    // The first network is where published ports lead and what `host-gateway` names.
    if old.keys().next() != new.keys().next() || new.is_empty() {
        return None;
    }
    if old.iter().any(|(k, v)| new.get(k).is_some_and(|n| n != v)) {
        return None;
    }
    let was = berth_network::network::plan_interfaces(&memberships(project, before)).ok()?;
    let will = berth_network::network::plan_interfaces(&memberships(project, svc)).ok()?;
    // Interfaces the container keeps keep their names, and the default route stays where it is.
    let kept = will.iter().filter(|i| old.contains_key(&i.network));
    if !kept.clone().all(|i| was.iter().any(|w| w == i))
        || will.iter().any(|i| i.default_route && !old.contains_key(&i.network))
    {
        return None;
    }
    let resource =
        |key: &String| Some(Resource { key: key.clone(), name: network_name(key, project.networks.get(key)?) });
    for key in new.keys().filter(|k| !old.contains_key(*k)) {
        change.connect.push(resource(key)?);
    }
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        change.disconnect.push(resource(key)?);
    }
    Some(())
}

/// A declared port as `ps` would write it: `[host_ip:][published:]target/protocol`.
fn describe(port: &Value) -> String {
    let field = |k: &str| {
        port.get(k).and_then(|v| v.as_str().map(str::to_string).or_else(|| v.as_u64().map(|n| n.to_string())))
    };
    let mut out = String::new();
    if let Some(ip) = field("host_ip").filter(|s| !s.is_empty()) {
        out.push_str(&ip);
        out.push(':');
    }
    if let Some(published) = field("published").filter(|s| !s.is_empty()) {
        out.push_str(&published);
        out.push(':');
    }
    out.push_str(&field("target").unwrap_or_default());
    out.push('/');
    out.push_str(&field("protocol").unwrap_or_else(|| "tcp".into()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Project {
        berth_compose::load_str(yaml, &std::env::temp_dir()).expect("valid").project
    }

    const BASE: &str = "name: shop\nservices:\n  web:\n    image: busybox\n    networks: [front]\n    ports: ['8080:80']\nnetworks:\n  front: {}\n  zback: {}\n  aaa: {}\n";

    fn old() -> Value {
        hashed_config(&project(BASE).services["web"])
    }

    fn change(yaml: &str) -> Option<InPlace> {
        let p = project(yaml);
        changes(&p, &p.services["web"], &old())
    }

    #[test]
    fn ports_change_in_place() {
        let c = change(&BASE.replace("'8080:80'", "'127.0.0.1:8081:80', '9000:90/udp'")).expect("in place");
        assert_eq!(c.publish, ["127.0.0.1:8081:80/tcp", "9000:90/udp"]);
        assert_eq!(c.unpublish, ["8080:80/tcp"]);
        assert!(c.connect.is_empty() && c.disconnect.is_empty());
        let gone = change(&BASE.replace("    ports: ['8080:80']\n", "")).expect("in place");
        assert_eq!((gone.publish.len(), gone.unpublish.len()), (0, 1));
    }

    #[test]
    fn a_network_after_the_first_connects_and_disconnects_in_place() {
        let c = change(&BASE.replace("[front]", "[front, zback]")).expect("in place");
        assert_eq!(c.connect, [Resource { key: "zback".into(), name: "shop_zback".into() }]);
        assert!(!c.ports());
        let p = project(&BASE.replace("[front]", "[front, zback]"));
        let back = changes(&project(BASE), &project(BASE).services["web"], &hashed_config(&p.services["web"]));
        assert_eq!(back.expect("in place").disconnect.len(), 1);
    }

    #[test]
    fn what_moves_the_containers_network_is_not_done_in_place() {
        // A new first network (published ports lead there).
        assert_eq!(change(&BASE.replace("[front]", "[aaa, front]")), None);
        // Anything else changed too.
        assert_eq!(change(&BASE.replace("[front]", "[front, zback]\n    environment: {A: '1'}")), None);
        // Nothing changed.
        assert_eq!(change(BASE), None);
        // The options of a kept network.
        assert_eq!(change(&BASE.replace("[front]", "{front: {aliases: [w]}}")), None);
    }
}
