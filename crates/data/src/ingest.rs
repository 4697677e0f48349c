//! Staging ingest: CSV and Parquet files with the spec's columns, validated row by row.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use serde::Serialize;

use crate::datetime::parse_cmt_date;
use crate::error::{Error, Result};
use crate::quality::comment_quality;
use crate::table::{Interactions, concat_all};
use crate::version::content_hash;

/// The columns a staging file must have (any order; other columns are ignored).
pub const STAGING_COLUMNS: [&str; 5] = ["user_id", "product_id", "rating", "comment", "cmt_date"];

const USER: usize = 0;
const PRODUCT: usize = 1;
const RATING: usize = 2;
const COMMENT: usize = 3;
const DATE: usize = 4;

/// The format of a staging file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StagingFormat {
    /// `.csv`: UTF-8, comma-separated, a header line, RFC 4180 quoting.
    Csv,
    /// `.parquet`.
    Parquet,
}

/// A file found in the staging folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagingFile {
    /// Full path.
    pub path: PathBuf,
    /// File name.
    pub name: String,
    /// CSV or Parquet.
    pub format: StagingFormat,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Last modification time (the order in which files are merged: newest wins).
    pub modified: SystemTime,
}

/// What [`find_staging_files`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StagingScan {
    /// CSV and Parquet files, oldest first (by modification time, then name).
    pub files: Vec<StagingFile>,
    /// Other entries that were skipped: hidden files (`.name`, such as files still
    /// being uploaded under a temporary name) and other extensions. Folders
    /// (`archive/`, `rejected/`) are not listed.
    pub ignored: Vec<PathBuf>,
}

/// Lists the staging files of `dir`: `*.csv` and `*.parquet` (any case), oldest first.
/// A missing folder has no files.
pub fn find_staging_files(dir: &Path) -> Result<StagingScan> {
    let mut scan = StagingScan::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(scan),
        Err(e) => return Err(Error::io("cannot list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("cannot list", dir, e))?;
        let path = entry.path();
        let meta = entry
            .metadata()
            .map_err(|e| Error::io("cannot stat", &path, e))?;
        if meta.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let format = match ext.as_deref() {
            _ if name.starts_with('.') => None,
            Some("csv") => Some(StagingFormat::Csv),
            Some("parquet") => Some(StagingFormat::Parquet),
            _ => None,
        };
        match format {
            Some(format) if meta.is_file() => scan.files.push(StagingFile {
                path,
                name,
                format,
                size_bytes: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            }),
            _ => scan.ignored.push(path),
        }
    }
    scan.files
        .sort_by(|a, b| (a.modified, &a.name).cmp(&(b.modified, &b.name)));
    scan.ignored.sort();
    Ok(scan)
}

/// A row that failed validation, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedRow {
    /// 1-based data row number in the file (the header is not a row).
    pub row: u64,
    /// 1-based line number where the row starts (CSV only).
    pub line: Option<u64>,
    /// Every problem of the row, `; `-separated.
    pub reason: String,
    /// The raw values of user_id, product_id, rating, comment, cmt_date (`None` when
    /// the field is absent).
    pub values: [Option<String>; 5],
}

/// The content of one staging file after validation.
#[derive(Debug, Clone)]
pub struct StagingBatch {
    /// The file.
    pub file: StagingFile,
    /// Content hash of the file's bytes (`xxh3-128:<hex>`).
    pub content_hash: String,
    /// Data rows in the file.
    pub total_rows: usize,
    /// The valid rows, in file order, with their comment quality scored.
    pub rows: Interactions,
    /// The rows that failed validation, in file order.
    pub rejected: Vec<RejectedRow>,
}

/// Bounds a staging file must respect ([`read_staging_file_with`]); from
/// `config/data_config.yaml` via
/// [`RefreshSettings::ingest_limits`](crate::RefreshSettings::ingest_limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestLimits {
    /// A larger file (on disk, or decoded for Parquet) is refused whole, before it is
    /// read into memory (`refresh.max_file_bytes`).
    pub max_file_bytes: u64,
    /// A row with a larger field is rejected (`refresh.max_field_bytes`).
    pub max_field_bytes: usize,
    /// Rows dated before this (µs since the epoch) are rejected
    /// (`refresh.min_cmt_date`).
    pub min_date_micros: i64,
    /// Rows dated after this (µs) are rejected: the refresh time plus
    /// `refresh.future_tolerance_hours`.
    pub max_date_micros: i64,
}

impl Default for IngestLimits {
    /// The size caps of the shipped config, no date bounds.
    fn default() -> Self {
        IngestLimits {
            max_file_bytes: 512 << 20,
            max_field_bytes: 64 << 10,
            min_date_micros: i64::MIN,
            max_date_micros: i64::MAX,
        }
    }
}

