//! The embedded state database: projects, containers (with their published ports and the
//! volumes they hold), networks (their subnets and the addresses leased on them), supervision,
//! each service's deployment history and the event log, in SQLite (WAL mode) at
//! `<state root>/state.db`. Rows are read into typed records once, where they are read: a value
//! that cannot be read is an error that names its container.
//!
//! Several berth processes use the database at once (the CLI, one monitor per container, later the
//! project supervisor), so every connection sets a busy timeout and every write is one short
//! transaction. The schema version is SQLite's `user_version`; the migrations (in `migrate`) bring
//! an older file up to date, converting its rows, and a newer one is refused.

mod containers;
pub mod deferred;
mod deployments;
mod events;
mod holders;
mod intents;
mod migrate;
mod networks;
mod ports;
mod supervision;
pub use supervision::{Health, Supervision};

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub use containers::{ContainerRecord, ExitRecord, Status};
pub use deployments::{rollback_target, Deployment, Outcome};
pub use events::EventRecord;
pub use intents::Intent;
use migrate::{migrate, MigrateError, MIGRATIONS};
pub use networks::{DbLeases, NetworkRow};
pub use ports::Published;

/// Errors of the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite failed.
    #[error("state database `{path}`: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The directory of the database cannot be created.
    #[error("cannot create `{path}`: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A container's stored row cannot be read back into its typed record.
    #[error("state database `{path}`: the row of container `{container}` cannot be read: its {what}: {detail}")]
    Unreadable {
        /// The database file.
        path: PathBuf,
        /// The container's name (its id where only the id is known).
        container: String,
        /// Which value.
        what: String,
        /// Why.
        detail: String,
    },
    /// A network's stored value cannot be read back.
    #[error("state database `{path}`: the row of network `{network}` cannot be read: its {what}: {detail}")]
    BadNetwork {
        /// The database file.
        path: PathBuf,
        /// The network's name.
        network: String,
        /// Which value.
        what: String,
        /// Why.
        detail: String,
    },
    /// A file an older berth kept its state in cannot be taken into the database.
    #[error("cannot take `{path}` into the state database: {detail}\nhint: repair the file, or remove it to forget what it holds")]
    OldFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The file is not a usable SQLite database: truncated, overwritten, or corrupt inside.
    #[error(
        "the state database `{path}` is damaged ({detail}); berth cannot use it\nhint: move it aside (berth then \
         starts an empty one and no longer knows the containers it made) or restore a copy"
    )]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The database was written by a newer berth.
    #[error("state database `{path}` has schema version {found}; this berth knows up to {known}")]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The file's version.
        found: i64,
        /// Ours.
        known: i64,
    },
}

/// Result type of the state module.
pub type Result<T, E = StateError> = std::result::Result<T, E>;

/// An open state database.
pub struct StateDb {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for StateDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDb").field("path", &self.path).finish()
    }
}

