//! `recops init`: the default config files of every component.

use std::path::PathBuf;

use recops_core::Home;

use crate::error::Result;

/// Every config file of a home with its built-in default text.
pub fn default_configs(home: &Home) -> Vec<(PathBuf, &'static str)> {
    vec![
        (home.recops_config(), recops_core::DEFAULT_RECOPS_CONFIG),
        (home.alerts_config(), recops_alerting::DEFAULT_ALERTS_CONFIG),
        (
            home.scheduler_config(),
            recops_scheduler::DEFAULT_SCHEDULER_CONFIG,
        ),
        (home.data_config(), recops_data::DEFAULT_DATA_CONFIG),
        (home.als_config(), recops_cf_training::DEFAULT_ALS_CONFIG),
        (home.bpr_config(), recops_cf_training::DEFAULT_BPR_CONFIG),
        (
            home.embeddings_config(),
            recops_embeddings::DEFAULT_EMBEDDINGS_CONFIG,
        ),
    ]
}

/// Writes the default config files the home does not have yet (atomically); returns
/// each file with whether it was written (`false` = kept as it was).
pub fn write_default_configs(home: &Home) -> Result<Vec<(PathBuf, bool)>> {
    let mut done = Vec::new();
    for (path, text) in default_configs(home) {
        let written = !path.exists();
        if written {
            recops_core::write_atomic(&path, text.as_bytes())?;
        }
        done.push((path, written));
    }
    Ok(done)
}
