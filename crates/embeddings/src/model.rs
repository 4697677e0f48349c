//! Which model to load: `model.json`, [`ModelSpec`] and [`ModelIdentity`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use recops_core::Home;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::EmbeddingsConfig;
use crate::error::{Error, Result};
use crate::runtime::find_runtime_library;

/// File names inside a model folder.
pub const MODEL_FILE: &str = "model.onnx";
/// The tokenizer file of a model folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The optional description of a model folder.
pub const DESCRIPTOR_FILE: &str = "model.json";
/// The variant of a model whose `model.json` (or embeddings file) names none.
pub const DEFAULT_VARIANT: &str = "fp32";

/// `model.json`: what `scripts/convert_e5.py` (or a person) says about a model folder.
/// Only `files` checksums are enforced; the rest are defaults the config may override.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelDescriptor {
    /// Model name recorded with the vectors (`intfloat/multilingual-e5-small`).
    #[serde(default)]
    pub name: String,
    /// `fp32` or `int8` (absent: `fp32`); recorded with the vectors.
    #[serde(default)]
    pub variant: Option<String>,
    /// Embedding dimension.
    #[serde(default)]
    pub dim: Option<usize>,
    /// Pooling; only `mean` is supported.
    #[serde(default)]
    pub pooling: Option<String>,
    /// Prefix for documents (`passage: ` for e5).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Prefix for queries (`query: ` for e5).
    #[serde(default)]
    pub query_prefix: Option<String>,
    /// The model's maximum sequence length in tokens.
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Where the weights come from.
    #[serde(default)]
    pub source: Option<String>,
    /// Licence of the weights.
    #[serde(default)]
    pub license: Option<String>,
    /// sha256 (and size) of `model.onnx` and `tokenizer.json`.
    #[serde(default)]
    pub files: BTreeMap<String, FileDigest>,
}

/// The recorded digest of one file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Lower-case hex sha256.
    pub sha256: String,
    /// Size in bytes.
    #[serde(default)]
    pub bytes: Option<u64>,
}

impl ModelDescriptor {
    /// Reads `model.json`; `Ok(None)` when the folder has none.
    pub fn read(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot read", path, e)),
        };
        let d: ModelDescriptor = serde_json::from_str(&text).map_err(|e| Error::Descriptor {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if let Some(p) = d.pooling.as_deref()
            && p != "mean"
        {
            return Err(Error::Descriptor {
                path: path.to_path_buf(),
                message: format!("pooling {p:?} is not supported (only \"mean\")"),
            });
        }
        Ok(Some(d))
    }
}

/// Everything needed to open an [`Encoder`](crate::Encoder): files, runtime and
/// settings, resolved from the config and `model.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Name recorded with the vectors (model.json's `name`, else the folder name).
    pub name: String,
    /// Variant recorded with the vectors (model.json's `variant`, else `fp32`).
    pub variant: String,
    /// `model.onnx`.
    pub model_path: PathBuf,
    /// `tokenizer.json`.
    pub tokenizer_path: PathBuf,
    /// `model.json`, when the folder has one (its checksums are verified on open).
    pub descriptor_path: Option<PathBuf>,
    /// The descriptor's contents.
    pub descriptor: Option<ModelDescriptor>,
    /// The ONNX Runtime shared library.
    pub runtime_library: PathBuf,
    /// Text put before every text.
    pub prefix: String,
    /// Tokens per text, special tokens included.
    pub max_length: usize,
    /// ONNX Runtime intra-op threads (0 = the runtime's choice).
    pub intra_op_threads: usize,
}

impl ModelSpec {
    /// Resolves the model of `config` in `home`: the model folder, `model.json` and the
    /// runtime library (config, `ORT_DYLIB_PATH`, then the models folder).
    pub fn from_config(config: &EmbeddingsConfig, home: &Home) -> Result<Self> {
        let runtime = find_runtime_library(
            config.onnxruntime_library(home).as_deref(),
            &config.models_dir(home),
        )?;
        let mut spec = Self::model_from_config(config, home)?;
        spec.runtime_library = runtime;
        Ok(spec)
    }

    /// The identity of the model `config` names, without looking for the runtime: what
    /// the vectors would be compared against (for freshness checks).
    pub fn configured_identity(config: &EmbeddingsConfig, home: &Home) -> Result<ModelIdentity> {
        Self::model_from_config(config, home)?.identity()
    }

