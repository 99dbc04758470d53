//! One stage: its base, then its instructions in order, each either changing the config or
//! making a layer (`RUN`, `COPY`, `ADD`, a `WORKDIR` that did not exist) — from the cache when
//! the instruction and its inputs are unchanged.

use std::time::Instant;

use berth_dockerfile::instruction::{CommandLine, Instruction, NetworkMode};
use berth_dockerfile::{Command, StageEnv};

use super::cache::{Entry, Key};
use super::config::RunConfig;
use super::copy::{self, Attrs, CopySpec, Item, ItemKind};
use super::error::{io_err, At, Result};
use super::exec::{Build, Source};
use super::run::RunSpec;
use super::sources::SourceRoot;
use super::tree::{lower_meta, top_first, View};
use crate::events::Event;
use crate::image::LayerRecord;
use crate::runtime::user::UserDb;

/// A finished stage.
#[derive(Debug, Clone, Default)]
pub struct StageOut {
    /// Its layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// Their directories.
    pub dirs: Vec<std::path::PathBuf>,
    /// Its config.
    pub config: RunConfig,
    /// Its history entries.
    pub history: Vec<serde_json::Value>,
    /// The cache key of its last instruction.
    pub key: Key,
    /// The time of its newest layer (RFC 3339): the time of its history entries that make no
    /// layer, and of the image.
    pub created: String,
}

