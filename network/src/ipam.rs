//! Address management, pure: choosing subnets for networks from pools, and leasing addresses inside
//! them through a [`LeaseStore`] so the same owner keeps its address across restarts.
//!
//! Subnet choice skips every subnet that overlaps a route on the host or another network, the way
//! Docker's default address pools do. Leases are first-fit from the start of `ip_range` (or the
//! subnet), never the network or broadcast address, the gateway or an `aux_addresses` entry.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A range of subnets handed out `size` bits at a time, like Docker's `default-address-pools`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// The range subnets are carved from.
    pub base: IpNet,
    /// The prefix length of each subnet.
    pub size: u8,
}

impl Pool {
    /// A pool; `size` must be at least as long as the base prefix.
    pub fn new(base: IpNet, size: u8) -> Self {
        Pool { base: base.trunc(), size }
    }
}

/// Docker's default IPv4 pools: 172.17–31.0.0/16, then 192.168.0.0/16 in /20s.
pub fn default_pools_v4() -> Vec<Pool> {
    let net = |s: &str| s.parse::<IpNet>().expect("constant subnet");
    vec![
        Pool::new(net("172.17.0.0/16"), 16),
        Pool::new(net("172.18.0.0/15"), 16),
        Pool::new(net("172.20.0.0/14"), 16),
        Pool::new(net("172.24.0.0/14"), 16),
        Pool::new(net("172.28.0.0/14"), 16),
        Pool::new(net("192.168.0.0/16"), 20),
    ]
}

/// berth's default IPv6 pool: /64s of a unique local /48 (`fd1d:b7e8:2c5a::/48`).
pub fn default_pools_v6() -> Vec<Pool> {
    vec![Pool::new("fd1d:b7e8:2c5a::/48".parse().expect("constant subnet"), 64)]
}

/// Whether two subnets share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Fails when `subnet` overlaps one of `taken` (routes on the host, other networks).
pub fn check_subnet_free(subnet: &IpNet, taken: &[IpNet]) -> Result<()> {
    match taken.iter().find(|t| t.network().is_ipv4() == subnet.network().is_ipv4() && overlaps(subnet, t)) {
        Some(other) => Err(Error::SubnetOverlap { subnet: *subnet, other: *other }),
        None => Ok(()),
    }
}

/// The first subnet of `pools` that overlaps none of `taken`.
///
/// Host routes that cover everything (the default route, `0.0.0.0/0`) are not counted as taken.
pub fn pick_subnet(pools: &[Pool], taken: &[IpNet]) -> Result<IpNet> {
    let taken: Vec<IpNet> = taken.iter().filter(|t| t.prefix_len() > 0).copied().collect();
    for pool in pools {
        let Ok(candidates) = pool.base.subnets(pool.size) else { continue };
        for candidate in candidates {
            if check_subnet_free(&candidate, &taken).is_ok() {
                return Ok(candidate);
            }
        }
    }
    Err(Error::SubnetsExhausted)
}

/// One `ipam.config` entry once its subnet is known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetConfig {
    /// The subnet (host bits cleared).
    pub subnet: IpNet,
    /// The part of the subnet that dynamic leases come from.
    pub ip_range: Option<IpNet>,
    /// The bridge's address; the first host address when not given.
    pub gateway: Option<IpAddr>,
    /// Addresses never leased (`aux_addresses`).
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

impl SubnetConfig {
    /// A subnet with the default gateway, range and no aux addresses.
    pub fn new(subnet: IpNet) -> Self {
        SubnetConfig { subnet: subnet.trunc(), ip_range: None, gateway: None, aux_addresses: BTreeMap::new() }
    }

    /// The gateway: as configured, else the first address after the network address.
    pub fn gateway(&self) -> IpAddr {
        self.gateway.unwrap_or_else(|| nth(&self.subnet, 1))
    }

