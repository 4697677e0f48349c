//! Whole training runs: quality against the baseline, early stopping, checkpoints and
//! resume, warm start, BERT init, model files, log lines.

use std::collections::HashMap;

use recops_cf_training::{
    CfModel, Error, Factors, IterationReport, ModelType, TrainConfig, TrainData, TrainOptions,
    train,
};
use recops_core::Home;

use crate::data::{als_config, bpr_config, clock, split};

fn run(home: &Home, config: &TrainConfig) -> recops_cf_training::TrainOutcome {
    let split = split();
    let c = clock();
    train(
        home,
        config,
        TrainData {
            split: &split,
            data_version: "test-v1",
        },
        TrainOptions {
            clock: c.shared(),
            ..Default::default()
        },
    )
    .unwrap()
}

/// The shop-shaped data of recops-testkit (taste clusters, long-tail popularity,
/// ratings skewed to 4-5): both models beat the popularity baseline on ndcg@10.
#[test]
fn als_and_bpr_beat_popularity_on_testkit_shop_data() {
    let ds = recops_testkit::generate(&recops_testkit::GenConfig {
        users: 300,
        products: 80,
        interactions: 6_000,
        ..recops_testkit::GenConfig::default()
    })
    .unwrap();
    let rows: Vec<recops_data::RawInteraction> = ds
        .interactions
        .iter()
        .map(|r| recops_data::RawInteraction {
            user_id: r.user_id,
            item_id: r.product_id,
            rating: f32::from(r.rating),
            timestamp: r.cmt_date,
        })
        .collect();
    let split = recops_data::temporal_split(&rows);
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    for config in [
        TrainConfig::Als(als_config()),
        TrainConfig::Bpr(bpr_config()),
    ] {
        let out = train(
            &home,
            &config,
            TrainData {
                split: &split,
                data_version: "testkit",
            },
            TrainOptions {
                clock: clock().shared(),
                ..Default::default()
            },
        )
        .unwrap();
        let mt = config.model_type();
        assert!(
            out.beats_baseline,
            "{mt}: {:?} vs {:?}",
            out.metrics, out.baseline
        );
        assert!(
            out.metrics.ndcg(10) > 1.1 * out.baseline.ndcg(10),
            "{mt}: ndcg {} vs baseline {}",
            out.metrics.ndcg(10),
            out.baseline.ndcg(10)
        );
    }
}

#[test]
fn als_and_bpr_beat_popularity_on_clustered_data_and_write_loadable_models() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    for config in [
        TrainConfig::Als(als_config()),
        TrainConfig::Bpr(bpr_config()),
    ] {
        let out = run(&home, &config);
        let mt = config.model_type();
        assert!(
            out.beats_baseline,
            "{mt}: {:?} vs {:?}",
            out.metrics, out.baseline
        );
        assert!(
            out.metrics.ndcg(10) > 1.2 * out.baseline.ndcg(10),
            "{mt}: ndcg {} vs baseline {}",
            out.metrics.ndcg(10),
            out.baseline.ndcg(10)
        );
        assert!(out.improvement_pct > 0.0);
        assert_eq!(
            out.metrics.at.iter().map(|m| m.k).collect::<Vec<_>>(),
            vec![10, 20]
        );
        // The files load back identical, with the metadata the registry needs.
        let loaded = CfModel::load(&out.model_dir).unwrap();
        assert_eq!(loaded, out.model);
        assert_eq!(loaded.meta.model_type, mt);
        assert_eq!(loaded.meta.data_version, "test-v1");
        assert!(
            loaded.meta.metrics.contains_key("ndcg@10")
                && loaded.meta.baseline.contains_key("recall@10")
        );
        assert!(
            loaded.meta.model_id.starts_with(&format!("{mt}_20250115_")),
            "{}",
            loaded.meta.model_id
        );
        assert_eq!(loaded.user_factors.cols(), mt.columns(16));
        // recommend() answers for a known user and excludes what it is told to.
        let user = loaded.user_ids[0];
        let recs = loaded.recommend(user, 5, &[loaded.item_ids[0]]).unwrap();
        assert_eq!(recs.len(), 5);
        assert!(recs.windows(2).all(|w| w[0].1 >= w[1].1));
        assert!(recs.iter().all(|r| r.0 != loaded.item_ids[0]));
        assert!(loaded.recommend(-1, 5, &[]).is_none());
    }
}

