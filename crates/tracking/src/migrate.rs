//! Copying the history of one backend into another (`recops storage migrate`):
//! pipeline runs, training runs with their iterations, and service rollups; rows
//! already in the destination are kept (so a re-run resumes), then both sides are
//! verified by row counts and checksums.

use chrono::{DateTime, TimeZone, Utc};
use recops_core::{Home, StorageUrl};
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};
use crate::pipeline::{PipelineStore, SqlitePipelineStore};
use crate::service::{MinuteRollup, RollupStore, SqliteRollupStore};
use crate::training::{SqliteTrainingStore, TrainingStore};
use crate::{PgPipelineStore, PgRollupStore, PgTrainingStore, Storage};

/// Rows copied per transaction.
const BATCH: usize = 500;

/// The three tracking stores of one backend.
#[derive(Debug)]
pub struct Stores {
    /// `pipeline_runs`.
    pub pipeline: Box<dyn PipelineStore>,
    /// `training_runs` + `iteration_metrics`.
    pub training: Box<dyn TrainingStore>,
    /// `request_rollups`.
    pub rollups: Box<dyn RollupStore>,
}

impl Stores {
    /// The stores `url` names for `home`: its SQLite files under `logs/` for
    /// `embedded`, else the PostgreSQL tables (created or migrated).
    pub fn open(home: &Home, url: &StorageUrl) -> Result<Stores> {
        Ok(match Storage::from_url(url)? {
            Storage::Embedded => Stores {
                pipeline: Box::new(SqlitePipelineStore::open(&home.pipeline_db())?),
                training: Box::new(SqliteTrainingStore::open(&home.training_db())?),
                rollups: Box::new(SqliteRollupStore::open(&home.service_db())?),
            },
            Storage::Postgres(db) => Stores {
                pipeline: Box::new(PgPipelineStore::open(&db)?),
                training: Box::new(PgTrainingStore::open(&db)?),
                rollups: Box::new(PgRollupStore::open(&db)?),
            },
        })
    }
}

/// Progress of a copy: `done` of `total` rows of `table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// The table being copied.
    pub table: &'static str,
    /// Source rows handled so far.
    pub done: usize,
    /// Source rows in all.
    pub total: usize,
}

/// What happened to one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCopy {
    /// `pipeline_runs`, `training_runs`, `iteration_metrics`, `request_rollups`.
    pub table: &'static str,
    /// Rows in the source.
    pub source_rows: usize,
    /// Rows inserted now.
    pub copied: usize,
    /// Rows that were already in the destination (an earlier, interrupted run).
    pub already_present: usize,
    /// Rows in the destination afterwards.
    pub destination_rows: usize,
    /// xxh3-64 of the source rows in key order (hex).
    pub source_checksum: String,
    /// The same over the destination.
    pub destination_checksum: String,
}

/// The result of [`copy_stores`]: every table verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    /// Where from (`embedded` or a URL without password).
    pub from: String,
    /// Where to.
    pub to: String,
    /// Per table.
    pub tables: Vec<TableCopy>,
}

impl std::fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Copied {} -> {} (verified)", self.from, self.to)?;
        writeln!(
            f,
            "{:<18}  {:>8}  {:>8}  {:>8}  {:>8}  CHECKSUM",
            "TABLE", "SOURCE", "COPIED", "PRESENT", "DEST"
        )?;
        for t in &self.tables {
            writeln!(
                f,
                "{:<18}  {:>8}  {:>8}  {:>8}  {:>8}  {}",
                t.table,
                t.source_rows,
                t.copied,
                t.already_present,
                t.destination_rows,
                t.destination_checksum
            )?;
        }
        Ok(())
    }
}

fn checksum<T: Serialize>(rows: &[T]) -> String {
    let mut h = Xxh3::new();
    for r in rows {
        h.update(serde_json::to_string(r).unwrap_or_default().as_bytes());
        h.update(b"\n");
    }
    format!("{:016x}", h.digest())
}

fn all_pipeline_runs(s: &dyn PipelineStore) -> Result<Vec<crate::PipelineRun>> {
    let mut out: Vec<crate::PipelineRun> = Vec::new();
    loop {
        let after = out.last().map(|r| r.run_id.clone());
        let page = s.export(after.as_deref(), BATCH)?;
        let n = page.len();
        out.extend(page);
        if n < BATCH {
            return Ok(out);
        }
    }
}

fn all_training_runs(s: &dyn TrainingStore) -> Result<Vec<crate::TrainingRun>> {
    let mut out: Vec<crate::TrainingRun> = Vec::new();
    loop {
        let after = out.last().map(|r| r.run_id.clone());
        let page = s.export(after.as_deref(), BATCH)?;
        let n = page.len();
        out.extend(page);
        if n < BATCH {
            return Ok(out);
        }
    }
}

/// Iterations without their row ids (which each database assigns itself).
fn iteration_rows(
    s: &dyn TrainingStore,
    runs: &[crate::TrainingRun],
) -> Result<Vec<crate::IterationMetric>> {
    let mut out = Vec::new();
    for r in runs {
        out.extend(s.iterations(&r.run_id)?.into_iter().map(|mut i| {
            i.id = 0;
            i
        }));
    }
    Ok(out)
}

