//! `data_version`: a content hash of the processed interactions, and the
//! `data/processed/data_version.json` manifest that ties the derived outputs to it.

use std::path::Path;

use arrow_array::Array;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use crate::error::{Error, Result};
use crate::table::Interactions;

/// The prefix of every data version (the hash function used).
pub const DATA_VERSION_PREFIX: &str = "xxh3-128:";

/// The data version of `table`: a 128-bit xxh3 hash of its rows in order (every
/// column, comments and nulls included), as `xxh3-128:<32 hex digits>`. It depends
/// only on the values, not on how the table was built or stored, so later jobs can
/// tell whether the data changed. Needs comments (a table read without them hashes
/// as if every comment were missing).
///
/// ```
/// use recops_data::{Interactions, data_version};
/// let t = Interactions::default();
/// assert!(data_version(&t).starts_with("xxh3-128:"));
/// ```
pub fn data_version(table: &Interactions) -> String {
    let (ids, (rest, comments)) = rayon::join(
        || (hash_i64(&table.user_id), hash_i64(&table.product_id)),
        || {
            rayon::join(
                || {
                    (
                        xxh3_128(&table.rating),
                        hash_i64(&table.cmt_date),
                        hash_f32(&table.comment_quality),
                    )
                },
                || hash_comments(table),
            )
        },
    );
    let mut h = Xxh3::new();
    h.update(b"recops interactions v1");
    h.update(&(table.len() as u64).to_le_bytes());
    for part in [ids.0, ids.1, rest.0, rest.1, rest.2, comments] {
        h.update(&part.to_le_bytes());
    }
    format!("{DATA_VERSION_PREFIX}{:032x}", h.digest128())
}

/// Hashes a file's bytes the same way (`xxh3-128:<hex>`), for staging file identities.
pub fn content_hash(bytes: &[u8]) -> String {
    format!("{DATA_VERSION_PREFIX}{:032x}", xxh3_128(bytes))
}

fn hash_i64(v: &[i64]) -> u128 {
    let mut h = Xxh3::new();
    let mut buf = Vec::with_capacity(8 * 4096);
    for chunk in v.chunks(4096) {
        buf.clear();
        for x in chunk {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        h.update(&buf);
    }
    h.digest128()
}

fn hash_f32(v: &[f32]) -> u128 {
    let mut h = Xxh3::new();
    let mut buf = Vec::with_capacity(4 * 4096);
    for chunk in v.chunks(4096) {
        buf.clear();
        for x in chunk {
            buf.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        h.update(&buf);
    }
    h.digest128()
}

/// Per row: a validity byte and the length, then all the text bytes.
fn hash_comments(table: &Interactions) -> u128 {
    let mut h = Xxh3::new();
    let Some(c) = &table.comment else {
        for _ in 0..table.len() {
            h.update(&[0u8; 5]);
        }
        return h.digest128();
    };
    let offsets = c.value_offsets();
    let mut meta = Vec::with_capacity(5 * 4096);
    for start in (0..c.len()).step_by(4096) {
        meta.clear();
        for i in start..(start + 4096).min(c.len()) {
            if c.is_null(i) {
                meta.extend_from_slice(&[0u8; 5]);
            } else {
                meta.push(1);
                let len = (offsets[i + 1] - offsets[i]) as u32;
                meta.extend_from_slice(&len.to_le_bytes());
            }
        }
        h.update(&meta);
    }
    // Text of the non-null rows, contiguous in the values buffer.
    for i in 0..c.len() {
        if !c.is_null(i) {
            h.update(c.value(i).as_bytes());
        }
    }
    h.digest128()
}

/// `data/processed/data_version.json`: written last by a refresh, it says which data
/// version the derived outputs (`X_train_confidence.npz`, `user_item_mappings.json`,
/// `user_metadata.parquet`) were built from. When it is missing or names another
/// version than `interactions.parquet`, the derived outputs are stale (a refresh was
/// interrupted) and the next refresh rebuilds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataManifest {
    /// The data version of `interactions.parquet` the outputs were built from.
    pub data_version: String,
    /// When the outputs were written (RFC 3339).
    pub created_at: String,
    /// Rows of `interactions.parquet`.
    pub interactions: usize,
    /// Users (matrix rows).
    pub users: usize,
    /// Items (matrix columns).
    pub items: usize,
    /// Cells of the training part (non-zeros of `X_train_confidence.npz`).
    pub train_interactions: usize,
    /// Held-out cells.
    pub test_interactions: usize,
    /// alpha of c = 1 + alpha * rating used for `X_train_confidence.npz`.
    pub confidence_alpha: f32,
}

impl DataManifest {
    /// Reads the manifest; `Ok(None)` when there is none.
    pub fn read(path: &Path) -> Result<Option<DataManifest>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::invalid("data version manifest", path, e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("cannot read", path, e)),
        }
    }

    /// Writes the manifest atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::invalid("data version manifest", path, e.to_string()))?;
        text.push(b'\n');
        recops_core::write_atomic(path, &text)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::StringArray;

    fn table(comments: Vec<Option<&str>>) -> Interactions {
        let n = comments.len();
        Interactions {
            user_id: (0..n as i64).collect(),
            product_id: vec![7; n],
            rating: vec![5; n],
            comment: Some(StringArray::from(comments)),
            cmt_date: vec![0; n],
            comment_quality: vec![0.5; n],
        }
    }

    #[test]
    fn version_depends_on_values_only() {
        let a = table(vec![Some("ab"), None, Some("c")]);
        let v = data_version(&a);
        assert!(v.starts_with(DATA_VERSION_PREFIX) && v.len() == DATA_VERSION_PREFIX.len() + 32);
        // Same values built another way (filtered from a larger table): same version.
        let big = table(vec![Some("ab"), None, Some("zz"), Some("c")]);
        let mut f = big.filter(&[true, true, false, true]);
        f.user_id = vec![0, 1, 2];
        assert_eq!(data_version(&f), v);
        // Any change changes it: text moved between rows, null vs empty, a rating.
        assert_ne!(data_version(&table(vec![Some("a"), None, Some("bc")])), v);
        assert_ne!(
            data_version(&table(vec![Some("ab"), Some(""), Some("c")])),
            v
        );
        let mut r = a.clone();
        r.rating[2] = 4;
        assert_ne!(data_version(&r), v);
        let mut d = a.clone();
        d.cmt_date[0] = 1;
        assert_ne!(data_version(&d), v);
    }

    #[test]
    fn manifest_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data_version.json");
        assert_eq!(DataManifest::read(&path).unwrap(), None);
        let m = DataManifest {
            data_version: "xxh3-128:00".into(),
            created_at: "2025-01-15T02:00:00.000000+00:00".into(),
            interactions: 10,
            users: 2,
            items: 3,
            train_interactions: 8,
            test_interactions: 1,
            confidence_alpha: 10.0,
        };
        m.write(&path).unwrap();
        assert_eq!(DataManifest::read(&path).unwrap(), Some(m));
        std::fs::write(&path, "{").unwrap();
        assert!(DataManifest::read(&path).is_err());
    }
}
