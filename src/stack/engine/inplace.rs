//! Changes made to a running container in place (planned by `plan::inplace`): networks joined
//! and left, ports republished. Each step leaves the row saying what the container has now; the
//! step that brings it up to its service's definition records that definition and its hash, so
//! a change that was cut short is planned again and taken up where it stopped.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::{anyhow, Context};
use berth_compose::model::Service;
use berth_compose::resolved::ResolvedService;

use super::StackEngine;
use crate::plan::hash::{config_hash, hashed_config};
use crate::plan::{ContainerTarget, Resource};
use crate::stack::netmodel::{memberships, network_name};
use crate::state::ContainerRecord;

impl StackEngine<'_> {
    /// Attaches running container `target` to `network`, unless it is attached already.
    pub(super) fn connect_network(&self, target: &ContainerTarget, network: &Resource) -> anyhow::Result<()> {
        let rec = self.record(&target.name)?;
        let svc = self.service(&target.service)?;
        let mut addrs = attached(&rec);
        if !addrs.contains_key(&network.name) {
            let specs = self.specs_for(svc)?;
            let spec = specs.get(&network.key).ok_or_else(|| anyhow!("network {:?} was not set up", network.key))?;
            let netns = self.netns_path(rec.key())?;
            let key = &network.key;
            let ips = self.with_net(|n| n.connect(self.project, svc, rec.key(), key, spec, &netns))?;
            addrs.insert(network.name.clone(), ips);
        }
        self.settle(&rec, svc, &addrs, ("connect", network.name.clone().into()))
    }

    /// Takes running container `target` off `network`, unless it is off it already.
    pub(super) fn disconnect_network(&self, target: &ContainerTarget, network: &Resource) -> anyhow::Result<()> {
        let rec = self.record(&target.name)?;
        let svc = self.service(&target.service)?;
        let mut addrs = attached(&rec);
        if addrs.remove(&network.name).is_some() {
            // The interface has the name it was made with, among the networks it was made on.
            let before = crate::plan::inplace::as_made(svc, &rec.config.service)
                .with_context(|| format!("the networks container {:?} was made on", rec.name))?;
            let planned = berth_network::network::plan_interfaces(&memberships(self.project, &before))?;
            let ifname = planned
                .iter()
                .find(|p| p.network == network.key)
                .map(|p| p.ifname.clone())
                .ok_or_else(|| anyhow!("container {:?} was not made on network {:?}", rec.name, network.key))?;
            let netns = self.netns_path(rec.key())?;
            self.with_net(|n| n.disconnect(rec.key(), &network.name, &ifname, &netns))?;
        }
        self.settle(&rec, svc, &addrs, ("disconnect", network.name.clone().into()))
    }

    /// Serves running container `target`'s ports as its service declares them now.
    pub(super) fn publish_ports(
        &self,
        target: &ContainerTarget,
        publish: &[String],
        unpublish: &[String],
    ) -> anyhow::Result<()> {
        let rec = self.record(&target.name)?;
        let svc = self.service(&target.service)?;
        let ports = serde_json::json!({"published": publish, "unpublished": unpublish});
        self.settle(&rec, svc, &attached(&rec), ("publish", ports))
    }

    /// Records what container `rec` has now — its addresses `addrs` (by network name), the
    /// names and ports they bring, the ports `svc` declares — and, when it is on all of `svc`'s
    /// networks and on no other, `svc`'s definition and hash; then tells the supervisor. `event`
    /// is what `berth events` says happened (its action, and the network or ports).
    fn settle(
        &self,
        rec: &ContainerRecord,
        svc: &Service,
        addrs: &BTreeMap<String, Vec<IpAddr>>,
        event: (&str, serde_json::Value),
    ) -> anyhow::Result<()> {
        let names: BTreeMap<String, String> = svc
            .networks
            .keys()
            .filter_map(|k| Some((network_name(k, self.project.networks.get(k)?), k.clone())))
            .collect();
        let by_key: BTreeMap<String, Vec<IpAddr>> =
            addrs.iter().filter_map(|(name, a)| Some((names.get(name)?.clone(), a.clone()))).collect();
        let specs = self.specs_for(svc)?;
        {
            let db = self.db.lock().expect("db");
            let (spec, publish) = self.supervision(&db, svc, rec, &by_key, &specs, true)?;
            let resolved = ResolvedService::new(svc)?;
            let mut config = crate::container::ContainerConfig {
                supervise: Some(spec),
                ports: crate::container::declared_ports(svc, &resolved),
                ..rec.config.clone()
            };
            let complete = by_key.len() == addrs.len() && by_key.len() == svc.networks.len();
            if complete {
                config.service = hashed_config(svc);
                db.set_definition(&rec.id, &config, &publish, &config_hash(svc))?;
            } else {
                db.set_config(&rec.id, &config, &publish)?;
            }
            let key = if event.0 == "publish" { "ports" } else { "network" };
            crate::container::record_event(&db, rec, event.0, &[(key, event.1)]);
        }
        self.announce(rec);
        self.tell_supervisor();
        Ok(())
    }
}

/// The addresses container `rec` has, by network name (from its names in its row).
fn attached(rec: &ContainerRecord) -> BTreeMap<String, Vec<IpAddr>> {
    let dns = rec.config.supervise.as_ref().and_then(|s| s.dns.as_ref());
    let endpoints = dns.map(|d| d.endpoints.as_slice()).unwrap_or_default();
    endpoints.iter().filter(|e| !e.1.is_empty()).map(|(name, addrs, ..)| (name.clone(), addrs.clone())).collect()
}
