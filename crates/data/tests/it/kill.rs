//! A refresh killed with SIGKILL at any step leaves the whole data state (every file
//! under `data/`: processed outputs, staging, archive, rejected-rows reports) equal to
//! the state before the run or after an uninterrupted run, apart from removable
//! leftovers; a commit journal left by a kill after the commit point is rolled forward
//! by the next reader to exactly the after state. The next run then ends exactly like
//! an uninterrupted run, and every file a kill left parses with pandas, scipy and
//! `json` (one Python process at the end; see `recops_testkit::read_back_with_python`).
//!
//! Kill points: the fault points an uninterrupted run passes (traced with
//! `RECOPS_FAULT_POINT=trace`: each staged write, the journal, each rename of the
//! commit, its end), drawn with a generator seeded from `RECOPS_FAULT_SEED` (default
//! 19), plus seeded moments of the run (kills inside a write). Run:
//! `cargo test -p recops-data --test it kill -- --nocapture`.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use recops_core::Home;
use recops_core::faults::{FAULT_ENV, TRACE_PREFIX};
use recops_data::{RefreshKind, TrainingData, content_hash, read_csr_npz, read_interactions_meta};
use recops_testkit::{GenConfig, TempHome, generate, write_dataset};

use crate::run;

const ROLE: &str = "RECOPS_DATA_TEST_CHILD";
const HOME: &str = "RECOPS_DATA_TEST_HOME";

/// The child side: refresh the home named by the environment, then report.
#[test]
#[ignore = "child process entry point, run by killed_refresh_leaves_the_before_or_after_state"]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let home = Home::new(PathBuf::from(std::env::var(HOME).unwrap()));
    match role.as_str() {
        "refresh" => println!("RESULT {:?}", run(&home).unwrap().kind),
        "read" => println!("RESULT {}", TrainingData::load(&home).unwrap().interactions),
        other => panic!("unknown role {other}"),
    }
}

fn spawn(home: &Path, fault: &str) -> Child {
    spawn_as("refresh", home, fault)
}

/// `role`: `refresh` runs a refresh, `read` loads the training data (a reader that
/// rolls a commit journal forward).
fn spawn_as(role: &str, home: &Path, fault: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "kill::child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(HOME, home)
        .env(FAULT_ENV, fault)
        .env_remove("RECOPS_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Copies a folder tree, keeping modification times (staging order depends on them).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
            let mtime = e.metadata().unwrap().modified().unwrap();
            std::fs::File::options()
                .write(true)
                .open(&target)
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        }
    }
}

/// The leftovers a kill may leave beside the before or after state; the next run
/// removes or completes each (checked: none is left after it). The same kinds as
/// `ALLOWED_LEFTOVERS` of tests/faults/kill.rs, plus the data commit's own.
const ALLOWED_LEFTOVERS: [(&str, &str); 3] = [
    (
        "temp file",
        "`.<file>.tmp.<pid>.<n>` of an atomic write killed before its rename: removed by the next refresh",
    ),
    (
        "staged output",
        "`.<file>.next` written before the commit point: removed by the next refresh",
    ),
    (
        "commit journal",
        "`data/.commit_journal.json`: rolled forward by the next refresh or reader",
    ),
];

/// The data state: every file under `data/` by path and content hash; hidden files
/// are leftovers (the commit lock file is neither: it holds no data).
#[derive(Debug, Default)]
struct Snapshot {
    state: BTreeMap<String, String>,
    leftovers: Vec<String>,
}

impl Snapshot {
    fn leftover(&mut self, kind: &str, what: String) {
        assert!(
            ALLOWED_LEFTOVERS.iter().any(|(k, _)| *k == kind),
            "{kind} is not an allowed leftover"
        );
        self.leftovers.push(format!("{kind}: {what}"));
    }
    fn has_journal(&self) -> bool {
        self.leftovers
            .iter()
            .any(|l| l.starts_with("commit journal"))
    }
}

fn data_state(home: &Home) -> Snapshot {
    fn walk(root: &Path, dir: &Path, snap: &mut Snapshot) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                walk(root, &p, snap);
            } else if name == ".commit.lock" {
            } else if name == ".commit_journal.json" {
                snap.leftover("commit journal", rel);
            } else if name.starts_with('.') && name.contains(".next") {
                snap.leftover("staged output", rel);
            } else if name.starts_with('.') && name.contains(".tmp.") {
                snap.leftover("temp file", rel);
            } else if name.starts_with('.') {
                panic!("unexpected hidden file {rel}");
            } else {
                let bytes = std::fs::read(&p).unwrap();
                snap.state.insert(
                    rel,
                    format!("{} bytes {}", bytes.len(), content_hash(&bytes)),
                );
            }
        }
    }
    let mut snap = Snapshot::default();
    let data = home.root().join("data");
    walk(&data, &data, &mut snap);
    snap
}

