//! berth's networking: bridges, veth pairs and addresses over netlink, IPAM, network namespaces,
//! the DNS server, published ports (userland proxy and nftables DNAT) and outbound NAT.
//!
//! Pure parts ([`ipam`], [`dns::DnsTable`], [`nat`] rule building, [`files`]) decide; thin parts act:
//! [`Host`] (real: [`NetlinkHost`], fake: [`RecordingHost`]), [`nat::Firewall`] (real: [`nat::Nft`],
//! fake: [`nat::RecordingFirewall`]), [`dns::DnsServer`] and [`proxy::PortProxy`]. Input types are
//! this crate's own; it knows nothing about compose files or containers.
//!
//! The [`Host`] methods and [`nat::Nft`] block (netlink on throw-away threads, mounts, the `nft`
//! command); async callers must run them through `tokio::task::spawn_blocking`.
//!
//! # How the rest of berth drives it
//!
//! `up`, per network (before any container): [`network::NetworkSpec::new`] with the network's
//! resolved name (`{project}_{network}` or its `name:`), look up the stored subnet or call
//! [`network::assign_subnets`] with every other stored network's subnets and
//! [`Host::routed_subnets`] (kept apart in [`network::SubnetsInUse`]), store it, then
//! [`network::ensure_network`] (external networks are only checked).
//!
//! Per container (before the runtime creates it):
//! 1. [`ipam::lease`] an address per network and family (static `ipv4_address`/`ipv6_address` as
//!    `requested`), backed by the state DB through [`ipam::LeaseStore`];
//! 2. [`Host::create_netns`] at `<run dir>/netns/<container>` and put that path in the OCI config's
//!    network namespace (`network_mode: host` → no namespace; `none` → this namespace, not
//!    attached; `service:`/`container:` → the other container's path);
//! 3. [`network::plan_interfaces`] for names and the default route (never through an `internal`
//!    network), then [`network::attach_all`];
//! 4. write [`files::ResolvConf`] (nameserver: the first network's gateway) and [`files::Hosts`].
//!
//! The supervisor: [`proxy::PortProxy::start`] for every published port before starting anything
//! (a port in use fails here; random ports are read back from [`proxy::PortProxy::bound`]), then
//! [`nat::Firewall::apply`] with [`nat::Rule::Dnat`] for the bound ports when [`nat::Nft::available`];
//! [`dns::DnsServer::start`] on every gateway with [`files::dns_upstreams`] of the host's
//! `resolv.conf`, and [`dns::DnsServer::set_table`] whenever a container starts, stops, turns
//! unhealthy or is removed (each [`dns::DnsEndpoint`] says whether its network is `internal`).
//!
//! `down`: stop the proxy and DNS, remove the project's DNAT owner, [`Host::detach`] each
//! interface, [`Host::remove_netns`], release leases, then [`network::remove_network_if_unused`]
//! (which keeps a bridge another project still has containers on, and any bridge berth did not
//! create: see [`BRIDGE_ALIAS`]).

pub mod announce;
pub mod dns;
mod error;
pub mod files;
mod host;
pub mod ipam;
pub mod names;
pub mod nat;
mod netlink;
pub mod netns;
pub mod network;
pub mod proxy;

pub use error::{Error, Result};
pub use host::{AttachSpec, BridgeSpec, FakeLink, Host, RecordingHost, BRIDGE_ALIAS};
pub use names::IfName;
pub use netlink::{bridge_mac, NetlinkHost, DOCKER_DNS};
