//! `recops storage migrate` for the registry (with its audit trail and the deployed
//! record) and the deployment history (with the rollback intent's table left
//! empty): [`migrate_records`].

use recops_core::{Home, StorageUrl};
use recops_tracking::{Progress, TableCopy};
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};

/// Rows appended per write.
const BATCH: usize = 500;

fn checksum<T: Serialize>(rows: &[T]) -> String {
    let mut h = Xxh3::new();
    for r in rows {
        h.update(serde_json::to_string(r).unwrap_or_default().as_bytes());
        h.update(b"\n");
    }
    format!("{:016x}", h.digest())
}

fn verified(t: TableCopy) -> Result<TableCopy> {
    if t.source_rows != t.destination_rows || t.source_checksum != t.destination_checksum {
        return Err(Error::Migration {
            table: t.table,
            message: format!(
                "verification failed: {} source rows, {} in the destination, checksums {} and {}",
                t.source_rows, t.destination_rows, t.source_checksum, t.destination_checksum
            ),
        });
    }
    Ok(t)
}

/// Appends the part of `source` the destination lacks: the destination must hold a
/// prefix of `source` (nothing, or an interrupted earlier copy), else nothing is
/// written. Returns (copied, already present).
fn append_missing<T: PartialEq + Clone>(
    table: &'static str,
    source: &[T],
    dest: &[T],
    append: &mut dyn FnMut(&[T]) -> Result<()>,
    progress: &mut dyn FnMut(Progress),
) -> Result<(usize, usize)> {
    if dest.len() > source.len() || source[..dest.len()] != *dest {
        return Err(Error::Migration {
            table,
            message: format!(
                "the destination already holds {} rows that are not a copy of the source's first ones; \
                 nothing was written (empty it or pick another database)",
                dest.len()
            ),
        });
    }
    let missing = &source[dest.len()..];
    for (i, chunk) in missing.chunks(BATCH).enumerate() {
        append(chunk)?;
        progress(Progress {
            table,
            done: dest.len() + (i * BATCH + chunk.len()).min(missing.len()),
            total: source.len(),
        });
    }
    Ok((missing.len(), dest.len()))
}

