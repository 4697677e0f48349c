//! `generate_embeddings`: catalog in, product embeddings file out, re-embedding only
//! products whose text changed.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use recops_core::{SharedClock, error_chain, format_timestamp};
use serde::Serialize;

use crate::catalog::{Catalog, read_catalog};
use crate::encoder::{EmbedOptions, Embedded, Encoder};
use crate::error::{Error, Result};
use crate::model::{sha256_file, sha256_text};
use crate::store::{EmbeddingsFile, EmbeddingsMetadata};

/// Options of [`ProductEmbedder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Batch texts of similar length together (less padding, same vectors).
    pub sort_by_length: bool,
    /// Tokens per forward pass when sorting by length
    /// ([`EmbedOptions::max_batch_tokens`]).
    pub max_batch_tokens: usize,
    /// Re-embed every product even when the previous file could be reused.
    pub full: bool,
    /// Draw a progress bar on stderr when it is a terminal.
    pub progress: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            sort_by_length: true,
            max_batch_tokens: crate::encoder::DEFAULT_MAX_BATCH_TOKENS,
            full: false,
            progress: false,
        }
    }
}

/// What [`ProductEmbedder::generate_embeddings`] did (the spec's "generation
/// statistics").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerationStats {
    /// Vectors in the written file (one per product with text).
    pub num_products: usize,
    /// Vector length.
    pub embedding_dim: usize,
    /// Products run through the model this time.
    pub reembedded: usize,
    /// Products whose text and model were unchanged: vectors kept from the previous file.
    pub reused: usize,
    /// Why every product was re-embedded (no previous file, model changed, ...);
    /// `None` when only changed products were.
    pub full_reason: Option<String>,
    /// Products of the previous file that are no longer in the catalog.
    pub removed: usize,
    /// Products with an empty description (their name alone was embedded).
    pub empty_descriptions: usize,
    /// Catalog rows with neither name nor description (no vector).
    pub skipped_without_text: usize,
    /// Re-embedded texts cut to the maximum length.
    pub truncated: usize,
    /// Texts per forward pass.
    pub batch_size: usize,
    /// Model name recorded with the vectors.
    pub model_name: String,
    /// Model variant recorded with the vectors (`int8` or `fp32`).
    pub model_variant: String,
    /// When the file was written (RFC 3339).
    pub created_at: String,
    /// Seconds spent, reading the catalog to writing the file.
    pub duration_seconds: f64,
    /// Re-embedded texts per second of model time (None when nothing was re-embedded).
    pub texts_per_second: Option<f64>,
    /// The catalog read.
    pub products_path: String,
    /// The file written.
    pub output_path: String,
}

/// What [`ProductEmbedder::generate_embeddings`] reuses and what it re-embeds.
struct ReusePlan {
    /// The previous file, when its vectors can be reused.
    previous: Option<EmbeddingsFile>,
    /// Why every product is re-embedded, if so.
    full_reason: Option<String>,
    /// Per catalog row: its row in `previous` when text and model are unchanged.
    reuse_row: Vec<Option<usize>>,
    /// Catalog rows to run through the model, in catalog order.
    todo: Vec<usize>,
    /// Products of the previous file no longer in the catalog.
    removed: usize,
}

/// Generates the product embeddings file with an [`Encoder`].
#[derive(Debug)]
pub struct ProductEmbedder<'e> {
    encoder: &'e mut Encoder,
    clock: SharedClock,
    options: GenerateOptions,
}

impl<'e> ProductEmbedder<'e> {
    /// An embedder writing `created_at` from `clock`.
    pub fn new(encoder: &'e mut Encoder, clock: SharedClock, options: GenerateOptions) -> Self {
        ProductEmbedder {
            encoder,
            clock,
            options,
        }
    }

