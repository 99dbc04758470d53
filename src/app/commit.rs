//! `commit`: a new image made from a container — its image's layers plus one layer of what the
//! container changed in its own file system, with the container's config and the `--change`
//! instructions applied, as `docker commit` makes it.
//!
//! The container's overlay upper directory is its change set in overlayfs' form (whiteouts,
//! opaque directories). It is read while the container is paused (unless `--pause=false`),
//! written as a layer tar and unpacked into a staging tree, so the live upper directory is never
//! changed; the staging tree is tidied as a build's `RUN` layer is (mount points the runtime
//! made, directories only copied up) and becomes the layer. Volumes, binds and the kernel's file
//! systems are mounted over the root file system, so their content is not in it.

use std::path::PathBuf;

use anyhow::{bail, Context};
use berth_compose::model::Service;
use berth_dockerfile::instruction::Instruction;

use crate::build::config::RunConfig;
use crate::build::{layer, tree};
use crate::container::{self, Roots};
use crate::image::{Digest, ImageStore, LayerRecord, NewImage};
use crate::state::{ContainerRecord, StateDb, Status};

/// What `commit` is asked for.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `--author`.
    pub author: Option<String>,
    /// `--message`: the history entry's comment.
    pub message: Option<String>,
    /// `--change`: Dockerfile instructions applied to the image config.
    pub changes: Vec<String>,
    /// Freeze the container while its file system is read.
    pub pause: bool,
    /// `REPOSITORY[:TAG]` to tag the image with.
    pub tag: Option<String>,
}

/// The instructions `--change` accepts (Docker's list).
const CHANGE_INSTRUCTIONS: &str = "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR";

/// Makes an image of container `rec`; returns its id.
pub fn commit(roots: &Roots, db: &StateDb, rec: &ContainerRecord, opts: &CommitOptions) -> anyhow::Result<Digest> {
    let changes = parse_changes(&opts.changes)?;
    let rec = container::refresh(roots, db, rec)?;
    let store = ImageStore::open(&roots.root).context("cannot open the image store")?;
    let base = store
        .resolve(&rec.image_digest)
        .with_context(|| format!("the image of container `{}` (`{}`) is no longer stored", rec.name, rec.image))?;
    let base_blob = store.config_of(&base, &rec.image)?;
    let service: Service = serde_json::from_value(rec.config.service.clone())
        .with_context(|| format!("cannot read the configuration of container `{}`", rec.name))?;
    let mut config = container_config(&base_blob, &service);
    for change in &changes {
        config.apply(change);
    }

    let paused = opts.pause && rec.status == Status::Running;
    if paused {
        container::pause(roots, db, &rec)?;
    }
    let layers = store.layer_dirs_of(&base, &rec.image)?;
    let snapshot = snapshot(&store, roots, &rec, &layers);
    if paused {
        container::unpause(roots, db, &rec)?;
    }
    let layer = snapshot.with_context(|| format!("cannot read the file system of container `{}`", rec.name))?;

    let created = crate::monitor::log::format_rfc3339(crate::state::now_nanos());
    let mut doc = base_blob.clone();
    let mut all_layers = base.layers.clone();
    let mut diff_ids = doc["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
    if let Some(l) = &layer {
        diff_ids.push(l.diff_id.to_string().into());
        all_layers.push(l.clone());
    }
    let mut history = doc["history"].as_array().cloned().unwrap_or_default();
    history.push(history_entry(&created, &rec.config.command, opts, layer.is_none()));
    doc["created"] = created.into();
    doc["config"] = serde_json::to_value(&config)?;
    doc["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": diff_ids});
    doc["history"] = history.into();
    match &opts.author {
        Some(a) => doc["author"] = a.clone().into(),
        None => {
            if let Some(o) = doc.as_object_mut() {
                o.remove("author");
            }
        }
    }
    let tags: Vec<String> = opts.tag.iter().cloned().collect();
    let id = store.write_image(&NewImage {
        config: &doc,
        layers: &all_layers,
        platform: base.platform.clone(),
        tags: &tags,
        now: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    })?;
    Ok(id)
}

