//! `bert-embeddings` and `recops embedding-model` on temporary homes: the tiny fixture model for
//! the job's behaviour, the real multilingual-e5-small for `recops embedding-model check`.
//! Tests that need ONNX Runtime print a notice and pass when scripts/fetch_models.sh
//! has not run, unless RECOPS_REQUIRE_MODELS=1 (CI).
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use recops_core::Home;
use recops_embeddings::{find_runtime_library, repository_models_dir};
use recops_tracking::{PipelineTracker, RunStatus};
use serde_json::Value;

const CATALOG: &str = "product_id,name,brand,category,description\n\
    101,Sữa rửa mặt,CeraVe,Skincare,\"Làm sạch dịu nhẹ, cho da nhạy cảm\"\n\
    102,Kem dưỡng ẩm,Laneige,Skincare,Dưỡng ẩm mềm mịn\n\
    103,Son môi,Maybelline,Makeup,\n";

fn runtime() -> Option<PathBuf> {
    match find_runtime_library(None, &repository_models_dir()) {
        Ok(p) => Some(p),
        Err(e) if std::env::var("RECOPS_REQUIRE_MODELS").is_ok_and(|v| v == "1") => {
            panic!("RECOPS_REQUIRE_MODELS=1 but {e}")
        }
        Err(e) => {
            eprintln!("NOTICE: skipping an end-to-end embeddings test: {e}");
            None
        }
    }
}

fn tiny_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/embeddings/fixtures/tiny")
}

/// A home whose config uses the tiny fixture model and `library` as the runtime.
fn tiny_home(library: &Path) -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let config = recops_embeddings::DEFAULT_EMBEDDINGS_CONFIG
        .replace(
            "model_dir: ${RECOPS_EMBEDDINGS_MODEL_DIR:-}",
            &format!("model_dir: {}", tiny_model().display()),
        )
        .replace(
            "onnxruntime_library: \"\"",
            &format!("onnxruntime_library: {}", library.display()),
        )
        .replace("prefix: null", "prefix: \"passage: \"")
        .replace("max_length_tokens: 256", "max_length_tokens: 16");
    std::fs::create_dir_all(home.config_dir()).unwrap();
    std::fs::write(home.embeddings_config(), config).unwrap();
    let catalog = home.ensure_parent(home.product_catalog()).unwrap();
    std::fs::write(catalog, CATALOG).unwrap();
    (dir, home)
}

fn bert(home: &Home, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bert-embeddings"))
        .arg("--home")
        .arg(home.root())
        .args(args)
        .env_remove("RECOPS_HOME")
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("RECOPS_MODELS_DIR")
        .env_remove("RECOPS_EMBEDDINGS_MODEL_DIR")
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn writes_reuses_and_reports_freshness() {
    let Some(rt) = runtime() else { return };
    let (_d, home) = tiny_home(&rt);
    let first = json_of(&bert(&home, &["--json"]));
    assert_eq!(first["status"], "success");
    assert_eq!(first["num_products"], 3);
    assert_eq!(first["reembedded"], 3);
    assert_eq!(first["empty_descriptions"], 1);
    assert_eq!(first["embedding_dim"], 16);
    assert_eq!(first["full_reason"], "no previous embeddings file");

    let second = json_of(&bert(&home, &["--json"]));
    assert_eq!(
        (second["reembedded"].clone(), second["reused"].clone()),
        (0.into(), 3.into())
    );
    assert_eq!(second["full_reason"], Value::Null);

    let full = json_of(&bert(&home, &["--json", "--full", "--batch-size", "2"]));
    assert_eq!(full["reembedded"], 3);
    assert_eq!(full["batch_size"], 2);

    let check = json_of(&bert(&home, &["--check", "--json"]));
    assert_eq!(check["age_days"], 0);
    assert_eq!(check["is_stale"], false);
    assert_eq!(check["num_embeddings"], 3);
    assert_eq!(check["embedding_dim"], 16);
    assert_eq!(check["model_mismatch"], false);
    let text = bert(&home, &["--check"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("fresh (stale after 30 days"));

    let tracker = PipelineTracker::open(&home).unwrap();
    let runs = tracker
        .get_recent_runs(Some("bert_embeddings"), 10, None)
        .unwrap();
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r.status == RunStatus::Success));
    assert_eq!(runs[2].metadata["reembedded"], 3);
    let log = std::fs::read_to_string(home.command_log("bert_embeddings").unwrap()).unwrap();
    assert!(log.contains(" | INFO | BERT embeddings completed"), "{log}");
}

#[test]
fn a_bad_catalog_fails_naming_the_file_and_keeps_the_embeddings() {
    let Some(rt) = runtime() else { return };
    let (_d, home) = tiny_home(&rt);
    json_of(&bert(&home, &["--json"]));
    let before = std::fs::read(home.product_embeddings()).unwrap();
    std::fs::write(home.product_catalog(), "product_id,name,brand\n1,Son,M\n").unwrap();
    let out = bert(&home, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("data_product.csv line 1: missing column(s) description"),
        "{err}"
    );
    assert_eq!(std::fs::read(home.product_embeddings()).unwrap(), before);
    let tracker = PipelineTracker::open(&home).unwrap();
    let last = &tracker
        .get_recent_runs(Some("bert_embeddings"), 1, None)
        .unwrap()[0];
    assert_eq!(last.status, RunStatus::Failed);
    assert!(
        last.error_message
            .as_deref()
            .unwrap()
            .contains("description")
    );
}

