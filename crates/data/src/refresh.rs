//! The data steps of a refresh (spec Component 7): staging files in, processed data
//! out, crash-safe. The job around it (lock, tracking, alerts) lives in
//! `recops-automation`.
//!
//! Every output of a run changes in **one commit** ([`crate::commit`]):
//! 1. a journal left by a killed run is rolled forward, and outputs staged by a run
//!    killed before its commit point are removed;
//! 2. the new `interactions.parquet` (its footer records the staging files whose rows
//!    it holds), the derived outputs (`X_train_confidence.npz`,
//!    `user_item_mappings.json`, `user_metadata.parquet`, `data_version.json`) and the
//!    rejected-rows reports are written to hidden staged names beside their final
//!    ones (`.<name>.next`) and checked;
//! 3. the commit: a journal listing the renames (staged outputs to their final names,
//!    staging files to `data/staging/archive/`) is written atomically — the commit
//!    point — then the renames are done and the journal is removed.
//!
//! Killed before the commit point: every final file, the staging folder and the
//! archive are as before (the staged files are removed by the next run). Killed after
//! it: the next writer or reader through recops rolls the journal forward, giving
//! exactly the state of an uninterrupted run. If an archive move fails (it never
//! blocks: the rows are committed), the next run recognises the file as committed
//! (same name, size and content hash as the footer records) and archives it without
//! ingesting it again. Outputs that do not name the current data version (a home
//! written by an older recops, or edited by hand) are rebuilt (`Repair`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use recops_core::{Home, format_timestamp};
use serde::Serialize;
use tracing::{info, warn};

use crate::commit::{Rename, RenameKind, archive_targets, staged_path};
use crate::config::DataConfig;
use crate::error::{Error, FileProblem, Result};
use crate::ingest::{
    IngestLimits, StagingBatch, StagingFile, StagingFormat, find_staging_files,
    read_staging_file_with, write_rejected_to,
};
use crate::matrix::{Mappings, UserMetadata, confidence_matrix};
use crate::merge::{MergeStats, merge};
use crate::npz::{read_csr_npz, write_csr_npz};
use crate::parquet_io::read_parquet_footer;
use crate::table::{
    IngestedFile, Interactions, ReadOptions, TableMeta, read_interactions_meta,
    read_interactions_source, write_interactions_reusing,
};
use crate::training::TrainingData;
use crate::version::{DataManifest, content_hash, data_version};

/// Options of [`refresh`].
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    /// Rebuild everything even for a few new rows (`--force-full`).
    pub force_full: bool,
    /// Where new files are picked up (default: the home's `data/staging/`). Archived
    /// and rejected files always go to the home's `data/staging/archive/` and
    /// `data/staging/rejected/`.
    pub staging_dir: Option<PathBuf>,
    /// The time of the run (names of rejected/archived files, `created_at`).
    pub now: DateTime<Utc>,
}

/// What kind of refresh ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshKind {
    /// No staging files and the outputs are consistent: nothing to do.
    NoNewData,
    /// No staging files, but the derived outputs did not match the interactions (an
    /// interrupted run): they were rebuilt.
    Repair,
    /// At most `incremental_max_new_rows` new rows merged into the existing data; only
    /// the new comments are scored.
    Incremental,
    /// Everything rebuilt: all rows re-checked and re-scored, all outputs rewritten.
    Full,
}

/// One staging file of a refresh.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    /// File name.
    pub name: String,
    /// CSV or Parquet.
    pub format: StagingFormat,
    /// Data rows in the file.
    pub rows: usize,
    /// Valid rows.
    pub valid: usize,
    /// Rejected rows.
    pub rejected: usize,
    /// Where the rejected rows were written.
    pub rejected_file: Option<PathBuf>,
    /// Where the file was archived.
    pub archived_to: Option<PathBuf>,
}

