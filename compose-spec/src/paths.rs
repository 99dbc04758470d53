//! Resolves relative host paths in a canonical tree against the directory they are relative
//! to (the project directory, an included project's directory, or an extended file's
//! directory), and expands `~`.

use std::path::{Component, Path, PathBuf};

use crate::yaml::{Node, Value};

/// Resolves the host paths of every service and top-level resource of a file tree.
pub fn resolve_file(root: &mut Node, base: &Path, home: Option<&Path>) {
    let Some(map) = root.as_map_mut() else { return };
    if let Some(services) = map.get_mut("services").and_then(|e| e.node.as_map_mut()) {
        for (_, e) in services.iter_mut() {
            resolve_service(&mut e.node, base, home);
        }
    }
    for kind in ["secrets", "configs"] {
        let Some(res) = map.get_mut(kind).and_then(|e| e.node.as_map_mut()) else { continue };
        for (_, e) in res.iter_mut() {
            if let Some(file) = e.node.as_map_mut().and_then(|m| m.get_mut("file")) {
                resolve_str(&mut file.node, base, home);
            }
        }
    }
    if let Some(vols) = map.get_mut("volumes").and_then(|e| e.node.as_map_mut()) {
        for (_, e) in vols.iter_mut() {
            let Some(opts) = e.node.as_map_mut().and_then(|m| m.get_mut("driver_opts")) else { continue };
            let Some(opts) = opts.node.as_map_mut() else { continue };
            let is_bind =
                opts.get("o").and_then(|o| o.node.as_str()).is_some_and(|o| o.split(',').any(|x| x == "bind"));
            if is_bind {
                if let Some(dev) = opts.get_mut("device") {
                    resolve_str(&mut dev.node, base, home);
                }
            }
        }
    }
}

/// Resolves the host paths of one service definition.
pub fn resolve_service(svc: &mut Node, base: &Path, home: Option<&Path>) {
    let Some(m) = svc.as_map_mut() else { return };
    if let Some(build) = m.get_mut("build").and_then(|e| e.node.as_map_mut()) {
        if let Some(ctx) = build.get_mut("context") {
            if !is_remote_context(ctx.node.as_str().unwrap_or("")) {
                resolve_str(&mut ctx.node, base, home);
            }
        }
        if let Some(extra) = build.get_mut("additional_contexts").and_then(|e| e.node.as_map_mut()) {
            for (_, e) in extra.iter_mut() {
                let s = e.node.as_str().unwrap_or("");
                if !is_remote_context(s) && !s.contains(':') {
                    resolve_str(&mut e.node, base, home);
                }
            }
        }
    }
    if let Some(Value::Seq(files)) = m.get_mut("env_file").map(|e| &mut e.node.value) {
        for f in files.iter_mut() {
            if let Some(p) = f.as_map_mut().and_then(|m| m.get_mut("path")) {
                resolve_str(&mut p.node, base, home);
            }
        }
    }
    if let Some(Value::Seq(files)) = m.get_mut("label_file").map(|e| &mut e.node.value) {
        files.iter_mut().for_each(|f| resolve_str(f, base, home));
    }
    if let Some(Value::Seq(vols)) = m.get_mut("volumes").map(|e| &mut e.node.value) {
        for v in vols.iter_mut() {
            let Some(vm) = v.as_map_mut() else { continue };
            if vm.get("type").and_then(|t| t.node.as_str()) != Some("bind") {
                continue;
            }
            if let Some(src) = vm.get_mut("source") {
                resolve_str(&mut src.node, base, home);
            }
        }
    }
    if let Some(Value::Seq(rules)) = m
        .get_mut("develop")
        .and_then(|d| d.node.as_map_mut())
        .and_then(|d| d.get_mut("watch"))
        .map(|w| &mut w.node.value)
    {
        for r in rules.iter_mut() {
            if let Some(p) = r.as_map_mut().and_then(|m| m.get_mut("path")) {
                resolve_str(&mut p.node, base, home);
            }
        }
    }
}

/// A build context that is a URL or a git reference, not a directory.
pub fn is_remote_context(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@") || s.starts_with("github.com/")
}

fn resolve_str(node: &mut Node, base: &Path, home: Option<&Path>) {
    if let Value::Str(s) = &node.value {
        if s.is_empty() {
            return;
        }
        let resolved = resolve(s, base, home);
        node.value = Value::Str(resolved.to_string_lossy().into_owned());
    }
}

/// Resolves one path: `~` and `~/x` against `home`, relative paths against `base`, then
/// removes `.` and `..` components lexically.
pub fn resolve(p: &str, base: &Path, home: Option<&Path>) -> PathBuf {
    let expanded = match (p.strip_prefix('~'), home) {
        (Some(rest), Some(h)) if rest.is_empty() || rest.starts_with('/') => h.join(rest.trim_start_matches('/')),
        _ => PathBuf::from(p),
    };
    let joined = if expanded.is_absolute() { expanded } else { base.join(expanded) };
    clean(&joined)
}

/// Removes `.` and `..` components without touching the file system.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                // `..` above the root is the root; above a relative start it is kept.
                if !out.pop() && !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_and_cleans() {
        let base = Path::new("/proj");
        let home = Some(Path::new("/home/u"));
        assert_eq!(resolve("./dir", base, home), PathBuf::from("/proj/dir"));
        assert_eq!(resolve(".", base, home), PathBuf::from("/proj"));
        assert_eq!(resolve("../x/./y", base, home), PathBuf::from("/x/y"));
        assert_eq!(resolve("~/configs", base, home), PathBuf::from("/home/u/configs"));
        assert_eq!(resolve("/abs", base, home), PathBuf::from("/abs"));
        assert_eq!(resolve("~user/x", base, home), PathBuf::from("/proj/~user/x"));
        assert_eq!(resolve("../../../../x", base, home), PathBuf::from("/x"));
    }
}
