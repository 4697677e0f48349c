use recops_core::SystemClock;
use recops_tracking::{PipelineTracker, RunStatus};

use crate::child;

/// Four processes recording 200 runs each at the same time end with exactly 800
/// finished rows and no "database is locked".
#[test]
fn four_processes_record_800_runs_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("logs/pipeline_metrics.db");
    // Created by the first child that gets there, not by us: opening races too.
    let mut children: Vec<_> = (0..4).map(|_| child::spawn("track", &db, 200)).collect();
    for c in &mut children {
        assert_eq!(child::read_result(c), "done");
    }
    for mut c in children {
        let status = c.wait().unwrap();
        assert!(status.success(), "child failed: {status}");
    }
    let tracker = PipelineTracker::open_path(&db, SystemClock::shared()).unwrap();
    let runs = tracker.get_recent_runs(None, 10_000, None).unwrap();
    assert_eq!(runs.len(), 800);
    assert!(runs.iter().all(|r| r.status == RunStatus::Success));
    assert!(
        runs.iter()
            .all(|r| r.metadata.contains_key("records_processed"))
    );
    let pids: std::collections::HashSet<_> =
        runs.iter().map(|r| r.metadata["pid"].clone()).collect();
    assert_eq!(pids.len(), 4);
    let stats = tracker.get_stats(1).unwrap();
    assert_eq!(stats.stats_by_pipeline["data_refresh"].success, 800);
}