/// The result of [`refresh`] (the spec's `type`, `new_records`, `total_records`, and
/// what an operator needs besides).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefreshReport {
    /// Incremental, full, repair or nothing to do.
    #[serde(rename = "type")]
    pub kind: RefreshKind,
    /// Valid rows read from staging files.
    pub new_records: usize,
    /// Rows rejected by validation.
    pub rejected_records: usize,
    /// Rows of `interactions.parquet` after the refresh.
    pub total_records: usize,
    /// Rows before.
    pub previous_records: usize,
    /// What the merge did (added, replaced, unchanged, duplicates).
    pub merge: MergeStats,
    /// Data version after the refresh (`None` when there is no data at all).
    pub data_version: Option<String>,
    /// Data version before.
    pub previous_data_version: Option<String>,
    /// Whether `interactions.parquet` changed.
    pub changed: bool,
    /// Whether the derived outputs were (re)written.
    pub outputs_written: bool,
    /// Users (matrix rows).
    pub users: usize,
    /// Items (matrix columns).
    pub items: usize,
    /// Training cells (non-zeros of `X_train_confidence.npz`).
    pub train_interactions: usize,
    /// Mean `comment_quality` of every interaction after the merge, in [0, 1] (the
    /// data version's quality; `None` when nothing was merged).
    pub mean_comment_quality: Option<f64>,
    /// Held-out cells.
    pub test_interactions: usize,
    /// The staging files processed in this run.
    pub files: Vec<FileReport>,
    /// Staging files whose rows an interrupted earlier run had already committed:
    /// archived now, not ingested again.
    pub recovered_files: Vec<FileReport>,
    /// Staging entries skipped (hidden files, other extensions).
    pub ignored_files: Vec<PathBuf>,
    /// Seconds per phase (read, merge, write, validate, archive).
    pub timings_seconds: BTreeMap<String, f64>,
}

/// Runs the data steps of a refresh on `home` with `config` (see the module docs for
/// the order of writes). The caller holds the `data_refresh` pipeline lock.
///
/// Fails, changing nothing, when a staging file cannot be ingested at all
/// ([`Error::BadStagingFiles`] names every such file and why; they stay in staging).
pub fn refresh(
    home: &Home,
    config: &DataConfig,
    options: &RefreshOptions,
) -> Result<RefreshReport> {
    let mut timer = Timer::new();
    let staging_dir = options
        .staging_dir
        .clone()
        .unwrap_or_else(|| home.staging_dir());
    let stamp = options.now.format("%Y%m%dT%H%M%SZ").to_string();
    let processed = home.ensure_dir(home.processed_dir())?;
    let staged_dirs = [processed.clone(), home.staging_rejected_dir()];
    crate::commit::prepare(home, &staged_dirs)?;
    remove_orphan_temp_files(&processed, home);

    let table_path = home.interactions();
    let previous = if table_path.exists() {
        Some(read_interactions_meta(&table_path)?)
    } else {
        None
    };
    let scan = find_staging_files(&staging_dir)?;
    for p in &scan.ignored {
        warn!(path = %p.display(), "ignoring staging entry: not a .csv or .parquet file (or hidden)");
    }
    let (recovered_files, pending) =
        recover_committed(home, scan.files, previous.as_ref(), &stamp)?;
    let limits = config.refresh.ingest_limits(options.now);
    let mut batches = read_pending(&pending, &limits)?;
    timer.lap("read");

    let plan = Plan::decide(home, config, options, previous.as_ref(), &batches);
    let mut report = plan.report(&batches, recovered_files, scan.ignored);
    if plan.kind == RefreshKind::NoNewData {
        report.timings_seconds = timer.finish();
        return Ok(report);
    }
    let staged = report_rejected(home, &batches, &stamp).and_then(|(files, rejected)| {
        report.files = files;
        let mut renames = stage_outputs(
            home,
            config,
            options,
            &plan,
            &mut batches,
            &mut report,
            &mut timer,
        )?;
        renames.extend(rejected);
        Ok(renames)
    });
    let mut renames = match staged {
        Ok(r) => r,
        Err(e) => {
            // Failed before the commit point: nothing changed; leave nothing behind.
            crate::commit::remove_staged(&staged_dirs);
            return Err(e);
        }
    };
    // Created by the move itself: a folder that cannot be created fails only the
    // archive step, never the commit.
    let archive_dir = home.staging_archive_dir();
    let names: Vec<String> = batches.iter().map(|b| b.file.name.clone()).collect();
    let first_archive = renames.len();
    for (b, to) in batches
        .iter()
        .zip(archive_targets(&archive_dir, &names, &stamp))
    {
        renames.push(Rename {
            from: b.file.path.clone(),
            to,
            kind: RenameKind::Archive,
        });
    }
    let done = crate::commit::apply(home, report.data_version.as_deref(), &renames)?;
    for (f, (r, ok)) in report
        .files
        .iter_mut()
        .zip(renames.iter().zip(done).skip(first_archive))
    {
        f.archived_to = ok.then(|| r.to.clone());
    }
    if !batches.is_empty() {
        info!(files = batches.len(), "staging files archived");
    }
    timer.lap("archive");
    report.timings_seconds = timer.finish();
    Ok(report)
}

