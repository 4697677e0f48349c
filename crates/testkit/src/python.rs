//! Reading recops' data files back with the Python tools their users have: pandas
//! (`read_parquet`, `read_csv`), scipy (`sparse.load_npz`) and `json.load`.
//!
//! The Python is `RECOPS_PYTHON`, else the repository's `venv-ci/bin/python` or
//! `venv-ref/bin/python`. `scripts/test.sh` creates `venv-ci` with scipy, numpy,
//! pandas and pyarrow and sets `RECOPS_REQUIRE_SCIPY=1`: then a missing Python or
//! module is a failure; otherwise the Python part is skipped with a NOTICE.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The variable that turns a missing Python (or module) into a failure.
pub const REQUIRE_SCIPY_ENV: &str = "RECOPS_REQUIRE_SCIPY";

/// A Python that imports every module of `modules`, if there is one.
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = std::env::var_os("RECOPS_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            root.join("venv-ci/bin/python"),
            root.join("venv-ref/bin/python"),
        ]);
    let import = format!("import {}", modules.join(", "));
    candidates.into_iter().find(|py| {
        Command::new(py)
            .args(["-c", &import])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The script of [`read_back_with_python`]: `root/<label>/...`; `root/labels.json`
/// names each label's kill point.
const READ_BACK: &str = r#"
import json, os, sys
import pandas as pd
import scipy.sparse as sp
root = sys.argv[1]
with open(os.path.join(root, "labels.json")) as f:
    labels = json.load(f)
failures, counts = [], {}
for label in sorted(labels):
    base = os.path.join(root, label)
    for d, _, files in os.walk(base):
        for name in sorted(files):
            path = os.path.join(d, name)
            rel = os.path.relpath(path, base)
            ext = name.rsplit(".", 1)[-1]
            try:
                if ext == "parquet":
                    pd.read_parquet(path)
                elif ext == "npz":
                    X = sp.load_npz(path)
                    assert X.format == "csr", X.format
                elif ext == "json":
                    with open(path) as f:
                        json.load(f)
                elif ext == "csv":
                    pd.read_csv(path)
                else:
                    continue
                counts[ext] = counts.get(ext, 0) + 1
            except Exception as e:
                failures.append(f"kill point {labels[label]} ({label}): {rel}: {type(e).__name__}: {e}")
print("python read back:", json.dumps(counts, sort_keys=True), "files from", len(labels), "kills")
if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
"#;

/// Reads every `.parquet` (pandas), `.npz` (scipy), `.json` and `.csv` (pandas) file
/// under `root/<label>/` with one Python process; `labels` maps each folder to the
/// kill point it was copied after. Returns `Ok(Some(summary))`, `Ok(None)` when no
/// Python with pandas, pyarrow and scipy is found and [`REQUIRE_SCIPY_ENV`] is unset
/// (a NOTICE is printed), or `Err` naming each kill point and file that failed.
#[allow(clippy::print_stdout)]
pub fn read_back_with_python(
    root: &Path,
    labels: &[(String, String)],
) -> Result<Option<String>, String> {
    let Some(py) = python_with(&["pandas", "pyarrow", "scipy.sparse"]) else {
        if std::env::var(REQUIRE_SCIPY_ENV).is_ok_and(|v| v == "1") {
            return Err(format!(
                "{REQUIRE_SCIPY_ENV}=1 but no Python with pandas, pyarrow and scipy was found \
                 (RECOPS_PYTHON, venv-ci; scripts/test.sh installs them)"
            ));
        }
        println!(
            "NOTICE: no Python with pandas, pyarrow and scipy (set RECOPS_PYTHON or run \
             scripts/test.sh): the files are not read back with Python"
        );
        return Ok(None);
    };
    let map: std::collections::BTreeMap<&str, &str> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let json = format!(
        "{{{}}}",
        map.iter()
            .map(|(k, v)| format!("{}: {}", quote(k), quote(v)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::fs::write(root.join("labels.json"), json).map_err(|e| e.to_string())?;
    let out = Command::new(&py)
        .args(["-c", READ_BACK])
        .arg(root)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", py.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() {
        Ok(Some(stdout))
    } else {
        Err(format!(
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A JSON string literal.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Copies the files under `from` whose extension is in `exts` (parquet, npz, json,
/// csv, ...) to the same relative paths under `to`, skipping hidden files and
/// folders (temporary and staged files: leftovers, not data users read).
pub fn copy_data_files(from: &Path, to: &Path, exts: &[&str]) -> std::io::Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let p = e.path();
        if p.is_dir() {
            n += copy_data_files(&p, &to.join(&name), exts)?;
        } else if exts
            .iter()
            .any(|x| name.rsplit_once('.').is_some_and(|(_, e)| e == *x))
        {
            std::fs::create_dir_all(to)?;
            std::fs::copy(&p, to.join(&name))?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_python_cannot_read_names_the_kill_point() {
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("k0");
        std::fs::create_dir_all(k.join("sub")).unwrap();
        std::fs::write(k.join("ok.json"), "{}").unwrap();
        std::fs::write(k.join("sub/torn.json"), "{\"a\": ").unwrap();
        let labels = [("k0".to_owned(), "atomic.after_rename:x#1".to_owned())];
        match read_back_with_python(dir.path(), &labels) {
            Ok(None) => {} // no Python here, and not required
            Ok(Some(s)) => panic!("a torn file passed: {s}"),
            Err(e) => {
                if python_with(&["pandas", "pyarrow", "scipy.sparse"]).is_some() {
                    assert!(
                        e.contains("kill point atomic.after_rename:x#1 (k0): sub/torn.json"),
                        "{e}"
                    );
                }
            }
        }
        assert_eq!(quote("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
    }
}
