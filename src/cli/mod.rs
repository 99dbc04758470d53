//! The command line: global options, the command enum, and dispatch. One file per command;
//! each declares its arguments, fills an options struct and makes one library call.

use clap::{Parser, Subcommand};

pub mod args;
pub mod attach;
pub mod boot;
pub mod build;
pub mod check;
pub mod commit;
pub mod completion;
pub mod config;
pub mod containers;
pub mod cp;
pub mod create;
pub mod down;
pub mod dryrun;
pub mod events;
pub mod exec;
pub mod export;
pub mod history;
pub mod image;
pub mod images;
pub mod kill;
pub mod login;
pub mod logs;
pub mod ls;
pub mod monitor;
pub mod network;
pub mod pause;
pub mod port;
pub mod ps;
pub mod pull;
pub mod push;
pub mod render;
pub mod restart;
pub mod rm;
pub mod rollback;
pub mod run;
pub mod scale;
pub mod start;
pub mod stats;
pub mod stop;
pub mod systemd;
pub mod top;
pub mod up;
pub mod version;
pub mod volume;
pub mod wait;
pub mod watch;

pub use args::{compose_args, ListArgs, ListFormat, ProjectArgs};
pub use render::{format, progress};

/// berth runs Compose projects without a daemon.
#[derive(Parser, Debug)]
#[command(name = "berth", version, about, disable_help_subcommand = true)]
pub struct Cli {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse, resolve and render the compose file in canonical format
    Config(config::ConfigArgs),
    /// Report what keeps the project from being ready for production
    Check(check::CheckArgs),
    /// Show the berth version
    Version(version::VersionArgs),
    /// Print a shell completion script
    Completion(completion::CompletionArgs),
    /// Pull the images of the project's services
    Pull(pull::PullArgs),
    /// Push the services' images to their registries
    Push(push::PushArgs),
    /// Build the images of the services that have a `build:` section
    Build(build::BuildArgs),
    /// List the images the project's services use
    Images(images::ImagesArgs),
    /// Manage stored images (ls, rm, prune, inspect, load, save)
    Image(image::ImageArgs),
    /// Store credentials for a registry
    Login(login::LoginArgs),
    /// Remove stored credentials for a registry
    Logout(login::LogoutArgs),
    /// Create containers for the services
    Create(create::CreateArgs),
    /// Start the services' existing containers
    Start(start::StartArgs),
    /// Stop running containers (stop signal, then SIGKILL after the grace period)
    Stop(stop::StopArgs),
    /// Restart containers
    Restart(restart::RestartArgs),
    /// Send a signal to running containers
    Kill(kill::KillArgs),
    /// Remove stopped containers
    Rm(rm::RmArgs),
    /// Pause running containers
    Pause(pause::PauseArgs),
    /// Unpause paused containers
    Unpause(pause::PauseArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Show the processes running in containers
    Top(top::TopArgs),
    /// Show container output
    Logs(logs::LogsArgs),
    /// Run a command in a running container
    Exec(exec::ExecArgs),
    /// Run a one-off command in a new container of a service
    Run(run::RunArgs),
    /// Wait for containers to stop and print their exit codes
    Wait(wait::WaitArgs),
    /// Print the public address of a port binding
    Port(port::PortArgs),
    /// Copy files between a service container and the host
    Cp(cp::CpArgs),
    /// Follow container events
    Events(events::EventsArgs),
    /// Show containers' resource usage
    Stats(stats::StatsArgs),
    /// Create and start the project's containers (with networks and volumes)
    Up(up::UpArgs),
    /// Stop and remove the project's containers and networks
    Down(down::DownArgs),
    /// Apply develop.watch rules as files change
    Watch(watch::WatchArgs),
    /// Return services to their last known-good deployment
    Rollback(rollback::RollbackArgs),
    /// Show what a service ran when, with image digests and which deployment is known-good
    History(history::HistoryArgs),
    /// Bring back, after a reboot, the projects' restarting containers
    Boot(boot::BootArgs),
    /// Install or remove systemd units that run `berth boot`
    Systemd(systemd::SystemdArgs),
    /// List projects
    Ls(ls::LsArgs),
    /// Manage volumes (ls, inspect, create, rm, prune)
    Volume(volume::VolumeArgs),
    /// Attach this terminal to a running service container
    Attach(attach::AttachArgs),
    /// Write a service container's file system as a tar archive
    Export(export::ExportArgs),
    /// Make a new image from a service container's changes
    Commit(commit::CommitArgs),
    /// List the project's volumes (of the services named, else all)
    Volumes(volume::VolumesArgs),
    /// Manage networks (ls, inspect, rm, prune)
    Network(network::NetworkArgs),
    /// Set the number of replicas of services
    Scale(scale::ScaleArgs),
    /// Run a container's monitor (internal)
    #[command(name = "__monitor", hide = true)]
    Monitor(monitor::MonitorArgs),
    /// Run a project's supervisor (internal)
    #[command(name = "__supervise", hide = true)]
    Supervise(monitor::SuperviseArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    berth::output::set_ansi(cli.project.ansi.forced());
    // Commands that start containers fork their monitors from a launcher forked now, while this
    // process has one thread and no database connection.
    if matches!(
        cli.command,
        Command::Run(_)
            | Command::Start(_)
            | Command::Restart(_)
            | Command::Scale(_)
            | Command::Up(_)
            | Command::Watch(_)
            | Command::Boot(_)
            | Command::Rollback(_)
    ) {
        // SAFETY: nothing before this starts a thread or opens the state database.
        unsafe { berth::monitor::launcher::start(&berth::container::Roots::from_env()) };
    }
    if cli.project.dry_run && dryrun::describe(&cli.project, &cli.command)?.is_some() {
        return Ok(());
    }
    match cli.command {
        Command::Config(args) => config::run(&cli.project, args),
        Command::Check(args) => check::run(&cli.project, args),
        Command::Version(args) => version::run(args),
        Command::Completion(args) => completion::run(args),
        Command::Pull(args) => pull::run(&cli.project, args),
        Command::Push(args) => push::run(&cli.project, args),
        Command::Build(args) => build::run(&cli.project, args),
        Command::Images(args) => images::run(&cli.project, args),
        Command::Image(args) => image::run(args),
        Command::Login(args) => login::login(args),
        Command::Logout(args) => login::logout(args),
        Command::Create(args) => create::run(&cli.project, args),
        Command::Start(args) => start::run(&cli.project, args),
        Command::Stop(args) => stop::run(&cli.project, args),
        Command::Restart(args) => restart::run(&cli.project, args),
        Command::Kill(args) => kill::run(&cli.project, args),
        Command::Rm(args) => rm::run(&cli.project, args),
        Command::Pause(args) => pause::pause(&cli.project, args),
        Command::Unpause(args) => pause::unpause(&cli.project, args),
        Command::Ps(args) => ps::run(&cli.project, args),
        Command::Top(args) => top::run(&cli.project, args),
        Command::Logs(args) => logs::run(&cli.project, args),
        Command::Exec(args) => exec::run(&cli.project, args),
        Command::Run(args) => run::run(&cli.project, args),
        Command::Wait(args) => wait::run(&cli.project, args),
        Command::Port(args) => port::run(&cli.project, args),
        Command::Cp(args) => cp::run(&cli.project, args),
        Command::Events(args) => events::run(&cli.project, args),
        Command::Stats(args) => stats::run(&cli.project, args),
        Command::Volume(args) => volume::run(&cli.project, args),
        Command::Volumes(args) => volume::volumes(&cli.project, args),
        Command::Export(args) => export::run(&cli.project, args),
        Command::Commit(args) => commit::run(&cli.project, args),
        Command::Attach(args) => attach::run(&cli.project, args),
        Command::Network(args) => network::run(&cli.project, args),
        Command::Scale(args) => scale::run(&cli.project, args),
        Command::Ls(args) => ls::run(args),
        Command::Up(args) => up::run(&cli.project, args),
        Command::Down(args) => down::run(&cli.project, args),
        Command::Watch(args) => watch::run(&cli.project, args),
        Command::Boot(args) => boot::run(&cli.project, args),
        Command::Rollback(args) => rollback::run(&cli.project, args),
        Command::History(args) => history::run(&cli.project, args),
        Command::Systemd(args) => systemd::run(args),
        Command::Monitor(args) => monitor::run(args),
        Command::Supervise(args) => monitor::supervise(args),
    }
}
