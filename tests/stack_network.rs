//! System test (root): a compose project's networks on the real host — two services' namespaces
//! attached to a bridge with leased addresses talk over TCP, an internal network, and teardown
//! leaves no bridge, namespace or lease behind. Traffic stays inside the test's namespaces.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;

use berth::stack::networking::Networking;
use berth::state::{DbLeases, StateDb};
use berth_compose::env::Environment;
use berth_compose::{load, LoadOptions, Project};
use berth_network::nat::{Firewall, Nft};
use berth_network::netns::run_in;
use berth_network::network::NetworkSpec;
use berth_network::{Host, NetlinkHost};

fn project(name: &str) -> Project {
    let yaml = format!(
        "name: {name}\nservices:\n  app:\n    image: busybox\n    networks: [front]\n  db:\n    image: busybox\n    networks: [front, back]\n\
         networks:\n  front:\n  back:\n    internal: true\n"
    );
    let opts = LoadOptions {
        files: vec!["-".into()],
        stdin: Some(yaml),
        cwd: std::env::temp_dir(),
        shell: Environment::default(),
        ..LoadOptions::default()
    };
    load(&opts).expect("valid").project
}

/// Takes everything down even when an assertion failed.
struct Teardown<'a> {
    host: &'a NetlinkHost,
    nft: Option<Nft>,
    specs: BTreeMap<String, NetworkSpec>,
    netns: Vec<std::path::PathBuf>,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        for ns in &self.netns {
            let _ = self.host.remove_netns(ns);
        }
        for spec in self.specs.values() {
            let _ = self.host.remove_bridge(&spec.bridge);
        }
        if let Some(nft) = &self.nft {
            let _ = nft.delete_table();
        }
    }
}

#[test]
fn project_networks_attach_talk_and_go_away() {
    assert!(nix::unistd::geteuid().is_root(), "this test creates bridges and namespaces and must run as root");
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("bt{}", std::process::id());
    let p = project(&name);
    let host = NetlinkHost;
    let nft = Nft::available().then(|| Nft::new(format!("berth_test_{}", std::process::id())));
    let state = StateDb::open(tmp.path()).unwrap();
    let mut leases = DbLeases(&state);
    let fw = nft.as_ref().map(|n| n as &dyn Firewall);
    let mut net = Networking { host: &host, firewall: fw, networks: &state, leases: &mut leases };
    let specs = net.ensure(&p, &["back".into(), "front".into()]).unwrap();
    let mut guard = Teardown { host: &host, nft: None, specs: specs.clone(), netns: Vec::new() };
    guard.nft = Nft::available().then(|| Nft::new(format!("berth_test_{}", std::process::id())));

    let app_ns = tmp.path().join("app.netns");
    let db_ns = tmp.path().join("db.netns");
    guard.netns.extend([app_ns.clone(), db_ns.clone()]);
    let app = net.attach(&p, &p.services["app"], &format!("{name}-app-1"), &specs, &app_ns).unwrap();
    let db = net.attach(&p, &p.services["db"], &format!("{name}-db-1"), &specs, &db_ns).unwrap();
    assert_eq!(db.addrs.len(), 2, "db is on two networks");

    // db listens on its front address; app connects from its own namespace.
    let db_front = db.addrs["front"][0];
    let listener = run_in(Some(&db_ns), move || TcpListener::bind(SocketAddr::new(db_front, 5432)).unwrap()).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(b"pong!").unwrap();
    });
    let reply = run_in(Some(&app_ns), move || {
        let mut s =
            TcpStream::connect_timeout(&SocketAddr::new(db_front, 5432), std::time::Duration::from_secs(5)).unwrap();
        s.write_all(b"ping!").unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        buf
    })
    .unwrap();
    assert_eq!(&reply, b"pong!");
    server.join().unwrap();
    // Docker's resolver address, led to the first network's gateway inside the namespace.
    assert!(app.resolv_conf.contains("nameserver 127.0.0.11"), "{}", app.resolv_conf);
    let nat = std::process::Command::new("nsenter")
        .arg(format!("--net={}", app_ns.display()))
        .args(["nft", "list", "table", "ip", "berth_dns"])
        .output()
        .unwrap();
    let nat = String::from_utf8_lossy(&nat.stdout);
    assert!(nat.contains(&format!("dnat to {}:53", specs["front"].subnets[0].gateway())), "{nat}");

    // The db's default route is not through the internal network.
    let routes = std::process::Command::new("nsenter")
        .arg(format!("--net={}", db_ns.display()))
        .args(["ip", "route"])
        .output()
        .unwrap();
    let routes = String::from_utf8_lossy(&routes.stdout);
    let default = routes.lines().find(|l| l.starts_with("default")).unwrap_or_default().to_string();
    assert!(default.contains(&specs["front"].subnets[0].gateway().to_string()), "{routes}");

    net.detach(&p, &p.services["app"], &format!("{name}-app-1"), &specs, &app_ns).unwrap();
    net.detach(&p, &p.services["db"], &format!("{name}-db-1"), &specs, &db_ns).unwrap();
    // Namespace teardown is asynchronous in the kernel: wait for the bridges to empty.
    for spec in specs.values() {
        for _ in 0..100 {
            if host.bridge_ports(&spec.bridge).unwrap_or_default().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(net.remove(spec).unwrap(), "{} removed", spec.name);
        assert!(!host.bridge_exists(&spec.bridge).unwrap());
    }
    assert!(!Path::new(&app_ns).exists() && !Path::new(&db_ns).exists());
    let left = state.all_leases().unwrap();
    assert!(left.iter().all(|l| !l.owner.contains(&name)), "leases released: {left:?}");
    assert!(state.networks().unwrap().is_empty(), "networks forgotten: {:?}", state.networks().unwrap());
}
