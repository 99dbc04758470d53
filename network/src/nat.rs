//! Firewall rules: outbound masquerade, isolation between networks, `internal` networks, and DNAT
//! for published ports — in berth's vocabulary ([`Rule`]), behind the [`Firewall`] trait.
//!
//! The real implementation drives the `nft` binary with JSON batches (`nft -j -f -`), like Podman's
//! netavark. Everything lives in one `inet` table of berth's own (`berth` unless told otherwise), so
//! a host-wide teardown is one `delete table`. Each rule carries a comment naming its *owner* (a
//! network, or a project's published ports); replacing or removing an owner's rules lists the table,
//! finds that owner's rule handles and deletes them in the same atomic batch that adds the new ones.
//!
//! Chains of the table:
//! - `forward` (filter, hook forward, policy accept): per network `iifname BR oifname BR accept`;
//!   internal networks then drop everything else in or out of their bridge; other networks send
//!   traffic leaving their bridge to `isolate`. With `bridge-nf-call-iptables=1` bridged traffic
//!   crosses this hook with `iifname`/`oifname` set to the bridge.
//! - `isolate` (regular): per network `oifname BR drop`, so one network never reaches another.
//! - `postrouting` (nat, srcnat): per non-internal subnet `saddr SUBNET oifname != BR masquerade`.
//! - `prerouting` and `output` (nat, dstnat): per published port `dport P dnat to ADDR:PORT`, for
//!   local destinations (`fib daddr type local`) or the given host address; `output` skips loopback
//!   destinations, which the userland proxy serves (DNAT to loopback needs `route_localnet`).

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use ipnet::IpNet;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::proxy::Proto;

/// The table name berth uses on a host.
pub const DEFAULT_TABLE: &str = "berth";

/// The owner tag of the rules every table starts with.
pub const BASE_OWNER: &str = "berth:base";

/// One published port as a DNAT rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortRule {
    /// TCP or UDP.
    pub proto: Proto,
    /// The host address it is published on; `None` for all addresses.
    pub host_ip: Option<IpAddr>,
    /// The host port.
    pub host_port: u16,
    /// The container's address.
    pub container_ip: IpAddr,
    /// The container's port.
    pub container_port: u16,
}

/// A rule in berth's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Isolate a network's bridge from other networks (and from everything, when `internal`).
    Isolate {
        /// The bridge.
        bridge: String,
        /// `internal: true`: no traffic in or out of the bridge except to the host itself.
        internal: bool,
    },
    /// Masquerade traffic from `subnet` leaving through anything but `bridge`.
    Masquerade {
        /// The bridge.
        bridge: String,
        /// The network's subnet.
        subnet: IpNet,
    },
    /// Forward a published port to a container.
    Dnat(PortRule),
}

/// The rules that go with one network.
pub fn network_rules(bridge: &str, subnets: &[IpNet], internal: bool) -> Vec<Rule> {
    let mut rules = vec![Rule::Isolate { bridge: bridge.to_string(), internal }];
    if !internal {
        rules.extend(subnets.iter().map(|s| Rule::Masquerade { bridge: bridge.to_string(), subnet: s.trunc() }));
    }
    rules
}

/// The OS side of firewalling.
pub trait Firewall: Send + Sync {
    /// Replaces every rule of `owner` with `rules`, atomically.
    fn apply(&self, owner: &str, rules: &[Rule]) -> Result<()>;
    /// Removes every rule of `owner`.
    fn remove(&self, owner: &str) -> Result<()>;
}

/// `nft` driven with JSON. Every method runs the `nft` command and waits for it: async callers
/// go through `tokio::task::spawn_blocking`.
#[derive(Clone, Debug)]
pub struct Nft {
    table: String,
    program: String,
}

