use chrono::{Duration, TimeZone, Utc};
use recops_automation::data_refresh::refresh_data;
use recops_automation::drift_detection::{DriftJobOptions, detect_drift};
use recops_automation::health_check::{HealthJobOptions, run_health_check};
use recops_core::FixedClock;
use recops_health::ComponentStatus;
use recops_testkit::{DriftOptions, GenConfig, TempHome, generate, write_dataset};
use recops_tracking::{PipelineTracker, RunStatus};

fn alert_lines(home: &recops_core::Home, needle: &str) -> usize {
    std::fs::read_to_string(home.alerts_log())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// An empty home: nothing runs, nothing is there. Every check says why, the run is
/// recorded, and the alert goes out once for ten hourly checks.
#[test]
fn an_unhealthy_home_is_reported_component_by_component_and_alerted_once() {
    let t = TempHome::new().unwrap();
    let home = t.home();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clock = FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap());
    let options = HealthJobOptions {
        service_url: Some(format!("http://127.0.0.1:{port}")),
        clock: clock.shared(),
        ..HealthJobOptions::default()
    };
    let mut last = None;
    for _ in 0..10 {
        let r = run_health_check(home, &options).unwrap();
        clock.advance(Duration::minutes(20));
        last = Some(r);
    }
    let r = last.unwrap();
    assert!(!r.healthy);
    assert_eq!(r.status, "unhealthy");
    assert_eq!(r.components["service"], ComponentStatus::Unhealthy);
    assert_eq!(r.components["data"], ComponentStatus::Unhealthy);
    assert_eq!(r.components["model"], ComponentStatus::Unhealthy);
    assert_eq!(r.components["pipeline"], ComponentStatus::Healthy);
    assert_eq!(r.components["embeddings"], ComponentStatus::Warning);
    assert!(
        r.model
            .error
            .as_deref()
            .unwrap()
            .contains("Registry not found")
    );
    assert_eq!(r.data.missing.len(), 4);
    // 10 checks over 3 hours, within the 4 h repeat interval: one notification.
    assert_eq!(alert_lines(home, "| health_check_unhealthy: "), 1);
    let log = std::fs::read_to_string(home.health_check_log()).unwrap();
    assert_eq!(
        log.lines().filter(|l| l.contains("| UNHEALTHY |")).count(),
        10
    );
    let runs = PipelineTracker::open(home)
        .unwrap()
        .get_recent_runs(Some("health_check"), 20, None)
        .unwrap();
    assert_eq!(runs.len(), 10);
    assert!(
        runs.iter()
            .all(|r| r.status == RunStatus::Success && r.metadata["healthy"] == false)
    );
}

#[test]
fn drift_job_reports_alerts_once_and_needs_processed_data() {
    let t = TempHome::new().unwrap();
    let home = t.home();
    let clock = FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 20, 9, 0, 0).unwrap());
    let options = DriftJobOptions {
        retrain_on_drift: Some(false),
        clock: clock.shared(),
    };
    // No processed data: a failed run that says what to do.
    let err = detect_drift(home, &options).unwrap_err();
    let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    assert!(chain.contains("run data-refresh first"), "{chain}");

    let ds = generate(&GenConfig {
        users: 500,
        products: 80,
        interactions: 20_000,
        drift: DriftOptions {
            rating_shift: -1.5,
            volume_factor: 2.0,
            ..DriftOptions::default()
        },
        ..GenConfig::default()
    })
    .unwrap();
    write_dataset(home, &ds, 1).unwrap();
    refresh_data(home, false, None).unwrap();
    let r = detect_drift(home, &options).unwrap();
    assert_eq!(r.status, recops_automation::job::JobStatus::Success);
    assert_eq!(r.overall_severity, Some(recops_drift::Severity::High));
    assert!(r.alert_firing);
    let report = r.report_path.unwrap();
    assert!(report.ends_with("reports/drift/drift_report_20250120.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(v["overall_severity"], "high");
    assert!(v["rating_drift"]["drift_detected"].as_bool().unwrap());

    clock.advance(Duration::hours(1));
    detect_drift(home, &options).unwrap();
    assert_eq!(
        alert_lines(home, "| data_drift: drift severity high"),
        1,
        "deduplicated"
    );
    let summary = std::fs::read_to_string(home.drift_summary()).unwrap();
    assert_eq!(
        summary.lines().filter(|l| l.starts_with("| 2025-")).count(),
        2
    );
    let runs = PipelineTracker::open(home)
        .unwrap()
        .get_recent_runs(Some("drift_detection"), 10, None)
        .unwrap();
    assert_eq!(
        runs.iter()
            .filter(|r| r.status == RunStatus::Success)
            .count(),
        2
    );
    assert_eq!(
        runs.iter()
            .filter(|r| r.status == RunStatus::Failed)
            .count(),
        1
    );
}
