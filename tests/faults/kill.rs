//! `kill -9` at exact steps of model-training (through registration), model-deployment
//! (registry and history writes), `recops models archive` / `gc` and the scheduler: a
//! first run with `RECOPS_FAULT_POINT=trace` lists the fault points the job passes
//! (atomic writes, registry updates, training phases); kill points are drawn from that
//! list with a generator seeded from `RECOPS_FAULT_SEED` (default [`DEFAULT_SEED`];
//! the seed and the points are printed), and each is hit in a copy of the same home
//! with SIGKILL.
//!
//! Right after each kill, before anything runs again, the suite's durable state (a
//! normalised snapshot, see each `*_state` function) must equal the state before the
//! killed step or after it in an uninterrupted run, apart from the recoverable
//! leftovers listed in [`ALLOWED_LEFTOVERS`] (also in docs/operations-hardening.md).
//! Then every file parses (the training and deployment suites also copy every
//! Parquet, npz and JSON file a kill left and read them all back at the end with
//! pandas, scipy and `json` in one Python process, see [`PythonReadBack`]; the
//! lifecycle suite's model files are placeholders), the next run completes, no
//! leftover remains and the result
//! equals an uninterrupted run's.
//!
//! The registry audit is checked too: right after a kill the audit a reader sees
//! agrees with `registry.json` (each change has its lines exactly once) and is the
//! before or after state's (training, archive/gc) or the lines before the killed step
//! plus a prefix of its lines (deployment); after the rerun the log file holds them all
//! (records a kill left only in `registry.json`'s `audit_journal` are completed) and
//! matches the uninterrupted run's. The model-deployment suite also runs with its
//! stores in PostgreSQL (skipped with a NOTICE when it is not installed and not
//! required, `RECOPS_REQUIRE_POSTGRES=1`).
//!
//! Run: `cargo test -p recops --test faults kill -- --nocapture` (prints the seed and
//! the points); `RECOPS_FAULT_SEED=<n>` draws another set.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};

use recops_cf_training::CfModel;
use recops_core::Home;
use recops_core::faults::{FAULT_ENV, TRACE_PREFIX};
use recops_registry::{AuditRecord, Registry};
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

/// The seed of the kill points when `RECOPS_FAULT_SEED` is unset.
pub(crate) const DEFAULT_SEED: u64 = 19;

