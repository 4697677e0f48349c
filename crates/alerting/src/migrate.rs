//! `recops storage migrate` for the alert store: `alert_state` and `silences` copied
//! between backends with recops-tracking's [`copy_table`] (batches, progress, resume,
//! counts and checksums), like the tracking tables.

use recops_core::{Home, RecopsConfig, StorageUrl};
use recops_tracking::{Progress, Storage, TableCopy, copy_table};

use crate::error::{Error, Result};
use crate::store::{AlertStore, open_on};

/// Copies every alert state and silence of `from` missing in `to` (rows already
/// there are kept, so a re-run resumes), then verifies both tables by row count and
/// checksum.
pub fn copy_alert_store(
    from: &dyn AlertStore,
    to: &dyn AlertStore,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<TableCopy>> {
    let states = from.states()?;
    let silences = from.silences()?;
    Ok(vec![
        copy_table(
            "alert_state",
            &states,
            |chunk| to.import_states(chunk),
            || to.states(),
            progress,
        )?,
        copy_table(
            "silences",
            &silences,
            |chunk| to.import_silences(chunk),
            || to.silences(),
            progress,
        )?,
    ])
}

/// The alert step of `recops storage migrate --to URL`: copies the alert store of
/// `home`'s current backend (`RECOPS_STORAGE_URL` / `storage.url`) into `to`
/// (`embedded`: `logs/alert_state.db`) and verifies it. Copying a store onto itself
/// is refused.
pub fn migrate_alert_store(
    home: &Home,
    to: &StorageUrl,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<TableCopy>> {
    let from = RecopsConfig::storage(home)?;
    if &from == to {
        return Err(Error::InvalidInput {
            what: "--to",
            message: format!("{to} is already the store of this home; nothing to copy"),
        });
    }
    let source = open_on(home, Storage::from_url(&from)?)?;
    let dest = open_on(home, Storage::from_url(to)?)?;
    let tables = copy_alert_store(source.as_ref(), dest.as_ref(), progress)?;
    tracing::info!(from = %from, to = %to, "alert store migrated and verified");
    Ok(tables)
}
