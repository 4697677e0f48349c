//! recops-testkit: test helpers (a dev-dependency only): [`TempHome`], a recops home in a
//! temporary folder, optionally filled with the synthetic data of recops-synth, whose
//! API is re-exported here for tests.
//!
//! - [`generate`] with a [`GenConfig`]: a product catalog ([`Product`]: product_id,
//!   name, brand, category, Vietnamese description), users in taste clusters (so
//!   collaborative filtering beats popularity), long-tail item popularity, ratings
//!   skewed to 4–5, Vietnamese review comments built from phrases that include the
//!   spec's quality keywords (some in decomposed Unicode or upper case), dates over a
//!   year, optional duplicates and invalid rows, and [`DriftOptions`] for the last
//!   days (rating shift, new trending items, volume change). From [`GenConfig::tiny`]
//!   to [`GenConfig::spec_size`] (26,000 users x 2,200 products, 1,000,000 rows).
//! - [`write_dataset`]: staging CSV files into `data/staging/` and the catalog into
//!   `data/published_data/data_product.csv`.
//! - [`TempHome`]: a recops home in a temporary folder, optionally filled with data.
//! - [`RealAlertmanager`]: a real Prometheus Alertmanager on 127.0.0.1 (temp config and
//!   storage, clustering off), for the Alertmanager channel tests.
//! - [`Rng`] / [`Weighted`]: the seeded generator behind it (stable across versions).
//! - [`read_back_with_python`]: reads copied data files back with pandas, scipy and
//!   `json` in one Python process (kill suites), naming the kill point and file of a
//!   failure; [`copy_data_files`] collects them.
//! - [`PgCluster`]: a throwaway PostgreSQL server (`initdb` in a temp folder, a free
//!   port on 127.0.0.1, removed on drop) for the PostgreSQL store tests.
//!
//! ```
//! use recops_testkit::{DriftOptions, GenConfig, TempHome};
//!
//! let config = GenConfig {
//!     drift: DriftOptions { rating_shift: -1.0, ..DriftOptions::default() },
//!     ..GenConfig::tiny()
//! };
//! let (home, summary) = TempHome::with_data(&config, 1)?;
//! assert_eq!(summary.interactions, 600);
//! assert!(summary.drift_window_start.is_some());
//! assert!(home.home().staging_dir().read_dir().unwrap().count() >= 1);
//! # Ok::<(), recops_testkit::Error>(())
//! ```

mod alertmanager;
mod home;
mod kill;
mod pg;
mod python;

pub use alertmanager::{
    REQUIRE_ALERTMANAGER_ENV, RealAlertmanager, alertmanager_binary, alertmanager_required,
};
pub use home::TempHome;
pub use kill::{State, which_state};
pub use pg::{PG_USER, PgCluster, postgres_bin_dir, postgres_required};
pub use python::{REQUIRE_SCIPY_ENV, copy_data_files, python_with, read_back_with_python};
pub use recops_synth::{
    Dataset, DriftOptions, Error, GenConfig, GenInteraction, GenSummary, Invalid, Product, Result,
    Rng, Weighted, generate, write_catalog_csv, write_dataset, write_interactions_csv,
};
