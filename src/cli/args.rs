//! The options every command shares (choosing and loading the project) and the argument types
//! several commands take.

use std::path::PathBuf;

use clap::Args;

use super::progress;

/// The command line as berth reads it. Installed (or linked) as `docker-compose`, berth takes
/// Compose's command lines as they are; as `docker`, it takes `docker compose ...` (and refuses
/// other `docker` commands, which are not berth's).
pub fn compose_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = args.into_iter().collect();
    let name = args.first().and_then(|a| std::path::Path::new(a).file_name()).map(|n| n.to_os_string());
    if name.as_deref() == Some(std::ffi::OsStr::new("docker")) {
        if args.get(1).map(|a| a.as_os_str()) == Some(std::ffi::OsStr::new("compose")) {
            args.remove(1);
        } else {
            eprintln!("berth stands in for `docker compose` only: run it as `docker compose ...` or `berth ...`");
            std::process::exit(1);
        }
    }
    args
}

/// The options of `network ls` and `volume ls`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only names
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: ListFormat,
}

/// `--format` of the listings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// Columns
    #[default]
    Table,
    /// JSON
    Json,
}

/// `--ansi`: when to colour output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Ansi {
    /// Never
    Never,
    /// Always
    Always,
    /// On a terminal, unless `NO_COLOR` is set
    #[default]
    Auto,
}

impl Ansi {
    /// Whether to colour whatever the output is (`None`: it depends).
    pub fn forced(self) -> Option<bool> {
        match self {
            Ansi::Never => Some(false),
            Ansi::Always => Some(true),
            Ansi::Auto => None,
        }
    }
}

/// Options that choose and load the project; they apply to every command.
#[derive(Args, Debug, Clone, Default)]
pub struct ProjectArgs {
    /// Compose configuration files (repeatable; `-` reads standard input)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Alternate working directory (default: the directory of the first compose file)
    #[arg(long, value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Alternate environment files (repeatable; default: `.env` in the project directory)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// Profiles to enable (repeatable)
    #[arg(long = "profile", id = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// When to colour output
    #[arg(long, global = true, value_name = "WHEN", value_enum, default_value_t)]
    pub ansi: Ansi,
    /// Most steps (containers, networks, volumes) run at once; -1 for no limit
    #[arg(long, global = true, value_name = "N", env = "COMPOSE_PARALLEL_LIMIT")]
    pub parallel: Option<i64>,
    /// Print what would change and change nothing
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Refuse compose files that use keys berth does not carry out (else they are warned about)
    #[arg(long, global = true, env = "BERTH_STRICT")]
    pub strict: bool,
    /// Compose v1's names: `project_service_1` (also `COMPOSE_COMPATIBILITY=true`)
    #[arg(long, global = true)]
    pub compatibility: bool,
    /// How `up`, `down` and `scale` show progress
    #[arg(long, value_name = "MODE", env = "COMPOSE_PROGRESS", value_enum, default_value_t = progress::Choice::Auto)]
    pub progress: progress::Choice,
}

impl ProjectArgs {
    /// The loader options these arguments ask for.
    pub fn load_options(&self) -> anyhow::Result<berth_compose::LoadOptions> {
        let cwd = std::env::current_dir()?;
        let uses_stdin = self.files.iter().any(|f| f.as_os_str() == "-");
        let stdin = if uses_stdin {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            Some(s)
        } else {
            None
        };
        Ok(berth_compose::LoadOptions {
            files: self.files.clone(),
            stdin,
            project_directory: self.project_directory.clone(),
            project_name: self.project_name.clone(),
            env_files: self.env_files.clone(),
            profiles: self.profiles.clone(),
            cwd,
            shell: berth_compose::env::Environment::from_shell(std::env::vars()),
            strict: self.strict,
            compatibility: self.compatibility,
            ..Default::default()
        })
    }
}
