//! Where `COPY`/`ADD` sources come from: the build context (with `.dockerignore` applied) or the
//! root file system of a stage or image (`--from`), and how a source path or glob picks files in
//! them.
//!
//! A source is resolved inside its root: `..` cannot leave it, a leading `/` is the root. A glob
//! (`*`, `?`, `[...]`) is matched one path component at a time, as Go's `filepath.Match` does
//! (`*` does not cross `/`). A path the ignore file excludes is not there, for globs and plain
//! paths alike; a source that matches nothing is an error.

use std::fs;
use std::path::PathBuf;

use berth_dockerfile::ignore::{clean_path, PatternMatcher};

/// A tree sources are read from.
#[derive(Debug, Clone)]
pub struct SourceRoot {
    /// Its directory on the host.
    pub dir: PathBuf,
    /// The `.dockerignore` patterns (the build context only).
    pub ignore: Option<PatternMatcher>,
}

/// One path a source picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picked {
    /// Slash-separated path relative to the root (`""` for the root itself).
    pub rel: String,
    /// A directory (its contents are copied).
    pub is_dir: bool,
}

/// Why a source picks nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickError {
    /// Nothing there (or excluded by the ignore file).
    NotFound {
        /// Whether it exists but the ignore file excludes it.
        excluded: bool,
    },
    /// A pattern the matcher refuses.
    BadPattern(String),
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `source` cleaned and made relative to the root (`..` stops at the root).
pub fn relative(source: &str) -> String {
    let cleaned = clean_path(&format!("/{source}"));
    cleaned.trim_start_matches('/').to_string()
}

impl SourceRoot {
    /// Whether `rel` is excluded by the ignore file.
    pub fn excluded(&self, rel: &str) -> bool {
        !rel.is_empty() && self.ignore.as_ref().is_some_and(|m| m.is_excluded(rel))
    }

    /// The host path of `rel`.
    pub fn host(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(rel)
        }
    }

    /// The paths `source` picks, in byte order.
    pub fn pick(&self, source: &str) -> Result<Vec<Picked>, PickError> {
        let rel = relative(source);
        if !has_glob(&rel) {
            let host = self.host(&rel);
            // The top-level source follows symlinks, as Docker does.
            let Ok(meta) = fs::metadata(&host) else {
                return Err(PickError::NotFound { excluded: false });
            };
            if self.excluded(&rel) {
                return Err(PickError::NotFound { excluded: true });
            }
            return Ok(vec![Picked { rel, is_dir: meta.is_dir() }]);
        }
        let components: Vec<&str> = rel.split('/').collect();
        let mut current = vec![String::new()];
        for (i, comp) in components.iter().enumerate() {
            let last = i + 1 == components.len();
            let mut next = Vec::new();
            for base in &current {
                let join = |name: &str| if base.is_empty() { name.to_string() } else { format!("{base}/{name}") };
                if !has_glob(comp) {
                    let p = join(comp);
                    if fs::symlink_metadata(self.host(&p)).is_ok() {
                        next.push(p);
                    }
                    continue;
                }
                let matcher = PatternMatcher::new(&[*comp]).map_err(|e| PickError::BadPattern(e.to_string()))?;
                let pattern = &matcher.patterns()[0];
                let Ok(dir) = fs::read_dir(self.host(base)) else { continue };
                for entry in dir.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if pattern.matches(&name) && (last || entry.path().is_dir()) {
                        next.push(join(&name));
                    }
                }
            }
            current = next;
        }
        let mut out: Vec<Picked> = current
            .into_iter()
            .filter(|p| !self.excluded(p))
            .filter_map(|rel| {
                let meta = fs::metadata(self.host(&rel)).ok()?;
                Some(Picked { rel, is_dir: meta.is_dir() })
            })
            .collect();
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        if out.is_empty() {
            return Err(PickError::NotFound { excluded: false });
        }
        Ok(out)
    }

    /// Everything under directory `rel` that is not excluded, parents before children, in byte
    /// order; paths relative to `rel`.
    pub fn walk(&self, rel: &str) -> std::io::Result<Vec<String>> {
        let mut out = Vec::new();
        self.walk_into(rel, "", &mut out)?;
        Ok(out)
    }

    fn walk_into(&self, base: &str, sub: &str, out: &mut Vec<String>) -> std::io::Result<()> {
        let join = |a: &str, b: &str| if a.is_empty() { b.to_string() } else { format!("{a}/{b}") };
        let dir = self.host(&join(base, sub));
        let mut names: Vec<String> = fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        names.sort();
        let walk_excluded = self.ignore.as_ref().is_some_and(|m| m.has_exclusions());
        for name in names {
            let child = join(sub, &name);
            let full = join(base, &child);
            let excluded = self.excluded(&full);
            let is_dir = fs::symlink_metadata(self.host(&full))?.is_dir();
            if !excluded {
                out.push(child.clone());
            }
            if is_dir && (!excluded || walk_excluded) {
                self.walk_into(base, &child, out)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in ["a.txt", "b.txt", "src/main.rs", "src/lib.rs", "src/gen/x.rs", "secret.key", "docs/keep.md"] {
            let p = d.path().join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, f).unwrap();
        }
        d
    }

    fn root(d: &tempfile::TempDir, ignore: &[&str]) -> SourceRoot {
        SourceRoot { dir: d.path().to_path_buf(), ignore: Some(PatternMatcher::new(ignore).unwrap()) }
    }

    #[test]
    fn globs_match_one_component_at_a_time() {
        let d = tree();
        let r = root(&d, &[]);
        let rels = |s: &str| r.pick(s).unwrap().into_iter().map(|p| p.rel).collect::<Vec<_>>();
        assert_eq!(rels("*.txt"), ["a.txt", "b.txt"]);
        assert_eq!(rels("/src/*.rs"), ["src/lib.rs", "src/main.rs"]);
        assert_eq!(rels("s*/g*"), ["src/gen"]);
        assert_eq!(rels("../../a.txt"), ["a.txt"], "`..` stops at the root");
        assert_eq!(r.pick(".").unwrap(), vec![Picked { rel: String::new(), is_dir: true }]);
        assert_eq!(r.pick("nope*").unwrap_err(), PickError::NotFound { excluded: false });
    }

    #[test]
    fn the_ignore_file_hides_paths() {
        let d = tree();
        let r = root(&d, &["*.key", "src/gen", "docs", "!docs/keep.md"]);
        assert_eq!(r.pick("secret.key").unwrap_err(), PickError::NotFound { excluded: true });
        assert_eq!(r.pick("*.key").unwrap_err(), PickError::NotFound { excluded: false });
        assert_eq!(r.walk("src").unwrap(), ["lib.rs", "main.rs"]);
        assert_eq!(r.walk("").unwrap(), ["a.txt", "b.txt", "docs/keep.md", "src", "src/lib.rs", "src/main.rs"]);
    }
}