    fn model_from_config(config: &EmbeddingsConfig, home: &Home) -> Result<Self> {
        let dir = config.model_dir(home);
        let variant = config.model.variant;
        if config.variant_picks_the_folder() && !dir.join(MODEL_FILE).is_file() {
            return Err(Error::VariantMissing {
                variant: variant.as_str(),
                path: dir.join(MODEL_FILE),
            });
        }
        let mut spec = Self::from_dir(&dir, PathBuf::new())?;
        if config.variant_picks_the_folder() && spec.variant != variant.as_str() {
            return Err(Error::Descriptor {
                path: dir.join(DESCRIPTOR_FILE),
                message: format!(
                    "model.variant is {variant} but this folder holds the {} variant",
                    spec.variant
                ),
            });
        }
        if let Some(prefix) = &config.model.prefix {
            spec.prefix = prefix.clone();
        }
        spec.max_length = match spec.descriptor.as_ref().and_then(|d| d.max_length) {
            Some(model_max) => config.model.max_length_tokens.min(model_max),
            None => config.model.max_length_tokens,
        };
        spec.intra_op_threads = config.model.intra_op_threads;
        Ok(spec)
    }

    /// The model in folder `dir` (`model.onnx`, `tokenizer.json`, optional `model.json`)
    /// with the given runtime library; prefix, maximum length and name from
    /// `model.json` when present (else none, 512 and the folder name).
    pub fn from_dir(dir: &Path, runtime_library: PathBuf) -> Result<Self> {
        let model_path = dir.join(MODEL_FILE);
        let tokenizer_path = dir.join(TOKENIZER_FILE);
        for (what, path) in [("model", &model_path), ("tokenizer", &tokenizer_path)] {
            if !path.is_file() {
                return Err(Error::ModelMissing {
                    what,
                    path: path.clone(),
                });
            }
        }
        let descriptor_path = dir.join(DESCRIPTOR_FILE);
        let descriptor = ModelDescriptor::read(&descriptor_path)?;
        let folder_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".to_owned());
        let d = descriptor.clone().unwrap_or_default();
        Ok(ModelSpec {
            name: if d.name.is_empty() {
                folder_name
            } else {
                d.name.clone()
            },
            variant: d
                .variant
                .clone()
                .unwrap_or_else(|| DEFAULT_VARIANT.to_owned()),
            model_path,
            tokenizer_path,
            descriptor_path: descriptor.is_some().then_some(descriptor_path),
            descriptor,
            runtime_library,
            prefix: d.prefix.unwrap_or_default(),
            max_length: d.max_length.unwrap_or(512),
            intra_op_threads: 0,
        })
    }

    /// The identity of the vectors this spec produces: name, sha256 of both files
    /// (computed now), prefix and maximum length. Needs no runtime, so a health check
    /// can tell whether stored vectors were made by the configured model.
    pub fn identity(&self) -> Result<ModelIdentity> {
        Ok(ModelIdentity {
            name: self.name.clone(),
            variant: self.variant.clone(),
            model_sha256: sha256_file(&self.model_path)?,
            tokenizer_sha256: sha256_file(&self.tokenizer_path)?,
            prefix: self.prefix.clone(),
            max_length: self.max_length,
        })
    }

    /// Checks `identity`'s checksums against `model.json` (when there is one).
    pub(crate) fn verify(&self, identity: &ModelIdentity) -> Result<()> {
        let (Some(d), Some(dpath)) = (&self.descriptor, &self.descriptor_path) else {
            return Ok(());
        };
        for (file, path, actual) in [
            (MODEL_FILE, &self.model_path, &identity.model_sha256),
            (
                TOKENIZER_FILE,
                &self.tokenizer_path,
                &identity.tokenizer_sha256,
            ),
        ] {
            if let Some(rec) = d.files.get(file)
                && !rec.sha256.eq_ignore_ascii_case(actual)
            {
                return Err(Error::ChecksumMismatch {
                    path: path.clone(),
                    expected: rec.sha256.clone(),
                    actual: actual.clone(),
                    descriptor: dpath.clone(),
                });
            }
        }
        Ok(())
    }
}

