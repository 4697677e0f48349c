//! One commit for every output of a refresh: the processed files, the rejected-rows
//! reports and the archive moves of the staging files change together or not at all,
//! as seen by recops' own readers.
//!
//! A refresh writes each new output to a hidden sibling of its final name
//! (`data/processed/.interactions.parquet.next`, ...; [`staged_path`]), checks them,
//! then, under the exclusive [commit lock](recops_core::Home::data_commit_lock):
//! 1. writes the **commit journal** `data/.commit_journal.json` atomically (temp file,
//!    fsync, rename): the list of renames to do. This is the commit point;
//! 2. does the renames (staged output -> final name; staging file -> archive), fsyncs
//!    the folders;
//! 3. removes the journal.
//!
//! Killed before 1: the final files are the previous ones; the staged files are
//! leftovers that the next refresh removes. Killed after 1: whoever next opens the
//! data for writing ([`refresh`](crate::refresh)) or reads it through recops'
//! loaders ([`lock_for_reading`], used by [`TrainingData::load`](crate::TrainingData)
//! and drift detection) first **rolls the journal forward** under the same lock: every
//! rename not done yet is done (one whose source is gone was done), then the journal
//! is removed. Rolling forward twice is harmless. Readers hold the lock shared while
//! they read, so they never see a commit halfway.
//!
//! The final paths never move (pandas and scipy users read them directly); a reader
//! that bypasses recops sees each file whole, and all of them from one refresh except
//! in the moment between a commit point and the end of its renames.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use recops_core::Home;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::error::{Error, Result};

/// The hidden name beside `path` where a refresh writes its new version before the
/// commit: `.<name>.next`.
pub(crate) fn staged_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.next"))
}

/// Whether a file name is a staged output or a temporary file of one
/// (`.<name>.next`, `..<name>.next.tmp.<pid>.<n>`).
pub(crate) fn is_staged_name(name: &str) -> bool {
    name.starts_with('.') && (name.ends_with(".next") || name.contains(".next.tmp."))
}

/// What a rename of the journal does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RenameKind {
    /// A staged output replaces its final file; must succeed.
    Output,
    /// A processed staging file moves to the archive (across filesystems by copy).
    /// Best effort: a failure leaves the file in staging, where the next refresh
    /// recognises it as committed and archives it; it never blocks the data.
    Archive,
}

/// One rename of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rename {
    pub(crate) from: PathBuf,
    pub(crate) to: PathBuf,
    pub(crate) kind: RenameKind,
}

/// The journal file: paths inside the home are stored relative to it, so a home
/// moved or copied with a journal still rolls forward into itself.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Journal {
    /// The data version the commit makes current.
    data_version: Option<String>,
    renames: Vec<JournalRename>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalRename {
    from: PathBuf,
    to: PathBuf,
    kind: RenameKind,
}

/// The commit lock held shared by a reader of the processed data (see
/// [`lock_for_reading`]); released when dropped.
#[derive(Debug)]
pub struct DataReadGuard {
    _file: Option<File>,
}

fn open_lock(home: &Home) -> Result<File> {
    let path = home.data_commit_lock();
    recops_core::ensure_parent(&path)?;
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io("cannot open", &path, e))
}

fn exclusive(home: &Home) -> Result<File> {
    let file = open_lock(home)?;
    file.lock()
        .map_err(|e| Error::io("cannot lock", home.data_commit_lock(), e))?;
    Ok(file)
}

/// Rolls a commit journal left by a killed refresh forward (see the module docs);
/// returns whether there was one. Takes the exclusive commit lock only when a
/// journal is present.
pub fn recover_commit(home: &Home) -> Result<bool> {
    if !home.data_commit_journal().exists() {
        return Ok(false);
    }
    let _lock = exclusive(home)?;
    roll_forward(home)
}

/// Opens the processed data for reading: rolls a present commit journal forward,
/// then holds the commit lock shared until the guard is dropped, so no refresh
/// commits while the caller reads several files. A home without a `data/` folder
/// yields a guard that holds nothing (there is nothing to read).
pub fn lock_for_reading(home: &Home) -> Result<DataReadGuard> {
    let lock = home.data_commit_lock();
    if !lock.parent().is_some_and(Path::is_dir) {
        return Ok(DataReadGuard { _file: None });
    }
    loop {
        recover_commit(home)?;
        let file = match open_lock(home) {
            Ok(f) => f,
            // A read-only data folder: no refresh can commit there either.
            Err(Error::Io { source, .. })
                if !home.data_commit_journal().exists()
                    && matches!(
                        source.kind(),
                        std::io::ErrorKind::PermissionDenied
                            | std::io::ErrorKind::ReadOnlyFilesystem
                    ) =>
            {
                debug!(error = %source, "cannot open the data commit lock; reading without it");
                return Ok(DataReadGuard { _file: None });
            }
            Err(e) => return Err(e),
        };
        file.lock_shared()
            .map_err(|e| Error::io("cannot lock", home.data_commit_lock(), e))?;
        // A refresh may have committed between the check and the lock.
        if !home.data_commit_journal().exists() {
            return Ok(DataReadGuard { _file: Some(file) });
        }
    }
}