impl IngestLimits {
    /// Why the date `micros` is out of bounds, if it is.
    fn date_problem(&self, micros: i64) -> Option<String> {
        if micros < self.min_date_micros {
            Some(format!(
                "cmt_date {} is before {} (refresh.min_cmt_date)",
                crate::datetime::format_micros(micros),
                crate::datetime::format_micros(self.min_date_micros)
            ))
        } else if micros > self.max_date_micros {
            Some(format!(
                "cmt_date {} is after {} (the refresh time + refresh.future_tolerance_hours)",
                crate::datetime::format_micros(micros),
                crate::datetime::format_micros(self.max_date_micros)
            ))
        } else {
            None
        }
    }

    fn field_problem(&self, name: &str, len: usize) -> Option<String> {
        (len > self.max_field_bytes).then(|| {
            format!(
                "{name} is {len} bytes, above refresh.max_field_bytes ({})",
                self.max_field_bytes
            )
        })
    }

    /// A value as kept in the rejected-rows report: oversized values are cut.
    fn shown(&self, b: &[u8]) -> String {
        if b.len() <= self.max_field_bytes {
            return String::from_utf8_lossy(b).into_owned();
        }
        let head = String::from_utf8_lossy(&b[..b.len().min(256)]).into_owned();
        format!("{head}... ({} bytes)", b.len())
    }
}

/// Reads and validates one staging file with the default [`IngestLimits`].
pub fn read_staging_file(file: &StagingFile) -> Result<StagingBatch> {
    read_staging_file_with(file, &IngestLimits::default())
}

/// Reads and validates one staging file.
///
/// Per row: a missing or unparsable user_id/product_id (an integer, `123.0` accepted),
/// a rating that is not a whole number in 1..=5, a cmt_date that is not an ISO date or
/// datetime ([`parse_cmt_date`](crate::parse_cmt_date)), a wrong number of fields or
/// invalid UTF-8 reject the row with the reason. An empty comment is a missing one.
///
/// The whole file is refused ([`Error::BadStagingFile`]) when it cannot be read, is
/// empty, lacks a required column or repeats one, or is not valid CSV/Parquet, or is
/// larger than `limits.max_file_bytes` (checked before reading it into memory).
/// Rows with a field above `limits.max_field_bytes` or a date outside
/// `limits.min_date_micros..=limits.max_date_micros` are rejected with the reason.
pub fn read_staging_file_with(file: &StagingFile, limits: &IngestLimits) -> Result<StagingBatch> {
    let bad = |reason: String| Error::BadStagingFile {
        file: file.path.clone(),
        reason,
    };
    let too_big = |size: u64| {
        bad(format!(
            "the file is {size} bytes, above refresh.max_file_bytes ({})",
            limits.max_file_bytes
        ))
    };
    if file.size_bytes > limits.max_file_bytes {
        return Err(too_big(file.size_bytes));
    }
    let bytes = read_capped(&file.path, limits.max_file_bytes)
        .map_err(|e| bad(format!("cannot read: {e}")))?
        .ok_or_else(|| too_big(limits.max_file_bytes.saturating_add(1)))?;
    let hash = content_hash(&bytes);
    let (rows, rejected, total_rows) = match file.format {
        StagingFormat::Csv => read_csv(&bytes, CSV_CHUNK_BYTES, limits).map_err(bad)?,
        StagingFormat::Parquet => read_parquet_staging(bytes, limits).map_err(bad)?,
    };
    Ok(StagingBatch {
        file: file.clone(),
        content_hash: hash,
        total_rows,
        rows,
        rejected,
    })
}

