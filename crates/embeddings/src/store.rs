//! The product embeddings file: safetensors with the vectors, the product ids, a hash
//! of each product's text, and metadata naming the model that made them.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use recops_core::{format_timestamp, parse_timestamp, write_atomic};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};
use crate::model::{DEFAULT_VARIANT, ModelIdentity};

/// The `format` metadata value of files this crate writes.
pub const EMBEDDINGS_FORMAT: &str = "recops-product-embeddings/1";
/// Tensor `[n, dim]` float32: one L2-normalised vector per product.
pub const TENSOR_EMBEDDINGS: &str = "embeddings";
/// Tensor `[n]` int64: the product id of each row.
pub const TENSOR_PRODUCT_IDS: &str = "product_ids";
/// Tensor `[n, 32]` uint8: sha256 of the text embedded for each row (without prefix).
pub const TENSOR_TEXT_SHA256: &str = "text_sha256";

/// What the metadata of an embeddings file says.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsMetadata {
    /// When the vectors were written.
    pub created_at: DateTime<Utc>,
    /// The model, tokenizer, prefix and maximum length that made them.
    pub model: ModelIdentity,
    /// Vector length.
    pub dim: usize,
    /// Number of vectors.
    pub num_embeddings: usize,
    /// sha256 of the catalog file they were made from.
    pub catalog_sha256: String,
}

/// A whole embeddings file.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsFile {
    /// The metadata.
    pub metadata: EmbeddingsMetadata,
    /// Product id of each row.
    pub product_ids: Vec<i64>,
    /// Row-major `[n, dim]` vectors.
    pub vectors: Vec<f32>,
    /// sha256 of each row's text.
    pub text_sha256: Vec<[u8; 32]>,
}

impl EmbeddingsFile {
    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.product_ids.len()
    }

    /// Whether the file holds no vectors.
    pub fn is_empty(&self) -> bool {
        self.product_ids.is_empty()
    }

    /// The vector of row `i`.
    pub fn vector(&self, i: usize) -> &[f32] {
        let dim = self.metadata.dim;
        &self.vectors[i * dim..(i + 1) * dim]
    }

    /// Reads and checks a file: the format, the tensors and their shapes, and that the
    /// metadata agrees with them.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::EmbeddingsMissing {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(Error::io("cannot read", path, e)),
        };
        let bad = |message: String| Error::EmbeddingsFile {
            path: path.to_path_buf(),
            message,
        };
        let tensors = SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let metadata = parse_metadata(&meta).map_err(bad)?;
        let (n, dim) = (metadata.num_embeddings, metadata.dim);

        let tensor = |name: &str, dtype: Dtype, shape: &[usize]| {
            let t = tensors
                .tensor(name)
                .map_err(|_| bad(format!("no tensor {name}")))?;
            if t.dtype() != dtype || t.shape() != shape {
                return Err(bad(format!(
                    "tensor {name} is {:?} {:?}, expected {dtype:?} {shape:?}",
                    t.dtype(),
                    t.shape()
                )));
            }
            Ok(t.data().to_vec())
        };
        let vectors: Vec<f32> = tensor(TENSOR_EMBEDDINGS, Dtype::F32, &[n, dim])?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let product_ids: Vec<i64> = tensor(TENSOR_PRODUCT_IDS, Dtype::I64, &[n])?
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        let text_sha256: Vec<[u8; 32]> = tensor(TENSOR_TEXT_SHA256, Dtype::U8, &[n, 32])?
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(EmbeddingsFile {
            metadata,
            product_ids,
            vectors,
            text_sha256,
        })
    }

    /// Writes the file atomically (temporary file, fsync, rename): a reader sees the
    /// previous file or this one, never a part.
    pub fn write(&self, path: &Path) -> Result<()> {
        let (n, dim) = (self.product_ids.len(), self.metadata.dim);
        let invalid = |message: String| Error::EmbeddingsFile {
            path: path.to_path_buf(),
            message,
        };
        if self.vectors.len() != n * dim || self.text_sha256.len() != n {
            return Err(invalid(format!(
                "refusing to write inconsistent data: {n} ids, {} values for dim {dim}, {} hashes",
                self.vectors.len(),
                self.text_sha256.len()
            )));
        }
        let vec_bytes: Vec<u8> = self.vectors.iter().flat_map(|v| v.to_le_bytes()).collect();
        let id_bytes: Vec<u8> = self
            .product_ids
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let hash_bytes: Vec<u8> = self.text_sha256.iter().flatten().copied().collect();
        fn view(dtype: Dtype, shape: Vec<usize>, data: &[u8]) -> Result<TensorView<'_>, String> {
            TensorView::new(dtype, shape, data).map_err(|e| e.to_string())
        }
        let tensors = vec![
            (
                TENSOR_EMBEDDINGS,
                view(Dtype::F32, vec![n, dim], &vec_bytes).map_err(invalid)?,
            ),
            (
                TENSOR_PRODUCT_IDS,
                view(Dtype::I64, vec![n], &id_bytes).map_err(invalid)?,
            ),
            (
                TENSOR_TEXT_SHA256,
                view(Dtype::U8, vec![n, 32], &hash_bytes).map_err(invalid)?,
            ),
        ];
        let mut meta = metadata_map(&self.metadata);
        meta.insert("num_embeddings".into(), n.to_string());
        let bytes =
            safetensors::serialize(tensors, Some(meta)).map_err(|e| invalid(e.to_string()))?;
        write_atomic(path, &bytes)?;
        Ok(())
    }
}

