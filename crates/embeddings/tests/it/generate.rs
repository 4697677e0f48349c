//! generate_embeddings and check_embedding_freshness on the tiny model: metadata,
//! statistics, incremental re-embedding, and never replacing a good file with a bad one.

use chrono::{Duration, TimeZone, Utc};
use recops_core::{Clock, FixedClock, Home};
use recops_embeddings::{
    EmbeddingsFile, Encoder, Error, FreshnessOptions, GenerateOptions, ProductEmbedder,
    check_embedding_freshness,
};

use crate::support::{assert_close, runtime, tiny_encoder, tiny_folder, tiny_spec};

const CATALOG: &str = "product_id,name,brand,category,description\n\
    11,Sữa rửa mặt,CeraVe,Skincare,\"Làm sạch dịu nhẹ, cho da nhạy cảm\"\n\
    12,Kem dưỡng ẩm,Laneige,Skincare,Dưỡng ẩm mềm mịn\n\
    13,Son môi,Maybelline,Makeup,\n\
    14,,,Makeup,\n\
    15,Máy khoan pin,Bosch,Tools,\"Máy khoan pin, kèm hai pin\"\n";

fn clock() -> FixedClock {
    FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 14, 3, 0, 0).unwrap())
}

struct Setup {
    _dir: tempfile::TempDir,
    home: Home,
}

fn home_with(catalog: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let path = home.ensure_parent(home.product_catalog()).unwrap();
    std::fs::write(path, catalog).unwrap();
    Setup { _dir: dir, home }
}

fn generate(
    enc: &mut Encoder,
    home: &Home,
    clock: &FixedClock,
    options: GenerateOptions,
) -> recops_embeddings::Result<recops_embeddings::GenerationStats> {
    ProductEmbedder::new(enc, clock.shared(), options).generate_embeddings(
        &home.product_catalog(),
        &home.product_embeddings(),
        2,
    )
}

#[test]
fn generates_the_file_with_metadata_and_statistics() {
    let Some(rt) = runtime() else { return };
    let (_m, mut enc) = tiny_encoder(rt);
    let s = home_with(CATALOG);
    let clock = clock();
    let stats = generate(&mut enc, &s.home, &clock, GenerateOptions::default()).unwrap();
    assert_eq!(stats.num_products, 4);
    assert_eq!(stats.embedding_dim, 16);
    assert_eq!(stats.reembedded, 4);
    assert_eq!(stats.reused, 0);
    assert_eq!(stats.empty_descriptions, 1);
    assert_eq!(stats.skipped_without_text, 1);
    assert_eq!(stats.batch_size, 2);
    assert_eq!(
        stats.full_reason.as_deref(),
        Some("no previous embeddings file")
    );
    assert_eq!(stats.created_at, "2025-01-14T03:00:00.000000+00:00");

    let file = EmbeddingsFile::read(&s.home.product_embeddings()).unwrap();
    assert_eq!(file.product_ids, vec![11, 12, 13, 15]);
    assert_eq!(file.metadata.dim, 16);
    assert_eq!(file.metadata.model, *enc.identity());
    assert_eq!(file.metadata.model.prefix, "passage: ");
    assert_eq!(file.metadata.created_at, clock.now());
    assert_eq!(
        file.metadata.model.model_sha256,
        recops_embeddings::sha256_file(&enc.spec().model_path).unwrap()
    );
    // Each row is the product's "name. description" embedded by the encoder.
    let direct = enc
        .embed_batch(&["Sữa rửa mặt. Làm sạch dịu nhẹ, cho da nhạy cảm", "Son môi"])
        .unwrap();
    assert_close(file.vector(0), direct.row(0), 1e-5);
    assert_close(file.vector(2), direct.row(1), 1e-5);
}