/// Reads at most `max` bytes of `path`; `None` when the file is larger (it grew after
/// it was listed).
fn read_capped(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    f.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

/// The valid rows of a file: built chunk by chunk.
struct Part {
    rows: Interactions,
    comments: StringBuilder,
    rejected: Vec<RejectedRow>,
    records: u64,
}

impl Part {
    fn new(capacity: usize) -> Part {
        Part {
            rows: Interactions {
                user_id: Vec::with_capacity(capacity),
                product_id: Vec::with_capacity(capacity),
                rating: Vec::with_capacity(capacity),
                comment: None,
                cmt_date: Vec::with_capacity(capacity),
                comment_quality: Vec::with_capacity(capacity),
            },
            comments: StringBuilder::with_capacity(capacity, capacity * 48),
            rejected: Vec::new(),
            records: 0,
        }
    }

    fn push(&mut self, user: i64, product: i64, rating: u8, comment: Option<&str>, date: i64) {
        self.rows.user_id.push(user);
        self.rows.product_id.push(product);
        self.rows.rating.push(rating);
        self.rows.cmt_date.push(date);
        self.rows.comment_quality.push(comment_quality(comment));
        self.comments.append_option(comment);
    }

    fn finish(mut self) -> Part {
        self.rows.comment = Some(self.comments.finish());
        self
    }
}

fn join_parts(parts: Vec<Part>) -> (Interactions, Vec<RejectedRow>, usize) {
    let mut offset = 0u64;
    let mut rejected = Vec::new();
    let mut tables = Vec::with_capacity(parts.len());
    for p in parts {
        for mut r in p.rejected {
            r.row += offset;
            rejected.push(r);
        }
        offset += p.records;
        tables.push(p.rows);
    }
    let rows = if tables.len() == 1 {
        tables.pop().unwrap_or_default()
    } else {
        concat_all(tables, true)
    };
    (rows, rejected, offset as usize)
}

// ---- CSV ----------------------------------------------------------------------------

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// Target size of a CSV chunk parsed by one task.
const CSV_CHUNK_BYTES: usize = 2 << 20;

fn read_csv(
    bytes: &[u8],
    chunk_bytes: usize,
    limits: &IngestLimits,
) -> std::result::Result<(Interactions, Vec<RejectedRow>, usize), String> {
    let data = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut header = csv::ByteRecord::new();
    match rdr.read_byte_record(&mut header) {
        Ok(true) => {}
        Ok(false) => {
            return Err(format!(
                "empty file: expected a header line with {}",
                STAGING_COLUMNS.join(", ")
            ));
        }
        Err(e) => return Err(format!("not valid CSV: {e}")),
    }
    let names: Vec<String> = header
        .iter()
        .map(|f| String::from_utf8_lossy(f).trim().to_owned())
        .collect();
    let columns = column_positions(&names)?;
    let body_start = usize::try_from(rdr.position().byte()).unwrap_or(data.len());
    let first_line = rdr.position().line();
    let body = &data[body_start.min(data.len())..];

    let bounds = chunk_bounds(body, chunk_bytes);
    // 1-based line of each chunk's first byte.
    let newlines: Vec<u64> = bounds
        .par_iter()
        .map(|&(a, b)| memchr::memchr_iter(b'\n', &body[a..b]).count() as u64)
        .collect();
    let mut starts = Vec::with_capacity(bounds.len());
    let mut line = first_line;
    for n in &newlines {
        starts.push(line);
        line += n;
    }
    let parts: Vec<Part> = bounds
        .par_iter()
        .zip(starts.par_iter())
        .map(|(&(a, b), &start_line)| {
            parse_csv_chunk(&body[a..b], start_line, &columns, &names, limits)
        })
        .collect::<std::result::Result<_, String>>()?;
    Ok(join_parts(parts))
}

/// Positions of the required columns in the header; errors name what is missing.
fn column_positions(names: &[String]) -> std::result::Result<[usize; 5], String> {
    let mut pos = [usize::MAX; 5];
    for (i, name) in names.iter().enumerate() {
        if let Some(c) = STAGING_COLUMNS.iter().position(|c| c == name) {
            if pos[c] != usize::MAX {
                return Err(format!("column {name} appears twice in the header"));
            }
            pos[c] = i;
        }
    }
    let missing: Vec<&str> = STAGING_COLUMNS
        .iter()
        .zip(pos)
        .filter(|(_, p)| *p == usize::MAX)
        .map(|(c, _)| *c)
        .collect();
    if missing.is_empty() {
        Ok(pos)
    } else {
        Err(format!(
            "missing required column(s) {} (found: {}; expected {})",
            missing.join(", "),
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            },
            STAGING_COLUMNS.join(", ")
        ))
    }
}

/// Splits `body` into ranges of about `target` bytes that end on record boundaries: a
/// newline outside quotes, with quotes meaningful only at the start of a field
/// (the rules of the `csv` crate, so a chunk always starts a record).
fn chunk_bounds(body: &[u8], target: usize) -> Vec<(usize, usize)> {
    let mut bounds = Vec::new();
    let mut start = 0usize;
    let mut i = 0usize;
    let mut at_field_start = true;
    let n = body.len();
    while i < n {
        if at_field_start && body[i] == b'"' {
            // Quoted field: skip to the closing quote ("" is an escaped quote).
            let mut j = i + 1;
            loop {
                match memchr::memchr(b'"', &body[j..]) {
                    Some(k) if body.get(j + k + 1) == Some(&b'"') => j += k + 2,
                    Some(k) => {
                        j += k + 1;
                        break;
                    }
                    None => {
                        j = n;
                        break;
                    }
                }
            }
            i = j;
            at_field_start = false;
            continue;
        }
        match memchr::memchr2(b',', b'\n', &body[i..]) {
            Some(k) if body[i + k] == b',' => {
                i += k + 1;
                at_field_start = true;
            }
            Some(k) => {
                i += k + 1;
                at_field_start = true;
                if i - start >= target && i < n {
                    bounds.push((start, i));
                    start = i;
                }
            }
            None => i = n,
        }
    }
    if start < n || bounds.is_empty() {
        bounds.push((start, n));
    }
    bounds
}

