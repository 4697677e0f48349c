//! [`Encoder`]: tokenizer + ONNX text encoder + mean pooling + L2 normalisation.

use std::borrow::Cow;
use std::path::Path;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::value::{Tensor, TensorElementType, ValueType};
use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};
use crate::model::{ModelIdentity, ModelSpec};
use crate::runtime;

const INPUT_IDS: &str = "input_ids";
const ATTENTION_MASK: &str = "attention_mask";
const TOKEN_TYPE_IDS: &str = "token_type_ids";
const OUTPUT: &str = "last_hidden_state";

/// Token names tried, in order, when tokenizer.json has no `padding` section.
const PAD_TOKENS: [&str; 4] = ["<pad>", "[PAD]", "<|pad|>", "<|padding|>"];

/// Turns texts into L2-normalised sentence vectors with a BERT-like ONNX model.
///
/// Each text gets the configured prefix, is tokenised with `tokenizer.json` (its
/// normaliser, pre-tokeniser and special-token template), truncated to the maximum
/// length, padded to the longest text of its batch with the tokenizer's own pad id, and
/// run through the model (`input_ids`, `attention_mask`, and `token_type_ids` when the
/// graph has that input). The output `last_hidden_state` is mean-pooled over the
/// attention mask and L2-normalised, so padding never changes a vector: a text alone
/// and the same text in a padded batch give the same vector.
///
/// Opening checks everything up front, so a bad setup fails before any work: the
/// runtime library loads, `model.onnx` and `tokenizer.json` match the sha256 recorded
/// in `model.json` (when there is one), the model has the inputs and output above, and
/// a test run succeeds.
#[derive(Debug)]
pub struct Encoder {
    session: Session,
    tokenizer: Tokenizer,
    spec: ModelSpec,
    identity: ModelIdentity,
    pad_id: i64,
    pad_type_id: i64,
    token_type_input: bool,
    dim: usize,
}

/// How [`Encoder::embed`] batches texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedOptions {
    /// Texts per forward pass; with `sort_by_length`, at most `4 × batch_size` texts and
    /// `max_batch_tokens` tokens per pass instead (more short texts, fewer long ones).
    pub batch_size: usize,
    /// Batch texts of similar token length together (at most 3% padding; same vectors
    /// with the float32 model, within a hair with int8).
    pub sort_by_length: bool,
    /// Tokens (padding included) per forward pass when sorting by length (default
    /// [`DEFAULT_MAX_BATCH_TOKENS`]); a text longer than this gets a pass of its own.
    pub max_batch_tokens: usize,
}

/// Tokens per forward pass by default: small passes keep the activations in the CPU
/// caches (measured: 512 tokens took about 20% less CPU than 2,048 on the demo catalog,
/// with either variant).
pub const DEFAULT_MAX_BATCH_TOKENS: usize = 512;

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            batch_size: 32,
            sort_by_length: true,
            max_batch_tokens: DEFAULT_MAX_BATCH_TOKENS,
        }
    }
}

/// Vectors for a list of texts, in the order of the texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    /// Row-major `[texts, dim]`.
    pub vectors: Vec<f32>,
    /// Vector length.
    pub dim: usize,
    /// Texts longer than the maximum length (cut to it).
    pub truncated: usize,
    /// Tokens fed to the model, special tokens included, padding excluded.
    pub tokens: usize,
}

impl Embedded {
    /// The vector of text `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.vectors.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Whether there are no vectors.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }
}

impl Encoder {
    /// Loads the runtime, verifies and opens the model and tokenizer of `spec`, and
    /// makes a test run.
    pub fn open(spec: ModelSpec) -> Result<Self> {
        let identity = spec.identity()?;
        spec.verify(&identity)?;
        let (tokenizer, pad_id, pad_type_id) =
            load_tokenizer(&spec.tokenizer_path, spec.max_length)?;
        let env = runtime::environment(&spec.runtime_library)?;
        let session = open_session(&env, &spec)?;
        let token_type_input = check_signature(&session, &spec.model_path)?;
        let mut encoder = Encoder {
            session,
            tokenizer,
            spec,
            identity,
            pad_id,
            pad_type_id,
            token_type_input,
            dim: 0,
        };
        // A test run: proves the graph runs with these inputs and gives the dimension.
        let probe = encoder
            .tokenize(&["recops"])
            .and_then(|enc| encoder.forward(&enc.iter().collect::<Vec<_>>()))
            .map_err(|e| Error::InvalidModel {
                path: encoder.spec.model_path.clone(),
                message: format!("a test run failed: {e}"),
            })?;
        encoder.dim = probe.len();
        tracing::info!(
            model = %encoder.spec.name,
            dim = encoder.dim,
            max_length = encoder.spec.max_length,
            "text encoder ready"
        );
        Ok(encoder)
    }