#[test]
fn als_loss_decreases_every_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = als_config();
    c.training.early_stopping.enabled = false;
    let out = run(&Home::new(dir.path()), &TrainConfig::Als(c));
    let losses: Vec<f64> = out.history.iter().map(|r| r.loss).collect();
    assert_eq!(losses.len(), 15);
    for w in losses.windows(2) {
        assert!(w[1] <= w[0] * (1.0 + 1e-5), "loss went up: {losses:?}");
    }
    assert!(losses[14] < 0.9 * losses[0], "{losses:?}");
}

#[test]
fn early_stopping_stops_and_keeps_the_best_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = bpr_config();
    c.model.iterations = 100;
    c.training.early_stopping.eval_every = 1;
    c.training.early_stopping.patience = 3;
    // No later validation can beat the first by a whole ndcg point.
    c.training.early_stopping.min_delta = 1.0;
    let out = run(&Home::new(dir.path()), &TrainConfig::Bpr(c));
    assert!(out.stopped_early);
    assert_eq!(
        out.history.len(),
        4,
        "first validation + 3 without improvement"
    );
    assert_eq!(out.best_iteration, 1);
    assert_eq!(out.model.meta.training.best_iteration, 1);
    assert!(out.history.iter().all(|r| r.validation_ndcg.is_some()));
    let log = std::fs::read_to_string(dir.path().join("logs/cf/bpr.log")).unwrap();
    assert!(log.contains("Early stopping at iteration 4"), "{log}");
}

fn factors_of(out: &recops_cf_training::TrainOutcome) -> (Factors, Factors) {
    (
        out.model.user_factors.clone(),
        out.model.item_factors.clone(),
    )
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    for config in [
        TrainConfig::Als(als_config()),
        TrainConfig::Bpr(bpr_config()),
    ] {
        let mt = config.model_type();
        let config = match config {
            TrainConfig::Als(mut c) => {
                c.training.checkpoint_every = 3;
                c.model.iterations = 10;
                c.training.early_stopping.patience = 50;
                TrainConfig::Als(c)
            }
            TrainConfig::Bpr(mut c) => {
                c.training.checkpoint_every = 3;
                c.model.iterations = 12;
                c.training.early_stopping.eval_every = 2;
                c.training.early_stopping.patience = 50;
                TrainConfig::Bpr(c)
            }
        };
        let split = split();
        let straight_dir = tempfile::tempdir().unwrap();
        let straight = run(&Home::new(straight_dir.path()), &config);

        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let data = TrainData {
            split: &split,
            data_version: "test-v1",
        };
        let err = train(
            &home,
            &config,
            data,
            TrainOptions {
                clock: clock().shared(),
                interrupt_after: Some(7),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::Interrupted { iteration: 7 }),
            "{mt}: {err}"
        );
        let ckpts: Vec<_> = std::fs::read_dir(dir.path().join("checkpoints").join(mt.as_str()))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            ckpts.contains(&"checkpoint_00006.safetensors".to_owned()),
            "{ckpts:?}"
        );
        assert!(
            !dir.path().join("artifacts").exists(),
            "no model files for an interrupted run"
        );

        let mut seen: Vec<IterationReport> = Vec::new();
        let mut cb = |r: &IterationReport| seen.push(*r);
        let resumed = train(
            &home,
            &config,
            data,
            TrainOptions {
                resume: true,
                clock: clock().shared(),
                on_iteration: Some(&mut cb),
                ..Default::default()
            },
        )
        .unwrap();
        // Iterations 7.. ran again from the checkpoint of iteration 6.
        assert_eq!(seen.first().map(|r| r.iteration), Some(7), "{mt}");
        assert_eq!(
            factors_of(&resumed),
            factors_of(&straight),
            "{mt}: factors differ"
        );
        assert_eq!(resumed.metrics, straight.metrics);
        assert_eq!(resumed.best_iteration, straight.best_iteration);
        let losses = |o: &recops_cf_training::TrainOutcome| {
            o.history
                .iter()
                .map(|r| (r.iteration, r.loss, r.validation_ndcg))
                .collect::<Vec<_>>()
        };
        assert_eq!(losses(&resumed), losses(&straight));
        assert_eq!(resumed.model.meta.model_id, straight.model.meta.model_id);
    }
}