fn m(op: &str, left: Value, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}
fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}
fn payload(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}
fn ip_proto(addr: &IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

impl Nft {
    /// Rules in table `inet <table>`, through the `nft` found on `PATH`.
    pub fn new(table: impl Into<String>) -> Self {
        Nft::with_program(table, "nft")
    }

    /// The same through another program (a path to `nft`, a wrapper).
    pub fn with_program(table: impl Into<String>, program: impl Into<String>) -> Self {
        Nft { table: table.into(), program: program.into() }
    }

    fn command(&self) -> Command {
        Command::new(&self.program)
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Whether `nft` (on `PATH`) can be run here (installed, and allowed to read the ruleset).
    pub fn available() -> bool {
        Command::new("nft")
            .args(["list", "tables"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Commands creating the table and its chains; `add` leaves existing ones alone.
    pub fn base_commands(&self) -> Vec<Value> {
        let t = &self.table;
        let base = |name: &str, ty: &str, hook: &str, prio: i32| {
            json!({"add": {"chain": {"family": "inet", "table": t, "name": name, "type": ty, "hook": hook,
                "prio": prio, "policy": "accept"}}})
        };
        vec![
            json!({"add": {"table": {"family": "inet", "name": t}}}),
            base("forward", "filter", "forward", 0),
            json!({"add": {"chain": {"family": "inet", "table": t, "name": "isolate"}}}),
            base("postrouting", "nat", "postrouting", 100),
            base("prerouting", "nat", "prerouting", -100),
            base("output", "nat", "output", -100),
        ]
    }

    fn rule(&self, chain: &str, owner: &str, expr: Vec<Value>) -> Value {
        json!({"add": {"rule": {"family": "inet", "table": self.table, "chain": chain, "expr": expr,
            "comment": owner}}})
    }

    /// The `add rule` commands for `rules`, each tagged with `owner` (pure).
    pub fn rule_commands(&self, owner: &str, rules: &[Rule]) -> Vec<Value> {
        let mut out = vec![];
        for r in rules {
            match r {
                Rule::Isolate { bridge, internal } => {
                    let (iif, oif) = (meta("iifname"), meta("oifname"));
                    out.push(self.rule(
                        "forward",
                        owner,
                        vec![
                            m("==", iif.clone(), json!(bridge)),
                            m("==", oif.clone(), json!(bridge)),
                            json!({"accept": null}),
                        ],
                    ));
                    if *internal {
                        out.push(self.rule("forward", owner, vec![m("==", iif, json!(bridge)), json!({"drop": null})]));
                        out.push(self.rule("forward", owner, vec![m("==", oif, json!(bridge)), json!({"drop": null})]));
                    } else {
                        out.push(self.rule(
                            "forward",
                            owner,
                            vec![
                                m("==", iif, json!(bridge)),
                                m("!=", oif.clone(), json!(bridge)),
                                json!({"jump": {"target": "isolate"}}),
                            ],
                        ));
                        out.push(self.rule("isolate", owner, vec![m("==", oif, json!(bridge)), json!({"drop": null})]));
                    }
                }
                Rule::Masquerade { bridge, subnet } => {
                    let addr = subnet.network();
                    let prefix = json!({"prefix": {"addr": addr.to_string(), "len": subnet.prefix_len()}});
                    out.push(self.rule(
                        "postrouting",
                        owner,
                        vec![
                            m("==", payload(ip_proto(&addr), "saddr"), prefix.clone()),
                            m("!=", meta("oifname"), json!(bridge)),
                            json!({"masquerade": null}),
                        ],
                    ));
                    // Hairpin: a container reaching a port published to a neighbour on its own
                    // bridge through a host address. Without this the neighbour would answer it
                    // directly, from an address the client never spoke to.
                    out.push(self.rule(
                        "postrouting",
                        owner,
                        vec![
                            m("==", meta("oifname"), json!(bridge)),
                            m("==", payload(ip_proto(&addr), "saddr"), prefix),
                            m("in", json!({"ct": {"key": "status"}}), json!("dnat")),
                            json!({"masquerade": null}),
                        ],
                    ));
                }
                Rule::Dnat(p) => out.extend(self.dnat_commands(owner, p)),
            }
        }
        out
    }

    fn dnat_commands(&self, owner: &str, p: &PortRule) -> Vec<Value> {
        let family = ip_proto(&p.container_ip);
        if p.host_ip.is_some_and(|h| h.is_loopback() || h.is_ipv4() != p.container_ip.is_ipv4()) {
            return vec![];
        }
        let mut head = vec![m("==", meta("nfproto"), json!(if family == "ip" { "ipv4" } else { "ipv6" }))];
        match p.host_ip.filter(|h| !h.is_unspecified()) {
            Some(h) => head.push(m("==", payload(family, "daddr"), json!(h.to_string()))),
            None => head.push(m("==", json!({"fib": {"result": "type", "flags": ["daddr"]}}), json!("local"))),
        }
        head.push(m("==", payload(p.proto.as_str(), "dport"), json!(p.host_port)));
        let dnat = json!({"dnat": {"family": family, "addr": p.container_ip.to_string(), "port": p.container_port}});
        let mut pre = head.clone();
        pre.push(dnat.clone());
        let loopback = if family == "ip" { json!({"prefix": {"addr": "127.0.0.0", "len": 8}}) } else { json!("::1") };
        let mut out = head;
        out.push(m("!=", payload(family, "daddr"), loopback));
        out.push(dnat);
        vec![self.rule("prerouting", owner, pre), self.rule("output", owner, out)]
    }

    /// Runs one JSON batch.
    pub fn run(&self, commands: Vec<Value>) -> Result<()> {
        let batch = json!({"nftables": commands}).to_string();
        let mut child = self
            .command()
            .args(["-j", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Nft(format!("cannot run `nft`: {e}")))?;
        child.stdin.take().expect("piped").write_all(batch.as_bytes()).map_err(|e| Error::Nft(e.to_string()))?;
        let out = child.wait_with_output().map_err(|e| Error::Nft(e.to_string()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Nft(String::from_utf8_lossy(&out.stderr).trim().to_string()))
        }
    }

    /// Every rule of the table as (chain, handle, comment); empty when the table does not exist.
    pub fn list(&self) -> Result<Vec<(String, u64, String)>> {
        let out = self
            .command()
            .args(["-j", "list", "table", "inet", &self.table])
            .output()
            .map_err(|e| Error::Nft(format!("cannot run `nft`: {e}")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("No such file or directory") {
                return Ok(vec![]);
            }
            return Err(Error::Nft(err.trim().to_string()));
        }
        let v: Value =
            serde_json::from_slice(&out.stdout).map_err(|e| Error::Nft(format!("unreadable listing: {e}")))?;
        let items = v["nftables"].as_array().cloned().unwrap_or_default();
        Ok(items
            .iter()
            .filter_map(|i| {
                let r = i.get("rule")?;
                Some((
                    r["chain"].as_str()?.to_string(),
                    r["handle"].as_u64()?,
                    r["comment"].as_str().unwrap_or_default().to_string(),
                ))
            })
            .collect())
    }

    fn delete_commands(&self, listing: &[(String, u64, String)], owner: &str) -> Vec<Value> {
        listing
            .iter()
            .filter(|(_, _, c)| c == owner)
            .map(|(chain, handle, _)| {
                json!({"delete": {"rule": {"family": "inet", "table": self.table, "chain": chain, "handle": handle}}})
            })
            .collect()
    }

    /// Rules every table starts with, added once (tagged [`BASE_OWNER`]): traffic to a published
    /// port (DNATed) is exempt from isolation, so other networks reach it through the host's
    /// address as any outside client would.
    pub fn base_rules(&self) -> Vec<Value> {
        vec![self.rule(
            "isolate",
            BASE_OWNER,
            vec![m("in", json!({"ct": {"key": "status"}}), json!("dnat")), json!({"return": null})],
        )]
    }

    /// Deletes the whole table (host-wide teardown; tests).
    pub fn delete_table(&self) -> Result<()> {
        if self.list_tables()?.contains(&self.table) {
            self.run(vec![json!({"delete": {"table": {"family": "inet", "name": self.table}}})])?;
        }
        Ok(())
    }

    fn list_tables(&self) -> Result<Vec<String>> {
        let out = self
            .command()
            .args(["-j", "list", "tables", "inet"])
            .output()
            .map_err(|e| Error::Nft(format!("cannot run `nft`: {e}")))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(Error::Nft(format!("`nft list tables` exited with {}: {}", out.status, err.trim())));
        }
        let v: Value =
            serde_json::from_slice(&out.stdout).map_err(|e| Error::Nft(format!("unreadable table list: {e}")))?;
        Ok(v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| Some(i.get("table")?["name"].as_str()?.to_string()))
            .collect())
    }
}

impl Firewall for Nft {
    fn apply(&self, owner: &str, rules: &[Rule]) -> Result<()> {
        let listing = self.list()?;
        let mut batch = self.base_commands();
        if !listing.iter().any(|(_, _, c)| c == BASE_OWNER) {
            batch.extend(self.base_rules());
        }
        batch.extend(self.delete_commands(&listing, owner));
        batch.extend(self.rule_commands(owner, rules));
        self.run(batch)
    }

    fn remove(&self, owner: &str) -> Result<()> {
        let batch = self.delete_commands(&self.list()?, owner);
        if batch.is_empty() {
            return Ok(());
        }
        self.run(batch)
    }
}

/// A [`Firewall`] that records calls and keeps the current rules per owner, for tests.
#[derive(Debug, Default)]
pub struct RecordingFirewall {
    /// One line per call: `apply OWNER N` or `remove OWNER`.
    pub calls: Mutex<Vec<String>>,
    /// The rules in force, per owner.
    pub rules: Mutex<std::collections::BTreeMap<String, Vec<Rule>>>,
}

impl Firewall for RecordingFirewall {
    fn apply(&self, owner: &str, rules: &[Rule]) -> Result<()> {
        self.calls.lock().expect("lock").push(format!("apply {owner} {}", rules.len()));
        self.rules.lock().expect("lock").insert(owner.to_string(), rules.to_vec());
        Ok(())
    }
    fn remove(&self, owner: &str) -> Result<()> {
        self.calls.lock().expect("lock").push(format!("remove {owner}"));
        self.rules.lock().expect("lock").remove(owner);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON with object keys sorted, so expectations do not depend on `preserve_order`.
    fn canon(v: &Value) -> String {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let fields: Vec<String> = keys.iter().map(|k| format!("{}:{}", json!(k), canon(&m[*k]))).collect();
                format!("{{{}}}", fields.join(","))
            }
            Value::Array(a) => format!("[{}]", a.iter().map(canon).collect::<Vec<_>>().join(",")),
            other => other.to_string(),
        }
    }

    fn exprs(cmds: &[Value]) -> Vec<String> {
        cmds.iter()
            .map(|c| {
                let r = &c["add"]["rule"];
                format!("{} {} {}", r["chain"].as_str().unwrap(), r["comment"].as_str().unwrap(), canon(&r["expr"]))
            })
            .collect()
    }

    #[test]
    fn network_rules_isolate_and_masquerade() {
        let nft = Nft::new("t");
        let rules = network_rules("br-a", &["10.1.0.5/24".parse().unwrap()], false);
        let got = exprs(&nft.rule_commands("net:a", &rules));
        assert_eq!(
            got,
            [
                r#"forward net:a [{"match":{"left":{"meta":{"key":"iifname"}},"op":"==","right":"br-a"}},{"match":{"left":{"meta":{"key":"oifname"}},"op":"==","right":"br-a"}},{"accept":null}]"#,
                r#"forward net:a [{"match":{"left":{"meta":{"key":"iifname"}},"op":"==","right":"br-a"}},{"match":{"left":{"meta":{"key":"oifname"}},"op":"!=","right":"br-a"}},{"jump":{"target":"isolate"}}]"#,
                r#"isolate net:a [{"match":{"left":{"meta":{"key":"oifname"}},"op":"==","right":"br-a"}},{"drop":null}]"#,
                r#"postrouting net:a [{"match":{"left":{"payload":{"field":"saddr","protocol":"ip"}},"op":"==","right":{"prefix":{"addr":"10.1.0.0","len":24}}}},{"match":{"left":{"meta":{"key":"oifname"}},"op":"!=","right":"br-a"}},{"masquerade":null}]"#,
                r#"postrouting net:a [{"match":{"left":{"meta":{"key":"oifname"}},"op":"==","right":"br-a"}},{"match":{"left":{"payload":{"field":"saddr","protocol":"ip"}},"op":"==","right":{"prefix":{"addr":"10.1.0.0","len":24}}}},{"match":{"left":{"ct":{"key":"status"}},"op":"in","right":"dnat"}},{"masquerade":null}]"#,
            ]
        );
    }

    #[test]
    fn internal_networks_get_no_way_out_and_no_masquerade() {
        let nft = Nft::new("t");
        let rules = network_rules("br-i", &["10.2.0.0/24".parse().unwrap()], true);
        let got = exprs(&nft.rule_commands("net:i", &rules));
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|r| r.starts_with("forward ")));
        assert!(got[1].contains("iifname") && got[1].ends_with(r#"{"drop":null}]"#), "{}", got[1]);
        assert!(got[2].contains("oifname") && got[2].ends_with(r#"{"drop":null}]"#), "{}", got[2]);
        assert!(!got.iter().any(|r| r.contains("masquerade")));
    }

    #[test]
    fn published_ports_dnat_in_prerouting_and_output() {
        let nft = Nft::new("t");
        let p = PortRule {
            proto: Proto::Tcp,
            host_ip: None,
            host_port: 8080,
            container_ip: "10.1.0.2".parse().unwrap(),
            container_port: 80,
        };
        let got = exprs(&nft.rule_commands("ports:shop", &[Rule::Dnat(p.clone())]));
        assert_eq!(
            got,
            [
                r#"prerouting ports:shop [{"match":{"left":{"meta":{"key":"nfproto"}},"op":"==","right":"ipv4"}},{"match":{"left":{"fib":{"flags":["daddr"],"result":"type"}},"op":"==","right":"local"}},{"match":{"left":{"payload":{"field":"dport","protocol":"tcp"}},"op":"==","right":8080}},{"dnat":{"addr":"10.1.0.2","family":"ip","port":80}}]"#,
                r#"output ports:shop [{"match":{"left":{"meta":{"key":"nfproto"}},"op":"==","right":"ipv4"}},{"match":{"left":{"fib":{"flags":["daddr"],"result":"type"}},"op":"==","right":"local"}},{"match":{"left":{"payload":{"field":"dport","protocol":"tcp"}},"op":"==","right":8080}},{"match":{"left":{"payload":{"field":"daddr","protocol":"ip"}},"op":"!=","right":{"prefix":{"addr":"127.0.0.0","len":8}}}},{"dnat":{"addr":"10.1.0.2","family":"ip","port":80}}]"#,
            ]
        );
        let on_host_ip = PortRule { host_ip: Some("192.0.2.10".parse().unwrap()), proto: Proto::Udp, ..p.clone() };
        let got = exprs(&nft.rule_commands("o", &[Rule::Dnat(on_host_ip)]));
        assert!(got[0].contains(r#"{"payload":{"field":"daddr","protocol":"ip"}},"op":"==","right":"192.0.2.10""#));
        assert!(got[0].contains(r#""protocol":"udp""#));
        // Loopback-only ports are the proxy's alone; families never mix.
        let lo = PortRule { host_ip: Some("127.0.0.1".parse().unwrap()), ..p.clone() };
        assert!(nft.rule_commands("o", &[Rule::Dnat(lo)]).is_empty());
        let v6 = PortRule { host_ip: Some("::".parse().unwrap()), ..p };
        assert!(nft.rule_commands("o", &[Rule::Dnat(v6)]).is_empty());
    }

    #[test]
    fn base_chains_hook_where_expected() {
        let cmds = Nft::new("t").base_commands();
        let hooks: Vec<String> = cmds[1..]
            .iter()
            .map(|c| {
                let ch = &c["add"]["chain"];
                format!("{}:{}:{}", ch["name"].as_str().unwrap(), ch["hook"].as_str().unwrap_or("-"), ch["prio"])
            })
            .collect();
        assert_eq!(
            hooks,
            [
                "forward:forward:0",
                "isolate:-:null",
                "postrouting:postrouting:100",
                "prerouting:prerouting:-100",
                "output:output:-100"
            ]
        );
    }

    #[test]
    fn a_failing_nft_is_an_error_not_an_empty_ruleset() {
        // `false` stands in for an `nft` that fails (no permission, no kernel support) and prints
        // nothing: deleting the table must not pass for "there was no table".
        let nft = Nft::with_program("t", "false");
        let err = nft.delete_table().unwrap_err();
        assert!(err.to_string().starts_with("`nft` failed: `nft list tables` exited with exit status: 1"), "{err}");
        assert!(nft.list().is_err());
        assert!(nft.remove("net:x").is_err());
    }

    #[test]
    fn recording_firewall_keeps_rules_per_owner() {
        let fw = RecordingFirewall::default();
        fw.apply("net:a", &network_rules("br-a", &[], true)).unwrap();
        fw.remove("net:a").unwrap();
        assert_eq!(*fw.calls.lock().unwrap(), ["apply net:a 1", "remove net:a"]);
        assert!(fw.rules.lock().unwrap().is_empty());
    }
}
