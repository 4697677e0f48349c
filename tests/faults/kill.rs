//! `kill -9` at exact steps of model-training (through registration), model-deployment
//! (registry and history writes), `recops models archive` / `gc` and the scheduler: a first run with `RECOPS_FAULT_POINT=trace` lists the fault
//! points the job passes (atomic writes, registry updates, training phases), then each
//! chosen point is hit in a copy of the same home with SIGKILL. After each kill every
//! file parses, the registry holds only complete model folders, the next run completes
//! and the result equals an uninterrupted run's.
//!
//! Run: `cargo test -p recops --test faults kill -- --nocapture` (prints the points).

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};

use recops_cf_training::CfModel;
use recops_core::Home;
use recops_core::faults::{FAULT_ENV, TRACE_PREFIX};
use recops_registry::Registry;
use serde_json::Value;

/// Runs `bin` with `args` on `home`, the fault plan `fault` armed.
fn run(bin: &str, home: &Path, args: &[&str], fault: &str) -> Output {
    Command::new(bin)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RECOPS_HOME")
        .env("RECOPS_LOG", "warn")
        .env(FAULT_ENV, fault)
        .output()
        .unwrap()
}

/// The points a run passes, in order, as `name#n` (n-th hit of the point).
fn trace(bin: &str, home: &Path, args: &[&str]) -> Vec<String> {
    let out = run(bin, home, args, "trace");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix(TRACE_PREFIX))
        .map(|name| {
            let n = seen.entry(name.to_owned()).or_insert(0);
            *n += 1;
            format!("{name}#{n}")
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn killed(out: &Output) -> bool {
    out.status.signal() == Some(9)
}

/// Every model folder (not a hidden partial one) is complete and loads; every model
/// the registry names that is not archived has one; the registry parses.
/// `load_models`: load every model folder (real models only).
fn check_models(home: &Home, load_models: bool) -> recops_registry::RegistryFile {
    let reg = Registry::open(home)
        .load()
        .expect("registry.json must always parse");
    let folders = std::fs::read_dir(home.cf_artifacts_dir())
        .into_iter()
        .flatten();
    for e in folders.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if load_models && e.path().is_dir() && !name.starts_with('.') {
            CfModel::load(&e.path()).unwrap_or_else(|err| panic!("{name} is torn: {err}"));
        }
    }
    for (id, m) in &reg.models {
        // An archived model's files may be mid-gc: whole or gone is checked apart.
        if m.status != recops_registry::ModelStatus::Archived {
            assert!(
                home.model_dir(id).join("model.json").exists(),
                "registered {id} has no complete folder"
            );
        }
    }
    reg
}

/// Metrics of the newest registered model of each type.
fn newest_metrics(home: &Home) -> BTreeMap<String, Value> {
    let reg = Registry::open(home).load().unwrap();
    let mut out = BTreeMap::new();
    for mt in [recops_core::ModelType::Als, recops_core::ModelType::Bpr] {
        if let Some((id, _)) = reg.latest_registered(mt) {
            let text = std::fs::read(home.model_dir(id).join("model.json")).unwrap();
            let v: Value = serde_json::from_slice(&text).unwrap();
            out.insert(mt.to_string(), v["metrics"].clone());
        }
    }
    out
}

/// Spreads `n` picks evenly over `points` (deterministic: the same points every run).
fn pick(points: &[String], n: usize) -> Vec<String> {
    if points.len() <= n {
        return points.to_vec();
    }
    (0..n)
        .map(|i| points[i * points.len() / n].clone())
        .collect()
}

#[test]
fn model_training_killed_at_any_step_recovers_to_the_uninterrupted_result() {
    let training = env!("CARGO_BIN_EXE_model-training");
    let args = ["--no-auto-deploy"];
    let scratch = tempfile::tempdir().unwrap();
    let base = scratch.path().join("base");
    let h = base.to_str().unwrap();
    let generated = Command::new(env!("CARGO_BIN_EXE_recops"))
        .args([
            "--home",
            h,
            "gen-data",
            "--users",
            "200",
            "--products",
            "80",
        ])
        .args(["--interactions", "2500"])
        .output()
        .unwrap();
    assert!(generated.status.success());
    let refresh = run(env!("CARGO_BIN_EXE_data-refresh"), &base, &[], "");
    assert!(refresh.status.success());

    let reference = scratch.path().join("reference");
    copy_tree(&base, &reference);
    let points = trace(training, &reference, &args);
    let expected = newest_metrics(&Home::new(&reference));
    assert_eq!(expected.len(), 2, "both models registered: {expected:?}");
    let chosen = pick(&points, 22);
    assert!(
        chosen.len() >= 20,
        "only {} points: {points:?}",
        chosen.len()
    );
    eprintln!(
        "model-training: {} points, killing at {chosen:?}",
        points.len()
    );
    for point in &chosen {
        let dir = scratch.path().join("k");
        copy_tree(&base, &dir);
        let home = Home::new(&dir);
        let out = run(training, &dir, &args, point);
        assert!(killed(&out), "{point}: not killed: {out:?}");
        check_models(&home, true);
        let again = run(training, &dir, &args, "");
        assert!(again.status.success(), "{point}: rerun failed: {again:?}");
        check_models(&home, true);
        assert_eq!(newest_metrics(&home), expected, "{point}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A home with six registered models (three per type; the newest of each type is
/// registered last), the champion deployed.
fn lifecycle_home(dir: &Path) {
    let home = Home::new(dir);
    let reg = Registry::open(&home);
    for (n, id) in [
        "als_20250101_000000",
        "bpr_20250101_000000",
        "als_20250102_000000",
        "bpr_20250102_000000",
        "als_20250103_000000",
        "bpr_20250103_000000",
    ]
    .iter()
    .enumerate()
    {
        let id = &recops_core::ModelId::new(*id).unwrap();
        let d = home.model_dir(id);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["model.json", "model.safetensors", "serving.safetensors"] {
            std::fs::write(d.join(f), format!("{id} {f}")).unwrap();
        }
        reg.register(
            &recops_registry::NewModel {
                model_id: id.clone(),
                model_type: id[..3].parse().unwrap(),
                metrics: [("ndcg@10".to_owned(), 0.1 + n as f64 / 100.0)].into(),
                baseline: Default::default(),
                data_version: "v".into(),
            },
            "test",
        )
        .unwrap();
    }
    reg.record_deployment(
        &recops_core::ModelId::new("als_20250103_000000").unwrap(),
        recops_registry::DeployedBy::Operator,
        "test",
    )
    .unwrap();
}

const ARCHIVED: [&str; 4] = [
    "als_20250101_000000",
    "bpr_20250101_000000",
    "als_20250102_000000",
    "bpr_20250102_000000",
];

/// The commands of the lifecycle job, in order.
fn lifecycle_steps() -> Vec<Vec<&'static str>> {
    let mut steps: Vec<Vec<&str>> = ARCHIVED
        .iter()
        .map(|id| vec!["models", "archive", id])
        .collect();
    steps.push(vec!["models", "gc", "--keep", "0"]);
    steps
}

/// A model folder is whole (the three files as written) or gone, never half-deleted.
fn whole_or_gone(home: &Home, id: &str) -> bool {
    let d = home.model_dir(&recops_core::ModelId::new(id).unwrap());
    if !d.exists() {
        return false;
    }
    for f in ["model.json", "model.safetensors", "serving.safetensors"] {
        assert_eq!(
            std::fs::read_to_string(d.join(f)).unwrap(),
            format!("{id} {f}"),
            "{id} is half-deleted"
        );
    }
    true
}

#[test]
fn models_archive_and_gc_killed_at_any_step_recover() {
    let recops = env!("CARGO_BIN_EXE_recops");
    let scratch = tempfile::tempdir().unwrap();
    let base = scratch.path().join("base");
    lifecycle_home(&base);
    let steps = lifecycle_steps();

    // The uninterrupted run, and the points of each step.
    let reference = scratch.path().join("reference");
    copy_tree(&base, &reference);
    let mut plan: Vec<(usize, String)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        for p in trace(recops, &reference, step) {
            plan.push((i, p));
        }
    }
    let ref_home = Home::new(&reference);
    let expected = Registry::open(&ref_home).load().unwrap();
    let gone: Vec<bool> = ARCHIVED
        .iter()
        .map(|id| !whole_or_gone(&ref_home, id))
        .collect();
    assert_eq!(gone, [true; 4], "gc --keep 0 deleted every archived model");
    assert!(plan.len() >= 20, "only {} points: {plan:?}", plan.len());
    eprintln!(
        "models archive/gc: killing at {} points: {plan:?}",
        plan.len()
    );

    for (step, point) in &plan {
        let dir = scratch.path().join("k");
        copy_tree(&base, &dir);
        let home = Home::new(&dir);
        for s in &steps[..*step] {
            assert!(run(recops, &dir, s, "").status.success());
        }
        let out = run(recops, &dir, &steps[*step], point);
        assert!(killed(&out), "{point}: not killed: {out:?}");
        check_models(&home, false);
        for id in ARCHIVED {
            whole_or_gone(&home, id);
        }
        // The rest of the job, the killed step again first.
        for s in &steps[*step..] {
            let again = run(recops, &dir, s, "");
            assert!(again.status.success(), "{point}: {s:?} failed: {again:?}");
        }
        let reg = check_models(&home, false);
        for id in ARCHIVED {
            assert!(!whole_or_gone(&home, id), "{point}: {id} not deleted");
            let m = &reg.models[id];
            assert_eq!(m.status, expected.models[id].status, "{point}: {id}");
            assert!(m.extra.contains_key("files_deleted_at"), "{point}: {id}");
        }
        assert_eq!(reg.current_best, expected.current_best);
        assert_eq!(
            reg.deployed.as_ref().map(|d| &d.model_id),
            expected.deployed.as_ref().map(|d| &d.model_id)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The scheduler (`--run-now`, the same supervision as the daemon) killed while it
/// runs a job: the next scheduler closes the dead run (never left `running`), never
/// starts a second instance while the orphaned one still runs, and completes the work.
#[test]
fn the_scheduler_killed_while_running_a_job_leaves_no_running_row_and_no_double_run() {
    use std::os::unix::fs::PermissionsExt;

    let scheduler = env!("CARGO_BIN_EXE_scheduler");
    let scratch = tempfile::tempdir().unwrap();
    let bins = scratch.path().join("bin");
    std::fs::create_dir_all(&bins).unwrap();
    let script = bins.join("data-refresh");
    // The job notices a second instance running at the same time.
    std::fs::write(
        &script,
        "#!/bin/sh\nW=\"$RECOPS_HOME/work\"; mkdir -p \"$W\"\n\
         if mkdir \"$W/running\" 2>/dev/null; then :; else echo overlap >> \"$W/overlap\"; fi\n\
         echo run >> \"$W/runs\"; sleep 0.2; rmdir \"$W/running\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = scratch.path().join("base");
    std::fs::create_dir_all(base.join("config")).unwrap();
    std::fs::write(
        Home::new(&base).scheduler_config(),
        r#"{"timezone": "UTC", "jobs": {"data_refresh": {"enabled": true, "cron": "0 2 * * *", "timeout_minutes": 5}}}"#,
    )
    .unwrap();
    let args = |_: ()| {
        vec![
            "--bin-dir".to_owned(),
            bins.display().to_string(),
            "--run-now".to_owned(),
            "data_refresh".to_owned(),
        ]
    };
    let a = args(());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    const RUNS: usize = 4;
    let reference = scratch.path().join("reference");
    copy_tree(&base, &reference);
    let mut plan: Vec<(usize, String)> = Vec::new();
    for i in 0..RUNS {
        for p in trace(scheduler, &reference, &a) {
            plan.push((i, p));
        }
    }
    assert!(plan.len() >= 20, "only {} points: {plan:?}", plan.len());
    eprintln!("scheduler: killing at {} points: {plan:?}", plan.len());
    for (step, point) in &plan {
        let dir = scratch.path().join("k");
        copy_tree(&base, &dir);
        let home = Home::new(&dir);
        for _ in 0..*step {
            assert!(run(scheduler, &dir, &a, "").status.success());
        }
        let out = run(scheduler, &dir, &a, point);
        assert!(killed(&out), "{point}: not killed: {out:?}");
        // The next scheduler: refused while the orphaned job still runs, then it
        // closes the dead run and runs the job (bounded retries).
        let mut done = 0;
        for _ in 0..200 {
            let again = run(scheduler, &dir, &a, "");
            if again.status.success() {
                done += 1;
                if done == RUNS - step {
                    break;
                }
                continue;
            }
            let err = String::from_utf8_lossy(&again.stderr);
            assert!(err.contains("already running"), "{point}: {err}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(done, RUNS - step, "{point}: the job never ran again");
        let tracker = recops_tracking::PipelineTracker::open(&home).unwrap();
        let runs = tracker
            .get_recent_runs(Some("scheduler.data_refresh"), 100, None)
            .unwrap();
        assert!(
            runs.iter()
                .all(|r| r.status != recops_tracking::RunStatus::Running),
            "{point}: {runs:?}"
        );
        let ok = runs
            .iter()
            .filter(|r| r.status == recops_tracking::RunStatus::Success)
            .count();
        assert!(ok >= RUNS, "{point}: {ok} successful runs");
        assert!(
            !dir.join("work/overlap").exists(),
            "{point}: two instances ran at once"
        );
        let state = recops_scheduler::StateStore::open(&home.scheduler_state_db()).unwrap();
        assert_eq!(state.get("data_refresh").unwrap().unwrap().running, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The recommender on port 0 of `home`; returns it and its base URL. The caller kills
/// and waits for the child.
#[allow(clippy::zombie_processes)]
fn start_recommender(home: &Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_recommender"))
        .arg("--home")
        .arg(home)
        .args(["--port", "0"])
        .env_remove("RECOPS_ADMIN_TOKEN")
        .env_remove(FAULT_ENV)
        .env("RECOPS_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "recommender exited"
        );
        if let Some(at) = line.find("listening addr=") {
            let addr = line[at + "listening addr=".len()..].trim().to_owned();
            std::thread::spawn(move || {
                let mut sink = String::new();
                while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                    sink.clear();
                }
            });
            return (child, format!("http://{addr}"));
        }
    }
}

fn served_model(url: &str) -> Option<String> {
    recops_core::tls::install_crypto_provider();
    let v: Value = reqwest::blocking::get(format!("{url}/health"))
        .ok()?
        .json()
        .ok()?;
    v["model_id"].as_str().map(str::to_owned)
}

/// What a deployment sequence leaves: the served model, the registry's deployed
/// model and the models of the successful history records, in order.
fn deployment_state(home: &Home, url: &str) -> (Option<String>, Option<String>, Vec<String>) {
    let reg = Registry::open(home).load().expect("registry.json parses");
    let history = recops_deploy::DeploymentHistory::load(&home.deployment_history())
        .expect("deployment_history.json parses");
    let ok: Vec<String> = history
        .deployments
        .iter()
        .filter(|r| r.status == recops_deploy::DeploymentStatus::Success)
        .map(|r| r.model_id.to_string())
        .collect();
    (
        served_model(url),
        reg.deployed.map(|d| d.model_id.to_string()),
        ok,
    )
}

#[test]
fn model_deployment_killed_at_any_step_recovers_to_the_uninterrupted_state() {
    let deploy = env!("CARGO_BIN_EXE_model-deployment");
    let training = env!("CARGO_BIN_EXE_model-training");
    let scratch = tempfile::tempdir().unwrap();
    let base = scratch.path().join("base");
    let h = base.to_str().unwrap();
    let generated = Command::new(env!("CARGO_BIN_EXE_recops"))
        .args([
            "--home",
            h,
            "gen-data",
            "--users",
            "200",
            "--products",
            "80",
        ])
        .args(["--interactions", "2500"])
        .output()
        .unwrap();
    assert!(generated.status.success());
    assert!(
        run(env!("CARGO_BIN_EXE_data-refresh"), &base, &[], "")
            .status
            .success()
    );
    // Two servable ALS models: the champion, then a retrain on the same data.
    for extra in [&[][..], &["--force", "--model", "als"][..]] {
        let mut args = vec!["--no-auto-deploy"];
        args.extend_from_slice(extra);
        assert!(run(training, &base, &args, "").status.success());
    }
    let reg = Registry::open(&Home::new(&base)).load().unwrap();
    let mut als: Vec<String> = reg
        .models
        .iter()
        .filter(|(id, m)| {
            id.starts_with("als_") && m.status != recops_registry::ModelStatus::Rejected
        })
        .map(|(id, _)| id.to_string())
        .collect();
    als.sort();
    assert_eq!(als.len(), 2, "{reg:?}");
    let steps: Vec<Vec<String>> = vec![
        vec!["--model-id".into(), als[0].clone()],
        vec!["--model-id".into(), als[1].clone()],
        vec!["--rollback".into()],
        vec!["--model-id".into(), als[1].clone()],
    ];
    let with_url = |s: &[String], url: &str| {
        let mut a = vec!["--service-url".to_owned(), url.to_owned()];
        a.extend_from_slice(s);
        a
    };

    // The uninterrupted sequence, and its points.
    let reference = scratch.path().join("reference");
    copy_tree(&base, &reference);
    let (mut service, url) = start_recommender(&reference);
    let mut plan: Vec<(usize, String)> = Vec::new();
    let mut after_step = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let a = with_url(s, &url);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        for p in trace(deploy, &reference, &a) {
            plan.push((i, p));
        }
        after_step.push(deployment_state(&Home::new(&reference), &url));
    }
    let expected = after_step.last().unwrap().clone();
    service.kill().unwrap();
    service.wait().unwrap();
    assert_eq!(
        after_step[2].0.as_deref(),
        Some(als[0].as_str()),
        "rolled back"
    );
    assert_eq!(expected.0.as_deref(), Some(als[1].as_str()), "{expected:?}");
    eprintln!(
        "model-deployment: killing at {} points: {plan:?}",
        plan.len()
    );

    for (step, point) in &plan {
        let dir = scratch.path().join("k");
        copy_tree(&base, &dir);
        let home = Home::new(&dir);
        let (mut service, url) = start_recommender(&dir);
        for s in &steps[..*step] {
            let a = with_url(s, &url);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            assert!(run(deploy, &dir, &a, "").status.success());
        }
        let a = with_url(&steps[*step], &url);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = run(deploy, &dir, &a, point);
        assert!(killed(&out), "{point}: not killed: {out:?}");
        // A rollback killed after its reload has taken effect is run again too: it
        // completes its record instead of rolling back once more.
        for s in steps.iter().skip(*step) {
            let a = with_url(s, &url);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let again = run(deploy, &dir, &a, "");
            assert!(again.status.success(), "{point}: {s:?} failed: {again:?}");
        }
        let got = deployment_state(&home, &url);
        assert_eq!(got, expected, "{point}: served, deployed, history");
        service.kill().unwrap();
        service.wait().unwrap();
        // A restarted service serves the deployed model.
        let (mut again, url) = start_recommender(&dir);
        assert_eq!(served_model(&url), expected.1, "{point}: after a restart");
        again.kill().unwrap();
        again.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
