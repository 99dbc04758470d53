//! A service's `develop.watch` rules, resolved: an absolute host path, what to do, where in the
//! container, and which changed paths count. `ignore` and `include` take `.dockerignore` patterns
//! relative to the rule's path; `.git`, editors' temporary files and, for a path inside the
//! service's build context, that context's `.dockerignore` are ignored too.

use std::path::{Path, PathBuf};

use berth_compose::model::{Hook, Service, WatchAction};
use berth_compose::Project;
use berth_dockerfile::ignore::PatternMatcher;

/// What is wrong with a rule.
#[derive(Debug, thiserror::Error)]
#[error("services.{service}.develop.watch[{index}]: {message}")]
pub struct RuleError {
    /// The service.
    pub service: String,
    /// The rule's position.
    pub index: usize,
    /// What is wrong.
    pub message: String,
}

/// Paths ignored under every rule: version control and editors' temporary files.
const ALWAYS_IGNORED: &[&str] =
    &[".git", "**/.git", "*.swp", "**/*.swp", "*.swx", "**/*.swx", "*~", "**/*~", ".#*", "**/.#*", "4913", "**/4913"];

/// One resolved rule.
pub struct Rule {
    /// The service.
    pub service: String,
    /// Its position in `develop.watch`.
    pub index: usize,
    /// The host path watched (a file or a directory; it may not exist yet).
    pub path: PathBuf,
    /// What a change does.
    pub action: WatchAction,
    /// Where `path` goes in the container (sync actions).
    pub target: Option<PathBuf>,
    /// The command of `sync+exec`.
    pub exec: Option<Hook>,
    /// Sync what differs when watching starts.
    pub initial_sync: bool,
    ignore: PatternMatcher,
    include: Option<PatternMatcher>,
    /// The build context and its `.dockerignore`, for a path inside it.
    context_ignore: Option<(PathBuf, PatternMatcher)>,
}

impl Rule {
    /// The path of `changed` relative to the rule's path when the rule cares about it (inside
    /// the path, not ignored, included); `Some("")` for the rule's path itself.
    pub fn relative(&self, changed: &Path) -> Option<PathBuf> {
        let rel = changed.strip_prefix(&self.path).ok()?;
        let text = rel.to_string_lossy();
        if !text.is_empty() {
            if self.ignore.matches_or_parent_matches(&text) {
                return None;
            }
            if let Some(inc) = &self.include {
                if !inc.matches_or_parent_matches(&text) {
                    return None;
                }
            }
        }
        if let Some((context, matcher)) = &self.context_ignore {
            let in_context = changed.strip_prefix(context).ok()?.to_string_lossy().into_owned();
            if !in_context.is_empty() && matcher.matches_or_parent_matches(&in_context) {
                return None;
            }
        }
        Some(rel.to_path_buf())
    }

    /// Whether the rule writes files into the container.
    pub fn syncs(&self) -> bool {
        matches!(self.action, WatchAction::Sync | WatchAction::SyncRestart | WatchAction::SyncExec)
    }
}

/// The rules of `services` (all services with rules when empty).
pub fn rules(project: &Project, project_dir: &Path, services: &[String]) -> Result<Vec<Rule>, RuleError> {
    let mut out = Vec::new();
    for (name, svc) in &project.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let Some(develop) = &svc.develop else { continue };
        for (index, r) in develop.watch.iter().enumerate() {
            let fail = |message: String| RuleError { service: name.clone(), index, message };
            let path = project_dir.join(&r.path);
            let syncs = matches!(r.action, WatchAction::Sync | WatchAction::SyncRestart | WatchAction::SyncExec);
            let target = r.target.as_ref().map(PathBuf::from);
            if syncs && target.is_none() {
                return Err(fail(format!("action `{}` needs a `target`", action_name(r.action))));
            }
            if let Some(t) = target.as_ref().filter(|t| !t.is_absolute()) {
                return Err(fail(format!("target `{}` must be an absolute path in the container", t.display())));
            }
            if r.action == WatchAction::SyncExec && r.exec.as_ref().is_none_or(|e| e.command.is_empty()) {
                return Err(fail("action `sync+exec` needs `exec.command`".into()));
            }
            let mut patterns: Vec<String> = ALWAYS_IGNORED.iter().map(|s| s.to_string()).collect();
            patterns.extend(r.ignore.iter().cloned());
            let ignore = PatternMatcher::new(&patterns).map_err(|e| fail(format!("ignore: {e}")))?;
            let include = if r.include.is_empty() {
                None
            } else {
                Some(PatternMatcher::new(&r.include).map_err(|e| fail(format!("include: {e}")))?)
            };
            out.push(Rule {
                service: name.clone(),
                index,
                path,
                action: r.action,
                target,
                exec: r.exec.clone(),
                initial_sync: r.initial_sync.unwrap_or(false),
                ignore,
                include,
                context_ignore: context_ignore(svc, project_dir, &project_dir.join(&r.path)),
            });
        }
    }
    Ok(out)
}

