//! The `deployments` table: per service, what ran when. A deployment is one service
//! configuration (its config hash and the hashed config itself) with one image (reference and
//! digest); it is recorded when the first container of it is made, and a container made later
//! from the same configuration and image (another replica, a restart's successor) belongs to the
//! same deployment as long as no other came in between. A deployment becomes known-good when a
//! container of it is first seen healthy (or running for its `update_config.monitor`, without a
//! health check); `berth rollback` returns to the last known-good one, and its image is kept from
//! pruning.

use rusqlite::{params, OptionalExtension};

use super::{now_millis, ContainerRecord, Result, StateDb};

/// How many deployments a service keeps in its history.
const KEEP_PER_SERVICE: i64 = 50;

/// How a deployment went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Made; not yet seen healthy.
    Deployed,
    /// A container of it was seen healthy (or running for its monitor time).
    KnownGood,
    /// A container of it turned unhealthy or exited before it was ever seen healthy.
    Failed,
}

impl Outcome {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Deployed => "deployed",
            Outcome::KnownGood => "known-good",
            Outcome::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Outcome {
        match s {
            "known-good" => Outcome::KnownGood,
            "failed" => Outcome::Failed,
            _ => Outcome::Deployed,
        }
    }
}

/// One row of a service's history.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Deployment {
    /// Increasing sequence number (over every project).
    pub seq: i64,
    /// Project name.
    pub project: String,
    /// Service name.
    pub service: String,
    /// Unix milliseconds: when its first container was made.
    pub deployed_at: i64,
    /// The config hash of its containers.
    pub config_hash: String,
    /// The service configuration the hash covers (what `rollback` makes containers from).
    pub config: serde_json::Value,
    /// The image reference the service named.
    pub image: String,
    /// The image's digest (its id).
    pub image_digest: String,
    /// How it went.
    pub outcome: Outcome,
    /// Unix milliseconds: when it became known-good.
    pub good_at: Option<i64>,
}

impl Deployment {
    /// Whether container `c` was made from this deployment.
    pub fn made(&self, c: &ContainerRecord) -> bool {
        c.config_hash == self.config_hash && c.image_digest == self.image_digest
    }
}

const COLUMNS: &str = "seq, project, service, deployed_at, config_hash, config, image, image_digest, outcome, good_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Deployment> {
    let config: String = r.get(5)?;
    let outcome: String = r.get(8)?;
    Ok(Deployment {
        seq: r.get(0)?,
        project: r.get(1)?,
        service: r.get(2)?,
        deployed_at: r.get(3)?,
        config_hash: r.get(4)?,
        // A config that cannot be read is kept as the text it is: history still shows the row,
        // and `rollback` refuses to make containers from it.
        config: serde_json::from_str(&config).unwrap_or(serde_json::Value::String(config)),
        image: r.get(6)?,
        image_digest: r.get(7)?,
        outcome: Outcome::parse(&outcome),
        good_at: r.get(9)?,
    })
}

impl StateDb {
    /// Records the deployment container `c` (a service's, not a one-off) belongs to: the
    /// service's latest when it has the same config hash and image digest, else a new one.
    /// Runs inside the caller's transaction.
    pub(super) fn record_deployment(&self, c: &ContainerRecord) -> Result<()> {
        if c.oneoff {
            return Ok(());
        }
        let latest = self.latest_deployment(&c.project, &c.service)?;
        if latest.is_some_and(|d| d.made(c)) {
            return Ok(());
        }
        let config = c.config.service.to_string();
        self.conn
            .prepare_cached(
                "INSERT INTO deployments (project, service, deployed_at, config_hash, config, image, image_digest, \
                 outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'deployed')",
            )
            .and_then(|mut st| {
                st.execute(params![c.project, c.service, now_millis(), c.config_hash, config, c.image, c.image_digest])
            })
            .map_err(self.sql_err())?;
        self.conn
            .execute(
                "DELETE FROM deployments WHERE project = ?1 AND service = ?2 AND seq <= \
                 (SELECT seq FROM deployments WHERE project = ?1 AND service = ?2 ORDER BY seq DESC LIMIT 1 OFFSET ?3)",
                params![c.project, c.service, KEEP_PER_SERVICE],
            )
            .map_err(self.sql_err())?;
        Ok(())
    }

