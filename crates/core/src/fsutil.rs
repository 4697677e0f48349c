use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Creates `dir` and its parents if missing; an error names the folder.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io("cannot create directory", dir, e))
}

/// Creates the parent folder of `path` if missing.
pub fn ensure_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => ensure_dir(parent),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` so that a crash at any moment leaves either the previous
/// file or the new one, never a torn mix: the data goes to a temporary file in the same
/// folder, is flushed to disk (fsync), then renamed over `path`, and the folder is
/// synced so the rename itself is durable. The parent folder is created if missing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], with the content produced by `fill` into a buffered writer.
/// If `fill` fails, the temporary file is removed and `path` is untouched.
pub fn write_atomic_with<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut io::BufWriter<&File>) -> io::Result<()>,
{
    ensure_parent(path)?;
    let tmp = temp_path_for(path);
    let result = (|| -> io::Result<()> {
        let file = File::create(&tmp)?;
        {
            let mut w = io::BufWriter::new(&file);
            fill(&mut w)?;
            w.flush()?;
        }
        file.sync_all()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("cannot write", tmp, e));
    }
    commit_temp(&tmp, path)
}

/// Renames a fully written and synced temporary file over `path` and syncs the folder.
/// Use with [`temp_path_for`] when another library writes the temporary file (for
/// example a Parquet writer); the temporary file is removed if the rename fails.
pub fn commit_temp(tmp: &Path, path: &Path) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    crate::faults::point(&format!("atomic.before_rename:{name}"));
    if let Err(e) = fs::rename(tmp, path) {
        let _ = fs::remove_file(tmp);
        return Err(Error::io("cannot replace", path, e));
    }
    crate::faults::point(&format!("atomic.after_rename:{name}"));
    sync_parent(path)?;
    remove_dead_temps(path);
    Ok(())
}

/// Removes the temporary files of `path` (`.<name>.tmp.<pid>.<n>`) that processes
/// killed before their rename left: those whose pid no longer exists. Runs after each
/// successful commit, so the next write of the same file cleans up after a crash. Needs
/// `/proc` (on other systems nothing is removed); a temporary file of a live process is
/// never touched.
fn remove_dead_temps(path: &Path) {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let prefix = format!(".{}.tmp.", name.to_string_lossy());
    let dir = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let file = file.to_string_lossy();
        let Some(rest) = file.strip_prefix(prefix.as_str()) else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !proc.join(pid.to_string()).exists() {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// A temporary path next to `path` (same folder, so a rename is atomic), unique per
/// process and call: `.<name>.tmp.<pid>.<n>`.
pub fn temp_path_for(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    path.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

/// fsyncs the folder holding `path`, making a rename or a new file durable.
pub fn sync_parent(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("cannot sync directory", parent, e))
}

/// Checks that `value` is a plain name (`[a-z0-9_]+`, at most 128 characters), safe to
/// use as a file or folder name. Model ids, pipeline names and job names go through this.
pub fn validate_name(what: &'static str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what,
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/registry.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["registry.json"]);
    }

    #[test]
    fn the_next_write_removes_temp_files_of_dead_processes_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.json");
        // A pid above the kernel's maximum (4194304) never exists.
        let dead = dir.path().join(".registry.json.tmp.4999999.0");
        let live = dir
            .path()
            .join(format!(".registry.json.tmp.{}.77", std::process::id()));
        let other = dir.path().join(".history.json.tmp.4999999.0");
        for f in [&dead, &live, &other] {
            fs::write(f, b"half").unwrap();
        }
        write_atomic(&path, b"new").unwrap();
        assert!(!dead.exists(), "a dead writer's temp file is removed");
        assert!(live.exists(), "a live writer's temp file stays");
        assert!(other.exists(), "another file's temp file stays");
    }

    #[test]
    fn failed_fill_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.json");
        write_atomic(&path, b"previous").unwrap();
        let err = write_atomic_with(&path, |w| {
            w.write_all(b"half of the new")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(crate::error_chain(&err).contains("disk full"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"previous");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn names_are_plain() {
        assert!(validate_name("model_id", "als_20250115_103000").is_ok());
        for bad in ["", "../etc", "ALS", "a/b", "a b", "a.b", &"a".repeat(129)] {
            let err = validate_name("model_id", bad).unwrap_err();
            assert!(err.to_string().contains("model_id"), "{err}");
        }
    }
}
