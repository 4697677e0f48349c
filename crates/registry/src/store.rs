//! [`RegistryStore`]: where the registry and its audit trail live, and
//! [`FileRegistryStore`], the embedded backend (`artifacts/cf/registry.json`, its lock
//! and `logs/registry_audit.log`, byte-compatible with the spec's format).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use recops_core::{Home, write_atomic};
use serde::{Deserialize, Serialize};

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

    /// Serialised like [`RegistryStore::update`]: completes the audit records of a
    /// write a crash interrupted, without changing the registry. Every update does
    /// this first; a command that ends up writing nothing calls it. A no-op where the
    /// records are written in the registry's own transaction (PostgreSQL).
    fn complete_audit(&self) -> Result<()> {
        Ok(())
    }
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

/// The top-level key of `registry.json` that carries the audit records of the write
/// that produced the file (see [`FileRegistryStore`]). Readers of the spec's schema
/// (`current_best`, `models`) ignore it; [`FileRegistryStore::load`] strips it.
pub const AUDIT_JOURNAL_KEY: &str = "audit_journal";

/// The audit records of the last registry write, kept in `registry.json` itself so
/// that the file and its audit lines are committed by one atomic rename.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Journal {
    /// Length in bytes of the audit log before these records were appended: they are
    /// in the log when the bytes from this offset start with their lines.
    log_offset: u64,
    /// The records, in the order they are appended.
    records: Vec<AuditRecord>,
}

/// `registry.json` as written: the registry, then the journal of the write.
#[derive(Serialize)]
struct OnDisk<'a> {
    #[serde(flatten)]
    registry: &'a RegistryFile,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_journal: Option<&'a Journal>,
}

/// The embedded registry: `artifacts/cf/registry.json` written atomically under an
/// exclusive lock on `registry.json.lock`, and one JSON line per operation in
/// `logs/registry_audit.log`.
///
/// **The file and its audit lines are crash-consistent.** Two files cannot be
/// written by one atomic step, so each write of `registry.json` carries the audit
/// records of that write under the top-level key `audit_journal`
/// ([`AUDIT_JOURNAL_KEY`]: `{"log_offset": <bytes of the log before them>,
/// "records": [...]}`), and the rename of `registry.json` commits the change and its
/// records together. An update, under the lock:
/// 1. completes the previous write's records if the log lacks them (a writer killed
///    between its rename and its append), or their missing tail (a torn append);
/// 2. applies the change and writes `registry.json` with the new journal (the commit
///    point);
/// 3. appends the records to the log.
///
/// The journal stays in the file until the next write replaces it. A write killed
/// before step 2 changed nothing and left no line; one killed after it is completed
/// by the next writer (every writer of this store: updates, `import`,
/// `import_audit`, `archive_audit_before`, `complete_audit`). Readers never write:
/// [`RegistryStore::audit`] returns the log with the journal's missing records
/// merged in memory, so a reader sees the repaired trail even before the next
/// writer repairs the file. Whether the records are in the log is decided by bytes,
/// not by content: from `log_offset` the log must start with their exact lines
/// (identical records written twice in the same microsecond are still told apart).
/// When the log was changed behind the journal (truncated or edited by hand), the
/// records count as present if the log ends with them, otherwise they are appended
/// again with a warning. [`RegistryStore::complete_audit`] repairs without writing
/// the registry, for jobs that end up changing nothing. Readers take a shared lock on
/// `registry.json.lock` when it exists (never creating it), so they never see the
/// log half-way through a writer's repair.
#[derive(Debug, Clone)]
pub struct FileRegistryStore {
    path: PathBuf,
    lock_path: PathBuf,
    audit_path: PathBuf,
    /// Tests: stop an update at this step as if the process were killed there.
    #[cfg(test)]
    crash: Option<Crash>,
}

/// Where a test stops an update (the disk is left as a kill there leaves it).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Crash {
    /// After the change is computed, before `registry.json` is renamed into place
    /// (a temporary file of the atomic write is left behind).
    BeforeWrite,
    /// After `registry.json` is written, before any audit byte is appended.
    AfterWrite,
    /// After the first `n` bytes of the audit lines are appended.
    TornAppend(usize),
}