fn fault_seed() -> u64 {
    std::env::var("RECOPS_FAULT_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

/// Draws `n` of `points` (all when there are no more) uniformly without replacement,
/// with a generator seeded from `RECOPS_FAULT_SEED` and the suite's name, so every
/// point is drawn under some seed; keeps their traced order and prints the seed and
/// the points to replay a failure.
fn draw<T: Clone + std::fmt::Debug>(suite: &str, points: &[T], n: usize) -> Vec<T> {
    let seed = fault_seed();
    let salt = suite.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut rng = recops_testkit::Rng::new(seed ^ salt);
    let n = n.min(points.len());
    let mut order: Vec<usize> = (0..points.len()).collect();
    for i in 0..n {
        let j = i + rng.index(points.len() - i);
        order.swap(i, j);
    }
    let mut chosen = order[..n].to_vec();
    chosen.sort_unstable();
    let chosen: Vec<T> = chosen.into_iter().map(|i| points[i].clone()).collect();
    eprintln!(
        "{suite}: RECOPS_FAULT_SEED={seed}: killing at {n} of {} points: {chosen:?}",
        points.len()
    );
    chosen
}

/// Copies of the files each kill left (Parquet, npz, JSON, outside hidden folders and
/// temporary files), read back at the end of a suite by one Python process with
/// pandas, scipy and `json` ([`recops_testkit::read_back_with_python`]; skipped with a
/// NOTICE when no such Python is found, a failure under `RECOPS_REQUIRE_SCIPY=1`).
struct PythonReadBack {
    root: tempfile::TempDir,
    labels: Vec<(String, String)>,
}

impl PythonReadBack {
    fn new() -> PythonReadBack {
        PythonReadBack {
            root: tempfile::tempdir().unwrap(),
            labels: Vec::new(),
        }
    }

    /// Copies the data files of `home` right after the kill at `point`.
    fn add(&mut self, home: &Path, point: &str) {
        let folder = format!("k{:02}", self.labels.len());
        recops_testkit::copy_data_files(
            home,
            &self.root.path().join(&folder),
            &["parquet", "npz", "json"],
        )
        .unwrap();
        self.labels.push((folder, point.to_owned()));
    }

    /// Reads every copied file with Python; panics naming the kill point and file.
    fn finish(self, suite: &str) {
        match recops_testkit::read_back_with_python(self.root.path(), &self.labels) {
            Ok(Some(summary)) => eprintln!("{suite}: {summary}"),
            Ok(None) => {}
            Err(e) => panic!("{suite}: {e}"),
        }
    }
}

/// The recoverable leftovers a kill may leave next to a state that equals the before
/// or the after state; each is removed or completed by the next run of the same job
/// (the suites check that none is left after it).
pub(crate) const ALLOWED_LEFTOVERS: [(&str, &str); 10] = [
    (
        "temp file",
        "`.<file>.tmp.<pid>.<n>` of an atomic write killed before its rename: removed by the next write of the file",
    ),
    (
        "running row",
        "the killed run's `running` row in pipeline_runs: closed as failed (interrupted) by the next run under the pipeline lock",
    ),
    (
        "partial model folder",
        "`artifacts/cf/.<id>.partial/`: removed by the next training run",
    ),
    (
        "unregistered model folder",
        "a model folder still carrying `.unregistered` that the registry does not name: removed by the next training run",
    ),
    (
        "registration marker",
        "`.unregistered` in a folder the registry names: removed by the next training run",
    ),
    (
        "checkpoint",
        "`checkpoints/<type>/` files of the unfinished run: cleared when the next run finishes",
    ),
    (
        "gc folder",
        "`artifacts/cf/.<id>.deleting/` of a model gc already marked deleted: removed by the next gc",
    ),
    (
        "rollback intent",
        "`logs/rollback_intent.json`: completed and removed by the next `--rollback`",
    ),
    (
        "pending audit lines",
        "audit records of the last registry write that are in registry.json's `audit_journal` but not yet in logs/registry_audit.log (a reader already sees them): appended by the next registry writer or job",
    ),
    (
        "scheduler claim",
        "the job's `running` claim in the scheduler state: closed as orphaned by the next scheduler",
    ),
];

/// A suite's durable state, normalised (ids and times that differ between runs are
/// mapped), and the recoverable leftovers found beside it.
#[derive(Debug, Default)]
struct Snapshot {
    state: BTreeMap<String, String>,
    leftovers: Vec<String>,
}

impl Snapshot {
    fn put(&mut self, key: impl Into<String>, value: impl std::fmt::Display) {
        self.state.insert(key.into(), value.to_string());
    }
    fn leftover(&mut self, kind: &str, what: impl std::fmt::Display) {
        assert!(
            ALLOWED_LEFTOVERS.iter().any(|(k, _)| *k == kind),
            "{kind} is not an allowed leftover"
        );
        self.leftovers.push(format!("{kind}: {what}"));
    }
}

/// Asserts that the state right after a kill equals one of `states` (named), every
/// leftover being an allowed one; returns the name it equals.
fn assert_one_of<'a>(
    point: &str,
    got: &Snapshot,
    states: &[(&'a str, &BTreeMap<String, String>)],
) -> &'a str {
    recops_testkit::which_state(point, &got.state, &got.leftovers, states)
}

/// Temporary files of atomic writes anywhere under `dir`, as leftovers.
fn temp_leftovers(dir: &Path, snap: &mut Snapshot) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            temp_leftovers(&p, snap);
        } else if name.starts_with('.') && name.contains(".tmp.") {
            snap.leftover("temp file", p.display());
        }
    }
}

/// The `running` rows of `pipeline` (the killed run's), as leftovers. The run's row is
/// the job's record, written after its effects, and not part of the state: a kill
/// after the effects leaves the after state with the row still `running`.
fn running_rows(home: &Home, pipeline: &str, snap: &mut Snapshot) {
    if !home.pipeline_db().exists() && !on_postgres(home) {
        return;
    }
    let tracker = recops_tracking::PipelineTracker::open(home).unwrap();
    for r in tracker
        .get_recent_runs(
            Some(pipeline),
            1000,
            Some(recops_tracking::RunStatus::Running),
        )
        .unwrap()
    {
        snap.leftover("running row", &r.run_id);
    }
}

/// The audit records as the suites compare them: the operation, the model, the
/// champion before and after and the deployed model, ids mapped by `name`; the time,
/// pid and reason (which carries timings) dropped.
fn audit_lines(records: &[AuditRecord], name: &dyn Fn(&str) -> String) -> Vec<String> {
    let opt = |v: &Option<String>| v.as_deref().map(name);
    records
        .iter()
        .map(|r| {
            format!(
                "{} {:?} champion {:?}->{:?} deployed {:?}",
                r.operation,
                opt(&r.model_id),
                opt(&r.previous_current_best),
                opt(&r.current_best),
                opt(&r.deployed)
            )
        })
        .collect()
}

