//! System tests (root): the build scenarios of docker/compose's e2e suite
//! (`../shared/conformance/docker-compose-e2e/`, "Build and watch"), adapted to a daemonless
//! builder without network: base images are the busybox test image instead of Docker Hub's
//! alpine, nginx and bash, and the fixtures are written here as the scenarios have them.
//!
//! Not adapted: `build-test/ssh` (berth forwards no SSH agent and refuses `--ssh`),
//! `build-test/platforms` (multi-platform builds: images are for this host only),
//! `build-test/entitlements` (`entitlements` is warned about and not honoured) and
//! `bridge-build-only` (it checks Docker's bridge driver options, not the build).

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/builds.rs"]
mod builds;
#[path = "support/containers.rs"]
mod harness;

use builds::{assert_build_clean, assert_build_network_gone, run_in, scenario, write, BASE};

/// The image config of `name` (`image inspect`).
fn inspect(p: &harness::Project, name: &str) -> serde_json::Value {
    let out: serde_json::Value = serde_json::from_str(&p.ok(&["image", "inspect", name])).unwrap();
    out[0].clone()
}

fn has_image(p: &harness::Project, name: &str) -> bool {
    p.berth(&["image", "inspect", name]).status.success()
}

/// Runs berth with combined output; asserts success.
fn ok_all(p: &harness::Project, args: &[&str]) -> String {
    let out = p.berth(args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "berth {args:?} failed:\n{text}");
    text
}

/// TestLocalComposeBuild (`fixtures/build-test`): an unnamed service's image is
/// `<project>-<service>`, a named one is its `image:`; `--build-arg FOO=BAR` or a bare `FOO`
/// from the shell reaches `LABEL FOO=$FOO`.
#[test]
fn local_compose_build() {
    let services = "  nginx:\n    build: nginx-build\n    ports:\n      - 80\n  nginx2:\n    build: nginx-build2\n    image: custom-nginx\n";
    scenario("e2elocalbuild", services, |p| {
        let df = format!("FROM {BASE}\nARG FOO\nLABEL FOO=$FOO\nCOPY static /usr/share/nginx/html\n");
        let df2 = format!("FROM {BASE}\nCOPY static2 /usr/share/nginx/html\n");
        write(
            p.dir.path(),
            &[
                ("nginx-build/Dockerfile", &df),
                ("nginx-build/static/index.html", "<h1>Hello world!</h1>\n"),
                ("nginx-build2/Dockerfile", &df2),
                ("nginx-build2/static2/index.html", "<h1>Hello world2!</h1>\n"),
            ],
        );
        let out = ok_all(p, &["build", "--progress", "plain"]);
        assert!(out.contains("COPY static /usr/share/nginx/html"), "{out}");
        assert!(has_image(p, &format!("{}-nginx", p.name)) && has_image(p, "custom-nginx"));
        ok_all(p, &["build", "--build-arg", "FOO=BAR"]);
        assert_eq!(inspect(p, &format!("{}-nginx", p.name))["config"]["Labels"]["FOO"], "BAR");
        let mut cmd = p.cmd(&["build", "--build-arg", "FOO"]);
        cmd.env("FOO", "FROM_SHELL");
        assert!(cmd.output().unwrap().status.success());
        assert_eq!(inspect(p, &format!("{}-nginx", p.name))["config"]["Labels"]["FOO"], "FROM_SHELL");
        assert_eq!(run_in(p, "nginx2", "cat /usr/share/nginx/html/index.html"), "<h1>Hello world2!</h1>\n");
        assert_build_clean(p);
    });
}

const BASE_DF: &str = "COPY hello.txt /hello.txt\nCMD [ \"/bin/true\" ]\n";

