//! Writing a generated data set into a recops home: staging CSV files and the catalog.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::DateTime;
use recops_core::Home;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::generate::{Dataset, GenInteraction, Invalid, Product};

/// What [`write_dataset`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenSummary {
    /// The staging files, oldest data first.
    pub staging_files: Vec<PathBuf>,
    /// The catalog (`data/published_data/data_product.csv`).
    pub catalog: PathBuf,
    /// Users with at least one row.
    pub users: usize,
    /// Products in the catalog.
    pub products: usize,
    /// Rows written.
    pub interactions: usize,
    /// Rows deliberately invalid.
    pub invalid_rows: usize,
    /// Start of the drift window (`YYYY-MM-DD`), when drift was injected.
    pub drift_window_start: Option<String>,
    /// The seed.
    pub seed: u64,
}

/// Writes `ds` into `home`: the interactions as `files` CSV files in
/// `data/staging/` (consecutive date ranges, `interactions_YYYYMMDD_YYYYMMDD.csv`, with
/// modification times in the same order so a refresh merges them oldest first) and the
/// catalog as `data/published_data/data_product.csv`. Files are written atomically, so
/// a refresh running meanwhile never sees half a file.
pub fn write_dataset(home: &Home, ds: &Dataset, files: usize) -> Result<GenSummary> {
    let staging = home.ensure_dir(home.staging_dir())?;
    let files = files.clamp(1, ds.interactions.len().max(1));
    let per_file = ds.interactions.len().div_ceil(files).max(1);
    let mut written = Vec::with_capacity(files);
    let base = SystemTime::now() - Duration::from_secs(files as u64 + 1);
    for (k, chunk) in ds.interactions.chunks(per_file).enumerate() {
        let day = |r: &GenInteraction| {
            DateTime::from_timestamp_micros(r.cmt_date)
                .map(|t| t.format("%Y%m%d").to_string())
                .unwrap_or_else(|| "00000000".into())
        };
        let (first, last) = match (chunk.first(), chunk.last()) {
            (Some(a), Some(b)) => (day(a), day(b)),
            _ => continue,
        };
        let mut path = staging.join(format!("interactions_{first}_{last}.csv"));
        if path.exists() || written.contains(&path) {
            path = staging.join(format!("interactions_{first}_{last}_{k}.csv"));
        }
        write_interactions_csv(&path, chunk)?;
        set_mtime(&path, base + Duration::from_secs(k as u64))?;
        written.push(path);
    }
    let catalog = home.product_catalog();
    write_catalog_csv(&catalog, &ds.products)?;
    let mut users: Vec<i64> = ds.interactions.iter().map(|r| r.user_id).collect();
    users.sort_unstable();
    users.dedup();
    Ok(GenSummary {
        staging_files: written,
        catalog,
        users: users.len(),
        products: ds.products.len(),
        interactions: ds.interactions.len(),
        invalid_rows: ds.invalid_rows(),
        drift_window_start: ds.config.drift.is_active().then(|| {
            DateTime::from_timestamp_micros(ds.drift_start)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        }),
        seed: ds.config.seed,
    })
}

fn set_mtime(path: &Path, t: SystemTime) -> Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(t))
        .map_err(|e| Error::Io {
            action: "cannot set the modification time of",
            path: path.to_path_buf(),
            source: e,
        })
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn field(out: &mut Vec<u8>, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Writes interaction rows as a staging CSV (`user_id,product_id,rating,comment,cmt_date`,
/// dates as `YYYY-MM-DD HH:MM:SS`), atomically.
pub fn write_interactions_csv(path: &Path, rows: &[GenInteraction]) -> Result<()> {
    recops_core::write_atomic_with(path, |w| {
        w.write_all(b"user_id,product_id,rating,comment,cmt_date\n")?;
        let mut line = Vec::with_capacity(256);
        for r in rows {
            line.clear();
            if r.invalid != Some(Invalid::EmptyUser) {
                line.extend_from_slice(r.user_id.to_string().as_bytes());
            }
            line.push(b',');
            if r.invalid == Some(Invalid::BadProduct) {
                line.extend_from_slice(b"SP-");
            }
            line.extend_from_slice(r.product_id.to_string().as_bytes());
            line.push(b',');
            let rating = match r.invalid {
                Some(Invalid::RatingOutOfRange) => {
                    if r.rating >= 3 {
                        6
                    } else {
                        0
                    }
                }
                _ => r.rating,
            };
            line.extend_from_slice(rating.to_string().as_bytes());
            line.push(b',');
            if let Some(c) = &r.comment {
                field(&mut line, c);
            }
            line.push(b',');
            let t = DateTime::from_timestamp_micros(r.cmt_date).unwrap_or_default();
            let date = if r.invalid == Some(Invalid::BadDate) {
                t.format("%d/%m/%Y").to_string()
            } else {
                t.format("%Y-%m-%d %H:%M:%S").to_string()
            };
            line.extend_from_slice(date.as_bytes());
            line.push(b'\n');
            w.write_all(&line)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Writes the catalog CSV (`product_id,name,brand,category,description`), atomically.
pub fn write_catalog_csv(path: &Path, products: &[Product]) -> Result<()> {
    recops_core::write_atomic_with(path, |w| {
        w.write_all(b"product_id,name,brand,category,description\n")?;
        let mut line = Vec::with_capacity(512);
        for p in products {
            line.clear();
            line.extend_from_slice(p.product_id.to_string().as_bytes());
            for s in [&p.name, &p.brand, &p.category, &p.description] {
                line.push(b',');
                field(&mut line, s);
            }
            line.push(b'\n');
            w.write_all(&line)?;
        }
        Ok(())
    })?;
    Ok(())
}
