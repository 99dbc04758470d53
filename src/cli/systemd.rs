//! `berth systemd install|uninstall`: units that bring berth's projects back at boot. One unit
//! for berth as a whole (`berth.service`, running `berth boot` once the network is up) and, with
//! `--project NAME`, one per project (`berth-NAME.service`, `Type=notify`: ready once the
//! project's services run and are healthy; stopping the unit stops the project).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

/// Arguments of `berth systemd`.
#[derive(Args, Debug)]
pub struct SystemdArgs {
    #[command(subcommand)]
    command: SystemdCommand,
}

#[derive(Subcommand, Debug)]
enum SystemdCommand {
    /// Write the units (then: systemctl daemon-reload && systemctl enable berth)
    Install(UnitArgs),
    /// Remove the units berth wrote
    Uninstall(UnitArgs),
}

#[derive(Args, Debug)]
struct UnitArgs {
    /// Where the units go
    #[arg(long, default_value = "/etc/systemd/system", value_name = "DIR")]
    unit_dir: PathBuf,
    /// Also a unit of this project's own (repeatable)
    #[arg(long = "project", value_name = "NAME")]
    projects: Vec<String>,
}

/// Runs `berth systemd`.
pub fn run(args: SystemdArgs) -> anyhow::Result<()> {
    match args.command {
        SystemdCommand::Install(u) => {
            let exe = berth::container::berth_exe()?;
            let env = environment();
            write(&u.unit_dir.join("berth.service"), &boot_unit(&exe, &env))?;
            for p in &u.projects {
                berth::container::paths::leaf(p).with_context(|| format!("project name {p:?}"))?;
                write(&u.unit_dir.join(format!("berth-{p}.service")), &project_unit(&exe, &env, p))?;
            }
            Ok(())
        }
        SystemdCommand::Uninstall(u) => {
            let mut units = vec![u.unit_dir.join("berth.service")];
            units.extend(u.projects.iter().map(|p| u.unit_dir.join(format!("berth-{p}.service"))));
            for unit in units {
                match std::fs::remove_file(&unit) {
                    Ok(()) => eprintln!("Removed {}", unit.display()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).with_context(|| format!("cannot remove `{}`", unit.display())),
                }
            }
            Ok(())
        }
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    eprintln!("Wrote {}", path.display());
    Ok(())
}

/// `Environment=` lines for the roots this berth uses, when not the defaults.
fn environment() -> String {
    ["BERTH_ROOT", "BERTH_RUN", "BERTH_RUNTIME"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()).map(|v| format!("Environment=\"{k}={v}\"\n")))
        .collect()
}

fn boot_unit(exe: &Path, env: &str) -> String {
    format!(
        "# Written by `berth systemd install`.\n[Unit]\nDescription=berth: bring back the Compose projects that restart at \
         boot\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n\
         {env}ExecStart={} boot\n\n[Install]\nWantedBy=multi-user.target\n",
        exe.display()
    )
}

fn project_unit(exe: &Path, env: &str, project: &str) -> String {
    let exe = exe.display();
    format!(
        "# Written by `berth systemd install --project {project}`.\n[Unit]\nDescription=berth project {project}\n\
         Wants=network-online.target\nAfter=network-online.target berth.service\n\n[Service]\nType=notify\n\
         NotifyAccess=main\nRemainAfterExit=yes\nKillMode=none\nTimeoutStartSec=600\n{env}\
         ExecStart={exe} --project-name {project} up --detach --wait\nExecStop={exe} --project-name {project} stop\n\n\
         [Install]\nWantedBy=multi-user.target\n"
    )
}
