//! Helpers shared by the integration tests: a hickory-resolver client pointed at one server.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};

/// A resolver that asks only `server`, over TCP or UDP, without cache or hosts file.
pub fn resolver(server: SocketAddr, tcp: bool) -> TokioResolver {
    let mut conn = if tcp { ConnectionConfig::tcp() } else { ConnectionConfig::udp() };
    conn.port = server.port();
    let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(server.ip(), true, vec![conn])]);
    let mut b = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
    let o = b.options_mut();
    o.cache_size = 0;
    o.attempts = 1;
    o.timeout = Duration::from_secs(2);
    o.use_hosts_file = ResolveHosts::Never;
    b.build().expect("resolver")
}
