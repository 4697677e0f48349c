//! The `bert_embeddings` job (spec Component 8, `automation/bert_embeddings.py`): product
//! embeddings from the catalog, weekly (Tuesday 03:00 in the scheduler).
//!
//! [`run`]: take the `bert_embeddings` [`PipelineLock`], record a run in the
//! [`PipelineTracker`], load `config/embeddings.yaml` and the model, generate
//! `data/content_based_embeddings/product_embeddings.safetensors` from
//! `data/published_data/data_product.csv` (only products whose text changed go through
//! the model, or the statistics say why all did), complete or fail the run, and alert
//! on failure (`pipeline_bert_embeddings_failed` through recops-alerting). [`check`] is the spec's freshness check (`--check`).

use std::path::PathBuf;

use recops_alerting::Severity;
use recops_core::{Clock, Home, SharedClock};
use recops_embeddings::{
    EmbeddingsConfig, Encoder, Freshness, FreshnessOptions, GenerateOptions, GenerationStats,
    ModelSpec, ProductEmbedder, check_embedding_freshness, read_catalog,
};
use recops_tracking::LockHolder;
use serde::Serialize;
use serde_json::json;

use crate::error::Result;
use crate::job::{Finish, Job, JobOutcome, JobStatus};

/// The pipeline (and lock) name.
pub const PIPELINE: &str = "bert_embeddings";

/// Options of [`run`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BertEmbeddingsOptions {
    /// Re-embed every product, even those whose text and model are unchanged.
    pub full: bool,
    /// Texts per forward pass; `None` = `generation.batch_size` of the config (32).
    pub batch_size: Option<usize>,
    /// Draw a progress bar on stderr when it is a terminal.
    pub progress: bool,
}

/// What [`run`] did (`bert-embeddings --json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BertEmbeddingsResult {
    /// `success` (the file was written) or `skipped` (another run holds the lock).
    pub status: JobStatus,
    /// The pipeline run id (none when skipped).
    pub run_id: Option<String>,
    /// Why the run was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who holds the lock, when skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<LockHolder>,
    /// The generation statistics.
    #[serde(flatten)]
    pub stats: Option<GenerationStats>,
}

/// Runs the job on `home` as a [`Job`] with `clock`. A failure is recorded in the
/// pipeline database and alerted (`pipeline_bert_embeddings_failed`, warning: the
/// previous vectors stay in place), then returned; the previous embeddings file is left
/// as it was.
pub fn run(
    home: &Home,
    options: &BertEmbeddingsOptions,
    clock: &SharedClock,
) -> Result<BertEmbeddingsResult> {
    let outcome = Job::new(home, PIPELINE, clock.clone())
        .metadata(json!({"full": options.full, "batch_size": options.batch_size}))
        .failure_severity(Severity::Warning)
        .run(|_| {
            let stats = generate(home, options, clock)?;
            let metadata = serde_json::to_value(&stats).unwrap_or_else(|_| json!({}));
            let message = format!(
                "BERT embeddings completed in {:.1}s (model load included)",
                stats.duration_seconds
            );
            Ok(Finish::success(stats, metadata).message(message))
        })?;
    Ok(match outcome {
        JobOutcome::Skipped(skip, _) => BertEmbeddingsResult {
            status: JobStatus::Skipped,
            run_id: None,
            message: Some(skip.message),
            holder: skip.holder,
            stats: None,
        },
        JobOutcome::Ran(ran) => BertEmbeddingsResult {
            status: ran.status,
            run_id: ran.run_id,
            message: None,
            holder: None,
            stats: Some(ran.output),
        },
    })
}

fn generate(
    home: &Home,
    options: &BertEmbeddingsOptions,
    clock: &SharedClock,
) -> Result<GenerationStats> {
    let config = EmbeddingsConfig::load(home)?;
    // A bad catalog fails in milliseconds, before the model is loaded.
    read_catalog(&home.product_catalog())?;
    let spec = ModelSpec::from_config(&config, home)?;
    let mut encoder = Encoder::open(spec)?;
    let batch_size = options.batch_size.unwrap_or(config.generation.batch_size);
    let output = home.ensure_parent(home.product_embeddings())?;
    let stats = ProductEmbedder::new(
        &mut encoder,
        clock.clone(),
        GenerateOptions {
            sort_by_length: config.generation.sort_by_length,
            max_batch_tokens: config.generation.max_batch_tokens,
            full: options.full,
            progress: options.progress,
        },
    )
    .generate_embeddings(&home.product_catalog(), &output, batch_size)?;
    Ok(stats)
}

