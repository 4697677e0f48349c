//! The interaction table of ARCHITECTURE's fixed contracts, in memory and as Parquet
//! (`data/processed/interactions.parquet`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float32Array, Int8Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_buffer::ScalarBuffer;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::parquet_io::{ParquetSource, read_parquet, read_parquet_footer, write_parquet_reusing};
use crate::split::RawInteraction;

/// Footer key holding the [data version](crate::data_version) of the table.
pub const DATA_VERSION_KEY: &str = "recops.data_version";
/// Footer key holding the staging files whose rows the last refresh committed (JSON).
pub const LAST_INGEST_KEY: &str = "recops.last_ingest";

const WHAT: &str = "interactions table";

/// The Arrow schema of `interactions.parquet`: user_id i64, product_id i64, rating i8
/// (1..=5), comment nullable UTF-8, cmt_date timestamp (microseconds, UTC),
/// comment_quality f32 in [0, 1].
pub fn interactions_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::Int64, false),
            Field::new("product_id", DataType::Int64, false),
            Field::new("rating", DataType::Int8, false),
            Field::new("comment", DataType::Utf8, true),
            Field::new(
                "cmt_date",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("comment_quality", DataType::Float32, false),
        ]))
    });
    Arc::clone(&SCHEMA)
}

/// Interactions in columns, in table order.
///
/// Row `i` is (`user_id[i]`, `product_id[i]`, `rating[i]`, comment `i`,
/// `cmt_date[i]`, `comment_quality[i]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Interactions {
    /// External user ids.
    pub user_id: Vec<i64>,
    /// External product ids.
    pub product_id: Vec<i64>,
    /// Ratings, 1..=5.
    pub rating: Vec<u8>,
    /// Comments (null when missing); `None` when the table was read without them
    /// ([`ReadOptions::comments`] false).
    pub comment: Option<StringArray>,
    /// Comment dates, microseconds since the Unix epoch (UTC).
    pub cmt_date: Vec<i64>,
    /// Comment quality scores in [0, 1] ([`comment_quality`](crate::comment_quality)).
    pub comment_quality: Vec<f32>,
}

impl Default for Interactions {
    fn default() -> Self {
        Interactions {
            user_id: Vec::new(),
            product_id: Vec::new(),
            rating: Vec::new(),
            comment: Some(StringArray::from(Vec::<Option<&str>>::new())),
            cmt_date: Vec::new(),
            comment_quality: Vec::new(),
        }
    }
}

/// What to read from `interactions.parquet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Read the comment column (the largest one). Without it, reading is several
    /// times faster and [`Interactions::comment`] is `None`.
    pub comments: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { comments: true }
    }
}

/// A staging file whose rows a refresh committed, recorded in the table's footer so a
/// run killed before archiving it can finish the job without ingesting it twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestedFile {
    /// File name in the staging folder.
    pub name: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Content hash of the file (`xxh3-128:<hex>`).
    pub content_hash: String,
}

/// The footer of `interactions.parquet`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableMeta {
    /// Content hash of the rows ([`data_version`](crate::data_version)); `None` for a
    /// table written by another tool.
    pub data_version: Option<String>,
    /// Staging files whose rows the write that produced this table committed.
    pub last_ingest: Vec<IngestedFile>,
    /// Rows in the file.
    pub rows: usize,
}

