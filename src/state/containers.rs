//! The `containers` table: one row per container berth created, from `create` until `rm`.

use rusqlite::{params, OptionalExtension, Row};

use super::{now_millis, Published, Result, StateDb, StateError};
use crate::container::{ContainerConfig, PortBinding};

/// A container's lifecycle status, as `berth ps` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or its monitor never got the runtime to start it).
    Created,
    /// Its process runs.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// Stopped by `restart` (or a restart policy) and about to run again.
    Restarting,
    /// Its process exited; the exit code is recorded.
    Exited,
    /// Gone without a recorded exit code (its monitor died, or the runtime lost it).
    Dead,
}

impl Status {
    /// The lower-case name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "restarting" => Status::Restarting,
            "exited" => Status::Exited,
            "dead" => Status::Dead,
            _ => return None,
        })
    }

    /// Running or paused: a process exists.
    pub fn is_alive(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the `containers` table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ContainerRecord {
    /// The runtime's container id (64 hex digits).
    pub id: String,
    /// `<project>-<service>-<n>`, `container_name`, or `<project>-<service>-run-<id>`.
    pub name: String,
    /// Project name.
    pub project: String,
    /// Service name.
    pub service: String,
    /// Replica number, from 1.
    pub number: u32,
    /// Made by `berth run`.
    pub oneoff: bool,
    /// The image reference the service names.
    pub image: String,
    /// Image id (config digest).
    pub image_digest: String,
    /// Hash of the service configuration the container was made from.
    pub config_hash: String,
    /// The OCI runtime that owns the container.
    pub runtime: String,
    /// Lifecycle status.
    pub status: Status,
    /// Host pid of the container's init while it runs.
    pub pid: Option<i32>,
    /// Pid of the container's monitor while it runs.
    pub monitor_pid: Option<i32>,
    /// Exit code of the last run.
    pub exit_code: Option<i32>,
    /// The last run ended by the OOM killer.
    pub oom_killed: bool,
    /// Restarts so far.
    pub restart_count: u32,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of the last start.
    pub started_at: Option<i64>,
    /// Unix milliseconds of the last exit.
    pub finished_at: Option<i64>,
    /// What later commands need to know (the `config` column, JSON of the container module's
    /// type, read once with the row).
    pub config: ContainerConfig,
    /// The host ports bound for its declared ports (the `published` table).
    pub published: Vec<Published>,
    /// The volumes it holds (the `volume_holders` table).
    pub volumes: Vec<String>,
}

/// A row's key ([`ContainerRecord::key`]) in SQL: the `key` of its config, else its name.
pub(super) const KEY: &str = "COALESCE(CASE WHEN json_valid(config) THEN json_extract(config, '$.key') END, name)";

impl ContainerRecord {
    /// The name its network namespace, secrets, leases and port rules go by: its own, or the
    /// one it was made under when it took another's since (a start-first successor).
    pub fn key(&self) -> &str {
        self.config.key.as_deref().unwrap_or(&self.name)
    }

    /// Its declared ports as `ps` and `port` show them: with the host port bound for each,
    /// where one is, else as the service declared it.
    pub fn ports(&self) -> Vec<PortBinding> {
        let mut ports = self.config.ports.clone();
        for p in &self.published {
            if let Some(b) = ports.get_mut(p.index as usize) {
                b.host_ip = p.host_ip.to_string();
                b.published = p.host_port.to_string();
            }
        }
        ports
    }
}

const COLUMNS: &str = "id, name, project, service, number, oneoff, image, image_digest, config_hash, runtime, \
                       status, pid, monitor_pid, exit_code, oom_killed, restart_count, created_at, started_at, \
                       finished_at, config";

/// How a container's run ended, for [`StateDb::record_exit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitRecord {
    /// Exit code (128 + signal when killed by a signal); `None` when unknown.
    pub code: Option<i32>,
    /// Killed by the OOM killer.
    pub oom_killed: bool,
}

