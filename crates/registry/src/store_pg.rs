//! [`PgRegistryStore`]: the registry and its audit trail in PostgreSQL.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use postgres::Transaction;
use recops_core::ModelId;
use recops_tracking::PgDatabase;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::registry::{AuditRecord, ModelEntry, RegistryFile};
use crate::store::{RegistryStore, append_archive, check_consistent};

/// Versioned migrations of the registry in PostgreSQL (store `registry` in
/// `recops_schema_migrations`): one row per model (the whole entry as JSON beside
/// the columns one filters on), one state row (`current_best`, the `deployed`
/// record, unknown top-level fields) whose row lock serialises writers, and the
/// audit trail in order.
pub const PG_REGISTRY_MIGRATIONS: &[&str] = &["\
CREATE TABLE IF NOT EXISTS registry_state (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    current_best TEXT,
    deployed TEXT,
    extra TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO registry_state (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS registry_models (
    model_id TEXT COLLATE \"C\" PRIMARY KEY,
    model_type TEXT NOT NULL,
    status TEXT NOT NULL,
    path TEXT NOT NULL,
    registered_at TEXT COLLATE \"C\" NOT NULL,
    entry TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_audit (
    seq BIGSERIAL PRIMARY KEY,
    time TEXT COLLATE \"C\" NOT NULL,
    operation TEXT NOT NULL,
    model_id TEXT,
    previous_current_best TEXT,
    current_best TEXT,
    reason TEXT NOT NULL,
    pid BIGINT NOT NULL,
    deployed TEXT
);
"];

/// What `load` errors name as the registry in PostgreSQL.
const WHAT: &str = "registry_models";

/// [`RegistryStore`] in PostgreSQL: reads in one repeatable-read snapshot; every
/// write is one transaction that locks the state row first (so writers of every
/// host are serialised) and is retried on serialization failures and deadlocks.
#[derive(Debug, Clone)]
pub struct PgRegistryStore {
    db: PgDatabase,
    /// False for a read-only open of a database without the tables yet: reads give
    /// an empty registry.
    present: bool,
}

impl PgRegistryStore {
    /// Opens the store, creating or migrating its tables.
    pub fn open(db: &PgDatabase) -> Result<Self> {
        db.migrate("registry", PG_REGISTRY_MIGRATIONS)?;
        Ok(PgRegistryStore {
            db: db.clone(),
            present: true,
        })
    }

    /// Opens the store for reading only (the dashboard): never creates or migrates
    /// anything; an empty registry when the tables do not exist yet.
    pub fn open_existing(db: &PgDatabase) -> Result<Self> {
        let present = db.schema_present("registry", PG_REGISTRY_MIGRATIONS)?;
        Ok(PgRegistryStore {
            db: db.clone(),
            present,
        })
    }

    fn corrupt(&self, message: String) -> Error {
        Error::Corrupt {
            path: format!("{} table {WHAT}", self.db.url()).into(),
            message,
        }
    }

    /// Runs `f` in a retried transaction; errors of `f` that are not the database's
    /// are carried out unchanged.
    fn transaction<T>(&self, f: impl FnMut(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        self.db.transaction_of(f, |e| match e {
            Error::Storage(e) => Some(e.as_ref()),
            _ => None,
        })
    }

    fn read(&self, tx: &mut Transaction<'_>, lock: bool) -> Result<RegistryFile> {
        let on = self.db.on();
        let state = tx
            .query_opt(
                if lock {
                    "SELECT current_best, deployed, extra FROM registry_state WHERE id = 1 FOR UPDATE"
                } else {
                    "SELECT current_best, deployed, extra FROM registry_state WHERE id = 1"
                },
                &[],
            )
            .map_err(&on)?;
        let mut reg = RegistryFile::default();
        if let Some(row) = state {
            let cb: Option<String> = row.try_get(0).map_err(&on)?;
            reg.current_best = cb
                .map(|c| ModelId::new(c).map_err(|e| self.corrupt(e.to_string())))
                .transpose()?;
            let deployed: Option<String> = row.try_get(1).map_err(&on)?;
            reg.deployed = deployed
                .map(|d| serde_json::from_str(&d).map_err(|e| self.corrupt(e.to_string())))
                .transpose()?;
            let extra: String = row.try_get(2).map_err(&on)?;
            reg.extra = serde_json::from_str::<Map<String, Value>>(&extra)
                .map_err(|e| self.corrupt(e.to_string()))?;
        }
        for row in tx
            .query(
                "SELECT model_id, entry FROM registry_models ORDER BY model_id",
                &[],
            )
            .map_err(&on)?
        {
            let id: String = row.try_get(0).map_err(&on)?;
            let entry: String = row.try_get(1).map_err(&on)?;
            let id = ModelId::new(&id).map_err(|e| self.corrupt(e.to_string()))?;
            let entry: ModelEntry = serde_json::from_str(&entry)
                .map_err(|e| self.corrupt(format!("model {id}: {e}")))?;
            reg.models.insert(id, entry);
        }
        check_consistent(&reg, Path::new(&format!("{} table {WHAT}", self.db.url())))?;
        Ok(reg)
    }

    /// Writes `after` over `before`: changed models upserted, removed ones deleted,
    /// the state row updated.
    fn write(
        &self,
        tx: &mut Transaction<'_>,
        before: &BTreeMap<ModelId, ModelEntry>,
        after: &RegistryFile,
    ) -> Result<()> {
        let on = self.db.on();
        for (id, entry) in &after.models {
            if before.get(id) == Some(entry) {
                continue;
            }
            let json = to_json(entry)?;
            tx.execute(
                "INSERT INTO registry_models (model_id, model_type, status, path, registered_at, entry) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (model_id) DO UPDATE SET \
                 model_type = $2, status = $3, path = $4, registered_at = $5, entry = $6",
                &[
                    &id.as_str(),
                    &entry.model_type.to_string(),
                    &status_str(entry)?,
                    &entry.path,
                    &entry.registered_at,
                    &json,
                ],
            )
            .map_err(&on)?;
        }
        for id in before.keys().filter(|id| !after.models.contains_key(*id)) {
            tx.execute(
                "DELETE FROM registry_models WHERE model_id = $1",
                &[&id.as_str()],
            )
            .map_err(&on)?;
        }
        let deployed = after.deployed.as_ref().map(to_json).transpose()?;
        let extra = to_json(&after.extra)?;
        tx.execute(
            "INSERT INTO registry_state (id, current_best, deployed, extra) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET current_best = $1, deployed = $2, extra = $3",
            &[&after.current_best.as_deref(), &deployed, &extra],
        )
        .map_err(&on)?;
        Ok(())
    }

    fn insert_audit(&self, tx: &mut Transaction<'_>, records: &[AuditRecord]) -> Result<()> {
        let on = self.db.on();
        for r in records {
            tx.execute(
                "INSERT INTO registry_audit (time, operation, model_id, previous_current_best, \
                 current_best, reason, pid, deployed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &r.time,
                    &r.operation,
                    &r.model_id,
                    &r.previous_current_best,
                    &r.current_best,
                    &r.reason,
                    &i64::from(r.pid),
                    &r.deployed,
                ],
            )
            .map_err(&on)?;
        }
        Ok(())
    }

    fn audit_row(&self, r: &postgres::Row) -> Result<(i64, AuditRecord)> {
        let on = self.db.on();
        let pid: i64 = r.try_get(7).map_err(&on)?;
        Ok((
            r.try_get(0).map_err(&on)?,
            AuditRecord {
                time: r.try_get(1).map_err(&on)?,
                operation: r.try_get(2).map_err(&on)?,
                model_id: r.try_get(3).map_err(&on)?,
                previous_current_best: r.try_get(4).map_err(&on)?,
                current_best: r.try_get(5).map_err(&on)?,
                reason: r.try_get(6).map_err(&on)?,
                pid: u32::try_from(pid).unwrap_or_default(),
                deployed: r.try_get(8).map_err(&on)?,
            },
        ))
    }

    fn read_only(&self) -> Result<()> {
        if self.present {
            Ok(())
        } else {
            Err(recops_tracking::Error::InvalidInput {
                what: "registry",
                message: "opened read-only before its tables exist".into(),
            }
            .into())
        }
    }
}

const SELECT_AUDIT: &str = "SELECT seq, time, operation, model_id, previous_current_best, \
     current_best, reason, pid, deployed FROM registry_audit";

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Corrupt {
        path: WHAT.into(),
        message: e.to_string(),
    })
}

fn status_str(entry: &ModelEntry) -> Result<String> {
    Ok(to_json(&entry.status)?.trim_matches('"').to_owned())
}

impl RegistryStore for PgRegistryStore {
    fn load(&self) -> Result<RegistryFile> {
        if !self.present {
            return Ok(RegistryFile::default());
        }
        self.transaction(|tx| {
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .map_err(self.db.on())?;
            self.read(tx, false)
        })
    }

    fn update(
        &self,
        change: &mut dyn FnMut(&mut RegistryFile) -> Result<Vec<AuditRecord>>,
    ) -> Result<()> {
        self.read_only()?;
        self.transaction(|tx| {
            let mut reg = self.read(tx, true)?;
            let before = reg.models.clone();
            let records = change(&mut reg)?;
            self.write(tx, &before, &reg)?;
            crate::store::written_point(&records);
            self.insert_audit(tx, &records)
        })
    }

    fn audit(&self) -> Result<Vec<AuditRecord>> {
        if !self.present {
            return Ok(Vec::new());
        }
        let mut conn = self.db.conn()?;
        let rows = conn
            .query(&format!("{SELECT_AUDIT} ORDER BY seq"), &[])
            .map_err(self.db.on())?;
        rows.iter()
            .map(|r| self.audit_row(r).map(|(_, a)| a))
            .collect()
    }

    /// The archive stays a file (`logs/archive/registry_audit.<date>.log`, the same
    /// lines as the embedded one); the rows are deleted in the transaction that read
    /// them, after the file is synced.
    fn archive_audit_before(&self, cutoff: DateTime<Utc>, archive: &Path) -> Result<usize> {
        self.read_only()?;
        self.transaction(|tx| {
            let rows = tx
                .query(&format!("{SELECT_AUDIT} ORDER BY seq FOR UPDATE"), &[])
                .map_err(self.db.on())?;
            let (mut old, mut text) = (Vec::new(), String::new());
            for r in &rows {
                let (seq, record) = self.audit_row(r)?;
                if recops_core::parse_timestamp(&record.time).is_some_and(|t| t < cutoff) {
                    old.push(seq);
                    text.push_str(&to_json(&record)?);
                    text.push('\n');
                }
            }
            if old.is_empty() {
                return Ok(0);
            }
            append_archive(archive, text.as_bytes())?;
            tx.execute("DELETE FROM registry_audit WHERE seq = ANY($1)", &[&old])
                .map_err(self.db.on())?;
            Ok(old.len())
        })
    }

    fn import(&self, file: &RegistryFile) -> Result<()> {
        self.read_only()?;
        self.transaction(|tx| {
            let before = self.read(tx, true)?.models;
            self.write(tx, &before, file)
        })
    }

    fn import_audit(&self, records: &[AuditRecord]) -> Result<()> {
        self.read_only()?;
        self.transaction(|tx| self.insert_audit(tx, records))
    }

    fn describe(&self) -> String {
        self.db.url().to_owned()
    }
}