impl Interactions {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.user_id.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.user_id.is_empty()
    }

    /// The comment of row `i` (`None` when missing or not loaded).
    pub fn comment(&self, i: usize) -> Option<&str> {
        let c = self.comment.as_ref()?;
        if c.is_null(i) { None } else { Some(c.value(i)) }
    }

    /// The rows as [`RawInteraction`]s, in table order, for
    /// [`temporal_split`](crate::temporal_split).
    pub fn raw(&self) -> Vec<RawInteraction> {
        (0..self.len())
            .map(|i| RawInteraction {
                user_id: self.user_id[i],
                item_id: self.product_id[i],
                rating: f32::from(self.rating[i]),
                timestamp: self.cmt_date[i],
            })
            .collect()
    }

    /// The rows where `keep` is true, in order (`keep` is read up to the table's length).
    pub fn filter(&self, keep: &[bool]) -> Interactions {
        fn pick<T: Copy>(v: &[T], keep: &[bool]) -> Vec<T> {
            v.iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| *x)
                .collect()
        }
        let comment = self.comment.as_ref().map(|c| {
            let mask = BooleanArray::from(keep.to_vec());
            match arrow_select::filter::filter(c, &mask) {
                Ok(a) => a.as_string::<i32>().clone(),
                // Same lengths by construction; fall back to a row-by-row copy.
                Err(_) => keep
                    .iter()
                    .take(c.len())
                    .enumerate()
                    .filter(|(_, k)| **k)
                    .map(|(i, _)| (!c.is_null(i)).then(|| c.value(i)))
                    .collect(),
            }
        });
        Interactions {
            user_id: pick(&self.user_id, keep),
            product_id: pick(&self.product_id, keep),
            rating: pick(&self.rating, keep),
            comment,
            cmt_date: pick(&self.cmt_date, keep),
            comment_quality: pick(&self.comment_quality, keep),
        }
    }

    /// `self` followed by `other` (comments are kept only when both have them).
    pub fn concat(mut self, other: &Interactions) -> Interactions {
        self.user_id.extend_from_slice(&other.user_id);
        self.product_id.extend_from_slice(&other.product_id);
        self.rating.extend_from_slice(&other.rating);
        self.cmt_date.extend_from_slice(&other.cmt_date);
        self.comment_quality
            .extend_from_slice(&other.comment_quality);
        self.comment = match (&self.comment, &other.comment) {
            (Some(a), Some(b)) => {
                match arrow_select::concat::concat(&[a as &dyn Array, b as &dyn Array]) {
                    Ok(c) => Some(c.as_string::<i32>().clone()),
                    Err(_) => Some(a.iter().chain(b.iter()).collect::<StringArray>()),
                }
            }
            _ => None,
        };
        self
    }

    /// Recomputes every `comment_quality` from the comments (in parallel). Without
    /// comments loaded, nothing changes.
    pub fn rescore(&mut self) {
        if let Some(c) = &self.comment {
            self.comment_quality = (0..c.len())
                .into_par_iter()
                .map(|i| crate::quality::comment_quality((!c.is_null(i)).then(|| c.value(i))))
                .collect();
        }
    }

    /// The table as Arrow columns in [`interactions_schema`] order. Needs comments.
    pub fn to_columns(&self) -> Option<Vec<ArrayRef>> {
        let comment = self.comment.clone()?;
        Some(vec![
            Arc::new(Int64Array::from(self.user_id.clone())),
            Arc::new(Int64Array::from(self.product_id.clone())),
            Arc::new(Int8Array::from(
                self.rating.iter().map(|&r| r as i8).collect::<Vec<_>>(),
            )),
            Arc::new(comment),
            Arc::new(TimestampMicrosecondArray::from(self.cmt_date.clone()).with_timezone("UTC")),
            Arc::new(Float32Array::from(self.comment_quality.clone())),
        ])
    }

    /// The table as one Arrow record batch of [`interactions_schema`]. Needs comments.
    pub fn to_record_batch(&self) -> Option<RecordBatch> {
        RecordBatch::try_new(interactions_schema(), self.to_columns()?).ok()
    }

    /// Checks the invariants of the fixed contract: equal column lengths, ratings
    /// 1..=5, quality in [0, 1]. Returns the first problem found.
    pub fn check(&self) -> std::result::Result<(), String> {
        let n = self.len();
        let lens = [
            self.product_id.len(),
            self.rating.len(),
            self.cmt_date.len(),
            self.comment_quality.len(),
            self.comment.as_ref().map_or(n, |c| c.len()),
        ];
        if lens.iter().any(|&l| l != n) {
            return Err(format!(
                "columns have different lengths ({n} user ids, {lens:?})"
            ));
        }
        if let Some(i) = self.rating.iter().position(|r| !(1..=5).contains(r)) {
            return Err(format!("row {i}: rating {} outside 1..=5", self.rating[i]));
        }
        if let Some(i) = self
            .comment_quality
            .iter()
            .position(|q| !(0.0..=1.0).contains(q))
        {
            return Err(format!(
                "row {i}: comment_quality {} outside [0, 1]",
                self.comment_quality[i]
            ));
        }
        Ok(())
    }
}

