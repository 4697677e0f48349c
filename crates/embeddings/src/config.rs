//! `config/embeddings.yaml`: the text-embedding model and the bert-embeddings job.

use std::path::{Path, PathBuf};

use recops_core::{Home, Validate, load_config};
use serde::Deserialize;

use crate::error::Result;

/// The shipped `config/embeddings.yaml`, used when the home has none.
pub const DEFAULT_EMBEDDINGS_CONFIG: &str = include_str!("../../../config/embeddings.yaml");

/// The model folder name that `scripts/fetch_models.sh` installs (the float32
/// variant; the int8 one is this name with [`ModelVariant::folder_suffix`]).
pub const DEFAULT_MODEL_NAME: &str = "multilingual-e5-small";

/// Which build of the installed model to use (`model.variant`).
///
/// Read from a string (so `${RECOPS_EMBEDDINGS_VARIANT:-int8}` expands like any value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum ModelVariant {
    /// Weights quantised to int8 (dynamic quantisation: activations are quantised at
    /// run time), `<models_dir>/multilingual-e5-small-int8`. About 1.8x less CPU per
    /// text; vectors within cosine 0.99 of float32. The default.
    #[default]
    Int8,
    /// Float32 weights, `<models_dir>/multilingual-e5-small`.
    Fp32,
}

impl ModelVariant {
    /// `int8` or `fp32`, as written in the config, `model.json` and embeddings files.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelVariant::Int8 => "int8",
            ModelVariant::Fp32 => "fp32",
        }
    }

    /// What the variant's folder adds to [`DEFAULT_MODEL_NAME`].
    pub fn folder_suffix(self) -> &'static str {
        match self {
            ModelVariant::Int8 => "-int8",
            ModelVariant::Fp32 => "",
        }
    }
}

impl TryFrom<String> for ModelVariant {
    type Error = String;

    fn try_from(value: String) -> std::result::Result<Self, String> {
        match value.trim() {
            "int8" => Ok(ModelVariant::Int8),
            "fp32" => Ok(ModelVariant::Fp32),
            other => Err(format!("expected int8 or fp32, got {other:?}")),
        }
    }
}

