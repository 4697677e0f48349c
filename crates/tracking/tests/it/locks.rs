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
