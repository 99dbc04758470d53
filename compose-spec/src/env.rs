//! The variables interpolation sees, and where each one was set: the shell, an env file
//! (which file, which line), or a default. Compose's precedence: shell over `--env-file`
//! files (later files over earlier ones) over the project's `.env`.

use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::dotenv;
use crate::error::{Error, Result};

/// Where a variable's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The environment berth was started with.
    Shell,
    /// An env file.
    EnvFile {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u32,
    },
    /// `COMPOSE_PROJECT_NAME`, set by the loader to the project's name.
    ProjectName,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Shell => f.write_str("shell environment"),
            Origin::EnvFile { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::ProjectName => f.write_str("the project name"),
        }
    }
}

/// A variable's value and origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Var {
    /// The value.
    pub value: String,
    /// Where it was set.
    pub origin: Origin,
}

/// A set of variables with their origins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    vars: IndexMap<String, Var>,
}

impl Environment {
    /// Variables from the given shell environment.
    pub fn from_shell(vars: impl IntoIterator<Item = (String, String)>) -> Environment {
        let vars = vars.into_iter().map(|(k, value)| (k, Var { value, origin: Origin::Shell })).collect();
        Environment { vars }
    }

    /// The variable, if set.
    pub fn get(&self, name: &str) -> Option<&Var> {
        self.vars.get(name)
    }

    /// The variable's value, if set.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.value.as_str())
    }

    /// Sets a variable, replacing any previous value.
    pub fn set(&mut self, name: impl Into<String>, var: Var) {
        self.vars.insert(name.into(), var);
    }

    /// All variables in the order they were first set.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.vars.iter()
    }

    /// Adds the variables of an env file that this environment does not set already (so
    /// variables set earlier, e.g. by the shell, win). Values in the file may refer to
    /// variables of this environment and to the file's earlier lines.
    pub fn add_env_file_under(&mut self, path: &Path) -> Result<()> {
        let entries = read_env_file(path, self, false)?;
        for e in entries {
            if !self.vars.contains_key(&e.key) {
                let origin = Origin::EnvFile { path: path.to_path_buf(), line: e.line };
                self.vars.insert(e.key, Var { value: e.value, origin });
            }
        }
        Ok(())
    }
}

/// Reads an env file; `raw` is `format: raw`. Variables in values resolve against `env`.
pub fn read_env_file(path: &Path, env: &Environment, raw: bool) -> Result<Vec<dotenv::Entry>> {
    read_env_file_with(path, &|k: &str| env.value(k).map(str::to_string), &|_| None, raw)
}

/// Reads an env file whose `${VAR}` references resolve through `lookup` first, then through the
/// file's earlier lines.
pub fn read_env_file_with(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    fallback: &dyn Fn(&str) -> Option<String>,
    raw: bool,
) -> Result<Vec<dotenv::Entry>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::msg(format!("cannot read env file `{}`: {e}", path.display())))?;
    let parsed = if raw {
        dotenv::parse_raw_with_lookup(&text, lookup)
    } else {
        dotenv::parse_with_fallback(&text, lookup, fallback)
    };
    parsed.map_err(|e| Error::msg(format!("{}:{}: {}", path.display(), e.line, e.message)))
}

/// Builds the environment for interpolation: the shell's variables, then the `--env-file`
/// files (later ones win among themselves), or the project directory's `.env` when no
/// `--env-file` is given.
pub fn project_environment(shell: &Environment, env_files: &[PathBuf], project_dir: &Path) -> Result<Environment> {
    let dotenv = project_dir.join(".env");
    let files: Vec<PathBuf> = if env_files.is_empty() {
        if dotenv.is_file() {
            vec![dotenv]
        } else {
            Vec::new()
        }
    } else {
        env_files.to_vec()
    };
    // Files are read in order; a file's `${VAR}` sees the shell first, then what earlier files
    // set. Later files win over earlier ones, and the shell wins over all of them.
    let mut from_files: IndexMap<String, Var> = IndexMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::msg(format!("env file `{}` not found", f.display())),
            _ => Error::msg(format!("cannot read env file `{}`: {e}", f.display())),
        })?;
        let lookup = |k: &str| shell.value(k).map(str::to_string);
        let fallback = |k: &str| from_files.get(k).map(|v| v.value.clone());
        let entries = dotenv::parse_with_fallback(&text, &lookup, &fallback)
            .map_err(|e| Error::msg(format!("{}:{}: {}", f.display(), e.line, e.message)))?;
        for e in entries {
            let origin = Origin::EnvFile { path: f.clone(), line: e.line };
            from_files.insert(e.key, Var { value: e.value, origin });
        }
    }
    let mut env = shell.clone();
    for (k, v) in from_files {
        if env.get(&k).is_none() {
            env.set(k, v);
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_wins_then_later_env_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.env");
        let b = dir.path().join("b.env");
        std::fs::write(&a, "X=from_a\nY=from_a\nZ=from_a\n").unwrap();
        std::fs::write(&b, "\nY=from_b\nZ=from_b\n").unwrap();
        let shell = Environment::from_shell([("Z".to_string(), "shell".to_string())]);
        let env = project_environment(&shell, &[a.clone(), b.clone()], dir.path()).unwrap();
        assert_eq!(env.value("X"), Some("from_a"));
        assert_eq!(env.value("Y"), Some("from_b"));
        assert_eq!(env.get("Y").unwrap().origin, Origin::EnvFile { path: b, line: 2 });
        assert_eq!(env.get("Z").unwrap().origin, Origin::Shell);
    }

    #[test]
    fn later_env_files_see_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.env");
        let b = dir.path().join("b.env");
        std::fs::write(&a, "HOST=db\nURL=first\n").unwrap();
        std::fs::write(&b, "URL=pg://${HOST}/x\n").unwrap();
        let env = project_environment(&Environment::default(), &[a, b], dir.path()).unwrap();
        assert_eq!(env.value("URL"), Some("pg://db/x"));
    }

    #[test]
    fn dotenv_in_project_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "PORT=8000\n").unwrap();
        let env = project_environment(&Environment::default(), &[], dir.path()).unwrap();
        assert_eq!(env.value("PORT"), Some("8000"));
    }
}