struct Locked {
    file: File,
}

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// The audit lines of `records`, as appended to the log.
fn lines(records: &[AuditRecord], log: &Path) -> Result<Vec<u8>> {
    let mut text = Vec::new();
    for record in records {
        let line = serde_json::to_vec(record).map_err(|e| Error::Corrupt {
            path: log.to_path_buf(),
            message: e.to_string(),
        })?;
        text.extend_from_slice(&line);
        text.push(b'\n');
    }
    Ok(text)
}

/// What of `lines` (written to the log at `offset`) the log `log` still lacks: `None`
/// when they are all there; else the bytes to append so the log holds them once.
fn missing<'a>(log: &[u8], offset: u64, lines: &'a [u8]) -> Option<&'a [u8]> {
    if let Some(after) = usize::try_from(offset).ok().and_then(|o| log.get(o..)) {
        if after.starts_with(lines) {
            return None;
        }
        if lines.starts_with(after) {
            // Not appended yet (`after` empty), or torn after its first bytes.
            return Some(&lines[after.len()..]);
        }
    }
    // The log was changed behind the journal (truncated, edited, replaced).
    if log.ends_with(lines) {
        return None;
    }
    Some(lines)
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
            #[cfg(test)]
            crash: None,
        }
    }

    /// Tests: this store, stopping its next updates at `crash`.
    #[cfg(test)]
    pub(crate) fn crashing_at(mut self, crash: Crash) -> Self {
        self.crash = Some(crash);
        self
    }

    #[cfg(test)]
    fn crash_here(&self, at: Crash) -> Result<()> {
        if self.crash == Some(at) {
            return Err(Error::io(
                "test crash in",
                &self.path,
                std::io::Error::other(format!("{at:?}")),
            ));
        }
        Ok(())
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

    /// A shared lock for a reader, when the lock file exists (no writer ever ran
    /// otherwise); never creates anything.
    fn lock_shared(&self) -> Option<Locked> {
        let file = File::open(&self.lock_path).ok()?;
        file.lock_shared().ok()?;
        Some(Locked { file })
    }

    /// `registry.json` and the journal of its last write (none in a file written
    /// before journals, or by `import`).
    fn load_raw(&self) -> Result<(RegistryFile, Option<Journal>)> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((RegistryFile::default(), None));
            }
            Err(e) => return Err(Error::io("cannot read", &self.path, e)),
        };
        let corrupt = |message: String| Error::Corrupt {
            path: self.path.clone(),
            message,
        };
        let mut reg: RegistryFile =
            serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
        let journal = reg
            .extra
            .remove(AUDIT_JOURNAL_KEY)
            .map(|v| {
                serde_json::from_value::<Journal>(v)
                    .map_err(|e| corrupt(format!("key {AUDIT_JOURNAL_KEY}: {e}")))
            })
            .transpose()?;
        check_consistent(&reg, &self.path)?;
        Ok((reg, journal))
    }

    fn write(&self, reg: &RegistryFile, journal: Option<&Journal>) -> Result<()> {
        let json = serde_json::to_vec_pretty(&OnDisk {
            registry: reg,
            audit_journal: journal,
        })
        .map_err(|e| Error::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&self.path, &json)?;
        Ok(())
    }

    /// The audit log's bytes (empty when absent).
    fn read_log(&self) -> Result<Vec<u8>> {
        match std::fs::read(&self.audit_path) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io("cannot read", &self.audit_path, e)),
        }
    }

    /// The bytes the log lacks of `journal` (empty when it holds them all).
    fn journal_missing(&self, journal: &Journal, log: &[u8]) -> Result<Vec<u8>> {
        let text = lines(&journal.records, &self.audit_path)?;
        let missing = missing(log, journal.log_offset, &text);
        if missing.is_some_and(|m| m.len() == text.len()) && log.len() as u64 != journal.log_offset
        {
            tracing::warn!(
                path = %self.audit_path.display(),
                records = journal.records.len(),
                "the registry audit log was changed behind the registry's journal: its last records are appended again"
            );
        }
        Ok(missing.map(<[u8]>::to_vec).unwrap_or_default())
    }

    /// Under the lock: appends what the log lacks of the last write's records.
    fn repair(&self, journal: Option<&Journal>) -> Result<()> {
        let Some(journal) = journal else {
            return Ok(());
        };
        let missing = self.journal_missing(journal, &self.read_log()?)?;
        if !missing.is_empty() {
            tracing::warn!(
                path = %self.audit_path.display(),
                bytes = missing.len(),
                "completing the registry audit lines of an interrupted write"
            );
            self.append(&missing)?;
        }
        Ok(())
    }

    fn append(&self, bytes: &[u8]) -> Result<()> {
        recops_core::ensure_parent(&self.audit_path)?;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.audit_path)
            .map_err(|e| Error::io("cannot open", &self.audit_path, e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io("cannot append to", &self.audit_path, e))
    }

    /// The log's current length in bytes (0 when absent).
    fn log_len(&self) -> Result<u64> {
        match std::fs::metadata(&self.audit_path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::io("cannot read", &self.audit_path, e)),
        }
    }

    /// The previous write's journal, for a writer that must complete it first. A
    /// registry that does not parse has none readable: `import` replaces it anyway.
    fn journal_lenient(&self) -> Option<Journal> {
        self.load_raw().ok().and_then(|(_, j)| j)
    }
}

