//! Snapshot tests of bundle generation (no root needed): a service as Compose writes it plus an
//! image config become the OCI `config.json` berth hands to the runtime.

use std::path::{Path, PathBuf};

use berth_compose::model::Service;

use super::*;
use crate::runtime::user::UserDb;

fn service(yaml: &str) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let opts = berth_compose::LoadOptions {
        files: vec![PathBuf::from("-")],
        stdin: Some(format!("name: snap\nservices:\n  app:\n{yaml}")),
        cwd: dir.path().to_path_buf(),
        ..Default::default()
    };
    let loaded = berth_compose::load(&opts).unwrap();
    loaded.project.services["app"].clone()
}

fn image() -> ImageConfig {
    serde_json::from_value(serde_json::json!({
        "User": "",
        "Env": ["PATH=/bin", "FROM_IMAGE=1", "OVERRIDDEN=image"],
        "Entrypoint": ["/entry.sh"],
        "Cmd": ["serve"],
        "WorkingDir": "/srv",
        "StopSignal": "SIGQUIT",
        "Labels": {"from.image": "yes"}
    }))
    .unwrap()
}

fn users() -> UserDb {
    UserDb::parse(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        "root:x:0:\napp:x:1000:\nwheel:x:10:app\n",
    )
}

fn generate_for(svc: &Service, overrides: &RunOverrides) -> Result<Bundle, BundleError> {
    generate_with_bounding(svc, overrides, u64::MAX)
}

fn generate_with_bounding(svc: &Service, overrides: &RunOverrides, bounding: u64) -> Result<Bundle, BundleError> {
    generate_with(svc, overrides, bounding, &[])
}

fn generate_with(
    svc: &Service,
    overrides: &RunOverrides,
    bounding: u64,
    mounts: &[berth_volumes::Mount],
) -> Result<Bundle, BundleError> {
    let hard = |name: &str| (name == "nofile").then_some(4096);
    let device = |p: &Path| {
        (p == Path::new("/dev/fuse")).then_some(HostDevice {
            block: false,
            major: 10,
            minor: 229,
            mode: 0o20666,
            uid: 0,
            gid: 0,
        })
    };
    let all_devices = || {
        let dev = |block, major, minor| HostDevice { block, major, minor, mode: 0o20600, uid: 0, gid: 6 };
        vec![
            (PathBuf::from("/dev/fuse"), dev(false, 10, 229)),
            (PathBuf::from("/dev/kmsg"), dev(false, 1, 11)),
            (PathBuf::from("/dev/loop0"), dev(true, 7, 0)),
        ]
    };
    generate(&BundleRequest {
        service: svc,
        image: &image(),
        users: &users(),
        overrides,
        id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        name: "snap-app-1",
        project: "snap",
        number: 1,
        oneoff: false,
        rootfs: PathBuf::from("/var/lib/berth/containers/0123/bundle/rootfs"),
        network: NetworkNs::None,
        cgroups_path: "/berth/0123".into(),
        files: ContainerFiles {
            hosts: "/var/lib/berth/containers/0123/hosts".into(),
            hostname: "/var/lib/berth/containers/0123/hostname".into(),
            resolv_conf: "/var/lib/berth/containers/0123/resolv.conf".into(),
        },
        mounts,
        host: HostFacts {
            hard_limits: &hard,
            device: &device,
            all_devices: &all_devices,
            init_binary: Some("/usr/bin/tini-static".into()),
            bounding,
            block_weight: false,
        },
    })
}

/// The spec as JSON with the long seccomp allow list replaced by its length.
fn snapshot_json(b: &Bundle) -> serde_json::Value {
    let mut v = to_json(&b.spec);
    if let Some(names) = v.pointer_mut("/linux/seccomp/syscalls/0/names") {
        let n = names.as_array().map(|a| a.len()).unwrap_or(0);
        *names = serde_json::json!(format!("<{n} syscalls>"));
    }
    v
}

#[test]
fn plain_service_gets_docker_defaults() {
    let b = generate_for(&service("    image: busybox\n"), &RunOverrides::default()).unwrap();
    assert_eq!(b.stop_signal, "SIGQUIT");
    assert!(b.warnings.is_empty());
    insta::assert_json_snapshot!("plain", snapshot_json(&b));
}

