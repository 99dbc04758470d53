//! `--dry-run`, for every command: what a command that changes the project would do, printed
//! and not done. `up` and `down` print their plans; `create`, `scale` and `run` the plan that
//! would make their containers; the container commands the containers they would act on; `pull`
//! the images. Commands that change nothing run as usual; those whose effect cannot be told
//! beforehand (`exec`, `cp`, `watch`, ...) refuse the flag.

use anyhow::bail;
use berth::plan::up::UpOptions;

use super::containers::Ctx;
use super::{Command, ProjectArgs};

/// Prints what `command` would do; `None` when the command changes nothing and runs as usual.
pub fn describe(project: &ProjectArgs, command: &Command) -> anyhow::Result<Option<()>> {
    let act = |services: &[String], oneoff: bool, verb: &str| -> anyhow::Result<Option<()>> {
        let ctx = Ctx::load(project)?;
        ctx.check_services(services)?;
        for c in ctx.containers(services, oneoff)? {
            println!("DRY-RUN MODE - Container {}  {verb}", c.name);
        }
        Ok(Some(()))
    };
    let plan = |services: &[String], opts: UpOptions| -> anyhow::Result<Option<()>> {
        let ctx = Ctx::load_for(project, services)?;
        ctx.check_services(services)?;
        let progress = ctx.progress();
        let observed = berth::app::stack::observe(&ctx.session(&progress), false)?;
        print!("{}", berth::plan::up::reconcile(&ctx.project, &observed, &opts)?);
        Ok(Some(()))
    };
    match command {
        Command::Start(a) => act(&a.services, false, "Starting"),
        Command::Stop(a) => act(&a.services, true, "Stopping"),
        Command::Restart(a) => act(&a.services, false, "Restarting"),
        Command::Kill(a) => act(&a.services, true, "Killing"),
        Command::Rm(a) => act(&a.services, true, "Removing"),
        Command::Pause(a) => act(&a.services, false, "Pausing"),
        Command::Unpause(a) => act(&a.services, false, "Unpausing"),
        Command::Create(a) => {
            plan(&a.services, UpOptions { services: a.services.clone(), no_start: true, ..UpOptions::default() })
        }
        Command::Scale(a) => {
            let scale = super::scale::parse_scale(&a.pairs)?;
            let services: Vec<String> = scale.keys().cloned().collect();
            plan(&services, UpOptions { services: services.clone(), scale, ..UpOptions::default() })
        }
        Command::Run(a) => {
            let ctx = Ctx::load_for(project, std::slice::from_ref(&a.service))?;
            ctx.check_services(std::slice::from_ref(&a.service))?;
            let deps: Vec<String> = berth::graph::ServiceGraph::new(&ctx.project)
                .dependencies(&a.service)
                .into_iter()
                .map(|(d, _)| d.to_string())
                .collect();
            if !deps.is_empty() {
                plan(&deps, UpOptions { services: deps.clone(), ..UpOptions::default() })?;
            }
            println!("DRY-RUN MODE - a one-off container of service {} would run", a.service);
            Ok(Some(()))
        }
        Command::Pull(a) => {
            let ctx = Ctx::load_for(project, &a.services)?;
            ctx.check_services(&a.services)?;
            for (name, svc) in &ctx.project.services {
                if a.services.is_empty() || a.services.contains(name) {
                    println!("DRY-RUN MODE - Image {}  Pulling", svc.image_name(&ctx.project));
                }
            }
            Ok(Some(()))
        }
        Command::Push(a) => {
            let ctx = Ctx::load(project)?;
            ctx.check_services(&a.services)?;
            for (name, svc) in &ctx.project.services {
                if let Some(image) = svc.image.as_ref().filter(|_| a.services.is_empty() || a.services.contains(name)) {
                    println!("DRY-RUN MODE - Image {image}  Pushing");
                }
            }
            Ok(Some(()))
        }
        Command::Exec(_)
        | Command::Cp(_)
        | Command::Attach(_)
        | Command::Watch(_)
        | Command::Boot(_)
        | Command::Rollback(_)
        | Command::Systemd(_)
        | Command::Volume(_)
        | Command::Network(_)
        | Command::Image(_)
        | Command::Login(_)
        | Command::Logout(_)
        | Command::Export(_) => bail!("--dry-run is not supported by this command: it would run for real"),
        // `up` and `down` plan with it themselves; the rest change nothing.
        _ => Ok(None),
    }
}