impl RegistryStore for FileRegistryStore {
    fn load(&self) -> Result<RegistryFile> {
        Ok(self.load_raw()?.0)
    }

    fn update(
        &self,
        change: &mut dyn FnMut(&mut RegistryFile) -> Result<Vec<AuditRecord>>,
    ) -> Result<()> {
        let _guard = self.lock()?;
        let (mut reg, journal) = self.load_raw()?;
        self.repair(journal.as_ref())?;
        let records = change(&mut reg)?;
        let text = lines(&records, &self.audit_path)?;
        let journal = Journal {
            log_offset: self.log_len()?,
            records,
        };
        #[cfg(test)]
        if self.crash == Some(Crash::BeforeWrite) {
            // The atomic write's temporary file, complete but not renamed.
            let tmp = recops_core::temp_path_for(&self.path);
            std::fs::write(&tmp, b"{}").map_err(|e| Error::io("cannot write", &tmp, e))?;
            return self.crash_here(Crash::BeforeWrite);
        }
        self.write(&reg, Some(&journal))?;
        written_point(&journal.records);
        #[cfg(test)]
        {
            self.crash_here(Crash::AfterWrite)?;
            if let Some(Crash::TornAppend(n)) = self.crash {
                self.append(&text[..n.min(text.len())])?;
                return self.crash_here(Crash::TornAppend(n));
            }
        }
        self.append(&text)
    }

