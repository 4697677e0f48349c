//! Hostile clients: slow headers and bodies, idle keep-alive, the connection cap, an
//! exposed address without a token, and shutdown with a half-sent body.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use recops_serving::{Error, RunningService, ServiceOptions};
use recops_tracking::ServiceMetricsStore;

use crate::service::Fixture;

const MODEL: &str = "als_20250101_000000";

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Reads until the server closes the connection; the text read.
fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_body_that_never_completes_gets_408_and_no_latency() {
    let f = Fixture::start_with(
        Some(MODEL),
        ServiceOptions {
            body_read_timeout: Duration::from_millis(300),
            ..ServiceOptions::default()
        },
    );
    let mut s = connect(&f.base);
    s.write_all(b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user_id\":")
        .unwrap();
    let answer = read_to_close(&mut s);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request body not received"), "{answer}");
    let m = f.metrics();
    assert_eq!(metric(&m, "recops_http_body_timeouts_total"), 1.0, "{m}");
    assert!(m.contains("recops_http_requests_total{route=\"/recommend\",code=\"408\"} 1"));
    // The client's slowness is not service latency.
    assert!(!m.contains("recops_http_request_duration_seconds_count{route=\"/recommend\"}"));
}

#[test]
fn a_trickled_body_counts_as_body_wait_not_latency() {
    let f = Fixture::start_with(Some(MODEL), ServiceOptions::default());
    let mut s = connect(&f.base);
    let body = br#"{"user_id": 1001, "topk": 3}"#;
    write!(
        s,
        "POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    for chunk in body.chunks(10) {
        s.write_all(chunk).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(250));
    }
    let answer = read_to_close(&mut s);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let m = f.metrics();
    let wait = metric(&m, "recops_http_request_body_wait_seconds_sum");
    let latency = metric(
        &m,
        "recops_http_request_duration_seconds_sum{route=\"/recommend\"}",
    );
    assert!(wait >= 0.4, "body wait {wait} s\n{m}");
    assert!(
        latency < wait,
        "latency {latency} s includes the body wait {wait} s"
    );
}

#[test]
fn slow_headers_and_idle_keep_alive_connections_are_closed() {
    // Headers that never end (the idle watchdog is far away).
    let f = Fixture::start_with(
        Some(MODEL),
        ServiceOptions {
            header_read_timeout: Duration::from_millis(400),
            idle_timeout: Duration::from_secs(3600),
            ..ServiceOptions::default()
        },
    );
    let mut slow = connect(&f.base);
    slow.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let answer = read_to_close(&mut slow);
    assert!(!answer.contains("200 OK"), "{answer}");
    let m = f.metrics();
    assert!(
        metric(&m, "recops_http_header_timeouts_total") >= 1.0,
        "{m}"
    );
    // One request, then silence on a keep-alive connection (the header timeout, which
    // hyper also applies between requests, is far away).
    let f = Fixture::start_with(
        Some(MODEL),
        ServiceOptions {
            header_read_timeout: Duration::from_secs(3600),
            idle_timeout: Duration::from_millis(200),
            ..ServiceOptions::default()
        },
    );
    let mut idle = connect(&f.base);
    idle.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let answer = read_to_close(&mut idle);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn at_the_connection_cap_new_clients_wait_until_one_closes() {
    let f = Fixture::start_with(
        Some(MODEL),
        ServiceOptions {
            max_connections: 2,
            ..ServiceOptions::default()
        },
    );
    let held: Vec<TcpStream> = (0..2).map(|_| connect(&f.base)).collect();
    let mut third = connect(&f.base);
    third
        .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    let early = third.read(&mut buf);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "answered beyond the cap: {early:?}"
    );
    drop(held);
    third
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let answer = read_to_close(&mut third);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let m = f.metrics();
    assert!(
        metric(&m, "recops_http_connection_cap_reached_total") >= 1.0,
        "{m}"
    );
}

#[test]
fn a_public_address_without_a_token_is_refused() {
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let source = std::sync::Arc::new(Empty);
    let r = RunningService::start(
        listener,
        source,
        None,
        ServiceOptions::default(),
        recops_core::SystemClock::shared(),
    );
    let Err(e) = r else {
        panic!("started on a public address without a token")
    };
    assert!(matches!(e, Error::Unauthenticated { .. }), "{e}");
    assert!(e.to_string().contains("--allow-unauthenticated"), "{e}");
}

struct Empty;

impl recops_serving::ModelSource for Empty {
    fn initial_model_id(&self) -> recops_serving::Result<Option<recops_core::ModelId>> {
        Ok(None)
    }
    fn load(
        &self,
        model_id: &recops_core::ModelId,
    ) -> recops_serving::Result<recops_serving::ServingModel> {
        Err(Error::ModelUnavailable {
            model_id: model_id.to_string(),
            reason: recops_serving::Unavailable::MissingFiles("/secret/home/artifacts/cf/x".into()),
        })
    }
}

#[test]
fn reload_errors_name_the_id_not_the_path() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let service = RunningService::start(
        listener,
        std::sync::Arc::new(Empty),
        None,
        ServiceOptions::default(),
        recops_core::SystemClock::shared(),
    )
    .unwrap();
    let addr: SocketAddr = service.addr();
    let mut s = connect(&addr.to_string());
    let body = r#"{"model_id": "als_20250101_000000"}"#;
    write!(
        s,
        "POST /reload_model HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let answer = read_to_close(&mut s);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(answer.contains("als_20250101_000000"), "{answer}");
    assert!(!answer.contains("/secret"), "{answer}");
}

#[test]
fn shutdown_with_a_half_sent_body_drains_and_still_flushes_metrics() {
    let mut f = Fixture::start_with(
        Some(MODEL),
        ServiceOptions {
            body_read_timeout: Duration::from_secs(3600),
            drain_timeout: Duration::from_millis(300),
            flush_interval: Duration::from_secs(3600),
            ..ServiceOptions::default()
        },
    );
    for u in 0..5 {
        let (code, _) = f.post(
            "/recommend",
            &format!(r#"{{"user_id": {}}}"#, 1000 + u),
            None,
        );
        assert_eq!(code, 200);
    }
    let mut half = connect(&f.base);
    half.write_all(b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user")
        .unwrap();
    // Make sure the server is reading that body before shutdown starts.
    std::thread::sleep(Duration::from_millis(100));
    f.service.take().unwrap().shutdown().unwrap();
    let store = ServiceMetricsStore::open_path(&f.db).unwrap();
    let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap();
    let w = store
        .window(t0, t0 + chrono::Duration::hours(1), Some("/recommend"))
        .unwrap();
    assert_eq!(w.request_count, 5);
    let _ = read_to_close(&mut half);
}

#[test]
fn a_model_with_user_i64_max_still_passes_its_smoke_test() {
    let mut p = crate::service::parts("als_20250104_000000", 0.0);
    let last = p.user_ids.len() - 1;
    p.user_ids[last] = i64::MAX;
    let model = recops_serving::ServingModel::new(p).unwrap();
    assert!(!model.recommend(i64::MAX, 3).fallback);
}
