//! How networks look: a table, names, or Docker's inspect JSON.

use crate::cli::ListFormat;
use berth::app::networks::HostNetwork;

/// A network in the shape of `docker network inspect`.
pub fn json(n: &HostNetwork) -> serde_json::Value {
    serde_json::json!({
        "Name": n.record.name,
        "Driver": "bridge",
        "Scope": "local",
        "Bridge": n.record.bridge,
        "Internal": n.record.internal,
        "EnableIPv6": n.record.enable_ipv6,
        "MTU": n.record.mtu,
        "Created": n.record.created_at / 1000,
        "IPAM": {"Driver": "default", "Config": n.record.subnets.iter().map(|s| serde_json::json!({
            "Subnet": s.subnet.to_string(), "Gateway": s.gateway().to_string(),
            "IPRange": s.ip_range.map(|r| r.to_string()),
        })).collect::<Vec<_>>()},
        "Labels": n.record.labels,
        "Containers": n.containers.iter().map(|(c, a)| (c.clone(), serde_json::json!({
            "Name": c, "Addresses": a.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
        }))).collect::<serde_json::Map<_, _>>(),
    })
}

/// `network ls`: names with `quiet`, JSON lines with `--format json`, else a table.
pub fn list(nets: &[HostNetwork], quiet: bool, format: ListFormat) {
    if quiet {
        nets.iter().for_each(|n| println!("{}", n.name()));
    } else if format == ListFormat::Json {
        nets.iter().for_each(|n| println!("{}", json(n)));
    } else {
        let mut rows = vec![["NAME", "DRIVER", "BRIDGE", "SUBNET", "CONTAINERS"].map(String::from).to_vec()];
        for n in nets {
            let subnets: Vec<String> = n.record.subnets.iter().map(|s| s.subnet.to_string()).collect();
            let (bridge, count) = (n.record.bridge.clone(), n.containers.len().to_string());
            rows.push(vec![n.record.name.clone(), "bridge".into(), bridge, subnets.join(","), count]);
        }
        super::format::print_table(&rows);
    }
}