/// Writes `table` to `path` (Parquet, snappy) atomically: a crash leaves the previous
/// file or the new one, never a torn one. The footer records `meta`'s data version and
/// ingested files.
pub fn write_interactions(path: &Path, table: &Interactions, meta: &TableMeta) -> Result<()> {
    write_interactions_reusing(path, table, meta, None)
}

/// [`write_interactions`] that copies the encoded leading row groups of `source` (the
/// previous file) when `table` starts with exactly its rows (see
/// [`write_parquet_reusing`]).
pub(crate) fn write_interactions_reusing(
    path: &Path,
    table: &Interactions,
    meta: &TableMeta,
    source: Option<&ParquetSource>,
) -> Result<()> {
    table
        .check()
        .map_err(|reason| Error::invalid(WHAT, path, reason))?;
    let columns = table
        .to_columns()
        .ok_or_else(|| Error::invalid(WHAT, path, "cannot write a table read without comments"))?;
    let mut kv = Vec::new();
    if let Some(v) = &meta.data_version {
        kv.push((DATA_VERSION_KEY.to_owned(), v.clone()));
    }
    let ingest = serde_json::to_string(&meta.last_ingest).unwrap_or_else(|_| "[]".to_owned());
    kv.push((LAST_INGEST_KEY.to_owned(), ingest));
    write_parquet_reusing(path, &interactions_schema(), &columns, &kv, source)
}

/// Reads only the footer of `interactions.parquet` (fast: no row data).
pub fn read_interactions_meta(path: &Path) -> Result<TableMeta> {
    if !path.exists() {
        return Err(Error::NoProcessedData {
            path: path.to_path_buf(),
        });
    }
    let (_, kv, rows) = read_parquet_footer(path)?;
    Ok(meta_from_kv(&kv, rows))
}

fn meta_from_kv(kv: &HashMap<String, String>, rows: usize) -> TableMeta {
    TableMeta {
        data_version: kv.get(DATA_VERSION_KEY).cloned(),
        last_ingest: kv
            .get(LAST_INGEST_KEY)
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default(),
        rows,
    }
}

/// Reads `interactions.parquet` (row groups in parallel).
///
/// Besides the file this crate writes, it accepts the same columns with wider or
/// narrower types, as pandas/pyarrow write them: integer ids of any width, an integer
/// or whole float rating, any timestamp unit with or without a time zone (a naive one
/// is read as UTC), `comment_quality` as f32 or f64 (recomputed when absent). Ratings
/// outside 1..=5 and nulls in required columns are errors naming the row.
pub fn read_interactions(path: &Path, options: ReadOptions) -> Result<(Interactions, TableMeta)> {
    read_interactions_source(path, options).map(|(t, m, _)| (t, m))
}

/// [`read_interactions`], also returning the file as read (for
/// [`write_interactions_reusing`]).
pub(crate) fn read_interactions_source(
    path: &Path,
    options: ReadOptions,
) -> Result<(Interactions, TableMeta, ParquetSource)> {
    if !path.exists() {
        return Err(Error::NoProcessedData {
            path: path.to_path_buf(),
        });
    }
    let content = read_parquet(path, &|name| options.comments || name != "comment")?;
    let required = ["user_id", "product_id", "rating", "cmt_date"];
    let wanted: Vec<&str> = required
        .iter()
        .chain(options.comments.then_some(&"comment"))
        .copied()
        .collect();
    check_columns(path, &content.schema, &wanted)?;
    let parts: Vec<Interactions> = content
        .batches
        .par_iter()
        .map(|b| batch_to_interactions(b, options.comments))
        .collect::<std::result::Result<_, String>>()
        .map_err(|reason| Error::invalid(WHAT, path, reason))?;
    let mut table = Interactions {
        comment: options
            .comments
            .then(|| StringArray::from(Vec::<Option<&str>>::new())),
        ..Interactions::default()
    };
    check_ratings(path, parts.iter().map(|p| &p.rating[..]))?;
    if parts.len() == 1 {
        table = parts.into_iter().next().unwrap_or(table);
    } else {
        table = concat_all(parts, options.comments);
    }
    Ok((
        table,
        meta_from_kv(&content.kv, content.rows),
        content.source,
    ))
}

