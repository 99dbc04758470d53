//! Bridges, veth pairs, IPAM, the DNS server and published ports (filled in by the networking work).
