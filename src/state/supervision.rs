//! The `supervision` table: what the project supervisor and the commands tell each other about a
//! container besides its lifecycle — its health, whether the user stopped it (so restart
//! policies leave it alone), and why it was last restarted.

use rusqlite::{params, OptionalExtension};

use super::{Result, StateDb};

/// A container's health, as its health check last found it (stored as its name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not healthy yet.
    Starting,
    /// The last probe passed.
    Healthy,
    /// `retries` probes in a row failed.
    Unhealthy,
}

impl Health {
    /// `starting`, `healthy` or `unhealthy`: stored, and shown by `ps`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Health> {
        Some(match s {
            "starting" => Health::Starting,
            "healthy" => Health::Healthy,
            "unhealthy" => Health::Unhealthy,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container's supervision row.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Supervision {
    /// Its health; `None` without a health check (or before its first run).
    pub health: Option<Health>,
    /// Consecutive failed probes.
    pub failing_streak: u32,
    /// The user stopped it (`stop`, `down`): no restart policy applies until it starts again.
    pub stop_requested: bool,
    /// Why a restart policy last restarted it.
    pub restart_reason: Option<String>,
    /// How long its last health probe took.
    pub last_probe: Option<std::time::Duration>,
}

impl StateDb {
    /// The supervision row of a container (defaults when there is none).
    pub fn supervision(&self, id: &str) -> Result<Supervision> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT health, failing_streak, stop_requested, restart_reason, probe_micros FROM supervision \
                 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.query_row([id], |r| {
                    let health: Option<String> = r.get(0)?;
                    let row = Supervision {
                        health: None,
                        failing_streak: r.get(1)?,
                        stop_requested: r.get(2)?,
                        restart_reason: r.get(3)?,
                        last_probe: r
                            .get::<_, Option<i64>>(4)?
                            .map(|m| std::time::Duration::from_micros(m.max(0) as u64)),
                    };
                    Ok((health, row))
                })
                .optional()
            })
            .map_err(self.sql_err())?;
        let Some((health, mut row)) = row else { return Ok(Supervision::default()) };
        if let Some(text) = health {
            let health =
                Health::parse(&text).ok_or_else(|| self.unreadable(id, "health", format!("unknown health {text:?}")));
            row.health = Some(health?);
        }
        Ok(row)
    }

    /// Records a health status and failing streak (`None` clears it).
    pub fn set_health(
        &self,
        id: &str,
        health: Option<Health>,
        failing_streak: u32,
        probe: Option<std::time::Duration>,
    ) -> Result<()> {
        let health = health.map(Health::as_str);
        let micros = probe.map(|d| d.as_micros() as i64);
        self.conn
            .prepare_cached(
                "INSERT INTO supervision (id, health, failing_streak, probe_micros) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET health = excluded.health, failing_streak = excluded.failing_streak,
                 probe_micros = COALESCE(excluded.probe_micros, probe_micros)",
            )
            .and_then(|mut st| st.execute(params![id, health, failing_streak, micros]))
            .map_err(self.sql_err())?;
        Ok(())
    }

    pub fn set_stop_requested(&self, id: &str, requested: bool) -> Result<()> {
        self.upsert_supervision(id, "stop_requested", &requested)
    }

    /// Records why a restart policy restarted a container.
    pub fn set_restart_reason(&self, id: &str, reason: &str) -> Result<()> {
        self.upsert_supervision(id, "restart_reason", &reason)
    }

    /// Sets one column of a container's row, making the row when there is none.
    fn upsert_supervision(&self, id: &str, column: &'static str, value: &dyn rusqlite::ToSql) -> Result<()> {
        let sql = format!(
            "INSERT INTO supervision (id, {column}) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET {column} = excluded.{column}"
        );
        self.conn.prepare_cached(&sql).and_then(|mut st| st.execute(params![id, value])).map_err(self.sql_err())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_default_and_update_independently() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(db.supervision("a").unwrap(), Supervision::default());
        db.set_stop_requested("a", true).unwrap();
        db.set_health("a", Some(Health::Unhealthy), 3, Some(std::time::Duration::from_millis(12))).unwrap();
        db.set_restart_reason("a", "unhealthy").unwrap();
        let s = db.supervision("a").unwrap();
        assert_eq!(s.health, Some(Health::Unhealthy));
        assert_eq!(s.failing_streak, 3);
        assert!(s.stop_requested);
        assert_eq!(s.restart_reason.as_deref(), Some("unhealthy"));
        db.set_stop_requested("a", false).unwrap();
        assert!(!db.supervision("a").unwrap().stop_requested);
        assert_eq!(db.supervision("a").unwrap().failing_streak, 3);
    }
}