#[test]
fn every_supported_option() {
    let svc = service(
        r#"    image: busybox
    user: app
    group_add: [wheel, "4242"]
    entrypoint: ["/bin/sh", "-c"]
    command: ["echo hi"]
    working_dir: /work
    environment:
      OVERRIDDEN: service
      EMPTY: ""
    hostname: web
    domainname: example.test
    init: true
    tty: true
    stdin_open: true
    read_only: true
    cap_add: [SYS_ADMIN, net_admin]
    cap_drop: [NET_RAW, CAP_MKNOD]
    security_opt: ["no-new-privileges:true"]
    devices: ["/dev/fuse:/dev/fuse:rwm"]
    device_cgroup_rules: ["c 42:* rmw"]
    sysctls:
      net.core.somaxconn: "1024"
    ulimits:
      nofile: {soft: 1024, hard: 65536}
      nproc: 512
    shm_size: 128m
    tmpfs: ["/run:size=10m,mode=755"]
    extra_hosts: ["db=10.0.0.2"]
    labels:
      com.example: "1"
    stop_signal: SIGINT
    pids_limit: 100
    oom_score_adj: 500
    mem_limit: 256m
    memswap_limit: 512m
    mem_reservation: 128m
    cpus: 1.5
    cpu_shares: 512
    cpuset: "0"
    volumes:
      - type: bind
        source: /srv/data
        target: /data
        read_only: true
      - type: tmpfs
        target: /cache
        tmpfs:
          size: 1048576
"#,
    );
    // What the project side prepares for those volumes and tmpfs (see `stack::storage`).
    let mount = |source: &str, destination: &str, kind, options: &[&str]| berth_volumes::Mount {
        source: source.into(),
        destination: destination.into(),
        kind,
        options: options.iter().map(|o| o.to_string()).collect(),
        origin: berth_volumes::Origin::Private,
    };
    let prepared = [
        mount(
            "tmpfs",
            "/run",
            berth_volumes::MountKind::Tmpfs,
            &["nosuid", "nodev", "noexec", "size=10485760", "mode=755"],
        ),
        mount("/srv/data", "/data", berth_volumes::MountKind::Bind, &["rbind", "ro", "rprivate"]),
        mount("tmpfs", "/cache", berth_volumes::MountKind::Tmpfs, &["nosuid", "nodev", "noexec", "size=1048576"]),
    ];

    let b = generate_with(&svc, &RunOverrides::default(), u64::MAX, &prepared).unwrap();
    assert_eq!(b.stop_signal, "SIGINT");
    assert!(b.tty && b.stdin_open);
    assert_eq!(b.warnings.len(), 1, "{:?}", b.warnings);
    assert!(b.warnings[0].contains("ulimit `nofile` 65536 is above the host's hard limit 4096"), "{:?}", b.warnings);
    insta::assert_json_snapshot!("kitchen_sink", snapshot_json(&b));
}

#[test]
fn mounts_are_the_prepared_ones_never_the_services_own() {
    // The service's volumes and tmpfs are the project side's to check and prepare: without
    // prepared mounts the bundle has none of them, only the defaults and the name files.
    let svc = service(
        "    image: busybox\n    tmpfs: [/run]\n    volumes: [\"/srv:/srv\", \"data:/data\"]\nvolumes:\n  data:\n",
    );
    let v = to_json(&generate_for(&svc, &RunOverrides::default()).unwrap().spec);
    let dests: Vec<&str> = v["mounts"].as_array().unwrap().iter().map(|m| m["destination"].as_str().unwrap()).collect();
    for own in ["/run", "/srv", "/data"] {
        assert!(!dests.contains(&own), "{own} in {dests:?}");
    }
    assert_eq!(dests.last(), Some(&"/etc/resolv.conf"));
}

#[test]
fn deploy_limits_and_privileged() {
    let svc = service(
        "    image: busybox\n    privileged: true\n    deploy:\n      resources:\n        limits:\n          cpus: \"0.5\"\n          memory: 64m\n          pids: 20\n",
    );
    let b = generate_for(&svc, &RunOverrides::default()).unwrap();
    let v = to_json(&b.spec);
    assert_eq!(v["linux"]["resources"]["memory"]["limit"], 64 * 1024 * 1024);
    assert_eq!(v["linux"]["resources"]["cpu"]["quota"], 50_000);
    assert_eq!(v["linux"]["resources"]["pids"]["limit"], 20);
    assert!(v["linux"].get("seccomp").is_none(), "privileged: no seccomp");
    assert!(v["linux"].get("maskedPaths").is_none());
    assert_eq!(v["process"]["capabilities"]["bounding"].as_array().unwrap().len(), defaults::ALL_CAPS.len());
    assert_eq!(v["linux"]["resources"]["devices"], serde_json::json!([{"allow": true, "type": "a", "access": "rwm"}]));
    // Every host device becomes a node in the container.
    assert_eq!(
        v["linux"]["devices"],
        serde_json::json!([
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600, "uid": 0, "gid": 6},
            {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o600, "uid": 0, "gid": 6},
            {"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600, "uid": 0, "gid": 6},
        ])
    );
}

