use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil::{ensure_dir, validate_name};
use crate::model_id::ModelId;

/// Environment variable naming the home folder when `--home` is not given.
pub const HOME_ENV: &str = "RECOPS_HOME";

/// The recops home folder: the one place that knows where every file lives.
///
/// Paths follow the home table of ARCHITECTURE.md (and the spec). Getters do no I/O;
/// folders are created on demand with [`Home::ensure_dir`] or [`Home::ensure_parent`]
/// (or by the component writing the file), so every command works in an empty folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// A home rooted at `root` (not created, not checked).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Home { root: root.into() }
    }

    /// The home of a command: `cli` (from `--home`) if given, else `$RECOPS_HOME`,
    /// else the current directory. The folder is created if it does not exist.
    pub fn resolve(cli: Option<PathBuf>) -> Result<Self> {
        let root = match cli {
            Some(p) => p,
            None => match std::env::var_os(HOME_ENV) {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                _ => std::env::current_dir()
                    .map_err(|e| Error::io("cannot read current directory", ".", e))?,
            },
        };
        ensure_dir(&root)?;
        Ok(Home::new(root))
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates `dir` (a folder of this home) if missing and returns it.
    pub fn ensure_dir(&self, dir: PathBuf) -> Result<PathBuf> {
        ensure_dir(&dir)?;
        Ok(dir)
    }

    /// Creates the parent folder of `file` if missing and returns `file`.
    pub fn ensure_parent(&self, file: PathBuf) -> Result<PathBuf> {
        crate::fsutil::ensure_parent(&file)?;
        Ok(file)
    }

    fn join(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    // ---- config/ ----------------------------------------------------------------

    /// `config/`
    pub fn config_dir(&self) -> PathBuf {
        self.join("config")
    }
    /// `config/als_config.yaml`
    pub fn als_config(&self) -> PathBuf {
        self.join("config/als_config.yaml")
    }
    /// `config/bpr_config.yaml`
    pub fn bpr_config(&self) -> PathBuf {
        self.join("config/bpr_config.yaml")
    }
    /// `config/alerts_config.yaml`
    pub fn alerts_config(&self) -> PathBuf {
        self.join("config/alerts_config.yaml")
    }
    /// `config/scheduler_config.json`
    pub fn scheduler_config(&self) -> PathBuf {
        self.join("config/scheduler_config.json")
    }
    /// `config/recops.yaml`
    pub fn recops_config(&self) -> PathBuf {
        self.join("config/recops.yaml")
    }
    /// `config/data_config.yaml`: data refresh settings (recops-data).
    pub fn data_config(&self) -> PathBuf {
        self.join("config/data_config.yaml")
    }

    /// `config/embeddings.yaml`: the text-embedding model and the embeddings job.
    pub fn embeddings_config(&self) -> PathBuf {
        self.join("config/embeddings.yaml")
    }

    // ---- models/ ----------------------------------------------------------------

    /// `models/`: ONNX Runtime and text-embedding models installed by
    /// `scripts/fetch_models.sh --models-dir <home>/models` (optional; the repository's
    /// `models/` folder is used when the home has none).
    pub fn models_dir(&self) -> PathBuf {
        self.join("models")
    }

    // ---- data/ ------------------------------------------------------------------

    /// `data/staging/`: new interaction files are dropped here.
    pub fn staging_dir(&self) -> PathBuf {
        self.join("data/staging")
    }
    /// `data/staging/archive/`: processed staging files, never deleted.
    pub fn staging_archive_dir(&self) -> PathBuf {
        self.join("data/staging/archive")
    }
    /// `data/staging/rejected/`: rows that failed validation, with a reason column.
    pub fn staging_rejected_dir(&self) -> PathBuf {
        self.join("data/staging/rejected")
    }
    /// `data/processed/`
    pub fn processed_dir(&self) -> PathBuf {
        self.join("data/processed")
    }
    /// `data/processed/interactions.parquet`
    pub fn interactions(&self) -> PathBuf {
        self.join("data/processed/interactions.parquet")
    }
    /// `data/processed/X_train_confidence.npz`
    pub fn train_confidence(&self) -> PathBuf {
        self.join("data/processed/X_train_confidence.npz")
    }
    /// `data/processed/user_item_mappings.json`
    pub fn user_item_mappings(&self) -> PathBuf {
        self.join("data/processed/user_item_mappings.json")
    }
    /// `data/processed/user_metadata.parquet`
    pub fn user_metadata(&self) -> PathBuf {
        self.join("data/processed/user_metadata.parquet")
    }
    /// `data/processed/data_version.json`: the content hash of the processed
    /// interactions and the derived outputs built from it (written last by a refresh).
    pub fn data_version_file(&self) -> PathBuf {
        self.join("data/processed/data_version.json")
    }
    /// `data/.commit_journal.json`: the renames of a data refresh's commit, present
    /// only between its commit point and the end of the renames; rolled forward by the
    /// next writer or reader of the data (see `recops-data`).
    pub fn data_commit_journal(&self) -> PathBuf {
        self.join("data/.commit_journal.json")
    }
    /// `data/.commit.lock`: the file lock that orders a data commit, its roll-forward
    /// and readers of the processed data.
    pub fn data_commit_lock(&self) -> PathBuf {
        self.join("data/.commit.lock")
    }
    /// `data/published_data/data_product.csv`: the product catalog.
    pub fn product_catalog(&self) -> PathBuf {
        self.join("data/published_data/data_product.csv")
    }
    /// `data/content_based_embeddings/product_embeddings.safetensors`
    pub fn product_embeddings(&self) -> PathBuf {
        self.join("data/content_based_embeddings/product_embeddings.safetensors")
    }

    // ---- artifacts/ and checkpoints/ ----------------------------------------------

    /// `artifacts/cf/`
    pub fn cf_artifacts_dir(&self) -> PathBuf {
        self.join("artifacts/cf")
    }
    /// `artifacts/cf/registry.json`
    pub fn registry(&self) -> PathBuf {
        self.join("artifacts/cf/registry.json")
    }
    /// `artifacts/cf/<model_id>/` (a [`ModelId`] is a plain name, safe as a folder).
    pub fn model_dir(&self, model_id: &ModelId) -> PathBuf {
        self.cf_artifacts_dir().join(model_id.as_str())
    }
    /// `checkpoints/<model_type>/`
    pub fn checkpoints_dir(&self, model_type: &str) -> Result<PathBuf> {
        validate_name("model type", model_type)?;
        Ok(self.join("checkpoints").join(model_type))
    }

    // ---- logs/ ------------------------------------------------------------------

    /// `logs/`
    pub fn logs_dir(&self) -> PathBuf {
        self.join("logs")
    }
    /// `logs/pipeline_metrics.db`
    pub fn pipeline_db(&self) -> PathBuf {
        self.join("logs/pipeline_metrics.db")
    }
    /// `logs/training_metrics.db`
    pub fn training_db(&self) -> PathBuf {
        self.join("logs/training_metrics.db")
    }
    /// `logs/service_metrics.db`
    pub fn service_db(&self) -> PathBuf {
        self.join("logs/service_metrics.db")
    }
    /// `logs/alert_state.db`: per-alert firing and notification state.
    pub fn alert_state_db(&self) -> PathBuf {
        self.join("logs/alert_state.db")
    }
    /// `logs/scheduler_state.db`: per scheduled job, its last fire, last success, next
    /// fire and the instance running now.
    pub fn scheduler_state_db(&self) -> PathBuf {
        self.join("logs/scheduler_state.db")
    }
    /// `logs/locks/`: one `<pipeline>.lock` file per [pipeline lock](crate).
    pub fn locks_dir(&self) -> PathBuf {
        self.join("logs/locks")
    }
    /// `logs/registry_audit.log`
    pub fn registry_audit_log(&self) -> PathBuf {
        self.join("logs/registry_audit.log")
    }
    /// `logs/deployment_history.json`
    pub fn deployment_history(&self) -> PathBuf {
        self.join("logs/deployment_history.json")
    }
    /// `logs/service/alerts.log`
    pub fn alerts_log(&self) -> PathBuf {
        self.join("logs/service/alerts.log")
    }
    /// `logs/service/recommender.log`
    pub fn recommender_log(&self) -> PathBuf {
        self.join("logs/service/recommender.log")
    }
    /// `logs/cf/<model_type>.log` (`als.log`, `bpr.log`).
    pub fn cf_log(&self, model_type: &str) -> Result<PathBuf> {
        validate_name("model type", model_type)?;
        Ok(self.join("logs/cf").join(format!("{model_type}.log")))
    }
    /// `logs/scheduler/scheduler.log`
    pub fn scheduler_log(&self) -> PathBuf {
        self.join("logs/scheduler/scheduler.log")
    }
    /// `logs/scheduler/jobs/<job>.log`: the output of one scheduled job.
    pub fn job_log(&self, job: &str) -> Result<PathBuf> {
        validate_name("job name", job)?;
        Ok(self.join("logs/scheduler/jobs").join(format!("{job}.log")))
    }
    /// `logs/health_check.log`
    pub fn health_check_log(&self) -> PathBuf {
        self.join("logs/health_check.log")
    }
    /// `logs/<command>.log`: the main log file of a command (`data_refresh.log`, ...).
    pub fn command_log(&self, command: &str) -> Result<PathBuf> {
        validate_name("command name", command)?;
        Ok(self.logs_dir().join(format!("{command}.log")))
    }

    // ---- reports/ ---------------------------------------------------------------

    /// `reports/drift/`
    pub fn drift_reports_dir(&self) -> PathBuf {
        self.join("reports/drift")
    }
    /// `reports/drift/drift_report_YYYYMMDD.json`
    pub fn drift_report(&self, date: chrono::NaiveDate) -> PathBuf {
        self.drift_reports_dir()
            .join(format!("drift_report_{}.json", date.format("%Y%m%d")))
    }
    /// `reports/drift/drift_summary.md`
    pub fn drift_summary(&self) -> PathBuf {
        self.join("reports/drift/drift_summary.md")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_architecture_table() {
        let home = Home::new("/srv/recops");
        let rel = |p: PathBuf| {
            p.strip_prefix("/srv/recops")
                .unwrap()
                .to_string_lossy()
                .into_owned()
        };
        assert_eq!(rel(home.pipeline_db()), "logs/pipeline_metrics.db");
        assert_eq!(rel(home.training_db()), "logs/training_metrics.db");
        assert_eq!(rel(home.service_db()), "logs/service_metrics.db");
        assert_eq!(rel(home.registry()), "artifacts/cf/registry.json");
        assert_eq!(
            rel(home.model_dir(&"als_20250115_103000".parse().unwrap())),
            "artifacts/cf/als_20250115_103000"
        );
        assert_eq!(rel(home.cf_log("bpr").unwrap()), "logs/cf/bpr.log");
        assert_eq!(rel(home.alerts_log()), "logs/service/alerts.log");
        assert_eq!(rel(home.scheduler_log()), "logs/scheduler/scheduler.log");
        assert_eq!(rel(home.scheduler_state_db()), "logs/scheduler_state.db");
        assert_eq!(
            rel(home.job_log("data_refresh").unwrap()),
            "logs/scheduler/jobs/data_refresh.log"
        );
        assert_eq!(
            rel(home.train_confidence()),
            "data/processed/X_train_confidence.npz"
        );
        assert_eq!(
            rel(home.drift_report(chrono::NaiveDate::from_ymd_opt(2025, 1, 20).unwrap())),
            "reports/drift/drift_report_20250120.json"
        );
        assert_eq!(rel(home.checkpoints_dir("als").unwrap()), "checkpoints/als");
        assert_eq!(rel(home.data_config()), "config/data_config.yaml");
        assert_eq!(
            rel(home.data_version_file()),
            "data/processed/data_version.json"
        );
        assert_eq!(rel(home.data_commit_journal()), "data/.commit_journal.json");
        assert_eq!(rel(home.data_commit_lock()), "data/.commit.lock");
        assert_eq!(rel(home.embeddings_config()), "config/embeddings.yaml");
        assert_eq!(rel(home.models_dir()), "models");
        assert_eq!(
            rel(home.product_embeddings()),
            "data/content_based_embeddings/product_embeddings.safetensors"
        );
    }

    #[test]
    fn names_that_are_paths_are_refused() {
        let home = Home::new("/srv/recops");
        assert!("../../etc/passwd".parse::<ModelId>().is_err());
        assert!(home.cf_log("als/../../x").is_err());
        assert!(home.job_log("").is_err());
    }

    #[test]
    fn resolve_creates_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("new-home");
        let home = Home::resolve(Some(root.clone())).unwrap();
        assert!(root.is_dir());
        let logs = home.ensure_dir(home.logs_dir()).unwrap();
        assert!(logs.is_dir());
    }
}
