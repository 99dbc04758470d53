//! Normalization of a typed project, as Docker Compose does it: profiles, `env_file` folded
//! into `environment`, the implicit `default` network, resource names, implicit dependencies
//! and build defaults.

use std::path::Path;

use crate::env::{read_env_file_with, Environment};
use crate::error::{Error, Result};
use crate::model::{Dependency, Project};
use crate::validate::span_of;
use crate::yaml::Node;

/// What normalization needs besides the project.
pub struct Context<'a> {
    /// The project directory.
    pub project_dir: &'a Path,
    /// `$HOME`, for `~`.
    pub home: Option<&'a Path>,
    /// The interpolation environment (resolves `environment` entries without a value).
    pub env: &'a Environment,
}

/// Removes services none of whose profiles is active (unless named in `explicit`); returns
/// their names. A service without profiles is always enabled; `*` enables every profile.
pub fn apply_profiles(project: &mut Project, active: &[String], explicit: &[String]) -> Vec<String> {
    // A service named on the command line turns its profiles on (so its dependencies in the
    // same profiles come too).
    let mut active = active.to_vec();
    for name in explicit {
        if let Some(s) = project.services.get(name) {
            active.extend(s.profiles.iter().cloned());
        }
    }
    let all = active.iter().any(|p| p == "*");
    let enabled = |name: &str, profiles: &[String]| {
        profiles.is_empty() || all || explicit.iter().any(|s| s == name) || profiles.iter().any(|p| active.contains(p))
    };
    let disabled: Vec<String> =
        project.services.iter().filter(|(n, s)| !enabled(n, &s.profiles)).map(|(n, _)| n.clone()).collect();
    for name in &disabled {
        project.services.remove(name);
    }
    disabled
}

/// Folds each service's `env_file`s and `label_file`s into `environment` and `labels`
/// (values written in the service win), and gives `environment` entries without a value the
/// value of the variable in the project environment, when it has one. `${VAR}` in an env file
/// resolves against the project environment, then the service's `environment`, then the
/// file's earlier lines, then the earlier env files (compose-go's
/// `WithServicesEnvironmentResolved`).
pub fn fold_env_files(project: &mut Project, ctx: &Context, tree: &Node) -> Result<()> {
    for (name, svc) in project.services.iter_mut() {
        for (k, v) in svc.environment.iter_mut() {
            if v.is_none() {
                *v = ctx.env.value(k).map(str::to_string);
            }
        }
        let mut from_files: std::collections::BTreeMap<String, Option<String>> = std::collections::BTreeMap::new();
        for (i, f) in svc.env_file.iter().enumerate() {
            let path = Path::new(&f.path);
            if !path.exists() {
                if !f.required {
                    continue;
                }
                let key = ["services", name.as_str(), "env_file"];
                let m = format!("env file `{}` not found", f.path);
                return Err(located(tree, &key, &format!("services.{name}.env_file[{i}]"), m));
            }
            let raw = f.format.as_deref() == Some("raw");
            // `${VAR}` sees the project environment, then the service's `environment`, then the
            // file's own earlier lines, then what earlier env files set.
            let service_env = &svc.environment;
            let lookup =
                |k: &str| ctx.env.value(k).map(str::to_string).or_else(|| service_env.get(k).cloned().flatten());
            let earlier = from_files.clone();
            let fallback = |k: &str| earlier.get(k).cloned().flatten();
            let entries = read_env_file_with(path, &lookup, &fallback, raw).map_err(|e| {
                located(tree, &["services", name, "env_file"], &format!("services.{name}.env_file[{i}]"), e.message)
            })?;
            for e in entries {
                from_files.insert(e.key, Some(e.value));
            }
        }
        from_files.append(&mut svc.environment);
        svc.environment = from_files;

        let mut labels = std::collections::BTreeMap::new();
        for (i, f) in svc.label_file.iter().enumerate() {
            let path = Path::new(f);
            if !path.exists() {
                let m = format!("label file `{f}` not found");
                return Err(located(
                    tree,
                    &["services", name, "label_file"],
                    &format!("services.{name}.label_file[{i}]"),
                    m,
                ));
            }
            // `${VAR}` in a label file sees the labels of the earlier label files only.
            let earlier = labels.clone();
            let lookup = |k: &str| earlier.get(k).cloned();
            for e in read_env_file_with(path, &lookup, &|_| None, false)? {
                labels.insert(e.key, e.value);
            }
        }
        labels.append(&mut svc.labels);
        svc.labels = labels;
    }
    Ok(())
}