fn parse_csv_chunk(
    chunk: &[u8],
    start_line: u64,
    columns: &[usize; 5],
    names: &[String],
    limits: &IngestLimits,
) -> std::result::Result<Part, String> {
    let n_fields = names.len();
    let mut part = Part::new(chunk.len() / 64 + 16);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(chunk);
    let mut rec = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(format!("not valid CSV near line {}: {e}", start_line)),
        }
        part.records += 1;
        let line = start_line + rec.position().map_or(1, |p| p.line()) - 1;
        let field = |c: usize| rec.get(columns[c]);
        let mut problems: Vec<String> = Vec::new();
        if rec.len() != n_fields {
            problems.push(format!("expected {n_fields} fields, found {}", rec.len()));
        }
        for (i, f) in rec.iter().enumerate() {
            let name = names.get(i).map_or("an extra field", String::as_str);
            problems.extend(limits.field_problem(name, f.len()));
        }
        // Fast paths on the bytes for the usual well-formed values; anything else
        // goes through the full checks, which also say what is wrong.
        let user = field(USER)
            .and_then(ascii_i64)
            .or_else(|| check_id(field(USER), "user_id", &mut problems));
        let product = field(PRODUCT)
            .and_then(ascii_i64)
            .or_else(|| check_id(field(PRODUCT), "product_id", &mut problems));
        let rating = match field(RATING) {
            Some([d @ b'1'..=b'5']) => Some(d - b'0'),
            raw => check_rating(raw.map(Text::Bytes), &mut problems),
        };
        let date = field(DATE)
            .and_then(crate::datetime::parse_cmt_date_bytes)
            .or_else(|| check_date(field(DATE).map(Text::Bytes), &mut problems));
        if let Some(d) = date {
            problems.extend(limits.date_problem(d));
        }
        let comment = match field(COMMENT).map(simdutf8::basic::from_utf8) {
            Some(Ok("")) | None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(_)) => {
                problems.push("comment is not valid UTF-8".to_owned());
                None
            }
        };
        match (user, product, rating, date) {
            (Some(u), Some(p), Some(r), Some(d)) if problems.is_empty() => {
                part.push(u, p, r, comment, d);
            }
            _ => part.rejected.push(RejectedRow {
                row: part.records,
                line: Some(line),
                reason: problems.join("; "),
                values: std::array::from_fn(|c| field(c).map(|b| limits.shown(b))),
            }),
        }
    }
    Ok(part.finish())
}

/// A raw cell: CSV bytes or text from Parquet.
enum Text<'a> {
    Bytes(&'a [u8]),
    Str(&'a str),
}

impl<'a> Text<'a> {
    fn as_str(&self) -> Option<&'a str> {
        match *self {
            Text::Bytes(b) => std::str::from_utf8(b).ok(),
            Text::Str(s) => Some(s),
        }
    }
}

/// A plain decimal integer (optional sign, ASCII digits, no spaces) without overflow.
fn ascii_i64(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(if neg { -v } else { v })
}

fn check_id(raw: Option<&[u8]>, name: &str, problems: &mut Vec<String>) -> Option<i64> {
    let Some(raw) = raw else {
        return None; // the field count problem already says it
    };
    let Ok(text) = std::str::from_utf8(raw) else {
        problems.push(format!("{name} is not valid UTF-8"));
        return None;
    };
    parse_id_text(text, name, problems)
}