/// Before a refresh writes anything: rolls a journal forward, then removes the
/// staged outputs (and their temporary files) of a refresh killed before its commit
/// point, in the folders of `dirs`, and the temporary file of a journal killed
/// before its rename. The caller holds the data pipeline lock.
pub(crate) fn prepare(home: &Home, dirs: &[PathBuf]) -> Result<()> {
    recover_commit(home)?;
    let journal = home.data_commit_journal();
    if let (Some(dir), Some(name)) = (journal.parent(), journal.file_name()) {
        let prefix = format!(".{}.tmp.", name.to_string_lossy());
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    remove_staged(dirs);
    Ok(())
}

/// Removes the staged outputs (and their temporary files) in the folders of `dirs`:
/// before a refresh writes, and when it fails before its commit point.
pub(crate) fn remove_staged(dirs: &[PathBuf]) {
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !is_staged_name(&name) {
                continue;
            }
            match std::fs::remove_file(e.path()) {
                Ok(()) => {
                    warn!(file = %name, "removed an output staged by a refresh that did not commit")
                }
                Err(err) => warn!(file = %name, error = %err, "cannot remove a staged output"),
            }
        }
    }
}

/// Commits `renames` as one step (see the module docs). Returns, per rename, whether
/// it took effect (an archive move may fail; outputs must).
pub(crate) fn apply(
    home: &Home,
    data_version: Option<&str>,
    renames: &[Rename],
) -> Result<Vec<bool>> {
    let _lock = exclusive(home)?;
    roll_forward(home)?;
    let journal = Journal {
        data_version: data_version.map(str::to_owned),
        renames: renames
            .iter()
            .map(|r| JournalRename {
                from: relative(home, &r.from),
                to: relative(home, &r.to),
                kind: r.kind,
            })
            .collect(),
    };
    let path = home.data_commit_journal();
    let text = serde_json::to_vec_pretty(&journal)
        .map_err(|e| Error::invalid("commit journal", &path, e.to_string()))?;
    recops_core::write_atomic(&path, &text)?;
    recops_core::faults::point("data.commit.journal_written");
    let done = do_renames(home, renames)?;
    finish(home)?;
    info!(renames = renames.len(), data_version = ?data_version, "refresh committed");
    Ok(done)
}

/// Reads and applies the journal, if any; the caller holds the exclusive lock.
fn roll_forward(home: &Home) -> Result<bool> {
    let path = home.data_commit_journal();
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("cannot read", &path, e)),
    };
    let journal: Journal = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid("commit journal", &path, e.to_string()))?;
    warn!(
        renames = journal.renames.len(),
        data_version = ?journal.data_version,
        "rolling forward the commit of an interrupted refresh"
    );
    let renames: Vec<Rename> = journal
        .renames
        .into_iter()
        .map(|r| Rename {
            from: home.root().join(&r.from),
            to: home.root().join(&r.to),
            kind: r.kind,
        })
        .collect();
    do_renames(home, &renames)?;
    finish(home)?;
    Ok(true)
}

/// Does each rename not done yet; fsyncs every folder touched.
fn do_renames(home: &Home, renames: &[Rename]) -> Result<Vec<bool>> {
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut done = Vec::with_capacity(renames.len());
    for r in renames {
        let ok = match r.kind {
            RenameKind::Output => {
                rename_output(home, r)?;
                true
            }
            RenameKind::Archive => archive(r),
        };
        done.push(ok);
        for p in [&r.from, &r.to] {
            if let Some(d) = p.parent() {
                dirs.insert(d.to_path_buf());
            }
        }
        let name = r.to.file_name().map(|n| n.to_string_lossy().into_owned());
        recops_core::faults::point(&format!("data.commit.renamed:{}", name.unwrap_or_default()));
    }
    for d in dirs {
        if d.is_dir() {
            recops_core::sync_parent(&d.join("x"))?;
        }
    }
    Ok(done)
}

fn rename_output(home: &Home, r: &Rename) -> Result<()> {
    if r.from.exists() {
        return std::fs::rename(&r.from, &r.to).map_err(|e| Error::io("cannot commit", &r.from, e));
    }
    if r.to.exists() {
        return Ok(()); // renamed before the kill
    }
    Err(Error::invalid(
        "commit journal",
        home.data_commit_journal(),
        format!(
            "neither {} nor {} exists: the staged output was lost",
            r.from.display(),
            r.to.display()
        ),
    ))
}

/// An archive move: done when the source is gone; when both exist, a copy across
/// filesystems completed (it lands under the final name only when whole) and only
/// the source's removal is missing.
fn archive(r: &Rename) -> bool {
    if !r.from.exists() {
        return true;
    }
    let result = if r.to.exists() {
        std::fs::remove_file(&r.from).map_err(|e| Error::io("cannot remove archived", &r.from, e))
    } else {
        recops_core::ensure_parent(&r.to)
            .map_err(Error::from)
            .and_then(|()| crate::refresh::move_file(&r.from, &r.to))
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            warn!(
                file = %r.from.display(),
                error = %e,
                "cannot archive a committed staging file; its rows are safe and the next run retries"
            );
            false
        }
    }
}

