//! Stage list and build-plan tests.

use super::*;
use crate::args::BuildArgs;

fn df(text: &str) -> Dockerfile {
    Dockerfile::parse("Dockerfile", text).unwrap_or_else(|e| panic!("{e}"))
}

fn plan(d: &Dockerfile, target: Option<&str>) -> Result<BuildPlan> {
    let args = BuildArgs::new();
    d.plan(target, &args.global_scope(d)?)
}

const MULTI: &str = "ARG GO=golang:1.22\n\
FROM $GO AS Deps\nRUN go mod download\n\
FROM deps AS build-api\nRUN go build ./api\n\
FROM deps AS build-web\nRUN go build ./web\n\
FROM alpine AS unused\n\
FROM scratch AS final\nCOPY --from=BUILD-API /api /\nCOPY --from=2 /web /\n\
RUN --mount=from=busybox,target=/bb --mount=type=cache,target=/c true\n";

#[test]
fn stages_and_meta_args() {
    let d = df(MULTI);
    assert_eq!(d.meta_args.len(), 1);
    assert_eq!(d.stages.len(), 5);
    assert_eq!(d.stages[0].name.as_deref(), Some("deps"));
    assert_eq!(d.stage_by_name("DEPS").map(|s| s.index), Some(0));
    assert_eq!(d.stages[4].line, 9);
}

#[test]
fn levels_for_default_target() {
    let d = df(MULTI);
    let p = plan(&d, None).unwrap();
    assert_eq!(p.target, 4);
    assert_eq!(p.levels, vec![vec![0], vec![1, 2], vec![4]]);
    assert_eq!(p.deps[&4], vec![1, 2]);
    assert_eq!(p.order(), vec![0, 1, 2, 4]);
    let p = plan(&d, Some("Build-Web")).unwrap();
    assert_eq!(p.levels, vec![vec![0], vec![2]]);
    assert_eq!(plan(&d, Some("unused")).unwrap().levels, vec![vec![3]]);
    assert_eq!(plan(&d, Some("1")).unwrap().target, 1);
}

#[test]
fn unknown_target_is_an_error() {
    let e = plan(&df(MULTI), Some("nope")).unwrap_err();
    assert!(e.to_string().contains("target stage \"nope\" could not be found"), "{e}");
}

#[test]
fn forward_and_circular_references_name_the_line() {
    let d = df("FROM a AS one\nCOPY --from=two /x /\nFROM b AS two\n");
    assert_eq!(plan(&d, Some("one")).unwrap_err().line, 2);
    let d = df("FROM a AS one\nRUN --mount=from=one,target=/x true\n");
    let e = plan(&d, None).unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.to_string().contains("circular"), "{e}");
    let d = df("FROM a\nCOPY --from=5 /x /\n");
    assert_eq!(plan(&d, None).unwrap_err().line, 2);
    let d = df("FROM later AS first\nFROM x AS later\n");
    assert_eq!(plan(&d, Some("first")).unwrap_err().line, 1);
}

#[test]
fn global_args_can_name_stages() {
    let d = df("ARG SRC=builder\nFROM alpine AS builder\nFROM ${SRC}\nCOPY --from=$SRC /a /b\n");
    let p = plan(&d, None).unwrap();
    assert_eq!(p.levels, vec![vec![0], vec![1]]);
}

#[test]
fn structure_errors() {
    let e = Dockerfile::parse("Dockerfile", "RUN x\nFROM a\n").unwrap_err();
    assert_eq!(e.line, 1);
    let e = Dockerfile::parse("Dockerfile", "ARG A\n").unwrap_err();
    assert_eq!(e.line, 1);
    let e = Dockerfile::parse("Dockerfile", "FROM a AS x\nFROM b AS X\n").unwrap_err();
    assert_eq!(e.line, 2);
}