/// The result of [`check`]: the spec's freshness fields, plus why the configured model
/// could not be compared when it could not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FreshnessReport {
    /// The embeddings file checked.
    pub path: PathBuf,
    /// The freshness fields.
    #[serde(flatten)]
    pub freshness: Freshness,
    /// Why the configured model could not be read (then `model_mismatch` is false).
    pub configured_model_error: Option<String>,
}

/// The spec's `check_embedding_freshness` on the home's embeddings file, comparing
/// with the configured model (no runtime needed).
pub fn check(home: &Home, clock: &dyn Clock) -> Result<FreshnessReport> {
    let config = EmbeddingsConfig::load(home)?;
    let (expected, configured_model_error) = match ModelSpec::configured_identity(&config, home) {
        Ok(identity) => (Some(identity), None),
        Err(e) => (None, Some(recops_core::error_chain(&e))),
    };
    let path = home.product_embeddings();
    let freshness = check_embedding_freshness(
        &path,
        &FreshnessOptions {
            clock,
            stale_after_days: config.freshness.stale_after_days,
            expected: expected.as_ref(),
        },
    )?;
    Ok(FreshnessReport {
        path,
        freshness,
        configured_model_error,
    })
}

/// The setup script, `scripts/fetch_models.sh` of the repository this was built from.
pub fn setup_script() -> PathBuf {
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap_or(crate_dir)
        .join("scripts/fetch_models.sh")
}

