//! `recops bench-cf` without the rest of the workspace, for profiling the trainers:
//! builds in seconds after a change to this crate.
//!
//! `cargo run --release -p recops-cf-training --example cf_bench -- DATA.csv als,bpr THREADS [ITERS]`
//!
//! Prints the `bench-cf --json` report. `ITERS` overrides the iterations of both models;
//! `CF_BENCH_SEED` the seed of both; `CF_BENCH_TUNE=SECONDS` adds `als_tuned` and
//! `bpr_tuned` (`bench-cf --tune SECONDS`), `CF_BENCH_TRIALS=N` draws N configurations
//! (`bench-cf --trials N`); `CF_BENCH_HALF_LIFE=DAYS` sets ALS's
//! `half_life_days` (time-decayed confidence).
//!
//! `cf_bench time DATA.csv als|bpr THREADS ITERS` trains on the bench split only (no
//! evaluation) and prints milliseconds per iteration, wall-clock and process CPU time
//! (all threads; much less disturbed by other processes on a shared machine).
//!
//! `cf_bench gen OUT.csv USERS PRODUCTS INTERACTIONS [CLUSTERS]` writes the demo's synthetic
//! shop data (recops-testkit, seed 42) as `user_id,item_id,rating,timestamp`, the CSV
//! that `bench-cf` and `shared/bench/cf_vs_implicit.py` read.
#![allow(missing_docs, clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use recops_cf_training::{AlsConfig, BenchModel, BenchOptions, BprConfig, bench_cf};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("time") {
        return match time(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cf_bench time: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.first().map(String::as_str) == Some("gen") {
        return match generate(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cf_bench gen: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let (Some(data), Some(models), Some(threads)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: cf_bench DATA.csv als,bpr,popularity THREADS [ITERS]");
        return ExitCode::FAILURE;
    };
    match run(data, models, threads, args.get(3)) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cf_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    data: &str,
    models: &str,
    threads: &str,
    iters: Option<&String>,
) -> Result<String, Box<dyn std::error::Error>> {
    let home = recops_core::Home::new("/nonexistent-recops-home");
    let mut als = AlsConfig::load(&home)?;
    let mut bpr = BprConfig::load(&home)?;
    if let Some(seed) = std::env::var("CF_BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        als.training.seed = seed;
        bpr.training.seed = seed;
    }
    if let Some(days) = std::env::var("CF_BENCH_HALF_LIFE")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        als.model.half_life_days = Some(days);
    }
    if let Some(n) = iters {
        let n: usize = n.parse()?;
        als.model.iterations = n;
        bpr.model.iterations = n;
    }
    let models = models
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<BenchModel>, _>>()?;
    let rows = recops_cf_training::read_interactions_csv(std::path::Path::new(data))?;
    let options = BenchOptions {
        models,
        threads: threads.parse()?,
        als,
        bpr,
        tune_seconds: std::env::var("CF_BENCH_TUNE")
            .ok()
            .and_then(|s| s.parse().ok()),
        tune_trials: std::env::var("CF_BENCH_TRIALS")
            .ok()
            .and_then(|s| s.parse().ok()),
    };
    Ok(serde_json::to_string(&bench_cf(&rows, &options)?)?)
}

fn generate(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let [out, users, products, interactions, rest @ ..] = args else {
        return Err("usage: cf_bench gen OUT.csv USERS PRODUCTS INTERACTIONS [CLUSTERS]".into());
    };
    let mut config = recops_testkit::GenConfig {
        users: users.parse()?,
        products: products.parse()?,
        interactions: interactions.parse()?,
        comment_rate: 0.0,
        ..recops_testkit::GenConfig::default()
    };
    if let Some(c) = rest.first() {
        config.clusters = c.parse()?;
    }
    let ds = recops_testkit::generate(&config)?;
    let mut text = String::from("user_id,item_id,rating,timestamp\n");
    for r in &ds.interactions {
        text.push_str(&format!(
            "{},{},{},{}\n",
            r.user_id, r.product_id, r.rating, r.cmt_date
        ));
    }
    std::fs::write(out, text)?;
    Ok(())
}

/// Process CPU seconds (user + system, all threads) from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11usize, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn time(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    use recops_cf_training::{Als, AlsParams, Bpr, BprParams, Interactions};
    let [data, model, threads, iters, ..] = args else {
        return Err("usage: cf_bench time DATA.csv als|bpr THREADS ITERS".into());
    };
    let (threads, iters): (usize, usize) = (threads.parse()?, iters.parse()?);
    let home = recops_core::Home::new("/nonexistent-recops-home");
    let rows = recops_cf_training::read_interactions_csv(std::path::Path::new(data))?;
    let split = recops_data::temporal_split(&rows);
    let (nu, ni) = (split.n_users(), split.n_items());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let (wall, cpu) = pool
        .install(
            || -> Result<(f64, f64), Box<dyn std::error::Error + Send + Sync>> {
                match model.as_str() {
                    "als" => {
                        let m = AlsConfig::load(&home)?.model;
                        let conf = Interactions::from_entries(nu, ni, &split.train, |e| {
                            1.0 + m.alpha * e.rating
                        })?;
                        let params = AlsParams {
                            factors: m.factors,
                            regularization: m.regularization,
                            solver: m.solver,
                            cg_steps: m.cg_steps,
                        };
                        let mut als = Als::new(params, &conf, 42);
                        als.iterate();
                        let (t0, c0) = (std::time::Instant::now(), cpu_seconds());
                        for _ in 0..iters {
                            als.iterate();
                        }
                        Ok((t0.elapsed().as_secs_f64(), cpu_seconds() - c0))
                    }
                    _ => {
                        let m = BprConfig::load(&home)?.model;
                        let data = Interactions::from_entries(nu, ni, &split.train, |_| 1.0)?;
                        let params = BprParams {
                            factors: m.factors,
                            learning_rate: m.learning_rate,
                            regularization: m.regularization,
                            verify_negatives: m.verify_negatives,
                        };
                        let mut bpr = Bpr::new(params, &data, 42, threads);
                        bpr.epoch(0);
                        let (t0, c0) = (std::time::Instant::now(), cpu_seconds());
                        for e in 0..iters {
                            bpr.epoch(e as u64 + 1);
                        }
                        Ok((t0.elapsed().as_secs_f64(), cpu_seconds() - c0))
                    }
                }
            },
        )
        .map_err(|e| e.to_string())?;
    let n = iters.max(1) as f64;
    println!(
        "{{\"wall_ms\": {:.3}, \"cpu_ms\": {:.3}, \"nnz\": {}}}",
        wall * 1000.0 / n,
        cpu * 1000.0 / n,
        split.train.len()
    );
    Ok(())
}
