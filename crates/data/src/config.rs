//! `config/data_config.yaml`: the data refresh settings.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use recops_core::{Home, Validate, load_config};

use crate::datetime::parse_cmt_date;
use crate::error::Result;
use crate::ingest::IngestLimits;
use crate::npz::NpzCompression;

/// The shipped `config/data_config.yaml`, used when the home has none.
pub const DEFAULT_DATA_CONFIG: &str = include_str!("../../../config/data_config.yaml");

/// `config/data_config.yaml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The data refresh.
    pub refresh: RefreshSettings,
}

/// `refresh:` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RefreshSettings {
    /// At most this many new valid interactions are merged incrementally; more rebuild
    /// everything (default 100, the spec's threshold).
    pub incremental_max_new_rows: usize,
    /// alpha of c = 1 + alpha * rating in `X_train_confidence.npz`: not a key of this
    /// file but `model.alpha` of `config/als_config.yaml` (the one alpha of recops,
    /// also used by ALS training), filled in by [`DataConfig::load`].
    #[serde(skip_deserializing, default = "default_alpha")]
    pub confidence_alpha: f32,
    /// The former place of alpha. Accepted when equal to `model.alpha` of
    /// `config/als_config.yaml`, refused otherwise; leave it out.
    #[serde(default, rename = "confidence_alpha")]
    pub legacy_confidence_alpha: Option<f32>,
    /// How the npz entries are stored (default `deflate`, like `save_npz`).
    #[serde(default)]
    pub npz_compression: NpzCompression,
    /// A staging file larger than this (on disk, or decoded for Parquet) is refused
    /// whole, with a clear error, before it is read into memory (default 512 MiB).
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// A row with a field larger than this is rejected with the reason (default
    /// 64 KiB).
    #[serde(default = "default_max_field_bytes")]
    pub max_field_bytes: usize,
    /// Rows dated more than this many hours after the refresh time are rejected
    /// (default 24).
    #[serde(default = "default_future_tolerance_hours")]
    pub future_tolerance_hours: u32,
    /// Rows dated before this ISO date are rejected (default `2000-01-01`).
    #[serde(default = "default_min_cmt_date")]
    pub min_cmt_date: String,
}

fn default_max_file_bytes() -> u64 {
    512 << 20
}
fn default_max_field_bytes() -> usize {
    64 << 10
}
fn default_future_tolerance_hours() -> u32 {
    24
}
fn default_min_cmt_date() -> String {
    "2000-01-01".to_owned()
}

impl RefreshSettings {
    /// The ingest bounds for a refresh running at `now`.
    pub fn ingest_limits(&self, now: DateTime<Utc>) -> IngestLimits {
        let tolerance_us = i64::from(self.future_tolerance_hours) * 3_600_000_000;
        IngestLimits {
            max_file_bytes: self.max_file_bytes,
            max_field_bytes: self.max_field_bytes,
            min_date_micros: parse_cmt_date(&self.min_cmt_date).unwrap_or(i64::MIN),
            max_date_micros: now.timestamp_micros().saturating_add(tolerance_us),
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            refresh: RefreshSettings {
                incremental_max_new_rows: 100,
                confidence_alpha: default_alpha(),
                legacy_confidence_alpha: None,
                npz_compression: NpzCompression::Deflate,
                max_file_bytes: default_max_file_bytes(),
                max_field_bytes: default_max_field_bytes(),
                future_tolerance_hours: default_future_tolerance_hours(),
                min_cmt_date: default_min_cmt_date(),
            },
        }
    }
}

fn default_alpha() -> f32 {
    10.0
}

impl Validate for DataConfig {
    fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if let Some(a) = self.refresh.legacy_confidence_alpha
            && (!a.is_finite() || a < 0.0)
        {
            p.push((
                "refresh.confidence_alpha".to_owned(),
                format!("expected a finite number >= 0, got {a}"),
            ));
        }
        let r = &self.refresh;
        if r.max_file_bytes == 0 {
            p.push((
                "refresh.max_file_bytes".to_owned(),
                "expected a size in bytes > 0".to_owned(),
            ));
        }
        if r.max_field_bytes == 0 {
            p.push((
                "refresh.max_field_bytes".to_owned(),
                "expected a size in bytes > 0".to_owned(),
            ));
        }
        if parse_cmt_date(&r.min_cmt_date).is_none() {
            p.push((
                "refresh.min_cmt_date".to_owned(),
                format!(
                    "expected an ISO date such as 2000-01-01, got {:?}",
                    r.min_cmt_date
                ),
            ));
        }
        p
    }
}

/// The shipped `config/als_config.yaml`: where alpha lives.
const DEFAULT_ALS_CONFIG: &str = include_str!("../../../config/als_config.yaml");