fn parse_id_text(text: &str, name: &str, problems: &mut Vec<String>) -> Option<i64> {
    let t = text.trim();
    if t.is_empty() {
        problems.push(format!("empty {name}"));
        return None;
    }
    if let Ok(v) = t.parse::<i64>() {
        return Some(v);
    }
    match t.parse::<f64>() {
        Ok(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
        _ => {
            problems.push(format!("invalid {name} {t:?}: expected an integer"));
            None
        }
    }
}

fn check_rating(raw: Option<Text<'_>>, problems: &mut Vec<String>) -> Option<u8> {
    let raw = raw?;
    let Some(text) = raw.as_str() else {
        problems.push("rating is not valid UTF-8".to_owned());
        return None;
    };
    let t = text.trim();
    if t.is_empty() {
        problems.push("missing rating".to_owned());
        return None;
    }
    let value = match t.parse::<i64>() {
        Ok(v) => v as f64,
        Err(_) => match t.parse::<f64>() {
            Ok(f) if f.is_finite() => f,
            _ => {
                problems.push(format!(
                    "invalid rating {t:?}: expected a whole number 1..=5"
                ));
                return None;
            }
        },
    };
    rating_in_range(value, t, problems)
}

fn rating_in_range(value: f64, shown: &str, problems: &mut Vec<String>) -> Option<u8> {
    if value.fract() != 0.0 {
        problems.push(format!("rating {shown} is not a whole number 1..=5"));
        None
    } else if !(1.0..=5.0).contains(&value) {
        problems.push(format!("rating {shown} outside 1..=5"));
        None
    } else {
        Some(value as u8)
    }
}

fn check_date(raw: Option<Text<'_>>, problems: &mut Vec<String>) -> Option<i64> {
    let raw = raw?;
    let Some(text) = raw.as_str() else {
        problems.push("cmt_date is not valid UTF-8".to_owned());
        return None;
    };
    let t = text.trim();
    if t.is_empty() {
        problems.push("missing cmt_date".to_owned());
        return None;
    }
    let parsed = parse_cmt_date(t);
    if parsed.is_none() {
        problems.push(format!(
            "invalid cmt_date {t:?}: expected an ISO date or datetime such as 2025-01-15 or 2025-01-15 10:30:00"
        ));
    }
    parsed
}

// ---- Parquet ------------------------------------------------------------------------

fn read_parquet_staging(
    bytes: Vec<u8>,
    limits: &IngestLimits,
) -> std::result::Result<(Interactions, Vec<RejectedRow>, usize), String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes))
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    // Compression can hide a large file in a small one: bound the decoded size too.
    let decoded: u64 = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|rg| u64::try_from(rg.total_byte_size()).unwrap_or(u64::MAX))
        .fold(0, u64::saturating_add);
    if decoded > limits.max_file_bytes {
        return Err(format!(
            "the file decodes to {decoded} bytes, above refresh.max_file_bytes ({})",
            limits.max_file_bytes
        ));
    }
    let names: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().trim().to_owned())
        .collect();
    let columns = column_positions(&names)?;
    for (c, &i) in columns.iter().enumerate() {
        let ty = builder.schema().field(i).data_type();
        if !supported(c, ty) {
            return Err(format!(
                "column {} has type {ty}, expected {}",
                STAGING_COLUMNS[c],
                match c {
                    COMMENT => "text",
                    DATE => "a timestamp, a date or ISO text",
                    _ => "a number or text",
                }
            ));
        }
    }
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let batches: Vec<RecordBatch> = reader
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| format!("cannot decode Parquet data: {e}"))?;
    let parts: Vec<Part> = batches
        .par_iter()
        .map(|b| parse_parquet_batch(b, &columns, limits))
        .collect();
    Ok(join_parts(parts))
}

fn supported(column: usize, ty: &DataType) -> bool {
    let text = matches!(
        ty,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    );
    match column {
        COMMENT => text,
        DATE => {
            text || matches!(
                ty,
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
            )
        }
        _ => text || ty.is_integer() || ty.is_floating(),
    }
}

/// One cell of a Parquet column, as the validators want it.
enum Cell<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(&'a str),
    /// Already a timestamp (µs).
    Micros(i64),
    /// A date or timestamp whose value in µs overflows an i64 (the raw value and unit).
    DateOutOfRange(String),
}