#[test]
fn a_library_that_is_not_onnx_runtime_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so.1.32.0");
    std::fs::write(&fake, "not a shared library").unwrap();
    let (_d, home) = tiny_home(&fake);
    let out = bert(&home, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot load ONNX Runtime from"), "{err}");
    assert!(err.contains("libonnxruntime.so.1.32.0"), "{err}");
    assert!(err.contains("scripts/fetch_models.sh"), "{err}");
    assert!(!home.product_embeddings().exists());
}

#[test]
fn a_missing_setup_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    std::fs::create_dir_all(home.models_dir()).unwrap(); // empty models folder
    let catalog = home.ensure_parent(home.product_catalog()).unwrap();
    std::fs::write(catalog, CATALOG).unwrap();
    let out = bert(&home, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ONNX Runtime library not found"), "{err}");
    assert!(err.contains("scripts/fetch_models.sh"), "{err}");

    let check = bert(&home, &["--check"]);
    assert_eq!(check.status.code(), Some(1));
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(err.contains("no embeddings file at"), "{err}");
    assert!(err.contains("run bert-embeddings"), "{err}");
}

#[test]
fn models_check_runs_the_real_model_when_it_is_set_up() {
    if runtime().is_none() {
        return;
    }
    // The shipped config uses the int8 variant.
    if !repository_models_dir()
        .join("multilingual-e5-small-int8/model.json")
        .is_file()
    {
        eprintln!("NOTICE: skipping `recops embedding-model check`: run scripts/fetch_models.sh");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_recops"))
        .args(["--home"])
        .arg(dir.path())
        .args(["embedding-model", "check", "--json"])
        .env_remove("RECOPS_HOME")
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("RECOPS_MODELS_DIR")
        .env_remove("RECOPS_EMBEDDINGS_MODEL_DIR")
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(v["model"], "intfloat/multilingual-e5-small");
    assert!(
        v["model_path"]
            .as_str()
            .unwrap()
            .ends_with("multilingual-e5-small-int8/model.onnx"),
        "{v}"
    );
    assert_eq!(v["dim"], 384);
    assert_eq!(v["ordering_ok"], true);
    let c0 = v["cosines"][0].as_f64().unwrap();
    assert!(c0 > 0.85 && c0 < 0.97, "{v}");
}

#[test]
fn init_writes_the_embeddings_config_once() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    let init = || {
        Command::new(env!("CARGO_BIN_EXE_recops"))
            .arg("--home")
            .arg(dir.path())
            .arg("init")
            .env_remove("RECOPS_HOME")
            .output()
            .unwrap()
    };
    assert!(init().status.success());
    let text = std::fs::read_to_string(home.embeddings_config()).unwrap();
    assert_eq!(text, recops_embeddings::DEFAULT_EMBEDDINGS_CONFIG);
    std::fs::write(home.embeddings_config(), "edited").unwrap();
    assert!(init().status.success());
    assert_eq!(
        std::fs::read_to_string(home.embeddings_config()).unwrap(),
        "edited"
    );
}

#[test]
fn fetch_models_check_finds_missing_and_tampered_files() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch_models.sh");
    let dir = tempfile::tempdir().unwrap();
    let check = || {
        Command::new("bash")
            .arg(&script)
            .args(["--check", "--models-dir"])
            .arg(dir.path())
            .env_remove("RECOPS_MODELS_DIR")
            .output()
            .unwrap()
    };
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing or damaged"), "{err}");
    assert!(err.contains("libonnxruntime.so.1.32.0"), "{err}");
    assert!(err.contains("run: "), "{err}");

    // A complete folder: the real runtime library and both variants of the model, each
    // with a model.json recording the sha256 of its files.
    let Some(rt) = runtime() else { return };
    let ort_dir = dir.path().join("onnxruntime");
    std::fs::create_dir_all(&ort_dir).unwrap();
    std::os::unix::fs::symlink(&rt, ort_dir.join("libonnxruntime.so.1.32.0")).unwrap();
    let variant = |name: &str| {
        let model = dir.path().join(name);
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(model.join("model.onnx"), name).unwrap();
        std::fs::write(model.join("tokenizer.json"), "t").unwrap();
        let sha = |f: &str| recops_embeddings::sha256_file(&model.join(f)).unwrap();
        let desc = serde_json::json!({"files": {
            "model.onnx": {"sha256": sha("model.onnx")},
            "tokenizer.json": {"sha256": sha("tokenizer.json")},
        }});
        std::fs::write(model.join("model.json"), desc.to_string()).unwrap();
        model
    };
    let model = variant("multilingual-e5-small");
    // Without the int8 variant (a folder set up before it existed) the set-up is not
    // complete.
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("multilingual-e5-small-int8"), "{err}");
    variant("multilingual-e5-small-int8");
    let out = check();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ready"));

    std::fs::write(model.join("tokenizer.json"), "changed").unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("multilingual-e5-small"), "{err}");
}
