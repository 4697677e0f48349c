//! Fills a home with every store the dashboard reads, through the stores' own
//! libraries (schemas, registry, deployment history, alert state, drift reports) and,
//! for bulk rows, plain inserts into the schemas those libraries created. Seeded, so
//! every fill of a scale is the same. Shared by the tests and the benchmark example.

#![allow(dead_code, unreachable_pub)]

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use recops_alerting::{AlertManager, Severity};
use recops_core::{FixedClock, Home};
use recops_deploy::{
    DeploymentAction, DeploymentHistory, DeploymentRecord, DeploymentStatus, Verification,
};
use recops_registry::{NewModel, Registry};
use recops_tracking::{
    LatencyHistogram, MinuteRollup, PipelineTracker, ServiceMetricsStore, TrainingTracker,
};
use rusqlite::params;

/// A string that would run script if a page did not escape it.
pub const HOSTILE: &str = "\"><img src=x onerror=alert(1)>";

/// How much history to write.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub pipeline_runs: usize,
    pub pipeline_days: i64,
    pub training_runs: usize,
    pub iterations: usize,
    pub service_days: i64,
    pub drift_reports: usize,
}

/// A home for the tests: a bit of everything.
pub const SMALL: Scale = Scale {
    pipeline_runs: 120,
    pipeline_days: 10,
    training_runs: 6,
    iterations: 15,
    service_days: 2,
    drift_reports: 4,
};

/// The benchmark home of issue 16.
pub const BENCH: Scale = Scale {
    pipeline_runs: 100_000,
    pipeline_days: 365,
    training_runs: 2_000,
    iterations: 100,
    service_days: 30,
    drift_reports: 200,
};

const PIPELINES: &[&str] = &[
    "data_refresh",
    "model_training",
    "model_deployment",
    "drift_detection",
    "health_check",
    "bert_embeddings",
    "scheduler.health_check",
];

/// splitmix64: a tiny seeded generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

fn ts(t: DateTime<Utc>) -> String {
    recops_core::format_timestamp(t)
}

/// Fills `home` as of `now`.
pub fn fill(home: &Home, now: DateTime<Utc>, scale: &Scale, seed: u64) -> Result<()> {
    let mut rng = Rng::new(seed);
    pipelines(home, now, scale, &mut rng)?;
    training(home, now, scale, &mut rng)?;
    service(home, now, scale, &mut rng)?;
    registry_and_deployments(home, now)?;
    alerts(home, now)?;
    drift(home, now, scale, &mut rng)?;
    scheduler(home, now)?;
    Ok(())
}