/// The service's build context and its `.dockerignore`, when `path` is inside the context.
fn context_ignore(svc: &Service, project_dir: &Path, path: &Path) -> Option<(PathBuf, PatternMatcher)> {
    let build = svc.build.as_ref()?;
    let context = project_dir.join(build.context.as_deref().unwrap_or("."));
    if !path.starts_with(&context) {
        return None;
    }
    let dockerfile = context.join(build.dockerfile.as_deref().unwrap_or("Dockerfile"));
    let patterns = berth_dockerfile::ignore::load_patterns(&context, &dockerfile).ok()?;
    if patterns.is_empty() {
        return None;
    }
    Some((context, PatternMatcher::new(&patterns).ok()?))
}

/// A watch action as the compose file spells it.
pub fn action_name(a: WatchAction) -> &'static str {
    match a {
        WatchAction::Sync => "sync",
        WatchAction::Rebuild => "rebuild",
        WatchAction::Restart => "restart",
        WatchAction::SyncRestart => "sync+restart",
        WatchAction::SyncExec => "sync+exec",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(rules: &str) -> (Project, PathBuf) {
        let dir = std::env::temp_dir();
        let yaml = format!("services:\n  web:\n    image: x\n    develop:\n      watch:\n{rules}");
        (berth_compose::load_str(&yaml, &dir).expect("valid").project, dir)
    }

    #[test]
    fn rules_count_what_is_inside_and_not_ignored() {
        let (p, dir) = project(
            "        - {path: ./src, action: sync, target: /app, ignore: [node_modules/, '*.tmp']}\n        - {path: ./cfg, action: restart, include: ['*.conf']}\n",
        );
        let r = rules(&p, &dir, &[]).unwrap();
        assert_eq!(r.len(), 2);
        let src = &r[0];
        assert_eq!(src.relative(&dir.join("src/a/b.js")), Some(PathBuf::from("a/b.js")));
        assert_eq!(src.relative(&dir.join("src")), Some(PathBuf::new()));
        assert_eq!(src.relative(&dir.join("srcx/a")), None);
        assert_eq!(src.relative(&dir.join("src/node_modules/x/y.js")), None);
        assert_eq!(src.relative(&dir.join("src/a.tmp")), None);
        assert_eq!(src.relative(&dir.join("src/.git/HEAD")), None);
        assert_eq!(src.relative(&dir.join("src/.main.rs.swp")), None);
        assert_eq!(r[1].relative(&dir.join("cfg/app.conf")), Some(PathBuf::from("app.conf")));
        assert_eq!(r[1].relative(&dir.join("cfg/app.txt")), None);
    }

    #[test]
    fn a_build_contexts_dockerignore_counts_inside_the_context() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app/src")).unwrap();
        std::fs::write(dir.path().join("app/.dockerignore"), "src/generated\nsrc/*.log\n").unwrap();
        let yaml = "services:\n  web:\n    image: x\n    build: ./app\n    develop:\n      watch:\n        - {path: ./app/src, action: sync, target: /src}\n";
        let p = berth_compose::load_str(yaml, dir.path()).expect("valid").project;
        let r = rules(&p, dir.path(), &[]).unwrap();
        let src = dir.path().join("app/src");
        assert_eq!(r[0].relative(&src.join("main.py")), Some(PathBuf::from("main.py")));
        assert_eq!(r[0].relative(&src.join("generated/x.py")), None);
        assert_eq!(r[0].relative(&src.join("debug.log")), None);
        assert_eq!(
            r[0].relative(&src.join("sub/x.log")),
            Some(PathBuf::from("sub/x.log")),
            "`*` stays in its directory"
        );
    }

    #[test]
    fn a_sync_needs_a_target_and_an_exec_a_command() {
        let (p, dir) = project("        - {path: ./src, action: sync}\n");
        let e = rules(&p, &dir, &[]).err().expect("refused");
        assert_eq!(e.to_string(), "services.web.develop.watch[0]: action `sync` needs a `target`");
        let (p, dir) = project("        - {path: ./src, action: sync+exec, target: /app}\n");
        assert!(rules(&p, &dir, &[]).err().expect("refused").to_string().contains("exec.command"));
    }
}
