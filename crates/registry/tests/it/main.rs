//! Cross-process tests of recops-registry: two processes registering at once. Child
//! processes are this same test binary, re-run on the ignored `child_entry` test with
//! instructions in the environment.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::process::{Command, Stdio};

use recops_core::Home;
use recops_registry::{ModelStatus, NewModel, Registry};

const HOME: &str = "RECOPS_TEST_REGISTRY_HOME";
const WHO: &str = "RECOPS_TEST_REGISTRY_WHO";
const PER_CHILD: usize = 25;

fn id(who: usize, i: usize) -> recops_core::ModelId {
    recops_core::ModelId::new(format!("als_2025011{who}_10{i:04}")).unwrap()
}

#[test]
#[ignore = "child process entry point, run by two_processes_registering_at_once_both_land"]
fn child_entry() {
    let (Ok(home), Ok(who)) = (std::env::var(HOME), std::env::var(WHO)) else {
        return;
    };
    let who: usize = who.parse().unwrap();
    let registry = Registry::open(&Home::new(home));
    for i in 0..PER_CHILD {
        registry
            .register(
                &NewModel {
                    model_id: id(who, i),
                    model_type: recops_core::ModelType::Als,
                    metrics: [("ndcg@10".to_owned(), (who * 100 + i) as f64 / 1000.0)].into(),
                    baseline: Default::default(),
                    data_version: format!("v{who}"),
                },
                "concurrency test",
            )
            .unwrap();
        registry.promote(None, "best ndcg@10").unwrap();
    }
    println!("RESULT done");
}

#[test]
fn two_processes_registering_at_once_both_land() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    for who in 1..=2 {
        for i in 0..PER_CHILD {
            std::fs::create_dir_all(home.model_dir(&id(who, i))).unwrap();
        }
    }
    let children: Vec<_> = (1..=2)
        .map(|who| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--ignored",
                    "--exact",
                    "child_entry",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(HOME, dir.path())
                .env(WHO, who.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("RESULT done"));
    }
    let registry = Registry::open(&home);
    let file = registry.load().unwrap();
    assert_eq!(file.models.len(), 2 * PER_CHILD, "a registration was lost");
    assert!(
        file.models
            .values()
            .all(|m| m.status == ModelStatus::Active)
    );
    // The best ndcg@10 overall is child 2's last model.
    assert_eq!(file.current_best, Some(id(2, PER_CHILD - 1)));
    let audit = registry.audit().unwrap();
    assert_eq!(audit.len(), 4 * PER_CHILD, "one audit line per operation");
    assert_eq!(
        audit.iter().filter(|a| a.operation == "register").count(),
        2 * PER_CHILD
    );
    let pids: std::collections::HashSet<u32> = audit.iter().map(|a| a.pid).collect();
    assert_eq!(pids.len(), 2);
    // Each audit line's previous current_best is the one the line before left.
    for w in audit.windows(2) {
        assert_eq!(w[1].previous_current_best, w[0].current_best);
    }
}