/// The four columns of interactions that analyses such as drift detection read
/// (user, product, rating, date), as one chunk per Parquet row group.
///
/// Read by [`read_interaction_columns`], the columns share the decoded Arrow buffers:
/// no copy is made of the ids and dates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InteractionColumns {
    user_id: ScalarBuffer<i64>,
    product_id: ScalarBuffer<i64>,
    rating: ScalarBuffer<u8>,
    cmt_date: ScalarBuffer<i64>,
}

impl InteractionColumns {
    /// Columns from vectors (row `i` = element `i` of each).
    ///
    /// # Panics
    /// When the vectors differ in length.
    pub fn new(
        user_id: Vec<i64>,
        product_id: Vec<i64>,
        rating: Vec<u8>,
        cmt_date: Vec<i64>,
    ) -> Self {
        assert!(
            user_id.len() == product_id.len()
                && user_id.len() == rating.len()
                && user_id.len() == cmt_date.len(),
            "interaction columns of different lengths"
        );
        InteractionColumns {
            user_id: user_id.into(),
            product_id: product_id.into(),
            rating: rating.into(),
            cmt_date: cmt_date.into(),
        }
    }

    /// External user ids.
    pub fn user_id(&self) -> &[i64] {
        &self.user_id
    }

    /// External product ids.
    pub fn product_id(&self) -> &[i64] {
        &self.product_id
    }

    /// Ratings, 1..=5.
    pub fn rating(&self) -> &[u8] {
        &self.rating
    }

    /// Comment dates, microseconds since the Unix epoch (UTC).
    pub fn cmt_date(&self) -> &[i64] {
        &self.cmt_date
    }

    /// Rows in the chunk.
    pub fn len(&self) -> usize {
        self.cmt_date.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.cmt_date.is_empty()
    }
}

/// Reads the user, product, rating and date columns of `interactions.parquet`, one
/// [`InteractionColumns`] per row group (decoded in parallel, without copying), with
/// the table's footer. The other columns are not read. Accepts the column types of
/// [`read_interactions`] and refuses what it refuses (nulls, ratings outside 1..=5).
pub fn read_interaction_columns(path: &Path) -> Result<(Vec<InteractionColumns>, TableMeta)> {
    if !path.exists() {
        return Err(Error::NoProcessedData {
            path: path.to_path_buf(),
        });
    }
    const NEEDED: [&str; 4] = ["user_id", "product_id", "rating", "cmt_date"];
    let content = read_parquet(path, &|name| NEEDED.contains(&name))?;
    check_columns(path, &content.schema, &NEEDED)?;
    let parts: Vec<InteractionColumns> = content
        .batches
        .par_iter()
        .map(|b| {
            let col = |name: &str| {
                b.column_by_name(name)
                    .ok_or_else(|| format!("missing column {name}"))
            };
            Ok(InteractionColumns {
                user_id: int_buffer(col("user_id")?, "user_id")?,
                product_id: int_buffer(col("product_id")?, "product_id")?,
                rating: rating_column(col("rating")?)?.into(),
                cmt_date: timestamp_buffer(col("cmt_date")?)?,
            })
        })
        .collect::<std::result::Result<_, String>>()
        .map_err(|reason| Error::invalid(WHAT, path, reason))?;
    check_ratings(path, parts.iter().map(|p| &p.rating[..]))?;
    Ok((parts, meta_from_kv(&content.kv, content.rows)))
}

/// Refuses a table without the `wanted` columns, naming the missing ones.
fn check_columns(path: &Path, schema: &SchemaRef, wanted: &[&str]) -> Result<()> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|c| !names.contains(c))
        .copied()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(
        WHAT,
        path,
        format!(
            "missing column(s) {} (found: {})",
            missing.join(", "),
            names.join(", ")
        ),
    ))
}

