use std::path::PathBuf;

/// What to run when the model or the runtime is missing.
pub(crate) const SETUP_HINT: &str =
    "run scripts/fetch_models.sh in the recops repository (or `recops models fetch`)";

/// Errors of recops-embeddings.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation failed on `path` (the cause is the source).
    #[error("{action} {path}")]
    Io {
        /// What was being done ("cannot read", ...).
        action: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A core problem (config file, atomic write, path).
    #[error(transparent)]
    Core(#[from] recops_core::Error),

    /// No ONNX Runtime shared library was found.
    #[error(
        "ONNX Runtime library not found (looked at: {}); {SETUP_HINT}, or set ORT_DYLIB_PATH \
         or model.onnxruntime_library in config/embeddings.yaml",
        join_paths(searched)
    )]
    RuntimeMissing {
        /// Every place looked at, in order.
        searched: Vec<PathBuf>,
    },

    /// The ONNX Runtime library exists but could not be loaded.
    #[error(
        "cannot load ONNX Runtime from {path}: {message}; {SETUP_HINT} (add --force to \
         reinstall), or point ORT_DYLIB_PATH at a libonnxruntime 1.17 or newer"
    )]
    RuntimeLoad {
        /// The library file.
        path: PathBuf,
        /// What the loader said.
        message: String,
    },

    /// This process already loaded ONNX Runtime from another file.
    #[error(
        "ONNX Runtime is already loaded from {loaded} in this process; cannot also load {requested}"
    )]
    RuntimeConflict {
        /// The library in use.
        loaded: PathBuf,
        /// The library asked for.
        requested: PathBuf,
    },

    /// A model file (model.onnx or tokenizer.json) does not exist.
    #[error(
        "{what} not found: {path}; {SETUP_HINT}, or set model.model_dir in config/embeddings.yaml"
    )]
    ModelMissing {
        /// "model" or "tokenizer".
        what: &'static str,
        /// The missing file.
        path: PathBuf,
    },

    /// The folder of the configured `model.variant` is not set up (a models folder from
    /// before the int8 variant existed, or a partial copy).
    #[error(
        "the {variant} model is not set up: {path} not found; {SETUP_HINT} (it builds both \
         variants), or choose the other one with model.variant in config/embeddings.yaml"
    )]
    VariantMissing {
        /// `int8` or `fp32`.
        variant: &'static str,
        /// The missing file.
        path: PathBuf,
    },

    /// The model file is not a usable ONNX model.
    #[error("invalid model {path}: {message}")]
    InvalidModel {
        /// The model file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// The model's inputs or outputs are not those of a BERT-like text encoder.
    #[error(
        "model {path} has inputs [{}] and outputs [{}]; expected a BERT-like text encoder with \
         int64 inputs input_ids and attention_mask (token_type_ids optional) and a float32 \
         output last_hidden_state [batch, sequence, hidden]{}",
        inputs.join(", "), outputs.join(", "), detail_suffix(detail)
    )]
    UnexpectedModelSignature {
        /// The model file.
        path: PathBuf,
        /// The model's input names.
        inputs: Vec<String>,
        /// The model's output names.
        outputs: Vec<String>,
        /// The specific problem, when there is one beyond the names.
        detail: Option<String>,
    },

    /// tokenizer.json does not load, or lacks something the encoder needs.
    #[error("invalid tokenizer {path}: {message}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A file's sha256 differs from the one its model.json records.
    #[error(
        "{path} has sha256 {actual} but {descriptor} records {expected}: the file is damaged or \
         was replaced; {SETUP_HINT} with --force, or update {descriptor}"
    )]
    ChecksumMismatch {
        /// The checked file.
        path: PathBuf,
        /// The sha256 recorded in model.json.
        expected: String,
        /// The sha256 of the file now.
        actual: String,
        /// The model.json that records it.
        descriptor: PathBuf,
    },

    /// model.json exists but cannot be used.
    #[error("invalid model description {path}: {message}")]
    Descriptor {
        /// The model.json file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// Tokenising or running the model failed on some texts.
    #[error("embedding failed with model {model}: {message}")]
    Inference {
        /// The model file.
        model: PathBuf,
        /// What failed.
        message: String,
    },

    /// The product catalog is missing columns, has a bad row, or is empty.
    #[error("invalid product catalog {path}{}: {message}", line_suffix(*line))]
    Catalog {
        /// The catalog file.
        path: PathBuf,
        /// 1-based line of the problem (the header is line 1), when it is one line.
        line: Option<u64>,
        /// What is wrong and what was expected.
        message: String,
    },

    /// No embeddings file exists yet.
    #[error("no embeddings file at {path}; run bert-embeddings to create it")]
    EmbeddingsMissing {
        /// The expected file.
        path: PathBuf,
    },

    /// The embeddings file exists but is not a valid recops embeddings file.
    #[error("invalid embeddings file {path}: {message}")]
    EmbeddingsFile {
        /// The embeddings file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nowhere: no models folder exists".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_ref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

fn line_suffix(line: Option<u64>) -> String {
    line.map(|l| format!(" line {l}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_runtime_says_where_it_looked_and_what_to_run() {
        let e = Error::RuntimeMissing {
            searched: vec![PathBuf::from("/m/onnxruntime/libonnxruntime.so.1.32.0")],
        };
        let msg = e.to_string();
        assert!(
            msg.contains("/m/onnxruntime/libonnxruntime.so.1.32.0"),
            "{msg}"
        );
        assert!(msg.contains("scripts/fetch_models.sh"), "{msg}");
        assert!(msg.contains("ORT_DYLIB_PATH"), "{msg}");
    }

    #[test]
    fn a_missing_variant_names_the_file_and_what_to_run() {
        let e = Error::VariantMissing {
            variant: "int8",
            path: PathBuf::from("/m/multilingual-e5-small-int8/model.onnx"),
        };
        let msg = e.to_string();
        assert!(msg.starts_with("the int8 model is not set up"), "{msg}");
        assert!(
            msg.contains("/m/multilingual-e5-small-int8/model.onnx"),
            "{msg}"
        );
        assert!(msg.contains("scripts/fetch_models.sh"), "{msg}");
        assert!(msg.contains("model.variant"), "{msg}");
    }

    #[test]
    fn catalog_errors_name_the_line() {
        let e = Error::Catalog {
            path: PathBuf::from("data_product.csv"),
            line: Some(7),
            message: "product_id \"x\" is not an integer".into(),
        };
        assert_eq!(
            e.to_string(),
            "invalid product catalog data_product.csv line 7: product_id \"x\" is not an integer"
        );
    }
}
