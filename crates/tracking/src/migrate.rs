//! Copying the history of one backend into another (`recops storage migrate`):
//! pipeline runs, training runs with their iterations and champion comparisons, and
//! service rollups; rows already in the destination are kept (so a re-run resumes),
//! then both sides are verified by row counts and checksums. [`copy_table`] does this
//! for one table; stores of other crates (the alert state of recops-alerting) copy
//! their tables with it.

use chrono::{DateTime, TimeZone, Utc};
use recops_core::{Home, StorageUrl};
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};
use crate::pipeline::{PipelineRun, PipelineStore, SqlitePipelineStore};
use crate::service::{MinuteRollup, RollupStore, SqliteRollupStore};
use crate::training::{
    ChampionRecord, IterationMetric, SqliteTrainingStore, TrainingRun, TrainingStore,
};
use crate::{PgPipelineStore, PgRollupStore, PgTrainingStore, Storage};

/// Rows copied per transaction.
pub const BATCH: usize = 500;

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
    /// `pipeline_runs`, `training_runs`, `iteration_metrics`, `champion_comparisons`,
    /// `request_rollups`, `alert_state`, `silences`.
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

impl TableCopy {
    /// Compares `source` and `destination` (both in key order) by row count and
    /// checksum; `copied` rows were inserted now. [`Error::MigrationMismatch`] when
    /// they differ.
    pub fn verified<T: Serialize>(
        table: &'static str,
        source: &[T],
        destination: &[T],
        copied: usize,
    ) -> Result<TableCopy> {
        let t = TableCopy {
            table,
            source_rows: source.len(),
            copied,
            already_present: source.len().saturating_sub(copied),
            destination_rows: destination.len(),
            source_checksum: checksum(source),
            destination_checksum: checksum(destination),
        };
        if t.source_checksum != t.destination_checksum || t.source_rows != t.destination_rows {
            return Err(Error::MigrationMismatch {
                table: t.table,
                source_rows: t.source_rows,
                destination_rows: t.destination_rows,
            });
        }
        Ok(t)
    }
}

/// Copies one table between two stores, the way every store is copied: `rows` (the
/// source's, in key order) go to `import` [`BATCH`] at a time (it inserts the rows
/// missing in the destination and returns how many it inserted, so a re-run resumes),
/// `progress` is called after each batch, then `read_destination` (in the same key
/// order) is verified against the source by count and checksum
/// ([`TableCopy::verified`]). Stores outside this crate (alert state) use it too.
pub fn copy_table<T: Serialize, E: From<Error>>(
    table: &'static str,
    rows: &[T],
    mut import: impl FnMut(&[T]) -> Result<usize, E>,
    read_destination: impl FnOnce() -> Result<Vec<T>, E>,
    progress: &mut dyn FnMut(Progress),
) -> Result<TableCopy, E> {
    let mut copied = 0;
    let mut done = 0;
    for chunk in rows.chunks(BATCH) {
        copied += import(chunk)?;
        done += chunk.len();
        progress(Progress {
            table,
            done,
            total: rows.len(),
        });
    }
    let dest = read_destination()?;
    Ok(TableCopy::verified(table, rows, &dest, copied)?)
}

/// Every row of a store exported page by page (`export(after, limit)`, keyed by `key`).
fn paged<T>(
    export: impl Fn(Option<&str>, usize) -> Result<Vec<T>>,
    key: impl Fn(&T) -> &str,
) -> Result<Vec<T>> {
    let mut out: Vec<T> = Vec::new();
    loop {
        let page = export(out.last().map(&key), BATCH)?;
        let n = page.len();
        out.extend(page);
        if n < BATCH {
            return Ok(out);
        }
    }
}

fn all_pipeline_runs(s: &dyn PipelineStore) -> Result<Vec<PipelineRun>> {
    paged(|after, n| s.export(after, n), |r| &r.run_id)
}

fn all_training_runs(s: &dyn TrainingStore) -> Result<Vec<TrainingRun>> {
    paged(|after, n| s.export(after, n), |r| &r.run_id)
}

/// Iterations without their row ids (which each database assigns itself).
fn iteration_rows(s: &dyn TrainingStore, runs: &[TrainingRun]) -> Result<Vec<IterationMetric>> {
    let mut out = Vec::new();
    for r in runs {
        out.extend(s.iterations(&r.run_id)?.into_iter().map(|mut i| {
            i.id = 0;
            i
        }));
    }
    Ok(out)
}