/// Removes the journal once every rename is durable.
fn finish(home: &Home) -> Result<()> {
    let path = home.data_commit_journal();
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("cannot remove", &path, e)),
    }
    recops_core::sync_parent(&path)?;
    recops_core::faults::point("data.commit.done");
    Ok(())
}

/// `path` relative to the home when inside it, else absolute (a `--staging-dir` given
/// relative to the working directory stays right for a reader started elsewhere).
fn relative(home: &Home, path: &Path) -> PathBuf {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (root, path) = (absolute(home.root()), absolute(path));
    path.strip_prefix(&root)
        .map(Path::to_path_buf)
        .unwrap_or(path)
}

/// Picks the archive name of each staging file: its own name, or, when taken (in the
/// archive or by another file of the same commit), the run's stamp
/// (`ratings.20250115T020000Z.csv`), then a counter. Never overwrites.
pub(crate) fn archive_targets(dir: &Path, names: &[String], stamp: &str) -> Vec<PathBuf> {
    let mut taken: HashSet<PathBuf> = HashSet::new();
    names
        .iter()
        .map(|name| {
            let (stem, ext) = match name.rsplit_once('.') {
                Some((s, e)) => (s.to_owned(), format!(".{e}")),
                None => (name.clone(), String::new()),
            };
            let mut target = dir.join(name);
            let mut n = 0;
            while target.exists() || taken.contains(&target) {
                n += 1;
                let suffix = if n == 1 {
                    stamp.to_owned()
                } else {
                    format!("{stamp}.{n}")
                };
                target = dir.join(format!("{stem}.{suffix}{ext}"));
            }
            taken.insert(target.clone());
            target
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_left_by_a_kill_is_rolled_forward_once() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let processed = home.processed_dir();
        std::fs::create_dir_all(&processed).unwrap();
        let staging = home.staging_dir();
        std::fs::create_dir_all(home.staging_archive_dir()).unwrap();
        let a = processed.join("a.json");
        let b = processed.join("b.json");
        std::fs::write(&a, "old a").unwrap();
        std::fs::write(&b, "old b").unwrap();
        std::fs::write(staged_path(&b), "new b").unwrap();
        std::fs::write(staging.join("s.csv"), "rows").unwrap();
        // Killed after renaming a: its staged file is gone, the final one is new.
        std::fs::write(&a, "new a").unwrap();
        let journal = Journal {
            data_version: Some("v".into()),
            renames: vec![
                JournalRename {
                    from: relative(&home, &staged_path(&a)),
                    to: relative(&home, &a),
                    kind: RenameKind::Output,
                },
                JournalRename {
                    from: relative(&home, &staged_path(&b)),
                    to: relative(&home, &b),
                    kind: RenameKind::Output,
                },
                JournalRename {
                    from: relative(&home, &staging.join("s.csv")),
                    to: relative(&home, &home.staging_archive_dir().join("s.csv")),
                    kind: RenameKind::Archive,
                },
            ],
        };
        assert_eq!(
            journal.renames[0].from,
            Path::new("data/processed/.a.json.next")
        );
        assert_eq!(
            relative(&home, Path::new("incoming/x.csv")),
            std::env::current_dir().unwrap().join("incoming/x.csv")
        );
        std::fs::write(
            home.data_commit_journal(),
            serde_json::to_vec(&journal).unwrap(),
        )
        .unwrap();
        let guard = lock_for_reading(&home).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "new b");
        assert!(!staged_path(&b).exists());
        assert!(!staging.join("s.csv").exists());
        assert!(home.staging_archive_dir().join("s.csv").exists());
        assert!(!home.data_commit_journal().exists());
        drop(guard);
        assert!(!recover_commit(&home).unwrap());
    }

    #[test]
    fn a_journal_naming_a_lost_output_is_an_error_and_stays() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        std::fs::create_dir_all(home.processed_dir()).unwrap();
        let journal = r#"{"data_version": null, "renames": [
            {"from": "data/processed/.x.next", "to": "data/processed/x", "kind": "output"}]}"#;
        std::fs::write(home.data_commit_journal(), journal).unwrap();
        let err = recover_commit(&home).unwrap_err().to_string();
        assert!(err.contains("the staged output was lost"), "{err}");
        assert!(home.data_commit_journal().exists());
    }

    #[test]
    fn archive_names_never_collide() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "").unwrap();
        let names = ["a.csv".to_owned(), "a.S.csv".to_owned(), "b".to_owned()];
        let got = archive_targets(dir.path(), &names, "S");
        let got: Vec<String> = got
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, ["a.S.csv", "a.S.S.csv", "b"]);
    }

    #[test]
    fn staged_names() {
        assert_eq!(
            staged_path(Path::new("/h/x.npz")),
            Path::new("/h/.x.npz.next")
        );
        assert!(is_staged_name(".x.npz.next"));
        assert!(is_staged_name("..x.npz.next.tmp.12.0"));
        assert!(!is_staged_name(".x.npz.tmp.12.0"));
        assert!(!is_staged_name("next"));
    }
}
