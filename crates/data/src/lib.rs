//! recops-data: interactions, staging ingest, merge, comment quality, training matrices
//! and the deterministic temporal split of ARCHITECTURE.md.
//!
//! - [`Interactions`]: the interaction table of the fixed contracts (user_id i64,
//!   product_id i64, rating 1..=5, comment nullable UTF-8, cmt_date timestamp µs UTC,
//!   comment_quality f32), read and written as Parquet ([`read_interactions`],
//!   [`write_interactions`]; atomic, snappy, parallel); [`read_interaction_columns`]
//!   reads only user, product, rating and date, without copying, for analyses.
//! - Staging ingest: [`find_staging_files`] and [`read_staging_file`] for CSV and
//!   Parquet with per-row validation ([`RejectedRow`], [`write_rejected`]), bounded by
//!   [`IngestLimits`]: a file above `refresh.max_file_bytes` is refused before it is
//!   read; a row with a field above `refresh.max_field_bytes`, or dated before
//!   `refresh.min_cmt_date` or more than `refresh.future_tolerance_hours` after the
//!   refresh time, is rejected (quarantined in `data/staging/rejected/`) with the
//!   reason. Timestamp conversions are checked (an overflow rejects the row).
//! - [`merge`]: dedup on (user_id, product_id, cmt_date), newest wins.
//! - [`comment_quality`]: the spec's Vietnamese keyword score on NFC lowercase text.
//! - The training matrix: [`temporal_split`], [`confidence`] / [`confidence_matrix`],
//!   [`Mappings`] (`user_item_mappings.json`), [`UserMetadata`]
//!   (`user_metadata.parquet`), and [`write_csr_npz`] / [`read_csr_npz`]
//!   (`X_train_confidence.npz` in `scipy.sparse.save_npz` layout).
//! - [`data_version`]: a content hash of the processed interactions, in the table's
//!   footer and in `data_version.json` ([`DataManifest`]).
//! - [`refresh`]: the data steps of the data-refresh job, and
//!   [`TrainingData::load`] for the training job. All outputs of a refresh (processed
//!   files, rejected-rows reports, archive moves) change in one commit: a kill at any
//!   moment leaves the state before or after it. The commit is a journal of renames
//!   (`data/.commit_journal.json`) that [`lock_for_reading`] and the next refresh roll
//!   forward; readers of several files hold [`lock_for_reading`]'s guard while they
//!   read (see docs/operations-hardening.md).
//!
//! ```
//! use recops_data::{RawInteraction, temporal_split};
//!
//! // One user with 5 interactions: the last one (20 %) is held out.
//! let rows: Vec<RawInteraction> = (0..5)
//!     .map(|t| RawInteraction { user_id: 7, item_id: 100 + t, rating: 5.0, timestamp: t })
//!     .collect();
//! let split = temporal_split(&rows);
//! assert_eq!(split.train.len(), 4);
//! assert_eq!(split.test.len(), 1);
//! assert_eq!(split.item_ids[split.test[0].item as usize], 104);
//! ```
//!
//! A refresh on a home, then the training data:
//!
//! ```
//! use recops_core::Home;
//! use recops_data::{DataConfig, RefreshKind, RefreshOptions, TrainingData, refresh};
//!
//! let dir = tempfile::tempdir()?;
//! let home = Home::new(dir.path());
//! std::fs::create_dir_all(home.staging_dir())?;
//! std::fs::write(
//!     home.staging_dir().join("ratings.csv"),
//!     "user_id,product_id,rating,comment,cmt_date\n\
//!      1,10,5,Kem thấm nhanh,2025-01-15 10:30:00\n\
//!      1,11,9,out of range,2025-01-15\n",
//! )?;
//! let options = RefreshOptions { force_full: false, staging_dir: None, now: chrono::Utc::now() };
//! let report = refresh(&home, &DataConfig::default(), &options)?;
//! assert_eq!(report.kind, RefreshKind::Full);
//! assert_eq!((report.new_records, report.rejected_records), (1, 1));
//! let data = TrainingData::load(&home)?;
//! assert_eq!(data.split.user_ids, vec![1]);
//! assert_eq!(Some(data.data_version), report.data_version);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod commit;
mod config;
mod datetime;
mod error;
mod ingest;
mod matrix;
mod merge;
mod npz;
mod parquet_io;
mod quality;
mod refresh;
mod split;
mod table;
mod training;
mod version;

pub use commit::{DataReadGuard, lock_for_reading, recover_commit};
pub use config::{DEFAULT_DATA_CONFIG, DataConfig, RefreshSettings};
pub use datetime::{format_micros, parse_cmt_date};
pub use error::{Error, FileProblem, Result};
pub use ingest::{
    IngestLimits, RejectedRow, STAGING_COLUMNS, StagingBatch, StagingFile, StagingFormat,
    StagingScan, find_staging_files, read_staging_file, read_staging_file_with, write_rejected,
};
pub use matrix::{Mappings, UserMetadata, confidence, confidence_matrix, user_metadata_schema};
pub use merge::{MergeStats, dedup_last, merge};
pub use npz::{NpzCompression, read_csr_npz, write_csr_npz};
pub use quality::{NEGATIVE_KEYWORDS, POSITIVE_KEYWORDS, comment_quality, normalize_comment};
pub use refresh::{FileReport, RefreshKind, RefreshOptions, RefreshReport, refresh};
pub use split::{Entry, RawInteraction, Split, holdout_split, temporal_split};
pub use table::{
    DATA_VERSION_KEY, IngestedFile, InteractionColumns, Interactions, LAST_INGEST_KEY, ReadOptions,
    TableMeta, interactions_schema, read_interaction_columns, read_interactions,
    read_interactions_meta, write_interactions,
};
pub use training::TrainingData;
pub use version::{DATA_VERSION_PREFIX, DataManifest, content_hash, data_version};