/// Parses each `--change` as one Dockerfile instruction of those `commit` accepts.
pub fn parse_changes(changes: &[String]) -> anyhow::Result<Vec<Instruction>> {
    let mut out = Vec::new();
    for change in changes {
        let df = berth_dockerfile::Dockerfile::parse("--change", &format!("FROM scratch\n{change}"))
            .map_err(|e| anyhow::anyhow!("invalid change {change:?}: {e}"))?;
        let cmds = df.stages.first().map(|s| s.instructions.as_slice()).unwrap_or_default();
        let [cmd] = cmds else { bail!("invalid change {change:?}: give one instruction per `--change`") };
        let allowed = matches!(
            cmd.instruction,
            Instruction::Cmd(_)
                | Instruction::Entrypoint(_)
                | Instruction::Env(_)
                | Instruction::Expose(_)
                | Instruction::Label(_)
                | Instruction::Onbuild(_)
                | Instruction::StopSignal(_)
                | Instruction::User(_)
                | Instruction::Volume(_)
                | Instruction::Workdir(_)
        );
        if !allowed {
            bail!("{change:?} cannot be a change: `commit` accepts {CHANGE_INSTRUCTIONS}");
        }
        out.push(cmd.instruction.clone());
    }
    Ok(out)
}

/// The config a container of `service` runs with, as Docker keeps it for a container: the
/// image's config (whole config blob `image`) with the service's command, entrypoint,
/// environment, user, working directory, labels, exposed ports and stop signal over it.
pub fn container_config(image: &serde_json::Value, service: &Service) -> RunConfig {
    let mut c: RunConfig = image.get("config").and_then(|c| serde_json::from_value(c.clone()).ok()).unwrap_or_default();
    if let Some(e) = &service.entrypoint {
        c.entrypoint = (!e.is_empty()).then(|| e.clone());
        // A new entrypoint drops the image's command.
        c.cmd = None;
    }
    if let Some(cmd) = &service.command {
        c.cmd = Some(cmd.clone());
    }
    for (k, v) in &service.environment {
        if let Some(v) = v {
            c.set_env(k, v);
        }
    }
    if let Some(u) = &service.user {
        c.user = Some(u.clone());
    }
    if let Some(w) = &service.working_dir {
        c.working_dir = Some(w.clone());
    }
    if !service.labels.is_empty() {
        c.labels.get_or_insert_with(Default::default).extend(service.labels.clone());
    }
    let exposed = service.expose.iter().map(|e| if e.contains('/') { e.clone() } else { format!("{e}/tcp") });
    let published = service.ports.iter().map(|p| format!("{}/{}", p.target, p.protocol.as_deref().unwrap_or("tcp")));
    for port in exposed.chain(published) {
        c.exposed_ports.get_or_insert_with(Default::default).insert(port, serde_json::json!({}));
    }
    if let Some(s) = &service.stop_signal {
        c.stop_signal = Some(s.clone());
    }
    c
}

fn history_entry(created: &str, command: &[String], opts: &CommitOptions, empty: bool) -> serde_json::Value {
    let mut h = serde_json::json!({"created": created, "created_by": command.join(" ")});
    if let Some(a) = &opts.author {
        h["author"] = a.clone().into();
    }
    if let Some(m) = &opts.message {
        h["comment"] = m.clone().into();
    }
    if empty {
        h["empty_layer"] = true.into();
    }
    h
}