    /// Vector length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The model's identity (name, file checksums, prefix, maximum length).
    pub fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    /// What this encoder was opened with.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The pad id read from tokenizer.json.
    pub fn pad_id(&self) -> i64 {
        self.pad_id
    }

    /// Whether the model takes `token_type_ids`.
    pub fn uses_token_type_ids(&self) -> bool {
        self.token_type_input
    }

    /// Number of tokens `text` (with the prefix and special tokens) has before
    /// truncation.
    pub fn count_tokens(&self, text: &str) -> Result<usize> {
        let enc = self.tokenize(&[text])?;
        Ok(enc
            .iter()
            .map(|e| e.len() + e.get_overflowing().iter().map(Encoding::len).sum::<usize>())
            .sum())
    }

    /// Embeds `texts` in batches; `progress` is called with the number of texts done
    /// after each batch. Vectors come back in the order of `texts`.
    pub fn embed(
        &mut self,
        texts: &[&str],
        options: &EmbedOptions,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Embedded> {
        let encodings = self.tokenize(texts)?;
        let truncated = encodings
            .iter()
            .filter(|e| !e.get_overflowing().is_empty())
            .count();
        let tokens = encodings.iter().map(Encoding::len).sum();
        let lengths: Vec<usize> = encodings.iter().map(Encoding::len).collect();
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        if options.sort_by_length {
            order.sort_by_key(|&i| lengths[i]);
        }
        let batches = plan_batches(&order, &lengths, options);
        let dim = self.dim;
        let mut vectors = vec![0f32; texts.len() * dim];
        for range in batches {
            let chunk = &order[range];
            let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            let pooled = self.forward(&batch)?;
            for (k, &i) in chunk.iter().enumerate() {
                vectors[i * dim..(i + 1) * dim].copy_from_slice(&pooled[k * dim..(k + 1) * dim]);
            }
            progress(chunk.len());
        }
        Ok(Embedded {
            vectors,
            dim,
            truncated,
            tokens,
        })
    }

    /// Embeds `texts` in one forward pass, in order (no sorting).
    pub fn embed_batch(&mut self, texts: &[&str]) -> Result<Embedded> {
        let options = EmbedOptions {
            batch_size: texts.len().max(1),
            sort_by_length: false,
            max_batch_tokens: DEFAULT_MAX_BATCH_TOKENS,
        };
        self.embed(texts, &options, &mut |_| {})
    }

    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        let inputs: Vec<String> = texts
            .iter()
            .map(|t| format!("{}{}", self.spec.prefix, t))
            .collect();
        self.tokenizer
            .encode_batch_fast(inputs, true)
            .map_err(|e| Error::Inference {
                model: self.spec.tokenizer_path.clone(),
                message: format!("tokenizing failed: {e}"),
            })
    }

