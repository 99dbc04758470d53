//! The schema and its migrations. The version is SQLite's `user_version`: migration `i` takes a
//! file from version `i` to `i + 1`, its SQL first and then, where stored values change shape, a
//! conversion of the existing rows in Rust. All pending migrations run in one transaction.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

/// Rewrites existing rows after a migration's SQL ran (given the state root, where older
/// berths kept files).
type Rows = fn(&Connection, &Path) -> Result<(), MigrateError>;

/// One schema version: its SQL, and what converts the rows an older version wrote.
pub(super) struct Migration {
    /// Tables and indexes.
    pub(super) sql: &'static str,
    /// Rewrites existing rows after `sql` ran.
    rows: Option<Rows>,
}

impl Migration {
    const fn sql(sql: &'static str) -> Migration {
        Migration { sql, rows: None }
    }
}

/// The schema, one entry per version; entry `i` upgrades version `i` to `i + 1`.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration::sql(
        r#"
CREATE TABLE projects (
    name        TEXT PRIMARY KEY,
    working_dir TEXT NOT NULL,
    files       TEXT NOT NULL,          -- JSON array of the compose files
    created_at  INTEGER NOT NULL        -- unix milliseconds
);
CREATE TABLE containers (
    id            TEXT PRIMARY KEY,     -- 64 hex digits; the OCI runtime's container id
    name          TEXT NOT NULL UNIQUE,
    project       TEXT NOT NULL,
    service       TEXT NOT NULL,
    number        INTEGER NOT NULL,     -- replica number, from 1; one-off containers count separately
    oneoff        INTEGER NOT NULL DEFAULT 0,
    image         TEXT NOT NULL,        -- the reference the service names
    image_digest  TEXT NOT NULL,        -- image id (config digest)
    config_hash   TEXT NOT NULL,
    runtime       TEXT NOT NULL,        -- `runc` or `crun`: the runtime that owns it
    status        TEXT NOT NULL,        -- created | running | paused | restarting | exited | dead
    pid           INTEGER,              -- the container's init, seen from the host
    monitor_pid   INTEGER,
    exit_code     INTEGER,
    oom_killed    INTEGER NOT NULL DEFAULT 0,
    restart_count INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,     -- unix milliseconds
    started_at    INTEGER,
    finished_at   INTEGER,
    config        TEXT NOT NULL         -- JSON: what later commands need (see container::ContainerConfig)
);
CREATE INDEX containers_project ON containers(project, service, number);
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    time       INTEGER NOT NULL,        -- unix nanoseconds
    project    TEXT NOT NULL,
    service    TEXT NOT NULL,
    container  TEXT NOT NULL,           -- container id
    name       TEXT NOT NULL,           -- container name
    action     TEXT NOT NULL,
    attributes TEXT NOT NULL            -- JSON object
);
CREATE INDEX events_project ON events(project, seq);
"#,
    ),
    Migration::sql(
        r#"
CREATE TABLE supervision (
    id             TEXT PRIMARY KEY,    -- container id
    health         TEXT,                -- starting | healthy | unhealthy; NULL without a health check
    failing_streak INTEGER NOT NULL DEFAULT 0,
    stop_requested INTEGER NOT NULL DEFAULT 0, -- stopped by the user: restart policies leave it alone
    restart_reason TEXT                 -- why a restart policy last restarted it
);
"#,
    ),
    Migration::sql(
        r#"
CREATE TABLE intents (
    name       TEXT PRIMARY KEY,        -- a container name whose namespace, secrets and leases are being made
    project    TEXT NOT NULL,
    service    TEXT NOT NULL,
    created_at INTEGER NOT NULL         -- unix milliseconds
);
"#,
    ),
    Migration {
        sql: r#"
CREATE TABLE published (
    container      TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    idx            INTEGER NOT NULL,    -- position in the service's `ports`
    protocol       TEXT NOT NULL,       -- tcp | udp
    host_ip        TEXT NOT NULL,       -- 0.0.0.0 (or ::) for all addresses
    host_port      INTEGER NOT NULL,    -- the port bound, chosen when the container was made
    container_ip   TEXT NOT NULL,
    container_port INTEGER NOT NULL,
    PRIMARY KEY (container, idx)
);
CREATE TABLE volume_holders (
    container TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    volume    TEXT NOT NULL,            -- a named (or anonymous) volume the container uses
    PRIMARY KEY (container, volume)
);
CREATE INDEX volume_holders_volume ON volume_holders(volume);
"#,
        rows: Some(|conn, _| Ok(split_config(conn)?)),
    },
    Migration {
        sql: r#"
CREATE TABLE networks (
    name        TEXT PRIMARY KEY,       -- its name on this host: `{project}_{key}` or its `name:`
    project     TEXT,                   -- the project that made it; NULL when taken in from files
    key         TEXT,                   -- its key under that project's `networks:`
    bridge      TEXT NOT NULL,
    internal    INTEGER NOT NULL DEFAULT 0,
    enable_ipv6 INTEGER NOT NULL DEFAULT 0,
    mtu         INTEGER,
    labels      TEXT NOT NULL DEFAULT '{}', -- JSON object
    created_at  INTEGER NOT NULL        -- unix milliseconds
);
CREATE TABLE subnets (
    network       TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
    idx           INTEGER NOT NULL,     -- position in the network's `ipam.config`
    subnet        TEXT NOT NULL,
    ip_range      TEXT,
    gateway       TEXT,                 -- NULL: the subnet's first host address
    aux_addresses TEXT NOT NULL DEFAULT '{}', -- JSON object: name → address, never leased
    PRIMARY KEY (network, idx)
);
CREATE TABLE leases (
    network TEXT NOT NULL,              -- a network's name (an external one may have no row here)
    address TEXT NOT NULL,
    owner   TEXT NOT NULL,              -- a container name: its row, or its intent while it is made
    PRIMARY KEY (network, address)
);
CREATE INDEX leases_owner ON leases(owner);
"#,
        rows: Some(take_in_network_files),
    },
    Migration::sql(
        r#"
CREATE TABLE deployments (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    project      TEXT NOT NULL,
    service      TEXT NOT NULL,
    deployed_at  INTEGER NOT NULL,      -- unix milliseconds: its first container made
    config_hash  TEXT NOT NULL,
    config       TEXT NOT NULL,         -- JSON: the service configuration the hash covers
    image        TEXT NOT NULL,         -- the reference the service names
    image_digest TEXT NOT NULL,         -- image id (config digest)
    outcome      TEXT NOT NULL,         -- deployed | known-good | failed
    good_at      INTEGER                -- unix milliseconds: first seen healthy
);
CREATE INDEX deployments_service ON deployments(project, service, seq);
ALTER TABLE supervision ADD COLUMN probe_micros INTEGER; -- how long its last health probe took
"#,
    ),
];