/// Refuses ratings outside 1..=5, naming the first one's row (chunks in table order).
fn check_ratings<'a>(path: &Path, chunks: impl Iterator<Item = &'a [u8]>) -> Result<()> {
    let mut offset = 0usize;
    for ratings in chunks {
        if let Some(i) = ratings.iter().position(|r| !(1..=5).contains(r)) {
            return Err(Error::invalid(
                WHAT,
                path,
                format!("row {}: rating {} outside 1..=5", offset + i, ratings[i]),
            ));
        }
        offset += ratings.len();
    }
    Ok(())
}

/// An integer column as i64, sharing the Arrow buffer when it already is one.
fn int_buffer(a: &ArrayRef, name: &str) -> std::result::Result<ScalarBuffer<i64>, String> {
    match a.data_type() {
        DataType::Int64 => {
            no_nulls(a.as_ref(), name)?;
            Ok(a.as_primitive::<Int64Type>().values().clone())
        }
        _ => int_column(a, name).map(ScalarBuffer::from),
    }
}

/// A timestamp column as microseconds, sharing the Arrow buffer when it already is.
fn timestamp_buffer(a: &ArrayRef) -> std::result::Result<ScalarBuffer<i64>, String> {
    match a.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            no_nulls(a.as_ref(), "cmt_date")?;
            Ok(a.as_primitive::<TimestampMicrosecondType>()
                .values()
                .clone())
        }
        _ => timestamp_column(a).map(ScalarBuffer::from),
    }
}

pub(crate) fn concat_all(parts: Vec<Interactions>, comments: bool) -> Interactions {
    let n: usize = parts.iter().map(Interactions::len).sum();
    let mut t = Interactions {
        user_id: Vec::with_capacity(n),
        product_id: Vec::with_capacity(n),
        rating: Vec::with_capacity(n),
        comment: None,
        cmt_date: Vec::with_capacity(n),
        comment_quality: Vec::with_capacity(n),
    };
    let mut comment_parts: Vec<&dyn Array> = Vec::new();
    for p in &parts {
        t.user_id.extend_from_slice(&p.user_id);
        t.product_id.extend_from_slice(&p.product_id);
        t.rating.extend_from_slice(&p.rating);
        t.cmt_date.extend_from_slice(&p.cmt_date);
        t.comment_quality.extend_from_slice(&p.comment_quality);
        if let Some(c) = &p.comment {
            comment_parts.push(c);
        }
    }
    if comments {
        t.comment = arrow_select::concat::concat(&comment_parts)
            .ok()
            .map(|a| a.as_string::<i32>().clone());
    }
    t
}

/// Converts one record batch (any of the accepted column types) to a table.
fn batch_to_interactions(
    b: &RecordBatch,
    comments: bool,
) -> std::result::Result<Interactions, String> {
    let col = |name: &str| {
        b.column_by_name(name)
            .ok_or_else(|| format!("missing column {name}"))
    };
    let user_id = int_column(col("user_id")?, "user_id")?;
    let product_id = int_column(col("product_id")?, "product_id")?;
    let rating = rating_column(col("rating")?)?;
    let cmt_date = timestamp_column(col("cmt_date")?)?;
    let comment = if comments {
        Some(string_column(col("comment")?)?)
    } else {
        None
    };
    let comment_quality = match b.column_by_name("comment_quality") {
        Some(q) => float_column(q, "comment_quality")?,
        None => match &comment {
            Some(c) => (0..c.len())
                .map(|i| crate::quality::comment_quality((!c.is_null(i)).then(|| c.value(i))))
                .collect(),
            None => return Err("missing column comment_quality".to_owned()),
        },
    };
    Ok(Interactions {
        user_id,
        product_id,
        rating,
        comment,
        cmt_date,
        comment_quality,
    })
}

fn no_nulls(a: &dyn Array, name: &str) -> std::result::Result<(), String> {
    match a.nulls().and_then(|n| (0..a.len()).find(|&i| n.is_null(i))) {
        Some(i) => Err(format!("column {name} has a null at batch row {i}")),
        None => Ok(()),
    }
}

