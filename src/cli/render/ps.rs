//! What `ps` prints of the containers it lists: service names, ids, a `--format` template,
//! JSON lines or the table.

use berth::app::ps::Listed;
use berth::state::now_millis;

use super::format::{align_tabs, print_table, Template};
use super::ps_fields::{command_text, field_value, health_text, human_duration, labels, ports_text, status_text};

/// How `ps` shows its rows.
#[derive(Clone, Copy, Debug, Default)]
pub struct View {
    /// `--services`: service names only.
    pub services_only: bool,
    /// `-q`: ids only.
    pub quiet: bool,
    /// `--format json`.
    pub json: bool,
    /// `--no-trunc`.
    pub no_trunc: bool,
}

/// Prints the listed containers `rows` as `args` asks: service names, ids, a template, JSON
/// or the table.
pub fn print(rows: &[Listed], view: View, template: Option<Template>) {
    if view.services_only {
        let mut seen: Vec<&str> = rows.iter().map(|l| l.container.service.as_str()).collect();
        seen.dedup();
        for s in seen {
            println!("{s}");
        }
        return;
    }
    if view.quiet {
        rows.iter().for_each(|l| println!("{}", l.container.id));
        return;
    }
    if let Some(t) = template {
        let mut lines = Vec::new();
        if t.table {
            lines.push(t.header());
        }
        for Listed { container: c, supervision: sup } in rows {
            lines.push(t.render(|f| field_value(f, c, sup, view.no_trunc)));
        }
        let text = if t.table { align_tabs(&lines) } else { lines.iter().map(|l| format!("{l}\n")).collect() };
        print!("{text}");
        return;
    }
    if view.json {
        for Listed { container: c, supervision: sup } in rows {
            let v = serde_json::json!({
                "ID": c.id, "Name": c.name, "Image": c.image, "Command": c.config.command.join(" "),
                "Project": c.project, "Service": c.service, "Created": c.created_at / 1000,
                "State": c.status.as_str(), "Status": status_text(c, sup),
                "Health": health_text(sup), "RestartCount": c.restart_count,
                "RestartReason": sup.restart_reason,
                "Labels": labels(c),
                "ExitCode": c.exit_code.unwrap_or(0), "OOMKilled": c.oom_killed, "Pid": c.pid,
                "Publishers": c.ports().iter().map(|p| serde_json::json!({
                    "URL": p.host_ip, "TargetPort": p.target,
                    "PublishedPort": p.published.parse::<u16>().unwrap_or(0), "Protocol": p.protocol,
                })).collect::<Vec<_>>(),
            });
            println!("{v}");
        }
        return;
    }
    let mut table =
        vec![["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"].map(String::from).to_vec()];
    for Listed { container: c, supervision: sup } in rows {
        table.push(vec![
            c.name.clone(),
            c.image.clone(),
            command_text(c, view.no_trunc),
            c.service.clone(),
            format!("{} ago", human_duration(now_millis() - c.created_at)),
            status_text(c, sup),
            ports_text(c),
        ]);
    }
    print_table(&table);
}
