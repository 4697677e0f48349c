//! Hostile clients against the real service: a thousand half-open connections while
//! another client keeps getting recommendations, and a SIGTERM during a half-sent
//! body that still writes the last metrics.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use recops_core::{DEFAULT_RECOPS_CONFIG, Home, SystemClock};
use recops_serving::{RunningService, ServiceOptions};
use recops_tracking::ServiceMetricsStore;

use crate::{raise_nofile, source};

/// Half-open connections held at once.
const SLOW_CLIENTS: usize = 1000;

/// The value of the unlabelled sample `name` (besides its `instance` label).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix("{instance=\"")?;
            let (_, value) = rest.split_once("\"} ")?;
            value.parse().ok()
        })
        .unwrap_or(0.0)
}

/// Sends part of the request headers (slowloris), then waits.
fn half_headers(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: applic")
        .unwrap();
    s
}

/// Sends headers and half of the declared body, then waits.
fn half_open(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user_id\": 1001, \"topk\"",
    )
    .unwrap();
    s
}

fn read_to_close(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("connection not closed by the server: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_thousand_half_open_connections_do_not_stop_recommendations() {
    recops_core::tls::install_crypto_provider();
    // Both ends live in this process: two descriptors per connection.
    let nofile = raise_nofile(4 * SLOW_CLIENTS as u64 + 256);
    assert!(
        nofile >= 2 * SLOW_CLIENTS as u64 + 128,
        "open-file limit {nofile} too low for {SLOW_CLIENTS} connections"
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let service = RunningService::start(
        listener,
        source(),
        None,
        ServiceOptions {
            // Long enough to hold them all during the check; the defaults are 10 s.
            body_read_timeout: Duration::from_secs(20),
            header_read_timeout: Duration::from_secs(20),
            ..ServiceOptions::default()
        },
        SystemClock::shared(),
    )
    .unwrap();
    let addr = service.addr().to_string();
    let base = format!("http://{addr}");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    // Half stall in their headers, half in their bodies.
    let mut slow: Vec<TcpStream> = (0..SLOW_CLIENTS)
        .map(|i| {
            if i % 2 == 0 {
                half_open(&addr)
            } else {
                half_headers(&addr)
            }
        })
        .collect();
    // Wait (bounded) until the service holds them all.
    let deadline = Instant::now() + Duration::from_secs(60);
    let held = loop {
        let m = client
            .get(format!("{base}/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        let open = metric(&m, "recops_http_connections_open");
        if open >= SLOW_CLIENTS as f64 || Instant::now() > deadline {
            break open;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(held >= SLOW_CLIENTS as f64, "only {held} connections held");
    // Another client keeps getting answers.
    let mut slowest = Duration::ZERO;
    for u in 0..100 {
        let t = Instant::now();
        let r = client
            .post(format!("{base}/recommend"))
            .json(&serde_json::json!({"user_id": 1000 + u % 60, "topk": 5}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v: serde_json::Value = r.json().unwrap();
        assert_eq!(v["items"].as_array().unwrap().len(), 5);
        slowest = slowest.max(t.elapsed());
    }
    assert_eq!(
        client
            .get(format!("{base}/livez"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    eprintln!("held {held} half-open connections; slowest of 100 /recommend calls: {slowest:?}");
    // Each slow client is cut off: a stalled body with 408, stalled headers by
    // closing the connection (hyper answers nothing to a request it never read).
    let answers: Vec<String> = slow.iter_mut().map(read_to_close).collect();
    let body_408 = answers
        .iter()
        .step_by(2)
        .filter(|a| a.starts_with("HTTP/1.1 408"))
        .count();
    let headers_cut = answers
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|a| !a.contains(" 200 "))
        .count();
    assert_eq!(
        (body_408, headers_cut),
        (SLOW_CLIENTS / 2, SLOW_CLIENTS / 2)
    );
    let m = client
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(
        metric(&m, "recops_http_body_timeouts_total"),
        (SLOW_CLIENTS / 2) as f64
    );
    assert!(metric(&m, "recops_http_header_timeouts_total") >= (SLOW_CLIENTS / 2) as f64);
    service.shutdown().unwrap();
}

/// The `recommender` binary with `home`, on a free port; returns it and its address.
/// The caller stops and waits for the child.
#[allow(clippy::zombie_processes)]
fn start_recommender(home: &Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_recommender"))
        .arg("--home")
        .arg(home)
        .args(["--port", "0"])
        .env_remove("RECOPS_ADMIN_TOKEN")
        .env_remove("RECOPS_SERVICE_HOST")
        .env("RECOPS_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "recommender exited"
        );
        if let Some(at) = line.find("listening addr=") {
            let addr = line[at + "listening addr=".len()..].trim().to_owned();
            std::thread::spawn(move || {
                let mut sink = String::new();
                while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                    sink.clear();
                }
            });
            return (child, addr);
        }
    }
}

#[test]
fn sigterm_during_a_half_sent_body_drains_and_still_writes_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    std::fs::create_dir_all(home.config_dir()).unwrap();
    let config = DEFAULT_RECOPS_CONFIG
        .replace("drain_timeout_secs: 10", "drain_timeout_secs: 1")
        .replace("body_read_timeout_secs: 10", "body_read_timeout_secs: 3600")
        .replace(
            "header_read_timeout_secs: 10",
            "header_read_timeout_secs: 3600",
        );
    assert_ne!(config, DEFAULT_RECOPS_CONFIG);
    std::fs::write(home.recops_config(), config).unwrap();
    let (mut child, addr) = start_recommender(dir.path());
    for _ in 0..5 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert!(read_to_close(&mut s).starts_with("HTTP/1.1 200"));
    }
    let mut half = half_open(&addr);
    // Let the service start reading that body.
    std::thread::sleep(Duration::from_millis(200));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the service did not stop after the drain deadline");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let _ = read_to_close(&mut half);
    let store = ServiceMetricsStore::open(&home).unwrap();
    let now = chrono::Utc::now();
    let w = store
        .window(
            now - chrono::Duration::hours(1),
            now + chrono::Duration::hours(1),
            Some("/livez"),
        )
        .unwrap();
    assert_eq!(w.request_count, 5);
}
