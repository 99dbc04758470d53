//! The build rules: a build without `SOURCE_DATE_EPOCH`, and a Dockerfile whose final stage
//! installs compilers or leaves package lists behind (read from the `RUN` lines of the stage the
//! build ends at; a Dockerfile that cannot be read is not judged).

use std::path::Path;

use berth_compose::model::{Build, Service};
use berth_dockerfile::{Dockerfile, Instruction};

use super::rules::Cx;

/// Packages that are only needed to build.
const TOOLCHAINS: &[&str] =
    &["build-essential", "build-base", "gcc", "g++", "clang", "make", "cmake", "autoconf", "golang", "rustc", "cargo"];

/// Applies the build rules to the service `name`.
pub(super) fn build(cx: &mut Cx, name: &str, svc: &Service) {
    let Some(build) = &svc.build else { return };
    if !build.args.contains_key("SOURCE_DATE_EPOCH") {
        let message = format!("the build of `{name}` is not reproducible: no `SOURCE_DATE_EPOCH` in `build.args`");
        let fix = "add `SOURCE_DATE_EPOCH: ${SOURCE_DATE_EPOCH:-0}` to `build.args` (e.g. the last commit's time)";
        cx.add("build-not-reproducible", name, &["build", "args"], message, fix.to_string());
    }
    let Some(df) = read(build) else { return };
    let stage = match &build.target {
        Some(t) => df.stages.iter().find(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str())),
        None => df.stages.last(),
    };
    let Some(stage) = stage else { return };
    if let Some((line, what, fix)) = leftovers(stage) {
        let message = format!("the final stage of `{name}`'s Dockerfile {what} (line {line})");
        cx.add("build-leftovers", name, &["build"], message, fix.to_string());
    }
}

/// The service's Dockerfile, parsed; `None` when it is remote, missing or does not parse.
fn read(build: &Build) -> Option<Dockerfile> {
    if let Some(text) = &build.dockerfile_inline {
        return Dockerfile::parse("Dockerfile", text).ok();
    }
    let context = Path::new(build.context.as_deref()?);
    let path = context.join(build.dockerfile.as_deref().unwrap_or("Dockerfile"));
    let text = std::fs::read_to_string(&path).ok()?;
    Dockerfile::parse(&path.display().to_string(), &text).ok()
}

/// The first `RUN` of the stage that installs a toolchain, else the first that leaves package
/// lists (when none cleans them): its line, what it does and the fix.
fn leftovers(stage: &berth_dockerfile::Stage) -> Option<(usize, String, &'static str)> {
    let runs: Vec<(usize, String)> = stage
        .instructions
        .iter()
        .filter_map(|c| match &c.instruction {
            Instruction::Run(run) => {
                let mut text = run.command.args.join(" ");
                for f in &run.command.files {
                    text.push('\n');
                    text.push_str(&f.data);
                }
                Some((c.start_line, text))
            }
            _ => None,
        })
        .collect();
    let installs = |t: &str| t.contains("apt-get install") || t.contains("apt install") || t.contains("apk add");
    for (line, text) in runs.iter().filter(|(_, t)| installs(t)) {
        let words: Vec<&str> = text.split_whitespace().collect();
        if let Some(tool) = TOOLCHAINS.iter().find(|t| words.contains(t)) {
            let fix = "install build tools in an earlier stage and `COPY --from` only what it builds";
            return Some((*line, format!("installs `{tool}`"), fix));
        }
    }
    let cleaned = runs.iter().any(|(_, t)| t.contains("/var/lib/apt/lists"));
    let apt = runs.iter().find(|(_, t)| t.contains("apt-get update") || t.contains("apt update"));
    if let (Some((line, _)), false) = (apt, cleaned) {
        let fix = "end the `RUN` that installs with `&& rm -rf /var/lib/apt/lists/*`";
        return Some((*line, "keeps the apt package lists".to_string(), fix));
    }
    let apk = runs.iter().find(|(_, t)| t.contains("apk add") && !t.contains("--no-cache"));
    let fix = "install with `apk add --no-cache`";
    apk.map(|(line, _)| (*line, "keeps the apk package cache (no `--no-cache`)".to_string(), fix))
}
