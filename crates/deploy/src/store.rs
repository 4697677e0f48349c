//! [`DeploymentStore`]: where the deployment history and the rollback intent live —
//! the embedded `logs/deployment_history.json` and `logs/rollback_intent.json`
//! ([`FileDeploymentStore`]) or PostgreSQL ([`PgDeploymentStore`]) — and
//! [`DeploymentLog`], the handle every user goes through.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use postgres::Transaction;
use recops_core::{Home, RecopsConfig, StorageUrl};
use recops_tracking::PgDatabase;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::history::{DeploymentHistory, DeploymentRecord};

/// The backend of the deployment history.
pub trait DeploymentStore: std::fmt::Debug + Send + Sync {
    /// Every record, oldest first.
    fn load(&self) -> Result<DeploymentHistory>;

    /// Appends records (serialised against every other writer).
    fn append(&self, records: &[DeploymentRecord]) -> Result<()>;

    /// Moves records older than `cutoff` to the archive file `archive` (a history in
    /// the spec's format, extended), keeping the `keep_newest` newest whatever their
    /// age. Returns how many moved.
    fn archive_before(
        &self,
        cutoff: DateTime<Utc>,
        keep_newest: usize,
        archive: &Path,
    ) -> Result<usize>;

    /// The pending rollback intent (see `model-deployment --rollback`), if any.
    fn intent(&self) -> Result<Option<Value>>;

    /// Writes (or, with `None`, removes) the rollback intent.
    fn set_intent(&self, intent: Option<&Value>) -> Result<()>;

    /// Where the history lives, for messages (never a password).
    fn describe(&self) -> String;
}

/// The embedded history: `logs/deployment_history.json` (written atomically under
/// `deployment_history.json.lock`) and `rollback_intent.json` beside it.
#[derive(Debug, Clone)]
pub struct FileDeploymentStore {
    path: PathBuf,
    intent_path: PathBuf,
}

impl FileDeploymentStore {
    /// The history file `path`; the intent is `rollback_intent.json` beside it.
    pub fn new(path: PathBuf) -> Self {
        FileDeploymentStore {
            intent_path: path.with_file_name("rollback_intent.json"),
            path,
        }
    }
}

impl DeploymentStore for FileDeploymentStore {
    fn load(&self) -> Result<DeploymentHistory> {
        DeploymentHistory::load(&self.path)
    }

    fn append(&self, records: &[DeploymentRecord]) -> Result<()> {
        DeploymentHistory::append_all(&self.path, records)
    }

    fn archive_before(
        &self,
        cutoff: DateTime<Utc>,
        keep_newest: usize,
        archive: &Path,
    ) -> Result<usize> {
        DeploymentHistory::archive_before(&self.path, cutoff, keep_newest, archive)
    }

