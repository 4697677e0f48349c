use std::process::Command;

/// `recops demo` on a small data set (the real steps, the real service on a free port),
/// with the embedding model when the set-up has run (CI runs it).
#[test]
fn demo_runs_every_step_and_resets_only_its_own_home() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("demo-home");
    let models_ready = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/multilingual-e5-small-int8/model.onnx")
        .exists();
    let demo = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_recops"));
        c.arg("--home").arg(&home).args([
            "demo",
            "--port",
            "0",
            "--dashboard-port",
            "0",
            "--users",
            "300",
            "--products",
            "90",
            "--interactions",
            "8000",
        ]);
        if !models_ready {
            eprintln!("NOTICE: embedding model not set up; the demo test skips the BERT step");
            c.arg("--skip-embeddings");
        }
        c.env_remove("RECOPS_HOME").output().unwrap()
    };
    let out = demo();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "[1/10] embedding model",
        "[2/10] sample data",
        "[3/10] data refresh",
        "[4/10] BERT embeddings",
        "[5/10] model training",
        "[6/10] recommender service",
        "[7/10] model deployment ... done",
        "[8/10] health check ... done",
        "[9/10] drift detection ... done",
        "[10/10] dashboard ... done",
        "dashboard http://127.0.0.1:",
        "recops demo finished",
        "deployed ",
        "curl -s http://127.0.0.1:",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
    assert!(text.contains("deployed and verified"), "{text}");
    assert!(home.join(".recops-demo").exists());
    assert!(home.join("logs/demo.log").exists());

    // A second run resets the demo's own home and works again.
    let again = demo();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );

    // Any other non-empty folder is refused, untouched.
    let other = dir.path().join("precious");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("data.csv"), "keep me").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_recops"))
        .arg("--home")
        .arg(&other)
        .args(["demo", "--skip-embeddings"])
        .env_remove("RECOPS_HOME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("was not made by `recops demo`"));
    assert_eq!(
        std::fs::read_to_string(other.join("data.csv")).unwrap(),
        "keep me"
    );
}