/// Reads only what [`check_embedding_freshness`](crate::check_embedding_freshness)
/// needs: the metadata, after checking the file is complete.
pub fn read_metadata(path: &Path) -> Result<EmbeddingsMetadata> {
    Ok(EmbeddingsFile::read(path)?.metadata)
}

fn metadata_map(m: &EmbeddingsMetadata) -> HashMap<String, String> {
    HashMap::from([
        ("format".into(), EMBEDDINGS_FORMAT.into()),
        ("created_at".into(), format_timestamp(m.created_at)),
        ("model_name".into(), m.model.name.clone()),
        ("model_variant".into(), m.model.variant.clone()),
        ("model_sha256".into(), m.model.model_sha256.clone()),
        ("tokenizer_sha256".into(), m.model.tokenizer_sha256.clone()),
        ("prefix".into(), m.model.prefix.clone()),
        ("max_length".into(), m.model.max_length.to_string()),
        ("dim".into(), m.dim.to_string()),
        ("pooling".into(), "mean".into()),
        ("normalized".into(), "l2".into()),
        ("text".into(), "name + description".into()),
        ("num_embeddings".into(), m.num_embeddings.to_string()),
        ("catalog_sha256".into(), m.catalog_sha256.clone()),
        (
            "recops_version".into(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
    ])
}

fn parse_metadata(
    meta: &HashMap<String, String>,
) -> std::result::Result<EmbeddingsMetadata, String> {
    let get = |key: &str| {
        meta.get(key)
            .cloned()
            .ok_or_else(|| format!("metadata has no {key} (not written by recops?)"))
    };
    let format = get("format")?;
    if format != EMBEDDINGS_FORMAT {
        return Err(format!(
            "format {format:?} is not {EMBEDDINGS_FORMAT:?} (written by a newer recops?)"
        ));
    }
    let number = |key: &str| {
        get(key)?
            .parse::<usize>()
            .map_err(|_| format!("metadata {key} is not a number"))
    };
    let created = get("created_at")?;
    Ok(EmbeddingsMetadata {
        created_at: parse_timestamp(&created)
            .ok_or_else(|| format!("metadata created_at {created:?} is not a timestamp"))?,
        model: ModelIdentity {
            name: get("model_name")?,
            // Files written before variants existed were made by the float32 model.
            variant: meta
                .get("model_variant")
                .cloned()
                .unwrap_or_else(|| DEFAULT_VARIANT.to_owned()),
            model_sha256: get("model_sha256")?,
            tokenizer_sha256: get("tokenizer_sha256")?,
            prefix: get("prefix")?,
            max_length: number("max_length")?,
        },
        dim: number("dim")?,
        num_embeddings: number("num_embeddings")?,
        catalog_sha256: get("catalog_sha256")?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(crate) fn sample(n: usize, dim: usize) -> EmbeddingsFile {
        EmbeddingsFile {
            metadata: EmbeddingsMetadata {
                created_at: Utc.with_ymd_and_hms(2025, 1, 14, 3, 0, 0).unwrap(),
                model: ModelIdentity {
                    name: "intfloat/multilingual-e5-small".into(),
                    variant: "int8".into(),
                    model_sha256: "a".repeat(64),
                    tokenizer_sha256: "b".repeat(64),
                    prefix: "passage: ".into(),
                    max_length: 256,
                },
                dim,
                num_embeddings: n,
                catalog_sha256: "c".repeat(64),
            },
            product_ids: (0..n as i64).map(|i| 100 + i).collect(),
            vectors: (0..n * dim).map(|i| i as f32 * 0.5 - 1.0).collect(),
            text_sha256: (0..n).map(|i| [i as u8; 32]).collect(),
        }
    }

    #[test]
    fn round_trip_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e/product_embeddings.safetensors");
        let file = sample(3, 4);
        file.write(&path).unwrap();
        let back = EmbeddingsFile::read(&path).unwrap();
        assert_eq!(back, file);
        assert_eq!(back.vector(1), &[1.0, 1.5, 2.0, 2.5]);
        // No temporary file is left next to it.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn metadata_is_readable_by_any_safetensors_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.safetensors");
        sample(2, 3).write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().clone().unwrap();
        assert_eq!(meta["model_name"], "intfloat/multilingual-e5-small");
        assert_eq!(meta["model_variant"], "int8");
        assert_eq!(meta["created_at"], "2025-01-14T03:00:00.000000+00:00");
        assert_eq!(meta["prefix"], "passage: ");
        assert_eq!(meta["dim"], "3");
        assert_eq!(meta["model_sha256"], "a".repeat(64));
        assert_eq!(meta["tokenizer_sha256"], "b".repeat(64));
    }

    #[test]
    fn damaged_and_foreign_files_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.safetensors");
        sample(2, 3).write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let msg = EmbeddingsFile::read(&path).unwrap_err().to_string();
        assert!(msg.starts_with("invalid embeddings file"), "{msg}");
        assert!(msg.contains("x.safetensors"), "{msg}");

        let foreign = safetensors::serialize(
            vec![("w", TensorView::new(Dtype::U8, vec![1], &[7]).unwrap())],
            None,
        )
        .unwrap();
        std::fs::write(&path, foreign).unwrap();
        let msg = EmbeddingsFile::read(&path).unwrap_err().to_string();
        assert!(msg.contains("no format"), "{msg}");

        let missing = dir.path().join("none.safetensors");
        let err = EmbeddingsFile::read(&missing).unwrap_err();
        assert!(matches!(err, Error::EmbeddingsMissing { .. }), "{err}");
    }

    #[test]
    fn files_from_before_variants_read_as_fp32() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.safetensors");
        let file = sample(1, 2);
        let mut meta = metadata_map(&file.metadata);
        meta.remove("model_variant");
        let vec_bytes: Vec<u8> = file.vectors.iter().flat_map(|v| v.to_le_bytes()).collect();
        let id_bytes = file.product_ids[0].to_le_bytes();
        let hash = file.text_sha256[0];
        let tensors = vec![
            (
                TENSOR_EMBEDDINGS,
                TensorView::new(Dtype::F32, vec![1, 2], &vec_bytes).unwrap(),
            ),
            (
                TENSOR_PRODUCT_IDS,
                TensorView::new(Dtype::I64, vec![1], &id_bytes).unwrap(),
            ),
            (
                TENSOR_TEXT_SHA256,
                TensorView::new(Dtype::U8, vec![1, 32], &hash).unwrap(),
            ),
        ];
        std::fs::write(&path, safetensors::serialize(tensors, Some(meta)).unwrap()).unwrap();
        let back = EmbeddingsFile::read(&path).unwrap();
        assert_eq!(back.metadata.model.variant, "fp32");
        assert_eq!(back.vectors, file.vectors);
    }

    #[test]
    fn inconsistent_data_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.safetensors");
        sample(2, 3).write(&path).unwrap();
        let before = std::fs::read(&path).unwrap();
        let mut bad = sample(2, 3);
        bad.vectors.pop();
        assert!(bad.write(&path).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}
