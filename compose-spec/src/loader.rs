//! The loading pipeline: find the files and the environment, then for each file parse →
//! interpolate → expand short syntax → `extends` → `include`, merge the files in order, and
//! hand the merged tree to the typed model, normalization and validation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::env::{project_environment, Environment, Origin, Var};
use crate::error::{Error, Result};
use crate::interpolate::{self, Modifier};
use crate::model::{Include, Project};
use crate::yaml::{Node, Span, Value};
use crate::{canonical, merge, normalize, paths, resolved, validate, yaml};

/// The file names Compose looks for, in order of preference.
pub const DEFAULT_FILES: [&str; 4] = ["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"];

/// How to load a project (what the command line and environment asked for).
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `-f` files; `-` is standard input (given in `stdin`).
    pub files: Vec<PathBuf>,
    /// Standard input's content when a file is `-`.
    pub stdin: Option<String>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--env-file` (repeatable).
    pub env_files: Vec<PathBuf>,
    /// `--profile` (repeatable).
    pub profiles: Vec<String>,
    /// Services named on the command line: enabled whatever their profiles.
    pub services: Vec<String>,
    /// The directory berth runs in.
    pub cwd: PathBuf,
    /// The shell environment.
    pub shell: Environment,
    /// Skip interpolation (`--no-interpolate`).
    pub no_interpolate: bool,
    /// Skip normalization (`--no-normalize`).
    pub no_normalize: bool,
    /// Skip consistency checks (undefined references, cycles). The checks of names, values
    /// and bounds (`validate::check_formats`) and the resolution of each service
    /// (`resolved::check`) run whatever this says, unless interpolation is skipped.
    pub no_consistency: bool,
    /// Keys berth does not carry out are errors, not warnings (`--strict`; also
    /// `x-berth: {strict: true}` in the file).
    pub strict: bool,
    /// Compose v1's names (`--compatibility`; also `COMPOSE_COMPATIBILITY=true`).
    pub compatibility: bool,
}

/// One interpolated value and the variables that made it, for `config --explain`.
#[derive(Clone, Debug, PartialEq)]
pub struct Interpolation {
    /// Key path of the value.
    pub path: String,
    /// Where the value is written.
    pub span: Span,
    /// The text as written.
    pub template: String,
    /// The result.
    pub result: String,
    /// Each variable met.
    pub variables: Vec<VariableUse>,
}

/// A variable used by an interpolation.
#[derive(Clone, Debug, PartialEq)]
pub struct VariableUse {
    /// The variable.
    pub name: String,
    /// Where it was set; `None` when it was not set.
    pub origin: Option<Origin>,
    /// Its value when set.
    pub value: Option<String>,
    /// The modifier written (`:-`, `?`, ...), if any.
    pub modifier: Option<Modifier>,
    /// The default or replacement text was used instead of the value.
    pub used_default: bool,
}

/// A loaded project and what was learned on the way.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The project.
    pub project: Project,
    /// The compose files, in order.
    pub files: Vec<PathBuf>,
    /// The project directory.
    pub project_dir: PathBuf,
    /// The environment used for interpolation.
    pub environment: Environment,
    /// Every interpolation performed.
    pub interpolations: Vec<Interpolation>,
    /// Non-fatal problems, one message each.
    pub warnings: Vec<String>,
    /// The merged tree, for locating model objects in error messages.
    pub tree: Node,
    /// Services left out because none of their profiles is active.
    pub disabled_services: Vec<String>,
}

/// Loads a project from compose text alone (as `-f -` does), relative paths resolving against
/// `cwd`, with an empty shell environment: for tests and tools that hold the text already.
pub fn load_str(yaml: &str, cwd: &Path) -> Result<Loaded> {
    load(&LoadOptions {
        files: vec![PathBuf::from("-")],
        stdin: Some(yaml.to_string()),
        cwd: cwd.to_path_buf(),
        ..LoadOptions::default()
    })
}

/// Loads a project the way `docker compose` does.
pub fn load(opts: &LoadOptions) -> Result<Loaded> {
    let start_dir = opts.project_directory.clone().map(|d| abs(&opts.cwd, &d));
    let first_file_dir = opts
        .files
        .first()
        .filter(|f| f.as_os_str() != "-")
        .and_then(|f| abs(&opts.cwd, f).parent().map(Path::to_path_buf));
    let env_dir = start_dir.clone().or(first_file_dir).unwrap_or_else(|| opts.cwd.clone());
    let env_files: Vec<PathBuf> = opts.env_files.iter().map(|f| abs(&opts.cwd, f)).collect();
    let mut environment = project_environment(&opts.shell, &env_files, &env_dir)?;

    let (files, found_dir) = select_files(opts, &environment)?;
    let project_dir = match (&start_dir, &found_dir) {
        (Some(d), _) => d.clone(),
        (None, Some(found)) if found != &env_dir => {
            environment = project_environment(&opts.shell, &env_files, found)?;
            found.clone()
        }
        (None, Some(found)) => found.clone(),
        (None, None) => env_dir,
    };

    let parsed: Vec<(PathBuf, Vec<Node>)> = {
        let reader = Ctx::new(opts, &environment);
        files.iter().map(|f| Ok((f.clone(), reader.read_docs(f)?))).collect::<Result<_>>()?
    };
    let project_name = project_name(opts, &environment, &parsed, &project_dir)?;
    // Interpolation sees the project's name, whatever the environment says (as in compose-go).
    environment.set("COMPOSE_PROJECT_NAME", Var { value: project_name.clone(), origin: Origin::ProjectName });
    let mut ctx = Ctx::new(opts, &environment);
    let tree = ctx.load_parsed(parsed, &project_dir)?;
    let Ctx { interpolations, mut warnings, .. } = ctx;

    let mut project: Project = crate::de::from_node(&tree, "")?;
    project.name = project_name;
    project.compatibility = opts.compatibility
        || environment
            .value("COMPOSE_COMPATIBILITY")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "t" | "true"));
    for (name, svc) in project.services.iter_mut() {
        svc.name = name.clone();
    }
    let disabled_services =
        normalize::apply_profiles(&mut project, &active_profiles(opts, &environment), &opts.services);
    let home = opts.shell.value("HOME").map(PathBuf::from);
    let nctx = normalize::Context { project_dir: &project_dir, home: home.as_deref(), env: &environment };
    normalize::fold_env_files(&mut project, &nctx, &tree)?;
    if !opts.no_normalize {
        normalize::normalize(&mut project, &nctx);
    }
    // Uninterpolated values are templates (`${IP}`), not values: their formats are not checked.
    if !opts.no_interpolate {
        validate::check_formats(&project, &tree)?;
        resolved::check(&project, &tree)?;
    }
    if !opts.no_consistency {
        validate::check(&project, &tree, &disabled_services)?;
    }
    warnings.extend(validate::warnings(&project));
    let unsupported = crate::unsupported::find(&project, &tree);
    if opts.strict || crate::unsupported::strict_in(&project) {
        if let Some(e) = unsupported.into_iter().next() {
            return Err(e.with_hint("remove the key, or load without strict mode (--strict, x-berth.strict)"));
        }
    } else {
        warnings.extend(unsupported.iter().map(|e| e.to_string()));
    }
    Ok(Loaded { project, files, project_dir, environment, interpolations, warnings, tree, disabled_services })
}

fn abs(cwd: &Path, p: &Path) -> PathBuf {
    paths::clean(&cwd.join(p))
}

/// The compose files to read and, when they were found by searching, their directory.
fn select_files(opts: &LoadOptions, env: &Environment) -> Result<(Vec<PathBuf>, Option<PathBuf>)> {
    if !opts.files.is_empty() {
        let files: Vec<PathBuf> =
            opts.files.iter().map(|f| if f.as_os_str() == "-" { f.clone() } else { abs(&opts.cwd, f) }).collect();
        return Ok((files, None));
    }
    if let Some(list) = env.value("COMPOSE_FILE").filter(|v| !v.is_empty()) {
        let sep = env.value("COMPOSE_PATH_SEPARATOR").filter(|s| !s.is_empty()).unwrap_or(":");
        let base = opts.project_directory.clone().map(|d| abs(&opts.cwd, &d)).unwrap_or_else(|| opts.cwd.clone());
        let files: Vec<PathBuf> = list.split(sep).filter(|s| !s.is_empty()).map(|f| abs(&base, Path::new(f))).collect();
        let dir = files.first().and_then(|f| f.parent()).map(Path::to_path_buf);
        return Ok((files, dir));
    }
    let start = opts.project_directory.clone().map(|d| abs(&opts.cwd, &d)).unwrap_or_else(|| opts.cwd.clone());
    let mut dir = Some(start.as_path());
    while let Some(d) = dir {
        if let Some(found) = DEFAULT_FILES.iter().map(|n| d.join(n)).find(|p| p.is_file()) {
            let mut files = vec![found.clone()];
            let name = found.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "yaml"));
            let over = d.join(format!("{stem}.override.{ext}"));
            if over.is_file() {
                files.push(over);
            }
            return Ok((files, Some(d.to_path_buf())));
        }
        dir = d.parent();
    }
    Err(Error::msg(format!(
        "no configuration file provided: not found in `{}` or its parents (looked for {})",
        start.display(),
        DEFAULT_FILES.join(", ")
    ))
    .with_hint("pass one with `-f FILE`, or run berth in the directory that has `compose.yaml`"))
}

fn active_profiles(opts: &LoadOptions, env: &Environment) -> Vec<String> {
    let mut profiles = opts.profiles.clone();
    if profiles.is_empty() {
        if let Some(p) = env.value("COMPOSE_PROFILES") {
            profiles.extend(p.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string));
        }
    }
    profiles
}

/// True for names Compose accepts as project names.
pub fn valid_project_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Lower-cases a directory name and drops what a project name may not contain.
pub fn normalize_project_name(name: &str) -> String {
    let lowered: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lowered.trim_start_matches(['_', '-']).to_string()
}

/// The project name: `-p`, else `COMPOSE_PROJECT_NAME`, else the last `name:` of the compose
/// files (interpolated), else the project directory's name.
fn project_name(opts: &LoadOptions, env: &Environment, files: &[(PathBuf, Vec<Node>)], dir: &Path) -> Result<String> {
    let invalid = |n: &str, from: &str| {
        Error::msg(format!(
            "invalid project name {n:?} ({from}): it must contain only lower-case letters, digits, dashes and \
             underscores, and start with a letter or digit"
        ))
    };
    if let Some(n) = opts.project_name.as_ref().filter(|n| !n.is_empty()) {
        return if valid_project_name(n) { Ok(n.clone()) } else { Err(invalid(n, "from `-p`")) };
    }
    if let Some(n) = env.value("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()) {
        return if valid_project_name(n) { Ok(n.to_string()) } else { Err(invalid(n, "from COMPOSE_PROJECT_NAME")) };
    }
    let mut from_files = None;
    for node in files.iter().flat_map(|(_, docs)| docs).filter_map(|d| d.get("name")) {
        let text = node.scalar_text().unwrap_or_default();
        let n = if opts.no_interpolate || !interpolate::has_vars(&text) {
            text
        } else {
            let lookup = |k: &str| env.value(k).map(str::to_string);
            interpolate::interpolate(&text, &lookup)
                .map_err(|e| Error::at(node.span.clone(), Some("name".into()), e.to_string()))?
                .0
        };
        if !n.is_empty() {
            from_files = Some((n, node));
        }
    }
    if let Some((n, node)) = from_files {
        if !valid_project_name(&n) {
            return Err(Error::at(node.span.clone(), Some("name".into()), invalid(&n, "top-level `name:`").message));
        }
        return Ok(n);
    }
    let base = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = normalize_project_name(&base);
    if n.is_empty() {
        return Err(Error::msg(format!("cannot derive a project name from the directory `{}`", dir.display()))
            .with_hint("set one with `-p NAME` or a top-level `name:`"));
    }
    Ok(n)
}

pub(crate) struct Ctx<'a> {
    opts: &'a LoadOptions,
    env: &'a Environment,
    interpolations: Vec<Interpolation>,
    warnings: Vec<String>,
    include_stack: Vec<PathBuf>,
}

impl<'a> Ctx<'a> {
    fn new(opts: &'a LoadOptions, env: &'a Environment) -> Self {
        Ctx { opts, env, interpolations: Vec::new(), warnings: Vec::new(), include_stack: Vec::new() }
    }

    /// Loads and merges `files`; relative paths resolve against `project_dir`.
    fn load_files(&mut self, files: &[PathBuf], project_dir: &Path) -> Result<Node> {
        let parsed = files.iter().map(|f| Ok((f.clone(), self.read_docs(f)?))).collect::<Result<Vec<_>>>()?;
        self.load_parsed(parsed, project_dir)
    }

    /// Loads and merges parsed files. Relative paths in them, including those of `include`
    /// and `extends.file`, resolve against `project_dir` (the working directory), as in
    /// compose-go; a file reached through `extends` resolves against its own directory.
    fn load_parsed(&mut self, files: Vec<(PathBuf, Vec<Node>)>, project_dir: &Path) -> Result<Node> {
        let mut merged: Option<Node> = None;
        for (f, docs) in files {
            for mut doc in docs {
                self.load_doc(&mut doc, &f, project_dir)?;
                merged = Some(match merged {
                    None => doc,
                    Some(base) => merge::merge(base, doc, "")?,
                });
            }
        }
        let mut tree = merged.ok_or_else(|| Error::msg("no compose file given"))?;
        merge::enforce_unicity(&mut tree, "");
        merge::strip_tags(&mut tree);
        canonical::apply_defaults(&mut tree);
        let home = self.opts.shell.value("HOME").map(PathBuf::from);
        paths::resolve_file(&mut tree, project_dir, home.as_deref());
        resolve_environment(&mut tree, self.env);
        if let Some(m) = tree.as_map_mut() {
            if let Some(v) = m.shift_remove("version") {
                self.warnings.push(format!(
                    "{}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid \
                     potential confusion",
                    v.key_span
                ));
            }
            m.shift_remove("include");
        }
        Ok(tree)
    }

    /// Reads and parses one compose file (`-` is standard input) into its non-empty documents.
    fn read_docs(&self, file: &Path) -> Result<Vec<Node>> {
        let (text, name) = if file.as_os_str() == "-" {
            (self.opts.stdin.clone().unwrap_or_default(), "-".to_string())
        } else {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Error::msg(format!("cannot read compose file `{}`: {e}", file.display())))?;
            (text, self.display_name(file))
        };
        let docs: Vec<Node> = yaml::parse(&text, &name)?.into_iter().filter(|d| !d.is_null()).collect();
        if docs.is_empty() {
            return Err(Error::at(
                Span { file: Arc::from(name.as_str()), line: 1, col: 1 },
                None,
                "empty compose file",
            ));
        }
        Ok(docs)
    }

    /// Makes one document canonical with `extends` and `include` applied.
    fn load_doc(&mut self, doc: &mut Node, file: &Path, workdir: &Path) -> Result<()> {
        self.prepare(doc)?;
        let mut stack = Vec::new();
        crate::extends::apply(self, doc, file, workdir, &mut stack)?;
        self.apply_include(doc, file, workdir)
    }

    /// Interpolates and canonicalizes one document.
    pub(crate) fn prepare(&mut self, doc: &mut Node) -> Result<()> {
        if doc.as_map().is_none() {
            let m = format!("a compose file must be a mapping, not {}", doc.kind());
            return Err(Error::at(doc.span.clone(), None, m));
        }
        if !self.opts.no_interpolate {
            self.interpolate(doc, &mut String::new())?;
        }
        canonical::canonicalize(doc)
    }

    pub(crate) fn read_other(&mut self, file: &Path) -> Result<Node> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::msg(format!("cannot read extended file `{}`: {e}", file.display())))?;
        let mut doc = yaml::parse(&text, &self.display_name(file))?
            .into_iter()
            .find(|d| !d.is_null())
            .ok_or_else(|| Error::msg(format!("`{}`: empty compose file", file.display())))?;
        self.prepare(&mut doc)?;
        Ok(doc)
    }

    /// A file's name for messages: relative to the working directory when inside it.
    pub(crate) fn display_name(&self, file: &Path) -> String {
        file.strip_prefix(&self.opts.cwd).unwrap_or(file).display().to_string()
    }

    pub(crate) fn home(&self) -> Option<PathBuf> {
        self.opts.shell.value("HOME").map(PathBuf::from)
    }

    fn interpolate(&mut self, node: &mut Node, path: &mut String) -> Result<()> {
        match &mut node.value {
            Value::Str(s) if interpolate::has_vars(s) => {
                let env = self.env;
                let lookup = |k: &str| env.value(k).map(str::to_string);
                let (result, refs) = interpolate::interpolate(s, &lookup)
                    .map_err(|e| Error::at(node.span.clone(), Some(path.clone()), e.to_string()))?;
                let variables: Vec<VariableUse> = refs
                    .iter()
                    .map(|r| VariableUse {
                        name: r.name.clone(),
                        origin: env.get(&r.name).map(|v| v.origin.clone()),
                        value: env.value(&r.name).map(str::to_string),
                        modifier: r.modifier,
                        used_default: r.used_default,
                    })
                    .collect();
                for r in refs.iter().filter(|r| r.defaulted_to_blank()) {
                    self.warnings.push(format!(
                        "{}: the {:?} variable is not set, defaulting to a blank string",
                        node.span, r.name
                    ));
                }
                if !variables.is_empty() {
                    self.interpolations.push(Interpolation {
                        path: path.clone(),
                        span: node.span.clone(),
                        template: s.clone(),
                        result: result.clone(),
                        variables,
                    });
                }
                *s = result;
            }
            Value::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.interpolate(item, path)?;
                    path.truncate(len);
                }
            }
            Value::Map(m) => {
                for (k, e) in m.iter_mut() {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    self.interpolate(&mut e.node, path)?;
                    path.truncate(len);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Loads each `include` entry as a project of its own and adds its resources.
    fn apply_include(&mut self, doc: &mut Node, file: &Path, dir: &Path) -> Result<()> {
        let Some(entry) = doc.as_map_mut().and_then(|m| m.shift_remove("include")) else { return Ok(()) };
        let Value::Seq(items) = entry.node.value else {
            return Err(Error::at(entry.node.span, Some("include".into()), "must be a list"));
        };
        self.include_stack.push(file.to_path_buf());
        for (i, item) in items.iter().enumerate() {
            let p = format!("include[{i}]");
            let inc: Include = match item.as_str() {
                Some(path) => Include { path: vec![path.to_string()], ..Include::default() },
                None => crate::de::from_node(item, &p)?,
            };
            let files: Vec<PathBuf> = inc.path.iter().map(|f| paths::resolve(f, dir, self.home().as_deref())).collect();
            if let Some(f) = files.iter().find(|f| self.include_stack.contains(f)) {
                let chain: Vec<String> =
                    self.include_stack.iter().chain([f]).map(|p| p.display().to_string()).collect();
                return Err(Error::at(
                    item.span.clone(),
                    Some(p),
                    format!("include cycle detected: {}", chain.join(" -> ")),
                ));
            }
            if let Some(missing) = files.iter().find(|f| !f.is_file()) {
                let m = format!("included file `{}` not found", missing.display());
                return Err(Error::at(item.span.clone(), Some(p), m));
            }
            let sub_dir = match &inc.project_directory {
                Some(d) => paths::resolve(d, dir, self.home().as_deref()),
                None => files.first().and_then(|f| f.parent()).unwrap_or(dir).to_path_buf(),
            };
            let env_files: Vec<PathBuf> =
                inc.env_file.iter().map(|f| paths::resolve(f, dir, self.home().as_deref())).collect();
            let sub_env = project_environment(self.env, &env_files, &sub_dir).map_err(|e| e.with_path(&p))?;
            let mut sub = Ctx {
                opts: self.opts,
                env: &sub_env,
                interpolations: Vec::new(),
                warnings: Vec::new(),
                include_stack: std::mem::take(&mut self.include_stack),
            };
            let tree = sub.load_files(&files, &sub_dir)?;
            self.include_stack = sub.include_stack;
            self.interpolations.extend(sub.interpolations);
            self.warnings.extend(sub.warnings);
            add_included(doc, tree)?;
        }
        self.include_stack.pop();
        Ok(())
    }
}

/// Gives `environment` entries written without a value (`- VAR`) the value of the variable in
/// this (possibly included) project's environment, when it is set there: an included project's
/// `env_file` reaches its own services only (compose-go's `ResolveEnvironment`).
fn resolve_environment(tree: &mut Node, env: &Environment) {
    let services = tree.as_map_mut().and_then(|m| m.get_mut("services")).and_then(|e| e.node.as_map_mut());
    for (_, svc) in services.into_iter().flat_map(|s| s.iter_mut()) {
        let vars = svc.node.as_map_mut().and_then(|m| m.get_mut("environment")).and_then(|e| e.node.as_map_mut());
        for (k, e) in vars.into_iter().flat_map(|v| v.iter_mut()) {
            if let (Value::Null, Some(v)) = (&e.node.value, env.value(k)) {
                e.node.value = Value::Str(v.to_string());
            }
        }
    }
}

/// Adds the resources of an included project. A resource the including file defines too is
/// merged: the including file's definition on top of the included one (compose-go's
/// `importResources`).
fn add_included(doc: &mut Node, included: Node) -> Result<()> {
    let Value::Map(inc) = included.value else { return Ok(()) };
    let root = doc.as_map_mut().expect("checked to be a mapping");
    for kind in ["services", "networks", "volumes", "secrets", "configs", "models"] {
        let Some(Value::Map(items)) = inc.get(kind).map(|e| e.node.value.clone()) else { continue };
        let span = inc[kind].key_span.clone();
        let section = root.entry(kind.to_string()).or_insert_with(|| crate::yaml::Entry {
            key_span: span.clone(),
            node: Node::new(Value::Map(Default::default()), span),
        });
        if section.node.is_null() {
            section.node.value = Value::Map(Default::default());
        }
        let Some(target) = section.node.as_map_mut() else { continue };
        for (name, e) in items {
            match target.get_mut(&name) {
                Some(local) => {
                    let mine = std::mem::replace(&mut local.node, Node::new(Value::Null, e.node.span.clone()));
                    local.node = merge::merge(e.node, mine, &format!("{kind}.{name}"))?;
                }
                None => {
                    target.insert(name, e);
                }
            }
        }
    }
    Ok(())
}
