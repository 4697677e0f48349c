//! A corpus of malformed inputs, each with its expected error: staging CSV and
//! Parquet files, request bodies, YAML and JSON configs. Every error names the file,
//! line or key, and nothing already stored changes.

use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use recops_core::{ConfigFormat, DEFAULT_RECOPS_CONFIG, Home, RecopsConfig, parse_config};
use recops_data::{DataConfig, Error as DataError, RefreshOptions, RefreshReport};
use recops_serving::{RunningService, ServiceOptions};
use recops_testkit::TempHome;

use crate::{snapshot, source};

const HEADER: &str = "user_id,product_id,rating,comment,cmt_date\n";

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, 2, 0, 0).unwrap()
}

fn refresh(home: &Home) -> recops_data::Result<RefreshReport> {
    recops_data::refresh(
        home,
        &DataConfig::default(),
        &RefreshOptions {
            force_full: false,
            staging_dir: None,
            now: now(),
        },
    )
}

/// What a staging file must lead to.
enum Expect {
    /// The whole file is refused (the error names it, with this text); nothing stored
    /// changes and the file stays in staging.
    Refused(&'static str),
    /// `valid` rows kept and `rejected` rows quarantined, the report holding `reason`
    /// (and, for CSV, the line number) when given.
    Rows {
        valid: usize,
        rejected: usize,
        reason: Option<&'static str>,
    },
}

use Expect::*;

fn rows(valid: usize, rejected: usize, reason: &'static str) -> Expect {
    Rows {
        valid,
        rejected,
        reason: (!reason.is_empty()).then_some(reason),
    }
}

fn csv_cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let line = |body: &str| format!("{HEADER}{body}").into_bytes();
    let mut with_bytes = HEADER.as_bytes().to_vec();
    with_bytes.extend_from_slice(b"1,10,5,\xff\xfe broken,2025-01-01\n");
    let mut bad_header = b"\xffuser_id,product_id,rating,comment,cmt_date\n".to_vec();
    bad_header.extend_from_slice(b"1,10,5,x,2025-01-01\n");
    let big = "y".repeat(10 << 20);
    vec![
        (
            "invalid_utf8.csv",
            with_bytes,
            rows(0, 1, "comment is not valid UTF-8"),
        ),
        (
            "invalid_utf8_header.csv",
            bad_header,
            Refused("missing required column(s) user_id"),
        ),
        (
            "nul_in_id.csv",
            line("1\u{0}2,10,5,x,2025-01-01\n"),
            rows(0, 1, "invalid user_id"),
        ),
        (
            "nul_in_comment.csv",
            line("1,10,5,a\u{0}b,2025-01-01\n"),
            rows(1, 0, ""),
        ),
        (
            "bom.csv",
            format!("\u{feff}{HEADER}1,10,5,x,2025-01-01\n").into_bytes(),
            rows(1, 0, ""),
        ),
        (
            "crlf.csv",
            HEADER
                .replace('\n', "\r\n")
                .into_bytes()
                .into_iter()
                .chain(
                    b"1,10,5,x,2025-01-01\r\n2,11,4,y,2025-01-02\r\n"
                        .iter()
                        .copied(),
                )
                .collect(),
            rows(2, 0, ""),
        ),
        (
            "quoted_newline.csv",
            line("1,10,5,\"two\nlines, \"\"quoted\"\"\",2025-01-01\n"),
            rows(1, 0, ""),
        ),
        (
            "big_field.csv",
            line(&format!(
                "1,10,5,ok,2025-01-01\n2,10,5,\"{big}\",2025-01-01\n"
            )),
            rows(
                1,
                1,
                "comment is 10485760 bytes, above refresh.max_field_bytes (65536)",
            ),
        ),
        (
            "missing_column.csv",
            b"user_id,product_id,comment,cmt_date\n1,10,x,2025-01-01\n".to_vec(),
            Refused("missing required column(s) rating"),
        ),
        (
            "duplicate_column.csv",
            b"user_id,product_id,rating,rating,comment,cmt_date\n".to_vec(),
            Refused("column rating appears twice in the header"),
        ),
        (
            "extra_column.csv",
            b"extra,user_id,product_id,rating,comment,cmt_date\nz,1,10,5,x,2025-01-01\n".to_vec(),
            rows(1, 0, ""),
        ),
        (
            "extra_field.csv",
            line("1,10,5,x,2025-01-01,surplus\n"),
            rows(0, 1, "expected 5 fields, found 6"),
        ),
        (
            "missing_field.csv",
            line("1,10,5\n"),
            rows(0, 1, "expected 5 fields, found 3"),
        ),
        (
            "negative_ids.csv",
            line("-5,-10,5,x,2025-01-01\n"),
            rows(1, 0, ""),
        ),
        (
            "max_id.csv",
            line("9223372036854775807,10,5,x,2025-01-01\n"),
            rows(1, 0, ""),
        ),
        (
            "huge_id.csv",
            line("99999999999999999999,10,5,x,2025-01-01\n"),
            rows(0, 1, "99999999999999999999\"\": expected an integer"),
        ),
        (
            "text_id.csv",
            line("1,abc,5,x,2025-01-01\n"),
            rows(0, 1, "invalid product_id"),
        ),
        (
            "nan_rating.csv",
            line("1,10,NaN,x,2025-01-01\n2,10,inf,x,2025-01-01\n"),
            rows(0, 2, "expected a whole number 1..=5"),
        ),
        (
            "rating_range.csv",
            line(
                "1,10,0,x,2025-01-01\n1,11,6,x,2025-01-01\n1,12,-1,x,2025-01-01\n1,13,4.5,x,2025-01-01\n",
            ),
            rows(0, 4, "rating 6 outside 1..=5"),
        ),
        (
            "date_1900.csv",
            line("1,10,5,x,1900-01-01\n"),
            rows(0, 1, "(refresh.min_cmt_date)"),
        ),
        (
            "date_2099.csv",
            line("1,10,5,x,2099-12-31\n"),
            rows(0, 1, "(the refresh time + refresh.future_tolerance_hours)"),
        ),
        (
            "date_format.csv",
            line("1,10,5,x,01/02/2025\n"),
            rows(0, 1, "expected an ISO date or datetime"),
        ),
        (
            "unterminated_quote.csv",
            line("1,10,5,\"never closed,2025-01-01\n"),
            rows(0, 1, "expected 5 fields, found 4"),
        ),
        ("empty.csv", Vec::new(), Refused("empty file")),
        (
            "header_only.csv",
            HEADER.as_bytes().to_vec(),
            rows(0, 0, ""),
        ),
        (
            "not_csv.csv",
            vec![0u8; 64],
            Refused("missing required column"),
        ),
    ]
}

