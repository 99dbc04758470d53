//! Shared plumbing of the container commands: load the project, open the state, pick the
//! runtime, select containers, and the `--runtime` option.

use anyhow::{bail, Context};
use berth::container::{self, Roots};
use berth::state::{ContainerRecord, StateDb};
use berth_compose::Project;
use clap::Args;

use crate::cli::ProjectArgs;

/// `--runtime` (also `BERTH_RUNTIME`).
#[derive(Args, Debug, Clone, Default)]
pub struct RuntimeArgs {
    /// OCI runtime to create containers with (`runc`, `crun` or a path; default: crun when usable, else runc)
    #[arg(long, env = "BERTH_RUNTIME", value_name = "NAME")]
    pub runtime: Option<String>,
}

/// A loaded project with its state.
pub struct Ctx {
    /// The project.
    pub project: Project,
    /// State and run roots.
    pub roots: Roots,
    /// The state database.
    pub db: StateDb,
    /// `--progress`.
    pub progress: super::progress::Mode,
    /// The shell's variables and the project's `.env` (for `COMPOSE_*` settings).
    pub environment: berth_compose::env::Environment,
    /// `--parallel`.
    pub parallel: Option<i64>,
    /// The compose files as found.
    pub files: Vec<std::path::PathBuf>,
    /// The project directory.
    pub project_dir: std::path::PathBuf,
    /// Stops this command makes take this long at most (`up -t`), instead of each service's
    /// `stop_grace_period`.
    pub stop_timeout: Option<std::time::Duration>,
}

impl Ctx {
    /// Loads the compose files and opens the state.
    pub fn load(args: &ProjectArgs) -> anyhow::Result<Ctx> {
        Ctx::load_for(args, &[])
    }

    /// Like [`Ctx::load`], for commands that look at or take down an existing project (`ps`,
    /// `logs`, `down`): as with Compose, `-p NAME` of a project berth has never run, where no
    /// compose file is, is an empty project (with a warning) rather than an error.
    pub fn load_named(args: &ProjectArgs) -> anyhow::Result<Ctx> {
        Ctx::load_with(args, &[], true)
    }

    /// Loads the compose files with `services` enabled whatever their profiles (a service named
    /// on the command line is wanted), and opens the state.
    pub fn load_for(args: &ProjectArgs, services: &[String]) -> anyhow::Result<Ctx> {
        Ctx::load_with(args, services, false)
    }

    fn load_with(args: &ProjectArgs, services: &[String], unknown_ok: bool) -> anyhow::Result<Ctx> {
        let progress = super::progress::Mode::of(args.progress);
        let mut opts = args.load_options()?;
        opts.services.extend(services.iter().cloned());
        let roots = Roots::from_env();
        let loaded = match berth_compose::load(&opts) {
            Ok(l) => l,
            // `-p NAME` where no compose file is: the files the project was last used with.
            Err(e) if opts.files.is_empty() && e.message.starts_with("no configuration file provided") => {
                let name =
                    opts.project_name.clone().or_else(|| opts.shell.value("COMPOSE_PROJECT_NAME").map(str::to_string));
                let Some(name) = name else { return Err(e.into()) };
                let files = container::open_db(&roots)?.project_files(&name)?;
                if files.is_empty() && unknown_ok {
                    berth::output::warn(&format!(
                        "no project {name:?} here (no compose file, and berth has not run it): nothing to act on"
                    ));
                    return Ok(Ctx {
                        project: berth_compose::Project { name, ..Default::default() },
                        roots: roots.clone(),
                        db: container::open_db(&roots)?,
                        progress,
                        environment: opts.shell.clone(),
                        parallel: args.parallel,
                        files: Vec::new(),
                        project_dir: opts.cwd.clone(),
                        stop_timeout: None,
                    });
                }
                if files.is_empty() {
                    return Err(anyhow::Error::new(e).context(format!("project {name:?} is not known here either")));
                }
                if let Some(gone) = files.iter().find(|f| !f.exists()) {
                    bail!("project {name:?} was last used with `{}`, which is gone", gone.display());
                }
                opts.files = files;
                berth_compose::load(&opts)?
            }
            Err(e) => return Err(e.into()),
        };
        for w in &loaded.warnings {
            berth::output::warn(w);
        }
        let db = container::open_db(&roots)?;
        let project = loaded.project;
        // The files as found (absolute), so `-p NAME` works from anywhere later.
        let files: Vec<std::path::PathBuf> = loaded.files.iter().filter(|f| f.as_os_str() != "-").cloned().collect();
        let recorded = db.upsert_project(&project.name, &loaded.project_dir, &files);
        let files: Vec<std::path::PathBuf> = loaded.files.clone();
        berth::state::deferred::or_defer(recorded, || format!("project {:?}", project.name))?;
        Ok(Ctx {
            project,
            roots,
            db,
            progress,
            environment: loaded.environment,
            parallel: args.parallel,
            files,
            project_dir: loaded.project_dir,
            stop_timeout: None,
        })
    }

