use recops_tracking::{LockOptions, PipelineLock};

use crate::child;

#[test]
fn a_second_process_cannot_take_a_held_lock() {
    let dir = tempfile::tempdir().unwrap();
    let ours =
        PipelineLock::acquire_in(dir.path(), "data_refresh", &LockOptions::default()).unwrap();
    assert!(ours.acquired());
    let mut c = child::spawn("try_lock", dir.path(), 0);
    let result = child::read_result(&mut c);
    assert!(result.starts_with("busy "), "{result}");
    assert!(c.wait().unwrap().success());
    drop(ours);
    let mut c = child::spawn("try_lock", dir.path(), 0);
    assert!(child::read_result(&mut c).starts_with("acquired "));
    assert!(c.wait().unwrap().success());
}

#[test]
fn a_lock_of_a_process_killed_with_sigkill_is_free_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut holder = child::spawn("hold_lock", dir.path(), 0);
    let result = child::read_result(&mut holder);
    let pid: u32 = result.strip_prefix("acquired ").unwrap().parse().unwrap();
    assert_eq!(pid, holder.id());

    let busy =
        PipelineLock::acquire_in(dir.path(), "data_refresh", &LockOptions::default()).unwrap();
    assert!(!busy.acquired());
    assert_eq!(
        busy.holder().unwrap().pid,
        pid,
        "the lock file names its holder"
    );

    holder.kill().unwrap(); // SIGKILL: no destructor runs in the child
    holder.wait().unwrap();
    let lock =
        PipelineLock::acquire_in(dir.path(), "data_refresh", &LockOptions::default()).unwrap();
    assert!(lock.acquired());
    assert_eq!(lock.holder().unwrap().pid, std::process::id());
}

/// A home whose `storage.url` is the database `url`.
fn postgres_home(url: &str) -> (tempfile::TempDir, recops_core::Home) {
    let dir = tempfile::tempdir().unwrap();
    let shipped = include_str!("../../../../config/recops.yaml");
    assert!(shipped.contains("  url: \"\"\n"));
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/recops.yaml"),
        shipped.replacen("  url: \"\"\n", &format!("  url: {url}\n"), 1),
    )
    .unwrap();
    let home = recops_core::Home::new(dir.path());
    (dir, home)
}

#[test]
fn in_postgres_mode_the_lock_excludes_jobs_of_another_home_and_names_its_holder() {
    let Some(pg) = recops_testkit::PgCluster::shared() else {
        return;
    };
    let url = pg.fresh_database();
    let (_a_dir, a) = postgres_home(&url);
    let (_b_dir, b) = postgres_home(&url);
    let held = PipelineLock::acquire(&a, "data_refresh").unwrap();
    assert!(held.acquired());
    let busy = PipelineLock::acquire(&b, "data_refresh").unwrap();
    assert!(!busy.acquired(), "another home took a held lock");
    let h = busy.holder().expect("the holder is reported");
    assert_eq!(
        (h.pid, h.pipeline.as_str()),
        (std::process::id(), "data_refresh")
    );
    // Other pipelines are not blocked, and no lock file is written in this mode.
    assert!(
        PipelineLock::acquire(&b, "model_training")
            .unwrap()
            .acquired()
    );
    assert!(!a.locks_dir().join("data_refresh.lock").exists());
    assert!(!b.locks_dir().join("data_refresh.lock").exists());
    drop(busy);
    drop(held);
    let taken = PipelineLock::acquire(&b, "data_refresh").unwrap();
    assert!(taken.acquired(), "released on drop");
}

#[test]
fn in_postgres_mode_a_holder_killed_with_sigkill_releases_the_lock() {
    let Some(pg) = recops_testkit::PgCluster::shared() else {
        return;
    };
    let url = pg.fresh_database();
    let (a_dir, _a) = postgres_home(&url);
    let (_b_dir, b) = postgres_home(&url);
    let mut holder = child::spawn("hold_home_lock", a_dir.path(), 0);
    let result = child::read_result(&mut holder);
    let pid: u32 = result.strip_prefix("acquired ").unwrap().parse().unwrap();
    let busy = PipelineLock::acquire(&b, "data_refresh").unwrap();
    assert!(!busy.acquired());
    assert_eq!(busy.holder().unwrap().pid, pid);

    holder.kill().unwrap(); // SIGKILL: its connection closes, the server unlocks
    holder.wait().unwrap();
    // The server notices the closed connection at once on a local socket; allow it a
    // moment under load.
    let mut lock = PipelineLock::acquire(&b, "data_refresh").unwrap();
    for _ in 0..100 {
        if lock.acquired() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        lock = PipelineLock::acquire(&b, "data_refresh").unwrap();
    }
    assert!(lock.acquired(), "the killed holder's lock was not released");
    assert_eq!(lock.holder().unwrap().pid, std::process::id());
}
