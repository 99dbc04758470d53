//! System test (root): containers made with the project side's network and storage — two
//! services on a real bridge with leased addresses, one serving a named volume's content
//! (filled from the image by copy-up) over HTTP, the other fetching it by the service name its
//! `/etc/hosts` does not have but its address does. Everything is taken down and checked gone.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::collections::BTreeMap;

use berth::container::{self, CreateRequest, Provided, Roots};
use berth::events::Recorder;
use berth::runtime::bundle::{NetworkNs, RunOverrides};
use berth::stack::networking::{NetStores, Networking};
use berth::stack::storage::Storage;
use berth::stack::volmodel::volume_spec;
use berth::state::StateDb;
use berth_compose::env::Environment;
use berth_compose::{load, LoadOptions};
use berth_network::nat::{Firewall, Nft};
use berth_network::{Host, NetlinkHost};
use berth_volumes::store::VolumeStore;

const SERVICES: &str = "  web:\n    image: berth-test/busybox:latest\n    command: [httpd, -f, -p, \"8080\", -h, /srv]\n    \
                        volumes: [\"site:/srv\"]\n  client:\n    image: berth-test/busybox:latest\n    command: [sleep, \"300\"]\n\
                        volumes:\n  site:\n";

#[test]
fn containers_on_a_bridge_share_a_volume_over_http() {
    let p = harness::Project::new("stackcontainers", SERVICES);
    let roots = Roots { root: p.root.path().to_path_buf(), run: p.run.path().to_path_buf() };
    let opts = LoadOptions {
        files: vec![p.dir.path().join("compose.yaml")],
        cwd: p.dir.path().to_path_buf(),
        shell: Environment::default(),
        ..LoadOptions::default()
    };
    let project = load(&opts).expect("valid project").project;
    let host = NetlinkHost;
    let nft = Nft::available().then(|| Nft::new(format!("berth_t{}", std::process::id())));
    let fw = nft.as_ref().map(|n| n as &dyn Firewall);
    let db = StateDb::open(&roots.root).unwrap();
    let volumes = VolumeStore::open(roots.root.join("volumes")).unwrap();
    let images = berth::image::ImageStore::open(&roots.root).unwrap();
    // The stores are locked while open, and `berth rm` takes that lock too: open them per use.
    let with_net = |f: &mut dyn FnMut(&mut Networking) -> anyhow::Result<()>| -> anyhow::Result<()> {
        let stores = NetStores::open(&roots.root)?;
        let mut leases = stores.leases();
        let mut net = Networking { host: &host, firewall: fw, networks: &stores.db, leases: &mut leases };
        f(&mut net)
    };
    let mut specs = Default::default();
    with_net(&mut |n| {
        specs = n.ensure(&project, &["default".to_string()])?;
        Ok(())
    })
    .unwrap();
    volumes.create(&volume_spec(&project, "site")).unwrap();

    let mut made = Vec::new();
    let mut prepared = Vec::new();
    let mut addrs = BTreeMap::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for name in ["web", "client"] {
            let svc = &project.services[name];
            let cname = format!("{}-{name}-1", project.name);
            let netns = roots.run.join("netns").join(&cname);
            std::fs::create_dir_all(netns.parent().unwrap()).unwrap();
            let mut attached = None;
            with_net(&mut |n| {
                attached = Some(n.attach(&project, svc, &cname, &specs, &netns)?);
                Ok(())
            })
            .unwrap();
            let attached = attached.unwrap();
            addrs.insert(name, attached.addrs["default"][0]);
            let layers = images.layer_dirs(&svc.image_name(&project)).unwrap();
            let storage = Storage {
                volumes: &volumes,
                layers: &layers,
                scratch: roots.run.join("scratch").join(&cname),
                secrets_dir: roots.run.join("secrets").join(&cname),
                env: &|_| None,
                renew_anonymous: false,
            };
            let prep = storage.prepare(&project, svc, 1).unwrap();
            let provided = Provided {
                network: Some(NetworkNs::Path(netns.clone())),
                resolv_conf: Some(attached.resolv_conf.clone()),
                hosts: Some(attached.hosts.clone()),
                mounts: prep.mounts.clone(),
                volumes: prep.volumes.clone(),
            };
            prepared.push(prep);
            let req = CreateRequest {
                image_id: None,
                project: &project,
                service: svc,
                number: 1,
                oneoff: false,
                name: None,
                overrides: RunOverrides::default(),
                runtime: "runc",
                auto_remove: false,
                provided: Some(provided),
            };
            container::create_container(&roots, &db, &req, &Recorder::default()).unwrap();
            made.push((name, cname, netns));
        }
        // The monitor is berth itself re-executed, so the binary starts them.
        p.ok(&["start"]);
        // The image's /srv content was copied into the volume; add a page to it from the host.
        let site = volumes.get(&format!("{}_site", project.name)).unwrap().unwrap().mountpoint;
        std::fs::write(site.join("index.html"), "served from a volume\n").unwrap();
        let url = format!("http://{}:8080/index.html", addrs["web"]);
        let mut body = String::new();
        p.wait_for(10, "web answers", || {
            let out = p.berth(&["exec", "-T", "client", "timeout", "2", "wget", "-q", "-O-", &url]);
            body = String::from_utf8_lossy(&out.stdout).into_owned();
            out.status.success()
        });
        assert_eq!(body, "served from a volume\n");
        let hosts = p.ok(&["exec", "-T", "client", "cat", "/etc/hosts"]);
        assert!(hosts.contains(&format!("{}\t", addrs["client"])), "{hosts}");
        let volumes = db.container_by_name(&made[0].1).unwrap().unwrap().volumes;
        assert_eq!(volumes[0], format!("{}_site", project.name));
        let out = p.berth(&["volume", "rm", &format!("{}_site", project.name)]);
        assert!(!out.status.success(), "a volume in use is kept");
    }));
    // Teardown runs whatever happened above, keeps going after a failure, and reports them all.
    let mut failures = Vec::new();
    p.berth(&["rm", "-f", "-s"]);
    for (name, cname, netns) in &made {
        if let Err(e) = with_net(&mut |n| n.detach(&project, &project.services[*name], cname, &specs, netns)) {
            failures.push(format!("detach {cname}: {e:#}"));
        }
    }
    for prep in prepared {
        if let Err(e) = prep.release() {
            failures.push(format!("release: {e:#}"));
        }
    }
    for spec in specs.values() {
        for _ in 0..100 {
            if host.bridge_ports(&spec.bridge).unwrap_or_default().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if let Err(e) = with_net(&mut |n| n.remove(spec).map(drop)) {
            failures.push(format!("remove network {}: {e:#}", spec.name));
            let _ = host.remove_bridge(&spec.bridge);
        }
    }
    if let Some(n) = &nft {
        let _ = n.delete_table();
    }
    if let Err(e) = volumes.remove(&format!("{}_site", project.name), &[]) {
        failures.push(format!("remove volume: {e}"));
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(failures.is_empty(), "teardown: {failures:?}");
    p.assert_clean();
}
