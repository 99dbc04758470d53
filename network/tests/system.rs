//! Root system tests: real bridges, veth pairs, namespaces, nftables rules, the DNS server on a
//! gateway and the port proxy. Every test uses its own names and subnets and removes what it made
//! through Drop guards, so nothing is left on the host even when an assertion fails. Traffic stays
//! between the test's own namespaces, the host's bridge addresses and loopback.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use berth_network::dns::{DnsConfig, DnsContainer, DnsEndpoint, DnsServer, DnsTable};
use berth_network::ipam::{pick_subnet, Pool, SubnetConfig};
use berth_network::names::peer_veth_name;
use berth_network::nat::{Firewall, Nft, PortRule, Rule};
use berth_network::network::{ensure_network, remove_network_if_unused, NetworkSpec};
use berth_network::proxy::{PortMapping, PortProxy, Proto};
use berth_network::{netns, AttachSpec, Error, Host, IfName, NetlinkHost, BRIDGE_ALIAS};
use ipnet::IpNet;

fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root (bridges, namespaces, nftables): run it as root");
}

fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{:x}{}", std::process::id() % 0xffff, N.fetch_add(1, Ordering::SeqCst))
}

/// Held while choosing a subnet and putting it on a bridge, so parallel tests never pick the same.
static SUBNETS: Mutex<()> = Mutex::new(());

/// Owns everything a test creates; Drop removes it all (namespaces first, which removes their
/// veths, then bridges, then links made with `ip link add`, then the nftables table).
struct Fixture {
    host: NetlinkHost,
    dir: tempfile::TempDir,
    netns: Vec<PathBuf>,
    bridges: Vec<IfName>,
    links: Vec<String>,
    nft: Nft,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for ns in &self.netns {
            let _ = netns::remove(ns);
        }
        // The kernel destroys the namespaces, and the veths in them, asynchronously: wait for the
        // bridges to empty so that no veth outlives the test.
        let deadline = Instant::now() + Duration::from_secs(10);
        for b in &self.bridges {
            while self.host.bridge_ports(b).is_ok_and(|p| !p.is_empty()) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
            let _ = self.host.remove_bridge(b);
        }
        for l in &self.links {
            let _ = Command::new("ip").args(["link", "del", l]).output();
        }
        let _ = self.nft.delete_table();
    }
}

struct Net {
    spec: NetworkSpec,
    subnet: SubnetConfig,
}

impl Net {
    fn gateway(&self) -> IpAddr {
        self.subnet.gateway()
    }
    fn addr(&self, host: u8) -> IpAddr {
        match self.subnet.subnet.network() {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) + u32::from(host))),
            IpAddr::V6(_) => unreachable!(),
        }
    }
}

impl Fixture {
    fn new() -> Fixture {
        require_root();
        Fixture {
            host: NetlinkHost,
            dir: tempfile::tempdir().expect("tempdir"),
            netns: vec![],
            bridges: vec![],
            links: vec![],
            nft: Nft::new(format!("berth_test_{}", unique())),
        }
    }

    /// A network with a fresh /24 from 10.160.0.0/11 that no route uses, with its bridge up.
    fn network(&mut self, internal: bool, firewall: bool) -> Net {
        self.network_with(internal, firewall, false)
    }

    /// The same, plus an IPv6 /64 from fdbe:7e57::/48 when `ipv6`.
    fn network_with(&mut self, internal: bool, firewall: bool, ipv6: bool) -> Net {
        let _held = SUBNETS.lock().unwrap_or_else(|e| e.into_inner());
        let routes = self.host.routed_subnets().expect("routes");
        let subnet = pick_subnet(&[Pool::new("10.160.0.0/11".parse().unwrap(), 24)], &routes).expect("free subnet");
        let name = IfName::new(format!("bt{}", unique())).unwrap();
        let mut spec = NetworkSpec::new(&format!("test_{name}"), &Default::default()).unwrap();
        spec.bridge = name.clone();
        spec.internal = internal;
        spec.enable_ipv6 = ipv6;
        let sub = SubnetConfig::new(subnet);
        spec.subnets = vec![sub.clone()];
        if ipv6 {
            let v6 = pick_subnet(&[Pool::new("fdbe:7e57::/48".parse().unwrap(), 64)], &routes).expect("free subnet");
            spec.subnets.push(SubnetConfig::new(v6));
        }
        self.bridges.push(name);
        let fw: Option<&dyn Firewall> = if firewall { Some(&self.nft) } else { None };
        assert!(ensure_network(&self.host, fw, &spec).expect("ensure network"), "bridge should be new");
        Net { spec, subnet: sub }
    }