#[test]
fn privileged_keeps_its_own_device_mappings_and_plain_gets_no_host_devices() {
    // A mapping to another path comes on top of the host's devices; one to the same path is
    // the host's device already.
    let svc =
        service("    image: busybox\n    privileged: true\n    devices: [\"/dev/fuse:/dev/myfuse\", \"/dev/fuse\"]\n");
    let v = to_json(&generate_for(&svc, &RunOverrides::default()).unwrap().spec);
    let paths: Vec<&str> =
        v["linux"]["devices"].as_array().unwrap().iter().map(|d| d["path"].as_str().unwrap()).collect();
    assert_eq!(paths, vec!["/dev/myfuse", "/dev/fuse", "/dev/kmsg", "/dev/loop0"]);
    let plain = to_json(&generate_for(&service("    image: busybox\n"), &RunOverrides::default()).unwrap().spec);
    assert!(plain["linux"].get("devices").is_none_or(|d| d.as_array().is_some_and(|a| a.is_empty())), "{plain}");
}

#[test]
fn run_overrides_and_command_rules() {
    let svc = service("    image: busybox\n    environment:\n      A: service\n");
    // Image entrypoint + image cmd.
    let b = generate_for(&svc, &RunOverrides::default()).unwrap();
    assert_eq!(b.spec.process().as_ref().unwrap().args().clone().unwrap(), vec!["/entry.sh", "serve"]);
    // A command replaces Cmd only.
    let o = RunOverrides { command: Some(vec!["x".into()]), ..Default::default() };
    assert_eq!(
        generate_for(&svc, &o).unwrap().spec.process().as_ref().unwrap().args().clone().unwrap(),
        vec!["/entry.sh", "x"]
    );
    // An entrypoint drops the image's Cmd; an empty one clears the entrypoint.
    let o = RunOverrides { entrypoint: Some(vec!["/bin/true".into()]), ..Default::default() };
    assert_eq!(
        generate_for(&svc, &o).unwrap().spec.process().as_ref().unwrap().args().clone().unwrap(),
        vec!["/bin/true"]
    );
    let o = RunOverrides { entrypoint: Some(vec![]), command: Some(vec!["ls".into()]), ..Default::default() };
    assert_eq!(generate_for(&svc, &o).unwrap().spec.process().as_ref().unwrap().args().clone().unwrap(), vec!["ls"]);
    // -e wins over the service, which wins over the image; -u and -w apply.
    let o = RunOverrides {
        env: vec![("A".into(), "cli".into())],
        user: Some("1000:10".into()),
        working_dir: Some("/tmp".into()),
        ..Default::default()
    };
    let b = generate_for(&svc, &o).unwrap();
    let p = b.spec.process().as_ref().unwrap();
    assert!(p.env().as_ref().unwrap().contains(&"A=cli".to_string()));
    assert_eq!((p.user().uid(), p.user().gid()), (1000, 10));
    assert_eq!(p.cwd(), Path::new("/tmp"));
}

#[test]
fn bad_input_is_reported_per_service() {
    let e = generate_for(&service("    image: busybox\n    user: nobody\n"), &RunOverrides::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "service `app`: unable to find user `nobody`: no matching entries in the image's /etc/passwd"
    );
    let e = generate_for(&service("    image: busybox\n    cap_add: [FLY]\n"), &RunOverrides::default()).unwrap_err();
    assert_eq!(e.to_string(), "service `app`: unknown capability `FLY` in cap_add");
    let e = generate_for(&service("    image: busybox\n    devices: [\"/dev/nope\"]\n"), &RunOverrides::default())
        .unwrap_err();
    assert_eq!(e.to_string(), "service `app`: device `/dev/nope` does not exist");
    let e = generate_for(
        &service("    image: busybox\n    mem_limit: 64m\n    memswap_limit: 32m\n"),
        &RunOverrides::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("memswap_limit"), "{e}");
}

#[test]
fn signals_and_hosts_file() {
    assert_eq!(canonical_signal("term").as_deref(), Some("SIGTERM"));
    assert_eq!(canonical_signal("9").as_deref(), Some("SIGKILL"));
    assert_eq!(canonical_signal("SIGUSR1").as_deref(), Some("SIGUSR1"));
    assert_eq!(canonical_signal("SIGNOPE"), None);
    let h = hosts_file("web", &["db=10.0.0.2".into(), "v6:[::1]".into()]);
    assert!(h.contains("10.0.0.2\tdb\n") && h.contains("::1\tv6\n") && h.ends_with("127.0.1.1\tweb\n"), "{h}");
}