/// Builds stage `idx` of `b`'s Dockerfile.
pub fn run_stage(b: &Build<'_>, idx: usize) -> Result<StageOut> {
    let stage = &b.df.stages[idx];
    let total = stage.instructions.len() + 1;
    let name = stage.name.clone().unwrap_or_else(|| format!("stage-{idx}"));
    let mut step = b.first_step[&idx];
    let (base, _) = b.global.expand_from(&b.df, stage)?;
    let at = At { file: b.df.file.clone(), line: stage.line };
    let started = Instant::now();
    b.events.emit(Event::BuildStep {
        image: b.image.clone(),
        step,
        stage: name.clone(),
        position: format!("1/{total}"),
        instruction: format!("FROM {base}"),
    });
    let mut st = match b.resolve(&base, idx, &at)? {
        Source::Stage(i) => {
            let mut out = (*b.stage(i)).clone();
            out.config.cmd_set = false;
            out
        }
        Source::Image(n) if n.eq_ignore_ascii_case("scratch") => StageOut {
            key: Key::base("scratch", b.clamp),
            created: b.created_at(b.clamp.unwrap_or(0) as i64),
            ..StageOut::default()
        },
        Source::Image(n) => {
            let img = b.base_image(&n, &at)?;
            let config = img.config.get("config").cloned().unwrap_or_default();
            StageOut {
                config: serde_json::from_value(config).unwrap_or_default(),
                history: img.config.get("history").and_then(|h| h.as_array().cloned()).unwrap_or_default(),
                key: Key::base(img.id.as_str(), b.clamp),
                created: img.config.get("created").and_then(|c| c.as_str()).unwrap_or_default().to_string(),
                layers: img.layers,
                dirs: img.dirs,
            }
        }
        // A named context's directory is the stage's file system, as one layer.
        Source::Dir(dir) => {
            let layer = super::layer::commit_tree(&b.store, &dir, b.clamp)?;
            let created = b.created();
            StageOut {
                key: Key::base(layer.diff_id.as_str(), b.clamp),
                history: vec![history(&created, &format!("FROM {base}"), false)],
                dirs: vec![b.store.layer_dir(&layer.diff_id)],
                layers: vec![layer],
                created,
                ..StageOut::default()
            }
        }
    };
    done(b, step, false, started);
    let mut env = StageEnv::new(&b.df, &b.args, &b.global).with_base_env(st.config.env_pairs());
    // A base image's ONBUILD triggers run first, and are used up.
    let triggers = st.config.on_build.take().unwrap_or_default();
    let mut cmds: Vec<(Command, bool)> = Vec::new();
    if !triggers.is_empty() {
        let text = format!("FROM scratch\n{}", triggers.join("\n"));
        let parsed = berth_dockerfile::Dockerfile::parse(&format!("{} (ONBUILD of {base})", b.df.file), &text)?;
        cmds.extend(parsed.stages[0].instructions.iter().cloned().map(|c| (c, true)));
    }
    cmds.extend(stage.instructions.iter().cloned().map(|c| (c, false)));
    for (cmd, trigger) in &cmds {
        if !trigger {
            step += 1;
        }
        let started = Instant::now();
        b.events.emit(Event::BuildStep {
            image: b.image.clone(),
            step,
            stage: name.clone(),
            position: format!("{}/{total}", step - b.first_step[&idx] + 1),
            instruction: cmd.original.clone(),
        });
        let at = At {
            file: if *trigger { format!("{} (ONBUILD)", b.df.file) } else { b.df.file.clone() },
            line: cmd.start_line,
        };
        let expanded = env.step(cmd)?;
        let text = format!("{expanded:?}");
        let workdir = st.config.workdir().to_string();
        let cached = match &expanded {
            Instruction::Run(run) => {
                let spec = RunStep { run, at: &at, step, text: &cmd.original };
                run_step(b, idx, &mut st, &env, &spec, &text)?
            }
            Instruction::Copy(c) => {
                let spec = CopySpec {
                    sources: &c.sources,
                    inline: c.inline.iter().map(|i| (i.path.clone(), i.data.clone())).collect(),
                    dest: &c.dest,
                    workdir: &workdir,
                    unpack: false,
                    parents: c.parents,
                };
                let owner = Owner { chown: c.chown.as_deref(), chmod: c.chmod.as_deref(), exclude: &c.exclude };
                copy_step(b, idx, &mut st, c.from.as_deref(), &spec, owner, &at, &cmd.original, &text)?
            }
            Instruction::Add(a) => {
                if let Some(url) = a.sources.iter().find(|s| is_remote(s)) {
                    return Err(at.fail(format!(
                        "ADD {url}: berth builds offline and does not download; fetch it into the build context and COPY it"
                    )));
                }
                let spec = CopySpec {
                    sources: &a.sources,
                    inline: a.inline.iter().map(|i| (i.path.clone(), i.data.clone())).collect(),
                    dest: &a.dest,
                    workdir: &workdir,
                    unpack: a.unpack.unwrap_or(true),
                    parents: false,
                };
                let owner = Owner { chown: a.chown.as_deref(), chmod: a.chmod.as_deref(), exclude: &a.exclude };
                copy_step(b, idx, &mut st, None, &spec, owner, &at, &cmd.original, &text)?
            }
            Instruction::Workdir(_) => {
                st.config.apply(&expanded);
                workdir_step(b, &mut st, &at, &cmd.original, &text)?
            }
            Instruction::Arg(_) => {
                st.key = Key::chain(&st.key, &text, &[]);
                false
            }
            other => {
                st.config.apply(other);
                st.key = Key::chain(&st.key, &text, &[]);
                st.history.push(history(&st.created, &cmd.original, true));
                false
            }
        };
        done(b, step, cached, started);
    }
    Ok(st)
}

fn done(b: &Build<'_>, step: usize, cached: bool, started: Instant) {
    b.events.emit(Event::BuildStepDone {
        image: b.image.clone(),
        step,
        cached,
        millis: started.elapsed().as_millis() as u64,
    });
}

fn is_remote(s: &str) -> bool {
    ["http://", "https://", "git@", "git://", "ssh://"].iter().any(|p| s.starts_with(p))
}

fn history(created: &str, created_by: &str, empty: bool) -> serde_json::Value {
    let mut h = serde_json::json!({"created": created, "created_by": created_by, "comment": "berth build"});
    if empty {
        h["empty_layer"] = true.into();
    }
    h
}

