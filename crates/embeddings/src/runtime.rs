//! Finding and loading the ONNX Runtime shared library (`ort` with `load-dynamic`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use ort::environment::Environment;

use crate::error::{Error, Result};

/// The environment variable `ort` itself reads; honoured here between the config and
/// the models folder.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// The ONNX Runtime library: `configured` (config `model.onnxruntime_library`), else
/// `$ORT_DYLIB_PATH`, else `<models_dir>/onnxruntime/` (the file named by its
/// `onnxruntime.json`, else the newest `libonnxruntime.so*`). A configured path that
/// does not exist is an error, not a reason to look elsewhere.
pub fn find_runtime_library(configured: Option<&Path>, models_dir: &Path) -> Result<PathBuf> {
    let from_env = std::env::var_os(ORT_DYLIB_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    find_runtime_library_with(configured, from_env.as_deref(), models_dir)
}

pub(crate) fn find_runtime_library_with(
    configured: Option<&Path>,
    from_env: Option<&Path>,
    models_dir: &Path,
) -> Result<PathBuf> {
    if let Some(path) = configured.or(from_env) {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(Error::RuntimeMissing {
                searched: vec![path.to_path_buf()],
            })
        };
    }
    let dir = models_dir.join("onnxruntime");
    let named = std::fs::read_to_string(dir.join("onnxruntime.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("library")?.as_str().map(|s| dir.join(s)));
    if let Some(path) = named.filter(|p| p.is_file()) {
        return Ok(path);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib"
                })
        })
        .collect();
    // `libonnxruntime.so.1.32.0` sorts after `libonnxruntime.so`: prefer the versioned
    // file, and the newest version among several.
    found.sort_by_key(|p| version_key(p));
    match found.pop() {
        Some(path) => Ok(path),
        None => Err(Error::RuntimeMissing {
            searched: vec![dir.join("libonnxruntime.so.*")],
        }),
    }
}

fn version_key(path: &Path) -> Vec<u64> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.split('.')
        .filter_map(|part| part.parse().ok())
        .collect()
}

/// The process's ONNX Runtime: loaded once, from one file.
static RUNTIME: OnceLock<Mutex<Option<(PathBuf, Environment)>>> = OnceLock::new();

/// Loads ONNX Runtime from `library` (once per process) and returns its environment.
/// Asking for another file later in the same process is an error.
pub(crate) fn environment(library: &Path) -> Result<Environment> {
    let canonical = library.canonicalize().map_err(|_| Error::RuntimeMissing {
        searched: vec![library.to_path_buf()],
    })?;
    let cell = RUNTIME.get_or_init(|| Mutex::new(None));
    let mut guard = cell.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((loaded, env)) = guard.as_ref() {
        return if *loaded == canonical {
            Ok(env.clone())
        } else {
            Err(Error::RuntimeConflict {
                loaded: loaded.clone(),
                requested: canonical,
            })
        };
    }
    let load_err = |message: String| Error::RuntimeLoad {
        path: canonical.clone(),
        message,
    };
    let env = ort::init_from(&canonical)
        .map_err(|e| load_err(e.to_string()))?
        .with_name("recops")
        .build()
        .map_err(|e| load_err(e.to_string()))?;
    tracing::debug!(library = %canonical.display(), "ONNX Runtime loaded");
    *guard = Some((canonical, env.clone()));
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_path_wins_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("custom.so");
        std::fs::write(&lib, b"x").unwrap();
        let env_lib = dir.path().join("env.so");
        std::fs::write(&env_lib, b"x").unwrap();
        let found = find_runtime_library_with(Some(&lib), Some(&env_lib), dir.path()).unwrap();
        assert_eq!(found, lib);
        let found = find_runtime_library_with(None, Some(&env_lib), dir.path()).unwrap();
        assert_eq!(found, env_lib);
        let missing = dir.path().join("nope.so");
        let err = find_runtime_library_with(Some(&missing), None, dir.path()).unwrap_err();
        assert!(err.to_string().contains("nope.so"), "{err}");
    }

    #[test]
    fn models_folder_prefers_the_newest_versioned_library() {
        let dir = tempfile::tempdir().unwrap();
        let ort_dir = dir.path().join("onnxruntime");
        std::fs::create_dir(&ort_dir).unwrap();
        for name in [
            "libonnxruntime.so",
            "libonnxruntime.so.1.9.0",
            "libonnxruntime.so.1.32.0",
            "other.so",
        ] {
            std::fs::write(ort_dir.join(name), b"x").unwrap();
        }
        let found = find_runtime_library_with(None, None, dir.path()).unwrap();
        assert_eq!(found, ort_dir.join("libonnxruntime.so.1.32.0"));
        std::fs::write(
            ort_dir.join("onnxruntime.json"),
            r#"{"library": "libonnxruntime.so.1.9.0"}"#,
        )
        .unwrap();
        let found = find_runtime_library_with(None, None, dir.path()).unwrap();
        assert_eq!(found, ort_dir.join("libonnxruntime.so.1.9.0"));
    }

    #[test]
    fn empty_models_folder_says_what_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_runtime_library_with(None, None, dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("onnxruntime/libonnxruntime.so.*"), "{msg}");
        assert!(msg.contains("fetch_models.sh"), "{msg}");
    }
}