    /// An unreadable intent file counts as absent (the rollback then runs again,
    /// the behaviour before intents).
    fn intent(&self) -> Result<Option<Value>> {
        Ok(std::fs::read(&self.intent_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }

    fn set_intent(&self, intent: Option<&Value>) -> Result<()> {
        match intent {
            Some(v) => {
                let bytes = serde_json::to_vec_pretty(v).unwrap_or_default();
                recops_core::write_atomic(&self.intent_path, &bytes)?;
            }
            None => match std::fs::remove_file(&self.intent_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(recops_core::Error::io(
                        "cannot remove the rollback intent",
                        &self.intent_path,
                        e,
                    )
                    .into());
                }
                _ => {}
            },
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// Versioned migrations of the deployment history in PostgreSQL (store
/// `deployments` in `recops_schema_migrations`): one row per record in order (the
/// record in the spec's JSON beside the columns one filters on), and the rollback
/// intent.
pub const PG_DEPLOYMENT_MIGRATIONS: &[&str] = &["\
CREATE TABLE IF NOT EXISTS deployment_history (
    seq BIGSERIAL PRIMARY KEY,
    timestamp TEXT COLLATE \"C\" NOT NULL,
    model_id TEXT NOT NULL,
    previous_model_id TEXT,
    status TEXT NOT NULL,
    action TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deployment_intents (
    name TEXT PRIMARY KEY,
    intent TEXT NOT NULL
);
"];

/// [`DeploymentStore`] in PostgreSQL; writes are transactions retried on
/// serialization failures and deadlocks.
#[derive(Debug, Clone)]
pub struct PgDeploymentStore {
    db: PgDatabase,
    present: bool,
}

impl PgDeploymentStore {
    /// Opens the store, creating or migrating its tables.
    pub fn open(db: &PgDatabase) -> Result<Self> {
        db.migrate("deployments", PG_DEPLOYMENT_MIGRATIONS)?;
        Ok(PgDeploymentStore {
            db: db.clone(),
            present: true,
        })
    }

    /// Opens the store for reading only (the dashboard): never creates or migrates
    /// anything; an empty history when the tables do not exist yet.
    pub fn open_existing(db: &PgDatabase) -> Result<Self> {
        let present = db.schema_present("deployments", PG_DEPLOYMENT_MIGRATIONS)?;
        Ok(PgDeploymentStore {
            db: db.clone(),
            present,
        })
    }

    fn what(&self) -> PathBuf {
        format!("{} table deployment_history", self.db.url()).into()
    }

    fn corrupt(&self, message: String) -> Error {
        Error::CorruptHistory {
            path: self.what(),
            message,
        }
    }

    fn writable(&self) -> Result<()> {
        if self.present {
            return Ok(());
        }
        Err(recops_tracking::Error::InvalidInput {
            what: "deployment history",
            message: "opened read-only before its tables exist".into(),
        }
        .into())
    }

    /// Runs `f` in a retried transaction; errors of `f` that are not the database's
    /// are carried out unchanged.
    fn transaction<T>(&self, f: impl FnMut(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        self.db.transaction_of(f, |e| match e {
            Error::Storage(e) => Some(e.as_ref()),
            _ => None,
        })
    }

    fn rows(&self, tx: &mut Transaction<'_>, lock: bool) -> Result<Vec<(i64, DeploymentRecord)>> {
        let sql = if lock {
            "SELECT seq, record FROM deployment_history ORDER BY seq FOR UPDATE"
        } else {
            "SELECT seq, record FROM deployment_history ORDER BY seq"
        };
        let on = self.db.on();
        tx.query(sql, &[])
            .map_err(&on)?
            .iter()
            .map(|r| {
                let seq: i64 = r.try_get(0).map_err(&on)?;
                let json: String = r.try_get(1).map_err(&on)?;
                let record = serde_json::from_str(&json)
                    .map_err(|e| self.corrupt(format!("row {seq}: {e}")))?;
                Ok((seq, record))
            })
            .collect()
    }
}

fn spelling<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned()
}

impl DeploymentStore for PgDeploymentStore {
    fn load(&self) -> Result<DeploymentHistory> {
        if !self.present {
            return Ok(DeploymentHistory::default());
        }
        let deployments = self.transaction(|tx| {
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .map_err(self.db.on())?;
            self.rows(tx, false)
        })?;
        Ok(DeploymentHistory {
            deployments: deployments.into_iter().map(|(_, r)| r).collect(),
        })
    }

    fn append(&self, records: &[DeploymentRecord]) -> Result<()> {
        self.writable()?;
        self.transaction(|tx| {
            for r in records {
                let json = serde_json::to_string(r).map_err(|e| self.corrupt(e.to_string()))?;
                tx.execute(
                    "INSERT INTO deployment_history (timestamp, model_id, previous_model_id, \
                     status, action, record) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &r.timestamp,
                        &r.model_id.as_str(),
                        &r.previous_model_id.as_deref(),
                        &spelling(&r.status),
                        &spelling(&r.action),
                        &json,
                    ],
                )
                .map_err(self.db.on())?;
            }
            Ok(())
        })
    }

    /// The archive stays a file in the spec's format
    /// (`logs/archive/deployment_history.<date>.json`); the rows are deleted in the
    /// transaction that read them, after the file is written.
    fn archive_before(
        &self,
        cutoff: DateTime<Utc>,
        keep_newest: usize,
        archive: &Path,
    ) -> Result<usize> {
        self.writable()?;
        self.transaction(|tx| {
            let rows = self.rows(tx, true)?;
            let protected_from = rows.len().saturating_sub(keep_newest);
            let (mut seqs, mut old) = (Vec::new(), Vec::new());
            for (i, (seq, d)) in rows.into_iter().enumerate() {
                let t = recops_core::parse_timestamp(&d.timestamp);
                if i < protected_from && t.is_some_and(|t| t < cutoff) {
                    seqs.push(seq);
                    old.push(d);
                }
            }
            if old.is_empty() {
                return Ok(0);
            }
            let n = old.len();
            let mut archived = DeploymentHistory::load(archive)?;
            archived.deployments.extend(old);
            DeploymentHistory::write(archive, &archived)?;
            tx.execute(
                "DELETE FROM deployment_history WHERE seq = ANY($1)",
                &[&seqs],
            )
            .map_err(self.db.on())?;
            Ok(n)
        })
    }

    fn intent(&self) -> Result<Option<Value>> {
        if !self.present {
            return Ok(None);
        }
        let row = self
            .db
            .conn()?
            .query_opt(
                "SELECT intent FROM deployment_intents WHERE name = 'rollback'",
                &[],
            )
            .map_err(self.db.on())?;
        Ok(row
            .and_then(|r| r.try_get::<_, String>(0).ok())
            .and_then(|t| serde_json::from_str(&t).ok()))
    }

    fn set_intent(&self, intent: Option<&Value>) -> Result<()> {
        self.writable()?;
        let mut conn = self.db.conn()?;
        match intent {
            Some(v) => conn.execute(
                "INSERT INTO deployment_intents (name, intent) VALUES ('rollback', $1) \
                 ON CONFLICT (name) DO UPDATE SET intent = $1",
                &[&v.to_string()],
            ),
            None => conn.execute(
                "DELETE FROM deployment_intents WHERE name = 'rollback'",
                &[],
            ),
        }
        .map_err(self.db.on())?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.db.url().to_owned()
    }
}

/// Opens the deployment store `url` names for `home`: the files under `logs/` for
/// `embedded`, else the PostgreSQL tables (created or migrated, unless `read_only`).
pub fn open_store(
    home: &Home,
    url: &StorageUrl,
    read_only: bool,
) -> Result<Arc<dyn DeploymentStore>> {
    Ok(match url {
        StorageUrl::Embedded => Arc::new(FileDeploymentStore::new(home.deployment_history())),
        StorageUrl::Postgres(url) => {
            let db = PgDatabase::connect(url)?;
            if read_only {
                Arc::new(PgDeploymentStore::open_existing(&db)?)
            } else {
                Arc::new(PgDeploymentStore::open(&db)?)
            }
        }
    })
}

/// The deployment history of a home, over the store `storage.url` names (resolved
/// on first use). Every reader and writer of the history goes through it: the
/// deployer, `model-deployment`, maintenance, `recops models`, health and the
/// dashboard (read-only).
#[derive(Debug, Clone)]
pub struct DeploymentLog {
    home: Option<Home>,
    read_only: bool,
    store: Arc<OnceLock<Arc<dyn DeploymentStore>>>,
}

impl DeploymentLog {
    /// The history of `home` (no I/O until an operation).
    pub fn open(home: &Home) -> Self {
        DeploymentLog {
            home: Some(home.clone()),
            read_only: false,
            store: Arc::default(),
        }
    }

    /// The history of `home` for readers that never create or migrate anything.
    pub fn open_read_only(home: &Home) -> Self {
        DeploymentLog {
            read_only: true,
            ..Self::open(home)
        }
    }

    /// The history over a given store.
    pub fn with_store(store: Arc<dyn DeploymentStore>) -> Self {
        let log = DeploymentLog {
            home: None,
            read_only: false,
            store: Arc::default(),
        };
        let _ = log.store.set(store);
        log
    }

    /// The store, resolved on first use (a failure is retried at the next call).
    pub fn store(&self) -> Result<&dyn DeploymentStore> {
        if let Some(s) = self.store.get() {
            return Ok(s.as_ref());
        }
        let Some(home) = &self.home else {
            return Err(Error::NoRollbackTarget("no deployment store".into()));
        };
        let url = RecopsConfig::storage(home)?;
        let store = open_store(home, &url, self.read_only)?;
        Ok(self.store.get_or_init(|| store).as_ref())
    }

    /// Every record, oldest first.
    pub fn load(&self) -> Result<DeploymentHistory> {
        self.store()?.load()
    }

    /// Appends one record.
    pub fn append(&self, record: DeploymentRecord) -> Result<()> {
        self.store()?.append(std::slice::from_ref(&record))
    }

    /// See [`DeploymentStore::archive_before`].
    pub fn archive_before(
        &self,
        cutoff: DateTime<Utc>,
        keep_newest: usize,
        archive: &Path,
    ) -> Result<usize> {
        self.store()?.archive_before(cutoff, keep_newest, archive)
    }

    /// The pending rollback intent.
    pub fn intent(&self) -> Result<Option<Value>> {
        self.store()?.intent()
    }

    /// Writes or removes the rollback intent.
    pub fn set_intent(&self, intent: Option<&Value>) -> Result<()> {
        self.store()?.set_intent(intent)
    }
}

/// The embedded history file at `path` (tests and tools that name the file).
impl From<PathBuf> for DeploymentLog {
    fn from(path: PathBuf) -> Self {
        DeploymentLog::with_store(Arc::new(FileDeploymentStore::new(path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{DeploymentAction, DeploymentStatus};

    type Fixture = (Box<dyn std::any::Any>, DeploymentLog, bool);
    type Maker = fn() -> Fixture;

    fn files() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let log = DeploymentLog::from(dir.path().join("logs/deployment_history.json"));
        (Box::new(dir), log, true)
    }

    fn postgres() -> Fixture {
        let pg = recops_testkit::PgCluster::shared().unwrap();
        let db = PgDatabase::connect_new(&pg.fresh_database()).unwrap();
        let log = DeploymentLog::with_store(Arc::new(PgDeploymentStore::open(&db).unwrap()));
        (Box::new(db), log, false)
    }

    recops_testkit::on_both_backends!(
        on_files: files, postgres;
        records_append_in_order_and_concurrent_writers_all_land,
        old_records_move_to_the_archive_file_keeping_the_newest,
        the_rollback_intent_is_written_read_and_removed,
    );

    fn rec(model_id: &str, day: &str) -> DeploymentRecord {
        DeploymentRecord {
            timestamp: format!("{day}T00:00:00.000000+00:00"),
            model_id: model_id.parse().unwrap(),
            previous_model_id: None,
            status: DeploymentStatus::Success,
            verification: None,
            rollback_triggered: false,
            rollback_status: None,
            rollback_verification: None,
            action: DeploymentAction::Deploy,
            reason: Some("test".into()),
            duration_seconds: 0.123_456_789,
        }
    }

    fn records_append_in_order_and_concurrent_writers_all_land(make: Maker) {
        let (_keep, log, _) = make();
        assert!(log.load().unwrap().deployments.is_empty());
        log.append(rec("a", "2025-01-01")).unwrap();
        let mut b = rec("b", "2025-01-02");
        b.previous_model_id = Some("a".parse().unwrap());
        b.status = DeploymentStatus::Failed;
        log.append(b.clone()).unwrap();
        let h = log.load().unwrap();
        assert_eq!(h.deployments.len(), 2);
        assert_eq!(h.deployments[1], b, "the record round-trips exactly");
        assert_eq!(h.last_success().unwrap().model_id, "a");
        std::thread::scope(|s| {
            for t in 0..4 {
                let log = log.clone();
                s.spawn(move || {
                    for i in 0..10 {
                        log.append(rec(&format!("m{t}_{i}"), "2025-02-01")).unwrap();
                    }
                });
            }
        });
        assert_eq!(log.load().unwrap().deployments.len(), 42);
    }

    fn old_records_move_to_the_archive_file_keeping_the_newest(make: Maker) {
        let (_keep, log, _) = make();
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive/deployment_history.2026.json");
        for (i, day) in ["2024-01-01", "2024-02-01", "2025-06-01", "2025-07-01"]
            .iter()
            .enumerate()
        {
            log.append(rec(&format!("m{i}"), day)).unwrap();
        }
        let cutoff = recops_core::parse_timestamp("2025-01-01T00:00:00+00:00").unwrap();
        assert_eq!(log.archive_before(cutoff, 3, &archive).unwrap(), 1);
        assert_eq!(log.load().unwrap().deployments.len(), 3);
        assert_eq!(log.archive_before(cutoff, 1, &archive).unwrap(), 1);
        assert_eq!(log.archive_before(cutoff, 1, &archive).unwrap(), 0);
        let kept = log.load().unwrap();
        assert_eq!(kept.deployments[0].model_id, "m2");
        let archived = DeploymentHistory::load(&archive).unwrap();
        let ids: Vec<&str> = archived
            .deployments
            .iter()
            .map(|d| d.model_id.as_str())
            .collect();
        assert_eq!(ids, ["m0", "m1"]);
    }

    fn the_rollback_intent_is_written_read_and_removed(make: Maker) {
        let (_keep, log, _) = make();
        assert_eq!(log.intent().unwrap(), None);
        let v = serde_json::json!({"from": "als_1", "started_at": "t"});
        log.set_intent(Some(&v)).unwrap();
        assert_eq!(log.intent().unwrap(), Some(v));
        log.set_intent(None).unwrap();
        log.set_intent(None).unwrap();
        assert_eq!(log.intent().unwrap(), None);
    }

    #[test]
    fn a_read_only_open_of_an_empty_database_creates_nothing() {
        let Some(pg) = recops_testkit::PgCluster::shared() else {
            return;
        };
        let url = pg.fresh_database();
        let db = PgDatabase::connect_new(&url).unwrap();
        let store = PgDeploymentStore::open_existing(&db).unwrap();
        assert!(store.load().unwrap().deployments.is_empty());
        assert_eq!(store.intent().unwrap(), None);
        assert!(store.append(&[rec("a", "2025-01-01")]).is_err());
        assert!(
            !db.schema_present("deployments", PG_DEPLOYMENT_MIGRATIONS)
                .unwrap()
        );
    }
}
