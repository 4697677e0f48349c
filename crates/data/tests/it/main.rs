//! recops-data integration tests: whole refreshes on temporary homes.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

mod hostile;
mod kill;
mod refresh;
mod scipy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{TimeZone, Utc};
use recops_core::Home;
use recops_data::{DataConfig, RefreshOptions, RefreshReport, Result};

/// A fixed run time (names of rejected and archived files).
pub(crate) fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, 2, 0, 0).unwrap()
}

pub(crate) fn run(home: &Home) -> Result<RefreshReport> {
    run_with(home, &DataConfig::default(), false)
}

pub(crate) fn run_with(
    home: &Home,
    config: &DataConfig,
    force_full: bool,
) -> Result<RefreshReport> {
    recops_data::refresh(
        home,
        config,
        &RefreshOptions {
            force_full,
            staging_dir: None,
            now: now(),
        },
    )
}

/// Every file under `dir` (recursively) with its bytes and modification time.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            let meta = std::fs::metadata(&p).unwrap();
            out.insert(
                p.clone(),
                (std::fs::read(&p).unwrap(), meta.modified().unwrap()),
            );
        }
    }
    out
}

/// Names of the files directly in `dir`, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A staging CSV with a header and `rows` (user, product, rating, comment, date).
pub(crate) fn csv(rows: &[(i64, i64, u8, &str, &str)]) -> String {
    let mut s = String::from("user_id,product_id,rating,comment,cmt_date\n");
    for (u, p, r, c, d) in rows {
        s.push_str(&format!("{u},{p},{r},\"{c}\",{d}\n"));
    }
    s
}