    fn audit(&self) -> Result<Vec<AuditRecord>> {
        let _shared = self.lock_shared();
        // The journal first: a writer that replaces it after this read has completed
        // it in the log read below.
        let journal = match self.load_raw() {
            Ok((_, j)) => j,
            Err(e) => {
                tracing::debug!(error = %recops_core::error_chain(&e), "registry unreadable: the audit log is read without its journal");
                None
            }
        };
        let mut log = self.read_log()?;
        if let Some(j) = &journal {
            let missing = self.journal_missing(j, &log)?;
            log.extend_from_slice(&missing);
        }
        let text = String::from_utf8_lossy(&log);
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
    /// Unreadable lines stay. The last write's records are completed first; when lines
    /// move, the journal is dropped from `registry.json` before the log is rewritten
    /// (its offset would no longer hold).
    fn archive_audit_before(&self, cutoff: DateTime<Utc>, archive: &Path) -> Result<usize> {
        let _guard = self.lock()?;
        let loaded = self.load_raw().ok();
        if let Some((_, journal)) = &loaded {
            self.repair(journal.as_ref())?;
        }
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
        if let Some((reg, Some(_))) = &loaded {
            self.write(reg, None)?;
        }
        append_archive(archive, old.as_bytes())?;
        recops_core::write_atomic(path, keep.as_bytes())?;
        Ok(moved)
    }

    /// Completes the replaced registry's last records, then writes `file` without a
    /// journal.
    fn import(&self, file: &RegistryFile) -> Result<()> {
        let _guard = self.lock()?;
        self.repair(self.journal_lenient().as_ref())?;
        self.write(file, None)
    }

    fn import_audit(&self, records: &[AuditRecord]) -> Result<()> {
        let _guard = self.lock()?;
        self.repair(self.journal_lenient().as_ref())?;
        self.append(&lines(records, &self.audit_path)?)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn complete_audit(&self) -> Result<()> {
        if !self.path.exists() {
            return Ok(());
        }
        let _guard = self.lock()?;
        let (_, journal) = self.load_raw()?;
        self.repair(journal.as_ref())
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use recops_core::{FixedClock, ModelId};
    use serde_json::Value;

    use super::*;
    use crate::{NewModel, Registry};

    fn model(home: &Home, id: &str, ndcg: f64) -> NewModel {
        let model_id: ModelId = id.parse().unwrap();
        std::fs::create_dir_all(home.model_dir(&model_id)).unwrap();
        NewModel {
            model_id,
            model_type: recops_core::ModelType::Als,
            metrics: [("ndcg@10".to_owned(), ndcg)].into(),
            baseline: Default::default(),
            data_version: "v1".into(),
        }
    }

    /// A home whose registry went through a few operations, all on one fixed clock
    /// (so every home built the same way writes the same records).
    struct Case {
        _dir: tempfile::TempDir,
        home: Home,
        clock: FixedClock,
    }

    impl Case {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let home = Home::new(dir.path());
            let clock = FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 10, 30, 0).unwrap());
            let case = Case {
                _dir: dir,
                home,
                clock,
            };
            let reg = case.registry(None);
            reg.register(&model(&case.home, "als_20250115_103000", 0.1), "first")
                .unwrap();
            reg.promote(None, "best").unwrap();
            case
        }

        fn registry(&self, crash: Option<Crash>) -> Registry {
            let mut store = FileRegistryStore::new(&self.home);
            if let Some(c) = crash {
                store = store.crashing_at(c);
            }
            Registry::with_store(&self.home, Arc::new(store), self.clock.shared())
        }

        /// The operation a test interrupts: two records in one write.
        fn step(&self, reg: &Registry) -> Result<()> {
            let id: ModelId = "als_20250115_103100".parse().unwrap();
            reg.register_with_champion(&model(&self.home, id.as_str(), 0.2), "beats", &id, "better")
                .map(|_| ())
        }

        /// The write after it.
        fn next(&self, reg: &Registry) {
            reg.archive(&"als_20250115_103000".parse().unwrap(), "old")
                .unwrap();
        }

        fn log(&self) -> Vec<u8> {
            std::fs::read(self.home.registry_audit_log()).unwrap_or_default()
        }

        /// Every line of the log file as a record (a torn line fails).
        fn log_records(&self) -> Vec<AuditRecord> {
            String::from_utf8(self.log())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    #[test]
    fn missing_is_decided_by_the_bytes_at_the_offset() {
        let lines = b"{\"a\":1}\n{\"b\":2}\n";
        // Appended (and more lines after them).
        assert_eq!(missing(b"x\n{\"a\":1}\n{\"b\":2}\n", 2, lines), None);
        assert_eq!(missing(b"x\n{\"a\":1}\n{\"b\":2}\ny\n", 2, lines), None);
        // Not appended; torn after some bytes.
        assert_eq!(missing(b"x\n", 2, lines), Some(&lines[..]));
        assert_eq!(
            missing(b"x\n{\"a\":1}\n{\"b", 2, lines),
            Some(&b"\":2}\n"[..])
        );
        // The same lines earlier in the log do not count: they are other records.
        assert_eq!(
            missing(b"{\"a\":1}\n{\"b\":2}\n", 16, lines),
            Some(&lines[..])
        );
        // The log was changed behind the journal: present if it ends with them.
        assert_eq!(missing(b"{\"a\":1}\n{\"b\":2}\n", 90, lines), None);
        assert_eq!(missing(b"other\n", 90, lines), Some(&lines[..]));
        assert_eq!(missing(b"zzzzzzz\n", 2, lines), Some(&lines[..]));
    }

    /// An update killed at each step: a reader right after it sees the registry and
    /// the audit of before or after the step, never one without the other, and does
    /// not write; the next writer completes the log, which then holds each record of
    /// an uninterrupted run exactly once and no record of a change that did not land.
    #[test]
    fn an_update_killed_at_any_step_leaves_registry_and_audit_in_agreement() {
        // The uninterrupted runs: with the step, and without it (killed before).
        let with = Case::new();
        let before_registry = with.registry(None).load().unwrap();
        let before_audit = with.registry(None).audit().unwrap();
        with.step(&with.registry(None)).unwrap();
        let after_registry = with.registry(None).load().unwrap();
        let after_audit = with.registry(None).audit().unwrap();
        assert_eq!(after_audit.len(), before_audit.len() + 2);
        with.next(&with.registry(None));
        let without = Case::new();
        without.next(&without.registry(None));

        let step_lines = lines(&after_audit[before_audit.len()..], Path::new("log")).unwrap();
        let first_line = step_lines.iter().position(|&b| b == b'\n').unwrap() + 1;
        let crashes = [
            Crash::BeforeWrite,
            Crash::AfterWrite,
            Crash::TornAppend(1),
            Crash::TornAppend(first_line - 1),
            Crash::TornAppend(first_line),
            Crash::TornAppend(first_line + 5),
            Crash::TornAppend(step_lines.len() - 1),
        ];
        for crash in crashes {
            let case = Case::new();
            assert!(case.step(&case.registry(Some(crash))).is_err(), "{crash:?}");
            let registry_bytes = std::fs::read(case.home.registry()).unwrap();
            let log_bytes = case.log();

            // A reader (a fresh store, as another process would open it).
            let reader = case.registry(None);
            let (registry, audit) = (reader.load().unwrap(), reader.audit().unwrap());
            if crash == Crash::BeforeWrite {
                assert_eq!(registry, before_registry, "{crash:?}");
                assert_eq!(audit, before_audit, "{crash:?}");
            } else {
                assert_eq!(registry, after_registry, "{crash:?}");
                assert_eq!(audit, after_audit, "{crash:?}");
            }
            assert_eq!(case.log(), log_bytes, "{crash:?}: a reader wrote the log");
            assert_eq!(
                std::fs::read(case.home.registry()).unwrap(),
                registry_bytes,
                "{crash:?}: a reader wrote the registry"
            );
            // A reader of the spec's schema sees the registry's keys.
            let raw: Value = serde_json::from_slice(&registry_bytes).unwrap();
            assert!(raw["models"].is_object() && raw.get("current_best").is_some());

            // The next writer completes the log first.
            case.next(&case.registry(None));
            let expected = if crash == Crash::BeforeWrite {
                &without
            } else {
                &with
            };
            assert_eq!(case.log_records(), expected.log_records(), "{crash:?}");
            assert_eq!(case.log(), expected.log(), "{crash:?}");
            assert_eq!(
                case.registry(None).load().unwrap(),
                expected.registry(None).load().unwrap(),
                "{crash:?}"
            );
        }
    }

    #[test]
    fn identical_records_written_twice_are_both_kept() {
        let case = Case::new();
        // The same promotion twice in the same instant: byte-identical lines.
        case.registry(None).promote(None, "best").unwrap();
        let n = case.registry(None).audit().unwrap().len();
        assert!(
            case.registry(Some(Crash::AfterWrite))
                .promote(None, "best")
                .is_err()
        );
        let audit = case.registry(None).audit().unwrap();
        assert_eq!(audit.len(), n + 1);
        assert_eq!(audit[n], audit[n - 1]);
        case.next(&case.registry(None));
        assert_eq!(case.log_records().len(), n + 2);
    }

    #[test]
    fn every_writer_completes_the_log_first() {
        let reference = Case::new();
        reference.step(&reference.registry(None)).unwrap();
        let expected = reference.log_records();

        // `complete_audit` (a command that ends up writing nothing).
        let case = Case::new();
        assert!(case.step(&case.registry(Some(Crash::AfterWrite))).is_err());
        let registry_bytes = std::fs::read(case.home.registry()).unwrap();
        case.registry(None).complete_audit().unwrap();
        assert_eq!(case.log_records(), expected);
        assert_eq!(std::fs::read(case.home.registry()).unwrap(), registry_bytes);

        // `import_audit` (storage migrate): the missing records, then the imported.
        let case = Case::new();
        assert!(case.step(&case.registry(Some(Crash::AfterWrite))).is_err());
        let store = FileRegistryStore::new(&case.home);
        store.import_audit(&expected[..1]).unwrap();
        let mut want = expected.clone();
        want.push(expected[0].clone());
        assert_eq!(case.log_records(), want);

        // `import` replaces the registry: the replaced one's records land first, and
        // the imported registry carries no journal.
        let case = Case::new();
        assert!(
            case.step(&case.registry(Some(Crash::TornAppend(9))))
                .is_err()
        );
        let store = FileRegistryStore::new(&case.home);
        store.import(&RegistryFile::default()).unwrap();
        assert_eq!(case.log_records(), expected);
        let raw: Value =
            serde_json::from_slice(&std::fs::read(case.home.registry()).unwrap()).unwrap();
        assert!(raw.get(AUDIT_JOURNAL_KEY).is_none(), "{raw}");

        // The retention job's archive: completes the records, then drops the journal
        // (the log it rewrites no longer matches its offset); later writes go on.
        let case = Case::new();
        assert!(case.step(&case.registry(Some(Crash::AfterWrite))).is_err());
        let store = FileRegistryStore::new(&case.home);
        let archive = case.home.root().join("logs/archive/a.log");
        // Nothing to move: the log is completed, the registry left as it is.
        let registry_bytes = std::fs::read(case.home.registry()).unwrap();
        let early = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(store.archive_audit_before(early, &archive).unwrap(), 0);
        assert_eq!(case.log_records(), expected);
        assert_eq!(std::fs::read(case.home.registry()).unwrap(), registry_bytes);
        let cutoff = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(store.archive_audit_before(cutoff, &archive).unwrap(), 4);
        assert!(case.log_records().is_empty());
        let archived = std::fs::read_to_string(&archive).unwrap();
        let archived: Vec<AuditRecord> = archived
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(archived, expected);
        let raw: Value =
            serde_json::from_slice(&std::fs::read(case.home.registry()).unwrap()).unwrap();
        assert!(raw.get(AUDIT_JOURNAL_KEY).is_none(), "{raw}");
        case.next(&case.registry(None));
        assert_eq!(case.log_records().len(), 1);
        assert_eq!(case.registry(None).audit().unwrap().len(), 1);
    }

    #[test]
    fn the_journal_is_kept_out_of_the_registry_and_a_bad_one_is_named() {
        let case = Case::new();
        let raw: Value =
            serde_json::from_slice(&std::fs::read(case.home.registry()).unwrap()).unwrap();
        assert_eq!(raw[AUDIT_JOURNAL_KEY]["records"][0]["operation"], "promote");
        let reg = case.registry(None).load().unwrap();
        assert!(reg.extra.is_empty(), "{:?}", reg.extra);
        let mut bad = raw.clone();
        bad[AUDIT_JOURNAL_KEY] = serde_json::json!({"log_offset": "x"});
        std::fs::write(case.home.registry(), bad.to_string()).unwrap();
        let err = case.registry(None).load().unwrap_err().to_string();
        assert!(err.contains("key audit_journal"), "{err}");
    }
}