    /// The spec's `generate_embeddings(products_path, output_path, batch_size)`.
    ///
    /// Reads the catalog (columns `product_id`, `name`, `description`; see
    /// [`read_catalog`]), embeds `name. description` (the name alone when the
    /// description is empty) with the encoder's prefix, and writes `output_path`
    /// atomically. When the previous file was made by the same model, tokenizer, prefix
    /// and maximum length, only products whose text changed (or that are new) go
    /// through the model; otherwise `full_reason` says why all did. Nothing is written
    /// unless every vector was computed and is finite: on any error the previous file
    /// is untouched.
    pub fn generate_embeddings(
        &mut self,
        products_path: &Path,
        output_path: &Path,
        batch_size: usize,
    ) -> Result<GenerationStats> {
        let started = Instant::now();
        let catalog = read_catalog(products_path)?;
        let catalog_sha256 = sha256_file(products_path)?;
        let texts: Vec<String> = catalog.products.iter().map(|p| p.text()).collect();
        let hashes: Vec<[u8; 32]> = texts.iter().map(|t| sha256_text(t)).collect();

        let plan = self.plan_reuse(&catalog, &hashes, output_path);
        let model_started = Instant::now();
        let embedded = self.embed_changed(&texts, &plan.todo, batch_size)?;
        let model_seconds = model_started.elapsed().as_secs_f64();
        let vectors = self.assemble(&catalog, products_path, &plan, &embedded)?;
        let file = self.write_file(&catalog, vectors, hashes, catalog_sha256, output_path)?;

        let stats = GenerationStats {
            num_products: file.len(),
            embedding_dim: file.metadata.dim,
            reembedded: plan.todo.len(),
            reused: file.len() - plan.todo.len(),
            full_reason: plan.full_reason,
            removed: plan.removed,
            empty_descriptions: catalog.empty_descriptions,
            skipped_without_text: catalog.skipped_without_text.len(),
            truncated: embedded.truncated,
            batch_size,
            model_name: file.metadata.model.name.clone(),
            model_variant: file.metadata.model.variant.clone(),
            created_at: format_timestamp(file.metadata.created_at),
            duration_seconds: started.elapsed().as_secs_f64(),
            texts_per_second: (!plan.todo.is_empty() && model_seconds > 0.0)
                .then(|| plan.todo.len() as f64 / model_seconds),
            products_path: products_path.display().to_string(),
            output_path: output_path.display().to_string(),
        };
        if !catalog.skipped_without_text.is_empty() {
            tracing::warn!(
                ids = ?catalog.skipped_without_text,
                "catalog rows without name or description have no vector"
            );
        }
        tracing::info!(
            products = stats.num_products,
            reembedded = stats.reembedded,
            reused = stats.reused,
            empty_descriptions = stats.empty_descriptions,
            truncated = stats.truncated,
            path = %output_path.display(),
            "product embeddings written"
        );
        Ok(stats)
    }

    /// Phase 1: which products keep their previous vector (same id, same text, same
    /// model) and which go through the model.
    fn plan_reuse(&self, catalog: &Catalog, hashes: &[[u8; 32]], output_path: &Path) -> ReusePlan {
        let (previous, full_reason) = self.previous(output_path);
        let reuse_row: Vec<Option<usize>> = match &previous {
            Some(prev) => {
                let rows: HashMap<i64, usize> = prev
                    .product_ids
                    .iter()
                    .enumerate()
                    .map(|(row, id)| (*id, row))
                    .collect();
                catalog
                    .products
                    .iter()
                    .zip(hashes)
                    .map(|(p, hash)| {
                        let row = *rows.get(&p.product_id)?;
                        (prev.text_sha256[row] == *hash).then_some(row)
                    })
                    .collect()
            }
            None => vec![None; hashes.len()],
        };
        let todo: Vec<usize> = (0..hashes.len())
            .filter(|&i| reuse_row[i].is_none())
            .collect();
        let removed = previous.as_ref().map_or(0, |prev| {
            let current: std::collections::HashSet<i64> =
                catalog.products.iter().map(|p| p.product_id).collect();
            prev.product_ids
                .iter()
                .filter(|id| !current.contains(id))
                .count()
        });
        match &full_reason {
            Some(reason) => tracing::info!(
                products = hashes.len(),
                reason = %reason,
                "embedding every product"
            ),
            None => tracing::info!(
                products = hashes.len(),
                changed = todo.len(),
                "embedding new and changed products only"
            ),
        }
        ReusePlan {
            previous,
            full_reason,
            reuse_row,
            todo,
            removed,
        }
    }

