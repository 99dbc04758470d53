//! `extends`: a service starts from another service's definition (in the same file or another
//! one) and merges its own keys on top, following chains and refusing cycles.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::loader::Ctx;
use crate::model::Extends;
use crate::yaml::{Node, Value};
use crate::{merge, paths};

/// Resolves every `extends` in a file's tree, in place. `chain` holds the (file, service)
/// pairs being resolved, to detect cycles.
pub(crate) fn apply(
    ctx: &mut Ctx,
    doc: &mut Node,
    file: &Path,
    dir: &Path,
    chain: &mut Vec<(PathBuf, String)>,
) -> Result<()> {
    let names: Vec<String> = match doc.get("services").and_then(Node::as_map) {
        Some(services) => {
            services.iter().filter(|(_, e)| e.node.get("extends").is_some()).map(|(k, _)| k.clone()).collect()
        }
        None => return Ok(()),
    };
    for name in names {
        chain.push((file.to_path_buf(), name.clone()));
        let resolved = resolve(ctx, doc, file, dir, &name, chain);
        chain.pop();
        let resolved = resolved?;
        let services = doc.as_map_mut().and_then(|m| m.get_mut("services")).and_then(|e| e.node.as_map_mut());
        if let Some(entry) = services.and_then(|s| s.get_mut(&name)) {
            entry.node = resolved;
        }
    }
    Ok(())
}

fn resolve(
    ctx: &mut Ctx,
    tree: &Node,
    file: &Path,
    dir: &Path,
    name: &str,
    chain: &mut Vec<(PathBuf, String)>,
) -> Result<Node> {
    let svc = tree.get("services").and_then(|s| s.get(name)).ok_or_else(|| {
        Error::msg(format!("cannot extend service {name:?}: no such service in `{}`", file.display()))
    })?;
    let Some(ext_node) = svc.get("extends") else { return Ok(svc.clone()) };
    let path = format!("services.{name}.extends");
    let ext: Extends = crate::de::from_node(ext_node, &path)?;
    let home = ctx.home();
    let (other, base_file, base_dir) = match &ext.file {
        Some(f) => {
            let p = paths::resolve(f, dir, home.as_deref());
            if !p.is_file() {
                let m = format!("cannot extend from `{}`: file not found", p.display());
                return Err(Error::at(ext_node.span.clone(), Some(path), m));
            }
            let base_dir = p.parent().unwrap_or(Path::new("/")).to_path_buf();
            (Some(ctx.read_other(&p)?), p, base_dir)
        }
        None => (None, file.to_path_buf(), dir.to_path_buf()),
    };
    let key = (base_file.clone(), ext.service.clone());
    if chain.contains(&key) {
        let mut names: Vec<String> = chain.iter().map(|(_, s)| s.clone()).collect();
        names.push(ext.service.clone());
        let m = format!("extends cycle detected: {}", names.join(" -> "));
        return Err(Error::at(ext_node.span.clone(), Some(path), m));
    }
    chain.push(key);
    let base_tree = other.as_ref().unwrap_or(tree);
    if base_tree.get("services").and_then(|s| s.get(&ext.service)).is_none() {
        chain.pop();
        let m = format!("cannot extend service {:?}: no such service in `{}`", ext.service, base_file.display());
        return Err(Error::at(ext_node.span.clone(), Some(path), m));
    }
    let mut base = resolve(ctx, base_tree, &base_file, &base_dir, &ext.service.clone(), chain)?;
    chain.pop();
    if other.is_some() {
        paths::resolve_service(&mut base, &base_dir, home.as_deref());
    }
    let mut over = svc.clone();
    if let Value::Map(m) = &mut over.value {
        m.shift_remove("extends");
    }
    merge::merge(base, over, &format!("services.{name}"))
}