/// A home with one good file already committed.
fn seeded_home() -> TempHome {
    let t = TempHome::new().unwrap();
    t.stage(
        "seed.csv",
        &format!("{HEADER}1000,500,5,seed,2025-01-10\n1001,501,4,seed,2025-01-11\n"),
    )
    .unwrap();
    refresh(t.home()).unwrap();
    t
}

fn check_staging(t: &TempHome, name: &str, bytes: &[u8], expect: &Expect) {
    let home = t.home();
    let path = home.staging_dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    let before = snapshot(&home.processed_dir());
    match (refresh(home), expect) {
        (Err(DataError::BadStagingFiles { problems }), Refused(text)) => {
            assert_eq!(problems.len(), 1, "{name}");
            assert_eq!(problems[0].file, path, "{name}");
            assert!(
                problems[0].reason.contains(text),
                "{name}: {}",
                problems[0].reason
            );
            assert_eq!(
                snapshot(&home.processed_dir()),
                before,
                "{name}: stored data changed"
            );
            assert!(path.exists(), "{name}: a refused file left staging");
            std::fs::remove_file(&path).unwrap();
        }
        (
            Ok(r),
            Rows {
                valid,
                rejected,
                reason,
            },
        ) => {
            assert_eq!(
                (r.new_records, r.rejected_records),
                (*valid, *rejected),
                "{name}"
            );
            if let Some(reason) = reason {
                let report = std::fs::read(r.files[0].rejected_file.clone().unwrap()).unwrap();
                let report = String::from_utf8_lossy(&report);
                assert!(
                    report.contains(reason),
                    "{name}: {}",
                    &report[..report.len().min(500)]
                );
                if name.ends_with(".csv") {
                    // row,line,reason,...: the line of the first rejected row is there.
                    let first = report.lines().nth(1).unwrap();
                    let line_no: u64 = first.split(',').nth(1).unwrap().parse().unwrap();
                    assert!(line_no >= 2, "{name}: {first}");
                }
            }
            assert!(!path.exists(), "{name}: an ingested file stayed in staging");
        }
        (Err(e), _) => panic!("{name}: unexpected error {e}"),
        (Ok(r), Refused(_)) => panic!(
            "{name}: ingested {} rows instead of refusing",
            r.new_records
        ),
    }
}

#[test]
fn malformed_staging_csv_files_get_their_expected_errors() {
    let t = seeded_home();
    let cases = csv_cases();
    for (name, bytes, expect) in &cases {
        check_staging(&t, name, bytes, expect);
    }
    eprintln!("staging CSV inputs tried: {}", cases.len());
}

