//! System tests (root): `berth build` and `build:` in compose files, with the busybox fixture
//! image as base and no network — multi-stage builds with `COPY --from`, deletions that become
//! whiteouts, `.dockerignore`, build args, the layer cache (a rebuild with nothing changed makes
//! no container; a changed file rebuilds from its `COPY` on), cache and secret mounts,
//! `SOURCE_DATE_EPOCH` reproducibility, `up` of a built service, and a failing `RUN` that names
//! its line and leaves nothing behind.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/builds.rs"]
mod builds;
#[path = "support/containers.rs"]
mod harness;

use builds::{assert_build_clean, build, cached_steps, run_in, scenario, write, BASE};

const MULTI: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=berth-test/busybox:latest
FROM $BASE AS build
ARG GREETING=hello
WORKDIR /src
COPY src/ ./
RUN echo "$GREETING from $(cat name.txt)" > artifact && cat artifact && mkdir -p /tmp/junk && touch /tmp/junk/x && rm -rf /tmp/junk

FROM ${BASE}
COPY --from=build /src/artifact /app/artifact
COPY . /ctx/
RUN rm /etc/motd && echo made > /app/made
USER nobody
WORKDIR /app
CMD ["cat", "/app/artifact"]
"#;

#[test]
fn a_multi_stage_build_copies_from_its_stage_honours_dockerignore_and_records_deletions() {
    scenario("buildmulti", "  app:\n    build: .\n", |p| {
        write(
            p.dir.path(),
            &[
                ("Dockerfile", MULTI),
                ("src/name.txt", "berth\n"),
                ("secret.key", "do not ship\n"),
                ("notes/keep.md", "kept\n"),
                ("notes/drop.md", "dropped\n"),
                (".dockerignore", "*.key\nnotes\n!notes/keep.md\n"),
            ],
        );
        let (built, ev) = build(p, &["--build-arg", "GREETING=hi"], &[]);
        assert_eq!(built["image"], format!("{}-app", p.name));
        assert_eq!(built["containers"], 2, "{built}");
        assert!(
            ev.iter().any(|e| e["kind"] == "build_output" && e["line"] == "hi from berth"),
            "RUN output is streamed"
        );
        let out = run_in(
            p,
            "app",
            "cat /app/artifact; ls /ctx /ctx/notes; test -e /etc/motd || echo motd-gone; id -un; pwd; ls /tmp",
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "hi from berth", "{out}");
        assert!(!out.contains("secret.key") && !out.contains("drop.md"), ".dockerignore honoured: {out}");
        assert!(out.contains("keep.md") && out.contains("Dockerfile"), "{out}");
        assert!(out.contains("motd-gone"), "a deleted file is a whiteout in the image: {out}");
        assert!(out.contains("nobody\n/app\n"), "USER and WORKDIR: {out}");
        assert!(!out.contains("junk"), "a directory made and removed in one RUN leaves nothing: {out}");
        let cfg: serde_json::Value =
            serde_json::from_str(&p.ok(&["image", "inspect", &format!("{}-app", p.name)])).unwrap();
        let cfg = &cfg[0];
        assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["cat", "/app/artifact"]));
        assert_eq!(cfg["config"]["User"], "nobody");
        let layers = cfg["rootfs"]["diff_ids"].as_array().unwrap().len();
        assert_eq!(layers, 4, "base, COPY --from, COPY, RUN (WORKDIR /app exists): {cfg}");
        assert_eq!(cfg["history"].as_array().unwrap().iter().filter(|h| h["empty_layer"] != true).count(), layers);
        assert_build_clean(p);
    });
}

#[test]
fn the_cache_reuses_every_layer_until_a_copied_file_changes() {
    scenario("buildcache", "  app:\n    build: .\n", |p| {
        let dockerfile = format!(
            "FROM {BASE}\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nENV X=1\nRUN echo $X > /x\n"
        );
        write(p.dir.path(), &[("Dockerfile", &dockerfile), ("a.txt", "first\n")]);
        let (first, _) = build(p, &[], &[]);
        assert_eq!(first["containers"], 3);
        let started = std::time::Instant::now();
        let (second, ev) = build(p, &[], &[]);
        let took = started.elapsed();
        assert_eq!(second["containers"], 0, "nothing changed: no container: {second}");
        assert_eq!(second["cached"], 4, "{second}");
        assert_eq!(second["id"], first["id"], "the same image");
        assert_eq!(cached_steps(&ev), [2, 3, 4, 6]);
        eprintln!("no-change rebuild: {took:?}");

        write(p.dir.path(), &[("a.txt", "second\n")]);
        let (third, ev) = build(p, &[], &[]);
        assert_eq!(cached_steps(&ev), [2], "only what comes before the changed COPY is cached");
        assert_eq!(third["containers"], 2);
        assert_eq!(run_in(p, "app", "cat /b.txt /x"), "second\n1\n");

        let (fresh, _) = build(p, &["--no-cache"], &[]);
        assert_eq!(fresh["containers"], 3, "--no-cache builds every layer again");
        assert_build_clean(p);
    });
}

