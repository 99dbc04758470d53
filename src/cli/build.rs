//! `berth build`: builds the images of the services that have a `build:` section, with
//! BuildKit-like plain progress (`#5 [build 2/4] RUN make`, `#5 CACHED`, `RUN` output), JSON
//! lines with `--progress json`, or nothing but errors with `-q`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{bail, Context};
use berth::build::compose::{self, ComposeBuildOptions};
use berth::build::Secret;
use berth::events::{Event, EventSink};
use clap::Args;

use super::progress::{Choice, Mode};
use super::ProjectArgs;

/// Arguments of `berth build`.
#[derive(Args, Debug, Default)]
pub struct BuildArgs {
    /// Services to build (default: every service with a `build:` section)
    pub services: Vec<String>,
    /// Build every layer again, without the cache
    #[arg(long)]
    pub no_cache: bool,
    /// Pull base images even when they are present
    #[arg(long)]
    pub pull: bool,
    /// A build argument, `KEY=VALUE` or `KEY` (its value from the environment); repeatable
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
    /// How to show progress (`auto`, `plain`, `json`, `quiet`, `tty`)
    #[arg(long = "progress", value_enum, value_name = "MODE")]
    pub progress: Option<Choice>,
    /// A build secret, `id=ID,src=PATH` (a file) or `id=ID,env=VAR` (a variable's value); repeatable
    #[arg(long, value_name = "id=ID,src=PATH|env=VAR")]
    pub secret: Vec<String>,
    /// SSH agent forwarding (not supported)
    #[arg(long, value_name = "SPEC")]
    pub ssh: Vec<String>,
    /// Push the images after building (not supported: use `berth push`)
    #[arg(long)]
    pub push: bool,
    /// Also build the images of the named services' dependencies
    #[arg(long)]
    pub with_dependencies: bool,
    /// The network of `RUN` steps: `default` (the build bridge, with NAT), `none` or `host`
    #[arg(long, value_name = "MODE", value_parser = ["default", "none", "host"])]
    pub network: Option<String>,
    /// OCI runtime for `RUN` steps (default: crun when usable, else runc)
    #[arg(long, env = "BERTH_RUNTIME", value_name = "NAME")]
    pub runtime: Option<String>,
}

/// Runs `berth build`.
pub fn run(project: &ProjectArgs, args: BuildArgs) -> anyhow::Result<()> {
    if !args.ssh.is_empty() {
        bail!("--ssh is not supported: berth forwards no SSH agent into builds");
    }
    if args.push {
        bail!("--push is not supported: run `berth push` after `berth build`");
    }
    let loaded = berth_compose::load(&project.load_options()?)?;
    for w in &loaded.warnings {
        berth::output::warn(w);
    }
    let p = &loaded.project;
    for s in &args.services {
        if !p.services.contains_key(s) {
            bail!("no such service: `{s}`");
        }
    }
    let mut wanted: BTreeSet<String> = args.services.iter().cloned().collect();
    if args.with_dependencies && !wanted.is_empty() {
        let named: Vec<String> = wanted.iter().cloned().collect();
        wanted.extend(berth::graph::ServiceGraph::new(p).with_dependencies(&named));
    }
    // Images a build uses (`additional_contexts: service:NAME`) are built first, and always.
    let mut todo: Vec<String> = wanted.iter().cloned().collect();
    while let Some(name) = todo.pop() {
        for dep in p.services.get(&name).map(compose::image_dependencies).unwrap_or_default() {
            if wanted.insert(dep.clone()) {
                todo.push(dep);
            }
        }
    }
    let opts = ComposeBuildOptions {
        no_cache: args.no_cache,
        pull: args.pull,
        args: build_args(&args.build_args)?,
        secrets: secrets(&args.secret)?,
        source_date_epoch: compose::source_date_epoch(),
        runtime: args.runtime.clone(),
        network: args.network.as_deref().and_then(compose::network_mode),
    };
    let mode = if args.quiet { Mode::Quiet } else { Mode::of(args.progress.unwrap_or(project.progress)) };
    let sink = Renderer { mode };
    let roots = berth::container::Roots::from_env();
    let mut built = BTreeSet::new();
    for name in build_order(p) {
        let svc = &p.services[&name];
        if (!wanted.is_empty() && !wanted.contains(&name)) || !compose::buildable(svc) {
            continue;
        }
        if !built.insert(svc.image_name(p)) {
            continue;
        }
        let req = compose::request(p, svc, &opts).with_context(|| format!("service `{name}`"))?;
        berth::build::build(&req, &roots, &sink).with_context(|| format!("service `{name}`: build failed"))?;
    }
    Ok(())
}

/// The project's services, each after the services whose images its build uses (by name
/// otherwise); a cycle is left to fail when its image is missing.
fn build_order(p: &berth_compose::Project) -> Vec<String> {
    fn visit(p: &berth_compose::Project, name: &str, seen: &mut BTreeSet<String>, out: &mut Vec<String>) {
        if !seen.insert(name.to_string()) {
            return;
        }
        for dep in p.services.get(name).map(compose::image_dependencies).unwrap_or_default() {
            visit(p, &dep, seen, out);
        }
        out.push(name.to_string());
    }
    let (mut seen, mut out) = (BTreeSet::new(), Vec::new());
    for name in p.services.keys() {
        visit(p, name, &mut seen, &mut out);
    }
    out.retain(|n| p.services.contains_key(n));
    out
}

