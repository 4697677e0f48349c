//! Shared helpers: finding the runtime and the models, temporary model folders.

use std::path::{Path, PathBuf};

use recops_embeddings::{Encoder, ModelSpec, find_runtime_library, repository_models_dir};

/// The fixtures folder of this crate.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn required() -> bool {
    std::env::var("RECOPS_REQUIRE_MODELS").is_ok_and(|v| v == "1")
}

/// The models folder: `$RECOPS_MODELS_DIR` (as the shipped config reads it), else the
/// repository's `models/`.
pub(crate) fn models_dir() -> PathBuf {
    std::env::var_os("RECOPS_MODELS_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(repository_models_dir, PathBuf::from)
}

/// The ONNX Runtime library, or `None` (with a notice) when the setup has not run.
pub(crate) fn runtime() -> Option<PathBuf> {
    match find_runtime_library(None, &models_dir()) {
        Ok(path) => Some(path),
        Err(e) if required() => panic!("RECOPS_REQUIRE_MODELS=1 but {e}"),
        Err(e) => {
            eprintln!("NOTICE: skipping a test that needs ONNX Runtime: {e}");
            None
        }
    }
}

/// The real model folder (`multilingual-e5-small`, the float32 variant, or
/// `multilingual-e5-small-int8`), or `None` (with a notice) when the setup has not run.
pub(crate) fn real_model_dir(folder: &str) -> Option<PathBuf> {
    let dir = models_dir().join(folder);
    if dir.join("model.json").is_file() {
        return Some(dir);
    }
    if required() {
        panic!(
            "RECOPS_REQUIRE_MODELS=1 but {} has no model.json",
            dir.display()
        );
    }
    eprintln!(
        "NOTICE: skipping a real-model test: {} is not set up (run scripts/fetch_models.sh)",
        dir.display()
    );
    None
}

/// A copy of the tiny fixture model in a temporary folder (so tests can change it).
pub(crate) fn tiny_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["model.onnx", "tokenizer.json"] {
        std::fs::copy(fixtures().join("tiny").join(name), dir.path().join(name)).unwrap();
    }
    dir
}

/// The tiny model's spec with the `passage: ` prefix and 16 tokens.
pub(crate) fn tiny_spec(dir: &Path, runtime: PathBuf) -> ModelSpec {
    let mut spec = ModelSpec::from_dir(dir, runtime).unwrap();
    spec.prefix = "passage: ".into();
    spec.max_length = 16;
    spec.intra_op_threads = 1;
    spec
}

/// Opens the tiny model (a fresh copy) with the default test settings.
pub(crate) fn tiny_encoder(runtime: PathBuf) -> (tempfile::TempDir, Encoder) {
    let dir = tiny_folder();
    let encoder = Encoder::open(tiny_spec(dir.path(), runtime)).unwrap();
    (dir, encoder)
}

pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn assert_close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst <= tol, "vectors differ by {worst} (tolerance {tol})");
}
