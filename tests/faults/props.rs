//! Property tests: ingest, config loading and request parsing never panic, whatever
//! the input (seeded, a bounded number of cases).

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use recops_core::{ConfigFormat, RecopsConfig, parse_config};
use recops_data::{DataConfig, IngestLimits, find_staging_files, read_staging_file_with};

fn runner(cases: u32, seed: u8) -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

/// CSV-ish text: the staging header then rows of fields drawn from a mix of good and
/// hostile values (quotes, separators, NUL, invalid UTF-8, huge numbers, dates).
fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just(b"1".to_vec()),
        Just(b"5".to_vec()),
        Just(b"-0".to_vec()),
        Just(b"9223372036854775807".to_vec()),
        Just(b"99999999999999999999".to_vec()),
        Just(b"NaN".to_vec()),
        Just(b"1e400".to_vec()),
        Just(b"2025-01-15 10:30:00".to_vec()),
        Just(b"9999-12-31T23:59:59.999999999+23:59".to_vec()),
        Just(b"0000-00-00".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\"a,\"\"b\"\"\n\"".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"\xef\xbb\xbf".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..12),
    ];
    let row = proptest::collection::vec(field, 0..8).prop_map(|f| {
        let mut line = f.join(&b","[..]);
        line.extend_from_slice(b"\n");
        line
    });
    (
        prop_oneof![
            Just(b"user_id,product_id,rating,comment,cmt_date\n".to_vec()),
            Just(b"cmt_date,rating,comment,user_id,product_id\r\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..40),
        ],
        proptest::collection::vec(row, 0..20),
    )
        .prop_map(|(mut head, rows)| {
            for r in rows {
                head.extend(r);
            }
            head
        })
}

#[test]
fn staging_ingest_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let limits = IngestLimits {
        max_field_bytes: 64,
        ..IngestLimits::default()
    };
    let tried = std::cell::Cell::new(0usize);
    runner(256, 19)
        .run(&(csv_bytes(), any::<bool>()), |(bytes, parquet)| {
            let name = if parquet { "x.parquet" } else { "x.csv" };
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let scan = find_staging_files(dir.path()).unwrap();
            let file = scan.files.iter().find(|f| f.name == name).unwrap();
            // Ok or a clear error; never a panic.
            if let Ok(b) = read_staging_file_with(file, &limits) {
                prop_assert_eq!(b.rows.len() + b.rejected.len(), b.total_rows);
            }
            std::fs::remove_file(&path).unwrap();
            tried.set(tried.get() + 1);
            Ok(())
        })
        .unwrap();
    eprintln!("staging files tried: {}", tried.get());
}

#[test]
fn config_loading_never_panics() {
    let env = std::collections::HashMap::from([("X".to_owned(), "1".to_owned())]);
    let text = prop_oneof![
        // Mutations of the shipped config.
        (0usize..2000, proptest::collection::vec(any::<char>(), 0..8)).prop_map(|(at, junk)| {
            let base = recops_core::DEFAULT_RECOPS_CONFIG;
            let at = (0..=at.min(base.len()))
                .rev()
                .find(|i| base.is_char_boundary(*i))
                .unwrap_or(0);
            format!(
                "{}{}{}",
                &base[..at],
                junk.into_iter().collect::<String>(),
                &base[at..]
            )
        }),
        "[ -~\n\t&*:{}\\[\\]$]{0,200}",
        any::<String>(),
    ];
    runner(512, 7)
        .run(&text, |text| {
            let _ = parse_config::<RecopsConfig>(
                &text,
                Path::new("recops.yaml"),
                ConfigFormat::Yaml,
                &env,
            );
            let _ = parse_config::<DataConfig>(
                &text,
                Path::new("data_config.yaml"),
                ConfigFormat::Yaml,
                &env,
            );
            let _ = parse_config::<RecopsConfig>(
                &text,
                Path::new("recops.json"),
                ConfigFormat::Json,
                &env,
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn request_parsing_never_panics_and_answers_4xx_or_200() {
    recops_core::tls::install_crypto_provider();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let service = recops_serving::RunningService::start(
        listener,
        crate::source(),
        None,
        recops_serving::ServiceOptions::default(),
        recops_core::SystemClock::shared(),
    )
    .unwrap();
    let url = format!("http://{}/recommend", service.addr());
    let client = reqwest::blocking::Client::new();
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        (any::<i64>(), any::<i64>())
            .prop_map(|(u, k)| format!(r#"{{"user_id": {u}, "topk": {k}}}"#).into_bytes()),
        "[\\[\\]{}:,\" 0-9a-z.eE+-]{0,64}".prop_map(String::into_bytes),
    ];
    runner(128, 3)
        .run(&body, |body| {
            let r = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .unwrap();
            let status = r.status().as_u16();
            prop_assert!(
                status == 200 || (400..500).contains(&status),
                "status {}",
                status
            );
            Ok(())
        })
        .unwrap();
    service.shutdown().unwrap();
}