impl StateDb {
    /// A row of `COLUMNS` as a record (without its published ports and volumes), or why it
    /// cannot be read.
    fn row_to_record(&self, r: &Row<'_>) -> rusqlite::Result<Result<ContainerRecord>> {
        let name: String = r.get(1)?;
        let unreadable = |what: &str, detail: String| self.unreadable(&name, what, detail);
        let status: String = r.get(10)?;
        let Some(status) = Status::parse(&status) else {
            return Ok(Err(unreadable("status", format!("unknown status {status:?}"))));
        };
        let config: String = r.get(19)?;
        let config = match serde_json::from_str(&config) {
            Ok(c) => c,
            Err(e) => return Ok(Err(unreadable("config", e.to_string()))),
        };
        Ok(Ok(ContainerRecord {
            id: r.get(0)?,
            name: name.clone(),
            project: r.get(2)?,
            service: r.get(3)?,
            number: r.get(4)?,
            oneoff: r.get(5)?,
            image: r.get(6)?,
            image_digest: r.get(7)?,
            config_hash: r.get(8)?,
            runtime: r.get(9)?,
            status,
            pid: r.get(11)?,
            monitor_pid: r.get(12)?,
            exit_code: r.get(13)?,
            oom_killed: r.get(14)?,
            restart_count: r.get(15)?,
            created_at: r.get(16)?,
            started_at: r.get(17)?,
            finished_at: r.get(18)?,
            config,
            published: Vec::new(),
            volumes: Vec::new(),
        }))
    }

    /// The rows `sql` selects, each read whole or with why it cannot be; a failure of the
    /// database itself is the outer error.
    fn read_containers(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Result<ContainerRecord>>> {
        let rows: Vec<Result<ContainerRecord>> = {
            let mut st = self.conn.prepare_cached(sql).map_err(self.sql_err())?;
            let rows = st.query_map(params, |r| self.row_to_record(r)).map_err(self.sql_err())?;
            rows.collect::<rusqlite::Result<_>>().map_err(self.sql_err())?
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(match row {
                Ok(mut rec) => match self.published_of(&rec.id, &rec.name) {
                    Ok(published) => {
                        rec.published = published;
                        rec.volumes = self.volumes_of(&rec.id)?;
                        Ok(rec)
                    }
                    Err(e @ StateError::Unreadable { .. }) => Err(e),
                    Err(e) => return Err(e),
                },
                Err(e) => Err(e),
            });
        }
        Ok(out)
    }

    /// The rows `sql` selects; one that cannot be read is an error naming its container.
    fn query_containers(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<ContainerRecord>> {
        self.read_containers(sql, params)?.into_iter().collect()
    }

    /// Inserts a new container row with its published ports and volumes, and records the
    /// deployment it belongs to, in one transaction.
    pub fn insert_container(&self, c: &ContainerRecord) -> Result<()> {
        let config = serde_json::to_string(&c.config).map_err(|e| self.unreadable(&c.name, "config", e))?;
        let tx = self.write_transaction()?;
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO containers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
                 ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
            ))
            .and_then(|mut st| {
                st.execute(params![
                    c.id,
                    c.name,
                    c.project,
                    c.service,
                    c.number,
                    c.oneoff,
                    c.image,
                    c.image_digest,
                    c.config_hash,
                    c.runtime,
                    c.status.as_str(),
                    c.pid,
                    c.monitor_pid,
                    c.exit_code,
                    c.oom_killed,
                    c.restart_count,
                    c.created_at,
                    c.started_at,
                    c.finished_at,
                    config,
                ])
            })
            .map_err(self.sql_err())?;
        self.write_published(&c.id, &c.published)?;
        self.write_volumes(&c.id, &c.volumes)?;
        self.record_deployment(c)?;
        tx.commit().map_err(self.sql_err())
    }

