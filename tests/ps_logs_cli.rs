//! System tests (root): `ps --filter/--format/--no-trunc/--orphans` and the `none` logging
//! driver, through the real `berth` binary on a busybox project.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/containers.rs"]
mod harness;

use std::process::Output;

use harness::Project;

const BUSYBOX: &str = "berth-test/busybox:latest";

/// Runs `f` on a new project made of `services`, then `down`s it and checks the host is clean.
fn scenario(test: &str, services: &str, f: impl FnOnce(&Project)) {
    harness::scenario(test, &services.replace("IMAGE", BUSYBOX), f)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const STACK: &str = r#"  web:
    image: IMAGE
    init: true
    command: sleep infinity
  job:
    image: IMAGE
    command: sh -c 'echo a very long command line that is cut by ps; exit 3'
  old:
    image: IMAGE
    init: true
    command: sleep infinity
"#;

#[test]
fn ps_filter_format_no_trunc_and_orphans() {
    scenario("psformat", STACK, |p| {
        p.ok(&["up", "-d"]);
        let n = &p.name;
        p.wait_for(20, "job exits", || p.container(&format!("{n}-job-1"))["State"] == "exited");
        // `old` leaves the file: its container is an orphan now.
        p.write_compose(&STACK.replace("IMAGE", BUSYBOX).replace(
            "  old:\n    image: berth-test/busybox:latest\n    init: true\n    command: sleep infinity\n",
            "",
        ));

        // --filter status= lists stopped containers of that status, as --status does.
        assert_eq!(p.ok(&["ps", "--filter", "status=exited", "--format", "{{.Name}}"]), format!("{n}-job-1\n"));
        let running = p.ok(&["ps", "--filter", "status=running", "--format", "{{.Service}}"]);
        assert_eq!(running, "old\nweb\n", "{running}");
        assert_eq!(p.ok(&["ps", "-a", "--filter", "service=job", "--format", "{{.Service}} {{.ExitCode}}"]), "job 3\n");
        let bad = p.berth(&["ps", "--filter", "health=healthy"]);
        assert!(!bad.status.success() && stderr(&bad).contains("unknown filter `health`"), "{}", stderr(&bad));
        let bad = p.berth(&["ps", "--filter", "status=stopped"]);
        assert!(!bad.status.success() && stderr(&bad).contains("one of created, running"), "{}", stderr(&bad));

        // --orphans (default true) and --orphans=false.
        assert!(p.ok(&["ps", "--format", "{{.Service}}"]).contains("old"));
        assert!(p.ok(&["ps", "--orphans", "--format", "{{.Service}}"]).contains("old"));
        assert_eq!(p.ok(&["ps", "--orphans=false", "--format", "{{.Service}}"]), "web\n");

        // Templates: text between fields, `\t`, and a `table` header.
        let line = p.ok(&["ps", "--orphans=false", "--format", r"{{.Name}}\t{{.State}} [{{.Status}}] {{.Image}}"]);
        assert!(
            line.starts_with(&format!("{n}-web-1\trunning [Up ")) && line.ends_with(&format!("] {BUSYBOX}\n")),
            "{line}"
        );
        let table = p.ok(&["ps", "-a", "--format", r"table {{.Name}}\t{{.Service}}\t{{.State}}\t{{.ExitCode}}"]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(header, ["NAME", "SERVICE", "STATE", "EXIT", "CODE"], "{table}");
        let state_col = lines[0].find("STATE").unwrap();
        for l in &lines[1..] {
            assert!(l.starts_with(n.as_str()), "{table}");
            let rest = &l[state_col..];
            assert!(rest.starts_with("running") || rest.starts_with("exited"), "columns aligned: {table}");
        }
        let bad = p.berth(&["ps", "--format", "{{.Nmae}}"]);
        let err = stderr(&bad);
        assert!(!bad.status.success() && err.contains("unknown field `{{.Nmae}}`") && err.contains(".Name"), "{err}");

        // --no-trunc: whole ids and commands.
        let id = p.ok(&["ps", "-a", "--filter", "service=job", "-q"]).trim().to_string();
        assert_eq!(p.ok(&["ps", "-a", "--filter", "service=job", "--format", "{{.ID}}"]).trim(), &id[..12]);
        let full = p.ok(&["ps", "-a", "--filter", "service=job", "--no-trunc", "--format", "{{.ID}} {{.Command}}"]);
        assert_eq!(full.trim(), format!("{id} \"sh -c echo a very long command line that is cut by ps; exit 3\""));
        let cut = p.ok(&["ps", "-a", "--filter", "service=job"]);
        assert!(cut.contains("\"sh -c echo a very lo…\"") && !cut.contains("exit 3\""), "{cut}");
        let uncut = p.ok(&["ps", "-a", "--filter", "service=job", "--no-trunc"]);
        assert!(uncut.contains("cut by ps; exit 3\""), "{uncut}");

        // json stays.
        let json = p.ok(&["ps", "--orphans=false", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        assert_eq!(v["Service"], "web");
    });
}

#[test]
fn logging_driver_none_keeps_no_output() {
    let yaml = r#"  quiet:
    image: IMAGE
    command: sh -c 'echo sec""ret-output; echo sec""ret-error >&2'
    logging:
      driver: none
  loud:
    image: IMAGE
    command: sh -c 'echo loud-output'
    logging:
      driver: local
      options:
        max-size: 1m
"#;
    scenario("lognone", yaml, |p| {
        let up = p.berth(&["up", "-d"]);
        assert!(up.status.success(), "{}", stderr(&up));
        assert!(!stderr(&up).contains("logging.driver"), "none and local are not warned about: {}", stderr(&up));
        let n = &p.name;
        p.wait_for(20, "both exit", || p.ps().iter().filter(|c| c["State"] == "exited").count() == 2);
        let quiet = p.container(&format!("{n}-quiet-1"));
        let id = quiet["ID"].as_str().unwrap();
        let log = p.root.path().join("containers").join(id).join("logs/container.log");
        assert!(!log.exists(), "no log file for a `none` container: {}", log.display());
        let loud = p.container(&format!("{n}-loud-1"));
        let log = p.root.path().join("containers").join(loud["ID"].as_str().unwrap()).join("logs/container.log");
        assert!(log.exists(), "{}", log.display());
        let out = p.berth(&["logs", "--no-log-prefix"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text, "loud-output\n", "only the readable container's lines");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("container {n}-quiet-1: configured logging driver does not support reading")),
            "{err}"
        );
        let out = p.berth(&["logs", "quiet"]);
        assert!(out.status.success() && out.stdout.is_empty(), "{}", stderr(&out));
        assert!(stderr(&out).contains("`logging.driver` is `none`"), "{}", stderr(&out));
        // Nothing of its output is anywhere under the state root.
        let grep =
            std::process::Command::new("grep").args(["-r", "-l", "secret-"]).arg(p.root.path()).output().unwrap();
        assert!(
            grep.stdout.is_empty(),
            "output of a `none` container was kept: {}",
            String::from_utf8_lossy(&grep.stdout)
        );
    });
}
