//! System tests (root) of networks through `berth up` and `berth network`: a service on two
//! networks (one `internal`) with a static address, a service sharing another's namespace
//! (`network_mode: service:`), names scoped to shared networks, two projects that cannot reach
//! each other, and `network ls/inspect/rm/prune`. Traffic stays between the tests' containers.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

const SERVICES: &str = r#"  api:
    image: berth-test/busybox:latest
    command: [sh, -c, "mkdir -p /www && echo api > /www/index.html && exec httpd -f -p 80 -h /www"]
    networks:
      front:
      back:
        ipv4_address: 10.231.7.10
  store:
    image: berth-test/busybox:latest
    command: [sleep, "300"]
    init: true
    networks: [back]
  sidecar:
    image: berth-test/busybox:latest
    command: [sleep, "300"]
    init: true
    network_mode: service:api
  edge:
    image: berth-test/busybox:latest
    command: [sleep, "300"]
    init: true
    networks: [front]
networks:
  front:
  back:
    internal: true
    ipam:
      config:
        - subnet: 10.231.7.0/24
"#;

fn wget(p: &harness::Project, from: &str, url: &str) -> Option<String> {
    let out = p.berth(&["exec", "-T", from, "timeout", "3", "wget", "-q", "-O-", url]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn network_ls(p: &harness::Project) -> Vec<serde_json::Value> {
    p.ok(&["network", "ls", "--format", "json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn networks_scope_names_and_traffic_and_the_network_commands_manage_them() {
    let p = harness::Project::new("netcli", SERVICES);
    // A second project under the same state root (as two projects on one host).
    let other_name = format!("{}o", p.name);
    std::fs::write(
        p.dir.path().join("other.yaml"),
        "services:\n  peer:\n    image: berth-test/busybox:latest\n    command: [sleep, \"300\"]\n    init: true\n",
    )
    .unwrap();
    let other = |args: &[&str]| {
        let mut full = vec!["-p", other_name.as_str(), "-f", "other.yaml"];
        full.extend_from_slice(args);
        p.cmd(&full).output().unwrap()
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.ok(&["up", "-d"]);
        // Static address on the internal network; reachable from its neighbour there.
        assert_eq!(wget(&p, "store", "http://10.231.7.10/").as_deref(), Some("api\n"));
        assert_eq!(wget(&p, "store", "http://api/").as_deref(), Some("api\n"), "by name on back");
        assert_eq!(wget(&p, "edge", "http://api/").as_deref(), Some("api\n"), "by name on front");
        // edge is not on back: store's name does not resolve for it, nor its address answer.
        let out = p.berth(&["exec", "-T", "edge", "nslookup", "store"]);
        assert!(!String::from_utf8_lossy(&out.stdout).contains("10.231.7."), "store is not edge's to see");
        assert!(wget(&p, "edge", "http://10.231.7.10/").is_none(), "front cannot reach back");
        // The sidecar shares api's namespace: api's server is on its loopback.
        assert_eq!(wget(&p, "sidecar", "http://127.0.0.1/").as_deref(), Some("api\n"));

        // Another project cannot reach this one's containers.
        assert!(other(&["up", "-d"]).status.success());
        let api_front = p.ok(&["exec", "-T", "api", "ip", "-4", "-o", "addr", "show", "eth0"]);
        let api_front = api_front
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let out = other(&["exec", "-T", "peer", "timeout", "3", "wget", "-q", "-O-", &format!("http://{api_front}/")]);
        assert!(!out.status.success(), "projects are isolated");
        let out = other(&["exec", "-T", "peer", "nslookup", "api"]);
        assert!(!String::from_utf8_lossy(&out.stdout).contains(&api_front), "no names across projects");

        // The network commands.
        let front = format!("{}_front", p.name);
        let back = format!("{}_back", p.name);
        let nets = network_ls(&p);
        let b = nets.iter().find(|n| n["Name"] == back.as_str()).expect("back listed");
        assert_eq!(b["Internal"], true);
        assert_eq!(b["IPAM"]["Config"][0]["Subnet"], "10.231.7.0/24");
        assert_eq!(b["Containers"][format!("{}-api-1", p.name)]["Addresses"][0], "10.231.7.10");
        let inspect: serde_json::Value = serde_json::from_str(&p.ok(&["network", "inspect", &front])).unwrap();
        assert_eq!(inspect[0]["Containers"].as_object().unwrap().len(), 2, "api and edge on front");
        let rm = p.berth(&["network", "rm", &front]);
        assert_eq!(rm.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&rm.stderr).contains("in use"), "{}", String::from_utf8_lossy(&rm.stderr));
        let missing = p.berth(&["network", "inspect", "nosuchnet"]);
        assert_eq!(missing.status.code(), Some(1));

        // Without containers, rm and prune remove them.
        p.ok(&["rm", "--force", "--stop"]);
        // A lease whose container is gone (as an interrupted removal of an older berth left
        // one) does not keep the network in use.
        let ghost = format!("{}-ghost-1", p.name);
        let lease = berth_network::ipam::Lease {
            network: front.clone(),
            owner: ghost.clone(),
            addr: "10.231.8.9".parse().unwrap(),
        };
        berth::state::StateDb::open(p.root.path()).unwrap().put_lease(&lease).unwrap();
        let f = network_ls(&p).into_iter().find(|n| n["Name"] == front.as_str()).expect("front listed");
        assert!(f["Containers"].get(&ghost).is_some(), "listed as it is: {f}");
        p.ok(&["network", "rm", &front]);
        assert!(p.leases_of(&ghost).is_empty());
        assert!(!network_ls(&p).iter().any(|n| n["Name"] == front.as_str()));
        let pruned = p.ok(&["network", "prune"]);
        assert!(pruned.contains(&back), "{pruned}");
        assert!(!network_ls(&p).iter().any(|n| n["Name"] == back.as_str()));
    }));
    let _ = other(&["down"]);
    let down = p.berth(&["down"]);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(down.status.success(), "{}", String::from_utf8_lossy(&down.stderr));
    p.assert_clean();
    assert!(String::from_utf8_lossy(&other(&["ps", "-a", "-q"]).stdout).trim().is_empty());
}