    /// One forward pass over `batch`; returns `batch.len() * dim` pooled, normalised
    /// values.
    fn forward(&mut self, batch: &[&Encoding]) -> Result<Vec<f32>> {
        let rows = batch.len();
        let cols = batch.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![self.pad_id; rows * cols];
        let mut mask = vec![0i64; rows * cols];
        let mut types = vec![self.pad_type_id; rows * cols];
        for (r, enc) in batch.iter().enumerate() {
            let base = r * cols;
            for (c, ((&id, &m), &t)) in enc
                .get_ids()
                .iter()
                .zip(enc.get_attention_mask())
                .zip(enc.get_type_ids())
                .enumerate()
            {
                ids[base + c] = i64::from(id);
                mask[base + c] = i64::from(m);
                types[base + c] = i64::from(t);
            }
        }
        let model = &self.spec.model_path;
        let run_err = |e: ort::Error| Error::Inference {
            model: model.clone(),
            message: run_hint(&e.to_string(), cols, self.spec.max_length),
        };
        let tensor = |data: Vec<i64>| -> Result<SessionInputValue<'static>> {
            Ok(Tensor::from_array(([rows, cols], data))
                .map_err(run_err)?
                .into())
        };
        let mut inputs: Vec<(Cow<'static, str>, SessionInputValue<'static>)> = vec![
            (INPUT_IDS.into(), tensor(ids)?),
            (ATTENTION_MASK.into(), tensor(mask.clone())?),
        ];
        if self.token_type_input {
            inputs.push((TOKEN_TYPE_IDS.into(), tensor(types)?));
        }
        let outputs = self.session.run(inputs).map_err(|e| Error::Inference {
            model: model.clone(),
            message: run_hint(&e.to_string(), cols, self.spec.max_length),
        })?;
        let value = outputs.get(OUTPUT).ok_or_else(|| Error::Inference {
            model: model.clone(),
            message: format!("the model returned no {OUTPUT}"),
        })?;
        let (shape, hidden) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| Error::Inference {
                model: model.clone(),
                message: format!("{OUTPUT} is not a float32 tensor: {e}"),
            })?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        let dim = match dims.as_slice() {
            [b, s, d] if *b == rows as i64 && *s == cols as i64 && *d > 0 => *d as usize,
            _ => {
                return Err(Error::Inference {
                    model: model.clone(),
                    message: format!(
                        "{OUTPUT} has shape {dims:?}, expected [{rows}, {cols}, hidden]"
                    ),
                });
            }
        };
        Ok(mean_pool_normalize(hidden, &mask, rows, cols, dim))
    }
}

/// Largest share of padding a length-sorted batch may carry.
const MAX_PADDING_SHARE: f64 = 0.03;

/// Splits `order` (indices into `lengths`) into forward passes. In file order:
/// `batch_size` texts each. Sorted by length: a batch takes the next texts while its
/// padded size (texts × longest) stays within `max_batch_tokens` tokens, its padding
/// within 3% of it, and it holds at most `4 × batch_size` texts:
/// short texts go in large batches, long ones in small ones, and nearly no token is
/// padding.
pub(crate) fn plan_batches(
    order: &[usize],
    lengths: &[usize],
    options: &EmbedOptions,
) -> Vec<std::ops::Range<usize>> {
    let size = options.batch_size.max(1);
    if !options.sort_by_length {
        return (0..order.len())
            .step_by(size)
            .map(|s| s..(s + size).min(order.len()))
            .collect();
    }
    let budget = options.max_batch_tokens.max(1);
    let max_rows = size * 4;
    let len = |j: usize| lengths.get(order[j]).copied().unwrap_or(0).max(1);
    let mut batches = Vec::new();
    let (mut start, mut sum) = (0usize, 0usize);
    for j in 0..order.len() {
        let rows = j - start + 1;
        let longest = len(j);
        let padded = rows * longest;
        let padding = padded - (sum + longest).min(padded);
        let fits = rows <= max_rows
            && padded <= budget.max(longest)
            && (padding as f64) <= MAX_PADDING_SHARE * padded as f64;
        if !fits && j > start {
            batches.push(start..j);
            start = j;
            sum = 0;
        }
        sum += len(j);
    }
    if start < order.len() {
        batches.push(start..order.len());
    }
    batches
}

/// Mean of the hidden states over the tokens whose mask is 1, then L2 normalisation
/// (a zero vector stays zero). `hidden` is `[rows, cols, dim]`, `mask` `[rows, cols]`.
pub fn mean_pool_normalize(
    hidden: &[f32],
    mask: &[i64],
    rows: usize,
    cols: usize,
    dim: usize,
) -> Vec<f32> {
    let mut out = vec![0f32; rows * dim];
    for r in 0..rows {
        let acc = &mut out[r * dim..(r + 1) * dim];
        let mut count = 0f32;
        for c in 0..cols {
            if mask[r * cols + c] == 0 {
                continue;
            }
            count += 1.0;
            let h = &hidden[(r * cols + c) * dim..(r * cols + c + 1) * dim];
            for (a, x) in acc.iter_mut().zip(h) {
                *a += x;
            }
        }
        let count = count.max(1.0);
        acc.iter_mut().for_each(|a| *a /= count);
        let norm = acc.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
        acc.iter_mut().for_each(|a| *a /= norm);
    }
    out
}