/// The audit as a reader sees it (`Registry::audit`, which merges the records a kill
/// kept from the log), put in the state: right after a kill it must be the before or
/// the after state's audit, never one line short.
fn put_audit(home: &Home, name: &dyn Fn(&str) -> String, snap: &mut Snapshot) {
    let audit = Registry::open(home).audit().expect("the audit reads");
    for (n, line) in audit_lines(&audit, name).into_iter().enumerate() {
        snap.put(format!("audit {n:03}"), line);
    }
    pending_audit(home, snap);
}

/// Whether the kill left audit records only in registry.json's journal.
fn has_pending_audit(snap: &Snapshot) -> bool {
    snap.leftovers
        .iter()
        .any(|l| l.starts_with("pending audit lines"))
}

/// The records a reader sees that the log file does not hold yet, as a leftover.
fn pending_audit(home: &Home, snap: &mut Snapshot) {
    if on_postgres(home) {
        return; // the audit rows are in the registry's transaction
    }
    let seen = Registry::open(home).audit().expect("the audit reads");
    let file = audit_file(home);
    if file != seen {
        assert!(
            seen.starts_with(&file),
            "the log is not a prefix of the audit a reader sees"
        );
        snap.leftover(
            "pending audit lines",
            format!("{} records", seen.len() - file.len()),
        );
    }
}

/// Every line of `logs/registry_audit.log` as it is on disk (each must parse).
fn audit_file(home: &Home) -> Vec<AuditRecord> {
    let text = std::fs::read_to_string(home.registry_audit_log()).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

/// After a rerun the audit log on disk agrees with `registry.json`: it is complete
/// (equal to what a reader sees, nothing left to merge), every model is registered
/// (or rejected) by exactly one line, each line's previous champion is the line
/// before's champion, and the last line names the registry's champion and deployed
/// model.
/// `on_disk`: check the log file itself (after a rerun, which completes it), else the
/// audit a reader sees (right after a kill, before anything ran again).
fn assert_audit_agrees(point: &str, home: &Home, on_disk: bool) -> Vec<AuditRecord> {
    let registry = Registry::open(home);
    let file = registry.audit().unwrap();
    if on_disk && !on_postgres(home) {
        assert_eq!(
            audit_file(home),
            file,
            "{point}: records missing from the log after the rerun"
        );
    }
    let reg = registry.load().unwrap();
    for id in reg.models.keys() {
        let n = file
            .iter()
            .filter(|r| {
                matches!(r.operation.as_str(), "register" | "reject")
                    && r.model_id.as_deref() == Some(id.as_str())
            })
            .count();
        assert_eq!(n, 1, "{point}: {id} has {n} registration lines");
    }
    for r in file
        .iter()
        .filter(|r| matches!(r.operation.as_str(), "register" | "reject"))
    {
        let id = r.model_id.as_deref().unwrap_or("");
        assert!(
            reg.models.contains_key(id),
            "{point}: a line registers {id}, which is not in the registry"
        );
    }
    for pair in file.windows(2) {
        assert_eq!(
            pair[1].previous_current_best, pair[0].current_best,
            "{point}: a champion change without its line before {:?}",
            pair[1]
        );
    }
    if let Some(last) = file.last() {
        assert_eq!(
            last.current_best.as_deref(),
            reg.current_best.as_deref(),
            "{point}"
        );
        assert_eq!(
            last.deployed.as_deref(),
            reg.deployed.as_ref().map(|d| d.model_id.as_str()),
            "{point}"
        );
    }
    // The newest deployment line is the write that left the `deployed` record.
    let deployment = file
        .iter()
        .rev()
        .find(|r| matches!(r.operation.as_str(), "deploy" | "rollback" | "reload"));
    if let Some(d) = &reg.deployed {
        let operation = match d.action.as_str() {
            "scheduled" | "operator" => "deploy",
            other => other,
        };
        let line = deployment.map(|r| (r.operation.as_str(), r.model_id.as_deref()));
        assert_eq!(
            line,
            Some((operation, Some(d.model_id.as_str()))),
            "{point}: the deployed record has no line"
        );
    }
    file
}

/// Whether `home`'s stores are in PostgreSQL (its `storage.url`).
fn on_postgres(home: &Home) -> bool {
    matches!(
        recops_core::RecopsConfig::storage(home),
        Ok(recops_core::StorageUrl::Postgres(_))
    )
}

/// Model-training's state: the registry (models by type and order, their status and
/// metrics; `current_best`, `deployed`), the model folders and their files.
fn training_state(home: &Home) -> Snapshot {
    let mut snap = Snapshot::default();
    let reg = Registry::open(home)
        .load()
        .expect("registry.json must always parse");
    let cf = home.cf_artifacts_dir();
    let mut folders: Vec<String> = Vec::new();
    for e in std::fs::read_dir(&cf).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !e.path().is_dir() {
            continue;
        }
        if name.starts_with('.') && name.ends_with(".partial") {
            snap.leftover("partial model folder", &name);
        } else if name.starts_with('.') {
            panic!("unexpected hidden folder {name}");
        } else if e.path().join(".unregistered").exists() {
            if reg.models.contains_key(name.as_str()) {
                snap.leftover("registration marker", &name);
                folders.push(name);
            } else {
                snap.leftover("unregistered model folder", &name);
            }
        } else {
            folders.push(name);
        }
    }
    // Ids carry the training time: map them to <type>#<order>.
    let mut ids: Vec<String> = reg.models.keys().map(|k| k.to_string()).collect();
    ids.extend(folders.iter().cloned());
    ids.sort();
    ids.dedup();
    let mut norm: BTreeMap<String, String> = BTreeMap::new();
    let mut per_type: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        let t = id.split('_').next().unwrap_or("").to_owned();
        let n = per_type.entry(t.clone()).or_default();
        *n += 1;
        norm.insert(id.clone(), format!("{t}#{n}"));
    }
    let name = |id: &str| norm.get(id).cloned().unwrap_or_else(|| id.to_owned());
    for (id, m) in &reg.models {
        snap.put(
            format!("registry {}", name(id)),
            format!("{:?} {:?}", m.status, m.metrics),
        );
    }
    put_audit(home, &name, &mut snap);
    snap.put(
        "current_best",
        format!("{:?}", reg.current_best.as_deref().map(name)),
    );
    snap.put(
        "deployed",
        format!("{:?}", reg.deployed.as_ref().map(|d| name(&d.model_id))),
    );
    for f in &folders {
        let mut files: Vec<String> = std::fs::read_dir(cf.join(f))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        files.sort();
        snap.put(format!("folder {}", name(f)), files.join(","));
    }
    for mt in ["als", "bpr"] {
        let dir = home.checkpoints_dir(mt).unwrap();
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            snap.leftover("checkpoint", e.path().display());
        }
    }
    running_rows(home, "model_training", &mut snap);
    temp_leftovers(home.root(), &mut snap);
    snap
}

