//! A real registry for tests: Debian's `docker-registry` (CNCF distribution) on a free loopback
//! port with its own config and storage, seeded with `skopeo`; killed when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    creds: Option<String>,
}

impl Registry {
    /// Starts a registry and waits until `/v2/` answers.
    pub fn start() -> Registry {
        Registry::start_with(None)
    }

    /// Starts a registry that wants HTTP basic auth (htpasswd, bcrypt via `htpasswd` from
    /// apache2-utils) for `user`/`password`.
    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Registry::start_with(Some((user, password)))
    }

    fn start_with(auth: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::Builder::new().prefix("berth-registry-").tempdir().expect("temp dir");
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("storage").display()
            );
            let config = match auth {
                None => config,
                Some((user, password)) => {
                    let out = Command::new("htpasswd")
                        .args(["-Bbn", user, password])
                        .output()
                        .expect("run `htpasswd` (Debian package apache2-utils)");
                    assert!(out.status.success(), "htpasswd failed");
                    let file = dir.path().join("htpasswd");
                    std::fs::write(&file, out.stdout).expect("write htpasswd");
                    format!("{config}auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n", file.display())
                }
            };
            let cfg = dir.path().join("config.yml");
            std::fs::write(&cfg, config).expect("write registry config");
            let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&cfg)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start `docker-registry` (Debian package docker-registry)");
            let mut child = child;
            match wait_ready(&mut child, dir.path(), port) {
                Ok(()) => return Registry { child, dir, port, creds: auth.map(|(u, p)| format!("{u}:{p}")) },
                Err(e) => {
                    last_err = e;
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!("docker-registry did not start: {last_err}");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Copies `oci:<layout>:<src_ref>` to `docker://HOST/<dest>` with skopeo (all platforms).
    pub fn seed(&self, layout: &Path, src_ref: &str, dest: &str) {
        self.seed_with(layout, src_ref, dest, &["--all"]);
    }

    /// Like [`seed`](Self::seed) with other skopeo options (e.g. `--format v2s2` for Docker
    /// manifests and media types).
    pub fn seed_with(&self, layout: &Path, src_ref: &str, dest: &str, extra: &[&str]) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]).args(extra);
        if let Some(c) = &self.creds {
            cmd.arg("--dest-creds").arg(c);
        }
        let out = cmd
            .arg(format!("oci:{}:{src_ref}", layout.display()))
            .arg(format!("docker://{}/{dest}", self.host()))
            .output()
            .expect("run skopeo (Debian package skopeo)");
        assert!(
            out.status.success(),
            "skopeo copy {src_ref} -> {dest} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `HOST/<dest>` after seeding every fixture image under `berth-test/<ref>:latest`.
    pub fn with_fixtures(layout: &Path) -> Registry {
        let reg = Registry::start();
        for r in ["busybox", "layered", "config", "multiarch"] {
            reg.seed(layout, r, &format!("berth-test/{r}:latest"));
        }
        reg
    }

    /// The full reference of a seeded fixture image.
    pub fn image(&self, name: &str) -> String {
        format!("{}/berth-test/{name}:latest", self.host())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET on loopback; returns the raw response.
pub fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn wait_ready(child: &mut Child, dir: &Path, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
            return Err(format!("exited with {status}: {log}"));
        }
        if let Ok(body) = http_get(port, "/v2/") {
            if body.starts_with("HTTP/1.1 200") || body.starts_with("HTTP/1.1 401") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err("no answer on /v2/ within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