fn run_hint(message: &str, seq_len: usize, max_length: usize) -> String {
    let lower = message.to_ascii_lowercase();
    if lower.contains("indices") || lower.contains("broadcast") || lower.contains("out of range") {
        format!(
            "{message} (sequence length {seq_len}; if the model supports fewer than \
             {max_length} tokens, lower model.max_length_tokens in config/embeddings.yaml)"
        )
    } else {
        message.to_owned()
    }
}

fn load_tokenizer(path: &Path, max_length: usize) -> Result<(Tokenizer, i64, i64)> {
    let err = |message: String| Error::Tokenizer {
        path: path.to_path_buf(),
        message,
    };
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| err(e.to_string()))?;
    let (pad_id, pad_type_id) = match tokenizer.get_padding() {
        Some(p) => (p.pad_id, p.pad_type_id),
        None => {
            let id = PAD_TOKENS
                .iter()
                .find_map(|t| tokenizer.token_to_id(t))
                .ok_or_else(|| {
                    err(format!(
                        "no padding token: add a \"padding\" section with pad_id, or one of the \
                         tokens {}",
                        PAD_TOKENS.join(", ")
                    ))
                })?;
            (id, 0)
        }
    };
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        }))
        .map_err(|e| err(format!("cannot truncate to {max_length} tokens: {e}")))?;
    Ok((tokenizer, i64::from(pad_id), i64::from(pad_type_id)))
}

fn open_session(env: &ort::environment::Environment, spec: &ModelSpec) -> Result<Session> {
    let path = &spec.model_path;
    let err = |e: ort::Error| Error::InvalidModel {
        path: path.clone(),
        message: format!("ONNX Runtime cannot load it: {e}"),
    };
    let mut builder = Session::builder(env)
        .map_err(err)?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| err(e.into()))?;
    if spec.intra_op_threads > 0 {
        builder = builder
            .with_intra_threads(spec.intra_op_threads)
            .map_err(|e| err(e.into()))?;
    }
    // One graph at a time (the encoder is a chain: nothing to overlap), and worker
    // threads that sleep instead of spinning between operators: on a machine shared
    // with other jobs, spinning burns the cores the operators need.
    builder = builder
        .with_inter_threads(1)
        .map_err(|e| err(e.into()))?
        .with_intra_op_spinning(false)
        .map_err(|e| err(e.into()))?;
    builder.commit_from_file(path).map_err(err)
}

