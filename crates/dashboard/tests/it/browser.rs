//! The pages in a real headless Chromium, driven over WebDriver (chromedriver):
//! every page loads without a console error or CSP violation, every chart drew its
//! points and axes, a silence created from the page shows in the list and in the
//! alert state `recops alert list` reads, and hostile strings run no script.
//! Screenshots go to `target/dashboard-screenshots/`.
//!
//! Without chromium or chromedriver the test prints a NOTICE and passes, except with
//! `CI=true` or `RECOPS_REQUIRE_BROWSER=1`, where it fails (scripts/test.sh installs
//! them and sets the latter).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use recops_alerting::AlertManager;
use serde_json::{Value, json};

use crate::fill::HOSTILE;
use crate::support::{PAGES, Running, TOKEN};

/// Chromium's flags: headless, no network beyond 127.0.0.1, a fresh profile.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
];

/// Longest wait for a page's charts.
const PAGE_WAIT: Duration = Duration::from_secs(20);

struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    /// Stops chromedriver and the browsers it started (its process group), also when
    /// a failed assertion left the session open.
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let group = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tool(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| default.into());
    path.exists().then_some(path)
}

/// The browser and driver, or `None` (NOTICE) when missing outside CI.
fn tools() -> Option<(PathBuf, PathBuf)> {
    match (
        tool("CHROMIUM", "/usr/bin/chromium"),
        tool("CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if required() => {
            panic!(
                "chromium and chromedriver are required in CI (apt-get install chromium chromium-driver)"
            )
        }
        _ => {
            eprintln!(
                "NOTICE: chromium or chromedriver missing: skipping the dashboard browser tests"
            );
            None
        }
    }
}

/// `CI=true` or `RECOPS_REQUIRE_BROWSER=1` (set by scripts/test.sh once the browser is
/// installed): a missing browser fails the test instead of skipping it.
fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("RECOPS_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_driver(driver: &Path) -> Driver {
    let port = free_port();
    // Its own process group, so the browsers it starts can be stopped with it.
    let child = Command::new(driver)
        .process_group(0)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver {
        child,
        port,
        _profile: tempfile::tempdir().unwrap(),
    }
}

async fn connect(d: &Driver, chromium: &Path) -> Client {
    let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
    args.push(format!("--user-data-dir={}", d._profile.path().display()));
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .unwrap()
}

