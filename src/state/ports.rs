//! The `published` table: the host ports bound for each container, one row per entry of its
//! service's `ports` that is published. They are what `ps` and `port` show and what the project
//! supervisor serves; the declared ports stay in the container's config as the service had them.

use std::net::IpAddr;

use berth_network::proxy::{PortMapping, Proto};
use rusqlite::params;

use super::{Result, StateDb, Status};

/// One published port of a container, its host port chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Published {
    /// Its position in the service's `ports` (and in the container config's declared ports).
    pub index: u32,
    /// TCP or UDP (`udp: true` or `false` where it is serialized).
    #[serde(rename = "udp", with = "crate::supervise::spec::udp_flag")]
    pub proto: Proto,
    /// The host address (unspecified for all).
    pub host_ip: IpAddr,
    /// The host port.
    pub host_port: u16,
    /// The container's address.
    pub container_ip: IpAddr,
    /// The container's port.
    pub container_port: u16,
}

impl Published {
    /// The proxy's mapping.
    pub fn mapping(&self) -> PortMapping {
        PortMapping {
            proto: self.proto,
            host_ip: self.host_ip,
            host_port: self.host_port,
            container_ip: self.container_ip,
            container_port: self.container_port,
        }
    }
}

impl StateDb {
    /// The published ports of container `id` (named `name`, for errors), in `ports` order.
    pub(super) fn published_of(&self, id: &str, name: &str) -> Result<Vec<Published>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT idx, protocol, host_ip, host_port, container_ip, container_port FROM published
                 WHERE container = ?1 ORDER BY idx",
            )
            .map_err(self.sql_err())?;
        let rows = st
            .query_map([id], |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get(3)?,
                    r.get::<_, String>(4)?,
                    r.get(5)?,
                ))
            })
            .map_err(self.sql_err())?;
        let mut out = Vec::new();
        for row in rows {
            let (index, protocol, host_ip, host_port, container_ip, container_port) = row.map_err(self.sql_err())?;
            let bad = |detail: String| self.unreadable(name, &format!("published port #{index}"), detail);
            let proto = match protocol.as_str() {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                other => return Err(bad(format!("unknown protocol {other:?}"))),
            };
            let ip = |text: &str| text.parse::<IpAddr>().map_err(|_| bad(format!("invalid address {text:?}")));
            out.push(Published {
                index,
                proto,
                host_ip: ip(&host_ip)?,
                host_port,
                container_ip: ip(&container_ip)?,
                container_port,
            });
        }
        Ok(out)
    }

    /// The containers of any project that run (or are paused) and publish host port `port`
    /// over `proto`, as (name, project, host address), by project and name.
    pub fn port_publishers(&self, proto: Proto, port: u16) -> Result<Vec<(String, String, IpAddr)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT c.name, c.project, p.host_ip FROM published p JOIN containers c ON c.id = p.container
                 WHERE p.protocol = ?1 AND p.host_port = ?2 AND c.status IN (?3, ?4) ORDER BY c.project, c.name",
            )
            .map_err(self.sql_err())?;
        let alive = (Status::Running.as_str(), Status::Paused.as_str());
        let rows = st
            .query_map(params![proto.as_str(), port, alive.0, alive.1], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })
            .map_err(self.sql_err())?;
        let mut out = Vec::new();
        for row in rows {
            let (name, project, ip) = row.map_err(self.sql_err())?;
            let ip =
                ip.parse().map_err(|_| self.unreadable(&name, "published port", format!("invalid address {ip:?}")))?;
            out.push((name, project, ip));
        }
        Ok(out)
    }

    /// Replaces the published ports of container `id`.
    pub(super) fn write_published(&self, id: &str, ports: &[Published]) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM published WHERE container = ?1")
            .and_then(|mut st| st.execute([id]))
            .map_err(self.sql_err())?;
        let mut st = self
            .conn
            .prepare_cached(
                "INSERT INTO published (container, idx, protocol, host_ip, host_port, container_ip, container_port)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(self.sql_err())?;
        for p in ports {
            st.execute(params![
                id,
                p.index,
                p.proto.as_str(),
                p.host_ip.to_string(),
                p.host_port,
                p.container_ip.to_string(),
                p.container_port
            ])
            .map_err(self.sql_err())?;
        }
        Ok(())
    }
}
