//! Bad input and faults: clear errors, never a panic, never model files of a broken run.

use recops_cf_training::{CfModel, Error, TrainConfig, TrainData, TrainOptions, train};
use recops_core::Home;
use recops_data::{RawInteraction, Split, temporal_split};

use crate::data::{als_config, bpr_config, split};

fn try_train(
    home: &Home,
    config: &TrainConfig,
    split: &Split,
) -> Result<recops_cf_training::TrainOutcome, Error> {
    train(
        home,
        config,
        TrainData {
            split,
            data_version: "v",
        },
        TrainOptions::default(),
    )
}

#[test]
fn empty_data_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let err = try_train(&home, &TrainConfig::Als(als_config()), &Split::default()).unwrap_err();
    assert!(matches!(err, Error::EmptyData { .. }), "{err}");
    assert!(
        err.to_string().contains("no interactions to train als"),
        "{err}"
    );
    let log = std::fs::read_to_string(home.cf_log("als").unwrap()).unwrap();
    assert!(
        log.contains("| ERROR | Training failed: no interactions"),
        "{log}"
    );
    assert!(!dir.path().join("artifacts").exists());
}

#[test]
fn more_factors_than_items_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<RawInteraction> = (0..30)
        .map(|i| RawInteraction {
            user_id: i % 6,
            item_id: i % 5,
            rating: 4.0,
            timestamp: i,
        })
        .collect();
    let err = try_train(
        &Home::new(dir.path()),
        &TrainConfig::Bpr(bpr_config()),
        &temporal_split(&rows),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::FactorsExceedItems {
                factors: 16,
                items: 5
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("set model.factors to at most 5"));
}

#[test]
fn users_and_items_without_training_interactions_get_a_warning_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let mut s = split();
    // An item that only appears in held-out rows, and a user with a single interaction.
    let extra_item = *s.item_ids.last().unwrap() + 1;
    s.item_ids.push(extra_item);
    let n_items = s.item_ids.len() as u32;
    s.test.push(recops_data::Entry {
        user: 0,
        item: n_items - 1,
        rating: 5.0,
        timestamp: i64::MAX,
    });
    s.test.sort_by_key(|e| (e.user, e.timestamp, e.item));
    let out = try_train(&home, &TrainConfig::Als(als_config()), &s).unwrap();
    assert!(
        out.model
            .item_factors
            .row(n_items as usize - 1)
            .iter()
            .all(|&v| v == 0.0)
    );
    let log = std::fs::read_to_string(home.cf_log("als").unwrap()).unwrap();
    assert!(
        log.contains("items have no training interactions; their factors stay zero"),
        "{log}"
    );
}

#[test]
fn nan_during_training_fails_the_run_and_writes_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let mut c = bpr_config();
    c.model.learning_rate = 10.0;
    c.model.regularization = 0.0;
    c.model.iterations = 100;
    c.training.early_stopping.enabled = false;
    let err = try_train(&home, &TrainConfig::Bpr(c), &split()).unwrap_err();
    assert!(matches!(err, Error::Diverged { .. }), "{err}");
    assert!(
        err.to_string().contains("the previous model is kept"),
        "{err}"
    );
    assert!(
        !dir.path().join("artifacts").exists(),
        "a diverged run wrote model files"
    );
}

#[test]
fn the_loader_refuses_models_whose_shapes_disagree_with_their_mappings() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let out = try_train(&home, &TrainConfig::Als(als_config()), &split()).unwrap();
    let good = CfModel::load(&out.model_dir).unwrap();
    good.check_mappings(&good.user_ids, &good.item_ids).unwrap();
    let err = good
        .check_mappings(&good.user_ids[1..], &good.item_ids)
        .unwrap_err();
    assert!(err.to_string().contains("id mappings"), "{err}");

    // One user id fewer than factor rows: refused on save and on load.
    let mut bad = good.clone();
    bad.user_ids.pop();
    let err = bad.save(&dir.path().join("bad")).unwrap_err();
    assert!(
        err.to_string()
            .contains("user_factors is 200 x 16 but the model has 199 user ids"),
        "{err}"
    );
    // Tampered metadata (a fingerprint of other mappings) is refused on load.
    let meta_path = out.model_dir.join("model.json");
    let text = std::fs::read_to_string(&meta_path).unwrap();
    std::fs::write(
        &meta_path,
        text.replace(&good.meta.mapping_fingerprint, "0000000000000000"),
    )
    .unwrap();
    let err = CfModel::load(&out.model_dir).unwrap_err();
    assert!(
        err.to_string().contains("do not match the fingerprint"),
        "{err}"
    );
    // A truncated tensor file is refused.
    std::fs::write(&meta_path, text).unwrap();
    let tensors = out.model_dir.join("model.safetensors");
    let bytes = std::fs::read(&tensors).unwrap();
    std::fs::write(&tensors, &bytes[..bytes.len() / 2]).unwrap();
    assert!(CfModel::load(&out.model_dir).is_err());
}