/// Phase 1: staging files whose rows an interrupted run already committed are
/// archived (not ingested again); the others are pending.
fn recover_committed(
    home: &Home,
    files: Vec<StagingFile>,
    previous: Option<&TableMeta>,
    stamp: &str,
) -> Result<(Vec<FileReport>, Vec<StagingFile>)> {
    let mut recovered = Vec::new();
    let mut pending = Vec::new();
    for f in files {
        if already_committed(&f, previous)? {
            warn!(file = %f.name, "staging file was committed by an interrupted run; archiving it now");
            let archived_to = try_archive(home, &f, stamp);
            recovered.push(FileReport {
                name: f.name.clone(),
                format: f.format,
                rows: 0,
                valid: 0,
                rejected: 0,
                rejected_file: None,
                archived_to,
            });
        } else {
            pending.push(f);
        }
    }
    Ok((recovered, pending))
}

/// Phase 2: reads and validates the pending files in parallel. Any file that cannot
/// be ingested at all fails the refresh before anything is written.
fn read_pending(pending: &[StagingFile], limits: &IngestLimits) -> Result<Vec<StagingBatch>> {
    let results: Vec<Result<StagingBatch>> = pending
        .par_iter()
        .map(|f| read_staging_file_with(f, limits))
        .collect();
    let mut batches: Vec<StagingBatch> = Vec::with_capacity(results.len());
    let mut problems = Vec::new();
    for r in results {
        match r {
            Ok(b) => batches.push(b),
            Err(Error::BadStagingFile { file, reason }) => {
                problems.push(FileProblem { file, reason })
            }
            Err(e) => return Err(e),
        }
    }
    if !problems.is_empty() {
        return Err(Error::BadStagingFiles { problems });
    }
    let new_records: usize = batches.iter().map(|b| b.rows.len()).sum();
    let rejected_records: usize = batches.iter().map(|b| b.rejected.len()).sum();
    info!(
        files = batches.len(),
        new_records, rejected_records, "staging files read"
    );
    Ok(batches)
}

/// Phase 3: what kind of refresh runs, from the previous state and the new rows.
struct Plan {
    kind: RefreshKind,
    previous: Option<TableMeta>,
    previous_version: Option<String>,
    manifest: Option<DataManifest>,
    outputs_consistent: bool,
}

impl Plan {
    fn decide(
        home: &Home,
        config: &DataConfig,
        options: &RefreshOptions,
        previous: Option<&TableMeta>,
        batches: &[StagingBatch],
    ) -> Plan {
        let new_records: usize = batches.iter().map(|b| b.rows.len()).sum();
        let manifest = DataManifest::read(&home.data_version_file()).ok().flatten();
        let previous_version = previous.and_then(|m| m.data_version.clone());
        let outputs_consistent = previous_version.is_some()
            && manifest.as_ref().map(|m| &m.data_version) == previous_version.as_ref()
            && derived_outputs_exist(home);
        let threshold = config.refresh.incremental_max_new_rows;
        let kind = match (previous, batches.is_empty()) {
            (None, true) => RefreshKind::NoNewData,
            (Some(_), true) if options.force_full => RefreshKind::Full,
            (Some(_), true) if outputs_consistent => RefreshKind::NoNewData,
            (Some(_), true) => RefreshKind::Repair,
            (None, false) => RefreshKind::Full,
            (Some(_), false) if options.force_full || new_records > threshold => RefreshKind::Full,
            (Some(_), false) => RefreshKind::Incremental,
        };
        info!(
            ?kind,
            new_records,
            threshold,
            force_full = options.force_full,
            "refresh decided"
        );
        Plan {
            kind,
            previous: previous.cloned(),
            previous_version,
            manifest,
            outputs_consistent,
        }
    }

