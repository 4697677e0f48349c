//! The API and pages over real HTTP.

use recops_alerting::AlertManager;
use serde_json::Value;

use crate::fill::HOSTILE;
use crate::support::{APIS, PAGES, Running, TOKEN, client};

#[test]
fn an_empty_home_gives_empty_states_that_say_what_fills_them_and_creates_nothing() {
    let d = Running::empty(None);
    for page in PAGES {
        let (status, body) = d.get(page);
        assert_eq!(status, 200, "{page}: {body}");
        assert!(body.contains("<main id=\"main\">"), "{page}");
    }
    for api in APIS {
        d.json(api);
    }
    let p = d.json("/api/v1/pipelines");
    assert_eq!(p["runs"]["state"], "empty");
    assert!(
        p["runs"]["hint"]
            .as_str()
            .unwrap()
            .contains("no pipeline runs yet")
    );
    let t = d.json("/api/v1/training");
    assert_eq!(
        t["runs"]["hint"],
        "no training runs yet: run model-training"
    );
    assert_eq!(
        d.json("/api/v1/service/chart?range=24h&chart=latency")["state"],
        "empty"
    );
    assert_eq!(d.json("/api/v1/drift")["latest"]["state"], "empty");
    let (_, html) = d.get("/training");
    assert!(html.contains("no training runs yet: run model-training"));
    // Read-only: the home has no store after all those reads.
    for f in [
        d.home.pipeline_db(),
        d.home.training_db(),
        d.home.service_db(),
        d.home.alert_state_db(),
        d.home.scheduler_state_db(),
        d.home.registry(),
    ] {
        assert!(!f.exists(), "{} was created", f.display());
    }
}