    /// A link made with `ip link add NAME type KIND`, as a user or another tool would; deleted on
    /// drop. A veth gets a peer with a name of its own (this kernel has no dummy links).
    fn foreign_link(&mut self, name: &str, kind: &str) {
        self.links.push(name.to_string());
        let mut args = vec!["link".to_string(), "add".into(), name.into(), "type".into(), kind.into()];
        if kind == "veth" {
            let peer = format!("bp{}", unique());
            self.links.push(peer.clone());
            args.extend(["peer".into(), "name".into(), peer]);
        }
        let out = Command::new("ip").args(&args).output().expect("run ip");
        assert!(out.status.success(), "ip link add {name}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn new_netns(&mut self) -> PathBuf {
        let path = self.dir.path().join(format!("ns-{}", unique()));
        self.host.create_netns(&path).expect("create netns");
        self.netns.push(path.clone());
        path
    }

    /// A namespace attached to `net` as `eth0` with address `.host`, default route via the gateway.
    fn container(&mut self, net: &Net, host: u8) -> PathBuf {
        let ns = self.new_netns();
        self.attach(&ns, net, "eth0", host, true);
        ns
    }

    fn attach(&self, ns: &Path, net: &Net, ifname: &str, host: u8, default_route: bool) {
        let spec = AttachSpec {
            netns: ns.to_path_buf(),
            bridge: net.spec.bridge.clone(),
            ifname: IfName::new(ifname).unwrap(),
            addresses: vec![IpNet::new(net.addr(host), net.subnet.subnet.prefix_len()).unwrap()],
            mac: None,
            mtu: None,
            default_routes: if default_route { vec![net.gateway()] } else { vec![] },
        };
        self.host.attach(&spec).expect("attach");
    }
}

/// Runs `ip ARGS` inside a namespace with `nsenter --net=`.
fn ip_in(ns: &Path, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .arg("ip")
        .args(args)
        .output()
        .expect("run nsenter");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A TCP and UDP echo server inside a namespace, stopped and joined on drop.
struct Echo {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn echo_server(ns: &Path, addr: SocketAddr) -> Echo {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let (ns, flag) = (ns.to_path_buf(), stop.clone());
    let thread = thread::spawn(move || {
        netns::run_in(Some(&ns), move || {
            let tcp = TcpListener::bind(addr).expect("bind tcp echo");
            let udp = UdpSocket::bind(addr).expect("bind udp echo");
            tcp.set_nonblocking(true).unwrap();
            udp.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            tx.send(()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                if let Ok((mut s, _)) = tcp.accept() {
                    s.set_nonblocking(false).unwrap();
                    thread::spawn(move || {
                        let mut buf = [0u8; 65536];
                        while let Ok(n) = s.read(&mut buf) {
                            if n == 0 || s.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
                if let Ok((n, from)) = udp.recv_from(&mut buf) {
                    let _ = udp.send_to(&buf[..n], from);
                }
            }
        })
        .expect("enter namespace");
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("echo server up");
    Echo { stop, thread: Some(thread) }
}

/// Sends a line over TCP from the namespace `from` (the host when `None`) and returns the echo.
fn tcp_echo(from: Option<&Path>, to: SocketAddr) -> std::io::Result<String> {
    netns::run_in(from, move || {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(b"hello berth\n")?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
    .expect("enter namespace")
}

fn udp_echo(to: SocketAddr) -> std::io::Result<String> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.send_to(b"hello udp", to)?;
    let mut buf = [0u8; 64];
    let (n, _) = s.recv_from(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn two_namespaces_on_one_bridge_talk_over_tcp() {
    let mut f = Fixture::new();
    let net = f.network(false, false);
    let a = f.container(&net, 2);
    let b = f.container(&net, 3);
    let addrs = ip_in(&a, &["-o", "addr", "show", "eth0"]);
    assert!(addrs.contains(&format!("inet {}/24", net.addr(2))), "{addrs}");
    assert!(ip_in(&a, &["-o", "link", "show", "lo"]).contains("UP"), "loopback is up");
    let routes = ip_in(&a, &["route"]);
    assert!(routes.contains(&format!("default via {} dev eth0", net.gateway())), "{routes}");
    let ports = f.host.bridge_ports(&net.spec.bridge).unwrap();
    assert_eq!(ports.len(), 2, "{ports:?}");

    let _echo = echo_server(&a, SocketAddr::new(net.addr(2), 7000));
    assert_eq!(tcp_echo(Some(&b), SocketAddr::new(net.addr(2), 7000)).unwrap(), "hello berth\n");
    // The host reaches the container through the bridge too.
    assert_eq!(tcp_echo(None, SocketAddr::new(net.addr(2), 7000)).unwrap(), "hello berth\n");
}

#[test]
fn one_namespace_on_two_networks_gets_eth0_and_eth1_and_a_mac() {
    let mut f = Fixture::new();
    let front = f.network(false, false);
    let back = f.network(false, false);
    let ns = f.new_netns();
    f.attach(&ns, &front, "eth0", 5, true);
    let spec = AttachSpec {
        netns: ns.clone(),
        bridge: back.spec.bridge.clone(),
        ifname: IfName::new("eth1").unwrap(),
        addresses: vec![IpNet::new(back.addr(5), 24).unwrap()],
        mac: Some([0x02, 0x42, 0xac, 0x11, 0x00, 0x05]),
        mtu: Some(1400),
        default_routes: vec![],
    };
    f.host.attach(&spec).unwrap();
    let eth1 = ip_in(&ns, &["-o", "link", "show", "eth1"]);
    assert!(eth1.contains("02:42:ac:11:00:05") && eth1.contains("mtu 1400"), "{eth1}");
    let routes = ip_in(&ns, &["route"]);
    assert!(routes.contains(&format!("default via {} dev eth0", front.gateway())), "{routes}");
    assert!(!routes.contains(&format!("default via {}", back.gateway())), "{routes}");
    let peer_front = f.container(&front, 6);
    let peer_back = f.container(&back, 6);
    let _echo = echo_server(&ns, SocketAddr::new("0.0.0.0".parse().unwrap(), 7001));
    tcp_echo(Some(&peer_front), SocketAddr::new(front.addr(5), 7001)).expect("front reaches eth0");
    tcp_echo(Some(&peer_back), SocketAddr::new(back.addr(5), 7001)).expect("back reaches eth1");
    // Detaching removes the interface and its host end.
    f.host.detach(&ns, &IfName::new("eth1").unwrap()).unwrap();
    assert!(!ip_in(&ns, &["-o", "link"]).contains("eth1"));
    assert_eq!(f.host.bridge_ports(&back.spec.bridge).unwrap().len(), 1);
}

#[test]
fn networks_cannot_reach_each_other_and_the_rules_are_what_stops_them() {
    let mut f = Fixture::new();
    let one = f.network(false, true);
    let two = f.network(false, true);
    let a = f.container(&one, 2);
    let b = f.container(&two, 2);
    let _echo = echo_server(&a, SocketAddr::new(one.addr(2), 7002));
    let target = SocketAddr::new(one.addr(2), 7002);
    assert!(tcp_echo(Some(&b), target).is_err(), "network two reached network one");
    // Same bridge still works.
    let a2 = f.container(&one, 3);
    assert!(tcp_echo(Some(&a2), target).is_ok());
    // Without berth's rules the host would route between the bridges (forwarding is on).
    f.nft.remove(&one.spec.firewall_owner()).unwrap();
    f.nft.remove(&two.spec.firewall_owner()).unwrap();
    assert!(tcp_echo(Some(&b), target).is_ok(), "routing between bridges should work without the rules");
}

#[test]
fn an_internal_network_has_no_way_out() {
    let mut f = Fixture::new();
    let internal = f.network(true, true);
    let open = f.network(false, true);
    let inside = f.container(&internal, 2);
    let inside2 = f.container(&internal, 3);
    let outside = f.container(&open, 2);
    let _echo_out = echo_server(&outside, SocketAddr::new(open.addr(2), 7003));
    let _echo_in = echo_server(&inside2, SocketAddr::new(internal.addr(3), 7003));
    assert!(tcp_echo(Some(&inside), SocketAddr::new(open.addr(2), 7003)).is_err(), "internal got out");
    assert!(tcp_echo(Some(&outside), SocketAddr::new(internal.addr(3), 7003)).is_err(), "got into internal");
    assert!(tcp_echo(Some(&inside), SocketAddr::new(internal.addr(3), 7003)).is_ok(), "same internal network");
    let rules = f.nft.list().unwrap();
    let owner = internal.spec.firewall_owner();
    assert!(rules.iter().any(|(c, _, o)| c == "forward" && *o == owner));
    assert!(!rules.iter().any(|(c, _, o)| c == "postrouting" && *o == owner), "internal networks get no masquerade");
}

fn nft_text(table: &str) -> String {
    let out = Command::new("nft").args(["list", "table", "inet", table]).output().expect("run nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn masquerade_and_dnat_rules_exist_and_are_removed() {
    let mut f = Fixture::new();
    let net = f.network(false, true);
    let text = nft_text(f.nft.table());
    let subnet = net.subnet.subnet.to_string();
    assert!(text.contains(&format!("ip saddr {subnet} oifname != \"{}\" masquerade", net.spec.bridge)), "{text}");
    // Scoped to the bridge address, so the rule can never catch anyone else's traffic.
    let port = PortRule {
        proto: Proto::Tcp,
        host_ip: Some(net.gateway()),
        host_port: 18080,
        container_ip: net.addr(2),
        container_port: 80,
    };
    f.nft.apply("ports:test", &[Rule::Dnat(port)]).unwrap();
    let text = nft_text(f.nft.table());
    assert!(text.contains(&format!("tcp dport 18080 dnat ip to {}:80", net.addr(2))), "{text}");
    // Applying again replaces, never duplicates.
    f.nft.apply("ports:test", &[]).unwrap();
    f.nft.apply("ports:test", &[Rule::Dnat(port_rule(&net))]).unwrap();
    assert_eq!(f.nft.list().unwrap().iter().filter(|r| r.2 == "ports:test").count(), 2);
    f.nft.remove("ports:test").unwrap();
    assert!(!nft_text(f.nft.table()).contains("dnat ip to"));
    // Removing the network removes its rules and its bridge.
    assert!(remove_network_if_unused(&f.host, Some(&f.nft), &net.spec).unwrap());
    assert!(!nft_text(f.nft.table()).contains("masquerade"));
    assert!(!f.host.bridge_exists(&net.spec.bridge).unwrap());
    f.nft.delete_table().unwrap();
    let tables = Command::new("nft").args(["list", "tables"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&tables.stdout).contains(f.nft.table()));
}

fn port_rule(net: &Net) -> PortRule {
    PortRule {
        proto: Proto::Tcp,
        host_ip: Some(net.gateway()),
        host_port: 18081,
        container_ip: net.addr(2),
        container_port: 80,
    }
}

#[test]
fn a_bridge_in_use_is_not_removed() {
    let mut f = Fixture::new();
    let net = f.network(false, false);
    let ns = f.container(&net, 2);
    assert!(!remove_network_if_unused(&f.host, None, &net.spec).unwrap());
    assert!(f.host.bridge_exists(&net.spec.bridge).unwrap());
    // Teardown order: detach (synchronous), then remove the namespace, then the network.
    f.host.detach(&ns, &IfName::new("eth0").unwrap()).unwrap();
    assert!(f.host.bridge_ports(&net.spec.bridge).unwrap().is_empty());
    netns::remove(&ns).unwrap();
    assert!(!ns.exists());
    assert!(remove_network_if_unused(&f.host, None, &net.spec).unwrap());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(ns.to_str().unwrap()), "namespace still mounted");
}

#[test]
fn removing_a_namespace_removes_its_veths_soon_after() {
    let mut f = Fixture::new();
    let net = f.network(false, false);
    let ns = f.container(&net, 2);
    netns::remove(&ns).unwrap();
    // The kernel destroys an unreferenced namespace (and the veths in it) asynchronously.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f.host.bridge_ports(&net.spec.bridge).unwrap().is_empty() {
        assert!(Instant::now() < deadline, "veth still plugged into the bridge");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_bare_namespace_has_loopback_up_and_nothing_else() {
    let mut f = Fixture::new();
    let ns = f.new_netns();
    let links = ip_in(&ns, &["-o", "link"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    let _echo = echo_server(&ns, "127.0.0.1:7007".parse().unwrap());
    assert!(tcp_echo(Some(&ns), "127.0.0.1:7007".parse().unwrap()).is_ok());
}

#[test]
fn a_missing_external_network_is_a_clear_error() {
    require_root();
    let mut spec = NetworkSpec::new("test_ext", &Default::default()).unwrap();
    spec.bridge = IfName::new(format!("bx{}", unique())).unwrap();
    spec.external = true;
    let err = ensure_network(&NetlinkHost, None, &spec).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("external network `{}` not found: no bridge with that name exists", spec.bridge)
    );
}

fn link_exists(name: &str) -> bool {
    Command::new("ip").args(["link", "show", name]).output().expect("run ip").status.success()
}

#[test]
fn a_link_that_is_not_a_bridge_is_refused_and_left_alone() {
    let mut f = Fixture::new();
    let name = format!("bd{}", unique());
    f.foreign_link(&name, "veth");
    let opts = [("com.docker.network.bridge.name".to_string(), name.clone())].into();
    let mut spec = NetworkSpec::new("test_notabridge", &opts).unwrap();
    let err = ensure_network(&f.host, None, &spec).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("link `{name}` exists but is not a bridge (kind `veth`): berth networks only use bridges")
    );
    assert!(matches!(remove_network_if_unused(&f.host, None, &spec), Err(Error::NotABridge { .. })));
    spec.external = true;
    assert!(matches!(ensure_network(&f.host, None, &spec), Err(Error::NotABridge { .. })));
    assert!(link_exists(&name), "the veth is untouched");
}

#[test]
fn a_bridge_berth_did_not_create_is_used_but_never_deleted() {
    let mut f = Fixture::new();
    let name = format!("bf{}", unique());
    f.foreign_link(&name, "bridge");
    let opts = [("com.docker.network.bridge.name".to_string(), name.clone())].into();
    let spec = NetworkSpec::new("test_foreign", &opts).unwrap();
    assert!(!ensure_network(&f.host, None, &spec).unwrap(), "adopted, not created");
    assert!(!remove_network_if_unused(&f.host, None, &spec).unwrap());
    assert!(link_exists(&name), "someone else's bridge was deleted");
    // A bridge berth creates carries the mark, and so is removed.
    let net = f.network(false, false);
    let shown = Command::new("ip").args(["-d", "link", "show", net.spec.bridge.as_str()]).output().unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains(&format!("alias {BRIDGE_ALIAS}")));
    assert!(remove_network_if_unused(&f.host, None, &net.spec).unwrap());
    assert!(!link_exists(net.spec.bridge.as_str()));
}

#[test]
fn a_leftover_peer_from_an_interrupted_attach_is_cleaned_up() {
    let mut f = Fixture::new();
    let net = f.network(false, false);
    let ns = f.new_netns();
    // A crash between creating the pair and moving the peer can leave the peer behind on the host.
    let peer = peer_veth_name(&ns.to_string_lossy(), "eth0");
    f.foreign_link(peer.as_str(), "veth");
    f.attach(&ns, &net, "eth0", 2, true);
    assert!(ip_in(&ns, &["-o", "addr", "show", "eth0"]).contains(&format!("inet {}/24", net.addr(2))));
    assert!(!link_exists(peer.as_str()), "the leftover is gone from the host");
}

#[test]
fn dns_server_on_the_gateway_answers_inside_a_namespace() {
    let mut f = Fixture::new();
    let net = f.network(false, false);
    let other = f.network(false, false);
    let web = f.container(&net, 2);
    let _db = f.container(&net, 3);
    let stranger = f.container(&other, 2);
    let c = |name: &str, service: &str, net_name: &str, addr: IpAddr, aliases: &[&str]| DnsContainer {
        name: name.into(),
        service: Some(service.into()),
        endpoints: vec![DnsEndpoint {
            network: net_name.into(),
            addrs: vec![addr],
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            internal: false,
        }],
        ..Default::default()
    };
    let table = DnsTable::build(&[
        c("p-web-1", "web", "n", net.addr(2), &[]),
        c("p-db-1", "db", "n", net.addr(3), &["database"]),
        c("q-x-1", "x", "o", other.addr(2), &[]),
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(DnsServer::start(DnsConfig::new(vec![net.gateway(), other.gateway()], vec![]), table))
        .expect("DNS server on the gateways");
    let ask = |ns: &Path, gw: IpAddr, name: &str| -> Vec<IpAddr> {
        let name = name.to_string();
        netns::run_in(Some(ns), move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let r = common::resolver(SocketAddr::new(gw, 53), false);
                r.lookup_ip(name.as_str()).await.map(|l| l.iter().collect()).unwrap_or_default()
            })
        })
        .unwrap()
    };
    assert_eq!(ask(&web, net.gateway(), "db."), [net.addr(3)]);
    assert_eq!(ask(&web, net.gateway(), "p-db-1."), [net.addr(3)]);
    assert_eq!(ask(&web, net.gateway(), "database."), [net.addr(3)]);
    // A container of another network sees none of these names.
    assert!(ask(&stranger, other.gateway(), "db.").is_empty());
    assert_eq!(ask(&stranger, other.gateway(), "x."), [other.addr(2)]);
    rt.block_on(server.stop());
}

#[test]
fn dual_stack_containers_talk_over_ipv6_and_resolve_aaaa() {
    let mut f = Fixture::new();
    let net = f.network_with(false, true, true);
    let v6 = net.spec.subnets[1].clone();
    let v6_addr = |n: u128| match v6.subnet.network() {
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) + n).into()),
        IpAddr::V4(_) => unreachable!(),
    };
    let mut make = |host: u8| {
        let ns = f.new_netns();
        let spec = AttachSpec {
            netns: ns.clone(),
            bridge: net.spec.bridge.clone(),
            ifname: IfName::new("eth0").unwrap(),
            addresses: vec![
                IpNet::new(net.addr(host), 24).unwrap(),
                IpNet::new(v6_addr(u128::from(host)), 64).unwrap(),
            ],
            mac: None,
            mtu: None,
            default_routes: vec![net.gateway(), v6.gateway()],
        };
        f.host.attach(&spec).unwrap();
        ns
    };
    let a = make(2);
    let b = make(3);
    let routes = ip_in(&a, &["-6", "route"]);
    assert!(routes.contains(&format!("default via {} dev eth0", v6.gateway())), "{routes}");
    let _echo = echo_server(&a, SocketAddr::new(v6_addr(2), 7006));
    assert_eq!(tcp_echo(Some(&b), SocketAddr::new(v6_addr(2), 7006)).unwrap(), "hello berth\n");
    let masq = nft_text(f.nft.table());
    assert!(masq.contains(&format!("ip6 saddr {} oifname", v6.subnet)), "{masq}");

    // The DNS server listens on the IPv6 gateway right away (no DAD delay) and answers AAAA.
    let table = DnsTable::build(&[
        DnsContainer {
            name: "p-a-1".into(),
            service: Some("a".into()),
            endpoints: vec![DnsEndpoint {
                network: "n".into(),
                addrs: vec![net.addr(2), v6_addr(2)],
                aliases: vec![],
                internal: false,
            }],
            ..Default::default()
        },
        DnsContainer {
            name: "p-b-1".into(),
            service: Some("b".into()),
            endpoints: vec![DnsEndpoint {
                network: "n".into(),
                addrs: vec![net.addr(3), v6_addr(3)],
                aliases: vec![],
                internal: false,
            }],
            ..Default::default()
        },
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server =
        rt.block_on(DnsServer::start(DnsConfig::new(vec![v6.gateway()], vec![]), table)).expect("bind v6 gateway");
    let gw = v6.gateway();
    let got: Vec<IpAddr> = netns::run_in(Some(&b), move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let r = common::resolver(SocketAddr::new(gw, 53), true);
            r.lookup_ip("a.").await.map(|l| l.iter().collect()).unwrap_or_default()
        })
    })
    .unwrap();
    let mut got = got;
    got.sort();
    assert_eq!(got, [net.addr(2), v6_addr(2)]);
    rt.block_on(server.stop());
}

#[test]
fn the_port_proxy_reaches_a_container_from_loopback() {
    let mut f = Fixture::new();
    let net = f.network(false, false);
    let ns = f.container(&net, 2);
    let _echo = echo_server(&ns, SocketAddr::new(net.addr(2), 7004));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let map = |proto| PortMapping {
        proto,
        host_ip: "127.0.0.1".parse().unwrap(),
        host_port: 0,
        container_ip: net.addr(2),
        container_port: 7004,
    };
    let proxy = rt.block_on(PortProxy::start(&[map(Proto::Tcp), map(Proto::Udp)])).unwrap();
    let tcp = proxy.bound()[0];
    let udp = proxy.bound()[1];
    assert_ne!(tcp.host_port, 0, "random port reported");
    assert_eq!(tcp_echo(None, SocketAddr::new(tcp.host_ip, tcp.host_port)).unwrap(), "hello berth\n");
    assert_eq!(udp_echo(SocketAddr::new(udp.host_ip, udp.host_port)).unwrap(), "hello udp");
    // A port in use is refused, naming it, and nothing stays bound.
    let taken = PortMapping { host_port: tcp.host_port, ..map(Proto::Tcp) };
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let free_port = free.local_addr().unwrap().port();
    drop(free);
    let first = PortMapping { host_port: free_port, ..map(Proto::Tcp) };
    let err = rt.block_on(PortProxy::start(&[first, taken])).err().expect("port in use");
    assert!(err.to_string().starts_with(&format!("port tcp 127.0.0.1:{} is not available", tcp.host_port)), "{err}");
    assert!(TcpListener::bind(("127.0.0.1", free_port)).is_ok(), "the first port was released");
    rt.block_on(proxy.stop());
    assert!(TcpStream::connect(SocketAddr::new(tcp.host_ip, tcp.host_port)).is_err(), "proxy stopped");
}

#[test]
fn dnat_reaches_a_container_through_a_host_address() {
    let mut f = Fixture::new();
    let net = f.network(false, true);
    let ns = f.container(&net, 2);
    let _echo = echo_server(&ns, SocketAddr::new(net.addr(2), 7005));
    // Published on the bridge's own (host-local, non-loopback) address: the output chain DNATs it.
    let rule = PortRule {
        proto: Proto::Tcp,
        host_ip: Some(net.gateway()),
        host_port: 17005,
        container_ip: net.addr(2),
        container_port: 7005,
    };
    f.nft.apply("ports:dnat-test", &[Rule::Dnat(rule)]).unwrap();
    assert_eq!(tcp_echo(None, SocketAddr::new(net.gateway(), 17005)).unwrap(), "hello berth\n");
    // A neighbour on the same bridge gets there through the host address too (hairpin masquerade),
    // and so does a container of another network (published ports are exempt from isolation).
    let neighbour = f.container(&net, 3);
    assert_eq!(tcp_echo(Some(&neighbour), SocketAddr::new(net.gateway(), 17005)).unwrap(), "hello berth\n");
    let other = f.network(false, true);
    let stranger = f.container(&other, 2);
    assert_eq!(tcp_echo(Some(&stranger), SocketAddr::new(net.gateway(), 17005)).unwrap(), "hello berth\n");
    assert!(tcp_echo(Some(&stranger), SocketAddr::new(net.addr(2), 7005)).is_err(), "isolation still holds");
    f.nft.remove("ports:dnat-test").unwrap();
    assert!(tcp_echo(None, SocketAddr::new(net.gateway(), 17005)).is_err(), "rule removed");
}