/// Adds the layer of the instruction keyed `key` to `st`: from the cache, or made by `make`.
/// Returns whether it came from the cache.
fn layer_step(
    b: &Build<'_>,
    st: &mut StageOut,
    key: Key,
    created_by: &str,
    make: impl FnOnce(&StageOut) -> Result<Option<LayerRecord>>,
) -> Result<bool> {
    let hit = match b.req.no_cache {
        true => None,
        false => match b.cache.get(&key, &b.store) {
            Some(e) => Some(e),
            None => b.imported.take(&key, &b.store)?.inspect(|e| b.cache.put(&key, e)),
        },
    };
    let cached = hit.is_some();
    let (layer, created) = match hit {
        Some(e) => (e.layer, e.created),
        None => {
            let layer = make(st)?;
            let created = b.created();
            b.cache.put(&key, &Entry { layer: layer.clone(), created: created.clone() });
            (layer, created)
        }
    };
    b.used.lock().expect("used").push((key.clone(), Entry { layer: layer.clone(), created: created.clone() }));
    if layer.is_some() {
        st.created = created;
    }
    st.history.push(history(&st.created, created_by, layer.is_none()));
    if let Some(l) = layer {
        st.dirs.push(b.store.layer_dir(&l.diff_id));
        st.layers.push(l);
    }
    st.key = key;
    if cached {
        b.cached.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    Ok(cached)
}

struct RunStep<'a> {
    run: &'a berth_dockerfile::instruction::Run,
    at: &'a At,
    step: usize,
    text: &'a str,
}

/// The argv of a `RUN`: heredocs are handed to the shell with the command line (a command that
/// is only a heredoc is the script itself).
fn run_argv(config: &RunConfig, command: &CommandLine) -> Vec<String> {
    if !command.prepend_shell() || command.files.is_empty() {
        return config.argv(command);
    }
    let line = command.args.join(" ");
    let only_heredoc = command.files.len() == 1 && {
        let l = line.trim().trim_start_matches("<<").trim_start_matches('-');
        l.trim_matches(['"', '\'']) == command.files[0].name
    };
    let script = if only_heredoc {
        let f = &command.files[0];
        if f.chomp {
            f.data.lines().map(|l| l.trim_start_matches('\t')).collect::<Vec<_>>().join("\n")
        } else {
            f.data.clone()
        }
    } else {
        let mut s = line;
        for f in &command.files {
            s.push('\n');
            s.push_str(&f.data);
            s.push_str(&f.name);
        }
        s
    };
    let mut argv = config.shell();
    argv.push(script);
    argv
}

fn run_step(
    b: &Build<'_>,
    idx: usize,
    st: &mut StageOut,
    env: &StageEnv<'_>,
    spec: &RunStep<'_>,
    text: &str,
) -> Result<bool> {
    let argv = run_argv(&st.config, &spec.run.command);
    let run_env = env.run_env();
    let user = st.config.user.clone().unwrap_or_default();
    let workdir = st.config.workdir().to_string();
    let network = run_network(b, spec.run.network, spec.at)?;
    let mut inputs: Vec<String> = vec![argv.join("\0"), user.clone(), workdir.clone()];
    // What the step could see or do beyond its files: another network, hosts or privileges
    // may give another result.
    let o = &b.req.run;
    inputs.push(format!("network={network:?} hosts={:?} privileged={}", o.extra_hosts, o.privileged));
    inputs.extend(run_env.iter().map(|(k, v)| format!("{k}={v}")));
    for m in &spec.run.mounts {
        if let Some(from) = &m.from {
            match b.resolve(from, idx, spec.at)? {
                Source::Stage(i) => inputs.push(b.stage(i).key.0.clone()),
                Source::Dir(dir) => inputs.push(super::copy::tree_digest(&dir, spec.at)?),
                Source::Image(_) => {}
            }
        }
    }
    let key = Key::chain(&st.key, text, &inputs.iter().map(String::as_str).collect::<Vec<_>>());
    layer_step(b, st, key, spec.text, |st| {
        let prepared = super::mounts::prepare(b, idx, &spec.run.mounts, &workdir, spec.at)?;
        let mut env = run_env.clone();
        env.extend(prepared.env.iter().cloned());
        let run = RunSpec {
            layers: &st.dirs,
            argv,
            env,
            user: (!user.is_empty()).then_some(user.clone()),
            workdir: workdir.clone(),
            mounts: prepared.mounts.clone(),
            at: spec.at.clone(),
            text: spec.text.to_string(),
            step: spec.step,
            network,
        };
        super::run::run(b, &run)
    })
}