#[test]
fn a_filled_home_shows_its_records_with_keyset_pagination_and_filters() {
    let d = Running::filled(None);
    let first = d.json("/api/v1/pipelines");
    let runs = first["runs"]["data"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 50);
    let next = first["runs"]["data"]["next"].as_str().unwrap();
    let second = d.json(&format!("/api/v1/pipelines?after={}", enc(next)));
    let runs2 = second["runs"]["data"]["runs"].as_array().unwrap();
    assert_eq!(runs2.len(), 50);
    let ids = |r: &[Value]| {
        r.iter()
            .map(|x| x["run_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let (a, b) = (ids(runs), ids(runs2));
    assert!(a.iter().all(|x| !b.contains(x)), "pages overlap");
    assert!(a.last().unwrap() != b.first().unwrap());
    let failed = d.json("/api/v1/pipelines?status=failed&pipeline=model_training");
    for r in failed["runs"]["data"]["runs"].as_array().unwrap() {
        assert_eq!(
            (r["status"].as_str(), r["pipeline_name"].as_str()),
            (Some("failed"), Some("model_training"))
        );
    }
    assert!(
        first["stale_running"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["pipeline_name"] == "data_refresh")
    );
    assert!(first["summary"]["data"].as_array().unwrap().len() >= 5);

    let training = d.json("/api/v1/training");
    let run_id = training["runs"]["data"]["runs"][0]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let curves = d.json(&format!("/api/v1/training/runs/{run_id}/curves"));
    assert_eq!(curves["data"]["x"].as_array().unwrap().len(), 15);
    assert_eq!(curves["data"]["series"].as_array().unwrap().len(), 3);
    let cmp = d.json(
        "/api/v1/training/compare?runs=train_als_000000000000,train_bpr_000000000001&curve=loss",
    );
    assert_eq!(cmp["data"]["series"].as_array().unwrap().len(), 2);

    let models = d.json("/api/v1/models");
    assert_eq!(models["champion"], "als_20250115_000000");
    assert_eq!(models["models"]["data"].as_array().unwrap().len(), 3);
    assert_eq!(models["deployments"]["data"].as_array().unwrap().len(), 3);
    let alerts = d.json("/api/v1/alerts");
    assert_eq!(alerts["silences"]["data"][0]["matcher"], "pipeline_*");
    assert!(
        alerts["states"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["alert_name"] == "high_latency" && s["status"] == "firing")
    );
    assert!(alerts["notifications"]["data"].as_array().unwrap().len() >= 2);
    let drift = d.json("/api/v1/drift");
    assert_eq!(drift["reports"]["data"].as_array().unwrap().len(), 4);
    // Daily trends bucket by days of the configured zone (Asia/Ho_Chi_Minh, UTC+7).
    let trend = d.json("/api/v1/pipelines/trend?chart=duration&days=30");
    let days = trend["data"]["x"].as_array().unwrap();
    assert!(!days.is_empty());
    for x in days {
        let x = x.as_f64().unwrap() as i64;
        assert_eq!(
            (x + 7 * 3600).rem_euclid(86_400),
            0,
            "{x} is not a local midnight"
        );
    }
    // Data versions carry their quality (mean comment quality of the refresh).
    let versions = drift["data_versions"]["data"].as_array().unwrap();
    assert!(!versions.is_empty());
    assert!(
        versions.iter().all(|v| v["quality"] == 0.625),
        "{versions:?}"
    );
    let sched = d.json("/api/v1/scheduler");
    let jobs = sched["jobs"]["data"].as_array().unwrap();
    assert!(
        jobs.iter()
            .any(|j| j["job"] == "drift_detection" && j["overdue_since"].is_object())
    );
    let overview = d.json("/api/v1/overview");
    assert_eq!(overview["health"].as_array().unwrap().len(), 5);
    assert_eq!(overview["last_runs"]["data"].as_array().unwrap().len(), 7);
}

#[test]
fn long_series_are_downsampled_to_at_most_1000_points() {
    let d = Running::filled(None);
    // 2 days of minutes in the 7 d range: 2880 rollups, bucketed to 15 min.
    let c = d.json("/api/v1/service/chart?range=7d&chart=latency");
    let x = c["data"]["x"].as_array().unwrap().len();
    assert!((100..=1000).contains(&x), "{x}");
    for s in c["data"]["series"].as_array().unwrap() {
        assert_eq!(s["values"].as_array().unwrap().len(), x);
    }
    // The deployments of the last day are marked.
    assert!(!c["data"]["marks"].as_array().unwrap().is_empty());
}

#[test]
fn stored_strings_render_as_text_and_every_response_has_the_csp() {
    let d = Running::filled(None);
    let failed = d.json("/api/v1/pipelines?status=failed&pipeline=model_training");
    let hostile = failed["runs"]["data"]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["error_message"] == HOSTILE)
        .expect("the hostile run is listed");
    let run_id = hostile["run_id"].as_str().unwrap();
    for page in [
        format!("/pipelines/runs/{run_id}"),
        "/pipelines?status=failed".into(),
        "/alerts".into(),
        "/models".into(),
        "/training/runs/train_als_000000000000".into(),
    ] {
        let res = client().get(d.url(&page)).send().unwrap();
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.starts_with("default-src 'self'"), "{csp}");
        let html = res.text().unwrap();
        assert!(
            !html.contains("<img src=x"),
            "{page} renders the hostile string as HTML"
        );
        assert!(
            html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"),
            "{page} does not show the hostile string"
        );
    }
}

#[test]
fn a_busy_database_gives_a_stale_notice_not_an_error() {
    let d = Running::filled(None);
    let writer = rusqlite::Connection::open(d.home.pipeline_db()).unwrap();
    writer
        .execute_batch(
            "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; DELETE FROM pipeline_runs WHERE 0;",
        )
        .unwrap();
    // In WAL mode an exclusive-locking writer keeps readers out.
    writer
        .execute_batch(
            "COMMIT; BEGIN EXCLUSIVE; UPDATE pipeline_runs SET status = status WHERE rowid = 1;",
        )
        .unwrap();
    let p = d.json("/api/v1/pipelines");
    assert_eq!(p["runs"]["state"], "stale", "{}", p["runs"]);
    let (status, html) = d.get("/pipelines");
    assert_eq!(status, 200);
    assert!(html.contains("stale: pipeline_metrics.db is busy"));
    writer.execute_batch("COMMIT").unwrap();
}

#[test]
fn a_non_loopback_host_needs_an_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let home = recops_core::Home::new(dir.path());
    let options = recops_dashboard::DashboardOptions {
        host: "0.0.0.0".into(),
        port: 0,
        ..Default::default()
    };
    let err = recops_dashboard::spawn(&home, options).unwrap_err();
    assert!(err.to_string().contains("RECOPS_ADMIN_TOKEN"), "{err}");
}

#[test]
fn actions_are_refused_without_a_configured_token() {
    let d = Running::empty(None);
    let res = client()
        .post(d.url("/alerts/silences"))
        .bearer_auth("anything")
        .form(&[
            ("matcher", "high_latency"),
            ("duration", "1h"),
            ("reason", "x"),
        ])
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("error=actions%20are%20disabled"),
        "{location}"
    );
    assert!(!d.home.alert_state_db().exists());
}

