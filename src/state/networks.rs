//! The `networks`, `subnets` and `leases` tables: the networks berth made on this host with the
//! subnets chosen for them, and the addresses containers hold on them.
//!
//! A subnet is chosen in one `BEGIN IMMEDIATE` transaction that reads every other network's
//! subnets and writes the new row ([`StateDb::claim_network`]), so two projects brought up at
//! the same moment never get the same one. A lease names its owner by the container's key (the
//! name it was made under, see `ContainerRecord::key`): it is taken while the container is
//! being made (its intent row names it then) and goes in the transaction that deletes the
//! container's row (`delete_container`). A lease whose owner has
//! neither is what an interrupted removal left, and [`StateDb::reclaim_leases`] drops it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use berth_network::ipam::{Lease, LeaseStore, SubnetConfig};
use ipnet::IpNet;
use rusqlite::{params, OptionalExtension};

use super::containers::KEY;
use super::{Result, StateDb, StateError};

/// A network berth made, as its row keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRow {
    /// Its name on this host (`{project}_{key}`, or the compose file's `name:`).
    pub name: String,
    /// The project that made it; `None` for one taken in from an older berth.
    pub project: Option<String>,
    /// Its key under the project's `networks:`.
    pub key: Option<String>,
    /// The bridge.
    pub bridge: String,
    /// `internal: true`.
    pub internal: bool,
    /// `enable_ipv6`.
    pub enable_ipv6: bool,
    /// Bridge MTU.
    pub mtu: Option<u32>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Unix milliseconds; kept from the first time the network was recorded.
    pub created_at: i64,
    /// Its subnets, in order.
    pub subnets: Vec<SubnetConfig>,
}

