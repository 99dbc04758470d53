//! Typed-instruction tests: flags, argument rules, heredoc sources, ONBUILD.

use super::*;
use crate::parser::parse;

fn one(line: &str) -> Result<Instruction, crate::Error> {
    let ast = parse("Dockerfile", &format!("FROM x\n{line}\n"))?;
    parse_command("Dockerfile", &ast.nodes[1]).map(|c| c.instruction)
}

#[test]
fn copy_flags() {
    let Instruction::Copy(c) =
        one("COPY --from=build --chown=1:2 --chmod=644 --link --parents --exclude=*.md --exclude=x a b /dst/").unwrap()
    else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!((c.chown.as_deref(), c.chmod.as_deref()), (Some("1:2"), Some("644")));
    assert!(c.link && c.parents);
    assert_eq!(c.exclude, vec!["*.md", "x"]);
    assert_eq!((c.sources.clone(), c.dest.as_str()), (vec!["a".to_string(), "b".to_string()], "/dst/"));
}

#[test]
fn unknown_flag_names_line() {
    let e = one("COPY --frmo=x a b").unwrap_err();
    assert_eq!(e.to_string(), "Dockerfile:2: unknown flag for COPY: --frmo");
    let e = one("WORKDIR --x=1 /a").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(one("ADD --from=x a b").is_err());
}

#[test]
fn add_flags() {
    let Instruction::Add(a) =
        one("ADD --keep-git-dir=true --checksum=sha256:abc --unpack=false https://x/y.tgz /d").unwrap()
    else {
        panic!()
    };
    assert_eq!((a.keep_git_dir, a.unpack, a.checksum.as_deref()), (Some(true), Some(false), Some("sha256:abc")));
}

#[test]
fn copy_heredoc_source() {
    let ast = parse("Dockerfile", "FROM x\nCOPY <<-EOT /etc/conf\n\ta=$A\n\tEOT\n").unwrap();
    let Instruction::Copy(c) = parse_command("Dockerfile", &ast.nodes[1]).unwrap().instruction else { panic!() };
    assert!(c.sources.is_empty());
    assert_eq!(c.inline, vec![InlineSource { path: "EOT".into(), data: "a=$A\n".into(), expand: true }]);
    assert!(one("COPY a <<EOF").is_err());
}

#[test]
fn run_flags() {
    let Instruction::Run(r) =
        one("RUN --mount=type=cache,target=/c --network=none --security=insecure echo hi").unwrap()
    else {
        panic!()
    };
    assert_eq!(r.mounts.len(), 1);
    assert_eq!((r.network, r.security), (Some(NetworkMode::None), Some(Security::Insecure)));
    assert_eq!(r.command.args, vec!["echo hi"]);
    assert!(r.command.prepend_shell());
    assert!(one("RUN --network=bridge x").is_err());
}

#[test]
fn from_forms() {
    let ast = parse("Dockerfile", "FROM --platform=$BUILDPLATFORM golang:1 AS Build\n").unwrap();
    let Instruction::From(f) = parse_instruction(&ast.nodes[0]).unwrap() else { panic!() };
    assert_eq!(
        (f.image.as_str(), f.name.as_deref(), f.platform.as_deref()),
        ("golang:1", Some("build"), Some("$BUILDPLATFORM"))
    );
    for bad in ["FROM a AS", "FROM a b c", "FROM a AS 1x"] {
        let ast = parse("Dockerfile", bad).unwrap();
        assert!(parse_instruction(&ast.nodes[0]).is_err(), "{bad}");
    }
}

#[test]
fn env_label_arg() {
    let Instruction::Env(e) = one("ENV A=1 B=\"2 3\"").unwrap() else { panic!() };
    assert_eq!(e.vars[1], KeyValue { key: "B".into(), value: "\"2 3\"".into(), legacy: false });
    let Instruction::Env(e) = one("ENV A 1 2").unwrap() else { panic!() };
    assert_eq!(e.vars[0], KeyValue { key: "A".into(), value: "1 2".into(), legacy: true });
    let Instruction::Arg(a) = one("ARG A B=2").unwrap() else { panic!() };
    assert_eq!(a.args[0].default, None);
    assert_eq!(a.args[1].default.as_deref(), Some("2"));
    assert!(one("ARG =x").is_err());
    assert!(one("LABEL").is_err());
}

#[test]
fn healthcheck_forms() {
    assert_eq!(one("HEALTHCHECK NONE").unwrap(), Instruction::Healthcheck(Healthcheck::None));
    let Instruction::Healthcheck(Healthcheck::Check(h)) =
        one("HEALTHCHECK --interval=5s --timeout=3s --retries=3 --start-period=1m CMD curl -f localhost").unwrap()
    else {
        panic!()
    };
    assert_eq!(h.test, vec!["CMD-SHELL", "curl -f localhost"]);
    assert_eq!(h.interval, Some(std::time::Duration::from_secs(5)));
    assert_eq!(h.retries, Some(3));
    let Instruction::Healthcheck(Healthcheck::Check(h)) = one("HEALTHCHECK CMD [\"a\", \"b\"]").unwrap() else {
        panic!()
    };
    assert_eq!(h.test, vec!["CMD", "a", "b"]);
    for bad in [
        "HEALTHCHECK NONE x",
        "HEALTHCHECK CMD",
        "HEALTHCHECK CONNECT x",
        "HEALTHCHECK --retries=-1 CMD x",
        "HEALTHCHECK --interval=1ns CMD x",
        "HEALTHCHECK --bogus=1 CMD x",
    ] {
        assert!(one(bad).is_err(), "{bad}");
    }
}

#[test]
fn onbuild() {
    let Instruction::Onbuild(o) = one("ONBUILD RUN echo hi").unwrap() else { panic!() };
    assert_eq!(o.expression, "RUN echo hi");
    assert!(matches!(*o.trigger, Instruction::Run(_)));
    for bad in ["ONBUILD ONBUILD RUN x", "ONBUILD FROM x", "ONBUILD MAINTAINER me", "ONBUILD COPY --bad=1 a b"] {
        let e = one(bad).unwrap_err();
        assert_eq!(e.line, 2, "{bad}");
    }
}

#[test]
fn other_instructions() {
    assert!(matches!(one("MAINTAINER me <me@x>").unwrap(), Instruction::Maintainer(_)));
    assert!(matches!(one("SHELL [\"bash\", \"-c\"]").unwrap(), Instruction::Shell(_)));
    assert!(one("SHELL bash -c").is_err());
    let Instruction::Volume(v) = one("VOLUME /a /b").unwrap() else { panic!() };
    assert_eq!(v.paths, vec!["/a", "/b"]);
    let Instruction::Volume(v) = one("VOLUME [\"/a b\"]").unwrap() else { panic!() };
    assert!(v.json && v.paths == vec!["/a b"]);
    assert!(matches!(one("STOPSIGNAL SIGTERM").unwrap(), Instruction::StopSignal(_)));
    assert!(one("USER").is_err());
    let Instruction::Entrypoint(e) = one("ENTRYPOINT []").unwrap() else { panic!() };
    assert!(e.command.json && e.command.args.is_empty());
    assert!(matches!(one("EXPOSE 80/tcp 443").unwrap(), Instruction::Expose(_)));
}
