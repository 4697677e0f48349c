//! Test helpers: homes, a running dashboard, an HTTP client.

#![allow(unreachable_pub)]

use std::sync::OnceLock;

use recops_core::Home;
use recops_dashboard::{DashboardHandle, DashboardOptions, spawn};
use serde_json::Value;

use crate::fill;

/// The admin token of the test dashboards.
pub const TOKEN: &str = "test-admin-token";

/// A temporary home, and a dashboard over it.
pub struct Running {
    pub _dir: tempfile::TempDir,
    pub home: Home,
    pub dashboard: DashboardHandle,
}

impl Running {
    /// A dashboard over an empty home.
    pub fn empty(token: Option<&str>) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        Self::start(dir, home, token)
    }

    /// A dashboard over a home filled with [`fill::SMALL`].
    pub fn filled(token: Option<&str>) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        fill::fill(&home, chrono::Utc::now(), &fill::SMALL, 16).unwrap();
        Self::start(dir, home, token)
    }

    /// A dashboard over `home` (kept in `dir`).
    pub fn start(dir: tempfile::TempDir, home: Home, token: Option<&str>) -> Running {
        let options = DashboardOptions {
            port: 0,
            admin_token: token.map(str::to_owned),
            bin_dir: Some(dir.path().join("bin")),
            ..DashboardOptions::default()
        };
        let dashboard = spawn(&home, options).unwrap();
        Running {
            _dir: dir,
            home,
            dashboard,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.dashboard.url())
    }

    /// GET `path`: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let res = client().get(self.url(path)).send().unwrap();
        (res.status().as_u16(), res.text().unwrap())
    }

    /// GET `path` as JSON, asserting 200.
    pub fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }
}

/// A blocking client that does not follow redirects.
pub fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        recops_core::tls::install_crypto_provider();
        reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    })
}

/// Every page.
pub const PAGES: &[&str] = &[
    "/",
    "/pipelines",
    "/training",
    "/models",
    "/service",
    "/drift",
    "/alerts",
    "/scheduler",
];

/// Every API call the pages make, besides per-run ones.
pub const APIS: &[&str] = &[
    "/api/v1/overview",
    "/api/v1/pipelines",
    "/api/v1/pipelines/trend?chart=duration",
    "/api/v1/pipelines/trend?chart=success_rate",
    "/api/v1/training",
    "/api/v1/training/evaluation",
    "/api/v1/models",
    "/api/v1/service?range=24h",
    "/api/v1/service/chart?range=30d&chart=requests",
    "/api/v1/service/chart?range=24h&chart=latency",
    "/api/v1/service/chart?range=7d&chart=rates",
    "/api/v1/drift",
    "/api/v1/drift/chart?chart=severity",
    "/api/v1/drift/chart?chart=popularity",
    "/api/v1/drift/chart?chart=volume",
    "/api/v1/alerts",
    "/api/v1/scheduler",
];
