//! Build-arg scoping and instruction expansion tests.

use super::*;

fn setup(text: &str) -> Dockerfile {
    Dockerfile::parse("Dockerfile", text).unwrap_or_else(|e| panic!("{e}"))
}

fn run_stage(df: &Dockerfile, args: &BuildArgs, stage: usize) -> (Vec<Instruction>, Vec<(String, String)>) {
    let global = args.global_scope(df).unwrap();
    let mut env = StageEnv::new(df, args, &global);
    let out = df.stages[stage].instructions.iter().map(|c| env.step(c).unwrap()).collect();
    (out, env.run_env())
}

fn workdir(i: &Instruction) -> &str {
    match i {
        Instruction::Workdir(w) => &w.path,
        other => panic!("{other:?}"),
    }
}

#[test]
fn global_args_reach_from_but_not_stages_until_redeclared() {
    let df = setup("ARG BASE=alpine\nARG TAG=3.$MINOR\nFROM $BASE:$TAG\nWORKDIR /a$BASE\nARG BASE\nWORKDIR /b$BASE\n");
    let mut args = BuildArgs::new();
    args.set("MINOR", "19");
    let global = args.global_scope(&df).unwrap();
    // MINOR was never declared, so it does not expand even though it was given.
    assert_eq!(global.expand_from(&df, &df.stages[0]).unwrap().0, "alpine:3.");
    args.set("TAG", "edge");
    let global = args.global_scope(&df).unwrap();
    assert_eq!(global.expand_from(&df, &df.stages[0]).unwrap().0, "alpine:edge");
    let (out, _) = run_stage(&df, &args, 0);
    assert_eq!(workdir(&out[0]), "/a");
    assert_eq!(workdir(&out[2]), "/balpine");
}

#[test]
fn build_args_override_defaults_and_env_overrides_args() {
    let df = setup("FROM x\nARG V=default\nWORKDIR /$V\nENV V=fromenv\nARG V=again\nWORKDIR /$V\n");
    let (out, run) = run_stage(&df, &BuildArgs::new(), 0);
    assert_eq!(workdir(&out[1]), "/default");
    assert_eq!(workdir(&out[4]), "/fromenv");
    assert_eq!(run, vec![("V".to_string(), "fromenv".to_string())]);
    let mut args = BuildArgs::new();
    args.set("V", "cli");
    let (out, _) = run_stage(&df, &args, 0);
    assert_eq!(workdir(&out[1]), "/cli");
}

#[test]
fn arg_default_sees_earlier_env_and_args() {
    let df = setup("FROM x\nENV A=1\nARG B=${A}2\nARG C=$B$B\nWORKDIR /$C\n");
    let (out, _) = run_stage(&df, &BuildArgs::new(), 0);
    assert_eq!(workdir(&out[3]), "/1212");
}

#[test]
fn platform_args() {
    let df = setup("FROM --platform=$BUILDPLATFORM golang AS b\nWORKDIR /$TARGETARCH\nARG TARGETARCH\nWORKDIR /$TARGETARCH/$TARGETOS\n");
    let mut args = BuildArgs::new();
    args.target_platform = Platform::parse("linux/arm64");
    args.build_platform = Platform::parse("linux/amd64");
    let global = args.global_scope(&df).unwrap();
    assert_eq!(global.expand_from(&df, &df.stages[0]).unwrap().1.as_deref(), Some("linux/amd64"));
    let (out, _) = run_stage(&df, &args, 0);
    assert_eq!(workdir(&out[0]), "/");
    assert_eq!(workdir(&out[2]), "/arm64/");
    args.set("TARGETARCH", "riscv64");
    assert_eq!(args.platform_args()[2], ("TARGETARCH".to_string(), "riscv64".to_string()));
    assert_eq!(Platform::parse("linux/arm/v7").to_string(), "linux/arm/v7");
}

#[test]
fn proxies_in_run_env_without_declaration() {
    let df = setup("FROM x\nRUN true\nWORKDIR /$HTTP_PROXY\n");
    let mut args = BuildArgs::new();
    args.set("HTTP_PROXY", "http://p:3128").set("OTHER", "x");
    let (out, run) = run_stage(&df, &args, 0);
    assert_eq!(workdir(&out[1]), "/");
    assert_eq!(run, vec![("HTTP_PROXY".to_string(), "http://p:3128".to_string())]);
}

#[test]
fn expansion_errors_name_the_line() {
    let df = setup("FROM x\n\nWORKDIR ${A:?must be set}\n");
    let args = BuildArgs::new();
    let global = args.global_scope(&df).unwrap();
    let mut env = StageEnv::new(&df, &args, &global);
    let e = env.step(&df.stages[0].instructions[0]).unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.to_string().contains("A: must be set"), "{e}");
    let df = setup("ARG X=${Y:?no}\nFROM a\n");
    assert_eq!(args.global_scope(&df).unwrap_err().line, 1);
}

#[test]
fn expansion_of_each_instruction() {
    let df = setup(concat!(
        "FROM x\n",
        "ENV P=/p U=me S=SIGTERM F=builder\n",
        "COPY --from=$F --chown=$U --chmod=6$U \"$P/a\"b $P/dst/\n",
        "ADD --checksum=$S ${P}x /y\n",
        "EXPOSE $PORTS 80\n",
        "VOLUME $P/v\n",
        "USER $U\n",
        "STOPSIGNAL $S\n",
        "LABEL k$U=\"v $P\"\n",
        "RUN --mount=type=bind,source=$P,target=/t echo $P\n",
        "CMD echo $P\n",
        "ONBUILD RUN echo $P\n",
        "COPY <<EOF <<'RAW' /d/\n$P \"q\"\nEOF\n$P\nRAW\n",
    ));
    let mut args = BuildArgs::new();
    args.set("PORTS", "1 2");
    let (out, _) = run_stage(&df, &args, 0);
    let Instruction::Copy(c) = &out[1] else { panic!() };
    assert_eq!((c.from.as_deref(), c.chown.as_deref(), c.chmod.as_deref()), (Some("builder"), Some("me"), Some("6me")));
    assert_eq!((c.sources.clone(), c.dest.as_str()), (vec!["/p/ab".to_string()], "/p/dst/"));
    let Instruction::Add(a) = &out[2] else { panic!() };
    assert_eq!((a.checksum.as_deref(), a.sources[0].as_str()), (Some("SIGTERM"), "/px"));
    let Instruction::Expose(e) = &out[3] else { panic!() };
    assert_eq!(e.ports, vec!["80"], "undeclared build args do not expand");
    assert!(matches!(&out[4], Instruction::Volume(v) if v.paths == vec!["/p/v"]));
    assert!(matches!(&out[5], Instruction::User(u) if u.user == "me"));
    assert!(matches!(&out[6], Instruction::StopSignal(s) if s.signal == "SIGTERM"));
    assert!(matches!(&out[7], Instruction::Label(l) if l.labels[0].key == "kme" && l.labels[0].value == "v /p"));
    let Instruction::Run(r) = &out[8] else { panic!() };
    assert_eq!((r.mounts[0].source.as_deref(), r.command.args[0].as_str()), (Some("/p"), "echo $P"));
    assert!(matches!(&out[9], Instruction::Cmd(c) if c.command.args == vec!["echo $P"]));
    assert!(matches!(&out[10], Instruction::Onbuild(o) if o.expression == "RUN echo $P"));
    let Instruction::Copy(c) = &out[11] else { panic!() };
    assert_eq!(c.inline[0].data, "/p \"q\"\n");
    assert_eq!(c.inline[1].data, "$P\n");
}
