//! `volume ls|inspect|create|rm|prune` and `volumes`: the named and anonymous volumes under the
//! state root, with the containers holding them as the state database records them.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use berth_volumes::store::{VolumeInfo, VolumeSpec, VolumeStore};

use crate::app::Session;
use crate::container::Roots;

/// The volume store under a state root.
pub struct Volumes {
    roots: Roots,
    store: VolumeStore,
}

impl Volumes {
    /// Opens the volume store of the state under `roots`.
    pub fn open(roots: &Roots) -> anyhow::Result<Volumes> {
        let store = VolumeStore::open(roots.root.join("volumes")).context("cannot open the volume store")?;
        Ok(Volumes { roots: roots.clone(), store })
    }

    /// Every volume.
    pub fn list(&self) -> anyhow::Result<Vec<VolumeInfo>> {
        Ok(self.store.list()?)
    }

    /// The volumes named, in order; fails for one that does not exist.
    pub fn find(&self, names: &[String]) -> anyhow::Result<Vec<VolumeInfo>> {
        let found =
            names.iter().map(|n| self.store.get(n)?.ok_or_else(|| berth_volumes::Error::NoSuchVolume(n.clone())));
        Ok(found.collect::<Result<Vec<_>, _>>()?)
    }

    /// Makes a volume of the local driver with `labels` and `driver_opts` (`KEY=VALUE` each).
    pub fn create(&self, name: &str, labels: &[String], driver_opts: &[String]) -> anyhow::Result<VolumeInfo> {
        let spec = VolumeSpec {
            name: name.to_string(),
            driver: None,
            driver_opts: key_values(driver_opts, "driver option")?,
            labels: key_values(labels, "label")?,
            anonymous: false,
        };
        Ok(self.store.create(&spec)?)
    }

    /// Removes the volumes named, refusing those a container holds; `removed` hears of each
    /// one removed, and every failure is reported at the end.
    pub fn remove(&self, names: &[String], removed: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
        let users = self.holders()?;
        let mut failed = Vec::new();
        for n in names {
            match self.store.remove(n, users.get(n).map(Vec::as_slice).unwrap_or_default()) {
                Ok(()) => removed(n),
                Err(e) => failed.push(e.to_string()),
            }
        }
        match failed.is_empty() {
            true => Ok(()),
            false => anyhow::bail!("{}", failed.join("\n")),
        }
    }

    /// Removes the anonymous volumes no container holds (with `all`, the named ones too);
    /// `removed` hears of each.
    pub fn prune(&self, all: bool, removed: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
        let used: BTreeSet<String> = self.holders()?.into_keys().collect();
        for v in self.store.list()? {
            if (all || v.spec.anonymous) && !used.contains(&v.spec.name) {
                self.store.remove(&v.spec.name, &[])?;
                removed(&v.spec.name);
            }
        }
        Ok(())
    }

    /// The containers holding each volume.
    fn holders(&self) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
        let db = crate::state::StateDb::open(&self.roots.root).context("cannot open the state database")?;
        Ok(db.all_volume_holders()?)
    }
}

/// `volumes`: the volumes made for the project (its label) or used by its containers, or those
/// the named services' containers use.
pub fn of_project(s: &Session<'_>, services: &[String]) -> anyhow::Result<Vec<VolumeInfo>> {
    let all = Volumes::open(s.roots)?.list()?;
    let used: BTreeSet<String> = crate::container::select(s.db, &s.project.name, services, true)?
        .iter()
        .flat_map(|c| c.volumes.iter().cloned())
        .collect();
    let label = crate::stack::volmodel::PROJECT_LABEL;
    let ours = |v: &VolumeInfo| v.spec.labels.get(label) == Some(&s.project.name);
    Ok(all.into_iter().filter(|v| used.contains(&v.spec.name) || (services.is_empty() && ours(v))).collect())
}

fn key_values(items: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => anyhow::bail!("invalid {what} {kv:?}: expected KEY=VALUE"),
        })
        .collect()
}
