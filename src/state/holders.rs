//! The `volume_holders` table: which containers hold which named volumes. A container's
//! volumes are recorded with its row and go with it, so a volume is in use exactly while a
//! row names it; `volume rm`, `down -v` and the release of anonymous volumes ask this table.

use std::collections::BTreeMap;

use rusqlite::params;

use super::{Result, StateDb};

impl StateDb {
    /// The volumes container `id` holds, in the order they were recorded.
    pub(super) fn volumes_of(&self, id: &str) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT volume FROM volume_holders WHERE container = ?1 ORDER BY rowid")
            .map_err(self.sql_err())?;
        let rows = st.query_map([id], |r| r.get(0)).map_err(self.sql_err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.sql_err())
    }

    /// Records the volumes container `id` holds (in addition to those recorded before).
    pub(super) fn write_volumes(&self, id: &str, volumes: &[String]) -> Result<()> {
        let mut st = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO volume_holders (container, volume) VALUES (?1, ?2)")
            .map_err(self.sql_err())?;
        for v in volumes {
            st.execute(params![id, v]).map_err(self.sql_err())?;
        }
        Ok(())
    }

    /// The containers (names, of any project) that hold volume `volume`.
    pub fn volume_holders(&self, volume: &str) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT c.name FROM volume_holders v JOIN containers c ON c.id = v.container
                 WHERE v.volume = ?1 ORDER BY c.name",
            )
            .map_err(self.sql_err())?;
        let rows = st.query_map([volume], |r| r.get(0)).map_err(self.sql_err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.sql_err())
    }

    /// Every volume some container holds, with its holders (names).
    pub fn all_volume_holders(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT v.volume, c.name FROM volume_holders v JOIN containers c ON c.id = v.container
                 ORDER BY c.project, c.service, c.number, v.volume",
            )
            .map_err(self.sql_err())?;
        let rows =
            st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(self.sql_err())?;
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in rows {
            let (volume, name) = row.map_err(self.sql_err())?;
            out.entry(volume).or_default().push(name);
        }
        Ok(out)
    }
}