    /// The gateway with the subnet's prefix length, as put on the bridge.
    pub fn gateway_net(&self) -> IpNet {
        IpNet::new(self.gateway(), self.subnet.prefix_len()).expect("prefix of a valid subnet")
    }

    /// Checks that gateway, range and aux addresses lie inside the subnet.
    pub fn validate(&self, network: &str) -> Result<()> {
        let outside = |addr| Error::AddressOutsideSubnet { network: network.to_string(), addr };
        if !self.subnet.contains(&self.gateway()) {
            return Err(outside(self.gateway()));
        }
        if let Some(range) = self.ip_range {
            if !self.subnet.contains(&range.network()) || range.prefix_len() < self.subnet.prefix_len() {
                return Err(outside(range.network()));
            }
        }
        match self.aux_addresses.values().find(|a| !self.subnet.contains(*a)) {
            Some(a) => Err(outside(*a)),
            None => Ok(()),
        }
    }

    fn reserved(&self, addr: IpAddr) -> Option<&'static str> {
        if addr == self.gateway() {
            Some("the gateway")
        } else if self.aux_addresses.values().any(|a| *a == addr) {
            Some("an aux address")
        } else if addr == self.subnet.network() {
            Some("the network address")
        } else if self.subnet.network().is_ipv4() && addr == self.subnet.broadcast() && self.subnet.prefix_len() < 31 {
            Some("the broadcast address")
        } else {
            None
        }
    }
}

/// The `n`th address of `net` counted from its network address.
fn nth(net: &IpNet, n: u128) -> IpAddr {
    match net.network() {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a).wrapping_add(n as u32)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a).wrapping_add(n)).into()),
    }
}

/// An address held by an owner (a container) on a network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The network's name as berth stores it (project-qualified).
    pub network: String,
    /// Who holds it, typically the container name.
    pub owner: String,
    /// The address.
    pub addr: IpAddr,
}

/// Where leases live. The root crate backs this with its state database; [`MemoryLeases`] is
/// the in-memory one for tests.
pub trait LeaseStore {
    /// Every lease on `network`.
    fn leases(&self, network: &str) -> Result<Vec<Lease>>;
    /// Records a lease.
    fn put(&mut self, lease: Lease) -> Result<()>;
    /// Drops every lease `owner` holds on `network`.
    fn release(&mut self, network: &str, owner: &str) -> Result<()>;
}

/// Leases kept in memory.
#[derive(Debug, Default)]
pub struct MemoryLeases {
    leases: HashMap<String, Vec<Lease>>,
}

impl LeaseStore for MemoryLeases {
    fn leases(&self, network: &str) -> Result<Vec<Lease>> {
        Ok(self.leases.get(network).cloned().unwrap_or_default())
    }
    fn put(&mut self, lease: Lease) -> Result<()> {
        self.leases.entry(lease.network.clone()).or_default().push(lease);
        Ok(())
    }
    fn release(&mut self, network: &str, owner: &str) -> Result<()> {
        if let Some(l) = self.leases.get_mut(network) {
            l.retain(|l| l.owner != owner);
        }
        Ok(())
    }
}