/// Copies the registry (models, `current_best`, the deployed record, unknown fields),
/// its audit trail and the deployment history of `home` from the store `from` names
/// to the one `to` names, then verifies each by row count and xxh3 checksum
/// (`registry_models`, `registry_audit`, `deployment_history`).
///
/// Resumable: the registry is written in one step (a transaction, or an atomic file
/// replace), so it is either absent or whole; the audit and the history are appended
/// after whatever prefix of them an interrupted run left. A destination holding
/// anything else is refused before anything is written, so nothing is lost.
pub fn migrate_records(
    home: &Home,
    from: &StorageUrl,
    to: &StorageUrl,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<TableCopy>> {
    let src = recops_registry::open_store(home, from, true)?;
    let dst = recops_registry::open_store(home, to, false)?;
    let mut tables = Vec::new();

    // The registry, in one step.
    let source = src.load()?;
    let dest = dst.load()?;
    let empty = dest.models.is_empty() && dest.current_best.is_none() && dest.deployed.is_none();
    let (copied, present) = if dest == source {
        (0, source.models.len())
    } else if empty {
        dst.import(&source)?;
        (source.models.len(), 0)
    } else {
        return Err(Error::Migration {
            table: "registry_models",
            message: format!(
                "the destination already holds another registry ({} models); nothing was written \
                 (move it aside or pick another database)",
                dest.models.len()
            ),
        });
    };
    progress(Progress {
        table: "registry_models",
        done: source.models.len(),
        total: source.models.len(),
    });
    let after = dst.load()?;
    tables.push(verified(TableCopy {
        table: "registry_models",
        source_rows: source.models.len(),
        copied,
        already_present: present,
        destination_rows: after.models.len(),
        source_checksum: checksum(std::slice::from_ref(&source)),
        destination_checksum: checksum(std::slice::from_ref(&after)),
    })?);

    // The audit trail, appended.
    let source = src.audit()?;
    let dest = dst.audit()?;
    let (copied, present) = append_missing(
        "registry_audit",
        &source,
        &dest,
        &mut |chunk| Ok(dst.import_audit(chunk)?),
        progress,
    )?;
    let after = dst.audit()?;
    tables.push(verified(TableCopy {
        table: "registry_audit",
        source_rows: source.len(),
        copied,
        already_present: present,
        destination_rows: after.len(),
        source_checksum: checksum(&source),
        destination_checksum: checksum(&after),
    })?);

    // The deployment history, appended.
    let src = crate::store::open_store(home, from, true)?;
    let dst = crate::store::open_store(home, to, false)?;
    let source = src.load()?.deployments;
    let dest = dst.load()?.deployments;
    let (copied, present) = append_missing(
        "deployment_history",
        &source,
        &dest,
        &mut |chunk| dst.append(chunk),
        progress,
    )?;
    let after = dst.load()?.deployments;
    tables.push(verified(TableCopy {
        table: "deployment_history",
        source_rows: source.len(),
        copied,
        already_present: present,
        destination_rows: after.len(),
        source_checksum: checksum(&source),
        destination_checksum: checksum(&after),
    })?);
    tracing::info!(from = %from, to = %to, "registry and deployment history migrated and verified");
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{DeploymentAction, DeploymentRecord, DeploymentStatus};
    use crate::store::DeploymentLog;
    use recops_registry::{DeployedBy, NewModel, Registry};

    fn filled_home() -> (tempfile::TempDir, Home) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let reg = Registry::open(&home);
        for (i, ndcg) in [0.1, 0.3, 0.2].iter().enumerate() {
            let id: recops_core::ModelId = format!("als_{i}").parse().unwrap();
            let d = home.model_dir(&id);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("model.json"), format!("{{\"i\": {i}}}")).unwrap();
            reg.register(
                &NewModel {
                    model_id: id,
                    model_type: recops_core::ModelType::Als,
                    // Not exactly representable: must survive both copies unchanged.
                    metrics: [("ndcg@10".to_owned(), ndcg / 3.0)].into(),
                    baseline: Default::default(),
                    data_version: "v1".into(),
                },
                "test",
            )
            .unwrap();
        }
        reg.promote(None, "best").unwrap();
        reg.record_deployment(&"als_1".parse().unwrap(), DeployedBy::Operator, "x")
            .unwrap();
        let log = DeploymentLog::open(&home);
        for i in 0..7 {
            log.append(DeploymentRecord {
                timestamp: format!("2025-01-0{}T00:00:00.000000+00:00", i + 1),
                model_id: format!("als_{}", i % 3).parse().unwrap(),
                previous_model_id: None,
                status: DeploymentStatus::Success,
                verification: None,
                rollback_triggered: false,
                rollback_status: None,
                rollback_verification: None,
                action: DeploymentAction::Deploy,
                reason: None,
                duration_seconds: 1.0 / f64::from(i + 3),
            })
            .unwrap();
        }
        (dir, home)
    }

    fn by_table(tables: &[TableCopy]) -> Vec<(&'static str, usize, usize, usize)> {
        tables
            .iter()
            .map(|t| (t.table, t.source_rows, t.copied, t.already_present))
            .collect()
    }

    #[test]
    fn files_to_postgres_and_back_resumes_and_refuses_a_foreign_destination() {
        let Some(pg) = recops_testkit::PgCluster::shared() else {
            return;
        };
        let (_a, home) = filled_home();
        let pg_url = StorageUrl::Postgres(pg.fresh_database());
        let files = StorageUrl::Embedded;
        // An interrupted earlier run left the first 2 audit records and 3 history
        // records behind: they are kept, the rest is appended.
        let src_audit = Registry::open(&home).audit().unwrap();
        let pg_reg = recops_registry::open_store(&home, &pg_url, false).unwrap();
        pg_reg.import_audit(&src_audit[..2]).unwrap();
        let src_hist = DeploymentLog::open(&home).load().unwrap().deployments;
        crate::store::open_store(&home, &pg_url, false)
            .unwrap()
            .append(&src_hist[..3])
            .unwrap();
        let mut seen = Vec::new();
        let tables = migrate_records(&home, &files, &pg_url, &mut |p| seen.push(p)).unwrap();
        let audit_n = src_audit.len();
        assert_eq!(
            by_table(&tables),
            [
                ("registry_models", 3, 3, 0),
                ("registry_audit", audit_n, audit_n - 2, 2),
                ("deployment_history", 7, 4, 3),
            ]
        );
        assert!(
            seen.iter()
                .any(|p| p.table == "deployment_history" && p.done == 7)
        );
        // Again: nothing to copy, still verified.
        let again = migrate_records(&home, &files, &pg_url, &mut |_| {}).unwrap();
        assert!(again.iter().all(|t| t.copied == 0), "{again:?}");

        // Back into an empty home: the same registry, audit and history.
        let back_dir = tempfile::tempdir().unwrap();
        let back = Home::new(back_dir.path());
        migrate_records(&back, &pg_url, &files, &mut |_| {}).unwrap();
        assert_eq!(
            Registry::open(&back).load().unwrap(),
            Registry::open(&home).load().unwrap()
        );
        assert_eq!(Registry::open(&back).audit().unwrap(), src_audit);
        assert_eq!(
            DeploymentLog::open(&back).load().unwrap().deployments,
            src_hist
        );

        // A destination holding another registry is refused, untouched.
        let (_c, other) = filled_home();
        Registry::open(&other)
            .archive(&"als_0".parse().unwrap(), "differs")
            .unwrap();
        let before = std::fs::read(other.registry()).unwrap();
        let err = migrate_records(&other, &pg_url, &files, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("registry_models"), "{err}");
        assert_eq!(std::fs::read(other.registry()).unwrap(), before);
    }
}
