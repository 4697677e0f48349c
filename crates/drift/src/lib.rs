//! recops-drift: has the data changed enough to retrain? (spec Component 4)
//!
//! - [`DriftInput`]: the user, product, rating and date columns, [loaded](DriftInput::load)
//!   from `interactions.parquet` (only those four columns, row groups decoded in
//!   parallel and used without copying) or [built](DriftInput::from_columns) in memory.
//! - [`detect_drift`] runs the spec's three detectors on fair windows: "new" is the last
//!   7 days, "historical" the data before it; volumes are compared per day and user
//!   activity per window of equal length, so steady traffic over windows of different
//!   lengths is not drift; a window with too few interactions gives
//!   `insufficient_data` instead of a verdict. The "new" window ends at the newest
//!   interaction that is not a future row (dated more than a day after the
//!   refresh that wrote the data, [`DriftInput::as_of`]), so one row dated 2099
//!   cannot blind detection.
//! - [`detect_rating_drift`] (max share difference, threshold 0.1, severity bands
//!   0.1 / 0.2) also reports a chi-square p-value, PSI and the Jensen–Shannon distance;
//!   [`detect_popularity_drift`] (Jaccard of the top-100, shift below 0.8) also reports
//!   rank-biased overlap; [`detect_interaction_drift`] (±20 %). The spec's rules decide
//!   `drift_detected`; the statistics are reported beside them.
//! - [`generate_drift_report`] writes `reports/drift/drift_report_YYYYMMDD.json` and a
//!   row of `reports/drift/drift_summary.md`.
//!
//! ```
//! use recops_core::DriftSettings;
//! use recops_drift::{DriftInput, Severity, detect_drift};
//!
//! let results = detect_drift(&DriftInput::default(), &DriftSettings::default());
//! assert!(results.windows.insufficient_data);
//! assert_eq!(results.overall_severity, Severity::Low);
//! ```

mod detect;
mod error;
mod report;
mod stats;

pub use detect::{
    DriftInput, DriftResults, FUTURE_TOLERANCE_DAYS, InteractionDrift, InteractionStats,
    PopularityDrift, RatingComparison, RatingDrift, Severity, Windows, detect_drift,
    detect_interaction_drift, detect_popularity_drift, detect_rating_drift,
};
pub use error::{Error, Result};
pub use report::{DriftReport, generate_drift_report};
pub use stats::{chi_square_homogeneity, jensen_shannon_distance, psi, rank_biased_overlap};