pub(super) enum MigrateError {
    Sql(rusqlite::Error),
    TooNew(i64),
    /// A file of an older berth cannot be taken in.
    OldFile {
        path: PathBuf,
        detail: String,
    },
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sql(e)
    }
}

/// Applies the migrations the database has not seen yet, in one transaction.
pub(super) fn migrate(conn: &Connection, state_root: &Path) -> Result<(), MigrateError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(MigrateError::TooNew(version));
    }
    if version == known {
        return Ok(());
    }
    // IMMEDIATE takes the write lock first, so two processes opening a new file do not both migrate.
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let result = (|| {
        for m in &MIGRATIONS[current as usize..] {
            conn.execute_batch(m.sql)?;
            if let Some(rows) = m.rows {
                rows(conn, state_root)?;
            }
        }
        conn.pragma_update(None, "user_version", known)?;
        Ok::<_, MigrateError>(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            // The error that made it roll back is the one to report.
            // A transaction not rolled back here is rolled back when the connection closes.
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    if current < 5 {
        remove_network_files(state_root);
    }
    Ok(())
}

/// Version 3 → 4: a container's published ports (`supervise.publish` in its config, host ports
/// also patched into the declared `ports`) and the volumes it holds (`volumes` in its config)
/// move to their own tables. A config that is not a JSON object is left as it is: reading the
/// row then says what is wrong with it.
fn split_config(conn: &Connection) -> rusqlite::Result<()> {
    /// A published port as version 3 stored it.
    #[derive(serde::Deserialize)]
    struct OldPublished {
        udp: bool,
        host_ip: std::net::IpAddr,
        host_port: u16,
        container_ip: std::net::IpAddr,
        container_port: u16,
    }
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT id, config FROM containers")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, text) in rows {
        let Ok(serde_json::Value::Object(mut config)) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let volumes = config.remove("volumes").and_then(|v| serde_json::from_value::<Vec<String>>(v).ok());
        for volume in volumes.unwrap_or_default() {
            conn.execute(
                "INSERT OR IGNORE INTO volume_holders (container, volume) VALUES (?1, ?2)",
                params![id, volume],
            )?;
        }
        let publish = match config.get_mut("supervise") {
            Some(serde_json::Value::Object(spec)) => spec.remove("publish"),
            _ => None,
        };
        let publish = publish.and_then(|p| serde_json::from_value::<Vec<OldPublished>>(p).ok());
        // Version 3 chose a host port for every entry of `ports`, in order.
        for (index, p) in publish.unwrap_or_default().iter().enumerate() {
            conn.execute(
                "INSERT INTO published (container, idx, protocol, host_ip, host_port, container_ip, container_port)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id,
                    index as u32,
                    if p.udp { "udp" } else { "tcp" }, // as `berth_network::proxy::Proto::as_str`
                    p.host_ip.to_string(),
                    p.host_port,
                    p.container_ip.to_string(),
                    p.container_port
                ],
            )?;
        }
        let text = serde_json::Value::Object(config).to_string();
        conn.execute("UPDATE containers SET config = ?2 WHERE id = ?1", params![id, text])?;
    }
    Ok(())
}