    /// The report before anything is written.
    fn report(
        &self,
        batches: &[StagingBatch],
        recovered_files: Vec<FileReport>,
        ignored_files: Vec<PathBuf>,
    ) -> RefreshReport {
        let m = self.manifest.as_ref();
        RefreshReport {
            kind: self.kind,
            new_records: batches.iter().map(|b| b.rows.len()).sum(),
            rejected_records: batches.iter().map(|b| b.rejected.len()).sum(),
            total_records: self.previous.as_ref().map_or(0, |m| m.rows),
            previous_records: self.previous.as_ref().map_or(0, |m| m.rows),
            merge: MergeStats::default(),
            data_version: self.previous_version.clone(),
            previous_data_version: self.previous_version.clone(),
            changed: false,
            outputs_written: false,
            users: m.map_or(0, |m| m.users),
            items: m.map_or(0, |m| m.items),
            train_interactions: m.map_or(0, |m| m.train_interactions),
            test_interactions: m.map_or(0, |m| m.test_interactions),
            mean_comment_quality: None,
            files: Vec::new(),
            recovered_files,
            ignored_files,
            timings_seconds: BTreeMap::new(),
        }
    }
}

/// Phase 4: rejected rows, a report staged for the commit (it appears together with
/// the data it belongs to).
fn report_rejected(
    home: &Home,
    batches: &[StagingBatch],
    stamp: &str,
) -> Result<(Vec<FileReport>, Vec<Rename>)> {
    let rejected_dir = home.staging_rejected_dir();
    let mut files = Vec::with_capacity(batches.len());
    let mut renames = Vec::new();
    for b in batches {
        let written = if b.rejected.is_empty() {
            None
        } else {
            home.ensure_dir(rejected_dir.clone())?;
            let to = rejected_dir.join(format!("{}.{stamp}.csv", b.file.name));
            let from = staged_path(&to);
            write_rejected_to(&from, &b.rejected)?;
            renames.push(Rename {
                from,
                to: to.clone(),
                kind: RenameKind::Output,
            });
            Some(to)
        };
        files.push(FileReport {
            name: b.file.name.clone(),
            format: b.file.format,
            rows: b.total_rows,
            valid: b.rows.len(),
            rejected: b.rejected.len(),
            rejected_file: written,
            archived_to: None,
        });
    }
    Ok((files, renames))
}

/// The five processed outputs, at their final or staged names.
struct OutputPaths {
    interactions: PathBuf,
    train_confidence: PathBuf,
    mappings: PathBuf,
    user_metadata: PathBuf,
    manifest: PathBuf,
}

impl OutputPaths {
    fn of(home: &Home) -> OutputPaths {
        OutputPaths {
            interactions: home.interactions(),
            train_confidence: home.train_confidence(),
            mappings: home.user_item_mappings(),
            user_metadata: home.user_metadata(),
            manifest: home.data_version_file(),
        }
    }

    /// Stages every output but the table (written by [`Derived::write`]).
    fn stage_derived(&mut self, renames: &mut Vec<Rename>) {
        for p in [
            &mut self.train_confidence,
            &mut self.mappings,
            &mut self.user_metadata,
            &mut self.manifest,
        ] {
            *p = stage(p, renames);
        }
    }
}

/// Returns the staged name of `path` and records its rename into place.
fn stage(path: &Path, renames: &mut Vec<Rename>) -> PathBuf {
    let from = staged_path(path);
    renames.push(Rename {
        from: from.clone(),
        to: path.to_path_buf(),
        kind: RenameKind::Output,
    });
    from
}