#[test]
fn resume_refuses_a_checkpoint_of_another_config() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let split = split();
    let data = TrainData {
        split: &split,
        data_version: "v",
    };
    let mut c = als_config();
    c.training.checkpoint_every = 2;
    let _ = train(
        &home,
        &TrainConfig::Als(c.clone()),
        data,
        TrainOptions {
            interrupt_after: Some(3),
            ..Default::default()
        },
    );
    c.model.regularization = 0.5;
    let err = train(
        &home,
        &TrainConfig::Als(c),
        data,
        TrainOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("different config"), "{err}");
}

/// Checkpoints belong to one unfinished run: cleared when it finishes, and a later
/// `--resume` (nothing to resume, or a stale checkpoint of the finished run left by a
/// crash between the model write and the clean-up) trains afresh under a new id and
/// never writes into the finished model's folder.
#[test]
fn checkpoints_are_cleared_on_success_and_never_resume_into_a_finished_model() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let split = split();
    let data = TrainData {
        split: &split,
        data_version: "v",
    };
    let mut c = als_config();
    c.training.checkpoint_every = 2;
    let config = TrainConfig::Als(c);
    let opts = |resume, interrupt_after| TrainOptions {
        resume,
        interrupt_after,
        clock: clock().shared(),
        ..Default::default()
    };
    let ckpt_dir = dir.path().join("checkpoints/als");
    let count = |d: &std::path::Path| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0);
    assert!(train(&home, &config, data, opts(false, Some(3))).is_err());
    let saved: Vec<(std::ffi::OsString, Vec<u8>)> = std::fs::read_dir(&ckpt_dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    assert!(!saved.is_empty());
    let first = train(&home, &config, data, opts(true, None)).unwrap();
    assert_eq!(
        count(&ckpt_dir),
        0,
        "checkpoints of a finished run are cleared"
    );
    let model_json = first.model_dir.join("model.json");
    let before = std::fs::read(&model_json).unwrap();

    // Nothing to resume: a fresh run, under a new id.
    let second = train(&home, &config, data, opts(true, None)).unwrap();
    assert_ne!(second.model.meta.model_id, first.model.meta.model_id);
    let log = std::fs::read_to_string(home.cf_log("als").unwrap()).unwrap();
    assert!(
        log.contains("--resume: nothing to resume (no checkpoint in"),
        "{log}"
    );

    // A stale checkpoint of the finished first run.
    for (name, bytes) in &saved {
        std::fs::write(ckpt_dir.join(name), bytes).unwrap();
    }
    let third = train(&home, &config, data, opts(true, None)).unwrap();
    assert_ne!(third.model.meta.model_id, first.model.meta.model_id);
    let log = std::fs::read_to_string(home.cf_log("als").unwrap()).unwrap();
    assert!(
        log.contains(&format!(
            "the checkpoint's run already finished as model {}",
            first.model.meta.model_id
        )),
        "{log}"
    );
    assert_eq!(
        std::fs::read(&model_json).unwrap(),
        before,
        "never rewritten"
    );
    assert_eq!(count(&ckpt_dir), 0);
}

#[test]
fn same_seed_data_and_threads_give_identical_models() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let config = TrainConfig::Bpr(bpr_config());
    let a = run(&Home::new(a_dir.path()), &config);
    let b = run(&Home::new(b_dir.path()), &config);
    assert_eq!(factors_of(&a), factors_of(&b));
    let mut other_seed = bpr_config();
    other_seed.training.seed = 43;
    let c = run(&Home::new(a_dir.path()), &TrainConfig::Bpr(other_seed));
    assert_ne!(factors_of(&a), factors_of(&c));
}