/// TestBuildImageDependencies (`fixtures/build-dependencies`): a service whose build uses another
/// service's image — as `additional_contexts: {base: service:base}` or, in `classic.yaml`, by
/// `FROM` the other service's `image:` — builds after it: `build`, `build --with-dependencies
/// service` and `up --build service` all make `<project>-service`; `down --rmi all` removes it.
#[test]
fn build_image_dependencies() {
    let contexts = "  base:\n    init: true\n    build:\n      context: .\n      dockerfile: base.dockerfile\n  \
                    service:\n    init: true\n    build:\n      context: .\n      additional_contexts:\n        \
                    base: \"service:base\"\n      dockerfile: service.dockerfile\n";
    scenario("e2ebuilddeps", contexts, |p| {
        let base = format!("FROM {BASE}\n{BASE_DF}");
        write(
            p.dir.path(),
            &[
                ("base.dockerfile", &base),
                ("service.dockerfile", "FROM base\nCMD [ \"cat\", \"/hello.txt\" ]\n"),
                ("hello.txt", "this file was copied from base -> service\n"),
            ],
        );
        let service = format!("{}-service", p.name);
        for args in [&["build"][..], &["build", "--with-dependencies", "service"], &["build", "service"]] {
            for s in ["base", "service"] {
                let _ = p.berth(&["image", "rm", "--force", &format!("{}-{s}", p.name)]);
            }
            ok_all(p, args);
            assert!(has_image(p, &service), "{args:?}");
        }
        for s in ["base", "service"] {
            p.ok(&["image", "rm", "--force", &format!("{}-{s}", p.name)]);
        }
        ok_all(p, &["up", "-d", "--build", "service"]);
        assert!(has_image(p, &service));
        p.wait_for(10, "service to print the file", || {
            String::from_utf8_lossy(&p.berth(&["logs", "service"]).stdout).contains("copied from base")
        });
        ok_all(p, &["down", "--rmi", "all"]);
        assert!(!has_image(p, &service), "down --rmi all removes the built image");

        // classic.yaml: `FROM base` names the base service's `image:`, and `depends_on` orders them.
        let classic = "  base:\n    image: base\n    init: true\n    build:\n      context: .\n      dockerfile: base.dockerfile\n  \
                       service:\n    init: true\n    depends_on:\n      - base\n    build:\n      context: .\n      dockerfile: service.dockerfile\n";
        p.write_compose(classic);
        ok_all(p, &["build", "--with-dependencies", "service"]);
        assert!(has_image(p, "base") && has_image(p, &service));
        ok_all(p, &["down", "--rmi", "all"]);
        assert!(!has_image(p, "base") && !has_image(p, &service));
        assert_build_clean(p);
    });
}

/// TestBuildDependsOn: `up test2` builds its `pull_policy: build` dependency first.
#[test]
fn build_depends_on() {
    let services = format!(
        "  test1:\n    pull_policy: build\n    build:\n      dockerfile_inline: FROM {BASE}\n    command: [echo, \"test 1 success\"]\n  \
         test2:\n    image: {BASE}\n    depends_on:\n      - test1\n    command: [echo, \"test 2 success\"]\n"
    );
    scenario("e2edependson", &services, |p| {
        let out = ok_all(p, &["--progress", "plain", "up", "test2"]);
        assert!(out.contains(&format!("{}-test1", p.name)) && out.contains("Built"), "{out}");
        assert!(out.contains("test 1 success") || has_image(p, &format!("{}-test1", p.name)), "{out}");
        assert!(out.contains("test 2 success"), "{out}");
        assert_build_clean(p);
    });
}

const CHAIN: &str = "  main:\n    build:\n      dockerfile_inline: |\n        FROM BASE\n      additional_contexts:\n        dep1: service:dep1\n        dep2: service:dep2\n    entrypoint: [\"echo\", \"Hello from main\"]\n  \
dep1:\n    build:\n      dockerfile_inline: |\n        FROM BASE\n      additional_contexts:\n        subdep1: service:subdep1\n        subdep2: service:subdep2\n    entrypoint: [\"echo\", \"Hello from dep1\"]\n  \
dep2:\n    build:\n      dockerfile_inline: |\n        FROM BASE\n    entrypoint: [\"echo\", \"Hello from dep2\"]\n  \
subdep1:\n    build:\n      dockerfile_inline: |\n        FROM BASE\n    entrypoint: [\"echo\", \"Hello from subdep1\"]\n  \
subdep2:\n    build:\n      dockerfile_inline: |\n        FROM BASE\n    entrypoint: [\"echo\", \"Hello from subdep2\"]\n  \
other:\n    build:\n      dockerfile_inline: |\n        FROM BASE\n";

