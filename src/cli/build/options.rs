//! `build`'s arguments resolved: build arguments (a bare name takes its value from the
//! environment) and secrets (files or variables).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;
use berth::build::{NetworkMode, Secret};

/// `build --network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RunNetwork {
    /// The build bridge, with NAT
    Default,
    /// Loopback only
    None,
    /// The host's network
    Host,
}

impl RunNetwork {
    /// The network mode of `RUN` steps it stands for.
    pub(super) fn mode(self) -> NetworkMode {
        match self {
            RunNetwork::Default => NetworkMode::Default,
            RunNetwork::None => NetworkMode::None,
            RunNetwork::Host => NetworkMode::Host,
        }
    }
}

/// `KEY=VALUE` pairs; a bare `KEY` takes its value from the environment (and is left out when
/// it is not set there).
pub(super) fn build_args(list: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
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
pub(super) fn secrets(list: &[String]) -> anyhow::Result<BTreeMap<String, Secret>> {
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
}
