//! System test (root): `--dry-run` on every command that changes the project says what it would
//! do and changes nothing; commands whose effect cannot be told beforehand refuse it.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

#[test]
fn dry_runs_change_nothing() {
    let services = r#"  db:
    image: berth-test/busybox:latest
    command: [sleep, "600"]
  web:
    image: berth-test/busybox:latest
    command: [sleep, "600"]
    depends_on: [db]
"#;
    let p = harness::Project::new("dryrun", services);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let planned = p.ok(&["--dry-run", "create"]);
        assert!(planned.contains("container") && planned.contains("create"), "{planned}");
        assert!(p.ps().is_empty(), "create --dry-run made nothing");
        p.ok(&["up", "-d"]);
        let before = p.ps();
        for (args, verb, container) in [
            (vec!["stop"], "Stopping", "db"),
            (vec!["kill", "web"], "Killing", "web"),
            (vec!["rm", "-f"], "Removing", "db"),
            (vec!["restart"], "Restarting", "web"),
            (vec!["pause", "db"], "Pausing", "db"),
        ] {
            let mut a = vec!["--dry-run"];
            a.extend(args.iter());
            let out = p.ok(&a);
            assert!(
                out.contains(&format!("DRY-RUN MODE - Container {}-{container}-1  {verb}", p.name)),
                "{args:?}: {out}"
            );
        }
        let scale = p.ok(&["scale", "--dry-run", "web=3"]);
        assert!(scale.contains(&format!("{}-web-3 create", p.name)), "{scale}");
        assert!(p.ok(&["pull", "--dry-run"]).contains("Image "));
        assert!(p.ok(&["down", "--dry-run"]).contains("remove"));
        let after = p.ps();
        let states = |rows: &[serde_json::Value]| {
            rows.iter().map(|c| (c["Name"].clone(), c["State"].clone())).collect::<Vec<_>>()
        };
        assert_eq!(states(&before), states(&after), "nothing changed");
        let refused = p.berth(&["--dry-run", "exec", "-T", "db", "true"]);
        assert_eq!(refused.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&refused.stderr).contains("--dry-run is not supported"));
    }));
    p.finish(result);
}