fn all_rollups(s: &dyn RollupStore) -> Result<Vec<MinuteRollup>> {
    let (from, to) = rollup_range();
    s.rollups(from, to, None)
}

fn rollup_range() -> (DateTime<Utc>, DateTime<Utc>) {
    (
        Utc.timestamp_opt(0, 0).single().unwrap_or_default(),
        Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0)
            .single()
            .unwrap_or_default(),
    )
}

fn verify(t: &TableCopy) -> Result<()> {
    if t.source_checksum != t.destination_checksum || t.source_rows != t.destination_rows {
        return Err(Error::MigrationMismatch {
            table: t.table,
            source_rows: t.source_rows,
            destination_rows: t.destination_rows,
        });
    }
    Ok(())
}

/// Copies every row of `from` missing in `to`, in batches, then verifies each table
/// (same row count, same checksum). Safe to run again after an interruption: rows
/// already copied are kept and skipped. `progress` is called after each batch.
pub fn copy_stores(
    from: &Stores,
    to: &Stores,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<TableCopy>> {
    let mut tables = Vec::new();

    let runs = all_pipeline_runs(from.pipeline.as_ref())?;
    let mut copied = 0;
    for (i, chunk) in runs.chunks(BATCH).enumerate() {
        copied += to.pipeline.import(chunk)?;
        progress(Progress {
            table: "pipeline_runs",
            done: (i * BATCH + chunk.len()).min(runs.len()),
            total: runs.len(),
        });
    }
    let dest = all_pipeline_runs(to.pipeline.as_ref())?;
    tables.push(TableCopy {
        table: "pipeline_runs",
        source_rows: runs.len(),
        copied,
        already_present: runs.len() - copied,
        destination_rows: dest.len(),
        source_checksum: checksum(&runs),
        destination_checksum: checksum(&dest),
    });

    let training = all_training_runs(from.training.as_ref())?;
    let (mut copied, mut its_copied) = (0, 0);
    for (i, run) in training.iter().enumerate() {
        let its = from.training.iterations(&run.run_id)?;
        if to.training.import(run, &its)? {
            copied += 1;
            its_copied += its.len();
        }
        if (i + 1) % BATCH == 0 || i + 1 == training.len() {
            progress(Progress {
                table: "training_runs",
                done: i + 1,
                total: training.len(),
            });
        }
    }
    let dest = all_training_runs(to.training.as_ref())?;
    tables.push(TableCopy {
        table: "training_runs",
        source_rows: training.len(),
        copied,
        already_present: training.len() - copied,
        destination_rows: dest.len(),
        source_checksum: checksum(&training),
        destination_checksum: checksum(&dest),
    });
    let src_its = iteration_rows(from.training.as_ref(), &training)?;
    let dest_its = iteration_rows(to.training.as_ref(), &dest)?;
    tables.push(TableCopy {
        table: "iteration_metrics",
        source_rows: src_its.len(),
        copied: its_copied,
        already_present: src_its.len().saturating_sub(its_copied),
        destination_rows: dest_its.len(),
        source_checksum: checksum(&src_its),
        destination_checksum: checksum(&dest_its),
    });

    let rollups = all_rollups(from.rollups.as_ref())?;
    let mut copied = 0;
    for (i, chunk) in rollups.chunks(BATCH).enumerate() {
        copied += to.rollups.import(chunk)?;
        progress(Progress {
            table: "request_rollups",
            done: (i * BATCH + chunk.len()).min(rollups.len()),
            total: rollups.len(),
        });
    }
    let dest = all_rollups(to.rollups.as_ref())?;
    tables.push(TableCopy {
        table: "request_rollups",
        source_rows: rollups.len(),
        copied,
        already_present: rollups.len() - copied,
        destination_rows: dest.len(),
        source_checksum: checksum(&rollups),
        destination_checksum: checksum(&dest),
    });

    for t in &tables {
        verify(t)?;
    }
    Ok(tables)
}

/// `recops storage migrate --to URL`: copies the history of `home`'s current store
/// (`RECOPS_STORAGE_URL` / `storage.url`) into `to` and verifies it. Copying a store
/// onto itself is refused.
pub fn migrate_home(
    home: &Home,
    to: &StorageUrl,
    progress: &mut dyn FnMut(Progress),
) -> Result<MigrationReport> {
    let from = recops_core::RecopsConfig::storage(home)?;
    if &from == to {
        return Err(Error::InvalidInput {
            what: "--to",
            message: format!("{to} is already the store of this home; nothing to copy"),
        });
    }
    let source = Stores::open(home, &from)?;
    let dest = Stores::open(home, to)?;
    let tables = copy_stores(&source, &dest, progress)?;
    tracing::info!(from = %from, to = %to, "storage migrated and verified");
    Ok(MigrationReport {
        from: from.to_string(),
        to: to.to_string(),
        tables,
    })
}