/// Phase 5: merges the new rows, writes `interactions.parquet` (only when the data
/// changed) and the derived outputs to their staged names, and checks them; returns
/// the renames that commit them (`data_version.json` last).
fn stage_outputs(
    home: &Home,
    config: &DataConfig,
    options: &RefreshOptions,
    plan: &Plan,
    batches: &mut [StagingBatch],
    report: &mut RefreshReport,
    timer: &mut Timer,
) -> Result<Vec<Rename>> {
    let kind = plan.kind;
    let table_path = home.interactions();
    let (existing, source) = match &plan.previous {
        Some(_) => {
            let (mut t, _, source) = read_interactions_source(&table_path, ReadOptions::default())?;
            if kind == RefreshKind::Full {
                t.rescore();
            }
            (t, Some(source))
        }
        None => (Interactions::default(), None),
    };
    timer.lap("load_existing");
    let incoming = concat_batches(batches);
    let (merged, stats) = merge(existing, incoming, kind == RefreshKind::Full);
    // Rows were only appended: the previous file's full row groups can be copied.
    let source = source.filter(|_| {
        kind == RefreshKind::Incremental && stats.replaced == 0 && stats.duplicates_in_existing == 0
    });
    report.merge = stats;
    let version = data_version(&merged);
    report.changed = plan.previous_version.as_deref() != Some(version.as_str());
    report.total_records = merged.len();
    report.mean_comment_quality = mean_quality(&merged.comment_quality);
    report.data_version = Some(version.clone());
    timer.lap("merge");

    let ingest: Vec<IngestedFile> = batches
        .iter()
        .map(|b| IngestedFile {
            name: b.file.name.clone(),
            size_bytes: b.file.size_bytes,
            content_hash: b.content_hash.clone(),
        })
        .collect();
    // Unchanged data is not rewritten: running twice on the same input changes nothing
    // (and re-ingesting identical rows after a crash is a no-op, so the footer's
    // record of staging files is only needed when the data changes).
    let must_write_table = report.changed;
    let must_write_outputs = report.changed || options.force_full || !plan.outputs_consistent;
    let mut paths = OutputPaths::of(home);
    let mut renames = Vec::new();
    if must_write_table {
        paths.interactions = stage(&paths.interactions, &mut renames);
    }
    if must_write_outputs {
        paths.stage_derived(&mut renames);
    }
    // Build the derived outputs while the table is written.
    let (write_result, derived) = rayon::join(
        || {
            if must_write_table {
                let meta = TableMeta {
                    data_version: Some(version.clone()),
                    last_ingest: ingest.clone(),
                    rows: merged.len(),
                };
                write_interactions_reusing(&paths.interactions, &merged, &meta, source.as_ref())
            } else {
                Ok(())
            }
        },
        || {
            must_write_outputs
                .then(|| Derived::build(&merged, &version, config.refresh.confidence_alpha))
        },
    );
    write_result?;
    if must_write_table {
        info!(rows = merged.len(), data_version = %version, "interactions written");
    }
    timer.lap("write_interactions");
    if let Some(d) = &derived {
        d.write(&paths, config, options.now)?;
        report.outputs_written = true;
        info!(
            users = d.training.split.n_users(),
            items = d.training.split.n_items(),
            "outputs written"
        );
    }
    timer.lap("write_outputs");

    let checked = validate_outputs(&paths, &version, merged.len())?;
    report.users = checked.users;
    report.items = checked.items;
    report.train_interactions = checked.train_interactions;
    report.test_interactions = checked.test_interactions;
    timer.lap("validate");
    Ok(renames)
}

/// The mean of the comment quality scores (`None` for no rows).
fn mean_quality(scores: &[f32]) -> Option<f64> {
    let sum: f64 = scores.iter().map(|&q| f64::from(q)).sum();
    (!scores.is_empty()).then(|| sum / scores.len() as f64)
}

/// The derived outputs, computed from the merged table.
struct Derived {
    training: TrainingData,
    matrix: sprs::CsMat<f32>,
    metadata: UserMetadata,
}

impl Derived {
    fn build(table: &Interactions, version: &str, alpha: f32) -> Derived {
        let training = TrainingData::from_interactions(table, version.to_owned());
        let (matrix, metadata) = rayon::join(
            || confidence_matrix(&training.split, &training.split.train, alpha),
            || UserMetadata::compute(table, &training.split.user_ids),
        );
        Derived {
            training,
            matrix,
            metadata,
        }
    }

