//! A real Prometheus Alertmanager for tests, on 127.0.0.1 with a temp config and
//! storage folder and clustering off; killed when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable that makes a missing Alertmanager a test failure.
pub const REQUIRE_ALERTMANAGER_ENV: &str = "RECOPS_REQUIRE_ALERTMANAGER";

/// A running Alertmanager (`alertmanager`, or Debian's `prometheus-alertmanager`).
#[derive(Debug)]
pub struct RealAlertmanager {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// `alertmanager` or `prometheus-alertmanager` on PATH.
pub fn alertmanager_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["alertmanager", "prometheus-alertmanager"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// True under `CI=true` or `RECOPS_REQUIRE_ALERTMANAGER=1`.
pub fn alertmanager_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var(REQUIRE_ALERTMANAGER_ENV).is_ok_and(|v| v == "1")
}

impl RealAlertmanager {
    /// Starts one and waits until `/-/ready` answers 200. Without the binary: `None`
    /// and a NOTICE on stdout, or a panic when [`alertmanager_required`].
    ///
    /// # Panics
    /// When the binary is required and missing, or does not become ready in 60 s.
    #[allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]
    pub fn start() -> Option<Self> {
        let Some(bin) = alertmanager_binary() else {
            assert!(
                !alertmanager_required(),
                "an Alertmanager is required (CI=true or {REQUIRE_ALERTMANAGER_ENV}=1) but \
                 neither `alertmanager` nor `prometheus-alertmanager` is on PATH (apt-get \
                 install prometheus-alertmanager)"
            );
            println!("NOTICE: no alertmanager binary: the real-Alertmanager test is skipped");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\n  group_wait: 1s\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bin)
            .process_group(0)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .expect("start the alertmanager");
        let am = RealAlertmanager { child, port, dir };
        // A start-up wait, not a timed assertion.
        let deadline = Instant::now() + Duration::from_secs(60);
        while am.get("/-/ready").is_none_or(|(code, _)| code != 200) {
            let stderr =
                std::fs::read_to_string(am.dir.path().join("stderr.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "the alertmanager did not become ready: {stderr}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(am)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A plain HTTP/1.0 GET (no chunking, the server closes): status and body.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        let code = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, body.to_owned()))
    }

    /// The JSON text of `GET /api/v2/alerts` (active, silenced and inhibited alerts;
    /// resolved ones are not listed).
    ///
    /// # Panics
    /// When the Alertmanager does not answer 200.
    pub fn alerts_json(&self) -> String {
        match self.get("/api/v2/alerts") {
            Some((200, body)) => body,
            other => panic!("GET /api/v2/alerts: {other:?}"),
        }
    }
}

impl Drop for RealAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