    /// Takes the project's lock for `command` (see `berth::lock`): held by commands that change
    /// the project, while they change it.
    pub fn lock(&self, command: &str) -> anyhow::Result<berth::lock::ProjectLock> {
        let name = &self.project.name;
        Ok(berth::lock::ProjectLock::acquire(&self.roots, name, command, |who| {
            eprintln!("Waiting for {who} to finish with project {name:?}");
        })?)
    }

    /// A `COMPOSE_*` switch from the shell or the project's `.env` (`true` or `1`).
    pub fn env_flag(&self, name: &str) -> bool {
        self.environment.value(name).is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    /// Fails for a service the project does not have.
    pub fn check_services(&self, services: &[String]) -> anyhow::Result<()> {
        for s in services {
            if !self.project.services.contains_key(s) {
                bail!("no such service: `{s}`");
            }
        }
        Ok(())
    }

    /// The project's containers of `services` (all when empty); one-off ones with `oneoff`.
    pub fn containers(&self, services: &[String], oneoff: bool) -> anyhow::Result<Vec<ContainerRecord>> {
        container::select(&self.db, &self.project.name, services, oneoff)
    }

    /// The project as the application layer takes it, with events going to `events`.
    pub fn session<'a>(&'a self, events: &'a dyn berth::events::EventSink) -> berth::app::Session<'a> {
        let parallel = match self.parallel {
            None => Some(4),
            Some(n) if n > 0 => Some(n as usize),
            Some(_) => None,
        };
        berth::app::Session {
            project: &self.project,
            roots: &self.roots,
            db: &self.db,
            events,
            parallel,
            stop_timeout: self.stop_timeout,
            pinned: Default::default(),
        }
    }

    /// The renderer of plan progress `--progress` asked for.
    pub fn progress(&self) -> super::progress::Progress {
        super::progress::Progress::new(self.progress)
    }

    /// The runtime name for new containers.
    pub fn runtime_name(&self, args: &RuntimeArgs) -> anyhow::Result<String> {
        let rt =
            berth::runtime::select(args.runtime.as_deref(), &self.roots.run).context("cannot choose an OCI runtime")?;
        Ok(berth::runtime::Runtime::name(&rt).to_string())
    }
}

/// Prints a status line (`Container NAME  Started`) on stderr.
pub fn progress(name: &str, what: &str) {
    eprintln!(" Container {name}  {what}");
}

/// Has the project's supervisor, if one runs, take in what just changed (names, ports).
pub fn tell_supervisor(ctx: &Ctx) {
    if berth::supervise::client::socket_path(&ctx.roots, &ctx.project.name).exists() {
        if let Err(e) =
            berth::supervise::client::refresh(&ctx.roots, &ctx.project.name, std::time::Duration::from_secs(5))
        {
            berth::output::warn(&format!("the project supervisor did not take in the change (ports, names): {e:#}"));
        }
    }
}

/// Exits with `code` after flushing stdout (for commands that pass an exit code through).
pub fn exit_with(code: i32) -> ! {
    use std::io::Write;
    // Nowhere left to report a failed write to stdout.
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}