    fn write(&self, paths: &OutputPaths, config: &DataConfig, now: DateTime<Utc>) -> Result<()> {
        let version = &self.training.data_version;
        let mappings: Mappings = self.training.mappings();
        let ((npz, meta), map) = rayon::join(
            || {
                rayon::join(
                    || {
                        write_csr_npz(
                            &paths.train_confidence,
                            &self.matrix,
                            config.refresh.npz_compression,
                        )
                    },
                    || self.metadata.write(&paths.user_metadata, version),
                )
            },
            || mappings.write(&paths.mappings),
        );
        npz?;
        meta?;
        map?;
        let split = &self.training.split;
        DataManifest {
            data_version: version.clone(),
            created_at: format_timestamp(now),
            interactions: self.training.interactions,
            users: split.n_users(),
            items: split.n_items(),
            train_interactions: split.train.len(),
            test_interactions: split.test.len(),
            confidence_alpha: config.refresh.confidence_alpha,
        }
        .write(&paths.manifest)
    }
}

/// Checks the outputs about to be committed (staged, or final when unchanged) against
/// what the refresh meant to write.
fn validate_outputs(paths: &OutputPaths, version: &str, rows: usize) -> Result<DataManifest> {
    let fail = |path: PathBuf, reason: String| Error::Validation { path, reason };
    let table = read_interactions_meta(&paths.interactions)?;
    if table.rows != rows || table.data_version.as_deref() != Some(version) {
        return Err(fail(
            paths.interactions.clone(),
            format!(
                "expected {rows} rows of {version}, found {} rows of {:?}",
                table.rows, table.data_version
            ),
        ));
    }
    let manifest = DataManifest::read(&paths.manifest)?
        .ok_or_else(|| fail(paths.manifest.clone(), "missing".to_owned()))?;
    if manifest.data_version != version || manifest.interactions != rows {
        return Err(fail(
            paths.manifest.clone(),
            format!(
                "names {} ({} rows), expected {version} ({rows} rows)",
                manifest.data_version, manifest.interactions
            ),
        ));
    }
    let matrix = read_csr_npz(&paths.train_confidence)?;
    if matrix.shape() != (manifest.users, manifest.items)
        || matrix.nnz() != manifest.train_interactions
    {
        return Err(fail(
            paths.train_confidence.clone(),
            format!(
                "shape {:?} with {} values, expected ({}, {}) with {}",
                matrix.shape(),
                matrix.nnz(),
                manifest.users,
                manifest.items,
                manifest.train_interactions
            ),
        ));
    }
    let mappings = Mappings::read(&paths.mappings)?;
    if mappings.user_ids.len() != manifest.users
        || mappings.item_ids.len() != manifest.items
        || mappings.data_version != version
    {
        return Err(fail(
            paths.mappings.clone(),
            format!(
                "{} users and {} items of {:?}, expected {} and {} of {version}",
                mappings.user_ids.len(),
                mappings.item_ids.len(),
                mappings.data_version,
                manifest.users,
                manifest.items
            ),
        ));
    }
    let (_, kv, meta_rows) = read_parquet_footer(&paths.user_metadata)?;
    if meta_rows != manifest.users
        || kv.get(crate::table::DATA_VERSION_KEY).map(String::as_str) != Some(version)
    {
        return Err(fail(
            paths.user_metadata.clone(),
            format!(
                "{meta_rows} users, expected {} of {version}",
                manifest.users
            ),
        ));
    }
    Ok(manifest)
}

fn derived_outputs_exist(home: &Home) -> bool {
    [
        home.train_confidence(),
        home.user_item_mappings(),
        home.user_metadata(),
    ]
    .iter()
    .all(|p| p.exists())
}

fn already_committed(f: &StagingFile, previous: Option<&TableMeta>) -> Result<bool> {
    let Some(meta) = previous else {
        return Ok(false);
    };
    let Some(record) = meta
        .last_ingest
        .iter()
        .find(|r| r.name == f.name && r.size_bytes == f.size_bytes)
    else {
        return Ok(false);
    };
    let bytes = std::fs::read(&f.path).map_err(|e| Error::io("cannot read", &f.path, e))?;
    Ok(content_hash(&bytes) == record.content_hash)
}