/// What makes two sets of vectors comparable: the same model file, tokenizer file,
/// prefix and maximum length. Stored with every embeddings file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelIdentity {
    /// Model name (informational; the checksums decide).
    pub name: String,
    /// `fp32` or `int8` (informational like the name: the model's sha256 differs too).
    #[serde(default = "default_variant")]
    pub variant: String,
    /// sha256 of `model.onnx`.
    pub model_sha256: String,
    /// sha256 of `tokenizer.json`.
    pub tokenizer_sha256: String,
    /// Prefix put before every text.
    pub prefix: String,
    /// Tokens per text.
    pub max_length: usize,
}

impl ModelIdentity {
    /// How `other` differs from `self`, one phrase per difference (empty = same).
    pub fn differences(&self, other: &ModelIdentity) -> Vec<String> {
        let mut d = Vec::new();
        if self.model_sha256 != other.model_sha256 || self.variant != other.variant {
            d.push(format!(
                "model changed ({} {} sha256 {} -> {} {} sha256 {})",
                self.name,
                self.variant,
                short(&self.model_sha256),
                other.name,
                other.variant,
                short(&other.model_sha256)
            ));
        }
        if self.tokenizer_sha256 != other.tokenizer_sha256 {
            d.push(format!(
                "tokenizer changed (sha256 {} -> {})",
                short(&self.tokenizer_sha256),
                short(&other.tokenizer_sha256)
            ));
        }
        if self.prefix != other.prefix {
            d.push(format!(
                "prefix changed ({:?} -> {:?})",
                self.prefix, other.prefix
            ));
        }
        if self.max_length != other.max_length {
            d.push(format!(
                "max length changed ({} -> {} tokens)",
                self.max_length, other.max_length
            ));
        }
        d
    }
}