fn int_column(a: &ArrayRef, name: &str) -> std::result::Result<Vec<i64>, String> {
    no_nulls(a.as_ref(), name)?;
    Ok(match a.data_type() {
        DataType::Int64 => a.as_primitive::<Int64Type>().values().to_vec(),
        DataType::Int32 => a
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .map(|&v| i64::from(v))
            .collect(),
        DataType::Int16 => a
            .as_primitive::<Int16Type>()
            .values()
            .iter()
            .map(|&v| i64::from(v))
            .collect(),
        other => {
            return Err(format!(
                "column {name} has type {other}, expected an integer"
            ));
        }
    })
}

fn rating_column(a: &ArrayRef) -> std::result::Result<Vec<u8>, String> {
    no_nulls(a.as_ref(), "rating")?;
    let small = |v: i64| u8::try_from(v).unwrap_or(0);
    Ok(match a.data_type() {
        DataType::Int8 => a
            .as_primitive::<Int8Type>()
            .values()
            .iter()
            .map(|&v| small(i64::from(v)))
            .collect(),
        DataType::UInt8 => a.as_primitive::<UInt8Type>().values().to_vec(),
        DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            int_column(a, "rating")?.into_iter().map(small).collect()
        }
        DataType::Float32 | DataType::Float64 => float_column(a, "rating")?
            .into_iter()
            .map(|f| if f.fract() == 0.0 { small(f as i64) } else { 0 })
            .collect(),
        other => {
            return Err(format!(
                "column rating has type {other}, expected an integer"
            ));
        }
    })
}

fn float_column(a: &ArrayRef, name: &str) -> std::result::Result<Vec<f32>, String> {
    no_nulls(a.as_ref(), name)?;
    Ok(match a.data_type() {
        DataType::Float32 => a.as_primitive::<Float32Type>().values().to_vec(),
        DataType::Float64 => a
            .as_primitive::<Float64Type>()
            .values()
            .iter()
            .map(|&v| v as f32)
            .collect(),
        other => return Err(format!("column {name} has type {other}, expected a float")),
    })
}

/// `values * factor` (to microseconds), refusing a value that overflows instead of
/// wrapping it.
fn scale_checked(values: &[i64], factor: i64) -> std::result::Result<Vec<i64>, String> {
    values
        .iter()
        .map(|&v| {
            v.checked_mul(factor).ok_or_else(|| {
                format!("column cmt_date holds {v}, outside the representable range of timestamps")
            })
        })
        .collect()
}

fn timestamp_column(a: &ArrayRef) -> std::result::Result<Vec<i64>, String> {
    no_nulls(a.as_ref(), "cmt_date")?;
    Ok(match a.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => a
            .as_primitive::<TimestampMicrosecondType>()
            .values()
            .to_vec(),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => a
            .as_primitive::<TimestampNanosecondType>()
            .values()
            .iter()
            .map(|&v| v.div_euclid(1000))
            .collect(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            scale_checked(a.as_primitive::<TimestampMillisecondType>().values(), 1000)?
        }
        DataType::Timestamp(TimeUnit::Second, _) => {
            scale_checked(a.as_primitive::<TimestampSecondType>().values(), 1_000_000)?
        }
        other => {
            return Err(format!(
                "column cmt_date has type {other}, expected a timestamp"
            ));
        }
    })
}