#[test]
fn capabilities_the_host_lacks_are_left_out() {
    let no_sys_resource = !(1u64 << 24);
    let b = generate_with_bounding(
        &service("    image: busybox\n    privileged: true\n"),
        &RunOverrides::default(),
        no_sys_resource,
    )
    .unwrap();
    let v = to_json(&b.spec);
    let bounding = v["process"]["capabilities"]["bounding"].as_array().unwrap();
    assert_eq!(bounding.len(), defaults::ALL_CAPS.len() - 1);
    assert!(!bounding.contains(&"CAP_SYS_RESOURCE".into()));
    assert!(b.warnings.is_empty(), "privileged takes what there is: {:?}", b.warnings);
    let b = generate_with_bounding(
        &service("    image: busybox\n    cap_add: [SYS_RESOURCE]\n"),
        &RunOverrides::default(),
        no_sys_resource,
    )
    .unwrap();
    assert_eq!(b.warnings, vec!["service `app`: capabilities this host does not grant are left out: SYS_RESOURCE"]);
}

/// The resources as the runtime reads them: the same spec for cgroup v1 and v2 (the runtime
/// picks the files; see `resources`). This host's cgroup2 mount has no memory, cpu or pids
/// controller, so the v2 files are exercised by the runtime's own tests, not here.
#[test]
fn resources_in_runtime_spec_terms() {
    let res = |yaml: &str| {
        let b = generate_for(&service(&format!("    image: busybox\n{yaml}")), &RunOverrides::default()).unwrap();
        let mut v = to_json(&b.spec)["linux"]["resources"].clone();
        v.as_object_mut().unwrap().remove("devices");
        v
    };
    assert_eq!(res(""), serde_json::json!({}));
    // Memory: swap is memory + swap, twice the limit unless memswap_limit says otherwise
    // (0: not set, -1: unlimited); v2 runtimes write memory.swap.max = swap - limit.
    assert_eq!(res("    mem_limit: 64m\n")["memory"], serde_json::json!({"limit": 64 << 20, "swap": 128 << 20}));
    assert_eq!(
        res("    mem_limit: 64m\n    memswap_limit: 96m\n")["memory"],
        serde_json::json!({"limit": 64 << 20, "swap": 96 << 20})
    );
    assert_eq!(res("    mem_limit: 64m\n    memswap_limit: 0\n")["memory"]["swap"], 128 << 20);
    assert_eq!(res("    mem_limit: 64m\n    memswap_limit: -1\n")["memory"]["swap"], -1);
    assert_eq!(
        res("    mem_reservation: 32m\n    mem_swappiness: 0\n")["memory"],
        serde_json::json!({"reservation": 32 << 20, "swappiness": 0})
    );
    // CPU: `cpus` is a quota per 100 ms period; shares and cpuset pass through.
    assert_eq!(
        res("    cpus: 0.25\n    cpu_shares: 512\n    cpuset: \"0-1\"\n")["cpu"],
        serde_json::json!({"quota": 25_000, "period": 100_000, "shares": 512, "cpus": "0-1"})
    );
    assert_eq!(
        res("    deploy:\n      resources:\n        limits:\n          cpus: \"2\"\n")["cpu"],
        serde_json::json!({"quota": 200_000, "period": 100_000})
    );
    // pids: 0 and -1 are unlimited.
    assert_eq!(res("    pids_limit: 50\n")["pids"], serde_json::json!({"limit": 50}));
    assert_eq!(res("    pids_limit: 0\n")["pids"], serde_json::json!({"limit": -1}));
    assert_eq!(res("    pids_limit: -1\n")["pids"], serde_json::json!({"limit": -1}));
}

#[test]
fn annotations_go_to_the_runtime() {
    let svc = service(
        "    image: busybox\n    labels: {team: a}\n    annotations:\n      com.example.note: \"kept\"\n      team: b\n",
    );
    let b = generate_for(&svc, &RunOverrides::default()).unwrap();
    let a = b.spec.annotations().clone().unwrap_or_default();
    assert_eq!(a.get("com.example.note").map(String::as_str), Some("kept"));
    assert_eq!(a.get("team").map(String::as_str), Some("b"), "annotations come after labels");
    assert_eq!(a.get("com.docker.compose.service").map(String::as_str), Some("app"));
}