#[test]
fn silences_need_the_token_and_csrf_and_land_in_the_alert_state() {
    let d = Running::empty(Some(TOKEN));
    let (_, html) = d.get("/alerts");
    let csrf = between(&html, "name=\"recops_csrf\" value=\"", "\"");
    let form = |token: &str, csrf: &str| {
        vec![
            ("matcher".to_owned(), "high_latency".to_owned()),
            ("duration".to_owned(), "2h".to_owned()),
            ("reason".to_owned(), "deploying".to_owned()),
            ("admin_token".to_owned(), token.to_owned()),
            ("recops_csrf".to_owned(), csrf.to_owned()),
        ]
    };
    let post = |cookie: &str, origin: &str, body: &Vec<(String, String)>| {
        let res = client()
            .post(d.url("/alerts/silences"))
            .header("cookie", cookie)
            .header("origin", origin)
            .form(body)
            .send()
            .unwrap();
        res.headers()["location"].to_str().unwrap().to_owned()
    };
    let me = d.dashboard.url();
    let cookie = format!("recops_csrf={csrf}");
    assert!(post(&cookie, &me, &form(TOKEN, "forged")).contains("CSRF"));
    assert!(post(&cookie, "http://evil.example", &form(TOKEN, csrf)).contains("CSRF"));
    assert!(
        post(&cookie, &me, &form("wrong", csrf)).contains("wrong%20or%20missing%20admin%20token")
    );
    assert!(
        !d.home.alert_state_db().exists()
            || AlertManager::load(&d.home)
                .unwrap()
                .silences()
                .unwrap()
                .is_empty()
    );
    let ok = post(&cookie, &me, &form(TOKEN, csrf));
    assert!(ok.contains("notice=silenced%20high_latency"), "{ok}");
    let silences = AlertManager::load(&d.home).unwrap().silences().unwrap();
    assert_eq!(silences.len(), 1);
    assert_eq!(silences[0].reason, "deploying");
    // Expire it with a bearer token (a tool, no browser).
    let res = client()
        .post(d.url("/alerts/silences/expire"))
        .bearer_auth(TOKEN)
        .form(&[("matcher", "high_latency")])
        .send()
        .unwrap();
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .contains("expired")
    );
    assert!(
        AlertManager::load(&d.home)
            .unwrap()
            .silences()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn rollback_without_history_says_why() {
    let d = Running::empty(Some(TOKEN));
    let res = client()
        .post(d.url("/models/rollback"))
        .bearer_auth(TOKEN)
        .form(&[("x", "y")])
        .send()
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("error=") && location.contains("deployment"),
        "{location}"
    );
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let i = s.find(start).expect("start marker") + start.len();
    let j = s[i..].find(end).expect("end marker");
    &s[i..i + j]
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn metrics_export_each_pipelines_last_success_for_prometheus() {
    let empty = Running::empty(None);
    let (status, text) = empty.get("/metrics");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("recops_pipeline_store_up 1\n"), "{text}");
    assert!(!text.contains("{pipeline="), "{text}");
    assert!(
        !empty.home.pipeline_db().exists(),
        "/metrics created the store"
    );

    let d = Running::filled(None);
    let (status, text) = d.get("/metrics");
    assert_eq!(status, 200);
    let successes: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("recops_pipeline_last_success_timestamp_seconds{pipeline=\""))
        .collect();
    assert!(!successes.is_empty(), "{text}");
    let data_refresh = successes
        .iter()
        .find(|l| l.contains("pipeline=\"data_refresh\""))
        .unwrap();
    let value: f64 = data_refresh.rsplit(' ').next().unwrap().parse().unwrap();
    // The filled home's runs are of the last days, and the newest success is the one
    // the pipelines API lists first among data_refresh successes.
    let api = d.json("/api/v1/pipelines?pipeline=data_refresh&status=success");
    let newest = api["runs"]["data"]["runs"][0]["finished_at"]["utc"]
        .as_str()
        .unwrap();
    let newest = chrono::DateTime::parse_from_rfc3339(newest).unwrap();
    assert_eq!(value, newest.timestamp_millis() as f64 / 1000.0, "{text}");
    promtool_check_metrics(&text);
}

/// `promtool check metrics` accepts `text` (skipped with a NOTICE without promtool,
/// unless CI=true or RECOPS_REQUIRE_PROMTOOL=1).
#[allow(clippy::print_stdout)]
fn promtool_check_metrics(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let Some(promtool) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    }) else {
        assert!(
            !(std::env::var("CI").is_ok_and(|v| v == "true")
                || std::env::var("RECOPS_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1")),
            "promtool is required but not on PATH (apt-get install prometheus)"
        );
        println!("NOTICE: no promtool: /metrics is not linted");
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
