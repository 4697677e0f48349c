//! Checksums of a model's files, recorded at registration and checked by every
//! replica before it serves the model (the folder may sit on a shared mount).
//!
//! The algorithm is xxh3-128 per file: models are read in full at every load, often
//! hundreds of megabytes, and xxh3 hashes at memory speed where sha256 would add
//! seconds to each reload; what it guards against is a torn copy, a truncated file
//! or a flipped bit on the mount, not a forger (whoever can write the artifacts can
//! write the registry too). Per-file sums let the refusal name the file that differs.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use recops_core::ModelId;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};

/// The only algorithm written (and understood).
pub const CHECKSUM_ALGORITHM: &str = "xxh3-128";

/// The checksum of every file of a model folder (the `checksum` field of its entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelChecksum {
    /// `xxh3-128`.
    pub algorithm: String,
    /// Hex digest by path relative to the model folder (`/`-separated), sorted.
    pub files: BTreeMap<String, String>,
}

impl ModelChecksum {
    /// Hashes every file under `dir` (recursively), except hidden ones (names starting
    /// with `.`): those are bookkeeping, not model content, and come and go after
    /// registration (training's `.unregistered` marker, an atomic write's `.tmp`).
    pub fn of_dir(model_id: &ModelId, dir: &Path) -> Result<ModelChecksum> {
        let mut files = BTreeMap::new();
        walk(model_id, dir, dir, &mut files)?;
        Ok(ModelChecksum {
            algorithm: CHECKSUM_ALGORITHM.to_owned(),
            files,
        })
    }

    /// Checks the files of `dir` against the recorded sums: every recorded file must
    /// be readable and hash the same ([`Error::FileUnreadable`],
    /// [`Error::ChecksumMismatch`]). Files added later are not checked.
    pub fn verify(&self, model_id: &ModelId, dir: &Path) -> Result<()> {
        if self.algorithm != CHECKSUM_ALGORITHM {
            return Err(Error::ChecksumMismatch {
                model_id: model_id.clone(),
                file: format!("(all: unknown checksum algorithm {:?})", self.algorithm),
            });
        }
        for (rel, want) in &self.files {
            let safe = !rel.is_empty()
                && Path::new(rel)
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !safe {
                return Err(Error::ChecksumMismatch {
                    model_id: model_id.clone(),
                    file: format!("{rel:?} (not a path inside the model folder)"),
                });
            }
            let got = hash_file(model_id, rel, &dir.join(rel))?;
            if &got != want {
                return Err(Error::ChecksumMismatch {
                    model_id: model_id.clone(),
                    file: rel.clone(),
                });
            }
        }
        Ok(())
    }
}

fn walk(
    model_id: &ModelId,
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<String, String>,
) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("cannot list", dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| Error::io("cannot stat", &path, e))?;
        if kind.is_dir() {
            walk(model_id, root, &path, out)?;
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let sum = hash_file(model_id, &rel, &path)?;
            out.insert(rel, sum);
        }
    }
    Ok(())
}

fn hash_file(model_id: &ModelId, rel: &str, path: &Path) -> Result<String> {
    let unreadable = |source| Error::FileUnreadable {
        model_id: model_id.clone(),
        file: rel.to_owned(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(unreadable)?;
    let mut h = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(unreadable)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:032x}", h.digest128()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_missing_or_foreign_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let id: ModelId = "als_1".parse().unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("model.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("sub/w.bin"), [1u8, 2, 3]).unwrap();
        // Hidden bookkeeping (training's `.unregistered` marker) is not model content.
        std::fs::write(dir.path().join(".unregistered"), b"").unwrap();
        let sum = ModelChecksum::of_dir(&id, dir.path()).unwrap();
        assert_eq!(
            sum.files.keys().collect::<Vec<_>>(),
            ["model.json", "sub/w.bin"]
        );
        std::fs::remove_file(dir.path().join(".unregistered")).unwrap();
        sum.verify(&id, dir.path()).unwrap();
        // Files added later are not checked.
        std::fs::write(dir.path().join("extra"), b"x").unwrap();
        sum.verify(&id, dir.path()).unwrap();
        std::fs::write(dir.path().join("sub/w.bin"), [1u8, 2, 4]).unwrap();
        let err = sum.verify(&id, dir.path()).unwrap_err();
        assert!(matches!(&err, Error::ChecksumMismatch { file, .. } if file == "sub/w.bin"));
        assert!(err.to_string().contains("als_1"), "{err}");
        std::fs::remove_file(dir.path().join("sub/w.bin")).unwrap();
        let err = sum.verify(&id, dir.path()).unwrap_err();
        assert!(matches!(&err, Error::FileUnreadable { file, .. } if file == "sub/w.bin"));
        let mut bad = sum.clone();
        bad.files.insert("../etc/passwd".into(), "0".into());
        assert!(matches!(
            bad.verify(&id, dir.path()).unwrap_err(),
            Error::ChecksumMismatch { .. }
        ));
    }
}