/// The container's changes as a layer in `store` (`None` when it changed nothing); `layers` are
/// its image's layer directories, bottom first.
fn snapshot(
    store: &ImageStore,
    roots: &Roots,
    rec: &ContainerRecord,
    layers: &[PathBuf],
) -> anyhow::Result<Option<LayerRecord>> {
    let upper = roots.container_dir(&rec.id).join("upper");
    if !upper.is_dir() {
        return Ok(None);
    }
    let tmp = store.dir().join("tmp");
    let mut tar = tempfile::NamedTempFile::new_in(&tmp)?;
    {
        let mut out = std::io::BufWriter::new(tar.as_file_mut());
        layer::write_tar(&upper, &mut out, None)?;
        std::io::Write::flush(&mut out)?;
    }
    let staging = tempfile::Builder::new().prefix("commit-").tempdir_in(&tmp)?;
    std::fs::set_permissions(staging.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    crate::image::unpack_layer(tar.path(), staging.path())?;
    drop(tar);
    let lower = tree::top_first(layers);
    let stubs = tree::missing_in_layers(&lower, &mount_targets(roots, rec));
    tree::tidy_upper(staging.path(), &lower, &stubs)?;
    if layer::is_empty(staging.path())? {
        return Ok(None);
    }
    Ok(Some(layer::commit_tree(store, staging.path(), None)?))
}

/// Where the container's bundle mounts something (the runtime made the mount points).
fn mount_targets(roots: &Roots, rec: &ContainerRecord) -> Vec<String> {
    let spec = std::fs::read(roots.bundle(&rec.id).join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or_default();
    spec["mounts"]
        .as_array()
        .map(|ms| ms.iter().filter_map(|m| m["destination"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml: serde_json::Value) -> Service {
        serde_json::from_value(yaml).unwrap()
    }

    #[test]
    fn the_container_config_is_the_image_config_with_the_service_over_it() {
        let image = serde_json::json!({"config": {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Entrypoint": ["/init"],
            "Labels": {"from": "image"}, "ArgsEscaped": true}});
        let svc = service(
            serde_json::json!({"name": "web", "command": ["sleep", "9"], "environment": {"A": "2", "B": "3", "C": null},
            "user": "1000", "working_dir": "/srv", "labels": {"x": "y"}, "expose": ["9000"],
            "ports": [{"target": 80, "protocol": "udp"}], "stop_signal": "SIGINT"}),
        );
        let c = container_config(&image, &svc);
        assert_eq!(c.env, Some(vec!["PATH=/bin".into(), "A=2".into(), "B=3".into()]));
        assert_eq!(c.cmd, Some(vec!["sleep".into(), "9".into()]));
        assert_eq!(c.entrypoint, Some(vec!["/init".into()]), "kept when the service does not set one");
        assert_eq!((c.user.as_deref(), c.working_dir.as_deref()), (Some("1000"), Some("/srv")));
        assert_eq!(c.labels.as_ref().unwrap().len(), 2);
        assert_eq!(c.exposed_ports.unwrap().keys().collect::<Vec<_>>(), ["80/udp", "9000/tcp"]);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.other.get("ArgsEscaped"), Some(&serde_json::json!(true)), "other fields kept");
        let svc = service(serde_json::json!({"name": "web", "entrypoint": ["/e"]}));
        assert_eq!(container_config(&image, &svc).cmd, None, "a new entrypoint drops the image's command");
    }

    #[test]
    fn changes_are_dockerfile_instructions_docker_accepts() {
        let changes = parse_changes(&["CMD [\"echo\", \"hi\"]".into(), "ENV K=v".into()]).unwrap();
        let mut c = RunConfig::default();
        for i in &changes {
            c.apply(i);
        }
        assert_eq!(c.cmd, Some(vec!["echo".into(), "hi".into()]));
        assert_eq!(c.env, Some(vec!["K=v".into()]));
        let err = parse_changes(&["RUN rm -rf /".into()]).unwrap_err().to_string();
        assert!(err.contains("cannot be a change") && err.contains("ENTRYPOINT"), "{err}");
        assert!(parse_changes(&["BOGUS x".into()]).is_err());
    }
}
