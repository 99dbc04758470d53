//! `image ls|rm|prune|inspect|tag|load|save`, `images` and `down --rmi`: the local image store,
//! where an image some container (of any project, running or not) was created from is kept.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use berth_compose::Project;

use crate::app::Session;
use crate::events::EventSink;
use crate::image::{self, Digest, ImageError, ImageStore, ImageSummary, Reference, RemoveReport};

/// The image store, the images containers use and the known-good images `rollback` may
/// return to (kept by `image rm` and `image prune`).
pub struct Images {
    /// The store.
    pub store: ImageStore,
    used: BTreeSet<String>,
    /// Known-good image id → the services (`service `s` of project `p``) whose it is.
    kept: BTreeMap<String, Vec<String>>,
}

/// What `image prune` did.
#[derive(Debug, Default)]
pub struct Pruned {
    /// What was deleted.
    pub report: RemoveReport,
    /// Known-good images it would have deleted, each with why it is kept.
    pub kept: Vec<(String, String)>,
}

impl Images {
    /// Opens the store under the default state root.
    pub fn open() -> anyhow::Result<Images> {
        let root = ImageStore::default_state_root();
        let store = ImageStore::open(&root).context("cannot open the image store")?;
        let db = crate::state::StateDb::open(&root).context("cannot open the state database")?;
        let mut kept: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for d in db.kept_deployments()? {
            let who = format!("service `{}` of project `{}`", d.service, d.project);
            let services = kept.entry(d.image_digest).or_default();
            if !services.contains(&who) {
                services.push(who);
            }
        }
        Ok(Images { store, used: db.images_in_use()?, kept })
    }

    fn in_use(&self) -> impl Fn(&Digest) -> bool + '_ {
        |id: &Digest| self.used.contains(&id.to_string())
    }

    /// In use, or known-good: then its id goes to `spared`.
    fn in_use_or_kept<'s>(&'s self, spared: &'s RefCell<Vec<String>>) -> impl Fn(&Digest) -> bool + 's {
        move |id: &Digest| {
            let id = id.to_string();
            if self.used.contains(&id) {
                return true;
            }
            let known_good = self.kept.contains_key(&id);
            if known_good {
                spared.borrow_mut().push(id);
            }
            known_good
        }
    }

    fn why_kept(&self, id: &str) -> String {
        format!("it is the known-good image of {}", self.kept[id].join(", "))
    }

    /// Removes each image named (untags a tag; deletes an id, with `force` even when several
    /// tags point at it); `report` hears of each removal, and every failure is reported at the end.
    pub fn remove(&self, names: &[String], force: bool, report: &mut dyn FnMut(RemoveReport)) -> anyhow::Result<()> {
        let mut failed = Vec::new();
        let spared = RefCell::new(Vec::new());
        for name in names {
            match self.store.remove(name, force, &self.in_use_or_kept(&spared)) {
                Ok(rep) => report(rep),
                Err(e) => match spared.borrow_mut().pop() {
                    Some(id) => failed.push(format!(
                        "image `{name}` is kept: {} (`berth rollback` returns to it)",
                        self.why_kept(&id)
                    )),
                    None => failed.push(e.to_string()),
                },
            }
        }
        match failed.is_empty() {
            true => Ok(()),
            false => anyhow::bail!("{}", failed.join("\n")),
        }
    }

    /// Deletes untagged images (every image with `all`) that no container uses and that are
    /// not known-good.
    pub fn prune(&self, all: bool) -> anyhow::Result<Pruned> {
        let spared = RefCell::new(Vec::new());
        let report = self.store.prune(all, &self.in_use_or_kept(&spared))?;
        let kept = spared.into_inner().into_iter().map(|id| (self.why_kept(&id), id)).map(|(why, id)| (id, why));
        Ok(Pruned { report, kept: kept.collect() })
    }

    /// Names image `source` `target` too.
    pub fn tag(&self, source: &str, target: &str) -> anyhow::Result<()> {
        Ok(self.store.tag(source, &Reference::parse(target)?)?)
    }

    /// The configs of the images named, in order.
    pub fn inspect(&self, names: &[String]) -> anyhow::Result<Vec<serde_json::Value>> {
        Ok(names.iter().map(|n| self.store.inspect(n)).collect::<Result<Vec<_>, _>>()?)
    }

    /// Loads the images of an archive; returns their names.
    pub fn load(&self, input: &Path, events: &dyn EventSink) -> anyhow::Result<Vec<String>> {
        Ok(image::load_archive(&self.store, input, events)?)
    }

    /// Saves the images named to an OCI archive.
    pub fn save(&self, names: &[String], output: &Path) -> anyhow::Result<()> {
        Ok(image::save_archive(&self.store, names, output)?)
    }
}

/// `images`: the stored images the project's services (those named, or all) use, each row once.
pub fn of_project(project: &Project, services: &[String]) -> anyhow::Result<Vec<ImageSummary>> {
    let store = ImageStore::open(&ImageStore::default_state_root()).context("cannot open the image store")?;
    let mut rows = Vec::new();
    for (name, svc) in &project.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let Some(img) = &svc.image else { continue };
        let reference = Reference::parse(img).with_context(|| format!("service `{name}`"))?;
        let Some(rec) = store.lookup(&reference)? else { continue };
        let tagged = reference.tagged_name();
        let mut summaries: Vec<_> = store.list()?.into_iter().filter(|s| s.id == rec.id).collect();
        summaries.retain(|s| tagged.as_deref().is_none_or(|t| format!("{}:{}", s.repository, s.tag) == t));
        for s in summaries {
            if !rows.contains(&s) {
                rows.push(s);
            }
        }
    }
    Ok(rows)
}

/// `down --rmi`: the services' images (with `all`), or only those named after the project
/// (`local`), each once; `removed` hears of each, and one a container still uses is kept, with
/// a warning.
pub fn remove_project_images(s: &Session<'_>, all: bool, removed: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    let images = Images::open()?;
    let services = s.project.services.values().filter(|svc| all || svc.image.is_none());
    let names: BTreeSet<String> = services.map(|svc| svc.image_name(s.project)).collect();
    for name in names {
        match images.store.remove(&name, false, &images.in_use()) {
            Ok(_) => removed(&name),
            Err(ImageError::NotFound(_)) => {}
            Err(e) => s.warn(format!("image {name} is kept: {e}")),
        }
    }
    Ok(())
}