#[test]
fn rerunning_re_embeds_only_changed_products_or_says_why_all() {
    let Some(rt) = runtime() else { return };
    let (_m, mut enc) = tiny_encoder(rt.clone());
    let s = home_with(CATALOG);
    let clock = clock();
    generate(&mut enc, &s.home, &clock, GenerateOptions::default()).unwrap();
    let first = EmbeddingsFile::read(&s.home.product_embeddings()).unwrap();

    // Unchanged catalog and model: nothing goes through the model.
    clock.advance(Duration::days(7));
    let stats = generate(&mut enc, &s.home, &clock, GenerateOptions::default()).unwrap();
    assert_eq!((stats.reembedded, stats.reused), (0, 4));
    assert_eq!(stats.full_reason, None);
    let second = EmbeddingsFile::read(&s.home.product_embeddings()).unwrap();
    assert_eq!(second.vectors, first.vectors);
    assert_eq!(second.metadata.created_at, clock.now());

    // One description changed, one product removed, one added.
    let changed = CATALOG
        .replace("Dưỡng ẩm mềm mịn", "Chống lão hóa")
        .replace(
            "15,Máy khoan pin,Bosch,Tools,\"Máy khoan pin, kèm hai pin\"\n",
            "",
        )
        + "16,Kem chống nắng,Anessa,Skincare,Bảo vệ da\n";
    std::fs::write(s.home.product_catalog(), changed).unwrap();
    let stats = generate(&mut enc, &s.home, &clock, GenerateOptions::default()).unwrap();
    assert_eq!((stats.reembedded, stats.reused, stats.removed), (2, 2, 1));
    let third = EmbeddingsFile::read(&s.home.product_embeddings()).unwrap();
    assert_eq!(third.product_ids, vec![11, 12, 13, 16]);
    assert_eq!(third.vector(0), first.vector(0));
    assert_ne!(third.vector(1), first.vector(1));

    // Another prefix changes every vector: all are re-embedded, and the reason is given.
    let dir = tiny_folder();
    let mut spec = tiny_spec(dir.path(), rt);
    spec.prefix = "query: ".into();
    let mut other = Encoder::open(spec).unwrap();
    let stats = generate(&mut other, &s.home, &clock, GenerateOptions::default()).unwrap();
    assert_eq!(stats.reembedded, 4);
    let reason = stats.full_reason.unwrap();
    assert!(reason.contains("prefix changed"), "{reason}");

    // --full forces it.
    let stats = generate(
        &mut other,
        &s.home,
        &clock,
        GenerateOptions {
            full: true,
            ..GenerateOptions::default()
        },
    )
    .unwrap();
    assert_eq!(stats.reembedded, 4);
    assert_eq!(
        stats.full_reason.as_deref(),
        Some("full re-embedding requested")
    );
}

#[test]
fn a_bad_catalog_or_a_failed_run_keeps_the_previous_file() {
    let Some(rt) = runtime() else { return };
    let (_m, mut enc) = tiny_encoder(rt.clone());
    let s = home_with(CATALOG);
    let clock = clock();
    generate(&mut enc, &s.home, &clock, GenerateOptions::default()).unwrap();
    let good = std::fs::read(s.home.product_embeddings()).unwrap();

    // Missing column.
    std::fs::write(s.home.product_catalog(), "product_id,name,brand\n1,Son,M\n").unwrap();
    let err = generate(&mut enc, &s.home, &clock, GenerateOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Catalog { .. }), "{err}");
    assert!(err.to_string().contains("data_product.csv line 1"), "{err}");
    assert_eq!(std::fs::read(s.home.product_embeddings()).unwrap(), good);

    // The model fails half-way (a text longer than the model's 24 positions with a
    // maximum length above it): nothing is written.
    let long = "sữa rửa mặt kem dưỡng ẩm da cho nhạy cảm ".repeat(4);
    std::fs::write(
        s.home.product_catalog(),
        format!("{CATALOG}20,Kem,X,Y,{long}\n"),
    )
    .unwrap();
    let dir = tiny_folder();
    let mut spec = tiny_spec(dir.path(), rt);
    spec.max_length = 64;
    let mut too_long = Encoder::open(spec).unwrap();
    let err = generate(&mut too_long, &s.home, &clock, GenerateOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Inference { .. }), "{err}");
    assert_eq!(std::fs::read(s.home.product_embeddings()).unwrap(), good);
    let leftovers: Vec<_> = std::fs::read_dir(s.home.product_embeddings().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");

    // A damaged previous file is not reused, and is replaced by a complete one.
    std::fs::write(s.home.product_embeddings(), &good[..good.len() / 2]).unwrap();
    std::fs::write(s.home.product_catalog(), CATALOG).unwrap();
    let stats = generate(&mut enc, &s.home, &clock, GenerateOptions::default()).unwrap();
    assert!(
        stats
            .full_reason
            .unwrap()
            .starts_with("previous file unreadable")
    );
    assert_eq!(
        EmbeddingsFile::read(&s.home.product_embeddings())
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn freshness_after_generation_follows_the_clock_and_the_model() {
    let Some(rt) = runtime() else { return };
    let (_m, mut enc) = tiny_encoder(rt.clone());
    let s = home_with(CATALOG);
    let clock = clock();
    generate(&mut enc, &s.home, &clock, GenerateOptions::default()).unwrap();
    let path = s.home.product_embeddings();
    let check = |expected| {
        check_embedding_freshness(
            &path,
            &FreshnessOptions {
                clock: &clock,
                stale_after_days: 30,
                expected: Some(expected),
            },
        )
        .unwrap()
    };
    let f = check(enc.identity());
    assert_eq!((f.age_days, f.is_stale), (0, false));
    assert_eq!((f.num_embeddings, f.embedding_dim), (4, 16));
    assert_eq!(f.model_name, enc.identity().name);
    clock.advance(Duration::days(31));
    let f = check(enc.identity());
    assert_eq!(
        (f.age_days, f.is_stale, f.model_mismatch),
        (31, true, false)
    );

    clock.advance(Duration::days(-31));
    let dir = tiny_folder();
    let mut spec = tiny_spec(dir.path(), rt);
    spec.max_length = 12;
    let other = Encoder::open(spec).unwrap();
    let f = check(other.identity());
    assert!(f.model_mismatch && f.is_stale);
    assert!(
        f.mismatch_reasons[0].contains("16 -> 12"),
        "{:?}",
        f.mismatch_reasons
    );
}