/// TestBuildSubset, TestBuildDependentImage, TestBuildSubDependencies: `build main` builds only
/// main and the service images its build uses, transitively; `up --build main` the same, and
/// runs it.
#[test]
fn build_subset_and_service_context_chains() {
    scenario("e2echains", &CHAIN.replace("BASE", BASE), |p| {
        let img = |s: &str| format!("{}-{s}", p.name);
        ok_all(p, &["build", "dep2"]);
        assert!(has_image(p, &img("dep2")) && !has_image(p, &img("main")), "only the named service");
        p.ok(&["image", "rm", &img("dep2")]);
        ok_all(p, &["build", "main"]);
        for s in ["main", "dep1", "dep2", "subdep1", "subdep2"] {
            assert!(has_image(p, &img(s)), "{s} built for main");
        }
        assert!(!has_image(p, &img("other")), "a service main does not use is not built");
        for s in ["main", "dep1", "dep2", "subdep1", "subdep2"] {
            p.ok(&["image", "rm", "--force", &img(s)]);
        }
        let out = ok_all(p, &["up", "--build", "main"]);
        assert!(out.contains("Hello from main"), "{out}");
        for s in ["dep1", "dep2", "subdep1", "subdep2"] {
            assert!(has_image(p, &img(s)), "{s} built for up --build main");
        }
        assert_build_clean(p);
    });
}

/// TestBuildLongOutputLine: a step printing a very long line completes.
#[test]
fn build_long_output_line() {
    scenario("e2elongline", "  long-line:\n    build:\n      context: .\n      dockerfile: Dockerfile\n", |p| {
        let mut df = format!("FROM {BASE}\n");
        for _ in 0..50 {
            df.push_str("ARG AWS_SECRET_ACCESS_KEY=FAKE_TO_GENERATE_WARNING_OUTPUT\n");
        }
        df.push_str("RUN i=0; while [ $i -lt 20000 ]; do printf 'x'; i=$((i+1)); done; echo\n");
        write(p.dir.path(), &[("Dockerfile", &df)]);
        let out = ok_all(p, &["build", "--progress", "plain"]);
        assert!(out.contains("Built"), "{out}");
        assert!(out.lines().any(|l| l.len() > 20000), "the long line is shown whole");
        assert_build_clean(p);
    });
}

/// TestBuildEscaped: `$$` in the compose model reaches the build literally; a heredoc with a
/// command substitution and an escaped variable in `dockerfile_inline`.
#[test]
fn build_escaped() {
    let services = format!(
        "  foo:\n    build:\n      context: .\n      args:\n        foo: $${{bar}}\n  \
         echo:\n    build:\n      dockerfile_inline: |\n        FROM {BASE}\n        RUN <<'EOF'\n        echo $(seq 10)\n        EOF\n  \
         arg:\n    build:\n      args:\n        BOOL: \"true\"\n      dockerfile_inline: |\n        FROM {BASE}\n        ARG BOOL\n        RUN /bin/$${{BOOL}}\n"
    );
    scenario("e2eescaped", &services, |p| {
        write(p.dir.path(), &[("Dockerfile", &format!("FROM {BASE}\nARG foo\nRUN echo foo is $foo\n"))]);
        let out = ok_all(p, &["build", "--progress", "plain", "foo"]);
        assert!(out.contains("foo is ${bar}"), "{out}");
        let out = ok_all(p, &["build", "--progress", "plain", "echo"]);
        assert!(out.contains("1 2 3 4 5 6 7 8 9 10"), "{out}");
        ok_all(p, &["build", "arg"]);
        assert_build_clean(p);
    });
}

/// TestUpBuildUnchangedContext: `up -d --build` twice with nothing changed hits the cache, keeps
/// the image and does not recreate the container.
#[test]
fn up_build_unchanged_context() {
    scenario("e2eunchanged", "  app:\n    build: .\n", |p| {
        let df = format!("FROM {BASE}\nCOPY marker /marker\nCMD [\"sleep\", \"infinity\"]\n");
        write(p.dir.path(), &[("Dockerfile", &df), ("marker", "v1\n")]);
        ok_all(p, &["up", "-d", "--build"]);
        let image = inspect(p, &format!("{}-app", p.name))["Id"].clone();
        let id = p.ok(&["ps", "-q", "app"]);
        ok_all(p, &["up", "-d", "--build"]);
        assert_eq!(inspect(p, &format!("{}-app", p.name))["Id"], image, "the same image");
        assert_eq!(p.ok(&["ps", "-q", "app"]), id, "not recreated");
        assert_build_network_gone(p);
    });
}