/// `KEY=VALUE` pairs; a bare `KEY` takes its value from the environment (and is left out when
/// it is not set there).
fn build_args(list: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in list {
        match a.split_once('=') {
            Some(("", _)) => bail!("--build-arg {a:?}: no name"),
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

/// `id=ID,src=PATH` (also `source=`, `type=file`) or `id=ID,env=VAR` (also `type=env`), as
/// `docker buildx build --secret` takes them; with neither `src` nor `env`, the variable named
/// like the id when it is set, else the file.
fn secrets(list: &[String]) -> anyhow::Result<BTreeMap<String, Secret>> {
    let mut out = BTreeMap::new();
    for s in list {
        let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
        for field in s.split(',') {
            match field.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("env", v)) => env = Some(v.to_string()),
                Some(("type", v @ ("file" | "env"))) => kind = Some(v),
                Some(("type", v)) => bail!("--secret {s:?}: unknown type {v:?} (file or env)"),
                _ => bail!("--secret {s:?}: expected id=ID,src=PATH or id=ID,env=VAR"),
            }
        }
        let id = id.ok_or_else(|| anyhow::anyhow!("--secret {s:?}: no id"))?;
        let kind = kind.unwrap_or(match (&src, &env) {
            (Some(_), _) => "file",
            (None, Some(_)) => "env",
            (None, None) if std::env::var_os(&id).is_some() => "env",
            (None, None) => "file",
        });
        let secret = if kind == "env" {
            let var = env.or_else(|| src.map(|p| p.display().to_string())).unwrap_or_else(|| id.clone());
            let value = std::env::var(&var).map_err(|_| anyhow::anyhow!("--secret {s:?}: ${var} is not set"))?;
            Secret::Value(value)
        } else {
            let src = src.unwrap_or_else(|| PathBuf::from(&id));
            if !src.is_file() {
                bail!("--secret {s:?}: `{}` is not a file", src.display());
            }
            // Bind-mounted into `RUN` containers: an absolute path.
            Secret::File(std::fs::canonicalize(&src)?)
        };
        out.insert(id, secret);
    }
    Ok(out)
}

/// The text line of a build event in plain output, BuildKit's way.
pub fn plain_line(event: &Event) -> Option<String> {
    Some(match event {
        Event::BuildStarted { image, steps } => format!("#0 building {image} ({steps} steps)"),
        Event::BuildStep { step, stage, position, instruction, .. } => {
            format!("#{step} [{stage} {position}] {instruction}")
        }
        Event::BuildOutput { step, line, .. } => format!("#{step} {line}"),
        Event::BuildStepDone { step, cached: true, .. } => format!("#{step} CACHED"),
        Event::BuildStepDone { step, millis, .. } => format!("#{step} DONE {:.1}s", *millis as f64 / 1000.0),
        Event::ImageBuilt { image, id, steps, cached, containers, millis } => format!(
            " Image {image}  Built  {}  ({steps} steps, {cached} layers cached, {containers} RUN containers, {:.1}s)",
            id.strip_prefix("sha256:").unwrap_or(id).get(..12).unwrap_or(id),
            *millis as f64 / 1000.0
        ),
        _ => return None,
    })
}

/// Renders build events.
struct Renderer {
    mode: Mode,
}

impl EventSink for Renderer {
    fn emit(&self, event: Event) {
        match (&event, self.mode) {
            (Event::Warning { message }, Mode::Json) => eprintln!("{}", serde_json::json!({"warning": message})),
            (Event::Warning { message }, _) => berth::output::warn(message),
            (_, Mode::Quiet) => {}
            (_, Mode::Json) => eprintln!("{}", serde_json::to_string(&event).unwrap_or_default()),
            _ => {
                if let Some(line) = plain_line(&event) {
                    eprintln!("{line}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_args_take_bare_names_from_the_environment() {
        std::env::set_var("BERTH_TEST_BUILD_ARG", "from-env");
        let a = build_args(&["A=1".into(), "BERTH_TEST_BUILD_ARG".into(), "BERTH_TEST_UNSET_ARG".into()]).unwrap();
        assert_eq!(a.get("A").map(String::as_str), Some("1"));
        assert_eq!(a.get("BERTH_TEST_BUILD_ARG").map(String::as_str), Some("from-env"));
        assert!(!a.contains_key("BERTH_TEST_UNSET_ARG"));
    }

    #[test]
    fn plain_lines_look_like_buildkit() {
        let e = Event::BuildStep {
            image: "x".into(),
            step: 5,
            stage: "build".into(),
            position: "2/4".into(),
            instruction: "RUN make".into(),
        };
        assert_eq!(plain_line(&e).unwrap(), "#5 [build 2/4] RUN make");
        let d = Event::BuildStepDone { image: "x".into(), step: 5, cached: true, millis: 3 };
        assert_eq!(plain_line(&d).unwrap(), "#5 CACHED");
    }
}
