//! Test helpers shared by integration tests: the fixture images, a real local registry, root checks.
#![allow(dead_code)]

pub mod registry;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub use registry::Registry;

/// Fails the test (never skips) when not running as root.
pub fn require_root(what: &str) {
    if !nix::unistd::geteuid().is_root() {
        panic!("{what} needs root (CI runs as root); refusing to skip");
    }
}

/// The OCI layout with the fixture images (refs `busybox`, `layered`, `config`, `multiarch`), built
/// once per test process by `fixtures/image/build.sh` and cached across runs.
pub fn fixture_layout() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(build_fixtures).clone()
}

fn build_fixtures() -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("berth-fixtures");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/image/build.sh");
    let status = Command::new("bash").arg(&script).arg(&out).status().expect("run fixtures/image/build.sh");
    assert!(status.success(), "fixtures/image/build.sh failed");
    out.join("oci")
}

/// A temporary state root (BERTH_ROOT) removed on drop.
pub struct TempRoot(pub tempfile::TempDir);

impl TempRoot {
    pub fn new() -> Self {
        TempRoot(tempfile::Builder::new().prefix("berth-test-").tempdir().expect("temp dir"))
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// An overlay or tmpfs mount undone on drop (tests clean up even when they fail).
pub struct MountGuard(pub PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}