fn located(tree: &Node, keys: &[&str], path: &str, message: String) -> Error {
    match span_of(tree, keys) {
        Some(span) => Error::at(span, Some(path.to_string()), message),
        None => Error::msg(message).with_path(path),
    }
}

/// Applies Compose's normalization rules.
pub fn normalize(project: &mut Project, ctx: &Context) {
    let pname = project.name.clone();
    let mut uses_default = false;
    for svc in project.services.values_mut() {
        // Services run by a provider are not containers: no implicit network.
        if svc.networks.is_empty() && svc.network_mode.is_none() && svc.provider.is_none() {
            svc.networks.insert("default".into(), None);
        }
        uses_default |= svc.networks.contains_key("default");
        if svc.pull_policy.as_deref() == Some("if_not_present") {
            svc.pull_policy = Some("missing".into());
        }
        if let Some(build) = &mut svc.build {
            build.context.get_or_insert_with(|| ".".into());
            if build.dockerfile_inline.is_none() {
                build.dockerfile.get_or_insert_with(|| "Dockerfile".into());
            }
            // Build args without a value take the variable's value, or are dropped.
            let args = std::mem::take(&mut build.args);
            for (k, v) in args {
                if let Some(v) = v.or_else(|| ctx.env.value(&k).map(str::to_string)) {
                    build.args.insert(k, Some(v));
                }
            }
        }
        if let Some(image) = &svc.image {
            for hook in svc.pre_start.iter_mut() {
                hook.image.get_or_insert_with(|| image.clone());
            }
        }
        implicit_dependencies(svc);
    }
    if uses_default {
        project.networks.entry("default".into()).or_default();
    }
    for (key, n) in project.networks.iter_mut() {
        n.name.get_or_insert_with(|| resource_name(&pname, key, n.external));
    }
    for (key, v) in project.volumes.iter_mut() {
        v.name.get_or_insert_with(|| resource_name(&pname, key, v.external));
    }
    for (key, s) in project.secrets.iter_mut().chain(project.configs.iter_mut()) {
        s.name.get_or_insert_with(|| resource_name(&pname, key, s.external));
    }
    let _ = ctx.project_dir;
    let _ = ctx.home;
}

fn resource_name(project: &str, key: &str, external: Option<bool>) -> String {
    if external == Some(true) {
        key.to_string()
    } else {
        format!("{project}_{key}")
    }
}

/// `links`, `volumes_from`, and `service:` references in `network_mode`, `ipc`, `pid`, `uts`
/// and `cgroup` make the service depend on the other one; all but `volumes_from` also restart
/// it when the other one restarts (compose-go's normalization).
fn implicit_dependencies(svc: &mut crate::model::Service) {
    let mut found: Vec<(String, bool)> = Vec::new();
    let mut add = |name: &str, restart: bool| found.push((name.to_string(), restart));
    for l in &svc.links {
        add(l.split(':').next().unwrap_or(l), true);
    }
    for (key, name) in crate::resolved::service_refs(svc) {
        add(&name, key != "volumes_from");
    }
    for (name, restart) in found {
        if !name.is_empty() && !svc.depends_on.contains_key(&name) {
            svc.depends_on.insert(name, Dependency { restart, ..Dependency::default() });
        }
    }
}
