//! Throughput harness for the Encoder, the Rust side of benches/embeddings_compare.sh:
//! embeds every line of a text file with the same settings as
//! benches/embeddings_python.py and prints one JSON line (texts, seconds,
//! texts_per_second; best of --repeat runs after a one-text warm-up).
//!
//! The model is `--model-dir`, else `<models>/multilingual-e5-small-int8` (`--variant
//! int8`, the default) or `<models>/multilingual-e5-small` (`--variant fp32`), where
//! `<models>` is `$RECOPS_MODELS_DIR` or the repository's `models/` (ONNX Runtime from
//! there too).
//!
//! ```text
//! cargo run --release -p recops-embeddings --example embed_throughput -- \
//!     [--model-dir DIR | --variant int8|fp32] --texts texts.txt \
//!     [--batch-size 32] [--threads 2] [--max-length 256] [--prefix "passage: "] \
//!     [--sort] [--max-batch-tokens 512] [--repeat 3] [--vectors-out F]
//! ```
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::time::Instant;

use recops_embeddings::{
    EmbedOptions, Encoder, ModelSpec, find_runtime_library, repository_models_dir,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut model_dir, mut texts_path, mut out) = (None, None, None);
    let (mut batch, mut threads, mut max_len, mut repeat) = (32usize, 2usize, 256usize, 3usize);
    let (mut prefix, mut sort) = ("passage: ".to_owned(), false);
    let mut variant = "int8".to_owned();
    let mut max_batch_tokens = recops_embeddings::DEFAULT_MAX_BATCH_TOKENS;
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--model-dir" => model_dir = Some(PathBuf::from(value())),
            "--texts" => texts_path = Some(PathBuf::from(value())),
            "--batch-size" => batch = value().parse().unwrap(),
            "--threads" => threads = value().parse().unwrap(),
            "--max-length" => max_len = value().parse().unwrap(),
            "--prefix" => prefix = value(),
            "--repeat" => repeat = value().parse().unwrap(),
            "--vectors-out" => out = Some(PathBuf::from(value())),
            "--variant" => variant = value(),
            "--max-batch-tokens" => max_batch_tokens = value().parse().unwrap(),
            "--sort" => sort = true,
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let models = std::env::var_os("RECOPS_MODELS_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(repository_models_dir, PathBuf::from);
    let folder = match variant.as_str() {
        "int8" => "multilingual-e5-small-int8",
        "fp32" => "multilingual-e5-small",
        other => panic!("--variant is int8 or fp32, not {other}"),
    };
    let model_dir = model_dir.unwrap_or_else(|| models.join(folder));
    let texts = std::fs::read_to_string(texts_path.expect("--texts FILE is required")).unwrap();
    let texts: Vec<&str> = texts.lines().collect();
    let runtime = find_runtime_library(None, &models).unwrap();
    let mut spec = ModelSpec::from_dir(&model_dir, runtime).unwrap();
    spec.prefix = prefix;
    spec.max_length = max_len;
    spec.intra_op_threads = threads;
    let mut encoder = Encoder::open(spec).unwrap(); // includes a one-text test run
    let options = EmbedOptions {
        batch_size: batch,
        sort_by_length: sort,
        max_batch_tokens,
    };
    let (mut best, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        let v = encoder.embed(&texts, &options, &mut |_| {}).unwrap();
        best = best.min(t0.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(cpu_seconds() - c0);
        last = Some(v);
    }
    if let (Some(path), Some(v)) = (out, last) {
        let bytes: Vec<u8> = v.vectors.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(path, bytes).unwrap();
    }
    println!(
        "{{\"impl\": \"rust\", \"model\": \"{}\", \"texts\": {}, \"seconds\": {:.3}, \"texts_per_second\": {:.1}, \"cpu_seconds\": {:.2}, \"texts_per_cpu_second\": {:.2}, \"sorted\": {}}}",
        model_dir.display(),
        texts.len(),
        best,
        texts.len() as f64 / best,
        best_cpu,
        texts.len() as f64 / best_cpu,
        sort
    );
}

/// CPU time of this process (all threads, user + system) from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    // utime + stime in clock ticks (100 per second on Linux).
    f.iter().sum::<f64>() / 100.0
}
