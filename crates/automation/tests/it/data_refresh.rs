use chrono::{TimeZone, Utc};
use recops_automation::Error;
use recops_automation::data_refresh::{
    DataRefreshOptions, PIPELINE, refresh_data, refresh_data_with,
};
use recops_automation::job::JobStatus;
use recops_core::FixedClock;
use recops_testkit::{GenConfig, TempHome};
use recops_tracking::{PipelineLock, PipelineTracker, RunStatus};

#[test]
fn a_run_is_tracked_with_its_counts_and_archives_the_files() {
    let (t, _) = TempHome::with_data(
        &GenConfig {
            invalid_rate: 0.05,
            ..GenConfig::tiny()
        },
        2,
    )
    .unwrap();
    let home = t.home();
    let clock = FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 2, 0, 0).unwrap());
    let result = refresh_data_with(
        home,
        &DataRefreshOptions {
            clock: clock.shared(),
            ..DataRefreshOptions::default()
        },
    )
    .unwrap();
    assert_eq!(result.status, JobStatus::Success);
    let report = result.report.clone().unwrap();
    assert!(report.rejected_records > 0);
    assert_eq!(report.new_records + report.rejected_records, 600);

    let tracker = PipelineTracker::open(home).unwrap();
    let run = tracker
        .get_run(result.run_id.as_deref().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(run.pipeline_name, PIPELINE);
    assert_eq!(run.status, RunStatus::Success);
    assert_eq!(run.started_at, "2025-01-15T02:00:00.000000+00:00");
    let m = &run.metadata;
    assert_eq!(m["type"], "full");
    assert_eq!(m["new_records"], report.new_records);
    assert_eq!(m["rejected_records"], report.rejected_records);
    assert_eq!(m["total_records"], report.total_records);
    assert_eq!(m["files"], 2);
    assert_eq!(m["data_version"], serde_json::json!(report.data_version));
    assert_eq!(m["force_full"], false);
    // The data version's quality, shown by the dashboard.
    assert!(report.mean_comment_quality.is_some());
    assert_eq!(
        m["mean_comment_quality"],
        serde_json::json!(report.mean_comment_quality)
    );

    // The JSON result has the spec's fields.
    let v = serde_json::to_value(&result).unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["type"], "full");
    assert_eq!(v["new_records"], report.new_records);
    assert_eq!(v["total_records"], report.total_records);
    assert!(v["files"][0]["archived_to"].is_string());
    assert!(v["files"][0]["rejected_file"].is_string());

    // The completion alert went through recops-alerting (the log channel at least).
    let alert = result.alert.as_ref().unwrap();
    assert_eq!(alert.alert_name, "pipeline_data_refresh_success");
    assert!(alert.channels[&recops_alerting::Channel::Log].is_sent());
    let log = std::fs::read_to_string(home.alerts_log()).unwrap();
    assert!(log.contains("pipeline_data_refresh_success"), "{log}");
    assert!(log.contains("new_records="), "{log}");
    assert_eq!(v["alert"]["alert_name"], "pipeline_data_refresh_success");

    // Nothing new: a second tracked run that changes nothing.
    let again = refresh_data(home, false, None).unwrap();
    let v = serde_json::to_value(&again).unwrap();
    assert_eq!(v["type"], "no_new_data");
    assert_eq!(v["changed"], false);
    let runs = tracker
        .get_recent_runs(Some(PIPELINE), 10, Some(RunStatus::Success))
        .unwrap();
    assert_eq!(runs.len(), 2);
}

#[test]
fn a_failed_run_is_recorded_with_the_reason() {
    let t = TempHome::new().unwrap();
    let home = t.home();
    t.stage("ratings.csv", "user_id,product_id,comment\n1,2,x\n")
        .unwrap();
    let err = refresh_data(home, true, None).unwrap_err();
    // The message and its causes, as `{:#}` prints them in the binaries.
    let msg = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    assert!(matches!(err, Error::JobFailed { .. }), "{msg}");
    assert!(msg.starts_with("data_refresh run data_refresh_"), "{msg}");
    assert!(
        msg.contains("ratings.csv") && msg.contains("rating, cmt_date"),
        "{msg}"
    );
    let tracker = PipelineTracker::open(home).unwrap();
    let runs = tracker.get_recent_runs(Some(PIPELINE), 10, None).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert!(
        runs[0]
            .error_message
            .as_deref()
            .unwrap()
            .contains("ratings.csv")
    );
    assert_eq!(runs[0].metadata["force_full"], true);
    // The failure alert names the file (warning severity).
    let log = std::fs::read_to_string(home.alerts_log()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("pipeline_data_refresh_failed"))
        .unwrap();
    assert!(
        line.contains("WARNING") && line.contains("ratings.csv"),
        "{line}"
    );
    // The file stayed in staging.
    assert!(home.staging_dir().join("ratings.csv").exists());
    assert!(!home.interactions().exists());
}

#[test]
fn a_second_run_while_one_holds_the_lock_is_skipped() {
    let (t, _) = TempHome::with_data(&GenConfig::tiny(), 1).unwrap();
    let home = t.home();
    let lock = PipelineLock::acquire(home, PIPELINE).unwrap();
    assert!(lock.acquired());
    let result = refresh_data(home, false, None).unwrap();
    assert_eq!(result.status, JobStatus::Skipped);
    assert_eq!(result.holder.as_ref().unwrap().pid, std::process::id());
    assert!(
        result
            .message
            .as_deref()
            .unwrap()
            .contains("another data_refresh run is in progress (pid ")
    );
    assert!(result.run_id.is_none());
    // Nothing was touched.
    assert!(!home.interactions().exists());
    assert_eq!(std::fs::read_dir(home.staging_dir()).unwrap().count(), 1);
    drop(lock);
    assert_eq!(
        refresh_data(home, false, None).unwrap().status,
        JobStatus::Success
    );
    assert!(home.interactions().exists());
}

#[test]
fn a_custom_staging_folder_is_read_and_archived_into_the_home() {
    let t = TempHome::new().unwrap();
    let inbox = tempfile::tempdir().unwrap();
    std::fs::write(
        inbox.path().join("drop.csv"),
        "user_id,product_id,rating,comment,cmt_date\n1,2,5,tốt,2025-01-01\n",
    )
    .unwrap();
    let result = refresh_data(t.home(), false, Some(inbox.path())).unwrap();
    assert_eq!(result.report.unwrap().new_records, 1);
    assert!(!inbox.path().join("drop.csv").exists());
    assert!(t.home().staging_archive_dir().join("drop.csv").exists());
}