    /// Replaces a container's config and its published ports, in one transaction (when `up`
    /// has chosen its host ports and written its supervision spec).
    pub fn set_config(&self, id: &str, config: &ContainerConfig, published: &[Published]) -> Result<()> {
        let text = serde_json::to_string(config).map_err(|e| self.unreadable(id, "config", e))?;
        let tx = self.write_transaction()?;
        self.conn
            .prepare_cached("UPDATE containers SET config = ?2 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![id, text]))
            .map_err(self.sql_err())?;
        self.write_published(id, published)?;
        tx.commit().map_err(self.sql_err())
    }

    /// Replaces a container's config, its published ports and its configuration hash, in one
    /// transaction (a change made in place: the container now is as its service says). The new
    /// definition is a deployment of its service, known-good at once when the one the container
    /// ran before was (the same process goes on running).
    pub fn set_definition(
        &self,
        id: &str,
        config: &ContainerConfig,
        published: &[Published],
        hash: &str,
    ) -> Result<()> {
        let text = serde_json::to_string(config).map_err(|e| self.unreadable(id, "config", e))?;
        let tx = self.write_transaction()?;
        let before = self.container(id)?;
        self.conn
            .prepare_cached("UPDATE containers SET config = ?2, config_hash = ?3 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![id, text, hash]))
            .map_err(self.sql_err())?;
        self.write_published(id, published)?;
        if let (Some(before), Some(after)) = (before, self.container(id)?) {
            self.record_deployment(&after)?;
            if self.deployment_outcome(&before)? == Some(super::Outcome::KnownGood) {
                self.mark_deployment(&after, super::Outcome::KnownGood)?;
            }
        }
        tx.commit().map_err(self.sql_err())
    }

    /// Gives container `id` the name `to` (the name a start-first successor takes from the
    /// container it replaced), keeping the name its namespace, secrets, leases and port rules
    /// were made under as its key.
    pub fn rename_container(&self, id: &str, to: &str) -> Result<()> {
        let Some(rec) = self.container(id)? else { return Ok(()) };
        let config = ContainerConfig { key: Some(rec.key().to_string()), replaces: None, ..rec.config.clone() };
        let text = serde_json::to_string(&config).map_err(|e| self.unreadable(id, "config", e))?;
        let tx = self.write_transaction()?;
        self.conn
            .prepare_cached("UPDATE containers SET name = ?2, config = ?3 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![id, to, text]))
            .map_err(self.sql_err())?;
        tx.commit().map_err(self.sql_err())
    }

    /// The containers of `project`, as [`StateDb::containers`], and apart from them the rows
    /// that cannot be read (each error names its container): for commands that go on past
    /// them (`down`, the supervisor).
    pub fn scan_containers(&self, project: &str) -> Result<(Vec<ContainerRecord>, Vec<StateError>)> {
        let rows = self.project_rows(project)?;
        let (good, bad): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.is_ok());
        Ok((good.into_iter().flatten().collect(), bad.into_iter().filter_map(|r| r.err()).collect()))
    }

    /// One container by id.
    pub fn container(&self, id: &str) -> Result<Option<ContainerRecord>> {
        Ok(self.query_containers(&format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"), [id])?.pop())
    }

    /// One container by name.
    pub fn container_by_name(&self, name: &str) -> Result<Option<ContainerRecord>> {
        Ok(self.query_containers(&format!("SELECT {COLUMNS} FROM containers WHERE name = ?1"), [name])?.pop())
    }

    /// A project's containers, ordered by service, one-off last, then number.
    pub fn containers(&self, project: &str) -> Result<Vec<ContainerRecord>> {
        self.project_rows(project)?.into_iter().collect()
    }

    fn project_rows(&self, project: &str) -> Result<Vec<Result<ContainerRecord>>> {
        self.read_containers(
            &format!(
                "SELECT {COLUMNS} FROM containers WHERE project = ?1 ORDER BY service, oneoff, number, created_at"
            ),
            [project],
        )
    }

    /// Every container of every project.
    pub fn all_containers(&self) -> Result<Vec<ContainerRecord>> {
        self.query_containers(&format!("SELECT {COLUMNS} FROM containers ORDER BY project, service, number"), [])
    }

    /// The lowest replica number ≥ 1 that no (non one-off) container of the service has.
    pub fn next_number(&self, project: &str, service: &str, oneoff: bool) -> Result<u32> {
        let mut st = self
            .conn
            .prepare_cached("SELECT number FROM containers WHERE project = ?1 AND service = ?2 AND oneoff = ?3")
            .map_err(self.sql_err())?;
        let used: Vec<u32> = st
            .query_map(params![project, service, oneoff], |r| r.get(0))
            .map_err(self.sql_err())?
            .collect::<rusqlite::Result<_>>()
            .map_err(self.sql_err())?;
        Ok((1..).find(|n| !used.contains(n)).unwrap_or(1))
    }

    /// Marks a container as running with its pids (after the runtime started it).
    pub fn record_start(&self, id: &str, pid: i32, monitor_pid: i32) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE containers SET status = 'running', pid = ?2, monitor_pid = ?3, exit_code = NULL, \
                 oom_killed = 0, started_at = ?4, finished_at = NULL WHERE id = ?1",
            )
            .and_then(|mut st| st.execute(params![id, pid, monitor_pid, now_millis()]))
            .map_err(self.sql_err())?;
        // A new run: not stopped by anyone, and its health check starts over.
        self.conn
            .prepare_cached(
                "UPDATE supervision SET stop_requested = 0, health = NULL, failing_streak = 0 WHERE id = ?1",
            )
            .and_then(|mut st| st.execute([id]))
            .map_err(self.sql_err())?;
        Ok(())
    }

    /// Records the end of a run. A container marked `restarting` stays so (its restarter starts it
    /// again); anything else becomes `exited`, or `dead` when the exit code is unknown.
    pub fn record_exit(&self, id: &str, exit: ExitRecord) -> Result<()> {
        let status = if exit.code.is_some() { "exited" } else { "dead" };
        self.conn
            .prepare_cached(
                "UPDATE containers SET status = CASE status WHEN 'restarting' THEN 'restarting' ELSE ?2 END, \
                 pid = NULL, monitor_pid = NULL, exit_code = ?3, oom_killed = ?4, finished_at = ?5 WHERE id = ?1",
            )
            .and_then(|mut st| st.execute(params![id, status, exit.code, exit.oom_killed, now_millis()]))
            .map_err(self.sql_err())?;
        Ok(())
    }

    /// Sets the status alone (pause, unpause, restarting, created after a failed start).
    pub fn set_status(&self, id: &str, status: Status) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE containers SET status = ?2 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![id, status.as_str()]))
            .map_err(self.sql_err())?;
        Ok(())
    }

    /// Counts one more restart.
    pub fn count_restart(&self, id: &str) -> Result<()> {
        self.conn
            .execute("UPDATE containers SET restart_count = restart_count + 1 WHERE id = ?1", [id])
            .map_err(self.sql_err())?;
        Ok(())
    }

    /// Deletes a container row, with its supervision and the addresses it leased, in one
    /// transaction: its leases never outlive it, and a delete that fails keeps both. Returns
    /// whether the row existed.
    pub fn delete_container(&self, id: &str) -> Result<bool> {
        let e = self.sql_err();
        let tx = self.write_transaction()?;
        self.conn.execute("DELETE FROM supervision WHERE id = ?1", [id]).map_err(&e)?;
        self.conn
            .execute(&format!("DELETE FROM leases WHERE owner = (SELECT {KEY} FROM containers WHERE id = ?1)"), [id])
            .map_err(&e)?;
        let n = self.conn.execute("DELETE FROM containers WHERE id = ?1", [id]).map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(n > 0)
    }

    /// The ids of the images containers (of any project) were made from.
    pub fn images_in_use(&self) -> Result<std::collections::BTreeSet<String>> {
        let mut st =
            self.conn.prepare_cached("SELECT DISTINCT image_digest FROM containers").map_err(self.sql_err())?;
        let rows = st.query_map([], |r| r.get(0)).map_err(self.sql_err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.sql_err())
    }

    /// Whether any container uses the image with this id (for `image rm` and `image prune`).
    pub fn image_in_use(&self, image_digest: &str) -> Result<bool> {
        self.conn
            .query_row("SELECT 1 FROM containers WHERE image_digest = ?1 LIMIT 1", [image_digest], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(self.sql_err())
    }
}