/// The part of `config/als_config.yaml` the data refresh reads (recops-cf-training
/// validates the whole file).
#[derive(Debug, Deserialize)]
struct AlsAlpha {
    #[serde(default)]
    model: AlsAlphaModel,
}

#[derive(Debug, Deserialize)]
struct AlsAlphaModel {
    #[serde(default = "default_alpha")]
    alpha: f32,
}

impl Default for AlsAlphaModel {
    fn default() -> Self {
        AlsAlphaModel {
            alpha: default_alpha(),
        }
    }
}

impl Validate for AlsAlpha {
    fn problems(&self) -> Vec<(String, String)> {
        let a = self.model.alpha;
        if a.is_finite() && a >= 0.0 {
            Vec::new()
        } else {
            vec![(
                "model.alpha".to_owned(),
                format!("expected a finite number >= 0, got {a}"),
            )]
        }
    }
}

impl DataConfig {
    /// Loads `config/data_config.yaml` of `home` (or the built-in default) and takes
    /// alpha from `model.alpha` of `config/als_config.yaml` (or its built-in default),
    /// the one alpha of recops. A `refresh.confidence_alpha` left in the data config
    /// must equal it.
    pub fn load(home: &Home) -> Result<Self> {
        let mut config: DataConfig = load_config(&home.data_config(), DEFAULT_DATA_CONFIG)?;
        let als: AlsAlpha = load_config(&home.als_config(), DEFAULT_ALS_CONFIG)?;
        let alpha = als.model.alpha;
        if let Some(legacy) = config.refresh.legacy_confidence_alpha
            && legacy != alpha
        {
            return Err(recops_core::Error::Config {
                file: home.data_config(),
                key: Some("refresh.confidence_alpha".to_owned()),
                message: format!(
                    "{legacy} differs from model.alpha {alpha} of {}: alpha lives in \
                     als_config.yaml now; remove this key",
                    home.als_config().display()
                ),
            }
            .into());
        }
        config.refresh.confidence_alpha = alpha;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recops_core::{ConfigFormat, parse_config};
    use std::collections::HashMap;
    use std::path::Path;

    #[test]
    fn shipped_config_parses_to_the_spec_defaults() {
        let cfg: DataConfig = parse_config(
            DEFAULT_DATA_CONFIG,
            Path::new("config/data_config.yaml"),
            ConfigFormat::Yaml,
            &HashMap::new(),
        )
        .unwrap();
        assert_eq!(cfg, DataConfig::default());
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(DataConfig::load(&Home::new(dir.path())).unwrap(), cfg);
    }

    #[test]
    fn alpha_comes_from_the_als_config_and_a_different_legacy_alpha_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        std::fs::create_dir_all(home.config_dir()).unwrap();
        std::fs::write(home.als_config(), "model:\n  alpha: 40\n").unwrap();
        assert_eq!(
            DataConfig::load(&home).unwrap().refresh.confidence_alpha,
            40.0
        );
        std::fs::write(
            home.data_config(),
            "refresh:\n  incremental_max_new_rows: 100\n  confidence_alpha: 40\n",
        )
        .unwrap();
        assert_eq!(
            DataConfig::load(&home).unwrap().refresh.confidence_alpha,
            40.0
        );
        std::fs::write(
            home.data_config(),
            "refresh:\n  incremental_max_new_rows: 100\n  confidence_alpha: 10\n",
        )
        .unwrap();
        let err = DataConfig::load(&home).unwrap_err().to_string();
        assert!(
            err.contains("refresh.confidence_alpha") && err.contains("model.alpha 40"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let text = DEFAULT_DATA_CONFIG.replace(
            "npz_compression: deflate",
            "npz_compression: deflate\n  confidence_alpha: -1",
        );
        let err = parse_config::<DataConfig>(
            &text,
            Path::new("data_config.yaml"),
            ConfigFormat::Yaml,
            &HashMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("refresh.confidence_alpha"), "{err}");
        let text = DEFAULT_DATA_CONFIG.replace("npz_compression: deflate", "npz_compression: zstd");
        let err = parse_config::<DataConfig>(
            &text,
            Path::new("data_config.yaml"),
            ConfigFormat::Yaml,
            &HashMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("npz_compression") && err.contains("zstd"),
            "{err}"
        );
        let env = HashMap::from([("RECOPS_INCREMENTAL_MAX_NEW_ROWS".to_owned(), "5".to_owned())]);
        let cfg: DataConfig = parse_config(
            DEFAULT_DATA_CONFIG,
            Path::new("data_config.yaml"),
            ConfigFormat::Yaml,
            &env,
        )
        .unwrap();
        assert_eq!(cfg.refresh.incremental_max_new_rows, 5);
    }
}
