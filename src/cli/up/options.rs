//! `up`'s arguments: the groups of its options and their resolution into the application
//! layer's options.

use std::time::Duration;

use anyhow::bail;
use berth::app;
use berth::plan::up::UpOptions;
use clap::Args;

use super::UpArgs;
use crate::cli::containers::Ctx;
use crate::cli::render::logs::Style;

/// When containers are recreated and what goes with them.
#[derive(Args, Debug)]
pub struct RecreateArgs {
    /// Recreate containers even when nothing changed
    #[arg(long)]
    pub force_recreate: bool,
    /// Never recreate existing containers
    #[arg(long)]
    pub no_recreate: bool,
    /// Recreate the dependents of recreated services
    #[arg(long)]
    pub always_recreate_deps: bool,
    /// Recreate anonymous volumes instead of keeping their data
    #[arg(short = 'V', long)]
    pub renew_anon_volumes: bool,
    /// Remove containers of services no longer in the files
    #[arg(long, env = "COMPOSE_REMOVE_ORPHANS")]
    pub remove_orphans: bool,
}

/// What a foreground `up` shows and when it ends.
#[derive(Args, Debug)]
pub struct ForegroundArgs {
    /// Stop every container when one exits
    #[arg(long)]
    pub abort_on_container_exit: bool,
    /// Stop every container when one exits with a non-zero code
    #[arg(long)]
    pub abort_on_container_failure: bool,
    /// Exit with this service's exit code (implies --abort-on-container-exit)
    #[arg(long, value_name = "SERVICE")]
    pub exit_code_from: Option<String>,
    /// Show the logs of these services only (repeatable)
    #[arg(long, value_name = "SERVICE")]
    pub attach: Vec<String>,
    /// Do not show the logs of these services (repeatable)
    #[arg(long, value_name = "SERVICE")]
    pub no_attach: Vec<String>,
    /// Show the logs of the dependencies too
    #[arg(long)]
    pub attach_dependencies: bool,
    /// Show timestamps in the logs
    #[arg(long)]
    pub timestamps: bool,
    /// Do not prefix log lines with the container name
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Monochrome logs
    #[arg(long)]
    pub no_color: bool,
}

impl UpArgs {
    /// Refuses options that do not go together, and a service the project does not have.
    pub(super) fn check(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let f = &self.foreground;
        ctx.check_services(&self.services)?;
        let detach = self.detach || self.wait;
        if detach && (f.abort_on_container_exit || f.abort_on_container_failure || f.exit_code_from.is_some()) {
            bail!("--abort-on-container-exit, --abort-on-container-failure and --exit-code-from need a foreground `up` (no -d/--wait)");
        }
        if detach && self.watch {
            bail!("--watch needs a foreground `up` (no -d/--wait); use `berth watch` beside a detached stack");
        }
        if f.abort_on_container_exit && f.abort_on_container_failure {
            bail!("--abort-on-container-exit and --abort-on-container-failure cannot be used together");
        }
        if let Some(s) = &f.exit_code_from {
            ctx.check_services(std::slice::from_ref(s))?;
        }
        Ok(())
    }

    /// What to plan.
    pub(super) fn up_options(&self, ctx: &Ctx) -> anyhow::Result<UpOptions> {
        let r = &self.recreate;
        Ok(UpOptions {
            services: self.services.clone(),
            no_deps: self.no_deps,
            force_recreate: r.force_recreate,
            no_recreate: r.no_recreate,
            always_recreate_deps: r.always_recreate_deps,
            renew_anon_volumes: r.renew_anon_volumes,
            remove_orphans: r.remove_orphans || ctx.env_flag("COMPOSE_REMOVE_ORPHANS"),
            no_start: self.no_start,
            pull: self.pull,
            scale: crate::cli::scale::parse_scale(&self.scale).map_err(|e| anyhow::anyhow!("--scale: {e}"))?,
            build: self.build,
            no_build: self.no_build,
            policies: Default::default(),
        })
    }

    /// The foreground run after the plan: the logs of which services, and what ends it.
    pub(super) fn foreground(
        &self,
        s: &app::Session<'_>,
        selected: &[String],
        since: i64,
    ) -> app::foreground::Foreground {
        let f = &self.foreground;
        let attach =
            app::up::Attach { only: f.attach.clone(), not: f.no_attach.clone(), dependencies: f.attach_dependencies };
        app::foreground::Foreground {
            attached: app::up::attached(s, &attach, &self.services, selected),
            stop_services: if self.services.is_empty() { selected.to_vec() } else { self.services.clone() },
            abort_on_exit: f.abort_on_container_exit || f.exit_code_from.is_some(),
            abort_on_failure: f.abort_on_container_failure,
            exit_code_from: f.exit_code_from.clone(),
            since,
            timeout: self.timeout.map(Duration::from_secs),
        }
    }

    /// How the log lines look.
    pub(super) fn style(&self) -> Style {
        let f = &self.foreground;
        Style { no_color: f.no_color, no_prefix: f.no_log_prefix, timestamps: f.timestamps }
    }
}
