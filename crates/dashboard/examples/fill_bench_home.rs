//! The dashboard benchmark of issue 16 (a measurement, not a test).
//!
//! ```text
//! cargo run --release -p recops-dashboard --example fill-bench-home -- DIR [--fill] [--requests N] [--no-cache] [--poll-minutes M]
//! ```
//!
//! `--fill` writes the benchmark home into DIR with seed 16: 100,000 pipeline runs over
//! a year, 2,000 training runs x 100 iterations, 30 days of per-minute service
//! rollups, 200 drift reports, plus registry, deployments, alert state and scheduler
//! state (the same generator as the tests, `tests/it/fill.rs`). Then a dashboard is
//! started in this process on 127.0.0.1, every page and API call is requested N times
//! in a row (after 3 warm-up requests) over HTTP/1.1 with keep-alive, and p50/p99
//! per URL are printed as a Markdown table. `--no-cache` turns the dashboard's short
//! result caches off (worst case). `--poll-minutes M` then polls every URL in a loop
//! for M minutes and prints this process's RSS every 30 s.
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

#[path = "../tests/it/fill.rs"]
mod fill;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use recops_core::Home;
use recops_dashboard::{DashboardOptions, spawn};

fn urls() -> Vec<String> {
    let mut v: Vec<String> = [
        "/",
        "/api/v1/overview",
        "/pipelines",
        "/api/v1/pipelines",
        "/api/v1/pipelines/trend?chart=duration&days=30",
        "/api/v1/pipelines/trend?chart=success_rate&days=30",
        "/pipelines?status=failed&pipeline=model_training",
        "/api/v1/pipelines?pipeline=health_check&status=success",
        "/pipelines/runs/data_refresh_000000000500",
        "/training",
        "/api/v1/training",
        "/api/v1/training/evaluation",
        "/training/runs/train_als_000000000000",
        "/api/v1/training/runs/train_als_000000000000/curves",
        "/api/v1/training/compare?curve=validation_ndcg&runs=",
        "/models",
        "/api/v1/models",
        "/service?range=30d",
        "/api/v1/service?range=30d",
        "/api/v1/service/chart?range=30d&chart=requests",
        "/api/v1/service/chart?range=30d&chart=latency",
        "/api/v1/service/chart?range=30d&chart=rates",
        "/api/v1/service/chart?range=24h&chart=latency",
        "/drift",
        "/api/v1/drift",
        "/api/v1/drift/chart?chart=severity",
        "/api/v1/drift/chart?chart=volume",
        "/alerts",
        "/api/v1/alerts",
        "/scheduler",
        "/api/v1/scheduler",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // Overlay 100 runs of 100 iterations.
    let runs: Vec<String> = (0..100)
        .map(|i| {
            format!(
                "train_{}_{:012x}",
                if i % 2 == 0 { "als" } else { "bpr" },
                i * 20
            )
        })
        .collect();
    if let Some(u) = v.iter_mut().find(|u| u.ends_with("runs=")) {
        u.push_str(&runs.join(","));
    }
    v
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().context(
        "usage: fill-bench-home DIR [--fill] [--requests N] [--no-cache] [--poll-minutes M]",
    )?;
    let flag = |f: &str| args.iter().any(|a| a == f);
    let value = |f: &str| {
        args.iter()
            .position(|a| a == f)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let home = Home::new(dir);
    if flag("--fill") {
        let started = Instant::now();
        fill::fill(&home, chrono::Utc::now(), &fill::BENCH, 16)?;
        println!(
            "filled {} in {:.1} s",
            home.root().display(),
            started.elapsed().as_secs_f64()
        );
    }
    let options = DashboardOptions {
        port: 0,
        cache: !flag("--no-cache"),
        ..DashboardOptions::default()
    };
    let dashboard = spawn(&home, options)?;
    recops_core::tls::install_crypto_provider();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let n = value("--requests").unwrap_or(100) as usize;
    println!("| request | p50 ms | p99 ms | max ms | bytes |\n|---|---:|---:|---:|---:|");
    for url in urls() {
        let full = format!("{}{url}", dashboard.url());
        let mut times = Vec::with_capacity(n);
        let mut bytes = 0;
        for i in 0..n + 3 {
            let t = Instant::now();
            let res = client.get(&full).send()?;
            anyhow::ensure!(res.status().is_success(), "{url}: {}", res.status());
            bytes = res.bytes()?.len();
            if i >= 3 {
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        let shown = if url.len() > 70 {
            format!("{}…", &url[..70])
        } else {
            url.clone()
        };
        println!(
            "| `{shown}` | {:.1} | {:.1} | {:.1} | {bytes} |",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times[times.len() - 1]
        );
    }
    if let Some(minutes) = value("--poll-minutes") {
        let end = Instant::now() + Duration::from_secs(minutes * 60);
        let mut next_report = Instant::now();
        let mut requests = 0u64;
        while Instant::now() < end {
            if Instant::now() >= next_report {
                println!(
                    "rss after {requests} polling requests: {:.1} MiB",
                    rss_mib()
                );
                next_report += Duration::from_secs(30);
            }
            for url in urls() {
                client
                    .get(format!("{}{url}", dashboard.url()))
                    .send()?
                    .bytes()?;
                requests += 1;
            }
        }
        println!(
            "rss after {requests} polling requests: {:.1} MiB",
            rss_mib()
        );
    }
    dashboard.stop()?;
    Ok(())
}