/// The files berth kept its networks in before version 5, under `<state root>/networks/`:
/// subnets by network name, what `berth network` shows of each, and the leases.
const NETWORK_FILES: [&str; 3] = ["subnets.json", "networks.json", "leases.json"];

/// What `networks.json` held for a network.
#[derive(serde::Deserialize)]
struct OldNetwork {
    bridge: String,
    internal: bool,
    enable_ipv6: bool,
    mtu: Option<u32>,
    labels: BTreeMap<String, String>,
    created_at: i64,
}

fn read_old<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, MigrateError> {
    let old = |detail: String| MigrateError::OldFile { path: path.to_path_buf(), detail };
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data).map_err(|e| old(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(old(e.to_string())),
    }
}

/// Version 4 → 5: the networks, subnets and leases an older berth kept in JSON files move into
/// their tables. The files are removed once the migration is committed; left behind, they are
/// never read again (only this migration reads them).
fn take_in_network_files(conn: &Connection, state_root: &Path) -> Result<(), MigrateError> {
    use berth_network::ipam::{Lease, SubnetConfig};
    let dir = state_root.join("networks");
    let subnets: BTreeMap<String, Vec<SubnetConfig>> = read_old(&dir.join(NETWORK_FILES[0]))?;
    let mut meta: BTreeMap<String, OldNetwork> = read_old(&dir.join(NETWORK_FILES[1]))?;
    let leases: Vec<Lease> = read_old(&dir.join(NETWORK_FILES[2]))?;
    for (name, subnets) in subnets {
        // A network recorded before berth kept more than its subnets: its bridge is the one
        // its name gives.
        let meta = meta.remove(&name).map_or_else(
            || {
                let bridge = berth_network::network::NetworkSpec::new(&name, &BTreeMap::new())
                    .map(|s| s.bridge.to_string())
                    .map_err(|e| MigrateError::OldFile { path: dir.join(NETWORK_FILES[0]), detail: e.to_string() })?;
                Ok::<_, MigrateError>(OldNetwork {
                    bridge,
                    internal: false,
                    enable_ipv6: false,
                    mtu: None,
                    labels: BTreeMap::new(),
                    created_at: 0,
                })
            },
            Ok,
        )?;
        let labels = serde_json::to_string(&meta.labels).expect("a map of strings");
        conn.execute(
            "INSERT INTO networks (name, bridge, internal, enable_ipv6, mtu, labels, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![name, meta.bridge, meta.internal, meta.enable_ipv6, meta.mtu, labels, meta.created_at],
        )?;
        for (idx, s) in subnets.iter().enumerate() {
            let aux = serde_json::to_string(&s.aux_addresses).expect("a map of addresses");
            conn.execute(
                "INSERT INTO subnets (network, idx, subnet, ip_range, gateway, aux_addresses)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    name,
                    idx as u32,
                    s.subnet.to_string(),
                    s.ip_range.map(|r| r.to_string()),
                    s.gateway.map(|g| g.to_string()),
                    aux
                ],
            )?;
        }
    }
    for l in leases {
        // The file could hold one address twice (it was never checked): the first owner keeps it.
        conn.execute(
            "INSERT OR IGNORE INTO leases (network, address, owner) VALUES (?1, ?2, ?3)",
            params![l.network, l.addr.to_string(), l.owner],
        )?;
    }
    Ok(())
}

/// Removes the network files an older berth kept (and the temporary files it wrote them
/// through), once their content is in the database. One that cannot be removed stays: it is
/// never read again.
fn remove_network_files(state_root: &Path) {
    let dir = state_root.join("networks");
    for name in NETWORK_FILES.iter().chain(&["subnets.tmp", "networks.tmp", "leases.json.tmp"]) {
        // See above: one that stays is never read again.
        let _ = std::fs::remove_file(dir.join(name));
    }
}
