//! [`RegistryStore`]: where the registry and its audit trail live, and
//! [`FileRegistryStore`], the embedded backend (`artifacts/cf/registry.json`, its lock
//! and `logs/registry_audit.log`, byte-compatible with the spec's format).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use recops_core::{Home, write_atomic};

use crate::error::{Error, Result};
use crate::registry::{AuditRecord, RegistryFile};

/// The backend of a registry: the whole [`RegistryFile`] (models, `current_best`, the
/// `deployed` record) and its audit trail. [`crate::Registry`] holds the rules
/// (promotion, archive guards, gc); a store only reads, writes atomically and
/// serialises writers.
pub trait RegistryStore: std::fmt::Debug + Send + Sync {
    /// The registry (an empty one when nothing was recorded yet).
    fn load(&self) -> Result<RegistryFile>;

    /// Serialised against every other writer (of every process): reads the registry,
    /// applies `change`, writes the result and appends the audit records `change`
    /// returns (one per operation, at least one), so either all land or (on `Err`)
    /// nothing changes. `change` may run more than once (a retried transaction).
    fn update(
        &self,
        change: &mut dyn FnMut(&mut RegistryFile) -> Result<Vec<AuditRecord>>,
    ) -> Result<()>;

    /// The audit records, oldest first.
    fn audit(&self) -> Result<Vec<AuditRecord>>;

    /// Moves audit records older than `cutoff` to the file `archive` (appended,
    /// created with its folder). Returns how many moved.
    fn archive_audit_before(&self, cutoff: DateTime<Utc>, archive: &Path) -> Result<usize>;

    /// Replaces the registry with `file` without an audit record (`storage migrate`).
    fn import(&self, file: &RegistryFile) -> Result<()>;

    /// Appends audit records as they are (`storage migrate`).
    fn import_audit(&self, records: &[AuditRecord]) -> Result<()>;

    /// Where the registry lives, for messages (a path or a URL, never a password).
    fn describe(&self) -> String;
}

/// Checks what a loaded registry must satisfy; `what` names it in the error.
/// The fault point after the registry is written, named by its first operation.
pub(crate) fn written_point(records: &[AuditRecord]) {
    let operation = records.first().map_or("update", |r| r.operation.as_str());
    recops_core::faults::point(&format!("registry.{operation}.written"));
}

pub(crate) fn check_consistent(reg: &RegistryFile, what: &Path) -> Result<()> {
    if let Some(cb) = reg
        .current_best
        .as_ref()
        .filter(|cb| !reg.models.contains_key(*cb))
    {
        return Err(Error::Corrupt {
            path: what.to_path_buf(),
            message: format!("current_best {cb:?} is not one of the models"),
        });
    }
    if let Some(d) = reg
        .deployed
        .as_ref()
        .filter(|d| !reg.models.contains_key(&d.model_id))
    {
        return Err(Error::Corrupt {
            path: what.to_path_buf(),
            message: format!("deployed model {:?} is not one of the models", d.model_id),
        });
    }
    Ok(())
}

/// The embedded registry: `artifacts/cf/registry.json` written atomically under an
/// exclusive lock on `registry.json.lock`, and one JSON line per operation in
/// `logs/registry_audit.log`.
#[derive(Debug, Clone)]
pub struct FileRegistryStore {
    path: PathBuf,
    lock_path: PathBuf,
    audit_path: PathBuf,
}

struct Locked {
    file: File,
}

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

impl FileRegistryStore {
    /// The files of `home`.
    pub fn new(home: &Home) -> Self {
        let path = home.registry();
        let mut lock_name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        lock_name.push(".lock");
        FileRegistryStore {
            lock_path: path.with_file_name(lock_name),
            path,
            audit_path: home.registry_audit_log(),
        }
    }

    fn lock(&self) -> Result<Locked> {
        recops_core::ensure_parent(&self.lock_path)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| Error::io("cannot open", &self.lock_path, e))?;
        file.lock()
            .map_err(|e| Error::io("cannot lock", &self.lock_path, e))?;
        Ok(Locked { file })
    }

    fn write(&self, reg: &RegistryFile) -> Result<()> {
        let json = serde_json::to_vec_pretty(reg).map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&self.path, &json)?;
        Ok(())
    }

    fn append_lines(&self, records: &[AuditRecord]) -> Result<()> {
        recops_core::ensure_parent(&self.audit_path)?;
        let mut text = String::new();
        for record in records {
            text.push_str(&serde_json::to_string(record).map_err(|e| Error::Corrupt {
                path: self.audit_path.clone(),
                message: e.to_string(),
            })?);
            text.push('\n');
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.audit_path)
            .map_err(|e| Error::io("cannot open", &self.audit_path, e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io("cannot append to", &self.audit_path, e))
    }
}

impl RegistryStore for FileRegistryStore {
    fn load(&self) -> Result<RegistryFile> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(RegistryFile::default());
            }
            Err(e) => return Err(Error::io("cannot read", &self.path, e)),
        };
        let reg: RegistryFile = serde_json::from_slice(&text).map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        check_consistent(&reg, &self.path)?;
        Ok(reg)
    }

    fn update(
        &self,
        change: &mut dyn FnMut(&mut RegistryFile) -> Result<Vec<AuditRecord>>,
    ) -> Result<()> {
        let _guard = self.lock()?;
        let mut reg = self.load()?;
        let records = change(&mut reg)?;
        self.write(&reg)?;
        written_point(&records);
        self.append_lines(&records)
    }

    fn audit(&self) -> Result<Vec<AuditRecord>> {
        let text = match std::fs::read_to_string(&self.audit_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("cannot read", &self.audit_path, e)),
        };
        Ok(text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .filter_map(|(n, l)| match serde_json::from_str(l) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(line = n + 1, error = %recops_core::error_chain(&e), "skipping unreadable audit line");
                    None
                }
            })
            .collect())
    }

    /// Under the registry lock; the audit log is rewritten atomically with the rest.
    /// Unreadable lines stay.
    fn archive_audit_before(&self, cutoff: DateTime<Utc>, archive: &Path) -> Result<usize> {
        let _guard = self.lock()?;
        let path = &self.audit_path;
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io("cannot read", path, e)),
        };
        let (mut old, mut keep) = (String::new(), String::new());
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let time = serde_json::from_str::<AuditRecord>(line)
                .ok()
                .and_then(|r| recops_core::parse_timestamp(&r.time));
            let target = if time.is_some_and(|t| t < cutoff) {
                &mut old
            } else {
                &mut keep
            };
            target.push_str(line);
            target.push('\n');
        }
        let moved = old.lines().count();
        if moved == 0 {
            return Ok(0);
        }
        append_archive(archive, old.as_bytes())?;
        recops_core::write_atomic(path, keep.as_bytes())?;
        Ok(moved)
    }

    fn import(&self, file: &RegistryFile) -> Result<()> {
        let _guard = self.lock()?;
        self.write(file)
    }

    fn import_audit(&self, records: &[AuditRecord]) -> Result<()> {
        let _guard = self.lock()?;
        self.append_lines(records)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// Appends `bytes` to the archive file `archive` (created with its folder) and syncs.
pub(crate) fn append_archive(archive: &Path, bytes: &[u8]) -> Result<()> {
    recops_core::ensure_parent(archive)?;
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(archive)
        .map_err(|e| Error::io("cannot open", archive, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("cannot append to", archive, e))
}
