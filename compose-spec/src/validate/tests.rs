use std::path::Path;

fn load(yaml: &str) -> crate::Result<crate::Loaded> {
    crate::load_str(&format!("name: t\n{yaml}"), Path::new("/nonexistent"))
}

/// The error's `line:col: path` and message.
fn error(yaml: &str) -> (String, String) {
    let e = load(yaml).expect_err("should be refused");
    let span = e.span.as_ref().map(|s| format!("{}:{}", s.line, s.col)).unwrap_or_default();
    (format!("{span}: {}", e.path.clone().unwrap_or_default()), e.message)
}

#[test]
fn values_compose_accepts_load() {
    let yaml = r#"
services:
  web.1:
    image: busybox
    container_name: my-web_1.x
    hostname: web-1
    domainname: example.com
    user: "1000:1000"
    group_add: [audio, "4242"]
    working_dir: /app
    ports: ["0:80", "127.0.0.1:8000-8999:8000-8999", "[::1]:53:53/udp", {target: 443, published: "9000-9010"}]
    ulimits:
      memlock: {soft: -1, hard: -1}
      nofile: {soft: 1024, hard: -1}
      nproc: 512
    extra_hosts: ["a:1.2.3.4", "b=::1", "c:[fe80::1]", "d=host-gateway", "e:::1"]
    memswap_limit: -1
    mem_limit: 8388607t
    pids_limit: -1
    cpus: 0
    cpuset: "0-3,5"
    cpu_shares: 512
    cpu_period: 100000
    cpu_quota: -1
    oom_score_adj: -1000
    mem_swappiness: -1
    blkio_config: {weight: 0, weight_device: [{path: /dev/sda, weight: 1000}]}
    dns: [8.8.8.8, "2001:4860:4860::8888"]
    mac_address: 02:42:ac:11:65:43
    stop_signal: sigquit
    sysctls: {net.core.somaxconn: 1024, net/ipv4/conf/eth0.1/forwarding: 1}
    tmpfs: ["/run:size=64m"]
    secrets: [{source: token, target: token.txt, uid: "1000", gid: "0"}]
    networks:
      back: {ipv4_address: 172.28.5.1, ipv6_address: "2001:db8::5", interface_name: eth1, mac_address: 02-42-ac-11-65-44}
    deploy: {replicas: 1, resources: {limits: {cpus: "0.5", memory: 1g, pids: 0}}}
  many:
    image: busybox
    scale: 1000
networks:
  back:
    name: corp.net_back-1
    ipam:
      config:
        - {subnet: 172.28.0.0/16, ip_range: 172.28.5.0/24, gateway: 172.28.5.254, aux_addresses: {h: 172.28.1.5}}
        - {subnet: "2001:db8::/64", gateway: "2001:db8::1"}
volumes:
  data: {external: true, name: my.vol-1}
secrets:
  token: {environment: HOME, name: team.token}
"#;
    load(yaml).unwrap();
}

#[test]
fn errors_point_at_the_value() {
    let svc = |body: &str| format!("services:\n  web:\n    image: busybox\n{body}");
    let cases = [
        ("    container_name: a/b\n", "5:21: services.web.container_name", "invalid container name"),
        ("    user: \"-1:-1\"\n", "5:11: services.web.user", "user id -1 is out of range"),
        ("    ports: [\"80\", \"8080:0\"]\n", "5:19: services.web.ports[1].target", "container port 0"),
        ("    extra_hosts: [\"foo:not-ip\"]\n", "5:19: services.web.extra_hosts[0]", "is not an IP address"),
        ("    ulimits: {nofile: {soft: 10}}\n", "5:23: services.web.ulimits.nofile", "needs both"),
        ("    ulimits: {nofile: {soft: -1, hard: 10}}\n", "5:23: services.web.ulimits.nofile", "above hard"),
        ("    cpus: -2\n", "5:11: services.web.cpus", "from 0 up"),
        ("    pids_limit: -5\n", "5:17: services.web.pids_limit", "or 0 or -1"),
        ("    mem_reservation: -1\n", "5:22: services.web.mem_reservation", "must not be negative"),
        ("    stop_signal: SIGRTMIN\n", "5:18: services.web.stop_signal", "invalid signal"),
        ("    environment: {GREETING: \"a\\0b\"}\n", "5:29: services.web.environment.GREETING", "NUL"),
        ("    labels: [\"a\\0=b\"]\n", "5:14: services.web.labels.a\\0", "NUL"),
        ("    deploy: {replicas: 1001}\n", "5:24: services.web.deploy.replicas", "at most 1000"),
        (
            "    networks: {default: {ipv6_address: 10.0.0.1}}\n",
            "5:40: services.web.networks.default.ipv6_address",
            "IPv6",
        ),
    ];
    for (body, at, msg) in cases {
        let (where_, message) = error(&svc(body));
        assert_eq!(where_, at, "{body}: {message}");
        assert!(message.contains(msg), "{body}: {message}");
    }
}

#[test]
fn resource_names_and_subnets() {
    let (at, m) = error("services:\n  web: {image: busybox}\nnetworks:\n  n:\n    name: ..\n");
    assert_eq!(at, "6:11: networks.n.name");
    assert!(m.contains("invalid network name"), "{m}");
    let (at, m) = error("services:\n  web: {image: busybox}\nvolumes:\n  \"a/b\": {}\n");
    assert_eq!(at, "5:3: volumes.a/b");
    assert!(m.contains("invalid volume name"), "{m}");
    let (at, m) = error("services:\n  web: {image: busybox}\nvolumes:\n  v: {external: true}\n");
    assert_eq!(at, "5:3: volumes.v", "a derived name is blamed on the key");
    assert!(m.contains("at least two characters"), "{m}");
    let net = |pool: &str| {
        format!("services:\n  web: {{image: busybox}}\nnetworks:\n  n:\n    ipam:\n      config:\n        - {pool}\n")
    };
    for (pool, msg) in [
        ("{subnet: 300.1.1.0/24}", "is not an IPv4 or IPv6 address"),
        ("{subnet: 0.0.0.0/0}", "all of the IPv4 address space"),
        ("{subnet: 10.0.0.0/4}", "/8 or longer"),
        ("{subnet: 10.0.0.0/8, gateway: 11.0.0.1}", "not inside the subnet"),
        ("{subnet: 10.0.0.0/8, gateway: \"::1\"}", "not inside the subnet"),
        ("{subnet: 10.0.0.0/8, ip_range: 10.0.0.0/7}", "not inside the subnet"),
        ("{subnet: 10.0.0.0/8, aux_addresses: {a: x}}", "invalid aux address"),
    ] {
        let (at, m) = error(&net(pool));
        assert!(at.starts_with("8:"), "{pool}: {at}");
        assert!(m.contains(msg), "{pool}: {m}");
    }
}

#[test]
fn formats_hold_without_consistency_checks_but_not_without_interpolation() {
    let yaml = "services:\n  web:\n    image: busybox\n    container_name: ${NAME:-a/b}\n";
    let opts = |no_interpolate| crate::LoadOptions {
        files: vec!["-".into()],
        stdin: Some(yaml.to_string()),
        cwd: "/nonexistent".into(),
        project_name: Some("t".into()),
        no_consistency: true,
        no_interpolate,
        ..crate::LoadOptions::default()
    };
    assert!(crate::load(&opts(false)).is_err());
    assert!(crate::load(&opts(true)).is_ok());
}