/// The state of `bin args` on `home` while it is stopped at `point` (`:stall`): the
/// state an uninterrupted run has there. The process is killed afterwards.
fn state_paused_at(
    bin: &str,
    home: &Path,
    args: &[&str],
    point: &str,
    state: impl Fn(&Home) -> Snapshot,
) -> Snapshot {
    use std::io::BufRead;
    let mut child = Command::new(bin)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RECOPS_HOME")
        .env("RECOPS_LOG", "warn")
        .env(FAULT_ENV, format!("{point}:stall"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "{point}: ended before stalling"
        );
        if line.contains("stalled") {
            break;
        }
    }
    let snap = state(&Home::new(home));
    child.kill().unwrap();
    child.wait().unwrap();
    snap
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

    // The states of an uninterrupted run: before it, after the first model's
    // registration (paused where the second model starts), after it.
    let before = training_state(&Home::new(&base));
    assert!(before.leftovers.is_empty(), "{:?}", before.leftovers);
    let reference = scratch.path().join("reference");
    copy_tree(&base, &reference);
    let points = trace(training, &reference, &args);
    let expected = newest_metrics(&Home::new(&reference));
    assert_eq!(expected.len(), 2, "both models registered: {expected:?}");
    let operations = |records: &[AuditRecord]| -> Vec<String> {
        records.iter().map(|r| r.operation.clone()).collect()
    };
    let run_operations = operations(&assert_audit_agrees(
        "reference",
        &Home::new(&reference),
        true,
    ));
    let after = training_state(&Home::new(&reference));
    assert!(after.leftovers.is_empty(), "{:?}", after.leftovers);
    let paused = scratch.path().join("paused");
    copy_tree(&base, &paused);
    let between = state_paused_at(
        training,
        &paused,
        &args,
        "training.started#2",
        training_state,
    );
    std::fs::remove_dir_all(&paused).unwrap();
    let states = [
        ("before", &before.state),
        ("first model registered", &between.state),
        ("after", &after.state),
    ];
    let chosen = draw("model-training", &points, 22);
    assert!(
        chosen.len() >= 20,
        "only {} points: {points:?}",
        chosen.len()
    );
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut pending = 0usize;
    let mut python = PythonReadBack::new();
    for point in &chosen {
        let dir = scratch.path().join("k");
        copy_tree(&base, &dir);
        let home = Home::new(&dir);
        let out = run(training, &dir, &args, point);
        assert!(killed(&out), "{point}: not killed: {out:?}");
        python.add(&dir, point);
        check_models(&home, true);
        let got = training_state(&home);
        *seen.entry(assert_one_of(point, &got, &states)).or_default() += 1;
        pending += usize::from(has_pending_audit(&got));
        let killed_audit = assert_audit_agrees(point, &home, false);
        let again = run(training, &dir, &args, "");
        assert!(again.status.success(), "{point}: rerun failed: {again:?}");
        check_models(&home, true);
        let end = training_state(&home);
        assert!(end.leftovers.is_empty(), "{point}: {:?}", end.leftovers);
        assert_eq!(newest_metrics(&home), expected, "{point}");
        // The log: the records a reader saw right after the kill, completed on disk,
        // then the rerun's: together exactly the lines of an uninterrupted run.
        let log = assert_audit_agrees(point, &home, true);
        assert_eq!(log[..killed_audit.len()], killed_audit[..], "{point}");
        assert_eq!(operations(&log), run_operations, "{point}");
        let audit_of = |s: &Snapshot| -> Vec<(String, String)> {
            s.state
                .iter()
                .filter(|(k, _)| k.starts_with("audit "))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        assert_eq!(audit_of(&end), audit_of(&after), "{point}: the audit lines");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!(
        "model-training: right after the kill: {seen:?}; audit lines completed from the journal after {pending} kills"
    );
    python.finish("model-training");
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

/// The lifecycle job's state: each model's status, whether its files are marked
/// deleted and whether its folder is present (whole; a folder gc moved aside counts
/// as present until gc marks the model); `current_best`, `deployed`.
fn lifecycle_state(home: &Home) -> Snapshot {
    let mut snap = Snapshot::default();
    let reg = check_models(home, false);
    for (id, m) in &reg.models {
        let marked = m.extra.contains_key("files_deleted_at");
        let aside = home.cf_artifacts_dir().join(format!(".{id}.deleting"));
        let present = if whole_or_gone(home, id) {
            true
        } else if aside.is_dir() {
            for f in ["model.json", "model.safetensors", "serving.safetensors"] {
                assert_eq!(
                    std::fs::read_to_string(aside.join(f)).unwrap(),
                    format!("{id} {f}"),
                    "{id} is half-deleted"
                );
            }
            if marked {
                snap.leftover("gc folder", aside.display());
            }
            !marked
        } else {
            false
        };
        snap.put(
            format!("model {id}"),
            format!("{:?} files_deleted_at={marked} folder={present}", m.status),
        );
    }
    snap.put("current_best", format!("{:?}", reg.current_best));
    snap.put(
        "deployed",
        format!("{:?}", reg.deployed.as_ref().map(|d| &d.model_id)),
    );
    put_audit(home, &|id: &str| id.to_owned(), &mut snap);
    temp_leftovers(home.root(), &mut snap);
    snap
}

#[test]
fn models_archive_and_gc_killed_at_any_step_recover() {
    let recops = env!("CARGO_BIN_EXE_recops");
    let scratch = tempfile::tempdir().unwrap();
    let base = scratch.path().join("base");
    lifecycle_home(&base);
    let steps = lifecycle_steps();

    // The uninterrupted run: the points of each step and the state after each; the
    // state after gc's i-th model (gc is one step deleting four models, each its own
    // change: paused at the next model).
    let reference = scratch.path().join("reference");
    copy_tree(&base, &reference);
    let mut plan: Vec<(usize, String)> = Vec::new();
    let mut states = vec![lifecycle_state(&Home::new(&base))];
    for (i, step) in steps.iter().enumerate() {
        for p in trace(recops, &reference, step) {
            plan.push((i, p));
        }
        states.push(lifecycle_state(&Home::new(&reference)));
    }
    let mut gc_between = Vec::new();
    for n in 2..=ARCHIVED.len() {
        let paused = scratch.path().join("paused");
        copy_tree(&base, &paused);
        for s in &steps[..steps.len() - 1] {
            assert!(run(recops, &paused, s, "").status.success());
        }
        gc_between.push(state_paused_at(
            recops,
            &paused,
            steps.last().unwrap(),
            &format!("gc.moved_aside#{n}"),
            |h| {
                // Paused right after the n-th move: the state before it.
                let mut s = lifecycle_state(h);
                s.leftovers.clear();
                s
            },
        ));
        std::fs::remove_dir_all(&paused).unwrap();
    }
    for s in states.iter().chain(&gc_between) {
        assert!(s.leftovers.is_empty(), "{:?}", s.leftovers);
    }
    let ref_home = Home::new(&reference);
    let expected = Registry::open(&ref_home).load().unwrap();
    let gone: Vec<bool> = ARCHIVED
        .iter()
        .map(|id| !whole_or_gone(&ref_home, id))
        .collect();
    assert_eq!(gone, [true; 4], "gc --keep 0 deleted every archived model");
    let plan = draw("models archive/gc", &plan, 24);
    assert!(plan.len() >= 20, "only {} points: {plan:?}", plan.len());

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut pending = 0usize;
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
        let mut allowed = vec![
            ("before", &states[*step].state),
            ("after", &states[*step + 1].state),
        ];
        if *step == steps.len() - 1 {
            allowed.extend(gc_between.iter().map(|s| ("gc between models", &s.state)));
        }
        let snap = lifecycle_state(&home);
        let got = assert_one_of(point, &snap, &allowed);
        *seen.entry(got.to_owned()).or_default() += 1;
        pending += usize::from(has_pending_audit(&snap));
        let killed_audit = assert_audit_agrees(point, &home, false);
        // The rest of the job, the killed step again first.
        for s in &steps[*step..] {
            let again = run(recops, &dir, s, "");
            assert!(again.status.success(), "{point}: {s:?} failed: {again:?}");
        }
        let end = lifecycle_state(&home);
        assert!(end.leftovers.is_empty(), "{point}: {:?}", end.leftovers);
        assert_eq!(end.state, states.last().unwrap().state, "{point}");
        // The log on disk: the records seen right after the kill, then the rest; the
        // same lines as the uninterrupted run's (the state above compares them).
        let log = assert_audit_agrees(point, &home, true);
        assert_eq!(log[..killed_audit.len()], killed_audit[..], "{point}");
        let reg = check_models(&home, false);
        for id in ARCHIVED {
            assert!(!whole_or_gone(&home, id), "{point}: {id} not deleted");
            let m = &reg.models[id];
            assert_eq!(m.status, expected.models[id].status, "{point}: {id}");
            assert!(m.extra.contains_key("files_deleted_at"), "{point}: {id}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!(
        "models archive/gc: right after the kill: {seen:?}; audit lines completed from the journal after {pending} kills"
    );
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
    let plan = draw("scheduler", &plan, 20);
    assert!(plan.len() >= 20, "only {} points: {plan:?}", plan.len());
    // The scheduler's state after 0..=RUNS uninterrupted runs.
    let mut states = Vec::new();
    let counting = scratch.path().join("counting");
    copy_tree(&base, &counting);
    for i in 0..=RUNS {
        if i > 0 {
            assert!(run(scheduler, &counting, &a, "").status.success());
        }
        let s = scheduler_state(&Home::new(&counting));
        assert!(s.leftovers.is_empty(), "{:?}", s.leftovers);
        states.push(s.state);
    }
    std::fs::remove_dir_all(&counting).unwrap();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (step, point) in &plan {
        let dir = scratch.path().join("k");
        copy_tree(&base, &dir);
        let home = Home::new(&dir);
        for _ in 0..*step {
            assert!(run(scheduler, &dir, &a, "").status.success());
        }
        let out = run(scheduler, &dir, &a, point);
        assert!(killed(&out), "{point}: not killed: {out:?}");
        let got = scheduler_state(&home);
        let states = [("before", &states[*step]), ("after", &states[*step + 1])];
        *seen.entry(assert_one_of(point, &got, &states)).or_default() += 1;
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
        let end = scheduler_state(&home);
        assert!(end.leftovers.is_empty(), "{point}: {:?}", end.leftovers);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!("scheduler: right after the kill: {seen:?}");
}

/// The scheduler's state: how many runs of the job it recorded as successful. The
/// claim of a run in progress and its `running` row are leftovers (the job itself may
/// still run as an orphan; its own effects are checked apart: no overlap).
fn scheduler_state(home: &Home) -> Snapshot {
    let mut snap = Snapshot::default();
    let mut ok = 0;
    if home.pipeline_db().exists() {
        let tracker = recops_tracking::PipelineTracker::open(home).unwrap();
        for r in tracker
            .get_recent_runs(Some("scheduler.data_refresh"), 1000, None)
            .unwrap()
        {
            match r.status {
                recops_tracking::RunStatus::Running => snap.leftover("running row", &r.run_id),
                recops_tracking::RunStatus::Success => ok += 1,
                _ => {}
            }
        }
    }
    snap.put("successful runs", ok);
    if home.scheduler_state_db().exists() {
        let state = recops_scheduler::StateStore::open(&home.scheduler_state_db()).unwrap();
        if let Some(claim) = state.get("data_refresh").unwrap().and_then(|j| j.running) {
            snap.leftover("scheduler claim", format!("{claim:?}"));
        }
    }
    snap
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
    let history = recops_deploy::DeploymentLog::open(home)
        .load()
        .expect("the deployment history (deployment_history.json) reads");
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

/// Model-deployment's state: [`deployment_state`] (served model, `deployed`, the
/// successful history records); a rollback intent, temporary files and the killed
/// run's `running` row are leftovers.
fn deployment_snapshot(home: &Home, url: &str) -> Snapshot {
    let mut snap = Snapshot::default();
    let (served, deployed, history) = deployment_state(home, url);
    snap.put("served", format!("{served:?}"));
    snap.put("deployed", format!("{deployed:?}"));
    snap.put("history successes", format!("{history:?}"));
    running_rows(home, "model_deployment", &mut snap);
    pending_audit(home, &mut snap);
    let intent = recops_deploy::DeploymentLog::open(home)
        .intent()
        .expect("the rollback intent (rollback_intent.json) reads");
    if let Some(intent) = intent {
        snap.leftover("rollback intent", intent);
    }
    temp_leftovers(home.root(), &mut snap);
    snap
}

/// The one documented mixed state of a deployment against a live service: the service
/// already serves (and has recorded as `deployed`) the new model, the history record
/// is not written yet. A reload is a request to another process and
/// cannot be atomic with a local file; the next `model-deployment` writes the missing
/// record (`already live after <id> without a deployment record`).
fn reloaded_not_recorded(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut mixed = after.clone();
    mixed.insert(
        "history successes".to_owned(),
        before["history successes"].clone(),
    );
    mixed
}

#[test]
fn model_deployment_killed_at_any_step_recovers_to_the_uninterrupted_state() {
    deployment_suite("model-deployment", None, 22, 20);
}

/// The same suite with the registry, its audit, the deployment history, the rollback
/// intent and the pipeline runs in PostgreSQL (each killed home gets its own copy of
/// the base database), at fewer points to bound CI time.
#[test]
fn model_deployment_on_postgres_killed_at_any_step_recovers_to_the_uninterrupted_state() {
    let Some(pg) = recops_testkit::PgCluster::shared() else {
        return;
    };
    deployment_suite("model-deployment on postgres", Some(pg), 10, 10);
}

/// The storage of the homes of a suite: the embedded files, or one database per home
/// on a throwaway PostgreSQL cluster, copied from the base home's.
struct Storage<'a> {
    pg: Option<&'a recops_testkit::PgCluster>,
    base_db: String,
}

impl Storage<'_> {
    /// Points `home` at a new database (copied from the base home's when `copy`), in
    /// its `config/recops.yaml`; nothing in embedded mode. The base database is never
    /// opened by this process, so it can serve as a template.
    fn attach(&mut self, home: &Path, copy: bool) {
        let Some(pg) = self.pg else {
            return;
        };
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("kill{}_{n}", std::process::id());
        if copy {
            pg.psql(
                "postgres",
                &format!("CREATE DATABASE {name} TEMPLATE {}", self.base_db),
            );
        } else {
            pg.psql("postgres", &format!("CREATE DATABASE {name}"));
            self.base_db = name.clone();
        }
        let url = pg.url(&name);
        let config = include_str!("../../config/recops.yaml");
        let with_url = config.replace("\n  url: \"\"\n", &format!("\n  url: \"{url}\"\n"));
        assert_ne!(
            with_url, config,
            "config/recops.yaml has no empty storage.url"
        );
        let path = Home::new(home).recops_config();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, with_url).unwrap();
    }
}

/// model-deployment X (live), Y, `--rollback`, Y against a running recommender, killed
/// at `points` of the traced points (at least `min_points`).
fn deployment_suite(
    suite: &str,
    pg: Option<&recops_testkit::PgCluster>,
    points: usize,
    min_points: usize,
) {
    let started = std::time::Instant::now();
    let deploy = env!("CARGO_BIN_EXE_model-deployment");
    let training = env!("CARGO_BIN_EXE_model-training");
    let scratch = tempfile::tempdir().unwrap();
    let base = scratch.path().join("base");
    let mut storage = Storage {
        pg,
        base_db: String::new(),
    };
    storage.attach(&base, false);
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
    // Read from a copy: the base database stays unopened (a template).
    let look = scratch.path().join("look");
    copy_tree(&base, &look);
    storage.attach(&look, true);
    let reg = Registry::open(&Home::new(&look)).load().unwrap();
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
    std::fs::remove_dir_all(&look).unwrap();
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
    storage.attach(&reference, true);
    let (mut service, url) = start_recommender(&reference);
    let mut plan: Vec<(usize, String)> = Vec::new();
    let mut after_step = Vec::new();
    let mut snapshots = vec![deployment_snapshot(&Home::new(&reference), &url)];
    let same = |id: &str| id.to_owned();
    let reference_audit = || {
        let records = assert_audit_agrees("reference", &Home::new(&reference), true);
        audit_lines(&records, &same)
    };
    let mut audits = vec![reference_audit()];
    for (i, s) in steps.iter().enumerate() {
        let a = with_url(s, &url);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        for p in trace(deploy, &reference, &a) {
            plan.push((i, p));
        }
        after_step.push(deployment_state(&Home::new(&reference), &url));
        snapshots.push(deployment_snapshot(&Home::new(&reference), &url));
        audits.push(reference_audit());
    }
    // The deployed model after each line, repeats merged: what the audit says was
    // served, in order.
    let transitions = |lines: &[AuditRecord]| {
        let mut out: Vec<Option<String>> = Vec::new();
        for r in lines {
            if out.last() != Some(&r.deployed) {
                out.push(r.deployed.clone());
            }
        }
        out
    };
    let expected_transitions =
        transitions(&Registry::open(&Home::new(&reference)).audit().unwrap());
    for s in &snapshots {
        assert!(s.leftovers.is_empty(), "{:?}", s.leftovers);
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
    let plan = draw(suite, &plan, points);
    assert!(
        plan.len() >= min_points,
        "only {} points: {plan:?}",
        plan.len()
    );

    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut pending = 0usize;
    let mut python = PythonReadBack::new();
    for (step, point) in &plan {
        let dir = scratch.path().join("k");
        copy_tree(&base, &dir);
        storage.attach(&dir, true);
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
        python.add(&dir, point);
        let (before, after) = (&snapshots[*step].state, &snapshots[*step + 1].state);
        let mixed = reloaded_not_recorded(before, after);
        let allowed = [
            ("before", before),
            ("after", after),
            ("reloaded, not recorded", &mixed),
        ];
        let got = deployment_snapshot(&home, &url);
        *seen
            .entry(assert_one_of(point, &got, &allowed))
            .or_default() += 1;
        pending += usize::from(has_pending_audit(&got));
        // The audit a reader sees right after the kill: the lines before the step,
        // then a prefix of the step's lines (each line is one registry write, so the
        // prefix is the writes that landed), and it agrees with registry.json.
        let killed_audit = assert_audit_agrees(point, &home, false);
        let lines = audit_lines(&killed_audit, &same);
        let (before, after) = (&audits[*step], &audits[*step + 1]);
        assert!(
            lines.starts_with(before) && after.starts_with(&lines),
            "{point}: audit right after the kill {lines:#?}\nbefore the step {before:#?}\nafter it {after:#?}"
        );
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
        let end = deployment_snapshot(&home, &url);
        assert!(end.leftovers.is_empty(), "{point}: {:?}", end.leftovers);
        // The log on disk: the records seen right after the kill, then the rerun's,
        // with the uninterrupted run's sequence of deployed models.
        let log = assert_audit_agrees(point, &home, true);
        assert_eq!(log[..killed_audit.len()], killed_audit[..], "{point}");
        assert_eq!(transitions(&log), expected_transitions, "{point}");
        service.kill().unwrap();
        service.wait().unwrap();
        // A restarted service serves the deployed model.
        let (mut again, url) = start_recommender(&dir);
        assert_eq!(served_model(&url), expected.1, "{point}: after a restart");
        again.kill().unwrap();
        again.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!(
        "{suite}: right after the kill: {seen:?}; audit lines completed from the journal after {pending} kills; {:.0} s",
        started.elapsed().as_secs_f64()
    );
    python.finish(suite);
}