/// Which address family a lease is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    fn of(addr: &IpAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// Gives `owner` an address of `family` on `network`.
///
/// An owner that already holds one keeps it (a restarted container keeps its address) unless it
/// asks for a different static one, or the address is no longer leasable (outside the current
/// subnets, now the gateway or an aux address): then it is released and a new one leased. A static `requested` address must lie in one of `subnets`, not
/// be reserved and not be held by another owner. Otherwise the first free address of the first
/// subnet of that family with room is leased.
pub fn lease(
    store: &mut dyn LeaseStore,
    network: &str,
    subnets: &[SubnetConfig],
    owner: &str,
    family: Family,
    requested: Option<IpAddr>,
) -> Result<IpAddr> {
    let leases = store.leases(network)?;
    let held_by = |addr: IpAddr| leases.iter().find(|l| l.addr == addr && l.owner != owner);
    let mine = leases.iter().find(|l| l.owner == owner && Family::of(&l.addr) == family);
    if let Some(mine) = mine {
        // A stored lease may predate a change of `ipam.config` (other subnets, a new gateway or
        // aux address): keep it only while it is still a leasable address, else lease anew.
        let still_valid = subnets.iter().any(|s| s.subnet.contains(&mine.addr) && s.reserved(mine.addr).is_none())
            && held_by(mine.addr).is_none();
        if still_valid && (requested.is_none() || requested == Some(mine.addr)) {
            return Ok(mine.addr);
        }
    }
    let addr = match requested {
        Some(addr) => {
            let Some(sub) = subnets.iter().find(|s| s.subnet.contains(&addr)) else {
                return Err(Error::AddressOutsideSubnet { network: network.to_string(), addr });
            };
            if let Some(why) = sub.reserved(addr) {
                return Err(Error::AddressReserved { network: network.to_string(), addr, why });
            }
            if let Some(l) = held_by(addr) {
                return Err(Error::AddressInUse { network: network.to_string(), addr, owner: l.owner.clone() });
            }
            addr
        }
        None => first_free(network, subnets, family, &|a| held_by(a).is_some())?,
    };
    if mine.is_some() {
        store.release(network, owner)?;
        for other in leases.iter().filter(|l| l.owner == owner && Family::of(&l.addr) != family) {
            store.put(other.clone())?;
        }
    }
    store.put(Lease { network: network.to_string(), owner: owner.to_string(), addr })?;
    Ok(addr)
}

/// How many candidates a dynamic lease looks at in one subnet (bounds the walk through an IPv6 /64).
const SCAN_LIMIT: u128 = 1 << 20;