fn string_column(a: &ArrayRef) -> std::result::Result<StringArray, String> {
    match a.data_type() {
        DataType::Utf8 => Ok(a.as_string::<i32>().clone()),
        DataType::LargeUtf8 => Ok(a.as_string::<i64>().iter().collect()),
        DataType::Utf8View => Ok(a.as_string_view().iter().collect()),
        DataType::Null => Ok(StringArray::new_null(a.len())),
        other => Err(format!("column comment has type {other}, expected text")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Interactions {
        Interactions {
            user_id: vec![1, 2, 1],
            product_id: vec![10, 10, 11],
            rating: vec![5, 3, 4],
            comment: Some(StringArray::from(vec![Some("thơm, tốt"), None, Some("")])),
            cmt_date: vec![1_000_000, 2_000_000, -5],
            comment_quality: vec![0.7, 0.0, 0.0],
        }
    }

    #[test]
    fn parquet_round_trip_keeps_rows_types_and_footer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("processed/interactions.parquet");
        let t = sample();
        let meta = TableMeta {
            data_version: Some("xxh3-128:abc".into()),
            last_ingest: vec![IngestedFile {
                name: "a.csv".into(),
                size_bytes: 12,
                content_hash: "xxh3-128:00".into(),
            }],
            rows: 3,
        };
        write_interactions(&path, &t, &meta).unwrap();
        let (back, m) = read_interactions(&path, ReadOptions::default()).unwrap();
        assert_eq!(back, t);
        assert_eq!(m, meta);
        assert_eq!(read_interactions_meta(&path).unwrap(), meta);
        let (light, _) = read_interactions(&path, ReadOptions { comments: false }).unwrap();
        assert_eq!(light.comment, None);
        assert_eq!(light.user_id, t.user_id);
        // The schema on disk is the fixed contract (timestamp in microseconds, UTC).
        let (schema, _, rows) = read_parquet_footer(&path).unwrap();
        assert_eq!(rows, 3);
        assert_eq!(schema.fields(), interactions_schema().fields());
        // No temporary file is left next to it.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn many_row_groups_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.parquet");
        let n = crate::parquet_io::ROW_GROUP_ROWS * 2 + 17;
        let t = Interactions {
            user_id: (0..n as i64).collect(),
            product_id: (0..n as i64).map(|i| i % 97).collect(),
            rating: (0..n).map(|i| (i % 5) as u8 + 1).collect(),
            comment: Some(
                (0..n)
                    .map(|i| (i % 3 != 0).then(|| format!("c{i}")))
                    .collect(),
            ),
            cmt_date: (0..n as i64).map(|i| i * 7).collect(),
            comment_quality: vec![0.5; n],
        };
        write_interactions(&path, &t, &TableMeta::default()).unwrap();
        let (back, meta) = read_interactions(&path, ReadOptions::default()).unwrap();
        assert_eq!(meta.rows, n);
        assert_eq!(back, t);
        // The four analysis columns, one chunk per row group, in order.
        let (parts, meta) = read_interaction_columns(&path).unwrap();
        assert_eq!(meta.rows, n);
        assert_eq!(parts.len(), 3);
        let joined = |f: fn(&InteractionColumns) -> &[i64]| -> Vec<i64> {
            parts.iter().flat_map(|p| f(p).iter().copied()).collect()
        };
        assert_eq!(joined(InteractionColumns::user_id), t.user_id);
        assert_eq!(joined(InteractionColumns::product_id), t.product_id);
        assert_eq!(joined(InteractionColumns::cmt_date), t.cmt_date);
        let ratings: Vec<u8> = parts.iter().flat_map(|p| p.rating().to_vec()).collect();
        assert_eq!(ratings, t.rating);
    }

    #[test]
    fn analysis_columns_accept_other_types_and_refuse_bad_rows() {
        use crate::parquet_io::write_parquet_atomic;
        use arrow_array::{Int32Array, TimestampNanosecondArray};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.parquet");
        let err = read_interaction_columns(&path).unwrap_err();
        assert!(matches!(err, Error::NoProcessedData { .. }), "{err}");
        // As pandas writes it: int32 ids, nanosecond naive timestamps, int64 ratings.
        let schema = Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::Int32, false),
            Field::new("product_id", DataType::Int32, false),
            Field::new("rating", DataType::Int64, false),
            Field::new(
                "cmt_date",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
        ]));
        let columns = |rating: i64| -> Vec<ArrayRef> {
            vec![
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(Int32Array::from(vec![10, 11])),
                Arc::new(Int64Array::from(vec![5, rating])),
                Arc::new(TimestampNanosecondArray::from(vec![3_000, 4_000])),
            ]
        };
        write_parquet_atomic(&path, &schema, &columns(2), &[]).unwrap();
        let (parts, _) = read_interaction_columns(&path).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].user_id(), &[1, 2]);
        assert_eq!(parts[0].product_id(), &[10, 11]);
        assert_eq!(parts[0].rating(), &[5, 2]);
        assert_eq!(parts[0].cmt_date(), &[3, 4]);
        write_parquet_atomic(&path, &schema, &columns(0), &[]).unwrap();
        let err = read_interaction_columns(&path).unwrap_err().to_string();
        assert!(
            err.contains("row 1: rating 0 outside 1..=5") && err.contains("i.parquet"),
            "{err}"
        );
        let narrow = Arc::new(Schema::new(schema.fields()[..3].to_vec()));
        write_parquet_atomic(&path, &narrow, &columns(2)[..3], &[]).unwrap();
        let err = read_interaction_columns(&path).unwrap_err().to_string();
        assert!(err.contains("missing column(s) cmt_date"), "{err}");
    }

    #[test]
    fn appending_reuses_full_row_groups_and_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.parquet");
        let rg = crate::parquet_io::ROW_GROUP_ROWS;
        let make = |n: usize| Interactions {
            user_id: (0..n as i64).collect(),
            product_id: (0..n as i64).map(|i| i % 31).collect(),
            rating: (0..n).map(|i| (i % 5) as u8 + 1).collect(),
            comment: Some(
                (0..n)
                    .map(|i| (i % 4 != 0).then(|| format!("bình luận {i}")))
                    .collect(),
            ),
            cmt_date: (0..n as i64).map(|i| i * 1_000).collect(),
            comment_quality: (0..n).map(|i| (i % 11) as f32 / 10.0).collect(),
        };
        let first = make(2 * rg + 500);
        write_interactions(&path, &first, &TableMeta::default()).unwrap();
        let (back, _, source) = read_interactions_source(&path, ReadOptions::default()).unwrap();
        assert_eq!(back, first);
        assert_eq!(source.metadata.num_row_groups(), 3);
        // The same rows plus more: two full groups copied, the rest encoded.
        let second = make(2 * rg + 900);
        let meta = TableMeta {
            data_version: Some("v2".into()),
            ..TableMeta::default()
        };
        write_interactions_reusing(&path, &second, &meta, Some(&source)).unwrap();
        let (back, m, src2) = read_interactions_source(&path, ReadOptions::default()).unwrap();
        assert_eq!(back, second);
        assert_eq!(m.data_version.as_deref(), Some("v2"));
        let sizes: Vec<i64> = src2
            .metadata
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(sizes, vec![rg as i64, rg as i64, 900]);
        // The same table as encoding everything afresh.
        let fresh = dir.path().join("fresh.parquet");
        write_interactions(&fresh, &second, &meta).unwrap();
        assert_eq!(
            read_interactions(&fresh, ReadOptions::default()).unwrap().0,
            back
        );
    }

    #[test]
    fn invalid_tables_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.parquet");
        let mut t = sample();
        t.rating[1] = 9;
        let err = write_interactions(&path, &t, &TableMeta::default()).unwrap_err();
        assert!(err.to_string().contains("rating 9 outside 1..=5"), "{err}");
        assert!(!path.exists());
        let err = read_interactions(&path, ReadOptions::default()).unwrap_err();
        assert!(matches!(err, Error::NoProcessedData { .. }), "{err}");
        std::fs::write(&path, b"not parquet").unwrap();
        let err = read_interactions(&path, ReadOptions::default()).unwrap_err();
        assert!(err.to_string().contains("i.parquet"), "{err}");
    }

    #[test]
    fn filter_and_concat() {
        let t = sample();
        let f = t.filter(&[true, false, true]);
        assert_eq!(f.user_id, vec![1, 1]);
        assert_eq!(f.comment(0), Some("thơm, tốt"));
        assert_eq!(f.comment(1), Some(""));
        let c = f.clone().concat(&t);
        assert_eq!(c.len(), 5);
        assert_eq!(c.comment(3), None);
        assert_eq!(c.product_id, vec![10, 11, 10, 10, 11]);
    }

    #[test]
    fn second_and_milli_timestamps_are_scaled_with_overflow_checks() {
        assert_eq!(scale_checked(&[1, -2], 1000).unwrap(), vec![1000, -2000]);
        let err = scale_checked(&[i64::MAX / 10], 1_000_000).unwrap_err();
        assert!(err.contains("outside the representable range"), "{err}");
    }
}