/// Browser console entries at level SEVERE since the last call (chromedriver's log).
async fn console_errors(c: &Client, d: &Driver) -> Vec<String> {
    let session = c.session_id().await.unwrap().unwrap();
    let url = format!("http://127.0.0.1:{}/session/{session}/se/log", d.port);
    let res: Value = reqwest::Client::new()
        .post(url)
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Loads `url`, waits until its charts are drawn, and checks the page is clean.
async fn visit(c: &Client, d: &Driver, url: &str, shot: &str) -> Value {
    c.goto(url).await.unwrap();
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let ready = c
            .execute("return document.body.dataset.chartsReady === '1'", vec![])
            .await
            .unwrap();
        if ready == json!(true) {
            break;
        }
        assert!(Instant::now() < deadline, "{url}: charts not drawn in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = c
        .execute(
            "return { errors: window.__recopsErrors || [], images: document.querySelectorAll('main img').length,
                      charts: Array.from(document.querySelectorAll('.chart')).map(function (e) {
                        return { src: e.dataset.src, drawn: e.dataset.drawn, points: Number(e.dataset.points || 0),
                                 axes: e.uplot ? e.uplot.axes.map(function (a) { return (a.label || '') + ': ' + (a._values || []).join(' '); }) : [] }; }) };",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        report["errors"],
        json!([]),
        "{url}: script errors or CSP violations"
    );
    assert_eq!(report["images"], json!(0), "{url}: an <img> was rendered");
    let console = console_errors(c, d).await;
    assert!(console.is_empty(), "{url}: console errors: {console:?}");
    screenshot(c, shot).await;
    report
}

async fn screenshot(c: &Client, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

fn shot_name(prefix: &str, page: &str) -> String {
    let p = page.trim_matches('/').replace('/', "-");
    format!("{prefix}-{}", if p.is_empty() { "overview" } else { &p })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_in_a_real_browser() {
    let Some((chromium, driver)) = tools() else {
        return;
    };
    let d = start_driver(&driver);
    let c = connect(&d, &chromium).await;
    let result = run_all(&c, &d).await;
    let _ = c.close().await;
    result.unwrap();
}

async fn run_all(c: &Client, d: &Driver) -> Result<(), String> {
    empty_home(c, d).await;
    filled_home(c, d).await;
    Ok(())
}

async fn empty_home(c: &Client, d: &Driver) {
    let dash = Running::empty(None);
    for page in PAGES {
        let report = visit(c, d, &dash.url(page), &shot_name("empty", page)).await;
        for chart in report["charts"].as_array().unwrap() {
            assert_eq!(chart["drawn"], "empty", "{page}: {chart}");
        }
    }
}

async fn filled_home(c: &Client, d: &Driver) {
    // Filling and the alert library are blocking code (their clients run runtimes).
    let dash = tokio::task::block_in_place(|| Running::filled(Some(TOKEN)));
    for page in PAGES.iter().copied().chain(["/training/compare?runs=train_als_000000000000,train_bpr_000000000001,train_als_000000000002"]) {
        let report = visit(c, d, &dash.url(page), &shot_name("filled", page)).await;
        for chart in report["charts"].as_array().unwrap() {
            assert_eq!(chart["drawn"], "chart", "{page}: {chart}");
            assert!(chart["points"].as_u64().unwrap() > 0, "{page}: {chart}");
            let axes = chart["axes"].as_array().unwrap();
            // Each axis has its label and drew tick values ("label: v1 v2 ...").
            assert!(
                axes.len() >= 2 && axes.iter().all(|a| a.as_str().unwrap().split_once(": ").is_some_and(|(l, t)| !l.is_empty() && !t.trim().is_empty())),
                "{page}: no axis labels: {chart}"
            );
        }
    }
    live_refresh_keeps_panels_and_charts(c, d, &dash).await;
    hostile_strings_stay_text(c, d, &dash).await;
    silence_from_the_page(c, d, &dash).await;
}

async fn live_refresh_keeps_panels_and_charts(c: &Client, d: &Driver, dash: &Running) {
    for page in ["/service", "/pipelines"] {
        visit(c, d, &dash.url(page), &shot_name("before-refresh", page)).await;
        let before = c
            .execute(
                "return document.querySelectorAll('main [data-panel], main .chart canvas').length",
                vec![],
            )
            .await
            .unwrap();
        let refreshed = c
            .execute("return window.recopsRefresh()", vec![])
            .await
            .unwrap();
        assert_eq!(refreshed, json!(true), "{page}: the live refresh failed");
        let after = c
            .execute(
                "return { n: document.querySelectorAll('main [data-panel], main .chart canvas').length,
                          errors: window.__recopsErrors, drawn: Array.from(document.querySelectorAll('.chart')).every(function (e) { return e.dataset.drawn === 'chart'; }) }",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            after["n"], before,
            "{page}: panels or charts lost by the refresh"
        );
        assert_eq!(after["errors"], json!([]), "{page}");
        assert_eq!(after["drawn"], json!(true), "{page}");
        assert!(console_errors(c, d).await.is_empty(), "{page}");
    }
}

async fn hostile_strings_stay_text(c: &Client, d: &Driver, dash: &Running) {
    let pages = [
        "/pipelines?status=failed&pipeline=model_training",
        "/alerts",
        "/models",
        "/training/runs/train_als_000000000000",
    ];
    for page in pages {
        visit(c, d, &dash.url(page), &shot_name("hostile", page)).await;
        let text = c
            .execute("return document.querySelector('main').innerText", vec![])
            .await
            .unwrap();
        assert!(
            text.as_str().unwrap().contains(HOSTILE),
            "{page}: the hostile string is not shown as text"
        );
        assert!(
            c.get_alert_text().await.is_err(),
            "{page}: a script ran (alert open)"
        );
    }
}

async fn silence_from_the_page(c: &Client, d: &Driver, dash: &Running) {
    visit(c, d, &dash.url("/alerts"), "silence-before").await;
    let form = c.find(Locator::Id("silence-form")).await.unwrap();
    for (name, value) in [
        ("matcher", "high_error_rate"),
        ("reason", "maintenance from the browser"),
        ("admin_token", TOKEN),
    ] {
        form.find(Locator::Css(&format!("input[name='{name}']")))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    form.find(Locator::Css("button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let url = c.current_url().await.unwrap();
        if url.query().is_some_and(|q| q.contains("notice=")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no notice after submitting the silence: {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    visit(
        c,
        d,
        c.current_url().await.unwrap().as_str(),
        "silence-after",
    )
    .await;
    let list = c
        .find(Locator::Id("silence-list"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("high_error_rate") && list.contains("maintenance from the browser"),
        "{list}"
    );
    // What `recops alert list` shows.
    let overview =
        tokio::task::block_in_place(|| AlertManager::load(&dash.home).unwrap().overview());
    assert!(
        overview
            .silences
            .iter()
            .any(|s| s.matcher == "high_error_rate"),
        "{:?}",
        overview.silences
    );
}
