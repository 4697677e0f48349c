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

/// Four processes from two homes sharing one PostgreSQL database (one home names it
/// in `config/recops.yaml`, the other through `RECOPS_STORAGE_URL`) record 200 runs
/// each at once: 800 rows, 0 errors, and no SQLite file in either home.
#[test]
fn four_processes_from_two_homes_share_one_postgres_database() {
    let Some(pg) = recops_testkit::PgCluster::shared() else {
        return;
    };
    let url = pg.fresh_database();
    let by_config = tempfile::tempdir().unwrap();
    let by_env = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(by_config.path().join("config")).unwrap();
    std::fs::write(
        by_config.path().join("config/recops.yaml"),
        recops_core::DEFAULT_RECOPS_CONFIG.replace("  url: \"\"", &format!("  url: \"{url}\"")),
    )
    .unwrap();
    let mut children: Vec<_> = (0..4)
        .map(|i| {
            if i % 2 == 0 {
                // An empty override leaves the config's value.
                child::spawn_with(
                    "track_home",
                    by_config.path(),
                    200,
                    &[("RECOPS_STORAGE_URL", "")],
                )
            } else {
                child::spawn_with(
                    "track_home",
                    by_env.path(),
                    200,
                    &[("RECOPS_STORAGE_URL", &url)],
                )
            }
        })
        .collect();
    for c in &mut children {
        assert_eq!(child::read_result(c), "done 0");
    }
    for mut c in children {
        let status = c.wait().unwrap();
        assert!(status.success(), "child failed: {status}");
    }
    let db = recops_tracking::PgDatabase::connect_new(&url).unwrap();
    let tracker = PipelineTracker::with_store(
        Box::new(recops_tracking::PgPipelineStore::open(&db).unwrap()),
        SystemClock::shared(),
    );
    let runs = tracker.get_recent_runs(None, 10_000, None).unwrap();
    assert_eq!(runs.len(), 800);
    assert!(runs.iter().all(|r| r.status == RunStatus::Success));
    let pids: std::collections::HashSet<_> =
        runs.iter().map(|r| r.metadata["pid"].clone()).collect();
    assert_eq!(pids.len(), 4);
    let homes: std::collections::HashSet<_> =
        runs.iter().map(|r| r.metadata["home"].clone()).collect();
    assert_eq!(homes.len(), 2);
    assert_eq!(
        tracker.get_stats(1).unwrap().stats_by_pipeline["data_refresh"].success,
        800
    );
    for home in [by_config.path(), by_env.path()] {
        assert!(
            !home.join("logs/pipeline_metrics.db").exists(),
            "a SQLite file was written in PostgreSQL mode"
        );
    }
}
