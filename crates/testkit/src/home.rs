//! Temporary recops homes for tests.

use std::path::Path;

use recops_core::Home;

use recops_synth::{Dataset, Error, GenConfig, GenSummary, Result, generate, write_dataset};

/// A recops home in a temporary folder, removed when dropped.
///
/// ```
/// use recops_testkit::{GenConfig, TempHome};
/// let (home, summary) = TempHome::with_data(&GenConfig::tiny(), 2)?;
/// assert_eq!(summary.staging_files.len(), 2);
/// assert!(home.home().product_catalog().exists());
/// # Ok::<(), recops_testkit::Error>(())
/// ```
#[derive(Debug)]
pub struct TempHome {
    dir: tempfile::TempDir,
    home: Home,
}

impl TempHome {
    /// An empty home.
    pub fn new() -> Result<TempHome> {
        let dir = tempfile::Builder::new()
            .prefix("recops-home-")
            .tempdir()
            .map_err(|e| Error::Io {
                action: "cannot create a temporary folder in",
                path: std::env::temp_dir(),
                source: e,
            })?;
        let home = Home::new(dir.path());
        Ok(TempHome { dir, home })
    }

    /// A home with generated data in `data/staging/` (`files` CSV files) and the
    /// catalog in `data/published_data/`.
    pub fn with_data(config: &GenConfig, files: usize) -> Result<(TempHome, GenSummary)> {
        let t = TempHome::new()?;
        let ds = generate(config)?;
        let summary = write_dataset(&t.home, &ds, files)?;
        Ok((t, summary))
    }

    /// Like [`TempHome::with_data`], also returning the generated rows.
    pub fn with_dataset(
        config: &GenConfig,
        files: usize,
    ) -> Result<(TempHome, Dataset, GenSummary)> {
        let t = TempHome::new()?;
        let ds = generate(config)?;
        let summary = write_dataset(&t.home, &ds, files)?;
        Ok((t, ds, summary))
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `data/staging/<name>` (atomically) and returns its path.
    pub fn stage(&self, name: &str, text: &str) -> Result<std::path::PathBuf> {
        let path = self.home.staging_dir().join(name);
        recops_core::write_atomic(&path, text.as_bytes())?;
        Ok(path)
    }

    /// Keeps the folder on disk (for debugging a failing test) and returns its path.
    pub fn keep(self) -> std::path::PathBuf {
        self.dir.keep()
    }
}
