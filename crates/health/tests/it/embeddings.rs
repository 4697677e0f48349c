use chrono::{Duration, TimeZone, Utc};
use recops_core::{FixedClock, Home};
use recops_embeddings::{EmbeddingsFile, EmbeddingsMetadata, ModelIdentity};
use recops_health::{ComponentStatus, check_embeddings_health};

fn write(home: &Home, created: chrono::DateTime<Utc>) {
    let file = EmbeddingsFile {
        metadata: EmbeddingsMetadata {
            created_at: created,
            model: ModelIdentity {
                name: "test-model".into(),
                variant: "int8".into(),
                model_sha256: "a".repeat(64),
                tokenizer_sha256: "b".repeat(64),
                prefix: "passage: ".into(),
                max_length: 128,
            },
            dim: 3,
            num_embeddings: 2,
            catalog_sha256: "c".repeat(64),
        },
        product_ids: vec![10, 20],
        vectors: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        text_sha256: vec![[1; 32], [2; 32]],
    };
    file.write(&home.product_embeddings()).unwrap();
}

#[test]
fn missing_is_a_warning_fresh_is_healthy_stale_is_a_warning_damaged_is_unhealthy() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let now = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
    let clock = FixedClock::new(now);
    // No model installed for this home: ages are checked, the model comparison skipped.
    std::fs::create_dir_all(home.config_dir()).unwrap();
    std::fs::write(
        home.embeddings_config(),
        format!(
            "model:\n  models_dir: {}\n",
            dir.path().join("no-models").display()
        ),
    )
    .unwrap();

    let missing = check_embeddings_health(&home, &clock);
    assert_eq!(missing.status, ComponentStatus::Warning);
    assert!(missing.healthy && !missing.configured);
    assert!(missing.message.unwrap().contains("not configured"));

    write(&home, now - Duration::days(10));
    let fresh = check_embeddings_health(&home, &clock);
    assert_eq!(fresh.model_mismatch, Some(false));
    assert_eq!(fresh.status, ComponentStatus::Healthy, "{fresh:?}");
    assert_eq!(
        (
            fresh.age_days,
            fresh.is_stale,
            fresh.num_embeddings,
            fresh.embedding_dim
        ),
        (Some(10), Some(false), Some(2), Some(3))
    );

    write(&home, now - Duration::days(31));
    let stale = check_embeddings_health(&home, &clock);
    assert_eq!(stale.status, ComponentStatus::Warning);
    assert_eq!(stale.is_stale, Some(true));
    assert!(stale.message.unwrap().contains("31 days"));

    std::fs::write(home.product_embeddings(), b"garbage").unwrap();
    let damaged = check_embeddings_health(&home, &clock);
    assert_eq!(damaged.status, ComponentStatus::Unhealthy);
    assert!(!damaged.healthy);
}