#[test]
fn source_date_epoch_builds_are_reproducible() {
    scenario("buildrepro", "  app:\n    build: .\n", |p| {
        let dockerfile =
            format!("FROM {BASE}\nCOPY . /ctx/\nRUN mkdir -p /out && echo built > /out/f && rm /etc/motd\nLABEL a=b\n");
        write(p.dir.path(), &[("Dockerfile", &dockerfile), ("x/y.txt", "y\n")]);
        let env = [("SOURCE_DATE_EPOCH", "1700000000")];
        let (one, _) = build(p, &["--no-cache"], &env);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let (two, _) = build(p, &["--no-cache"], &env);
        assert_eq!(one["id"], two["id"], "same inputs, same image id");
        let cfg: serde_json::Value =
            serde_json::from_str(&p.ok(&["image", "inspect", &format!("{}-app", p.name)])).unwrap();
        assert_eq!(cfg[0]["created"], "2023-11-14T22:13:20Z");
        let (three, _) = build(p, &["--no-cache"], &[]);
        assert_ne!(three["id"], one["id"], "without SOURCE_DATE_EPOCH the build time is recorded");
    });
}

#[test]
fn cache_mounts_persist_and_secrets_stay_out_of_layers() {
    scenario("buildmounts", "  app:\n    build: .\n", |p| {
        let dockerfile = format!(
            "FROM {BASE}\n\
             RUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log > /count\n\
             RUN --mount=type=secret,id=token grep -q s3cret /run/secrets/token && echo ok > /secret-ok\n\
             RUN --mount=type=tmpfs,target=/scratch touch /scratch/t && echo tmp > /tmp-ok\n\
             RUN --mount=type=bind,source=data.txt,target=/data.txt cp /data.txt /copied\n"
        );
        write(p.dir.path(), &[("Dockerfile", &dockerfile), ("token", "s3cret\n"), ("data.txt", "bound\n")]);
        let secret = format!("id=token,src={}", p.dir.path().join("token").display());
        build(p, &["--no-cache", "--secret", &secret], &[]);
        build(p, &["--no-cache", "--secret", &secret], &[]);
        let out = run_in(p, "app", "cat /count /secret-ok /tmp-ok /copied; ls /run/secrets /scratch 2>&1; true");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(&lines[..4], ["2", "ok", "tmp", "bound"], "the cache mount kept the first build's line: {out}");
        assert!(
            !out.contains("token") && !out.contains("/t\n"),
            "mount points and secrets are not in the image: {out}"
        );
        let missing = p.berth(&["build", "--no-cache", "--progress", "plain"]);
        assert!(!missing.status.success(), "a RUN that needs a missing secret fails");
        assert_build_clean(p);
    });
}

#[test]
fn run_builds_a_missing_image_as_up_would() {
    let services = "  tool:\n    build: ./tool\n";
    scenario("buildrun", services, |p| {
        write(p.dir.path(), &[("tool/Dockerfile", &format!("FROM {BASE}\nRUN echo built for run > /msg\n"))]);
        assert_eq!(run_in(p, "tool", "cat /msg"), "built for run\n");
        assert!(p.ok(&["image", "ls"]).contains(&format!("{}-tool", p.name)));
    });
}

