//! `recops gen-data`: generated sample data written into a home.

use std::fmt;

use recops_core::Home;
use recops_synth::{GenConfig, GenSummary, generate, write_dataset};
use serde::Serialize;

use crate::error::Result;

/// What [`gen_data`] wrote (`recops gen-data --json` prints it; `Display` is the
/// text for people).
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct GenDataReport(pub GenSummary);

/// Generates the data `config` describes and writes it into `home`: `files` staging
/// files and the product catalog.
pub fn gen_data(home: &Home, config: &GenConfig, files: usize) -> Result<GenDataReport> {
    let ds = generate(config)?;
    Ok(GenDataReport(write_dataset(home, &ds, files)?))
}

impl fmt::Display for GenDataReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.0;
        writeln!(
            f,
            "generated {} interactions of {} users on {} products (seed {})",
            s.interactions, s.users, s.products, s.seed
        )?;
        for file in &s.staging_files {
            writeln!(f, "written  {}", file.display())?;
        }
        writeln!(f, "written  {}", s.catalog.display())?;
        if let Some(d) = &s.drift_window_start {
            writeln!(f, "drift injected from {d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_staging_files_and_the_catalog_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let report = gen_data(&home, &GenConfig::tiny(), 2).unwrap();
        assert_eq!(report.0.staging_files.len(), 2);
        assert!(report.0.staging_files.iter().all(|f| f.is_file()));
        assert!(report.0.catalog.is_file());
        let text = report.to_string();
        assert!(text.starts_with("generated "), "{text}");
        assert_eq!(text.matches("written  ").count(), 3, "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["seed"], report.0.seed);
    }
}
