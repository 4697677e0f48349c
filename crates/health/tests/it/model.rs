use std::path::Path;

use recops_cf_training::{
    AlsConfig, DEFAULT_ALS_CONFIG, TrainConfig, TrainData, TrainOptions, train,
};
use recops_core::{ConfigFormat, Home, parse_config};
use recops_data::{RawInteraction, temporal_split};
use recops_health::{ComponentStatus, check_model_health};
use recops_registry::{NewModel, Registry};

/// Trains a tiny ALS model in `home`, registers and promotes it; returns its id.
fn trained_model(home: &Home) -> recops_core::ModelId {
    let rows: Vec<RawInteraction> = (0..40i64)
        .flat_map(|u| {
            (0..8i64).map(move |t| RawInteraction {
                user_id: u,
                item_id: (u + t * 3) % 20,
                rating: 5.0,
                timestamp: t,
            })
        })
        .collect();
    let split = temporal_split(&rows);
    let mut config: AlsConfig = parse_config(
        DEFAULT_ALS_CONFIG,
        Path::new("als.yaml"),
        ConfigFormat::Yaml,
        &std::collections::HashMap::new(),
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
    let registry = Registry::open(home);
    registry
        .register(
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
    registry.promote(Some(&id), "test").unwrap();
    id
}

#[test]
fn a_registered_model_that_loads_is_healthy_and_broken_states_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());

    let none = check_model_health(&home);
    assert!(!none.healthy);
    assert!(none.error.unwrap().contains("Registry not found"));

    let id = trained_model(&home);
    let ok = check_model_health(&home);
    assert!(ok.healthy, "{ok:?}");
    assert_eq!(ok.status, ComponentStatus::Healthy);
    assert_eq!(ok.current_best.as_deref(), Some(id.as_str()));
    assert_eq!(ok.total_models, 1);
    assert!(ok.model_exists && ok.model_loads);

    // Damaged factors: the model no longer loads.
    let tensors = home.model_dir(&id).join("model.safetensors");
    std::fs::write(&tensors, b"not a safetensors file").unwrap();
    let bad = check_model_health(&home);
    assert!(!bad.healthy && bad.model_exists && !bad.model_loads);
    assert!(bad.error.unwrap().contains("model.safetensors"));

    // The folder gone.
    std::fs::remove_dir_all(home.model_dir(&id)).unwrap();
    let gone = check_model_health(&home);
    assert!(!gone.model_exists && gone.error.unwrap().contains("missing"));

    // A registry that is not JSON.
    std::fs::write(home.registry(), b"{ not json").unwrap();
    let corrupt = check_model_health(&home);
    assert!(!corrupt.healthy);
    assert!(corrupt.error.unwrap().contains("registry.json"));

    // No current best.
    std::fs::write(home.registry(), br#"{"current_best": null, "models": {}}"#).unwrap();
    let empty = check_model_health(&home);
    assert_eq!(empty.error.as_deref(), Some("No current best model"));
}