#[test]
fn malformed_staging_parquet_files_get_their_expected_errors() {
    let t = seeded_home();
    let good = std::fs::read(t.home().interactions()).unwrap();
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "truncated.parquet",
            good[..good.len() / 2].to_vec(),
            Refused("not a readable Parquet file"),
        ),
        (
            "footer_only.parquet",
            good[good.len() - 8..].to_vec(),
            Refused("not a readable Parquet file"),
        ),
        (
            "garbage.parquet",
            b"PAR1 this is not parquet PAR1".to_vec(),
            Refused("not a readable Parquet file"),
        ),
        (
            "empty.parquet",
            Vec::new(),
            Refused("not a readable Parquet file"),
        ),
        (
            "csv_named_parquet.parquet",
            format!("{HEADER}1,10,5,x,2025-01-01\n").into_bytes(),
            Refused("not a readable Parquet file"),
        ),
        // The processed table itself is a valid staging file (its extra column ignored).
        ("copy.parquet", good.clone(), rows(2, 0, "")),
    ];
    for (name, bytes, expect) in &cases {
        check_staging(&t, name, bytes, expect);
    }
    eprintln!("staging Parquet inputs tried: {}", cases.len());
}

#[test]
fn malformed_request_bodies_get_4xx_with_a_message_and_the_service_goes_on() {
    recops_core::tls::install_crypto_provider();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let service = RunningService::start(
        listener,
        source(),
        None,
        ServiceOptions::default(),
        recops_core::SystemClock::shared(),
    )
    .unwrap();
    let base = format!("http://{}", service.addr());
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let deep = format!("{{\"user_id\": {}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let big = format!(
        "{{\"user_id\": 1001, \"pad\": \"{}\"}}",
        "x".repeat(1 << 20)
    );
    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        (
            "deep nesting",
            deep.into_bytes(),
            "application/json",
            400,
            "invalid type",
        ),
        (
            "huge float",
            br#"{"user_id": 1e400}"#.to_vec(),
            "application/json",
            400,
            "user_id",
        ),
        (
            "huge integer",
            br#"{"user_id": 99999999999999999999999}"#.to_vec(),
            "application/json",
            400,
            "user_id",
        ),
        (
            "string id",
            br#"{"user_id": "abc"}"#.to_vec(),
            "application/json",
            400,
            "invalid type",
        ),
        (
            "string topk",
            br#"{"user_id": 1001, "topk": "5"}"#.to_vec(),
            "application/json",
            400,
            "topk",
        ),
        (
            "float topk",
            br#"{"user_id": 1001, "topk": 2.5}"#.to_vec(),
            "application/json",
            400,
            "topk",
        ),
        (
            "topk too large",
            br#"{"user_id": 1001, "topk": 100000}"#.to_vec(),
            "application/json",
            400,
            "topk must be between 1 and 100",
        ),
        (
            "negative topk",
            br#"{"user_id": 1001, "topk": -1}"#.to_vec(),
            "application/json",
            400,
            "topk must be between",
        ),
        (
            "unknown field",
            br#"{"user_id": 1001, "x": 1}"#.to_vec(),
            "application/json",
            400,
            "unknown field `x`",
        ),
        (
            "missing field",
            br#"{"topk": 3}"#.to_vec(),
            "application/json",
            400,
            "missing field `user_id`",
        ),
        (
            "array body",
            b"[1, 2]".to_vec(),
            "application/json",
            400,
            "invalid type",
        ),
        (
            "null body",
            b"null".to_vec(),
            "application/json",
            400,
            "invalid type",
        ),
        ("empty body", Vec::new(), "application/json", 400, "EOF"),
        (
            "invalid UTF-8",
            b"{\"user_id\": \"\xff\"}".to_vec(),
            "application/json",
            400,
            "",
        ),
        (
            "not JSON",
            b"user_id=1".to_vec(),
            "application/json",
            400,
            "expected a JSON object",
        ),
        (
            "wrong content type",
            br#"{"user_id": 1001}"#.to_vec(),
            "text/plain",
            415,
            "Content-Type",
        ),
        (
            "1 MB body",
            big.into_bytes(),
            "application/json",
            413,
            "larger than 16384 bytes",
        ),
    ];
    for (name, body, ctype, status, text) in &cases {
        let r = client
            .post(format!("{base}/recommend"))
            .header("content-type", *ctype)
            .body(body.clone())
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), *status, "{name}");
        let v: serde_json::Value = r.json().unwrap_or(serde_json::Value::Null);
        let message = v["error"].as_str().unwrap_or_default().to_owned();
        assert!(!message.is_empty(), "{name}: no error message");
        assert!(message.contains(text), "{name}: {message}");
        // The service goes on.
        let ok = client
            .post(format!("{base}/recommend"))
            .json(&serde_json::json!({"user_id": 1001}))
            .send()
            .unwrap();
        assert_eq!(ok.status().as_u16(), 200, "after {name}");
    }
    eprintln!("request bodies tried: {}", cases.len());
    service.shutdown().unwrap();
}

