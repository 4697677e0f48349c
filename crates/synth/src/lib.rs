//! recops-synth: seeded synthetic data in the shape of the spec's shop, for
//! `recops gen-data`, `recops demo`, tests and benchmarks (a runtime crate; the test
//! helpers live in recops-testkit).
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
//! - [`Rng`] / [`Weighted`]: the seeded generator behind it (stable across versions).
//!
//! ```
//! use recops_synth::{DriftOptions, GenConfig, generate};
//!
//! let config = GenConfig {
//!     drift: DriftOptions { rating_shift: -1.0, ..DriftOptions::default() },
//!     ..GenConfig::tiny()
//! };
//! let ds = generate(&config)?;
//! assert_eq!(ds.interactions.len(), 600);
//! # Ok::<(), recops_synth::Error>(())
//! ```

mod error;
mod generate;
mod rng;
mod vocab;
mod write;

pub use error::{Error, Result};
pub use generate::{Dataset, DriftOptions, GenConfig, GenInteraction, Invalid, Product, generate};
pub use rng::{Rng, Weighted};
pub use write::{GenSummary, write_catalog_csv, write_dataset, write_interactions_csv};