#[test]
fn warm_start_and_bert_init() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let first = run(&home, &TrainConfig::Als(als_config()));
    let mut c = als_config();
    c.training.warm_start = true;
    let split = split();
    let second = train(
        &home,
        &TrainConfig::Als(c.clone()),
        TrainData {
            split: &split,
            data_version: "v2",
        },
        TrainOptions {
            warm_start: Some(&first.model),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        second.model.meta.training.init,
        format!("warm_start:{}", first.model.meta.model_id)
    );
    // Without a model to start from: random init and a warning.
    let third = train(
        &home,
        &TrainConfig::Als(c),
        TrainData {
            split: &split,
            data_version: "v3",
        },
        TrainOptions::default(),
    )
    .unwrap();
    assert_eq!(third.model.meta.training.init, "random");
    let log = std::fs::read_to_string(home.cf_log("als").unwrap()).unwrap();
    assert!(
        log.contains("| WARNING | warm_start: no earlier als model found; using random init"),
        "{log}"
    );

    // BERT init: absent file -> warning; a file -> "bert".
    let mut c = als_config();
    c.training.bert_init = true;
    let out = run(&home, &TrainConfig::Als(c.clone()));
    assert_eq!(out.model.meta.training.init, "random");
    let log = std::fs::read_to_string(home.cf_log("als").unwrap()).unwrap();
    assert!(log.contains("bert_init: no product embeddings at"), "{log}");
    let ids: Vec<i64> = split.item_ids.iter().copied().step_by(2).collect();
    let dim = 24;
    let vectors: Vec<f32> = (0..ids.len() * dim)
        .map(|x| ((x * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    write_embeddings(&home, &ids, dim, &vectors);
    let out = run(&home, &TrainConfig::Als(c));
    assert_eq!(out.model.meta.training.init, "bert");
    let log = std::fs::read_to_string(home.cf_log("als").unwrap()).unwrap();
    assert!(
        log.contains(&format!(
            "BERT init: {} of 80 items from product embeddings (24 dims -> 16 by SVD)",
            ids.len()
        )),
        "{log}"
    );
}

/// Writes an embeddings file in the layout of the embeddings job (F32 `embeddings`,
/// I64 `product_ids`).
fn write_embeddings(home: &Home, ids: &[i64], dim: usize, vectors: &[f32]) {
    use safetensors::tensor::{Dtype, TensorView};
    let vb: Vec<u8> = vectors.iter().flat_map(|v| v.to_le_bytes()).collect();
    let ib: Vec<u8> = ids.iter().flat_map(|v| v.to_le_bytes()).collect();
    let t = vec![
        (
            "embeddings",
            TensorView::new(Dtype::F32, vec![ids.len(), dim], &vb).unwrap(),
        ),
        (
            "product_ids",
            TensorView::new(Dtype::I64, vec![ids.len()], &ib).unwrap(),
        ),
    ];
    let bytes = safetensors::serialize(
        t,
        Some(HashMap::from([("model".to_owned(), "test".to_owned())])),
    )
    .unwrap();
    let path = home.product_embeddings();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn log_lines_match_the_spec_format() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let mut c = als_config();
    c.training.early_stopping.enabled = false;
    let out = run(&home, &TrainConfig::Als(c));
    let log = std::fs::read_to_string(home.cf_log(ModelType::Als.as_str()).unwrap()).unwrap();
    let messages: Vec<&str> = log
        .lines()
        .map(|l| {
            // `YYYY-MM-DD HH:MM:SS | INFO | message`
            let (ts, rest) = l.split_at(19);
            assert!(is_timestamp(ts), "bad timestamp in {l:?}");
            rest.strip_prefix(" | INFO | ")
                .unwrap_or_else(|| panic!("not an INFO line: {l:?}"))
        })
        .collect();
    assert_eq!(messages[0], "========== ALS Training Started ==========");
    assert_eq!(
        messages[1],
        "Config: factors=16, regularization=0.05, iterations=15"
    );
    assert_eq!(messages[2], "Training data: 200 users × 80 items");
    for (i, m) in messages[3..18].iter().enumerate() {
        let want = format!("Iteration {}/15 | loss=", i + 1);
        assert!(m.starts_with(&want), "{m:?}");
        assert!(m[want.len()..].parse::<f64>().is_ok(), "{m:?}");
    }
    let completed = messages[18].strip_prefix("Training completed in ").unwrap();
    assert!(
        completed.strip_suffix('s').unwrap().parse::<f64>().is_ok(),
        "{completed}"
    );
    assert!(
        messages[19].starts_with("Evaluation: recall@10="),
        "{}",
        messages[19]
    );
    assert!(messages[19].contains(", ndcg@10="));
    assert!(
        messages[20].starts_with("Baseline (popularity): recall@10="),
        "{}",
        messages[20]
    );
    let imp = messages[21].strip_prefix("Improvement: ").unwrap();
    assert!(imp.starts_with('+') && imp.ends_with('%'), "{imp}");
    assert_eq!(imp, format!("{:+.1}%", out.improvement_pct));
    // The other popularity variants and the gate (ndcg@10 against the strongest).
    assert!(messages[22].starts_with("Baseline (popularity_decay_7d): recall@10="));
    assert!(messages[23].starts_with("Baseline (popularity_decay_30d): recall@10="));
    assert!(
        messages[24].starts_with("Gate: ndcg@10=") && messages[24].ends_with(": passed"),
        "{}",
        messages[24]
    );
    assert_eq!(
        messages[25],
        format!("Model saved to {}", out.model_dir.display())
    );
}

fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}