/// Which of `states` `got` equals; panics with the differences otherwise.
fn which_state<'a>(
    point: &str,
    got: &Snapshot,
    states: &[(&'a str, &BTreeMap<String, String>)],
) -> &'a str {
    recops_testkit::which_state(point, &got.state, &got.leftovers, states)
}

/// When to kill the child.
#[derive(Debug, Clone)]
enum KillAt {
    /// At the n-th hit of a fault point (`name#n`): the child kills itself.
    Point(String),
    /// After this share of an uninterrupted run's duration.
    Fraction(f64),
}

impl std::fmt::Display for KillAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KillAt::Point(p) => write!(f, "{p}"),
            KillAt::Fraction(x) => write!(f, "{:.0}% of the run", x * 100.0),
        }
    }
}

/// The points a run passes, in order, as `name#n` (n-th hit of the point).
fn trace(home: &Path) -> Vec<String> {
    let out = spawn(home, "trace").wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
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

/// Draws `n` of `points` without replacement (the `must` ones always), seeded, in
/// their traced order.
fn draw(points: &[String], must: &[&str], n: usize, rng: &mut recops_testkit::Rng) -> Vec<String> {
    let mut chosen: Vec<usize> = points
        .iter()
        .enumerate()
        .filter(|(_, p)| must.contains(&p.as_str()))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(chosen.len(), must.len(), "{must:?} not all in {points:?}");
    let mut rest: Vec<usize> = (0..points.len()).filter(|i| !chosen.contains(i)).collect();
    while chosen.len() < n && !rest.is_empty() {
        chosen.push(rest.swap_remove(rng.index(rest.len())));
    }
    chosen.sort_unstable();
    chosen.into_iter().map(|i| points[i].clone()).collect()
}

#[test]
fn killed_refresh_leaves_the_before_or_after_state() {
    let started = Instant::now();
    // Processed data from a first batch...
    let (base, _) = TempHome::with_data(
        &GenConfig {
            users: 1_500,
            products: 300,
            interactions: 10_000,
            seed: 1,
            ..GenConfig::default()
        },
        1,
    )
    .unwrap();
    let old = run(base.home()).unwrap().data_version.unwrap();
    // ...and a second batch waiting in staging (two files), with a third file whose
    // rows are partly rejected (a rejected-rows report is part of the commit).
    let batch = generate(&GenConfig {
        users: 1_500,
        products: 300,
        interactions: 20_000,
        seed: 2,
        ..GenConfig::default()
    })
    .unwrap();
    write_dataset(base.home(), &batch, 2).unwrap();
    let fixes = base
        .stage(
            "zz_fixes.csv",
            &crate::csv(&[
                (1, 10, 5, "tốt", "2025-01-10"),
                (2, 10, 9, "rating out of range", "2025-01-10"),
                (3, 10, 4, "far future", "2099-01-01"),
            ]),
        )
        .unwrap();
    std::fs::File::options()
        .write(true)
        .open(&fixes)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(4_000_000_000))
        .unwrap();
    let staged = crate::names(&base.home().staging_dir());
    assert_eq!(staged.len(), 3);
    let before = data_state(base.home());
    assert!(before.leftovers.is_empty(), "{:?}", before.leftovers);

    // The uninterrupted run: its fault points, its result and how long it takes.
    let scratch = tempfile::tempdir().unwrap();
    let reference = Home::new(scratch.path().join("reference"));
    copy_tree(base.path(), reference.root());
    let points = trace(reference.root());
    let after = data_state(&reference);
    assert!(after.leftovers.is_empty(), "{:?}", after.leftovers);
    let new = read_interactions_meta(&reference.interactions())
        .unwrap()
        .data_version
        .unwrap();
    assert_ne!(new, old);
    assert_eq!(
        crate::names(&reference.staging_rejected_dir()),
        ["zz_fixes.csv.20250115T020000Z.csv"]
    );
    assert_eq!(
        read_csr_npz(&reference.train_confidence()).unwrap().nnz(),
        TrainingData::load(&reference).unwrap().split.train.len()
    );
    let timed = Home::new(scratch.path().join("timed"));
    copy_tree(base.path(), timed.root());
    let t0 = Instant::now();
    let mut child = spawn(timed.root(), "");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(child.wait().unwrap().success());
    let full_time = t0.elapsed();
    assert!(out.contains("RESULT Full"), "{out}");
    assert_eq!(data_state(&timed).state, after.state, "deterministic run");
    std::fs::remove_dir_all(timed.root()).unwrap();

    // Seeded kill points: the commit point and the moment before it always, the
    // other traced points drawn, and a few moments of the run (inside writes).
    let seed: u64 = std::env::var("RECOPS_FAULT_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(19);
    let mut rng = recops_testkit::Rng::new(seed);
    let must = [
        "atomic.before_rename:.commit_journal.json#1",
        "data.commit.journal_written#1",
    ];
    let mut plan: Vec<KillAt> = draw(&points, &must, 20, &mut rng)
        .into_iter()
        .map(KillAt::Point)
        .collect();
    plan.extend((0..4).map(|_| KillAt::Fraction(0.1 + 0.9 * rng.f64())));
    println!(
        "RECOPS_FAULT_SEED={seed}: {} kill points ({} of {} traced points, 4 moments): {}",
        plan.len(),
        plan.len() - 4,
        points.len(),
        plan.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );

    let py_root = scratch.path().join("python");
    let mut labels = Vec::new();
    let mut seen: Vec<(String, &str)> = Vec::new();
    let mut reader_kills: Vec<String> = Vec::new();
    let states = [("before", &before.state), ("after", &after.state)];
    for (k, at) in plan.iter().enumerate() {
        let label = at.to_string();
        let home = Home::new(scratch.path().join(format!("kill{k}")));
        copy_tree(base.path(), home.root());
        let status = match at {
            KillAt::Point(p) => {
                let status = spawn(home.root(), p).wait().unwrap();
                assert_eq!(status.signal(), Some(9), "{p}: not killed: {status:?}");
                status
            }
            KillAt::Fraction(f) => {
                let mut child = spawn(home.root(), "");
                std::thread::sleep(full_time.mul_f64(*f));
                let _ = child.kill();
                child.wait().unwrap()
            }
        };
        // Right after the kill, before anything runs again.
        let got = data_state(&home);
        let folder = format!("k{k:02}");
        recops_testkit::copy_data_files(
            &home.root().join("data"),
            &py_root.join(&folder),
            &["parquet", "npz", "json", "csv"],
        )
        .unwrap();
        labels.push((folder, label.clone()));
        let name = if got.has_journal() {
            // Past the commit point: a reader rolls the journal forward first. The
            // first reader after the commit point is killed too, in its roll-forward
            // (at the next rename it would do): the next one completes it.
            if let Some(rename) = points
                .iter()
                .skip_while(|p| !p.starts_with("data.commit.journal_written"))
                .filter(|p| p.starts_with("data.commit.renamed:"))
                .find(|p| {
                    let file = p["data.commit.renamed:".len()..].trim_end_matches("#1");
                    got.leftovers
                        .iter()
                        .any(|l| l.contains(&format!(".{file}.next")))
                        || crate::names(&home.staging_dir()).iter().any(|n| n == file)
                })
            {
                let status = spawn_as("read", home.root(), rename).wait().unwrap();
                assert_eq!(
                    status.signal(),
                    Some(9),
                    "{label}: reader not killed at {rename}"
                );
                let mid = data_state(&home);
                assert!(mid.has_journal(), "{label}: {:?}", mid.leftovers);
                reader_kills.push(format!("{label} -> reader killed at {rename}"));
            }
            TrainingData::load(&home).unwrap();
            let rolled = data_state(&home);
            assert!(!rolled.has_journal(), "{label}: {:?}", rolled.leftovers);
            assert_eq!(
                which_state(&label, &rolled, &states),
                "after",
                "{label}: rolled forward"
            );
            "after (journal rolled forward by a reader)"
        } else {
            let name = which_state(&label, &got, &states);
            // A reader changes nothing.
            TrainingData::load(&home).unwrap();
            assert_eq!(data_state(&home).state, got.state, "{label}");
            name
        };
        println!(
            "kill {label} (exit {status:?}): {name}; {} files, leftovers {:?}",
            got.state.len(),
            got.leftovers
        );
        seen.push((label.clone(), name));
        // The next run completes the work, exactly like an uninterrupted run.
        let r = run(&home).unwrap();
        if name == "before" {
            assert_eq!(r.kind, RefreshKind::Full, "{label}");
        }
        assert_eq!(r.data_version.as_deref(), Some(new.as_str()), "{label}");
        let end = data_state(&home);
        assert!(end.leftovers.is_empty(), "{label}: {:?}", end.leftovers);
        assert_eq!(end.state, after.state, "{label}: the final state");
        std::fs::remove_dir_all(home.root()).unwrap();
    }
    let count = |prefix: &str| seen.iter().filter(|(_, s)| s.starts_with(prefix)).count();
    println!(
        "right after the kill: before {}, after {} (of which journal rolled forward {}); \
         readers killed in their roll-forward {}: {reader_kills:?}; {:.1} s",
        count("before"),
        count("after"),
        count("after (journal"),
        reader_kills.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(!reader_kills.is_empty());
    assert!(seen.len() >= 20);
    assert!(
        count("before") >= 1 && count("after (journal") >= 1,
        "{seen:?}"
    );
    let must_states: Vec<&str> = must
        .iter()
        .map(|m| seen.iter().find(|(l, _)| l == m).unwrap().1)
        .collect();
    assert_eq!(
        must_states,
        ["before", "after (journal rolled forward by a reader)"]
    );

    // Every file a kill left parses with pandas, scipy and json.
    match recops_testkit::read_back_with_python(&py_root, &labels) {
        Ok(Some(summary)) => println!("{summary}"),
        Ok(None) => {}
        Err(e) => panic!("{e}"),
    }
}