fn pipelines(home: &Home, now: DateTime<Utc>, scale: &Scale, rng: &mut Rng) -> Result<()> {
    let clock = FixedClock::new(now - Duration::hours(1));
    let tracker = PipelineTracker::open_path(&home.pipeline_db(), clock.shared())?;
    // Through the library: a failure with a hostile message, and a run that died.
    let run = tracker.start_run("model_training", serde_json::json!({"note": HOSTILE}))?;
    tracker.fail_run(&run, HOSTILE)?;
    clock.set(now - Duration::hours(30));
    tracker.start_run("data_refresh", serde_json::json!({}))?;
    let mut conn = rusqlite::Connection::open(home.pipeline_db())?;
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare(
            "INSERT INTO pipeline_runs (run_id, pipeline_name, status, started_at, finished_at, \
             duration_seconds, error_message, metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let span = scale.pipeline_days * 86_400;
        for i in 0..scale.pipeline_runs {
            let name = PIPELINES[rng.below(PIPELINES.len() as u64) as usize];
            let started =
                now - Duration::seconds(span * (i as i64 + 1) / scale.pipeline_runs as i64 + 7200);
            let roll = rng.f64();
            let status = if roll < 0.9 {
                "success"
            } else if roll < 0.98 {
                "failed"
            } else {
                "cancelled"
            };
            let duration = 5.0 + 600.0 * rng.f64() * rng.f64();
            let error = (status == "failed").then(|| {
                format!(
                    "step {} failed: exit code {}",
                    rng.below(5),
                    1 + rng.below(3)
                )
            });
            let meta = serde_json::json!({
                "total_records": 100_000 + i, "users": 5_000 + i / 10, "items": 800 + i / 100,
                "data_version": format!("xxh3-128:{:032x}", rng.next_u64()),
                "mean_comment_quality": 0.625,
            });
            tx_row(&mut st, i, name, status, started, duration, error, &meta)?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn tx_row(
    st: &mut rusqlite::Statement<'_>,
    i: usize,
    name: &str,
    status: &str,
    started: DateTime<Utc>,
    duration: f64,
    error: Option<String>,
    meta: &serde_json::Value,
) -> Result<()> {
    let finished = started + Duration::milliseconds((duration * 1000.0) as i64);
    st.execute(params![
        format!("{}_{:012x}", name.replace('.', "_"), i),
        name,
        status,
        ts(started),
        ts(finished),
        duration,
        error,
        meta.to_string()
    ])?;
    Ok(())
}

fn training(home: &Home, now: DateTime<Utc>, scale: &Scale, rng: &mut Rng) -> Result<()> {
    // The schema, made by the tracker.
    drop(TrainingTracker::open_path(
        &home.training_db(),
        FixedClock::new(now).shared(),
    )?);
    let mut conn = rusqlite::Connection::open(home.training_db())?;
    let tx = conn.transaction()?;
    {
        let mut run_st = tx.prepare(
            "INSERT INTO training_runs (run_id, model_type, started_at, completed_at, status, \
             hyperparameters, recall_at_10, ndcg_at_10, coverage, baseline_recall_at_10, improvement_pct, \
             training_time_seconds, data_version, model_id, registry_status) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?;
        let mut it_st = tx.prepare(
            "INSERT INTO iteration_metrics (run_id, iteration, timestamp, loss, validation_recall, \
             validation_ndcg, wall_time_seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for i in 0..scale.training_runs {
            let model_type = if i % 2 == 0 { "als" } else { "bpr" };
            let run_id = format!("train_{model_type}_{i:012x}");
            let started = now - Duration::minutes(30 * (scale.training_runs - i) as i64);
            let recall = 0.15 + 0.1 * rng.f64();
            let baseline = 0.14;
            run_st.execute(params![
                run_id,
                model_type,
                ts(started),
                ts(started + Duration::minutes(5)),
                "completed",
                serde_json::json!({"factors": 64, "regularization": 0.01, "note": HOSTILE})
                    .to_string(),
                recall,
                recall * 0.8,
                0.3,
                baseline,
                (recall / baseline - 1.0) * 100.0,
                300.0,
                "xxh3-128:00",
                format!("{model_type}_20250115_{:06}", i % 1_000_000),
                "active",
            ])?;
            for it in 0..scale.iterations {
                let x = it as f64;
                it_st.execute(params![
                    run_id,
                    it as i64,
                    ts(started + Duration::seconds(3 * it as i64)),
                    1000.0 / (1.0 + x) + 5.0 * rng.f64(),
                    recall * (1.0 - (-x / 5.0).exp()),
                    recall * 0.8 * (1.0 - (-x / 5.0).exp()),
                    3.0 * x,
                ])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

fn service(home: &Home, now: DateTime<Utc>, scale: &Scale, rng: &mut Rng) -> Result<()> {
    let store = ServiceMetricsStore::open_path(&home.service_db())?;
    let minutes = scale.service_days * 1440;
    let start = recops_tracking::truncate_minute(now) - Duration::minutes(minutes);
    let mut batch = Vec::with_capacity(1440);
    for m in 0..minutes {
        let mut latency = LatencyHistogram::new();
        let requests = 20 + rng.below(40);
        let spike = if m % 997 == 0 { 400.0 } else { 0.0 };
        for _ in 0..requests.min(25) {
            latency.record(20.0 + 60.0 * rng.f64() + spike);
        }
        batch.push(MinuteRollup {
            minute: start + Duration::minutes(m),
            endpoint: "/recommend".into(),
            model_id: "als_20250115_000000".into(),
            instance: String::new(),
            request_count: latency.count(),
            error_count: u64::from(rng.below(100) == 0),
            fallback_count: rng.below(4),
            latency,
        });
        if batch.len() == 1440 {
            store.record(&batch)?;
            batch.clear();
        }
    }
    store.record(&batch)?;
    Ok(())
}

fn registry_and_deployments(home: &Home, now: DateTime<Utc>) -> Result<()> {
    let clock = FixedClock::new(now - Duration::days(3));
    let registry = Registry::with_clock(home, clock.shared());
    let ids = [
        "als_20250113_000000",
        "bpr_20250114_000000",
        "als_20250115_000000",
    ];
    for (i, id) in ids.iter().enumerate() {
        let model_id: recops_core::ModelId = id.parse()?;
        std::fs::create_dir_all(home.model_dir(&model_id))?;
        registry.register(
            &NewModel {
                model_id,
                model_type: id[..3].parse().expect("als or bpr"),
                metrics: [
                    ("ndcg@10".to_owned(), 0.15 + 0.01 * i as f64),
                    ("recall@10".to_owned(), 0.2),
                ]
                .into(),
                baseline: [("recall@10".to_owned(), 0.14)].into(),
                data_version: "xxh3-128:00".into(),
            },
            HOSTILE,
        )?;
        clock.advance(Duration::days(1));
    }
    registry.promote(None, "best ndcg@10")?;
    let record = |model: &str, prev: Option<&str>, status, action, hours: i64| DeploymentRecord {
        timestamp: ts(now - Duration::hours(hours)),
        model_id: model.parse().expect("a valid id"),
        previous_model_id: prev.map(|p| p.parse().expect("a valid id")),
        status,
        verification: Some(Verification {
            health_check: true,
            model_id_match: true,
            recommendations_work: true,
            errors: vec![],
        }),
        rollback_triggered: false,
        rollback_status: None,
        rollback_verification: None,
        action,
        reason: None,
        duration_seconds: 1.5,
    };
    let path = home.deployment_history();
    DeploymentHistory::append(
        &path,
        record(
            ids[0],
            None,
            DeploymentStatus::Success,
            DeploymentAction::Deploy,
            40,
        ),
    )?;
    DeploymentHistory::append(
        &path,
        record(
            ids[1],
            Some(ids[0]),
            DeploymentStatus::Success,
            DeploymentAction::Deploy,
            20,
        ),
    )?;
    let mut failed = record(
        ids[2],
        Some(ids[1]),
        DeploymentStatus::Failed,
        DeploymentAction::Deploy,
        5,
    );
    failed.reason = Some(HOSTILE.into());
    DeploymentHistory::append(&path, failed)?;
    Ok(())
}

fn alerts(home: &Home, now: DateTime<Utc>) -> Result<()> {
    let clock = FixedClock::new(now - Duration::minutes(20));
    let manager = AlertManager::builder(home).clock(clock.shared()).build()?;
    manager.observe(
        "high_latency",
        true,
        &format!("avg_latency_ms=250 > 200 {HOSTILE}"),
        Severity::Warning,
    );
    manager.observe(
        "pipeline_data_refresh_failed",
        true,
        "data_refresh failed",
        Severity::Critical,
    );
    manager.observe("high_error_rate", false, "", Severity::Critical);
    manager.silence_for("pipeline_*", Duration::hours(6), HOSTILE)?;
    Ok(())
}

fn drift(home: &Home, now: DateTime<Utc>, scale: &Scale, rng: &mut Rng) -> Result<()> {
    let n = 4_000usize;
    let day = 86_400_000_000i64;
    let t0 = (now - Duration::days(40)).timestamp_micros();
    let users: Vec<i64> = (0..n).map(|_| rng.below(500) as i64).collect();
    let items: Vec<i64> = (0..n)
        .map(|i| (rng.below(200) + if i > n * 4 / 5 { 50 } else { 0 }) as i64)
        .collect();
    let ratings: Vec<u8> = (0..n)
        .map(|i| (1 + rng.below(5) as u8).max(if i > n * 4 / 5 { 3 } else { 1 }))
        .collect();
    let dates: Vec<i64> = (0..n)
        .map(|i| t0 + (i as i64) * 40 * day / n as i64)
        .collect();
    let input = recops_drift::DriftInput::from_columns(users, items, ratings, dates);
    let mut results = recops_drift::detect_drift(&input, &recops_core::DriftSettings::default());
    for r in 0..scale.drift_reports {
        let at = now - Duration::days((scale.drift_reports - r) as i64);
        results.overall_severity = match rng.below(3) {
            0 => recops_drift::Severity::Low,
            1 => recops_drift::Severity::Medium,
            _ => recops_drift::Severity::High,
        };
        results.popularity_drift.jaccard_similarity = 0.5 + 0.5 * rng.f64();
        results.interaction_drift.new.interactions_per_day = 80.0 + 40.0 * rng.f64();
        recops_drift::generate_drift_report(home, &results, Some("xxh3-128:00"), at)?;
    }
    Ok(())
}

fn scheduler(home: &Home, now: DateTime<Utc>) -> Result<()> {
    let state = recops_scheduler::StateStore::open(&home.scheduler_state_db())?;
    state.ensure("data_refresh", now - Duration::days(2))?;
    state.finish(
        "data_refresh",
        "scheduler_data_refresh_1",
        now - Duration::hours(20),
        true,
    )?;
    state.ensure("drift_detection", now - Duration::days(2))?;
    state.set_overdue("drift_detection", Some(now - Duration::hours(3)))?;
    Ok(())
}