#[test]
fn up_builds_a_missing_image_runs_it_and_an_unchanged_rebuild_recreates_nothing() {
    let services = "  web:\n    build:\n      context: ./app\n      args: {MESSAGE: from-compose}\n    init: true\n    command: [sh, -c, \"cat /msg; exec sleep 300\"]\n";
    scenario("buildup", services, |p| {
        let dockerfile = format!("FROM {BASE}\nARG MESSAGE=default\nRUN echo $MESSAGE > /msg\n");
        write(p.dir.path(), &[("app/Dockerfile", &dockerfile)]);
        let plan = p.ok(&["up", "--dry-run"]);
        assert!(plan.contains(&format!("image {}-web build (not present)", p.name)), "{plan}");
        p.ok(&["up", "-d"]);
        let c = p.container(&format!("{}-web-1", p.name));
        assert_eq!(c["State"], "running", "{c}");
        p.wait_for(10, "the command's output", || p.ok(&["logs", "web"]).contains("from-compose"));
        let id = c["ID"].clone();
        let out = p.berth(&["up", "-d", "--build"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(p.container(&format!("{}-web-1", p.name))["ID"], id, "an unchanged image recreates nothing");
        let no_build = p.ok(&["up", "--dry-run", "--no-build"]);
        assert_eq!(no_build, "", "{no_build}");
        write(p.dir.path(), &[("app/Dockerfile", &format!("{dockerfile}RUN echo changed >> /msg\n"))]);
        p.ok(&["up", "-d", "--build"]);
        let c = p.container(&format!("{}-web-1", p.name));
        assert_ne!(c["ID"], id, "a changed image recreates the container");
        assert_eq!(run_in(p, "web", "cat /msg"), "from-compose\nchanged\n");
    });
}

#[test]
fn a_failing_run_names_its_line_and_exit_code_and_leaves_nothing() {
    scenario("buildfail", "  app:\n    build: .\n", |p| {
        let dockerfile = format!("FROM {BASE}\nRUN echo fine\nRUN echo about to fail >&2; exit 3\nRUN echo never\n");
        write(p.dir.path(), &[("Dockerfile", &dockerfile)]);
        let out = p.berth(&["build", "--progress", "plain"]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Dockerfile:3:"), "{err}");
        assert!(err.contains("exited with code 3"), "{err}");
        assert!(err.contains("about to fail"), "the last output lines: {err}");
        assert!(!err.contains("#4 "), "nothing runs after the failure: {err}");
        let images = p.ok(&["image", "ls", "--format", "json"]);
        assert!(!images.contains(&format!("{}-app", p.name)), "no image: {images}");
        assert_build_clean(p);

        write(p.dir.path(), &[("Dockerfile", &format!("FROM {BASE}\nCOPY missing.txt /\n"))]);
        let out = p.berth(&["build"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("Dockerfile:2: \"missing.txt\": not found"), "{err}");
        write(p.dir.path(), &[("Dockerfile", "FROM scratch\nCOPY --from=nostage /x /\nFROM\n")]);
        let out = p.berth(&["build"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Dockerfile:3"), "a parse error names its line: {err}");
    });
}

#[test]
fn independent_stages_build_in_parallel_and_copy_options_apply() {
    scenario("buildpar", "  app:\n    build: .\n", |p| {
        let dockerfile = format!(
            "FROM {BASE} AS a\nRUN sleep 1 && echo a > /a\n\
             FROM {BASE} AS b\nRUN sleep 1 && echo b > /b\n\
             FROM {BASE}\nARG WHO=world\nCOPY --from=a /a /out/\nCOPY --from=b /b /out/\n\
             COPY --chown=nobody:nogroup --chmod=600 f.txt /owned\nADD pkg.tar.gz /pkg/\n\
             COPY <<EOF /hello.txt\nhello $WHO\nEOF\n"
        );
        write(p.dir.path(), &[("Dockerfile", &dockerfile), ("f.txt", "f\n"), ("pkg/inner/x.txt", "x\n")]);
        let st = std::process::Command::new("tar")
            .args(["czf", "pkg.tar.gz", "-C", "pkg", "inner"])
            .current_dir(p.dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        let started = std::time::Instant::now();
        let (built, _) = build(p, &[], &[]);
        let took = started.elapsed();
        assert_eq!(built["containers"], 2);
        assert!(took < std::time::Duration::from_millis(1900), "two 1 s stages took {took:?}: not in parallel");
        let out = run_in(p, "app", "stat -c '%U:%G %a' /owned; cat /pkg/inner/x.txt /hello.txt /out/a /out/b");
        assert_eq!(out, "nobody:nogroup 600\nx\nhello world\na\nb\n");
    });
}

#[test]
fn a_built_non_root_service_with_an_image_health_check_comes_up_healthy() {
    let services = "  web:\n    build: ./web\n    init: true\n";
    scenario("buildhealthy", services, |p| {
        let dockerfile = format!(
            "FROM {BASE} AS site\nRUN mkdir /site && echo '<h1>built</h1>' > /site/index.html\n\
             FROM {BASE}\nCOPY --from=site --chown=nobody:nogroup /site /srv\nUSER nobody\n\
             HEALTHCHECK --interval=1s --timeout=2s CMD wget -q -O- http://127.0.0.1:8080/ || exit 1\n\
             CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/srv\"]\n"
        );
        write(p.dir.path(), &[("web/Dockerfile", &dockerfile)]);
        p.ok(&["up", "-d", "--build", "--wait", "--wait-timeout", "30"]);
        let c = p.container(&format!("{}-web-1", p.name));
        assert_eq!(c["Health"], "healthy", "{c}");
        assert_eq!(p.ok(&["exec", "-T", "web", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]), "<h1>built</h1>\n");
        assert_eq!(p.ok(&["exec", "-T", "web", "id", "-un"]), "nobody\n");
    });
}

#[test]
fn onbuild_triggers_run_when_the_image_is_used_as_a_base() {
    let services = "  base:\n    image: onbuild-base:1\n    build: ./base\n  app:\n    build: ./app\n";
    scenario("buildonbuild", services, |p| {
        write(
            p.dir.path(),
            &[
                (
                    "base/Dockerfile",
                    &format!("FROM {BASE}\nONBUILD COPY trigger.txt /trigger.txt\nONBUILD RUN echo ran > /ran\n"),
                ),
                ("app/Dockerfile", "FROM onbuild-base:1\nRUN cat /trigger.txt /ran > /both\n"),
                ("app/trigger.txt", "from the app's context\n"),
            ],
        );
        build(p, &["base"], &[]);
        build(p, &["app"], &[]);
        assert_eq!(run_in(p, "app", "cat /both"), "from the app's context\nran\n");
        let cfg: serde_json::Value =
            serde_json::from_str(&p.ok(&["image", "inspect", &format!("{}-app", p.name)])).unwrap();
        assert!(cfg[0]["config"].get("OnBuild").is_none(), "triggers are used up: {cfg}");
    });
}