/// The network of a `RUN`: its `--network`, else the build's, else the build bridge. The host's
/// network only in a build that asked for it.
fn run_network(b: &Build<'_>, flag: Option<NetworkMode>, at: &At) -> Result<NetworkMode> {
    let build = b.req.run.network.unwrap_or(NetworkMode::Default);
    match flag {
        Some(NetworkMode::Host) if build != NetworkMode::Host => Err(
            at.fail("RUN --network=host needs a build on the host's network (build.network: host, or --network host)")
        ),
        Some(n) => Ok(n),
        None => Ok(build),
    }
}

struct Owner<'a> {
    chown: Option<&'a str>,
    chmod: Option<&'a str>,
    exclude: &'a [String],
}

#[allow(clippy::too_many_arguments)]
fn copy_step(
    b: &Build<'_>,
    idx: usize,
    st: &mut StageOut,
    from: Option<&str>,
    spec: &CopySpec<'_>,
    owner: Owner<'_>,
    at: &At,
    created_by: &str,
    text: &str,
) -> Result<bool> {
    let mut _view = None;
    let mut from_key = String::new();
    let root = match from {
        None => {
            let mut patterns = b.patterns.clone();
            patterns.extend(owner.exclude.iter().cloned());
            let ignore = berth_dockerfile::ignore::PatternMatcher::new(&patterns)
                .map_err(|e| at.fail(format!("--exclude: {e}")))?;
            SourceRoot { dir: b.context.dir.clone(), ignore: Some(ignore) }
        }
        Some(f) => {
            let dirs = match b.resolve(f, idx, at)? {
                Source::Stage(i) => {
                    let out = b.stage(i);
                    from_key = out.key.0.clone();
                    out.dirs.clone()
                }
                Source::Image(name) => {
                    let img = b.base_image(&name, at)?;
                    from_key = img.id.to_string();
                    img.dirs
                }
                // What is copied is in the key by content.
                Source::Dir(dir) => vec![dir],
            };
            let view = View::mount(&dirs, &b.work, b.events)?;
            let ignore = (!owner.exclude.is_empty())
                .then(|| berth_dockerfile::ignore::PatternMatcher::new(owner.exclude))
                .transpose()
                .map_err(|e| at.fail(format!("--exclude: {e}")))?;
            let root = SourceRoot { dir: view.path(), ignore };
            _view = Some(view);
            root
        }
    };
    let lower = top_first(&st.dirs);
    let is_dir = |p: &str| lower_meta(&lower, p).is_some_and(|m| m.is_dir());
    let items = copy::plan(spec, &root, &is_dir, at)?;
    let digest = copy::digest(&items)?;
    let (uid, gid) = match owner.chown {
        Some(c) => resolve_chown(&UserDb::from_layers(&lower), c).map_err(|e| at.fail(format!("--chown={c}: {e}")))?,
        None => (0, 0),
    };
    let chmod = owner
        .chmod
        .map(|m| u32::from_str_radix(m, 8).map_err(|_| at.fail(format!("--chmod={m}: not an octal mode"))))
        .transpose()?;
    let ids = format!("{uid}:{gid}:{chmod:?}");
    let key = Key::chain(&st.key, text, &[&digest, &ids, &from_key]);
    let attrs = Attrs { uid, gid, chmod, now: b.clamp.map_or(b.now, |c| c as i64) };
    layer_step(b, st, key, created_by, |_| write_layer(b, &items, attrs, &lower))
}

