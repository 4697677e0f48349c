//! `config/data_config.yaml`: the data refresh settings.

use serde::Deserialize;

use recops_core::{Home, Validate, load_config};

use crate::error::Result;
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
    /// alpha of c = 1 + alpha * rating in `X_train_confidence.npz` (default 10).
    pub confidence_alpha: f32,
    /// How the npz entries are stored (default `deflate`, like `save_npz`).
    #[serde(default)]
    pub npz_compression: NpzCompression,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            refresh: RefreshSettings {
                incremental_max_new_rows: 100,
                confidence_alpha: 10.0,
                npz_compression: NpzCompression::Deflate,
            },
        }
    }
}

impl Validate for DataConfig {
    fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let a = self.refresh.confidence_alpha;
        if !a.is_finite() || a < 0.0 {
            p.push((
                "refresh.confidence_alpha".to_owned(),
                format!("expected a finite number >= 0, got {a}"),
            ));
        }
        p
    }
}

impl DataConfig {
    /// Loads `config/data_config.yaml` of `home`, or the built-in default.
    pub fn load(home: &Home) -> Result<Self> {
        Ok(load_config(&home.data_config(), DEFAULT_DATA_CONFIG)?)
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
    fn bad_values_name_the_key() {
        let text = DEFAULT_DATA_CONFIG.replace("confidence_alpha: 10", "confidence_alpha: -1");
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