impl std::fmt::Display for ModelVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `config/embeddings.yaml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsConfig {
    /// Which model and runtime to use.
    pub model: ModelSettings,
    /// How product embeddings are generated.
    #[serde(default)]
    pub generation: GenerationSettings,
    /// When embeddings count as stale.
    #[serde(default)]
    pub freshness: FreshnessSettings,
}

/// `model:` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// Folder set up by `scripts/fetch_models.sh`; empty = `<home>/models` when it
    /// exists, else the repository's `models/`.
    #[serde(default)]
    pub models_dir: String,
    /// Which variant of the installed model: `int8` (default,
    /// `<models_dir>/multilingual-e5-small-int8`) or `fp32`
    /// (`<models_dir>/multilingual-e5-small`). Only picks the folder when `model_dir`
    /// is empty; the variant recorded with the vectors is the folder's own
    /// (`model.json`'s `variant`).
    #[serde(default)]
    pub variant: ModelVariant,
    /// Folder with `model.onnx` + `tokenizer.json` (+ optional `model.json`); empty =
    /// `<models_dir>/multilingual-e5-small` + the variant's suffix.
    #[serde(default)]
    pub model_dir: String,
    /// ONNX Runtime shared library; empty = `$ORT_DYLIB_PATH`, else
    /// `<models_dir>/onnxruntime/libonnxruntime.so.*`.
    #[serde(default)]
    pub onnxruntime_library: String,
    /// Text put before every product text; `None` = the model's own (model.json).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Tokens per text including special tokens (default 256); longer texts are
    /// truncated. Capped by the model's maximum.
    #[serde(default = "default_max_length")]
    pub max_length_tokens: usize,
    /// ONNX Runtime intra-op threads; 0 = the runtime's choice (one per core).
    #[serde(default)]
    pub intra_op_threads: usize,
}

/// `generation:` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GenerationSettings {
    /// Texts per forward pass (default 32, the spec's).
    pub batch_size: usize,
    /// Batch texts of similar token length together (default true): less padding,
    /// identical vectors.
    #[serde(default = "default_true")]
    pub sort_by_length: bool,
    /// Tokens per forward pass (padding included) when sorting by length (default
    /// 512: small passes stay in the CPU caches).
    #[serde(default = "default_max_batch_tokens")]
    pub max_batch_tokens: usize,
}

fn default_max_batch_tokens() -> usize {
    crate::encoder::DEFAULT_MAX_BATCH_TOKENS
}

/// `freshness:` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FreshnessSettings {
    /// Embeddings older than this many days are stale (default 30, the spec's).
    pub stale_after_days: u32,
}

fn default_max_length() -> usize {
    256
}

fn default_true() -> bool {
    true
}

impl Default for GenerationSettings {
    fn default() -> Self {
        GenerationSettings {
            batch_size: 32,
            sort_by_length: true,
            max_batch_tokens: default_max_batch_tokens(),
        }
    }
}

impl Default for FreshnessSettings {
    fn default() -> Self {
        FreshnessSettings {
            stale_after_days: 30,
        }
    }
}

impl Validate for EmbeddingsConfig {
    fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if !(3..=8192).contains(&self.model.max_length_tokens) {
            p.push((
                "model.max_length_tokens".into(),
                format!(
                    "expected 3..=8192 tokens (room for the special tokens), got {}",
                    self.model.max_length_tokens
                ),
            ));
        }
        if self.model.intra_op_threads > 1024 {
            p.push((
                "model.intra_op_threads".into(),
                format!(
                    "expected 0 (automatic) to 1024 threads, got {}",
                    self.model.intra_op_threads
                ),
            ));
        }
        if !(1..=4096).contains(&self.generation.batch_size) {
            p.push((
                "generation.batch_size".into(),
                format!(
                    "expected 1..=4096 texts, got {}",
                    self.generation.batch_size
                ),
            ));
        }
        if !(1..=1_000_000).contains(&self.generation.max_batch_tokens) {
            p.push((
                "generation.max_batch_tokens".into(),
                format!(
                    "expected 1..=1000000 tokens, got {}",
                    self.generation.max_batch_tokens
                ),
            ));
        }
        if self.freshness.stale_after_days == 0 {
            p.push((
                "freshness.stale_after_days".into(),
                "expected a number of days > 0".into(),
            ));
        }
        p
    }
}

impl EmbeddingsConfig {
    /// Loads `config/embeddings.yaml` of `home`, or the built-in default.
    pub fn load(home: &Home) -> Result<Self> {
        Ok(load_config(
            &home.embeddings_config(),
            DEFAULT_EMBEDDINGS_CONFIG,
        )?)
    }

    /// The models folder: `model.models_dir` (relative to the home), else
    /// `<home>/models` when it exists, else the repository's `models/`
    /// ([`repository_models_dir`]).
    pub fn models_dir(&self, home: &Home) -> PathBuf {
        if !self.model.models_dir.trim().is_empty() {
            return home.root().join(self.model.models_dir.trim());
        }
        let in_home = home.models_dir();
        if in_home.is_dir() {
            in_home
        } else {
            repository_models_dir()
        }
    }

    /// The model folder: `model.model_dir` (relative to the home), else
    /// `<models_dir>/multilingual-e5-small-int8` (`model.variant: int8`) or
    /// `<models_dir>/multilingual-e5-small` (`fp32`).
    pub fn model_dir(&self, home: &Home) -> PathBuf {
        if !self.model.model_dir.trim().is_empty() {
            return home.root().join(self.model.model_dir.trim());
        }
        self.models_dir(home).join(format!(
            "{DEFAULT_MODEL_NAME}{}",
            self.model.variant.folder_suffix()
        ))
    }

    /// Whether the model folder is the one `model.variant` picks (no `model.model_dir`).
    pub fn variant_picks_the_folder(&self) -> bool {
        self.model.model_dir.trim().is_empty()
    }

    /// `model.onnxruntime_library` (relative to the home), if set.
    pub fn onnxruntime_library(&self, home: &Home) -> Option<PathBuf> {
        let s = self.model.onnxruntime_library.trim();
        (!s.is_empty()).then(|| home.root().join(s))
    }
}

/// The `models/` folder of the recops repository this crate was built from, where
/// `scripts/fetch_models.sh` installs by default.
pub fn repository_models_dir() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    match crate_dir.parent().and_then(Path::parent) {
        Some(repo) => repo.join("models"),
        None => crate_dir.join("models"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recops_core::{ConfigFormat, parse_config};
    use std::collections::HashMap;

    fn parse(text: &str, env: &HashMap<String, String>) -> recops_core::Result<EmbeddingsConfig> {
        parse_config(
            text,
            Path::new("config/embeddings.yaml"),
            ConfigFormat::Yaml,
            env,
        )
    }

    #[test]
    fn shipped_config_parses_with_the_spec_defaults() {
        let cfg = parse(DEFAULT_EMBEDDINGS_CONFIG, &HashMap::new()).unwrap();
        assert_eq!(cfg.generation.batch_size, 32);
        assert_eq!(cfg.freshness.stale_after_days, 30);
        assert_eq!(cfg.model.max_length_tokens, 256);
        assert_eq!(cfg.model.prefix, None);
        assert!(cfg.model.models_dir.is_empty());
        assert!(cfg.generation.sort_by_length);
        assert_eq!(cfg.model.variant, ModelVariant::Int8);
        assert_eq!(cfg.generation.max_batch_tokens, 512);
    }

    #[test]
    fn the_variant_picks_the_model_folder() {
        let home = Home::new("/srv/recops");
        let models = "models_dir: ${RECOPS_MODELS_DIR:-}";
        let text = DEFAULT_EMBEDDINGS_CONFIG.replace(models, "models_dir: /m");
        let cfg = parse(&text, &HashMap::new()).unwrap();
        assert_eq!(
            cfg.model_dir(&home),
            PathBuf::from("/m/multilingual-e5-small-int8")
        );
        assert!(cfg.variant_picks_the_folder());
        let env = HashMap::from([("RECOPS_EMBEDDINGS_VARIANT".to_owned(), "fp32".to_owned())]);
        let cfg = parse(&text, &env).unwrap();
        assert_eq!(cfg.model.variant, ModelVariant::Fp32);
        assert_eq!(
            cfg.model_dir(&home),
            PathBuf::from("/m/multilingual-e5-small")
        );
        let env = HashMap::from([("RECOPS_EMBEDDINGS_VARIANT".to_owned(), "int4".to_owned())]);
        let err = parse(&text, &env).unwrap_err().to_string();
        // (Substituted values never appear in config errors: the key and the rule do.)
        assert!(err.contains("model.variant"), "{err}");
        assert!(err.contains("expected int8 or fp32"), "{err}");
    }

    #[test]
    fn environment_points_at_another_models_folder() {
        let env = HashMap::from([("RECOPS_MODELS_DIR".to_owned(), "/srv/models".to_owned())]);
        let cfg = parse(DEFAULT_EMBEDDINGS_CONFIG, &env).unwrap();
        let home = Home::new("/srv/recops");
        assert_eq!(cfg.models_dir(&home), PathBuf::from("/srv/models"));
        assert_eq!(
            cfg.model_dir(&home),
            PathBuf::from("/srv/models/multilingual-e5-small-int8")
        );
    }

    #[test]
    fn relative_paths_are_relative_to_the_home() {
        let text = DEFAULT_EMBEDDINGS_CONFIG
            .replace(
                "model_dir: ${RECOPS_EMBEDDINGS_MODEL_DIR:-}",
                "model_dir: models/phobert",
            )
            .replace(
                "onnxruntime_library: \"\"",
                "onnxruntime_library: lib/libonnxruntime.so",
            );
        let cfg = parse(&text, &HashMap::new()).unwrap();
        let home = Home::new("/srv/recops");
        assert_eq!(
            cfg.model_dir(&home),
            PathBuf::from("/srv/recops/models/phobert")
        );
        assert_eq!(
            cfg.onnxruntime_library(&home),
            Some(PathBuf::from("/srv/recops/lib/libonnxruntime.so"))
        );
    }

    #[test]
    fn without_a_models_folder_in_the_home_the_repository_one_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let cfg = parse(DEFAULT_EMBEDDINGS_CONFIG, &HashMap::new()).unwrap();
        assert_eq!(cfg.models_dir(&home), repository_models_dir());
        std::fs::create_dir(home.models_dir()).unwrap();
        assert_eq!(cfg.models_dir(&home), home.models_dir());
    }

    #[test]
    fn bad_values_are_all_reported_with_their_keys() {
        let text = DEFAULT_EMBEDDINGS_CONFIG
            .replace("batch_size: 32", "batch_size: 0")
            .replace("stale_after_days: 30", "stale_after_days: 0")
            .replace("max_length_tokens: 256", "max_length_tokens: 2");
        let err = parse(&text, &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("generation.batch_size"), "{err}");
        assert!(err.contains("freshness.stale_after_days"), "{err}");
        assert!(err.contains("model.max_length_tokens"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = DEFAULT_EMBEDDINGS_CONFIG.replace("batch_size: 32", "batch_sise: 32");
        let err = parse(&text, &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("batch_sise"), "{err}");
    }
}
