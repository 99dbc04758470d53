//! The `events` table: container lifecycle events (`create`, `start`, `die`, ...) that any berth
//! process appends and `berth events` follows. Old rows are trimmed so the table stays small.

use rusqlite::params;

use super::{now_nanos, Result, StateDb};

/// How many events a project keeps.
const KEEP_PER_PROJECT: i64 = 10_000;

/// One stored event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventRecord {
    /// Increasing sequence number.
    pub seq: i64,
    /// Unix nanoseconds.
    pub time: i64,
    /// Project name.
    pub project: String,
    /// Service name.
    pub service: String,
    /// Container id.
    pub container: String,
    /// Container name.
    pub name: String,
    /// `create`, `start`, `die`, `stop`, `kill`, `pause`, `unpause`, `restart`, `destroy`, `exec_create`, `oom`.
    pub action: String,
    /// Extra attributes (`exitCode`, `signal`, `image`, ...).
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl StateDb {
    /// Appends an event.
    pub fn append_event(
        &self,
        project: &str,
        service: &str,
        container: &str,
        name: &str,
        action: &str,
        attributes: serde_json::Map<String, serde_json::Value>,
    ) -> Result<i64> {
        let attrs = serde_json::Value::Object(attributes).to_string();
        self.conn
            .prepare_cached(
                "INSERT INTO events (time, project, service, container, name, action, attributes) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut st| st.execute(params![now_nanos(), project, service, container, name, action, attrs]))
            .map_err(self.sql_err())?;
        let seq = self.conn.last_insert_rowid();
        if seq % 256 == 0 {
            self.conn
                .execute(
                    "DELETE FROM events WHERE project = ?1 AND seq <= \
                     (SELECT seq FROM events WHERE project = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
                    params![project, KEEP_PER_PROJECT],
                )
                .map_err(self.sql_err())?;
        }
        Ok(seq)
    }

    /// A project's events after `after_seq`, oldest first.
    pub fn events_after(&self, project: &str, after_seq: i64) -> Result<Vec<EventRecord>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT seq, time, project, service, container, name, action, attributes FROM events \
                 WHERE project = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(self.sql_err())?;
        let rows = st
            .query_map(params![project, after_seq], |r| {
                let attrs: String = r.get(7)?;
                Ok(EventRecord {
                    seq: r.get(0)?,
                    time: r.get(1)?,
                    project: r.get(2)?,
                    service: r.get(3)?,
                    container: r.get(4)?,
                    name: r.get(5)?,
                    action: r.get(6)?,
                    attributes: serde_json::from_str(&attrs).unwrap_or_default(),
                })
            })
            .map_err(self.sql_err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.sql_err())
    }

    /// The sequence number of a project's newest event (0 when none).
    pub fn last_event_seq(&self, project: &str) -> Result<i64> {
        self.conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events WHERE project = ?1", [project], |r| r.get(0))
            .map_err(self.sql_err())
    }

    /// Deletes a project's events (when the project is gone).
    pub fn delete_events(&self, project: &str) -> Result<()> {
        self.conn.execute("DELETE FROM events WHERE project = ?1", [project]).map_err(self.sql_err())?;
        Ok(())
    }
}
