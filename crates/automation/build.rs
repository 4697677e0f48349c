//! Stamps the build with its git commit (`RECOPS_GIT_COMMIT`, recorded in
//! `training_runs.git_commit`): the value of `RECOPS_GIT_COMMIT` at build time if set,
//! else `git rev-parse HEAD` of the source tree (local, no network), else `unknown`.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=RECOPS_GIT_COMMIT");
    let commit = std::env::var("RECOPS_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let head = git(&["rev-parse", "HEAD"])?;
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some();
            Some(if dirty { format!("{head}-dirty") } else { head })
        })
        .unwrap_or_else(|| "unknown".to_owned());
    // Rebuild when HEAD moves (a commit, a checkout).
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!(
            "cargo:rerun-if-changed={}",
            PathBuf::from(&dir).join("HEAD").display()
        );
        if let (Some(common), Some(head_ref)) = (
            git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
            git(&["symbolic-ref", "-q", "HEAD"]),
        ) {
            println!(
                "cargo:rerun-if-changed={}",
                PathBuf::from(common).join(head_ref).display()
            );
        }
    }
    println!("cargo:rustc-env=RECOPS_GIT_COMMIT={commit}");
}