/// Writes `items` into a staging directory and stores it as a layer.
fn write_layer(
    b: &Build<'_>,
    items: &[Item],
    attrs: Attrs,
    lower: &[std::path::PathBuf],
) -> Result<Option<LayerRecord>> {
    let staging = tempfile::Builder::new()
        .prefix("copy-")
        .tempdir_in(&b.work)
        .map_err(io_err("create a directory in", &b.work))?;
    std::fs::set_permissions(staging.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(io_err("chmod", staging.path()))?;
    copy::write(items, staging.path(), attrs, &|p| lower_meta(lower, p))?;
    if super::layer::is_empty(staging.path())? {
        return Ok(None);
    }
    Ok(Some(super::layer::commit_tree(&b.store, staging.path(), b.clamp)?))
}

fn workdir_step(b: &Build<'_>, st: &mut StageOut, at: &At, created_by: &str, text: &str) -> Result<bool> {
    let path = st.config.workdir().to_string();
    let lower = top_first(&st.dirs);
    if lower_meta(&lower, &path).is_some_and(|m| m.is_dir()) {
        st.key = Key::chain(&st.key, text, &[]);
        st.history.push(history(&st.created, created_by, true));
        return Ok(false);
    }
    // Made for the stage's user, in its primary group unless `USER` names one.
    let (uid, gid) = match st.config.user.as_deref().filter(|u| !u.is_empty()) {
        Some(u) => {
            let r = UserDb::from_layers(&lower).resolve(u, &[]).map_err(|e| at.fail(format!("USER {u}: {e}")))?;
            (r.uid, r.gid)
        }
        None => (0, 0),
    };
    let key = Key::chain(&st.key, text, &[&format!("{uid}:{gid}")]);
    let items = [Item { dest: path, kind: ItemKind::Dir, mode: 0o755, mtime: None }];
    let attrs = Attrs { uid, gid, chmod: None, now: b.clamp.map_or(b.now, |c| c as i64) };
    layer_step(b, st, key, created_by, |_| write_layer(b, &items, attrs, &lower))
}

/// `user[:group]` as numeric ids through the stage's `/etc/passwd` and `/etc/group`; without a
/// group, the user's id is the group's too (as Docker does for `--chown`).
pub fn resolve_chown(db: &UserDb, spec: &str) -> std::result::Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = db.users.iter().map(|u| (u.0.as_str(), u.1));
    let uid = numeric_or_named(user, users, "user", "/etc/passwd")?;
    let gid = match group {
        None => uid,
        Some(g) => numeric_or_named(g, db.groups.iter().map(|x| (x.0.as_str(), x.1)), "group", "/etc/group")?,
    };
    Ok((uid, gid))
}

/// `name` as a number, or the id of the entry of that name.
fn numeric_or_named<'a>(
    name: &str,
    mut entries: impl Iterator<Item = (&'a str, u32)>,
    what: &str,
    file: &str,
) -> std::result::Result<u32, String> {
    match name.parse::<u32>() {
        Ok(n) => Ok(n),
        Err(_) => entries.find(|e| e.0 == name).map(|e| e.1).ok_or_else(|| format!("no {what} \"{name}\" in {file}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chown_names_resolve_through_the_stage_files() {
        let db = UserDb::parse(
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
            "root:x:0:\nstaff:x:50:\n",
        );
        assert_eq!(resolve_chown(&db, "app"), Ok((1000, 1000)));
        assert_eq!(resolve_chown(&db, "app:staff"), Ok((1000, 50)));
        assert_eq!(resolve_chown(&db, "7:8"), Ok((7, 8)));
        assert!(resolve_chown(&db, "nobody").is_err());
    }

    #[test]
    fn heredocs_reach_the_shell() {
        let df = berth_dockerfile::Dockerfile::parse(
            "D",
            "FROM x\nRUN <<EOF\necho hi\nEOF\nRUN cat <<EOF > /f\nbody\nEOF\nRUN [\"echo\", \"x\"]",
        )
        .unwrap();
        let c = RunConfig::default();
        let argv = |i: usize| match &df.stages[0].instructions[i].instruction {
            Instruction::Run(r) => run_argv(&c, &r.command),
            _ => unreachable!(),
        };
        assert_eq!(argv(0), ["/bin/sh", "-c", "echo hi\n"]);
        assert_eq!(argv(1), ["/bin/sh", "-c", "cat <<EOF > /f\nbody\nEOF"]);
        assert_eq!(argv(2), ["echo", "x"]);
    }
}