    /// Phase 2: the model run over the new and changed texts, with the progress bar.
    fn embed_changed(
        &mut self,
        texts: &[String],
        todo: &[usize],
        batch_size: usize,
    ) -> Result<Embedded> {
        let bar = self.progress_bar(todo.len());
        let todo_texts: Vec<&str> = todo.iter().map(|&i| texts[i].as_str()).collect();
        let embedded = self.encoder.embed(
            &todo_texts,
            &EmbedOptions {
                batch_size,
                sort_by_length: self.options.sort_by_length,
                max_batch_tokens: self.options.max_batch_tokens,
            },
            &mut |n| bar.inc(n as u64),
        );
        bar.finish_and_clear();
        embedded
    }

    /// Phase 3: one vector per catalog row, fresh or reused, every value finite.
    fn assemble(
        &self,
        catalog: &Catalog,
        products_path: &Path,
        plan: &ReusePlan,
        embedded: &Embedded,
    ) -> Result<Vec<f32>> {
        let dim = self.encoder.dim();
        let n = catalog.products.len();
        let mut vectors = vec![0f32; n * dim];
        let mut fresh = vec![None; n];
        for (k, &i) in plan.todo.iter().enumerate() {
            fresh[i] = Some(k);
        }
        for i in 0..n {
            let out = &mut vectors[i * dim..(i + 1) * dim];
            match (fresh[i], plan.reuse_row[i], &plan.previous) {
                (Some(k), _, _) => out.copy_from_slice(embedded.row(k)),
                (None, Some(row), Some(prev)) => out.copy_from_slice(prev.vector(row)),
                _ => {
                    return Err(Error::Inference {
                        model: self.encoder.spec().model_path.clone(),
                        message: format!(
                            "internal error: no vector for product {}",
                            catalog.products[i].product_id
                        ),
                    });
                }
            }
            if out.iter().any(|v| !v.is_finite()) {
                let p = &catalog.products[i];
                return Err(Error::Inference {
                    model: self.encoder.spec().model_path.clone(),
                    message: format!(
                        "non-finite values in the vector of product {} ({} line {}); the \
                         previous embeddings file is kept",
                        p.product_id,
                        products_path.display(),
                        p.line
                    ),
                });
            }
        }
        Ok(vectors)
    }

    /// Phase 4: the file, written atomically.
    fn write_file(
        &self,
        catalog: &Catalog,
        vectors: Vec<f32>,
        hashes: Vec<[u8; 32]>,
        catalog_sha256: String,
        output_path: &Path,
    ) -> Result<EmbeddingsFile> {
        let ids: Vec<i64> = catalog.products.iter().map(|p| p.product_id).collect();
        let file = EmbeddingsFile {
            metadata: EmbeddingsMetadata {
                created_at: self.clock.now(),
                model: self.encoder.identity().clone(),
                dim: self.encoder.dim(),
                num_embeddings: ids.len(),
                catalog_sha256,
            },
            product_ids: ids,
            vectors,
            text_sha256: hashes,
        };
        file.write(output_path)?;
        Ok(file)
    }

    /// The previous file when its vectors can be reused, else why not.
    fn previous(&self, output_path: &Path) -> (Option<EmbeddingsFile>, Option<String>) {
        if self.options.full {
            return (None, Some("full re-embedding requested".to_owned()));
        }
        let prev = match EmbeddingsFile::read(output_path) {
            Ok(prev) => prev,
            Err(Error::EmbeddingsMissing { .. }) => {
                return (None, Some("no previous embeddings file".to_owned()));
            }
            Err(e) => {
                let e = error_chain(&e);
                tracing::warn!(error = %e, "previous embeddings file cannot be reused");
                return (None, Some(format!("previous file unreadable: {e}")));
            }
        };
        let mut reasons = prev.metadata.model.differences(self.encoder.identity());
        if prev.metadata.dim != self.encoder.dim() {
            reasons.push(format!(
                "dimension changed ({} -> {})",
                prev.metadata.dim,
                self.encoder.dim()
            ));
        }
        if reasons.is_empty() {
            (Some(prev), None)
        } else {
            (None, Some(reasons.join("; ")))
        }
    }

    fn progress_bar(&self, len: usize) -> ProgressBar {
        if !self.options.progress {
            return ProgressBar::hidden();
        }
        // Hidden automatically when stderr is not a terminal (cron, CI, pipes).
        let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "embedding {bar:30} {pos}/{len} products ({per_sec}, {eta} left)",
        ) {
            bar.set_style(style);
        }
        bar
    }
}