fn first_free(
    network: &str,
    subnets: &[SubnetConfig],
    family: Family,
    held: &dyn Fn(IpAddr) -> bool,
) -> Result<IpAddr> {
    let mut last_range = None;
    for sub in subnets.iter().filter(|s| Family::of(&s.subnet.network()) == family) {
        let range = sub.ip_range.unwrap_or(sub.subnet);
        last_range = Some(range);
        let size: u128 = match range {
            IpNet::V4(n) => 1u128 << (32 - n.prefix_len()),
            IpNet::V6(n) => 1u128.checked_shl(128 - n.prefix_len() as u32).unwrap_or(u128::MAX),
        };
        for i in 0..size.min(SCAN_LIMIT) {
            let addr = nth(&range, i);
            if sub.reserved(addr).is_none() && !held(addr) {
                return Ok(addr);
            }
        }
    }
    match last_range {
        Some(range) => Err(Error::AddressesExhausted { network: network.to_string(), range }),
        None => Err(Error::Store(format!("network `{network}` has no {family:?} subnet"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn picks_the_first_pool_subnet_that_no_route_or_network_uses() {
        let pools = default_pools_v4();
        assert_eq!(pick_subnet(&pools, &[]).unwrap(), net("172.17.0.0/16"));
        let taken = [net("0.0.0.0/0"), net("172.17.0.0/16"), net("172.18.5.0/24"), net("10.0.0.0/8")];
        assert_eq!(pick_subnet(&pools, &taken).unwrap(), net("172.19.0.0/16"));
        // A route covering the whole 172.16/12 range pushes choice to 192.168/20s.
        assert_eq!(pick_subnet(&pools, &[net("172.16.0.0/12")]).unwrap(), net("192.168.0.0/20"));
        assert_eq!(
            pick_subnet(&pools, &[net("172.16.0.0/12"), net("192.168.0.0/19")]).unwrap(),
            net("192.168.32.0/20")
        );
        assert_eq!(pick_subnet(&default_pools_v6(), &[]).unwrap(), net("fd1d:b7e8:2c5a::/64"));
    }

    #[test]
    fn pool_exhaustion_is_an_error() {
        let pools = [Pool::new(net("10.1.0.0/23"), 24)];
        let err = pick_subnet(&pools, &[net("10.1.0.0/24"), net("10.1.1.0/24")]).unwrap_err();
        assert!(matches!(err, Error::SubnetsExhausted), "{err}");
    }

    #[test]
    fn two_networks_never_overlap() {
        let pools = default_pools_v4();
        let mut taken = vec![];
        for _ in 0..20 {
            let s = pick_subnet(&pools, &taken).unwrap();
            assert!(check_subnet_free(&s, &taken).is_ok());
            taken.push(s);
        }
        let err = check_subnet_free(&net("172.20.1.0/24"), &taken).unwrap_err();
        assert_eq!(err.to_string(), "subnet 172.20.1.0/24 overlaps 172.20.0.0/16, which is already in use");
    }

    #[test]
    fn dynamic_leases_skip_gateway_aux_and_network_address_and_are_kept() {
        let mut sub = SubnetConfig::new(net("10.9.0.0/24"));
        sub.aux_addresses.insert("router".into(), ip("10.9.0.2"));
        let subs = [sub];
        let mut store = MemoryLeases::default();
        let a = lease(&mut store, "n", &subs, "web-1", Family::V4, None).unwrap();
        let b = lease(&mut store, "n", &subs, "web-2", Family::V4, None).unwrap();
        assert_eq!((a, b), (ip("10.9.0.3"), ip("10.9.0.4")));
        // The same owner keeps its address.
        assert_eq!(lease(&mut store, "n", &subs, "web-1", Family::V4, None).unwrap(), a);
        store.release("n", "web-1").unwrap();
        assert_eq!(lease(&mut store, "n", &subs, "db-1", Family::V4, None).unwrap(), a);
    }

    #[test]
    fn ip_range_and_explicit_gateway_are_honoured() {
        let mut sub = SubnetConfig::new(net("10.9.0.0/16"));
        sub.ip_range = Some(net("10.9.5.0/30"));
        sub.gateway = Some(ip("10.9.5.1"));
        sub.validate("n").unwrap();
        let subs = [sub];
        let mut store = MemoryLeases::default();
        let got: Vec<_> = (0..3).map(|i| lease(&mut store, "n", &subs, &format!("c{i}"), Family::V4, None)).collect();
        assert_eq!(got[0].as_ref().unwrap(), &ip("10.9.5.0"));
        assert_eq!(got[1].as_ref().unwrap(), &ip("10.9.5.2"));
        assert_eq!(got[2].as_ref().unwrap(), &ip("10.9.5.3"));
        let err = lease(&mut store, "n", &subs, "c9", Family::V4, None).unwrap_err();
        assert_eq!(err.to_string(), "network `n`: no free address left in 10.9.5.0/30");
    }

    #[test]
    fn static_addresses_are_checked() {
        let subs = [SubnetConfig::new(net("10.9.0.0/24"))];
        let mut store = MemoryLeases::default();
        assert_eq!(lease(&mut store, "n", &subs, "a", Family::V4, Some(ip("10.9.0.50"))).unwrap(), ip("10.9.0.50"));
        let taken = lease(&mut store, "n", &subs, "b", Family::V4, Some(ip("10.9.0.50"))).unwrap_err();
        assert_eq!(taken.to_string(), "network `n`: address 10.9.0.50 is already used by `a`");
        let gw = lease(&mut store, "n", &subs, "b", Family::V4, Some(ip("10.9.0.1"))).unwrap_err();
        assert_eq!(gw.to_string(), "network `n`: address 10.9.0.1 is reserved (the gateway)");
        let bc = lease(&mut store, "n", &subs, "b", Family::V4, Some(ip("10.9.0.255"))).unwrap_err();
        assert!(bc.to_string().contains("broadcast"), "{bc}");
        let out = lease(&mut store, "n", &subs, "b", Family::V4, Some(ip("10.8.0.5"))).unwrap_err();
        assert_eq!(out.to_string(), "network `n`: address 10.8.0.5 is not in any of its subnets");
        // A dynamic lease steps around the static one.
        for i in 0..48 {
            lease(&mut store, "n", &subs, &format!("d{i}"), Family::V4, None).unwrap();
        }
        assert_eq!(lease(&mut store, "n", &subs, "next", Family::V4, None).unwrap(), ip("10.9.0.51"));
        // Changing the requested address moves the lease.
        assert_eq!(lease(&mut store, "n", &subs, "a", Family::V4, Some(ip("10.9.0.99"))).unwrap(), ip("10.9.0.99"));
        assert_eq!(store.leases("n").unwrap().iter().filter(|l| l.owner == "a").count(), 1);
    }

    #[test]
    fn dual_stack_owners_hold_one_lease_per_family() {
        let subs = [SubnetConfig::new(net("10.9.0.0/24")), SubnetConfig::new(net("fd00:1::/64"))];
        let mut store = MemoryLeases::default();
        let v4 = lease(&mut store, "n", &subs, "a", Family::V4, None).unwrap();
        let v6 = lease(&mut store, "n", &subs, "a", Family::V6, None).unwrap();
        assert_eq!((v4, v6), (ip("10.9.0.2"), ip("fd00:1::2")));
        assert_eq!(lease(&mut store, "n", &subs, "a", Family::V6, Some(ip("fd00:1::99"))).unwrap(), ip("fd00:1::99"));
        assert_eq!(store.leases("n").unwrap().len(), 2);
    }

    #[test]
    fn a_stored_lease_outside_the_current_subnets_or_now_reserved_is_replaced() {
        let mut store = MemoryLeases::default();
        let old = [SubnetConfig::new(net("10.9.0.0/24")), SubnetConfig::new(net("fd00:1::/64"))];
        assert_eq!(lease(&mut store, "n", &old, "web-1", Family::V4, None).unwrap(), ip("10.9.0.2"));
        let v6 = lease(&mut store, "n", &old, "web-1", Family::V6, None).unwrap();
        // The network was recreated with another IPv4 subnet.
        let new = [SubnetConfig::new(net("10.20.0.0/24")), SubnetConfig::new(net("fd00:1::/64"))];
        assert_eq!(lease(&mut store, "n", &new, "web-1", Family::V4, None).unwrap(), ip("10.20.0.2"));
        let mut held: Vec<IpAddr> = store.leases("n").unwrap().iter().map(|l| l.addr).collect();
        held.sort();
        assert_eq!(held, [ip("10.20.0.2"), v6], "the old lease is released, the other family kept");
        // Its address became an aux address.
        let mut reserved = SubnetConfig::new(net("10.20.0.0/24"));
        reserved.aux_addresses.insert("router".into(), ip("10.20.0.2"));
        let reserved = [reserved];
        assert_eq!(lease(&mut store, "n", &reserved, "web-1", Family::V4, None).unwrap(), ip("10.20.0.3"));
        // And a static request for it now fails instead of returning the stale lease.
        let mut gw = SubnetConfig::new(net("10.20.0.0/24"));
        gw.gateway = Some(ip("10.20.0.3"));
        let err = lease(&mut store, "n", &[gw], "web-1", Family::V4, Some(ip("10.20.0.3"))).unwrap_err();
        assert_eq!(err.to_string(), "network `n`: address 10.20.0.3 is reserved (the gateway)");
    }

    #[test]
    fn misplaced_gateway_or_range_is_rejected() {
        let mut sub = SubnetConfig::new(net("10.9.0.0/24"));
        sub.gateway = Some(ip("10.10.0.1"));
        assert!(sub.validate("n").is_err());
        let mut sub = SubnetConfig::new(net("10.9.0.0/24"));
        sub.ip_range = Some(net("10.9.0.0/16"));
        assert!(sub.validate("n").is_err());
    }
}