/// Checks the inputs and output; returns whether `token_type_ids` is an input.
fn check_signature(session: &Session, path: &Path) -> Result<bool> {
    let inputs: Vec<String> = session
        .inputs()
        .iter()
        .map(|o| o.name().to_owned())
        .collect();
    let outputs: Vec<String> = session
        .outputs()
        .iter()
        .map(|o| o.name().to_owned())
        .collect();
    let fail = |detail: Option<String>| Error::UnexpectedModelSignature {
        path: path.to_path_buf(),
        inputs: inputs.clone(),
        outputs: outputs.clone(),
        detail,
    };
    for required in [INPUT_IDS, ATTENTION_MASK] {
        if !inputs.iter().any(|n| n == required) {
            return Err(fail(Some(format!("no input {required}"))));
        }
    }
    if let Some(extra) = inputs
        .iter()
        .find(|n| ![INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS].contains(&n.as_str()))
    {
        return Err(fail(Some(format!("unexpected input {extra}"))));
    }
    for outlet in session.inputs() {
        if let ValueType::Tensor { ty, shape, .. } = outlet.dtype()
            && (*ty != TensorElementType::Int64 || shape.len() != 2)
        {
            return Err(fail(Some(format!(
                "input {} is {ty:?} with {} dimensions, expected int64 [batch, sequence]",
                outlet.name(),
                shape.len()
            ))));
        }
    }
    let Some(output) = session.outputs().iter().find(|o| o.name() == OUTPUT) else {
        return Err(fail(Some(format!("no output {OUTPUT}"))));
    };
    if let ValueType::Tensor { ty, shape, .. } = output.dtype()
        && (*ty != TensorElementType::Float32 || shape.len() != 3)
    {
        return Err(fail(Some(format!(
            "output {OUTPUT} is {ty:?} with {} dimensions, expected float32 [batch, sequence, hidden]",
            shape.len()
        ))));
    }
    Ok(inputs.iter().any(|n| n == TOKEN_TYPE_IDS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn options(batch_size: usize, sort_by_length: bool) -> EmbedOptions {
        EmbedOptions {
            batch_size,
            sort_by_length,
            max_batch_tokens: batch_size * 64,
        }
    }

    #[test]
    fn file_order_batches_are_fixed_size() {
        let lengths = [5, 90, 7, 30, 12];
        let order: Vec<usize> = (0..5).collect();
        let b = plan_batches(&order, &lengths, &options(2, false));
        assert_eq!(b, vec![0..2, 2..4, 4..5]);
    }

    #[test]
    fn sorted_batches_cover_every_text_within_the_token_budget_and_little_padding() {
        // 300 texts of 3..=250 tokens, sorted as `embed` sorts them.
        let lengths: Vec<usize> = (0..300).map(|i| 3 + (i * 37) % 248).collect();
        let mut order: Vec<usize> = (0..300).collect();
        order.sort_by_key(|&i| lengths[i]);
        let opts = options(8, true);
        let batches = plan_batches(&order, &lengths, &opts);
        let mut next = 0;
        for b in &batches {
            assert_eq!(b.start, next, "batches are contiguous");
            next = b.end;
            let lens: Vec<usize> = order[b.clone()].iter().map(|&i| lengths[i]).collect();
            let longest = *lens.iter().max().unwrap();
            let padded = lens.len() * longest;
            let real: usize = lens.iter().sum();
            assert!(lens.len() == 1 || padded <= 8 * 64, "{lens:?}");
            assert!(lens.len() <= 32);
            assert!((padded - real) as f64 <= 0.03 * padded as f64, "{lens:?}");
        }
        assert_eq!(next, 300);
        // Short texts share passes: fewer passes than one per distinct length.
        assert!(batches.len() < 248, "{}", batches.len());
    }

    #[test]
    fn pooling_ignores_masked_tokens_and_normalises() {
        // 2 texts, 3 positions, dim 2. Text 0 has 2 tokens, text 1 has 3.
        let hidden = [
            1.0, 0.0, 3.0, 0.0, 100.0, 100.0, // text 0 (last is padding)
            0.0, 1.0, 0.0, 2.0, 0.0, 3.0, // text 1
        ];
        let mask = [1, 1, 0, 1, 1, 1];
        let out = mean_pool_normalize(&hidden, &mask, 2, 3, 2);
        assert_eq!(out, vec![1.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn pooling_a_zero_vector_stays_zero_not_nan() {
        let out = mean_pool_normalize(&[0.0, 0.0], &[1], 1, 1, 2);
        assert_eq!(out, vec![0.0, 0.0]);
    }

    proptest! {
        #[test]
        fn pooled_vectors_have_unit_norm_and_ignore_padding_values(
            values in proptest::collection::vec(-10.0f32..10.0, 4 * 3),
            garbage in -1e3f32..1e3,
            len in 1usize..=4,
        ) {
            // One text of `len` tokens padded to 4 positions, dim 3.
            let mut hidden = values.clone();
            let mask: Vec<i64> = (0..4).map(|c| i64::from(c < len)).collect();
            let a = mean_pool_normalize(&hidden, &mask, 1, 4, 3);
            for c in len..4 {
                for d in 0..3 {
                    hidden[c * 3 + d] = garbage;
                }
            }
            let b = mean_pool_normalize(&hidden, &mask, 1, 4, 3);
            prop_assert_eq!(&a, &b);
            let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
            prop_assert!(norm == 0.0 || (norm - 1.0).abs() < 1e-5, "norm {}", norm);
        }
    }
}
