//! Benchmarks (run as root: `cargo bench -p berth-network`):
//! - DNS: answers per second and latency percentiles for a service name, over UDP on loopback;
//! - published port throughput through the userland proxy and through nftables DNAT, against a
//!   direct connection to the container address, in the same run.
//!
//! Everything it creates (bridge, namespace, nftables table) is removed on exit, even on panic.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use berth_network::dns::{DnsConfig, DnsContainer, DnsEndpoint, DnsServer, DnsTable};
use berth_network::ipam::{pick_subnet, Pool, SubnetConfig};
use berth_network::nat::{Firewall, Nft, PortRule, Rule};
use berth_network::network::{ensure_network, NetworkSpec};
use berth_network::proxy::{PortMapping, PortProxy, Proto};
use berth_network::{netns, AttachSpec, Host, IfName, NetlinkHost};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use ipnet::IpNet;

/// Sizes of one run: full under `cargo bench`, a quick smoke run under `cargo test --all-targets`.
#[derive(Clone, Copy)]
struct Sizes {
    latency_queries: u32,
    queries_per_client: u32,
    payload: usize,
    rounds: usize,
}

fn main() {
    assert!(nix::unistd::geteuid().is_root(), "the benchmarks need root (bridges, namespaces, nftables)");
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes { latency_queries: 20_000, queries_per_client: 25_000, payload: 256 << 20, rounds: 3 }
    } else {
        println!("quick smoke run; the real one is `cargo bench -p berth-network --bench network`");
        Sizes { latency_queries: 500, queries_per_client: 500, payload: 4 << 20, rounds: 1 }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    dns_bench(&rt, sizes);
    port_bench(&rt, sizes);
}

fn table(asker: IpAddr) -> DnsTable {
    let mut containers = vec![DnsContainer {
        name: "bench-client-1".into(),
        service: Some("client".into()),
        endpoints: vec![DnsEndpoint { network: "n".into(), addrs: vec![asker], aliases: vec![], internal: false }],
        ..Default::default()
    }];
    for s in 0..50u32 {
        for r in 1..=3u32 {
            containers.push(DnsContainer {
                name: format!("bench-svc{s}-{r}"),
                service: Some(format!("svc{s}")),
                endpoints: vec![DnsEndpoint {
                    network: "n".into(),
                    addrs: vec![IpAddr::V4(Ipv4Addr::new(10, 0, s as u8, r as u8))],
                    aliases: vec![],
                    internal: false,
                }],
                ..Default::default()
            });
        }
    }
    DnsTable::build(&containers)
}

fn query_bytes(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn dns_bench(rt: &tokio::runtime::Runtime, sizes: Sizes) {
    let mut cfg = DnsConfig::new(vec!["127.0.0.1".parse().unwrap()], vec![]);
    cfg.port = 0;
    let server = rt.block_on(DnsServer::start(cfg, table("127.0.0.1".parse().unwrap()))).unwrap();
    let addr = server.local_addrs()[0];

    // Latency: one client, one query at a time.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 1500];
    let mut lat = Vec::new();
    for i in 0..(sizes.latency_queries + 2_000) {
        let q = query_bytes(i as u16, "svc7.");
        let t = Instant::now();
        sock.send(&q).unwrap();
        let n = sock.recv(&mut buf).unwrap();
        let d = t.elapsed();
        assert!(Message::from_vec(&buf[..n]).unwrap().answers.len() == 3, "3 replicas");
        if i >= 2_000 {
            lat.push(d);
        }
    }
    lat.sort();
    println!(
        "dns  latency (1 client, {} queries for a 3-replica service): p50 {:?}  p99 {:?}  max {:?}",
        lat.len(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        lat.last().unwrap()
    );

    // Throughput: 4 clients with 16 queries in flight each.
    let clients = 4;
    let per_client = sizes.queries_per_client;
    let t = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            thread::spawn(move || {
                let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                sock.connect(addr).unwrap();
                sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
                let mut buf = [0u8; 1500];
                let (mut sent, mut got, mut lost) = (0u32, 0u32, 0u32);
                while got + lost < per_client {
                    while sent < per_client && sent - got - lost < 16 {
                        sock.send(&query_bytes(sent as u16, "svc7.")).unwrap();
                        sent += 1;
                    }
                    match sock.recv(&mut buf) {
                        Ok(_) => got += 1,
                        Err(_) => lost += sent - got - lost,
                    }
                }
                (got, lost)
            })
        })
        .collect();
    let (mut got, mut lost) = (0, 0);
    for h in handles {
        let (g, l) = h.join().unwrap();
        got += g;
        lost += l;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "dns  throughput ({clients} clients x 16 in flight): {:.0} answers/s ({got} answered, {lost} lost)",
        got as f64 / secs
    );
    rt.block_on(server.stop());
}