/// Moves the rows out of the batches (their counts stay), oldest file first.
fn concat_batches(batches: &mut [StagingBatch]) -> Interactions {
    let mut parts: Vec<Interactions> = batches
        .iter_mut()
        .map(|b| std::mem::take(&mut b.rows))
        .collect();
    match parts.len() {
        0 => Interactions::default(),
        1 => parts.pop().unwrap_or_default(),
        _ => crate::table::concat_all(parts, true),
    }
}

/// Archives a staging file after its rows are committed; a failure is logged and
/// reported (`archived_to: None`), never fatal: the rows are already safe, and the
/// next run recognises the file as committed and tries again.
fn try_archive(home: &Home, f: &StagingFile, stamp: &str) -> Option<PathBuf> {
    match archive(home, f, stamp) {
        Ok(p) => Some(p),
        Err(e) => {
            warn!(
                file = %f.name,
                error = %e,
                "cannot archive a committed staging file; its rows are safe and the next run retries"
            );
            None
        }
    }
}

/// Moves a processed staging file to the archive, never overwriting (names as
/// [`archive_targets`]).
fn archive(home: &Home, f: &StagingFile, stamp: &str) -> Result<PathBuf> {
    let dir = home.ensure_dir(home.staging_archive_dir())?;
    let target = archive_targets(&dir, std::slice::from_ref(&f.name), stamp)
        .pop()
        .unwrap_or_else(|| dir.join(&f.name));
    move_file(&f.path, &target)?;
    Ok(target)
}

/// Renames `from` to `to`; across filesystems (`EXDEV`, a `--staging-dir` on another
/// mount) copies to a temporary name beside `to`, fsyncs it, renames it into place,
/// fsyncs the folder, and only then removes `from`. A kill in between leaves the
/// source in place (and a hidden temporary file, or already a copy, in the archive);
/// the next run recognises the file as committed and archives it again, under a
/// stamped name if the copy is there: an identical extra copy, nothing lost.
pub(crate) fn move_file(from: &Path, to: &Path) -> Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => return recops_core::sync_parent(to).map_err(Error::from),
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            warn!(from = %from.display(), "staging folder on another filesystem: archiving by copy");
        }
        Err(e) => return Err(Error::io("cannot archive", from, e)),
    }
    copy_across(from, to)
}

fn copy_across(from: &Path, to: &Path) -> Result<()> {
    let tmp = recops_core::temp_path_for(to);
    let copy = || -> std::io::Result<()> {
        std::fs::copy(from, &tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, to)
    };
    if let Err(e) = copy() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("cannot archive (copy)", from, e));
    }
    recops_core::sync_parent(to)?;
    std::fs::remove_file(from).map_err(|e| Error::io("cannot remove archived", from, e))?;
    recops_core::sync_parent(from)?;
    Ok(())
}

/// Removes temporary files that a killed run left next to the processed outputs
/// (`.interactions.parquet.tmp.<pid>.<n>`, ...). Only called under the pipeline lock.
fn remove_orphan_temp_files(dir: &Path, home: &Home) {
    let outputs: Vec<String> = [
        home.interactions(),
        home.train_confidence(),
        home.user_item_mappings(),
        home.user_metadata(),
        home.data_version_file(),
    ]
    .iter()
    .filter_map(|p| {
        p.file_name()
            .map(|n| format!(".{}.tmp.", n.to_string_lossy()))
    })
    .collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if outputs.iter().any(|o| name.starts_with(o.as_str())) {
            match std::fs::remove_file(e.path()) {
                Ok(()) => {
                    warn!(file = %name, "removed a temporary file left by an interrupted refresh")
                }
                Err(err) => {
                    warn!(file = %name, error = %err, "cannot remove a leftover temporary file")
                }
            }
        }
    }
}

struct Timer {
    last: Instant,
    laps: BTreeMap<String, f64>,
}

impl Timer {
    fn new() -> Timer {
        Timer {
            last: Instant::now(),
            laps: BTreeMap::new(),
        }
    }

    fn lap(&mut self, name: &str) {
        let now = Instant::now();
        self.laps
            .insert(name.to_owned(), (now - self.last).as_secs_f64());
        self.last = now;
    }

    fn finish(mut self) -> BTreeMap<String, f64> {
        let total: f64 = self.laps.values().sum::<f64>() + self.last.elapsed().as_secs_f64();
        self.laps.insert("total".to_owned(), total);
        self.laps
    }
}