impl StateDb {
    /// Opens (creating as needed) `<state_root>/state.db` and brings its schema up to date.
    pub fn open(state_root: &Path) -> Result<Self> {
        std::fs::create_dir_all(state_root).map_err(|source| StateError::Io { path: state_root.into(), source })?;
        let path = state_root.join("state.db");
        // A damaged file is recognised before SQLite locks anything: otherwise one that a
        // running monitor or supervisor holds open can end in a busy wait and "database is
        // locked" instead of saying what is wrong.
        if let Some(detail) = damage(&path) {
            return Err(StateError::Damaged { path, detail });
        }
        let conn = Connection::open(&path).map_err(|source| sqlite_error(&path, source))?;
        let db = StateDb { conn, path };
        db.setup(state_root)?;
        Ok(db)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql_err(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        move |source| sqlite_error(&self.path, source)
    }

    /// The error for a stored value of container `container` that cannot be read back.
    fn unreadable(&self, container: &str, what: &str, detail: impl std::fmt::Display) -> StateError {
        StateError::Unreadable {
            path: self.path.clone(),
            container: container.to_string(),
            what: what.to_string(),
            detail: detail.to_string(),
        }
    }

    /// A transaction that takes the write lock at once (a deferred one that writes later can
    /// fail with "busy" when another process wrote in between).
    fn write_transaction(&self) -> Result<rusqlite::Transaction<'_>> {
        rusqlite::Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate)
            .map_err(self.sql_err())
    }

    fn setup(&self, state_root: &Path) -> Result<()> {
        let e = self.sql_err();
        self.conn.busy_timeout(Duration::from_secs(10)).map_err(&e)?;
        // WAL lets readers run while a monitor writes; NORMAL is durable across process crashes.
        self.conn.pragma_update(None, "journal_mode", "WAL").map_err(&e)?;
        self.conn.pragma_update(None, "synchronous", "NORMAL").map_err(&e)?;
        self.conn.pragma_update(None, "foreign_keys", "ON").map_err(&e)?;
        // berth's processes are short-lived: the last to close the file would checkpoint, fsync
        // and delete the WAL, and the next would create it again and fsync its directory. The
        // automatic checkpoint, by whichever process commits, is enough. It comes every 128
        // pages (SQLite's default is 1000): a process that opens the file while no other has it
        // open rebuilds the WAL's index from the whole WAL, and berth's commands open it often
        // while the database itself stays small.
        self.conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true).map_err(&e)?;
        self.conn.pragma_update(None, "wal_autocheckpoint", 128).map_err(&e)?;
        self.conn.pragma_update(None, "journal_size_limit", 1 << 20).map_err(&e)?;
        migrate(&self.conn, state_root).map_err(|err| match err {
            MigrateError::Sql(source) => sqlite_error(&self.path, source),
            MigrateError::OldFile { path, detail } => StateError::OldFile { path, detail },
            MigrateError::TooNew(found) => {
                StateError::TooNew { path: self.path.clone(), found, known: MIGRATIONS.len() as i64 }
            }
        })
    }

    /// Records a project (its directory and files) the first time it is used.
    pub fn upsert_project(&self, name: &str, working_dir: &Path, files: &[PathBuf]) -> Result<()> {
        let files = serde_json::to_string(files).unwrap_or_else(|_| "[]".into());
        self.conn
            .execute(
                "INSERT INTO projects (name, working_dir, files, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET working_dir = excluded.working_dir, files = excluded.files",
                rusqlite::params![name, working_dir.to_string_lossy(), files, now_millis()],
            )
            .map_err(self.sql_err())?;
        Ok(())
    }

    /// Forgets a project that has no containers left; returns whether a row was removed.
    pub fn remove_project_if_empty(&self, name: &str) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "DELETE FROM projects WHERE name = ?1 AND NOT EXISTS (SELECT 1 FROM containers WHERE project = ?1)",
                [name],
            )
            .map_err(self.sql_err())?;
        Ok(n > 0)
    }

    /// The compose files a project was last used with.
    pub fn project_files(&self, name: &str) -> Result<Vec<PathBuf>> {
        let mut st = self.conn.prepare("SELECT files FROM projects WHERE name = ?1").map_err(self.sql_err())?;
        let mut rows = st.query([name]).map_err(self.sql_err())?;
        let Some(row) = rows.next().map_err(self.sql_err())? else { return Ok(Vec::new()) };
        let text: String = row.get(0).map_err(self.sql_err())?;
        Ok(serde_json::from_str(&text).unwrap_or_default())
    }

    /// Names of the known projects.
    pub fn projects(&self) -> Result<Vec<String>> {
        let mut st = self.conn.prepare("SELECT name FROM projects ORDER BY name").map_err(self.sql_err())?;
        let rows = st.query_map([], |r| r.get(0)).map_err(self.sql_err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.sql_err())
    }
}

/// An SQLite error of the database at `path`; a damaged file is said to be one.
fn sqlite_error(path: &Path, source: rusqlite::Error) -> StateError {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    match source.sqlite_error_code() {
        Some(DatabaseCorrupt | NotADatabase) => {
            let detail = match source {
                rusqlite::Error::SqliteFailure(e, Some(msg)) if msg != e.to_string() => format!("{e}: {msg}"),
                other => other.to_string(),
            };
            StateError::Damaged { path: path.to_path_buf(), detail }
        }
        _ => StateError::Sqlite { path: path.to_path_buf(), source },
    }
}

/// What is visibly wrong with the database file at `path` without asking SQLite: the 100-byte
/// header (magic string and page size) and the size, which is always a whole number of pages.
/// An empty or missing file is a new database. Reads 100 bytes: it runs at every open.
fn damage(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len == 0 {
        return None;
    }
    let mut header = [0u8; 100];
    if len < 100 || file.read_exact(&mut header).is_err() {
        return Some(format!("it is truncated: {len} bytes, less than an SQLite header"));
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Some("it is not an SQLite database: its header is wrong".into());
    }
    let page = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536,
        n => u64::from(n),
    };
    if !(512..=65536).contains(&page) || !page.is_power_of_two() {
        return Some(format!("its header names an invalid page size ({page})"));
    }
    if len % page != 0 {
        return Some(format!("it is truncated: {len} bytes, not a whole number of {page}-byte pages"));
    }
    None
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Nanoseconds since the Unix epoch.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

#[cfg(test)]
mod deployment_tests;
#[cfg(test)]
mod network_tests;
#[cfg(test)]
mod tests;
