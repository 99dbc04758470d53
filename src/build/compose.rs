//! A compose service's `build:` section as a [`BuildRequest`]: `context`, `dockerfile`,
//! `dockerfile_inline`, `args`, `target`, `labels`, `tags`, `no_cache`, `pull`, `secrets`
//! (the project's `file:`, `environment:` and `content:` secrets), `network`, `extra_hosts`, `shm_size`, `ulimits`, `privileged`
//! `additional_contexts` (local directories, `service:NAME`) and `cache_from`/`cache_to` of
//! `type=local` ([`super::cachedir`]) are honoured; the image is tagged with the service's `image:`
//! when it names one, else `<project>-<service>`, plus `build.tags`. A remote (git or URL)
//! context is refused: builds do not reach the network.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_compose::model::{CacheEntry, Service};
use berth_compose::Project;

use super::{BuildError, BuildRequest, NamedContext, NetworkMode, Result, Secret};

/// What the command line adds to every service's build.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComposeBuildOptions {
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`.
    pub pull: bool,
    /// `--build-arg`s (they win over the service's `args`).
    pub args: BTreeMap<String, String>,
    /// `--secret`s (they win over the service's `secrets`).
    pub secrets: BTreeMap<String, Secret>,
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<u64>,
    /// The OCI runtime.
    pub runtime: Option<String>,
    /// `--network`: wins over `build.network`.
    pub network: Option<NetworkMode>,
}

/// Whether `svc` has a `build:` section.
pub fn buildable(svc: &Service) -> bool {
    svc.build.is_some()
}

/// The build of service `svc` of `project`.
pub fn request(project: &Project, svc: &Service, opts: &ComposeBuildOptions) -> Result<BuildRequest> {
    let build = svc
        .build
        .as_ref()
        .ok_or_else(|| BuildError::Unsupported(format!("service \"{}\" has no build section", svc.name)))?;
    let context = build.context.clone().unwrap_or_else(|| ".".into());
    if berth_compose::paths::is_remote_context(&context) {
        return Err(BuildError::Unsupported(format!(
            "service \"{}\": build context \"{context}\" is remote; berth builds from local directories only (builds do not reach the network)",
            svc.name
        )));
    }
    let mut args: BTreeMap<String, String> =
        build.args.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone()))).collect();
    args.extend(opts.args.clone());
    let mut secrets = BTreeMap::new();
    for s in &build.secrets {
        let Some(def) = project.secrets.get(&s.source) else {
            return Err(BuildError::Unsupported(format!(
                "service \"{}\": build secret \"{}\" is not defined",
                svc.name, s.source
            )));
        };
        let secret = match (&def.file, &def.environment, &def.content) {
            (Some(file), _, _) => Secret::File(PathBuf::from(file)),
            (None, Some(var), _) => Secret::Value(std::env::var(var).map_err(|_| {
                BuildError::Unsupported(format!(
                    "service \"{}\": build secret \"{}\" comes from the environment variable {var}, which is not set",
                    svc.name, s.source
                ))
            })?),
            (None, None, Some(content)) => Secret::Value(content.clone()),
            _ => {
                return Err(BuildError::Unsupported(format!(
                    "service \"{}\": build secret \"{}\" is external; berth has no secret store to take it from",
                    svc.name, s.source
                )))
            }
        };
        let id = s.target.clone().unwrap_or_else(|| s.source.clone());
        secrets.insert(id, secret);
    }
    secrets.extend(opts.secrets.clone());
    let run = super::RunOptions {
        network: match (opts.network, build.network.as_deref()) {
            (Some(n), _) => Some(n),
            (None, Some(n)) => network_mode(n),
            (None, None) => None,
        },
        extra_hosts: build.extra_hosts.clone(),
        shm_size: build.shm_size,
        ulimits: build.ulimits.clone(),
        privileged: build.privileged.unwrap_or(false),
    };
    let mut contexts = BTreeMap::new();
    for (name, value) in &build.additional_contexts {
        let named = named_context(project, value).map_err(|e| {
            BuildError::Unsupported(format!("service \"{}\": additional context \"{name}\": {e}", svc.name))
        })?;
        contexts.insert(name.clone(), named);
    }
    let mut tags = vec![svc.image_name(project)];
    tags.extend(build.tags.iter().filter(|t| !tags.contains(t)).cloned().collect::<Vec<_>>());
    Ok(BuildRequest {
        context: PathBuf::from(context),
        dockerfile: build.dockerfile.as_ref().map(PathBuf::from),
        dockerfile_inline: build.dockerfile_inline.clone(),
        target: build.target.clone(),
        args,
        labels: build.labels.clone(),
        tags,
        no_cache: opts.no_cache || build.no_cache.unwrap_or(false),
        pull: opts.pull || build.pull.unwrap_or(false),
        secrets,
        source_date_epoch: opts.source_date_epoch,
        runtime: opts.runtime.clone(),
        run,
        contexts,
        cache_from: local_caches(&build.cache_from, "src"),
        cache_to: local_caches(&build.cache_to, "dest"),
    })
}

/// The directories of the `type=local` entries of `cache_from` (`src=`) or `cache_to`
/// (`dest=`); a relative directory is under the current one, as `docker buildx` takes it. Other
/// types are warned about by the loader.
fn local_caches(list: &[String], field: &str) -> Vec<PathBuf> {
    list.iter()
        .map(|e| CacheEntry::parse(e))
        .filter(|e| e.kind == "local")
        .filter_map(|e| e.fields.get(field).map(|d| std::path::absolute(d).unwrap_or_else(|_| PathBuf::from(d))))
        .collect()
}

/// `build.network` as a `RUN` network; other values (a project network's name) are warned about
/// by the loader and leave the default.
pub fn network_mode(value: &str) -> Option<NetworkMode> {
    match value {
        "none" => Some(NetworkMode::None),
        "host" => Some(NetworkMode::Host),
        "default" => Some(NetworkMode::Default),
        _ => None,
    }
}

/// An `additional_contexts` value: a local directory (made absolute by the loader), or
/// `service:NAME` for that service's image. Other sources are refused: builds read local files
/// and the image store only.
fn named_context(project: &Project, value: &str) -> std::result::Result<NamedContext, String> {
    if let Some(name) = value.strip_prefix("service:") {
        let svc = project.services.get(name).ok_or_else(|| format!("no service \"{name}\""))?;
        return Ok(NamedContext::Image(svc.image_name(project)));
    }
    if let Some((scheme, _)) = value.split_once("://") {
        return Err(format!(
            "\"{value}\": {scheme}:// contexts are not supported; berth takes local directories and service:NAME only"
        ));
    }
    if berth_compose::paths::is_remote_context(value) {
        return Err(format!("\"{value}\" is remote; berth takes local directories and service:NAME only"));
    }
    let dir = PathBuf::from(value);
    if !dir.is_dir() {
        return Err(format!("\"{value}\" is not a directory"));
    }
    Ok(NamedContext::Dir(dir))
}

/// The services whose images `svc`'s build uses (`additional_contexts: {x: service:NAME}`):
/// built before it.
pub fn image_dependencies(svc: &Service) -> Vec<String> {
    svc.build
        .iter()
        .flat_map(|b| b.additional_contexts.values())
        .filter_map(|v| v.strip_prefix("service:").map(str::to_string))
        .collect()
}

/// `SOURCE_DATE_EPOCH` from the environment, when set to a number.
pub fn source_date_epoch() -> Option<u64> {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_build_becomes_a_request() {
        let yaml = "name: p\nservices:\n  web:\n    build:\n      context: .\n      args: {A: \"1\"}\n      target: prod\n      tags: [\"extra:1\"]\n  named:\n    image: me/app:2\n    build: .\n";
        let dir = tempfile::tempdir().unwrap();
        let project = berth_compose::load_str(yaml, dir.path()).unwrap().project;
        let opts = ComposeBuildOptions { args: BTreeMap::from([("B".into(), "2".into())]), ..Default::default() };
        let web = request(&project, &project.services["web"], &opts).unwrap();
        assert_eq!(web.tags, ["p-web", "extra:1"]);
        assert_eq!(web.target.as_deref(), Some("prod"));
        assert_eq!(web.args, BTreeMap::from([("A".into(), "1".into()), ("B".into(), "2".into())]));
        assert!(web.context.is_absolute());
        let named = request(&project, &project.services["named"], &opts).unwrap();
        assert_eq!(named.tags, ["me/app:2"]);
    }
}
