//! Models from a home: the registry says which, the model folder holds the files.

use std::collections::HashMap;
use std::path::Path;

use recops_cf_training::{
    AlsConfig, CfModel, DEFAULT_ALS_CONFIG, Interactions, SERVING_INDEX_FILE, TrainConfig,
    TrainData, TrainOptions, top_n_for_user, train,
};
use recops_core::{ConfigFormat, Home, ModelId, error_chain, parse_config};
use recops_data::{RawInteraction, temporal_split};
use recops_registry::{NewModel, Registry};
use recops_serving::{Error, HomeModelSource, ModelSource, Unavailable};

fn trained(home: &Home) -> ModelId {
    trained_with_split(home).0
}

fn trained_with_split(home: &Home) -> (ModelId, recops_data::Split) {
    let rows: Vec<RawInteraction> = (0..30i64)
        .flat_map(|u| {
            (0..6i64).map(move |t| RawInteraction {
                user_id: 100 + u,
                item_id: (u + t * 5) % 25,
                rating: 4.0,
                timestamp: t,
            })
        })
        .collect();
    let split = temporal_split(&rows);
    let mut config: AlsConfig = parse_config(
        DEFAULT_ALS_CONFIG,
        Path::new("als.yaml"),
        ConfigFormat::Yaml,
        &HashMap::new(),
    )
    .unwrap();
    config.model.factors = 4;
    config.training.bert_init = false;
    let out = train(
        home,
        &TrainConfig::Als(config),
        TrainData {
            split: &split,
            data_version: "v1",
        },
        TrainOptions::default(),
    )
    .unwrap();
    let id = out.model.meta.model_id.clone();
    let reg = Registry::open(home);
    reg.register(
        &NewModel {
            model_id: id.clone(),
            model_type: recops_core::ModelType::Als,
            metrics: out.model.meta.metrics.clone(),
            baseline: out.model.meta.baseline.clone(),
            data_version: "v1".into(),
        },
        "test",
    )
    .unwrap();
    reg.promote(Some(&id), "test").unwrap();
    (id, split)
}

#[test]
fn current_best_loads_and_unknown_archived_or_broken_models_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let source = HomeModelSource::new(home.clone());
    assert_eq!(source.initial_model_id().unwrap(), None);

    let id = trained(&home);
    assert_eq!(
        source.initial_model_id().unwrap().as_deref(),
        Some(id.as_str())
    );
    let model = source.load(&id).unwrap();
    assert_eq!(model.model_id(), &id);
    assert_eq!(model.shape(), (30, 25));
    let rec = model.recommend(100, 5);
    assert!(!rec.fallback && rec.items.len() == 5);

    assert!(matches!(
        source.load(&"als_20990101_000000".parse().unwrap()),
        Err(Error::ModelUnavailable { .. })
    ));

    // One byte changed on the (shared) artifacts mount: refused before loading,
    // naming the model and the file, never a folder.
    let index = home.model_dir(&id).join(SERVING_INDEX_FILE);
    let good = std::fs::read(&index).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    std::fs::write(&index, &bad).unwrap();
    let err = source.load(&id).unwrap_err();
    let chain = error_chain(&err);
    assert!(
        matches!(
            err,
            Error::ModelUnavailable {
                reason: Unavailable::Damaged(_),
                ..
            }
        ),
        "{chain}"
    );
    assert!(
        chain.contains(&format!("model {id}: file serving.safetensors differs")),
        "{chain}"
    );
    assert!(!chain.contains(dir.path().to_str().unwrap()), "{chain}");
    std::fs::write(&index, &good).unwrap();
    source.load(&id).unwrap();

    std::fs::remove_file(&index).unwrap();
    let err = source.load(&id).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ModelUnavailable {
                reason: Unavailable::Damaged(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        error_chain(&err).contains("cannot read its file serving.safetensors"),
        "{err}"
    );

    Registry::open(&home).archive(&id, "test").unwrap();
    let err = source.load(&id).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ModelUnavailable {
                reason: Unavailable::Archived,
                ..
            }
        ),
        "{err}"
    );
    assert!(error_chain(&err).contains("archived"), "{err}");
}

#[test]
fn the_service_serves_the_top_10_the_evaluator_measured() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let (id, split) = trained_with_split(&home);
    let served = HomeModelSource::new(home.clone()).load(&id).unwrap();
    let model = CfModel::load_id(&home, &id).unwrap();
    // The evaluator ranks all but each user's training items (evaluate_factors); the
    // service also leaves out the held-out items the user rated. So the service's
    // top 10 is the evaluator's ranking without the held-out items.
    let (nu, ni) = (split.n_users(), split.n_items());
    let train = Interactions::from_entries(nu, ni, &split.train, |_| 1.0).unwrap();
    let test = Interactions::from_entries(nu, ni, &split.test, |_| 1.0).unwrap();
    assert_eq!(model.user_ids, split.user_ids);
    assert_eq!(model.item_ids, split.item_ids);
    let mut compared = 0;
    for (u, &user_id) in model.user_ids.iter().enumerate() {
        let held_out = test.user_row(u).0;
        let evaluated: Vec<i64> = top_n_for_user(
            model.user_factors.row(u),
            &model.item_factors,
            train.user_row(u).0,
            10 + held_out.len(),
        )
        .into_iter()
        .filter(|i| held_out.binary_search(i).is_err())
        .take(10)
        .map(|i| model.item_ids[i as usize])
        .collect();
        let rec = served.recommend(user_id, 10);
        assert!(!rec.fallback);
        let ids: Vec<i64> = rec.items.iter().map(|s| s.product_id).collect();
        assert_eq!(ids, evaluated, "user {user_id}");
        compared += 1;
    }
    assert_eq!(compared, 30);
}

#[test]
fn the_service_starts_from_the_deployed_model_then_current_best() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let source = HomeModelSource::new(home.clone());
    let best = trained(&home);
    let other: ModelId = "als_20000101_000000".parse().unwrap();
    let other = &other;
    std::fs::create_dir_all(home.model_dir(other)).unwrap();
    let reg = Registry::open(&home);
    reg.register(
        &NewModel {
            model_id: other.clone(),
            model_type: recops_core::ModelType::Als,
            metrics: [("ndcg@10".to_owned(), 0.0)].into(),
            baseline: Default::default(),
            data_version: "v1".into(),
        },
        "test",
    )
    .unwrap();
    // No deployment yet: current_best.
    assert_eq!(
        source.initial_model_id().unwrap().as_deref(),
        Some(best.as_str())
    );
    // A direct reload leaves a deployment record, and a restart serves it.
    source.admit(other).unwrap();
    source.reloaded(other, Some(&best)).unwrap();
    let deployed = reg.deployed().unwrap().unwrap();
    assert_eq!(&deployed.model_id, other);
    assert_eq!(deployed.action, recops_registry::DeployedBy::Reload);
    assert_eq!(source.initial_model_id().unwrap().as_ref(), Some(other));
    // The servable check refuses unknown and archived models (also from memory).
    assert!(
        source
            .admit(&"als_20991231_000000".parse().unwrap())
            .is_err()
    );
    reg.record_deployment(&best, recops_registry::DeployedBy::Operator, "x")
        .unwrap();
    reg.archive_unused(other, "old").unwrap();
    let err = error_chain(&source.admit(other).unwrap_err());
    assert!(err.contains("archived"), "{err}");
}
