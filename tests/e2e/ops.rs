//! `recops models`, `recops runs`, `recops deployments` on a temporary home.

use std::process::Command;

use recops_core::{Home, ModelId, SystemClock};
use recops_registry::{DeployedBy, NewModel, Registry};
use recops_tracking::PipelineTracker;
use serde_json::{Value, json};

fn mid(id: &str) -> ModelId {
    id.parse().unwrap()
}

fn recops(home: &std::path::Path, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_recops"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RECOPS_HOME")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    (
        out.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        text,
    )
}

#[test]
fn models_runs_and_deployments_commands() {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path();
    let home = Home::new(h);
    let reg = Registry::open(&home);
    for id in [
        "als_20250101_000000",
        "als_20250102_000000",
        "bpr_20250103_000000",
    ] {
        let model_id: ModelId = id.parse().unwrap();
        std::fs::create_dir_all(home.model_dir(&model_id)).unwrap();
        reg.register(
            &NewModel {
                model_id,
                model_type: id[..3].parse().expect("als or bpr"),
                metrics: [("ndcg@10".to_owned(), 0.1)].into(),
                baseline: Default::default(),
                data_version: "v".into(),
            },
            "test",
        )
        .unwrap();
    }
    reg.record_deployment(&mid("als_20250101_000000"), DeployedBy::Operator, "test")
        .unwrap();

    let (ok, _, text) = recops(h, &["models", "promote", "als_20250102_000000"]);
    assert!(ok, "{text}");
    let (ok, list, text) = recops(h, &["models", "list", "--json"]);
    assert!(ok, "{text}");
    assert_eq!(list["current_best"], "als_20250102_000000");
    assert_eq!(list["deployed"]["model_id"], "als_20250101_000000");
    assert_eq!(list["models"].as_array().unwrap().len(), 3);
    // Archive refuses the deployed model and the champion, with the reason.
    let (ok, _, text) = recops(h, &["models", "archive", "als_20250101_000000"]);
    assert!(!ok && text.contains("deployed model"), "{text}");
    let (ok, _, text) = recops(h, &["models", "archive", "als_20250102_000000"]);
    assert!(!ok && text.contains("champion"), "{text}");
    let (ok, _, text) = recops(h, &["models", "archive", "bpr_20250103_000000"]);
    assert!(ok, "{text}");
    let (ok, gc, text) = recops(h, &["models", "gc", "--keep", "0", "--dry-run", "--json"]);
    assert!(ok, "{text}");
    assert_eq!(gc["deleted"][0]["model_id"], "bpr_20250103_000000");
    assert!(home.model_dir(&mid("bpr_20250103_000000")).is_dir());
    let (ok, _, text) = recops(h, &["models", "gc", "--keep", "0"]);
    assert!(ok && text.contains("deleted the files of 1"), "{text}");
    assert!(!home.model_dir(&mid("bpr_20250103_000000")).exists());
    let (ok, _, text) = recops(h, &["models", "show", "nope"]);
    assert!(!ok && text.contains("nope"), "{text}");

    let tracker = PipelineTracker::open_path(&home.pipeline_db(), SystemClock::shared()).unwrap();
    let run = tracker.start_run("data_refresh", json!({})).unwrap();
    let (ok, runs, text) = recops(h, &["runs", "list", "--status", "running", "--json"]);
    assert!(ok, "{text}");
    assert_eq!(runs["runs"][0]["run_id"], run.as_str());
    let (ok, cancelled, text) = recops(h, &["runs", "cancel", &run, "--json"]);
    assert!(ok, "{text}");
    assert_eq!(cancelled["runs"][0]["status"], "cancelled");
    let (ok, cleanup, text) = recops(h, &["runs", "cleanup", "--json"]);
    assert!(ok, "{text}");
    assert_eq!(cleanup["marked_failed"], 0);
    let (ok, _, text) = recops(h, &["runs", "list", "--since", "last week"]);
    assert!(!ok && text.contains("--since"), "{text}");

    let (ok, deployments, text) = recops(h, &["deployments", "list", "--json"]);
    assert!(ok, "{text}");
    assert_eq!(deployments["deployed"]["action"], "operator");
    let (ok, training, text) = recops(h, &["training", "list", "--json"]);
    assert!(ok, "{text}");
    assert_eq!(training["runs"], json!([]));
}

/// SIGTERM (what the scheduler sends on timeout) while a job runs: the run is
/// recorded `cancelled`, not left `running`. The health check hangs on a service that
/// accepts connections and never answers.
#[test]
fn a_job_killed_by_sigterm_leaves_a_cancelled_row() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use recops_tracking::RunStatus;

    let dir = tempfile::tempdir().unwrap();
    let h = dir.path();
    let home = Home::new(h);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut child = Command::new(env!("CARGO_BIN_EXE_health-check"))
        .arg("--home")
        .arg(h)
        .args(["--service-url", &url])
        .env_remove("RECOPS_HOME")
        .env("RECOPS_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) for the run to be recorded.
    let mut run_id = None;
    for _ in 0..400 {
        if let Ok(t) = PipelineTracker::open_path(&home.pipeline_db(), SystemClock::shared())
            && let Ok(runs) = t.get_recent_runs(Some("health_check"), 1, Some(RunStatus::Running))
            && let Some(r) = runs.first()
        {
            run_id = Some(r.run_id.clone());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let run_id = run_id.expect("the health check recorded its run");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    let tracker = PipelineTracker::open_path(&home.pipeline_db(), SystemClock::shared()).unwrap();
    let run = tracker.get_run(&run_id).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Cancelled, "{run:?}");
    drop(silent);
}

/// `recops maintenance` run by hand catches SIGTERM like the job binaries: stalled at
/// a fault point inside its run, a SIGTERM leaves the run `cancelled` and the lock free.
#[test]
fn maintenance_killed_by_sigterm_leaves_a_cancelled_row() {
    use std::io::BufRead;

    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use recops_tracking::RunStatus;

    let dir = tempfile::tempdir().unwrap();
    let h = dir.path();
    let home = Home::new(h);
    let mut child = Command::new(env!("CARGO_BIN_EXE_recops"))
        .arg("--home")
        .arg(h)
        .arg("maintenance")
        .env_remove("RECOPS_HOME")
        .env(recops_core::faults::FAULT_ENV, "maintenance.start:stall")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let stalled = stderr
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("recops-fault-point: maintenance.start stalled"));
    assert!(stalled, "maintenance never reached its run");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(143));
    let tracker = PipelineTracker::open_path(&home.pipeline_db(), SystemClock::shared()).unwrap();
    let runs = tracker
        .get_recent_runs(Some("maintenance"), 5, None)
        .unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].status, RunStatus::Cancelled, "{runs:?}");
    // The next run is not blocked by a lock left behind.
    let (ok, v, text) = recops(h, &["maintenance", "--json"]);
    assert!(ok, "{text}");
    assert_eq!(v["status"], "success", "{text}");
}