/// The champion comparisons of the models of `runs` (each model once, by run id;
/// per model oldest first). A comparison is pruned with its run, so none is missed.
fn champion_rows(s: &dyn TrainingStore, runs: &[TrainingRun]) -> Result<Vec<ChampionRecord>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for model in runs.iter().filter_map(|r| r.model_id.as_deref()) {
        if seen.insert(model) {
            out.extend(s.champion_comparisons(model)?);
        }
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

/// Copies every row of `from` missing in `to`, in batches, verifying each table
/// (same row count, same checksum) once copied. Safe to run again after an
/// interruption: rows already copied are kept and skipped. `progress` is called
/// after each batch.
pub fn copy_stores(
    from: &Stores,
    to: &Stores,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<TableCopy>> {
    let mut tables = Vec::new();

    let runs = all_pipeline_runs(from.pipeline.as_ref())?;
    tables.push(copy_table(
        "pipeline_runs",
        &runs,
        |chunk| to.pipeline.import(chunk),
        || all_pipeline_runs(to.pipeline.as_ref()),
        progress,
    )?);

    let training = all_training_runs(from.training.as_ref())?;
    let mut its_copied = 0;
    tables.push(copy_table(
        "training_runs",
        &training,
        |chunk| {
            let mut copied = 0;
            for run in chunk {
                let its = from.training.iterations(&run.run_id)?;
                if to.training.import(run, &its)? {
                    copied += 1;
                    its_copied += its.len();
                }
            }
            Ok::<_, Error>(copied)
        },
        || all_training_runs(to.training.as_ref()),
        progress,
    )?);
    let dest = all_training_runs(to.training.as_ref())?;
    tables.push(TableCopy::verified(
        "iteration_metrics",
        &iteration_rows(from.training.as_ref(), &training)?,
        &iteration_rows(to.training.as_ref(), &dest)?,
        its_copied,
    )?);

    let champions = champion_rows(from.training.as_ref(), &training)?;
    tables.push(copy_table(
        "champion_comparisons",
        &champions,
        |chunk| {
            let mut copied = 0;
            for c in chunk {
                if !to.training.champion_comparisons(&c.model_id)?.contains(c) {
                    to.training.record_champion(c, &c.compared_at)?;
                    copied += 1;
                }
            }
            Ok::<_, Error>(copied)
        },
        || champion_rows(to.training.as_ref(), &dest),
        progress,
    )?);

    let rollups = all_rollups(from.rollups.as_ref())?;
    tables.push(copy_table(
        "request_rollups",
        &rollups,
        |chunk| to.rollups.import(chunk),
        || all_rollups(to.rollups.as_ref()),
        progress,
    )?);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Imports the rows missing in `dest` (a stand-in destination table).
    fn import_into(dest: &RefCell<Vec<u32>>, chunk: &[u32]) -> Result<usize> {
        let mut d = dest.borrow_mut();
        let missing: Vec<u32> = chunk.iter().filter(|r| !d.contains(r)).copied().collect();
        d.extend(&missing);
        d.sort_unstable();
        Ok(missing.len())
    }

    #[test]
    fn copy_table_batches_resumes_and_verifies() {
        let rows: Vec<u32> = (0..1203).collect();
        // An interrupted earlier copy left the first 100 rows.
        let dest = RefCell::new((0..100).collect::<Vec<u32>>());
        let mut seen = Vec::new();
        let t = copy_table(
            "t",
            &rows,
            |c| import_into(&dest, c),
            || Ok::<_, Error>(dest.borrow().clone()),
            &mut |p| seen.push((p.done, p.total)),
        )
        .unwrap();
        assert_eq!(seen, vec![(500, 1203), (1000, 1203), (1203, 1203)]);
        assert_eq!((t.copied, t.already_present), (1103, 100));
        assert_eq!((t.source_rows, t.destination_rows), (1203, 1203));
        assert_eq!(t.source_checksum, t.destination_checksum);
        let again = copy_table(
            "t",
            &rows,
            |c| import_into(&dest, c),
            || Ok::<_, Error>(dest.borrow().clone()),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!((again.copied, again.already_present), (0, 1203));
    }

    #[test]
    fn copy_table_refuses_a_destination_that_differs() {
        let rows: Vec<u32> = (0..10).collect();
        // The destination holds a row the source lacks.
        let dest = RefCell::new(vec![99]);
        let err = copy_table(
            "t",
            &rows,
            |c| import_into(&dest, c),
            || Ok::<_, Error>(dest.borrow().clone()),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::MigrationMismatch {
                    table: "t",
                    source_rows: 10,
                    destination_rows: 11
                }
            ),
            "{err}"
        );
        // Same count, different content: the checksum tells.
        let err = TableCopy::verified("t", &[1, 2], &[1, 3], 0).unwrap_err();
        assert!(matches!(err, Error::MigrationMismatch { .. }), "{err}");
    }
}
