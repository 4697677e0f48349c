//! Drift reports: `reports/drift/drift_report_YYYYMMDD.json` and `drift_summary.md`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Local, Utc};
use recops_core::{Home, format_timestamp, write_atomic};
use serde::{Deserialize, Serialize};

use crate::detect::{
    DriftResults, InteractionDrift, PopularityDrift, RatingDrift, Severity, Windows,
};
use crate::error::Result;

/// The report file: the spec's fields plus the windows compared and the data version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// RFC 3339 time of the report.
    pub generated_at: String,
    /// Rating drift.
    pub rating_drift: RatingDrift,
    /// Popularity drift.
    pub popularity_drift: PopularityDrift,
    /// Interaction drift.
    pub interaction_drift: InteractionDrift,
    /// low / medium / high.
    pub overall_severity: Severity,
    /// What to do.
    pub recommendations: Vec<String>,
    /// The windows compared.
    pub windows: Windows,
    /// The data version analysed, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_version: Option<String>,
}

const SUMMARY_HEADER: &str = "# Drift summary\n\n\
| date | overall | rating (max diff, severity) | popularity (Jaccard, RBO) | volume / activity change | windows (historical / new) |\n\
|---|---|---|---|---|---|\n";

/// Writes the report of `results` to `reports/drift/drift_report_YYYYMMDD.json` (local
/// date of `now`; a second run the same day replaces it) and appends a row to
/// `reports/drift/drift_summary.md`. Both writes are atomic. Returns the report path.
pub fn generate_drift_report(
    home: &Home,
    results: &DriftResults,
    data_version: Option<&str>,
    now: DateTime<Utc>,
) -> Result<PathBuf> {
    let report = DriftReport {
        generated_at: format_timestamp(now),
        rating_drift: results.rating_drift.clone(),
        popularity_drift: results.popularity_drift.clone(),
        interaction_drift: results.interaction_drift.clone(),
        overall_severity: results.overall_severity,
        recommendations: results.recommendations.clone(),
        windows: results.windows.clone(),
        data_version: data_version.map(str::to_owned),
    };
    let path = home.drift_report(now.with_timezone(&Local).date_naive());
    let text = serde_json::to_vec_pretty(&report).map_err(|e| crate::error::Error::Report {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&path, &text)?;
    append_summary(&home.drift_summary(), &report, now)?;
    Ok(path)
}

fn append_summary(path: &Path, r: &DriftReport, now: DateTime<Utc>) -> Result<()> {
    let mut text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => SUMMARY_HEADER.to_owned(),
        Err(e) => return Err(recops_core::Error::io("cannot read", path, e).into()),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let insufficient = if r.windows.insufficient_data {
        " (insufficient data)"
    } else {
        ""
    };
    text.push_str(&format!(
        "| {} | {}{} | {:.3} ({}) | {:.2}, {:.2} | {:+.1}% / {:+.1}% | {} / {} |\n",
        now.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
        r.overall_severity.as_str(),
        insufficient,
        r.rating_drift.max_difference,
        r.rating_drift.severity.as_str(),
        r.popularity_drift.jaccard_similarity,
        r.popularity_drift.rank_biased_overlap,
        r.interaction_drift.volume_change_pct,
        r.interaction_drift.user_activity_change_pct,
        r.windows.historical_count,
        r.windows.new_count,
    ));
    write_atomic(path, text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{DriftInput, detect_drift};
    use chrono::TimeZone;
    use recops_core::DriftSettings;

    #[test]
    fn report_and_summary_rows_accumulate() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let results = detect_drift(&DriftInput::default(), &DriftSettings::default());
        let t = Local
            .with_ymd_and_hms(2025, 1, 20, 9, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let p = generate_drift_report(&home, &results, Some("abc123"), t).unwrap();
        assert!(p.ends_with("reports/drift/drift_report_20250120.json"));
        let r: DriftReport = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(r.data_version.as_deref(), Some("abc123"));
        assert_eq!(r.generated_at, format_timestamp(t));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        for key in [
            "generated_at",
            "rating_drift",
            "popularity_drift",
            "interaction_drift",
            "overall_severity",
            "recommendations",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        generate_drift_report(&home, &results, None, t + chrono::Duration::days(7)).unwrap();
        let summary = std::fs::read_to_string(home.drift_summary()).unwrap();
        assert!(summary.starts_with("# Drift summary"));
        assert_eq!(
            summary
                .lines()
                .filter(|l| l.starts_with("| 2025-01-"))
                .count(),
            2,
            "{summary}"
        );
        assert!(summary.contains("insufficient data"));
    }
}