fn recops_yaml(text: &str) -> Result<RecopsConfig, String> {
    parse_config::<RecopsConfig>(
        text,
        Path::new("config/recops.yaml"),
        ConfigFormat::Yaml,
        &std::collections::HashMap::new(),
    )
    .map_err(|e| format!("{e:#}"))
}

#[test]
fn malformed_configs_get_errors_naming_the_file_and_key() {
    let base = DEFAULT_RECOPS_CONFIG;
    // Ten to the twelfth strings if expanded, inside a key that is read.
    let bomb = {
        let mut list = String::from("    - &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            list.push_str(&format!(
                "    - &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
                p = i - 1
            ));
        }
        let at = base.find("  required_files:\n").unwrap() + "  required_files:\n".len();
        format!("{}{list}{}", &base[..at], &base[at..])
    };
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown key",
            base.replace("  port:", "  bogus_key: 1\n  port:"),
            vec!["recops.yaml", "bogus_key"],
        ),
        (
            "unknown section",
            format!("{base}\nextra_section: 1\n"),
            vec!["recops.yaml", "extra_section"],
        ),
        (
            "wrong type",
            base.replace("max_connections: 1024", "max_connections: many"),
            vec!["recops.yaml", "max_connections"],
        ),
        (
            "negative size",
            base.replace("max_connections: 1024", "max_connections: -5"),
            vec!["recops.yaml", "max_connections"],
        ),
        (
            "zero timeout",
            base.replace("body_read_timeout_secs: 10", "body_read_timeout_secs: 0"),
            vec!["recops.yaml", "service.body_read_timeout_secs"],
        ),
        (
            "idle above header",
            base.replace("idle_timeout_secs: 5", "idle_timeout_secs: 60"),
            vec!["recops.yaml", "service.idle_timeout_secs"],
        ),
        (
            "duplicate key",
            base.replace("  port:", "  host: 0.0.0.0\n  port:"),
            vec!["recops.yaml", "duplicate mapping key: host"],
        ),
        (
            "alias bomb",
            bomb,
            vec!["recops.yaml", "health.required_files"],
        ),
        (
            "not a mapping",
            "- just\n- a list\n".to_owned(),
            vec!["recops.yaml"],
        ),
        (
            "tabs and junk",
            "service:\n\t host: [\n".to_owned(),
            vec!["recops.yaml"],
        ),
    ];
    for (name, text, wanted) in &cases {
        let started = std::time::Instant::now();
        let err = match recops_yaml(text) {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => e,
        };
        for w in wanted {
            assert!(err.contains(w), "{name}: {err}");
        }
        eprintln!("{name}: {err} ({:?})", started.elapsed());
    }
    // JSON (the scheduler's config).
    let deep = format!(
        "{{\"timezone\": \"UTC\", \"jobs\": {{\"x\": {}{}}}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let json_cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown key",
            r#"{"timezone": "UTC", "jobs": {}, "bogus": 1}"#.into(),
            "bogus",
        ),
        (
            "wrong type",
            r#"{"timezone": 5, "jobs": {}}"#.into(),
            "line 1",
        ),
        (
            "duplicate key",
            r#"{"timezone": "UTC", "timezone": "UTC", "jobs": {}}"#.into(),
            "duplicate field",
        ),
        ("deep nesting", deep, "line 1"),
        (
            "truncated",
            r#"{"timezone": "UTC", "jobs": {"#.into(),
            "EOF",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    for (name, text, wanted) in &json_cases {
        let err = recops_scheduler::LoadedConfig::from_text(
            text,
            Path::new("config/scheduler_config.json"),
            &home,
            dir.path(),
            &std::collections::HashMap::new(),
        )
        .map(|_| ())
        .unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("scheduler_config.json"), "{name}: {err}");
        assert!(err.contains(wanted), "{name}: {err}");
    }
    // Data config: a wrong type and an invalid date floor.
    for (name, text, wanted) in [
        (
            "wrong type",
            recops_data::DEFAULT_DATA_CONFIG
                .replace("max_field_bytes: 65536", "max_field_bytes: big"),
            "max_field_bytes",
        ),
        (
            "bad floor",
            recops_data::DEFAULT_DATA_CONFIG
                .replace("min_cmt_date: \"2000-01-01\"", "min_cmt_date: yesterday"),
            "refresh.min_cmt_date",
        ),
    ] {
        let err = parse_config::<DataConfig>(
            &text,
            Path::new("config/data_config.yaml"),
            ConfigFormat::Yaml,
            &std::collections::HashMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("data_config.yaml") && err.contains(wanted),
            "{name}: {err}"
        );
    }
    eprintln!(
        "config inputs tried: {}",
        cases.len() + json_cases.len() + 2
    );
}