fn cell(a: &dyn Array, i: usize) -> Cell<'_> {
    if a.is_null(i) {
        return Cell::Null;
    }
    match a.data_type() {
        DataType::Int8 => Cell::Int(i64::from(a.as_primitive::<Int8Type>().value(i))),
        DataType::Int16 => Cell::Int(i64::from(a.as_primitive::<Int16Type>().value(i))),
        DataType::Int32 => Cell::Int(i64::from(a.as_primitive::<Int32Type>().value(i))),
        DataType::Int64 => Cell::Int(a.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Cell::Int(i64::from(a.as_primitive::<UInt8Type>().value(i))),
        DataType::UInt16 => Cell::Int(i64::from(a.as_primitive::<UInt16Type>().value(i))),
        DataType::UInt32 => Cell::Int(i64::from(a.as_primitive::<UInt32Type>().value(i))),
        DataType::UInt64 => match i64::try_from(a.as_primitive::<UInt64Type>().value(i)) {
            Ok(v) => Cell::Int(v),
            Err(_) => Cell::Float(f64::INFINITY),
        },
        DataType::Float32 => Cell::Float(f64::from(a.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => Cell::Float(a.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Cell::Text(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Cell::Text(a.as_string::<i64>().value(i)),
        DataType::Utf8View => Cell::Text(a.as_string_view().value(i)),
        DataType::Timestamp(unit, _) => {
            let (raw, per_unit, unit_name): (i64, i64, &str) = match unit {
                TimeUnit::Second => (
                    a.as_primitive::<TimestampSecondType>().value(i),
                    1_000_000,
                    "s",
                ),
                TimeUnit::Millisecond => (
                    a.as_primitive::<TimestampMillisecondType>().value(i),
                    1000,
                    "ms",
                ),
                TimeUnit::Microsecond => {
                    return Cell::Micros(a.as_primitive::<TimestampMicrosecondType>().value(i));
                }
                TimeUnit::Nanosecond => {
                    let ns = a.as_primitive::<TimestampNanosecondType>().value(i);
                    return Cell::Micros(ns.div_euclid(1000));
                }
            };
            micros_or_out_of_range(raw, per_unit, unit_name)
        }
        DataType::Date32 => micros_or_out_of_range(
            i64::from(a.as_primitive::<Date32Type>().value(i)),
            86_400_000_000,
            "days",
        ),
        DataType::Date64 => {
            micros_or_out_of_range(a.as_primitive::<Date64Type>().value(i), 1000, "ms")
        }
        _ => Cell::Null,
    }
}

/// `raw * per_unit` µs, checked: an overflow is a rejected row, never a wrapped or
/// saturated date.
fn micros_or_out_of_range(raw: i64, per_unit: i64, unit: &str) -> Cell<'static> {
    match raw.checked_mul(per_unit) {
        Some(v) => Cell::Micros(v),
        None => Cell::DateOutOfRange(format!("{raw} {unit} since 1970-01-01")),
    }
}

fn cell_display(c: &Cell<'_>) -> Option<String> {
    match c {
        Cell::Null => None,
        Cell::Int(v) => Some(v.to_string()),
        Cell::Float(v) => Some(v.to_string()),
        Cell::Text(s) => Some((*s).to_owned()),
        Cell::Micros(v) => Some(crate::datetime::format_micros(*v)),
        Cell::DateOutOfRange(raw) => Some(raw.clone()),
    }
}

fn cell_id(c: &Cell<'_>, name: &str, problems: &mut Vec<String>) -> Option<i64> {
    match *c {
        Cell::Null => {
            problems.push(format!("empty {name}"));
            None
        }
        Cell::Int(v) => Some(v),
        Cell::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
        Cell::Text(t) => parse_id_text(t, name, problems),
        _ => {
            problems.push(format!(
                "invalid {name} {}: expected an integer",
                cell_display(c).unwrap_or_default()
            ));
            None
        }
    }
}

fn parse_parquet_batch(b: &RecordBatch, columns: &[usize; 5], limits: &IngestLimits) -> Part {
    let mut part = Part::new(b.num_rows());
    let col = |c: usize| b.column(columns[c]).as_ref();
    for i in 0..b.num_rows() {
        part.records += 1;
        let cells: [Cell<'_>; 5] = std::array::from_fn(|c| cell(col(c), i));
        let mut problems = Vec::new();
        for (c, cell) in cells.iter().enumerate() {
            if let Cell::Text(t) = cell {
                problems.extend(limits.field_problem(STAGING_COLUMNS[c], t.len()));
            }
        }
        let user = cell_id(&cells[USER], "user_id", &mut problems);
        let product = cell_id(&cells[PRODUCT], "product_id", &mut problems);
        let rating = match cells[RATING] {
            Cell::Null => {
                problems.push("missing rating".to_owned());
                None
            }
            Cell::Int(v) => rating_in_range(v as f64, &v.to_string(), &mut problems),
            Cell::Float(f) => rating_in_range(f, &f.to_string(), &mut problems),
            Cell::Text(t) => check_rating(Some(Text::Str(t)), &mut problems),
            Cell::Micros(_) | Cell::DateOutOfRange(_) => None,
        };
        let date = match &cells[DATE] {
            Cell::Micros(v) => Some(*v),
            Cell::Text(t) => check_date(Some(Text::Str(t)), &mut problems),
            Cell::DateOutOfRange(raw) => {
                problems.push(format!(
                    "cmt_date {raw} is outside the representable range of timestamps"
                ));
                None
            }
            _ => {
                problems.push("missing cmt_date".to_owned());
                None
            }
        };
        if let Some(d) = date {
            problems.extend(limits.date_problem(d));
        }
        let comment = match cells[COMMENT] {
            Cell::Text("") => None,
            Cell::Text(t) => Some(t),
            _ => None,
        };
        match (user, product, rating, date) {
            (Some(u), Some(p), Some(r), Some(d)) if problems.is_empty() => {
                part.push(u, p, r, comment, d);
            }
            _ => part.rejected.push(RejectedRow {
                row: part.records,
                line: None,
                reason: problems.join("; "),
                values: std::array::from_fn(|c| {
                    cell_display(&cells[c]).map(|v| limits.shown(v.as_bytes()))
                }),
            }),
        }
    }
    part.finish()
}

// ---- Rejected rows --------------------------------------------------------------------

/// Writes `rejected` to `<dir>/<file name>.<stamp>.csv` (atomically) with the columns
/// `row,line,reason,user_id,product_id,rating,comment,cmt_date`. Returns the path, or
/// `None` when there is nothing to write.
pub fn write_rejected(
    dir: &Path,
    file_name: &str,
    stamp: &str,
    rejected: &[RejectedRow],
) -> Result<Option<PathBuf>> {
    if rejected.is_empty() {
        return Ok(None);
    }
    let path = dir.join(format!("{file_name}.{stamp}.csv"));
    write_rejected_to(&path, rejected)?;
    Ok(Some(path))
}

/// Writes the rejected rows report to `path` (atomically).
pub(crate) fn write_rejected_to(path: &Path, rejected: &[RejectedRow]) -> Result<()> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let header = ["row", "line", "reason"].into_iter().chain(STAGING_COLUMNS);
    let io = |e: csv::Error| Error::io("cannot write", path, std::io::Error::other(e));
    w.write_record(header).map_err(io)?;
    for r in rejected {
        let mut rec = vec![
            r.row.to_string(),
            r.line.map(|l| l.to_string()).unwrap_or_default(),
            r.reason.clone(),
        ];
        rec.extend(r.values.iter().map(|v| v.clone().unwrap_or_default()));
        w.write_record(&rec).map_err(io)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::io("cannot write", path, std::io::Error::other(e.to_string())))?;
    recops_core::write_atomic(path, &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_file(dir: &Path, name: &str, text: &str) -> StagingFile {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        find_staging_files(dir)
            .unwrap()
            .files
            .into_iter()
            .find(|f| f.name == name)
            .unwrap()
    }

    #[test]
    fn chunking_respects_quotes_and_lands_on_record_starts() {
        let body =
            b"1,2,5,\"a\nb,\"\"c\"\"\",2025-01-01\n3,4,5,x\"y,2025-01-02\n5,6,5,\"\",2025-01-03\n";
        let find = |pat: &[u8]| body.windows(pat.len()).position(|w| w == pat).unwrap();
        let starts = [0, find(b"3,4,5"), find(b"5,6,5")];
        for target in 1..body.len() + 2 {
            let bounds = chunk_bounds(body, target);
            assert_eq!(bounds.first().unwrap().0, 0);
            assert_eq!(bounds.last().unwrap().1, body.len());
            for w in bounds.windows(2) {
                assert_eq!(w[0].1, w[1].0);
                // Every boundary is the start of a record.
                assert!(starts.contains(&w[0].1), "{target}: {bounds:?}");
            }
        }
    }

    #[test]
    fn good_csv_in_any_column_order_with_bom_crlf_and_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let text = "\u{feff}cmt_date,rating,user_id,extra,product_id,comment\r\n\
                    2025-01-15 10:30:00,5,7,x,100,\"Thấm nhanh, thơm\"\r\n\
                    2025-01-16,4.0,8,y,101,\r\n\
                    2025-01-17T08:00:00+07:00,3,9,z,102,\"multi\nline \"\"quoted\"\"\"\r\n";
        let f = csv_file(dir.path(), "a.csv", text);
        let b = read_staging_file(&f).unwrap();
        assert_eq!(b.total_rows, 3);
        assert!(b.rejected.is_empty(), "{:?}", b.rejected);
        assert_eq!(b.rows.user_id, vec![7, 8, 9]);
        assert_eq!(b.rows.product_id, vec![100, 101, 102]);
        assert_eq!(b.rows.rating, vec![5, 4, 3]);
        assert_eq!(b.rows.comment(0), Some("Thấm nhanh, thơm"));
        assert_eq!(b.rows.comment(1), None);
        assert_eq!(b.rows.comment(2), Some("multi\nline \"quoted\""));
        assert_eq!(b.rows.comment_quality, vec![0.7, 0.0, 0.5]);
        assert_eq!(
            b.rows.cmt_date[2],
            parse_cmt_date("2025-01-17 01:00:00").unwrap()
        );
        assert!(b.content_hash.starts_with("xxh3-128:"));
    }

    #[test]
    fn mixed_csv_rejects_bad_rows_with_reasons_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let text = "user_id,product_id,rating,comment,cmt_date\n\
                    1,10,5,ok,2025-01-01\n\
                    ,10,5,no user,2025-01-01\n\
                    2,abc,5,bad product,2025-01-01\n\
                    3,10,6,too high,2025-01-01\n\
                    4,10,4.5,half,2025-01-01\n\
                    5,10,0,zero,01/02/2025\n\
                    6,10,5,\"quoted\nnewline\",2025-01-02\n\
                    7,10,5\n\
                    8,11,,missing rating,2025-01-03\n\
                    9,12,2,fine,2025-02-28T23:59:59Z\n";
        let f = csv_file(dir.path(), "mixed.csv", text);
        let b = read_staging_file(&f).unwrap();
        assert_eq!(b.total_rows, 10);
        assert_eq!(b.rows.user_id, vec![1, 6, 9]);
        let reasons: Vec<(u64, Option<u64>, &str)> = b
            .rejected
            .iter()
            .map(|r| (r.row, r.line, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (2, Some(3), "empty user_id"),
                (
                    3,
                    Some(4),
                    "invalid product_id \"abc\": expected an integer"
                ),
                (4, Some(5), "rating 6 outside 1..=5"),
                (5, Some(6), "rating 4.5 is not a whole number 1..=5"),
                (
                    6,
                    Some(7),
                    "rating 0 outside 1..=5; invalid cmt_date \"01/02/2025\": expected an ISO date or datetime such as 2025-01-15 or 2025-01-15 10:30:00"
                ),
                (8, Some(10), "expected 5 fields, found 3"),
                (9, Some(11), "missing rating"),
            ]
        );
        assert_eq!(b.rejected[0].values[3].as_deref(), Some("no user"));
        assert_eq!(b.rejected[5].values[4], None);
        // The rejected file has the reason column and every original value.
        let out = write_rejected(dir.path(), "mixed.csv", "20250115T020000Z", &b.rejected)
            .unwrap()
            .unwrap();
        assert!(out.ends_with("mixed.csv.20250115T020000Z.csv"));
        let text = std::fs::read_to_string(out).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("row,line,reason,user_id,product_id,rating,comment,cmt_date")
        );
        assert_eq!(
            lines.next(),
            Some("2,3,empty user_id,,10,5,no user,2025-01-01")
        );
        assert!(
            write_rejected(dir.path(), "x.csv", "s", &[])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn broken_files_are_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text, expect) in [
            ("empty.csv", "", "empty file"),
            (
                "cols.csv",
                "user_id,product_id,comment\n1,2,x\n",
                "missing required column(s) rating, cmt_date (found: user_id, product_id, comment",
            ),
            (
                "dup.csv",
                "user_id,product_id,rating,rating,comment,cmt_date\n",
                "column rating appears twice",
            ),
            (
                "bin.parquet",
                "PAR1 not really",
                "not a readable Parquet file",
            ),
        ] {
            let f = csv_file(dir.path(), name, text);
            let err = read_staging_file(&f).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains(expect), "{msg}");
        }
    }

    #[test]
    fn big_csv_parses_in_chunks_with_correct_row_and_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("user_id,product_id,rating,comment,cmt_date\n");
        let n = 60_000;
        for i in 0..n {
            if i % 9_999 == 0 {
                text.push_str(&format!("{i},1,9,\"bad\nrow\",2025-01-01\n"));
            } else {
                text.push_str(&format!(
                    "{i},{},{},\"c, {i}\",2025-01-01 00:00:{:02}\n",
                    i % 50,
                    i % 5 + 1,
                    i % 60
                ));
            }
        }
        let f = csv_file(dir.path(), "big.csv", &text);
        let whole = read_staging_file(&f).unwrap();
        // Small chunks: dozens of chunks parsed in parallel, same result.
        assert!(chunk_bounds(text.as_bytes(), 64 << 10).len() > 20);
        let (rows, rejected, total) =
            read_csv(text.as_bytes(), 64 << 10, &IngestLimits::default()).unwrap();
        assert_eq!(rows, whole.rows);
        assert_eq!(rejected, whole.rejected);
        let b = StagingBatch {
            rows,
            rejected,
            total_rows: total,
            ..whole
        };
        assert_eq!(b.total_rows, n);
        assert_eq!(b.rejected.len(), 7);
        // Row k (0-based i = k - 1) starts on line 1 + k + (bad rows before it).
        for (j, r) in b.rejected.iter().enumerate() {
            let i = j as u64 * 9_999;
            assert_eq!(r.row, i + 1);
            assert_eq!(r.line, Some(i + 2 + j as u64));
        }
        assert_eq!(b.rows.len(), n - 7);
        assert_eq!(b.rows.user_id[0], 1);
        assert_eq!(b.rows.comment(0), Some("c, 1"));
        assert!(b.rows.user_id.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn staging_scan_orders_oldest_first_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let set_time = |name: &str, secs: u64| {
            let f = std::fs::File::options()
                .write(true)
                .open(dir.path().join(name))
                .unwrap();
            f.set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
                .unwrap();
        };
        for name in ["b.csv", "a.CSV", "c.parquet", ".upload.csv", "notes.txt"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("archive")).unwrap();
        set_time("b.csv", 100);
        set_time("a.CSV", 200);
        set_time("c.parquet", 100);
        let scan = find_staging_files(dir.path()).unwrap();
        let names: Vec<_> = scan.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["b.csv", "c.parquet", "a.CSV"]);
        assert_eq!(scan.files[1].format, StagingFormat::Parquet);
        assert_eq!(scan.ignored.len(), 2);
        assert!(
            find_staging_files(&dir.path().join("none"))
                .unwrap()
                .files
                .is_empty()
        );
    }
}