impl StateDb {
    /// Every network berth keeps, by name.
    pub fn networks(&self) -> Result<Vec<NetworkRow>> {
        let names: Vec<String> = {
            let mut st = self.conn.prepare_cached("SELECT name FROM networks ORDER BY name").map_err(self.sql_err())?;
            let rows = st.query_map([], |r| r.get(0)).map_err(self.sql_err())?;
            rows.collect::<rusqlite::Result<_>>().map_err(self.sql_err())?
        };
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.extend(self.network(&name)?);
        }
        Ok(out)
    }

    /// Network `name`, if berth keeps it.
    pub fn network(&self, name: &str) -> Result<Option<NetworkRow>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT project, key, bridge, internal, enable_ipv6, mtu, labels, created_at FROM networks
                 WHERE name = ?1",
            )
            .and_then(|mut st| {
                st.query_row([name], |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, bool>(4)?,
                        r.get::<_, Option<u32>>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                })
                .optional()
            })
            .map_err(self.sql_err())?;
        let Some((project, key, bridge, internal, enable_ipv6, mtu, labels, created_at)) = row else {
            return Ok(None);
        };
        let labels = serde_json::from_str(&labels).map_err(|e| self.bad_network(name, "labels", e))?;
        let subnets = self.subnets_of(name)?;
        Ok(Some(NetworkRow {
            name: name.to_string(),
            project,
            key,
            bridge,
            internal,
            enable_ipv6,
            mtu,
            labels,
            created_at,
            subnets,
        }))
    }

    fn subnets_of(&self, network: &str) -> Result<Vec<SubnetConfig>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT subnet, ip_range, gateway, aux_addresses FROM subnets WHERE network = ?1 ORDER BY idx",
            )
            .map_err(self.sql_err())?;
        let rows = st
            .query_map([network], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(self.sql_err())?;
        let mut out = Vec::new();
        for row in rows {
            let (subnet, ip_range, gateway, aux) = row.map_err(self.sql_err())?;
            let bad = |what: &str, e: &dyn std::fmt::Display| self.bad_network(network, what, e);
            let mut cfg = SubnetConfig::new(subnet.parse().map_err(|e| bad("subnet", &e))?);
            cfg.ip_range = ip_range.map(|s| s.parse()).transpose().map_err(|e| bad("ip_range", &e))?;
            cfg.gateway = gateway.map(|s| s.parse()).transpose().map_err(|e| bad("gateway", &e))?;
            cfg.aux_addresses = serde_json::from_str(&aux).map_err(|e| bad("aux_addresses", &e))?;
            out.push(cfg);
        }
        Ok(out)
    }

    /// Records network `row` with the subnets `choose` decides on, in one transaction that
    /// holds the write lock from the first read: `choose` gets the subnets stored for it before
    /// (if any) and those of every other network, and no other process records a network
    /// between. `row.subnets` is ignored; a row kept from before keeps its `created_at`.
    pub fn claim_network<E: From<StateError>>(
        &self,
        row: &NetworkRow,
        choose: impl FnOnce(Option<Vec<SubnetConfig>>, Vec<IpNet>) -> std::result::Result<Vec<SubnetConfig>, E>,
    ) -> std::result::Result<Vec<SubnetConfig>, E> {
        let tx = self.write_transaction()?;
        let stored = match self.network_exists(&row.name)? {
            true => Some(self.subnets_of(&row.name)?),
            false => None,
        };
        let others = self.subnets_in_use(&row.name)?;
        let subnets = choose(stored, others)?;
        self.write_network(&NetworkRow { subnets: subnets.clone(), ..row.clone() })?;
        tx.commit().map_err(self.sql_err())?;
        Ok(subnets)
    }

    fn network_exists(&self, name: &str) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM networks WHERE name = ?1")
            .and_then(|mut st| st.exists([name]))
            .map_err(self.sql_err())
    }

    /// The subnets of every network but `name`.
    pub fn subnets_in_use(&self, name: &str) -> Result<Vec<IpNet>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT network, subnet FROM subnets WHERE network != ?1 ORDER BY network, idx")
            .map_err(self.sql_err())?;
        let rows =
            st.query_map([name], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(self.sql_err())?;
        let mut out = Vec::new();
        for row in rows {
            let (network, subnet) = row.map_err(self.sql_err())?;
            out.push(subnet.parse().map_err(|e| self.bad_network(&network, "subnet", e))?);
        }
        Ok(out)
    }

    /// Writes `row` (its subnets replace those stored before), keeping `created_at` of a row
    /// already there. Runs inside the caller's transaction.
    pub(super) fn write_network(&self, row: &NetworkRow) -> Result<()> {
        let labels = serde_json::to_string(&row.labels).map_err(|e| self.bad_network(&row.name, "labels", e))?;
        let e = self.sql_err();
        self.conn
            .prepare_cached(
                "INSERT INTO networks (name, project, key, bridge, internal, enable_ipv6, mtu, labels, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(name) DO UPDATE SET project = excluded.project, key = excluded.key,
                 bridge = excluded.bridge, internal = excluded.internal, enable_ipv6 = excluded.enable_ipv6,
                 mtu = excluded.mtu, labels = excluded.labels",
            )
            .and_then(|mut st| {
                st.execute(params![
                    row.name,
                    row.project,
                    row.key,
                    row.bridge,
                    row.internal,
                    row.enable_ipv6,
                    row.mtu,
                    labels,
                    row.created_at
                ])
            })
            .map_err(&e)?;
        self.conn.execute("DELETE FROM subnets WHERE network = ?1", [&row.name]).map_err(&e)?;
        let mut st = self
            .conn
            .prepare_cached(
                "INSERT INTO subnets (network, idx, subnet, ip_range, gateway, aux_addresses)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(&e)?;
        for (idx, s) in row.subnets.iter().enumerate() {
            let aux =
                serde_json::to_string(&s.aux_addresses).map_err(|e| self.bad_network(&row.name, "aux_addresses", e))?;
            st.execute(params![
                row.name,
                idx as u32,
                s.subnet.to_string(),
                s.ip_range.map(|r| r.to_string()),
                s.gateway.map(|g| g.to_string()),
                aux
            ])
            .map_err(&e)?;
        }
        Ok(())
    }

    /// Forgets network `name` and its subnets; returns whether it was kept.
    pub fn forget_network(&self, name: &str) -> Result<bool> {
        let n = self.conn.execute("DELETE FROM networks WHERE name = ?1", [name]).map_err(self.sql_err())?;
        Ok(n > 0)
    }

    /// Every lease, on every network, ordered by network and address.
    pub fn all_leases(&self) -> Result<Vec<Lease>> {
        self.query_leases("SELECT network, owner, address FROM leases ORDER BY network, address", [])
    }

    fn query_leases(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Lease>> {
        let mut st = self.conn.prepare_cached(sql).map_err(self.sql_err())?;
        let rows = st
            .query_map(params, |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(self.sql_err())?;
        let mut out = Vec::new();
        for row in rows {
            let (network, owner, addr) = row.map_err(self.sql_err())?;
            let addr: IpAddr = addr.parse().map_err(|e| self.bad_network(&network, "lease", e))?;
            out.push(Lease { network, owner, addr });
        }
        Ok(out)
    }

    /// Records a lease. An address is held by one owner at a time: leasing one another owner
    /// holds is refused by the table itself.
    pub fn put_lease(&self, lease: &Lease) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO leases (network, address, owner) VALUES (?1, ?2, ?3)")
            .and_then(|mut st| st.execute(params![lease.network, lease.addr.to_string(), lease.owner]))
            .map_err(self.sql_err())?;
        Ok(())
    }

    /// Drops the leases `owner` holds on `network`.
    pub fn release_leases(&self, network: &str, owner: &str) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM leases WHERE network = ?1 AND owner = ?2")
            .and_then(|mut st| st.execute(params![network, owner]))
            .map_err(self.sql_err())?;
        Ok(())
    }

    /// Drops every lease whose owner is neither a container (a row) nor one being made (an
    /// intent): what a removal that was interrupted between the kernel and the state left.
    /// Returns what it dropped.
    pub fn reclaim_leases(&self) -> Result<Vec<Lease>> {
        let orphans =
            format!("owner NOT IN (SELECT {KEY} FROM containers) AND owner NOT IN (SELECT name FROM intents)");
        let tx = self.write_transaction()?;
        let gone = self.query_leases(
            &format!("SELECT network, owner, address FROM leases WHERE {orphans} ORDER BY network, address"),
            [],
        )?;
        self.conn.execute(&format!("DELETE FROM leases WHERE {orphans}"), []).map_err(self.sql_err())?;
        tx.commit().map_err(self.sql_err())?;
        Ok(gone)
    }

    pub(super) fn bad_network(&self, network: &str, what: &str, detail: impl std::fmt::Display) -> StateError {
        StateError::BadNetwork {
            path: self.path.clone(),
            network: network.to_string(),
            what: what.to_string(),
            detail: detail.to_string(),
        }
    }
}

/// The state database as the network crate's [`LeaseStore`].
pub struct DbLeases<'a>(pub &'a StateDb);

/// A state database failure as the network crate's error, its cause kept.
fn lease_error(e: StateError) -> berth_network::Error {
    berth_network::Error::Backend(Box::new(e))
}

impl LeaseStore for DbLeases<'_> {
    fn leases(&self, network: &str) -> berth_network::Result<Vec<Lease>> {
        self.0
            .query_leases("SELECT network, owner, address FROM leases WHERE network = ?1 ORDER BY address", [network])
            .map_err(lease_error)
    }
    fn put(&mut self, lease: Lease) -> berth_network::Result<()> {
        self.0.put_lease(&lease).map_err(lease_error)
    }
    fn release(&mut self, network: &str, owner: &str) -> berth_network::Result<()> {
        self.0.release_leases(network, owner).map_err(lease_error)
    }
}
