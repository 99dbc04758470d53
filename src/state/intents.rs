//! The `intents` table: what is about to be made for a container before its row exists.
//!
//! `up` writes an intent before it makes a container's network namespace, secrets tmpfs and
//! leases, and deletes it once the container's row exists (or once it undid what it made). An
//! intent without a row is what a killed `up` left behind; the next `up` or `down` of the project
//! reclaims what it names. Everything it names is derived from the container name.

use rusqlite::params;

use super::{now_millis, Result, StateDb};

/// A container being made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// The container name.
    pub name: String,
    /// Its project.
    pub project: String,
    /// Its service.
    pub service: String,
}

impl StateDb {
    /// Records that container `name` of `project`/`service` is being made.
    pub fn add_intent(&self, project: &str, service: &str, name: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO intents (name, project, service, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, project, service, now_millis()],
            )
            .map_err(self.sql_err())?;
        Ok(())
    }

    /// Forgets the intent for container `name`.
    pub fn remove_intent(&self, name: &str) -> Result<()> {
        self.conn.execute("DELETE FROM intents WHERE name = ?1", [name]).map_err(self.sql_err())?;
        Ok(())
    }

    /// The intents of `project`.
    pub fn intents(&self, project: &str) -> Result<Vec<Intent>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT name, project, service FROM intents WHERE project = ?1 ORDER BY name")
            .map_err(self.sql_err())?;
        let rows = st
            .query_map([project], |r| Ok(Intent { name: r.get(0)?, project: r.get(1)?, service: r.get(2)? }))
            .map_err(self.sql_err())?;
        rows.collect::<std::result::Result<_, _>>().map_err(self.sql_err())
    }
}
