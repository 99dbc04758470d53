//! System tests (root): build secrets that are values (a compose `environment:` or `content:`
//! secret, `berth build --secret id=ID,env=VAR`) reach `RUN` and never the image; local build
//! caches (`cache_to: type=local`, `cache_from: type=local`) carry every layer to a fresh state
//! root.

mod support;
#[allow(unused_imports)]
use support::Registry as _;
#[path = "support/builds.rs"]
mod builds;
#[path = "support/containers.rs"]
mod harness;

use std::io::Read;

use builds::{assert_build_clean, build, cached_steps, run_in, scenario, write, BASE};
use sha2::{Digest as _, Sha256};

/// Every file of the image archive `path`, gzip layers decompressed: what the image holds.
fn archive_bytes(path: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    let mut tar = tar::Archive::new(std::fs::File::open(path).unwrap());
    for entry in tar.entries().unwrap() {
        let mut data = Vec::new();
        entry.unwrap().read_to_end(&mut data).unwrap();
        if data.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&data[..]).read_to_end(&mut plain).unwrap();
            data = plain;
        }
        all.extend(data);
    }
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn environment_content_and_cli_secrets_reach_run_and_never_the_image() {
    let services = "  app:\n    build:\n      context: .\n      secrets: [envsecret, inline]\n\
                    secrets:\n  envsecret:\n    environment: BUILD_TOKEN_FOR_TEST\n  inline:\n    content: inline-value-6b1f2a\n";
    scenario("buildvalsecret", services, |p| {
        let dockerfile = format!(
            "FROM {BASE}\n\
             RUN --mount=type=secret,id=envsecret sha256sum /run/secrets/envsecret | cut -d' ' -f1 > /env.sha && stat -c %a /run/secrets/envsecret > /env.mode\n\
             RUN --mount=type=secret,id=inline,env=INLINE printf %s \"$INLINE\" | sha256sum | cut -d' ' -f1 > /inline.sha\n\
             RUN --mount=type=secret,id=cli,required=true,mode=0440 sha256sum /run/secrets/cli | cut -d' ' -f1 > /cli.sha\n"
        );
        write(p.dir.path(), &[("Dockerfile", &dockerfile)]);
        let (env_value, cli_value) = ("env-value-93c7d1", "cli-value-0e55ab");
        let env = [("BUILD_TOKEN_FOR_TEST", env_value), ("CLI_TOKEN_FOR_TEST", cli_value)];
        let (built, _) = build(p, &["--secret", "id=cli,env=CLI_TOKEN_FOR_TEST"], &env);
        assert_eq!(built["containers"], 3, "{built}");
        let sha = |v: &str| hex::encode(Sha256::digest(v.as_bytes()));
        let out = run_in(p, "app", "cat /env.sha /env.mode /inline.sha /cli.sha; ls -A /run/secrets 2>&1; true");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], sha(env_value), "the environment secret as a file: {out}");
        assert_eq!(lines[1], "400", "a value secret's default mode: {out}");
        assert_eq!(lines[2], sha("inline-value-6b1f2a"), "the content secret as a variable: {out}");
        assert_eq!(lines[3], sha(cli_value), "--secret id=ID,env=VAR: {out}");
        assert!(!out.contains("envsecret") && !out.contains("cli\n"), "no secret file in the image: {out}");

        let archive = p.dir.path().join("image.tar");
        p.ok(&["image", "save", "-o", archive.to_str().unwrap(), &format!("{}-app", p.name)]);
        let bytes = archive_bytes(&archive);
        assert!(contains(&bytes, b"/env.sha"), "the archive is readable: the history names the step");
        for value in [env_value, cli_value, "inline-value-6b1f2a"] {
            assert!(!contains(&bytes, value.as_bytes()), "{value} is in the image's layers or config");
        }

        let unset = p.berth(&["build", "--progress", "plain"]);
        assert!(!unset.status.success(), "an environment secret whose variable is unset fails");
        let err = String::from_utf8_lossy(&unset.stderr);
        assert!(err.contains("BUILD_TOKEN_FOR_TEST"), "{err}");
        assert_build_clean(p);
    });
}

#[test]
fn a_local_cache_carries_every_layer_to_a_fresh_state_root() {
    let cache = tempfile::Builder::new().prefix("berth-cache-").tempdir().unwrap();
    let dir = cache.path().join("c");
    let dockerfile = format!(
        "FROM {BASE} AS build\nRUN echo built > /artifact\nCOPY a.txt /a.txt\n\
         FROM {BASE}\nCOPY --from=build /artifact /artifact\nRUN cat /artifact > /copy\nENV X=1\nRUN echo $X > /x\n"
    );
    let files = [("Dockerfile", dockerfile.as_str()), ("a.txt", "a\n")];
    let to = format!("  app:\n    build:\n      context: .\n      cache_to: [\"type=local,dest={}\"]\n", dir.display());
    let first_id = std::cell::RefCell::new(serde_json::Value::Null);
    scenario("buildcacheto", &to, |p| {
        write(p.dir.path(), &files);
        let (built, ev) = build(p, &[], &[]);
        assert_eq!(built["containers"], 3, "{built}");
        assert!(cached_steps(&ev).is_empty());
        assert!(dir.join("berth-cache.json").is_file() && dir.join("oci-layout").is_file());
        *first_id.borrow_mut() = built["id"].clone();
    });
    let from =
        format!("  app:\n    build:\n      context: .\n      cache_from: [\"type=local,src={}\"]\n", dir.display());
    scenario("buildcachefrom", &from, |p| {
        write(p.dir.path(), &files);
        let config = p.berth(&["config", "-q"]);
        let warnings = String::from_utf8_lossy(&config.stderr);
        assert!(config.status.success() && !warnings.contains("cache_from"), "{warnings}");
        let (built, ev) = build(p, &[], &[]);
        assert_eq!(built["containers"], 0, "every layer from the cache directory: {built}");
        assert_eq!(cached_steps(&ev), [2, 3, 5, 6, 8], "{ev:?}");
        assert_eq!(built["id"], *first_id.borrow(), "the same image");
        assert_eq!(run_in(p, "app", "cat /copy /x"), "built\n1\n");
        // The imported entries are now in this root's own cache.
        p.write_compose("  app:\n    build: .\n");
        let (again, _) = build(p, &[], &[]);
        assert_eq!(again["containers"], 0, "{again}");
        // A change still rebuilds from the changed step on.
        write(p.dir.path(), &[("a.txt", "b\n")]);
        let (changed, ev) = build(p, &[], &[]);
        assert_eq!(cached_steps(&ev), [2], "only what comes before the changed COPY is cached");
        assert_eq!(changed["containers"], 2);
        assert_build_clean(p);
    });
}