/// TestBuildDependentImageWithProfile: building a profiled service activates its profile and
/// mounts its build secret.
#[test]
fn build_with_profile_and_secret() {
    let services = "  secret-build-test:\n    profiles: [\"test\"]\n    build:\n      context: .\n      dockerfile: Dockerfile\n      secrets:\n        - test-secret\n";
    scenario("e2eprofile", services, |p| {
        let compose = std::fs::read_to_string(p.dir.path().join("compose.yaml")).unwrap();
        let df = format!("FROM {BASE}\nRUN --mount=type=secret,id=test-secret ls -la /run/secrets/; cp /run/secrets/test-secret /tmp\nCMD [\"cat\", \"/tmp/test-secret\"]\n");
        write(
            p.dir.path(),
            &[
                ("compose.yaml", &format!("secrets:\n  test-secret:\n    file: test-secret.txt\n{compose}")),
                ("Dockerfile", &df),
                ("test-secret.txt", "SECRET\n"),
            ],
        );
        ok_all(p, &["--profile", "test", "build", "secret-build-test"]);
        assert_eq!(run_in(p, "secret-build-test", "cat /tmp/test-secret"), "SECRET\n");
        assert_build_clean(p);
    });
}

/// `fixtures/build-test/privileged`, `multi-args` and `minimal`, and
/// `simple-build-test/compose-interpolate.yaml`: `build.privileged` gives `RUN` every
/// capability; args in `FROM`; labels; `FROM scratch` with `COPY . .`; an interpolated
/// `dockerfile`.
#[test]
fn build_test_fixtures() {
    let services = "  privileged-service:\n    build:\n      context: privileged\n      privileged: true\n  \
         multiargs:\n    build:\n      context: multi-args\n      args:\n        IMAGE: berth-test/busybox\n        TAG: latest\n      labels:\n        - RESULT=SUCCESS\n  \
         minimal:\n    build: minimal\n  \
         interpolated:\n    build:\n      context: nginx-build\n      dockerfile: ${MYVAR}\n";
    scenario("e2efixtures", services, |p| {
        write(
            p.dir.path(),
            &[
                (
                    "privileged/Dockerfile",
                    &format!("FROM {BASE}\nRUN --security=insecure cat /proc/self/status | grep CapEff\n"),
                ),
                ("multi-args/Dockerfile", "ARG IMAGE=666\nARG TAG=666\nFROM ${IMAGE}:${TAG}\nRUN echo \"SUCCESS\"\n"),
                ("minimal/Dockerfile", "FROM scratch\nCOPY . .\n"),
                ("nginx-build/Other.dockerfile", &format!("FROM {BASE}\nRUN echo interpolated\n")),
            ],
        );
        let out = ok_all(p, &["build", "--progress", "plain", "privileged-service"]);
        let cap = out.lines().find_map(|l| l.split("CapEff:").nth(1)).expect("CapEff printed");
        assert!(u64::from_str_radix(cap.trim(), 16).unwrap().count_ones() >= 38, "every capability: {out}");
        let out = ok_all(p, &["build", "--progress", "plain", "multiargs"]);
        assert!(out.contains("SUCCESS"), "{out}");
        assert_eq!(inspect(p, &format!("{}-multiargs", p.name))["config"]["Labels"]["RESULT"], "SUCCESS");
        ok_all(p, &["build", "minimal"]);
        let layers = inspect(p, &format!("{}-minimal", p.name))["rootfs"]["diff_ids"].as_array().unwrap().len();
        assert_eq!(layers, 1, "scratch plus one COPY layer");
        let mut cmd = p.cmd(&["build", "--progress", "plain", "interpolated"]);
        cmd.env("MYVAR", "Other.dockerfile");
        let out = cmd.output().unwrap();
        assert!(String::from_utf8_lossy(&out.stderr).contains("interpolated"), "{out:?}");
        assert_build_clean(p);
    });
}