    /// The latest deployment of a service.
    fn latest_deployment(&self, project: &str, service: &str) -> Result<Option<Deployment>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM deployments WHERE project = ?1 AND service = ?2 ORDER BY seq DESC LIMIT 1"
            ))
            .and_then(|mut st| st.query_row(params![project, service], row).optional())
            .map_err(self.sql_err())
    }

    /// Says how the deployment container `c` was made from went: `KnownGood` once it is seen
    /// healthy (kept from then on), `Failed` when it failed before it was ever good. Returns
    /// whether the row changed.
    pub fn mark_deployment(&self, c: &ContainerRecord, outcome: Outcome) -> Result<bool> {
        let from = match outcome {
            Outcome::KnownGood => "outcome != 'known-good'",
            Outcome::Failed => "outcome = 'deployed'",
            Outcome::Deployed => return Ok(false),
        };
        let sql = format!(
            "UPDATE deployments SET outcome = ?6, good_at = CASE WHEN ?6 = 'known-good' THEN ?5 ELSE good_at END \
             WHERE seq = (SELECT max(seq) FROM deployments WHERE project = ?1 AND service = ?2 AND config_hash = ?3 \
             AND image_digest = ?4) AND {from}"
        );
        let (p, s, h, d) = (&c.project, &c.service, &c.config_hash, &c.image_digest);
        let n = self.conn.execute(&sql, params![p, s, h, d, now_millis(), outcome.as_str()]).map_err(self.sql_err())?;
        Ok(n > 0)
    }

    /// How the deployment container `c` was made from went, if it is in the history.
    pub fn deployment_outcome(&self, c: &ContainerRecord) -> Result<Option<Outcome>> {
        let sql = "SELECT outcome FROM deployments WHERE project = ?1 AND service = ?2 AND config_hash = ?3 \
                   AND image_digest = ?4 ORDER BY seq DESC LIMIT 1";
        let (p, s, h, d) = (&c.project, &c.service, &c.config_hash, &c.image_digest);
        let outcome: Option<String> = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut st| st.query_row(params![p, s, h, d], |r| r.get(0)).optional())
            .map_err(self.sql_err())?;
        Ok(outcome.map(|o| Outcome::parse(&o)))
    }

    /// A service's history, oldest first.
    pub fn deployments(&self, project: &str, service: &str) -> Result<Vec<Deployment>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM deployments WHERE project = ?1 AND service = ?2 ORDER BY seq"
            ))
            .map_err(self.sql_err())?;
        let rows = st.query_map(params![project, service], row).map_err(self.sql_err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.sql_err())
    }

    /// The deployments whose images are kept from pruning: per service of every project, its
    /// last two known-good ones with different configurations or images (what runs now, when it
    /// is good, and what `rollback` would return to).
    pub fn kept_deployments(&self) -> Result<Vec<Deployment>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM deployments WHERE outcome = 'known-good' ORDER BY project, service, seq DESC"
            ))
            .map_err(self.sql_err())?;
        let rows = st.query_map([], row).map_err(self.sql_err())?;
        let all: Vec<Deployment> = rows.collect::<rusqlite::Result<_>>().map_err(self.sql_err())?;
        let mut out: Vec<Deployment> = Vec::new();
        for d in all {
            let same_service: Vec<&Deployment> =
                out.iter().filter(|o| o.project == d.project && o.service == d.service).collect();
            let seen = same_service.iter().any(|o| o.config_hash == d.config_hash && o.image_digest == d.image_digest);
            if same_service.len() < 2 && !seen {
                out.push(d);
            }
        }
        Ok(out)
    }
}

/// The deployment `rollback` returns a service to: its last known-good one other than `current`
/// (the deployment its containers run now, when known).
pub fn rollback_target<'d>(history: &'d [Deployment], current: Option<&Deployment>) -> Option<&'d Deployment> {
    let differs =
        |d: &Deployment| current.is_none_or(|c| c.config_hash != d.config_hash || c.image_digest != d.image_digest);
    history.iter().rev().find(|d| d.outcome == Outcome::KnownGood && differs(d))
}