/// `recops embedding-model fetch`: runs [`setup_script`] for the models folder the home's config
/// uses (`--force` rebuilds the model). Its output goes straight to the terminal;
/// returns whether it succeeded.
pub fn fetch_models(home: &Home, force: bool) -> Result<bool> {
    let config = EmbeddingsConfig::load(home)?;
    let script = setup_script();
    if !script.is_file() {
        return Err(crate::Error::Io {
            action: "setup script not found (run scripts/fetch_models.sh from the recops repository)",
            path: script,
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let models_dir = config.models_dir(home);
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(&script).arg("--models-dir").arg(&models_dir);
    if force {
        cmd.arg("--force");
    }
    let status = cmd.status().map_err(|e| crate::Error::Io {
        action: "cannot run bash",
        path: script.clone(),
        source: e,
    })?;
    Ok(status.success())
}

/// What `recops embedding-model check` found: the model loads and separates texts sensibly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelsCheck {
    /// Model name.
    pub model: String,
    /// `model.onnx` used.
    pub model_path: PathBuf,
    /// ONNX Runtime library loaded.
    pub runtime_library: PathBuf,
    /// Vector length.
    pub dim: usize,
    /// Prefix put before every text.
    pub prefix: String,
    /// Tokens per text.
    pub max_length: usize,
    /// Cosines of the models README's check sentences: cleanser/cream,
    /// cleanser/drill, cream/drill (e5 with "passage: ": 0.916, 0.843, 0.842).
    pub cosines: [f32; 3],
    /// The two cosmetics are closer to each other than either is to the drill.
    pub ordering_ok: bool,
}

/// `recops embedding-model check`: opens the configured model (runtime, checksums, signature,
/// test run) and embeds three check sentences.
pub fn check_models(home: &Home) -> Result<ModelsCheck> {
    let config = EmbeddingsConfig::load(home)?;
    let spec = ModelSpec::from_config(&config, home)?;
    let mut encoder = Encoder::open(spec)?;
    let texts = [
        "Sữa rửa mặt dịu nhẹ cho da nhạy cảm, làm sạch sâu và cấp ẩm.",
        "Kem dưỡng ẩm chống lão hóa giúp làn da mềm mịn, giảm nếp nhăn.",
        "Máy khoan pin cầm tay 18V kèm hai pin và bộ mũi khoan.",
    ];
    let v = encoder.embed_batch(&texts)?;
    let cos = |a: usize, b: usize| {
        v.row(a)
            .iter()
            .zip(v.row(b))
            .map(|(x, y)| x * y)
            .sum::<f32>()
    };
    let cosines = [cos(0, 1), cos(0, 2), cos(1, 2)];
    let spec = encoder.spec();
    Ok(ModelsCheck {
        model: spec.name.clone(),
        model_path: spec.model_path.clone(),
        runtime_library: spec.runtime_library.clone(),
        dim: encoder.dim(),
        prefix: spec.prefix.clone(),
        max_length: spec.max_length,
        cosines,
        ordering_ok: cosines[0] > cosines[1] && cosines[0] > cosines[2],
    })
}

impl ModelsCheck {
    /// A few lines for people.
    pub fn to_text(&self) -> String {
        format!(
            "model {} ({}-dim, prefix {:?}, {} tokens)
  {}
  runtime {}
  check cosines: cleanser/cream {:.3}, cleanser/drill {:.3}, cream/drill {:.3} -> {}
",
            self.model,
            self.dim,
            self.prefix,
            self.max_length,
            self.model_path.display(),
            self.runtime_library.display(),
            self.cosines[0],
            self.cosines[1],
            self.cosines[2],
            if self.ordering_ok {
                "ok (the cosmetics are closest)"
            } else {
                "WRONG ORDER: this model does not separate these texts"
            }
        )
    }
}

/// A few lines for people: what [`run`] did.
pub fn outcome_summary(result: &BertEmbeddingsResult) -> String {
    let Some(stats) = &result.stats else {
        return format!(
            "skipped: {}\n",
            result.message.as_deref().unwrap_or_default()
        );
    };
    let run_id = result.run_id.as_deref().unwrap_or("-");
    let mut s = format!(
        "wrote {} vectors (dimension {}) to {}\n  model {} ({}): {} re-embedded, {} unchanged kept, {} removed\n",
        stats.num_products,
        stats.embedding_dim,
        stats.output_path,
        stats.model_name,
        stats.model_variant,
        stats.reembedded,
        stats.reused,
        stats.removed
    );
    if let Some(reason) = &stats.full_reason {
        s.push_str(&format!("  all products re-embedded: {reason}\n"));
    }
    s.push_str(&format!(
        "  {} empty descriptions (name only), {} rows without text skipped, {} texts truncated\n  {:.1} s{} (run {run_id})\n",
        stats.empty_descriptions,
        stats.skipped_without_text,
        stats.truncated,
        stats.duration_seconds,
        stats
            .texts_per_second
            .map(|t| format!(", {t:.0} texts/s"))
            .unwrap_or_default(),
    ));
    s
}

/// A few lines for people: the freshness report.
pub fn freshness_summary(report: &FreshnessReport) -> String {
    let f = &report.freshness;
    let mut s = format!(
        "{}\n  created {} by {} {} ({} days ago)\n  {} vectors of dimension {}\n",
        report.path.display(),
        f.created_at,
        f.model_name,
        f.model_variant,
        f.age_days,
        f.num_embeddings,
        f.embedding_dim
    );
    let verdict = if f.is_stale { "STALE" } else { "fresh" };
    s.push_str(&format!(
        "  {verdict} (stale after {} days{})\n",
        f.stale_after_days,
        if f.model_mismatch {
            ", or when made by another model"
        } else {
            ""
        }
    ));
    for reason in &f.mismatch_reasons {
        s.push_str(&format!("  configured model differs: {reason}\n"));
    }
    if let Some(e) = &report.configured_model_error {
        s.push_str(&format!("  configured model not compared: {e}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use recops_core::{FixedClock, SystemClock};
    use recops_embeddings::{EmbeddingsFile, EmbeddingsMetadata, ModelIdentity};
    use recops_tracking::{PipelineLock, PipelineTracker};

    fn write_embeddings(home: &Home, created: chrono::DateTime<Utc>) {
        let file = EmbeddingsFile {
            metadata: EmbeddingsMetadata {
                created_at: created,
                model: ModelIdentity {
                    name: "intfloat/multilingual-e5-small".into(),
                    variant: "int8".into(),
                    model_sha256: "a".repeat(64),
                    tokenizer_sha256: "b".repeat(64),
                    prefix: "passage: ".into(),
                    max_length: 256,
                },
                dim: 2,
                num_embeddings: 2,
                catalog_sha256: "c".repeat(64),
            },
            product_ids: vec![1, 2],
            vectors: vec![1.0, 0.0, 0.0, 1.0],
            text_sha256: vec![[0; 32], [1; 32]],
        };
        file.write(&home.product_embeddings()).unwrap();
    }

    #[test]
    fn the_hourly_health_check_alerts_stale_embeddings_once() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let created = Utc.with_ymd_and_hms(2025, 1, 14, 3, 0, 0).unwrap();
        write_embeddings(&home, created);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let clock = FixedClock::new(created + Duration::days(40));
        let options = crate::health_check::HealthJobOptions {
            service_url: Some(format!("http://127.0.0.1:{port}")),
            clock: clock.shared(),
            ..Default::default()
        };
        for _ in 0..3 {
            crate::health_check::run_health_check(&home, &options).unwrap();
            clock.advance(Duration::minutes(60));
        }
        let log = std::fs::read_to_string(home.alerts_log()).unwrap();
        let fired = log
            .lines()
            .filter(|l| l.contains("| embeddings_stale: "))
            .count();
        assert_eq!(fired, 1, "{log}");
    }

    #[test]
    fn check_reports_age_and_names_a_model_it_cannot_compare() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        // A model folder that does not exist: the check still reports the age.
        std::fs::create_dir_all(home.config_dir()).unwrap();
        std::fs::write(
            home.embeddings_config(),
            recops_embeddings::DEFAULT_EMBEDDINGS_CONFIG.replace(
                "model_dir: ${RECOPS_EMBEDDINGS_MODEL_DIR:-}",
                "model_dir: no-such-model",
            ),
        )
        .unwrap();
        let created = Utc.with_ymd_and_hms(2025, 1, 14, 3, 0, 0).unwrap();
        write_embeddings(&home, created);
        let clock = FixedClock::new(created + Duration::days(40));
        let report = check(&home, &clock).unwrap();
        assert_eq!(report.freshness.age_days, 40);
        assert!(report.freshness.is_stale);
        assert!(!report.freshness.model_mismatch);
        let err = report.configured_model_error.clone().unwrap();
        assert!(err.contains("no-such-model"), "{err}");
        let text = freshness_summary(&report);
        assert!(text.contains("STALE"), "{text}");
        assert!(text.contains("40 days ago"), "{text}");
        assert!(
            text.contains("by intfloat/multilingual-e5-small int8 (40 days ago)"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["model_variant"], "int8");
        assert_eq!(json["age_days"], 40);
        assert_eq!(json["is_stale"], true);
        assert_eq!(json["num_embeddings"], 2);
        assert_eq!(json["embedding_dim"], 2);
    }

    #[test]
    fn check_without_a_file_says_what_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let err = check(&home, &SystemClock).unwrap_err().to_string();
        assert!(err.contains("run bert-embeddings"), "{err}");
    }

    #[test]
    fn a_held_lock_skips_the_run_without_touching_anything() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let held = PipelineLock::acquire(&home, PIPELINE).unwrap();
        assert!(held.acquired());
        let outcome = run(
            &home,
            &BertEmbeddingsOptions::default(),
            &SystemClock::shared(),
        )
        .unwrap();
        assert_eq!(outcome.status, JobStatus::Skipped);
        let reason = outcome.message.as_deref().unwrap();
        assert!(reason.contains("is in progress"), "{reason}");
        assert_eq!(outcome.holder.as_ref().unwrap().pid, std::process::id());
        assert!(
            !home.pipeline_db().exists() || {
                let t = PipelineTracker::open(&home).unwrap();
                t.get_recent_runs(Some(PIPELINE), 10, None)
                    .unwrap()
                    .is_empty()
            }
        );
        assert!(outcome_summary(&outcome).starts_with("skipped: "));
    }

    #[test]
    fn a_failed_run_is_recorded_and_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let created = Utc.with_ymd_and_hms(2025, 1, 14, 3, 0, 0).unwrap();
        write_embeddings(&home, created);
        let before = std::fs::read(home.product_embeddings()).unwrap();
        // The catalog is missing: the run fails (before or after finding the model).
        let clock = FixedClock::new(created + Duration::days(1)).shared();
        let err = run(&home, &BertEmbeddingsOptions::default(), &clock).unwrap_err();
        let crate::Error::JobFailed { source, .. } = &err else {
            panic!("{err:?}")
        };
        let tracker = PipelineTracker::open(&home).unwrap();
        let runs = tracker.get_recent_runs(Some(PIPELINE), 10, None).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, recops_tracking::RunStatus::Failed);
        assert_eq!(
            runs[0].error_message.as_deref(),
            Some(recops_core::error_chain(&**source).as_str())
        );
        // The run was recorded with the injected clock.
        assert!(
            runs[0].started_at.starts_with("2025-01-15"),
            "{}",
            runs[0].started_at
        );
        assert_eq!(std::fs::read(home.product_embeddings()).unwrap(), before);
        // The failure was alerted (the log channel is always on).
        let alerts = std::fs::read_to_string(home.alerts_log()).unwrap();
        assert!(
            alerts.contains("pipeline_bert_embeddings_failed"),
            "{alerts}"
        );
        assert!(alerts.contains("data_product.csv"), "{alerts}");
        // The lock was released.
        assert!(PipelineLock::acquire(&home, PIPELINE).unwrap().acquired());
    }
}