fn default_variant() -> String {
    DEFAULT_VARIANT.to_owned()
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Lower-case hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("cannot read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// sha256 of a text.
pub(crate) fn sha256_text(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Lower-case hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn sha256_matches_a_known_digest() {
        let dir = folder_with(&[("a.txt", "abc")]);
        assert_eq!(
            sha256_file(&dir.path().join("a.txt")).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha256_text("abc")),
            sha256_file(&dir.path().join("a.txt")).unwrap()
        );
    }

    #[test]
    fn spec_without_descriptor_uses_folder_name_and_no_prefix() {
        let dir = folder_with(&[("model.onnx", "m"), ("tokenizer.json", "t")]);
        let spec = ModelSpec::from_dir(dir.path(), PathBuf::from("/lib/ort.so")).unwrap();
        assert_eq!(spec.prefix, "");
        assert_eq!(spec.max_length, 512);
        assert_eq!(spec.variant, "fp32");
        assert!(spec.descriptor_path.is_none());
        let folder = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(spec.name, folder);
        spec.verify(&spec.identity().unwrap()).unwrap();
    }

    #[test]
    fn missing_files_are_named() {
        let dir = folder_with(&[("model.onnx", "m")]);
        let err = ModelSpec::from_dir(dir.path(), PathBuf::from("/x")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("tokenizer not found: "), "{msg}");
        assert!(msg.contains("tokenizer.json"), "{msg}");
        assert!(msg.contains("fetch_models.sh"), "{msg}");
    }

    #[test]
    fn descriptor_checksums_are_enforced() {
        let good = hex(&sha256_text("m"));
        let desc = format!(
            r#"{{"name":"tiny","prefix":"passage: ","max_length":64,
               "files":{{"model.onnx":{{"sha256":"{good}"}},
                         "tokenizer.json":{{"sha256":"{}"}}}}}}"#,
            "0".repeat(64)
        );
        let dir = folder_with(&[
            ("model.onnx", "m"),
            ("tokenizer.json", "t"),
            ("model.json", &desc),
        ]);
        let spec = ModelSpec::from_dir(dir.path(), PathBuf::from("/x")).unwrap();
        assert_eq!(spec.name, "tiny");
        assert_eq!(spec.prefix, "passage: ");
        assert_eq!(spec.max_length, 64);
        let err = spec
            .verify(&spec.identity().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("tokenizer.json has sha256"), "{err}");
        assert!(err.contains("model.json records"), "{err}");
    }

    /// The shipped config with `RECOPS_MODELS_DIR` = `models` and the given variant.
    fn config_for(models: &Path, variant: &str) -> EmbeddingsConfig {
        let env = std::collections::HashMap::from([
            ("RECOPS_MODELS_DIR".to_owned(), models.display().to_string()),
            ("RECOPS_EMBEDDINGS_VARIANT".to_owned(), variant.to_owned()),
        ]);
        recops_core::parse_config(
            crate::config::DEFAULT_EMBEDDINGS_CONFIG,
            Path::new("config/embeddings.yaml"),
            recops_core::ConfigFormat::Yaml,
            &env,
        )
        .unwrap()
    }

    fn variant_folder(models: &Path, name: &str, variant: &str) {
        let dir = models.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("model.onnx"), variant).unwrap();
        std::fs::write(dir.join("tokenizer.json"), "t").unwrap();
        std::fs::write(
            dir.join("model.json"),
            format!(r#"{{"name":"e5","variant":"{variant}","prefix":"passage: "}}"#),
        )
        .unwrap();
    }

    #[test]
    fn the_configured_variant_is_the_one_loaded_and_recorded() {
        let models = tempfile::tempdir().unwrap();
        let home = Home::new(models.path());
        variant_folder(models.path(), "multilingual-e5-small", "fp32");
        variant_folder(models.path(), "multilingual-e5-small-int8", "int8");
        let int8 =
            ModelSpec::configured_identity(&config_for(models.path(), "int8"), &home).unwrap();
        let fp32 =
            ModelSpec::configured_identity(&config_for(models.path(), "fp32"), &home).unwrap();
        assert_eq!(
            (int8.variant.as_str(), fp32.variant.as_str()),
            ("int8", "fp32")
        );
        assert_eq!(int8.model_sha256, hex(&sha256_text("int8")));
        assert_eq!(fp32.model_sha256, hex(&sha256_text("fp32")));
        assert_eq!(int8.differences(&fp32).len(), 1);
    }

    #[test]
    fn a_missing_or_mislabelled_variant_folder_is_refused_clearly() {
        let models = tempfile::tempdir().unwrap();
        let home = Home::new(models.path());
        variant_folder(models.path(), "multilingual-e5-small", "fp32");
        let err =
            ModelSpec::configured_identity(&config_for(models.path(), "int8"), &home).unwrap_err();
        assert!(
            matches!(
                err,
                Error::VariantMissing {
                    variant: "int8",
                    ..
                }
            ),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("multilingual-e5-small-int8/model.onnx"),
            "{msg}"
        );
        assert!(msg.contains("fetch_models.sh"), "{msg}");
        // A folder whose model.json names another variant is not silently used.
        variant_folder(models.path(), "multilingual-e5-small-int8", "fp32");
        let err = ModelSpec::configured_identity(&config_for(models.path(), "int8"), &home)
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.variant is int8"), "{err}");
    }

    #[test]
    fn unsupported_pooling_and_bad_json_are_refused() {
        let dir = folder_with(&[("model.json", r#"{"pooling":"cls"}"#)]);
        let err = ModelDescriptor::read(&dir.path().join("model.json")).unwrap_err();
        assert!(err.to_string().contains("\"cls\""), "{err}");
        let dir = folder_with(&[("model.json", "{not json")]);
        let err = ModelDescriptor::read(&dir.path().join("model.json")).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid model description"),
            "{err}"
        );
    }

    #[test]
    fn identity_differences_name_what_changed() {
        let a = ModelIdentity {
            name: "e5".into(),
            variant: "fp32".into(),
            model_sha256: "a".repeat(64),
            tokenizer_sha256: "b".repeat(64),
            prefix: "passage: ".into(),
            max_length: 256,
        };
        assert!(a.differences(&a).is_empty());
        let b = ModelIdentity {
            prefix: "query: ".into(),
            max_length: 128,
            ..a.clone()
        };
        let d = a.differences(&b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("prefix changed"), "{d:?}");
        assert!(d[1].contains("256 -> 128"), "{d:?}");
        // Another variant is another model, even under the same name.
        let int8 = ModelIdentity {
            variant: "int8".into(),
            model_sha256: "c".repeat(64),
            ..a.clone()
        };
        let d = a.differences(&int8);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].contains("e5 fp32 sha256 aaaa"), "{d:?}");
        assert!(d[0].contains("e5 int8 sha256 cccc"), "{d:?}");
    }
}