/// Bridge, namespace and nftables table for the port benchmark, removed on drop.
struct Setup {
    bridge: IfName,
    ns: PathBuf,
    nft: Nft,
    _dir: tempfile::TempDir,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = NetlinkHost.detach(&self.ns, &IfName::new("eth0").unwrap());
        let _ = netns::remove(&self.ns);
        let _ = NetlinkHost.remove_bridge(&self.bridge);
        let _ = self.nft.delete_table();
    }
}

/// A sink in the namespace: reads until EOF, then answers with one byte.
fn sink(ns: PathBuf, addr: SocketAddr, payload: usize) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        netns::run_in(Some(&ns), move || {
            let l = TcpListener::bind(addr).unwrap();
            tx.send(()).unwrap();
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                thread::spawn(move || {
                    let mut buf = vec![0u8; 256 << 10];
                    let mut total = 0usize;
                    while total < payload {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => total += n,
                        }
                    }
                    let _ = s.write_all(b"k");
                });
            }
        })
        .unwrap();
    });
    rx.recv().unwrap();
}

fn push(to: SocketAddr, payload: usize) -> f64 {
    let mut s = TcpStream::connect(to).unwrap();
    let chunk = vec![7u8; 256 << 10];
    let t = Instant::now();
    let mut sent = 0;
    while sent < payload {
        s.write_all(&chunk).unwrap();
        sent += chunk.len();
    }
    let mut k = [0u8; 1];
    s.read_exact(&mut k).unwrap();
    (payload as f64 * 8.0) / t.elapsed().as_secs_f64() / 1e9
}

fn port_bench(rt: &tokio::runtime::Runtime, sizes: Sizes) {
    let host = NetlinkHost;
    let dir = tempfile::tempdir().unwrap();
    let bridge = IfName::new(format!("bb{:x}", std::process::id())).unwrap();
    let setup = Setup {
        bridge: bridge.clone(),
        ns: dir.path().join("ns"),
        nft: Nft::new(format!("berth_bench_{}", std::process::id())),
        _dir: tempfile::tempdir().unwrap(),
    };
    let subnet =
        pick_subnet(&[Pool::new("10.160.0.0/11".parse().unwrap(), 24)], &host.routed_subnets().unwrap()).unwrap();
    let mut spec = NetworkSpec::new("bench_net", &Default::default()).unwrap();
    spec.bridge = bridge.clone();
    spec.subnets = vec![SubnetConfig::new(subnet)];
    ensure_network(&host, Some(&setup.nft), &spec).unwrap();
    netns::create(&setup.ns).unwrap();
    let gw = spec.subnets[0].gateway();
    let IpAddr::V4(gw4) = gw else { unreachable!() };
    let container = IpAddr::V4(Ipv4Addr::from(u32::from(gw4) + 1));
    host.attach(&AttachSpec {
        netns: setup.ns.clone(),
        bridge,
        ifname: IfName::new("eth0").unwrap(),
        addresses: vec![IpNet::new(container, 24).unwrap()],
        mac: None,
        mtu: None,
        default_routes: vec![gw],
    })
    .unwrap();
    sink(setup.ns.clone(), SocketAddr::new(container, 9000), sizes.payload);

    let proxy = rt
        .block_on(PortProxy::start(&[PortMapping {
            proto: Proto::Tcp,
            host_ip: "127.0.0.1".parse().unwrap(),
            host_port: 0,
            container_ip: container,
            container_port: 9000,
        }]))
        .unwrap();
    let proxied = SocketAddr::new("127.0.0.1".parse().unwrap(), proxy.bound()[0].host_port);
    let dnat_port = 19000 + (std::process::id() % 1000) as u16;
    setup
        .nft
        .apply(
            "ports:bench",
            &[Rule::Dnat(PortRule {
                proto: Proto::Tcp,
                host_ip: Some(gw),
                host_port: dnat_port,
                container_ip: container,
                container_port: 9000,
            })],
        )
        .unwrap();
    let dnat = SocketAddr::new(gw, dnat_port);
    let direct = SocketAddr::new(container, 9000);

    let mut results: Vec<(&str, Vec<f64>)> = vec![("direct", vec![]), ("proxy", vec![]), ("dnat", vec![])];
    for _round in 0..sizes.rounds {
        for (name, runs) in results.iter_mut() {
            let to = match *name {
                "direct" => direct,
                "proxy" => proxied,
                _ => dnat,
            };
            runs.push(push(to, sizes.payload));
        }
    }
    for (name, mut runs) in results {
        runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "port {name:<6} {} MiB x{}: median {:.2} Gbit/s (min {:.2}, max {:.2})",
            sizes.payload >> 20,
            runs.len(),
            runs[runs.len() / 2],
            runs[0],
            runs[runs.len() - 1]
        );
    }
    rt.block_on(proxy.stop());
    drop(setup);
}
