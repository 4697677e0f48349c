//! The fault-injection suite (issue 19, scope 5): hostile clients, malformed inputs and
//! property tests, each bounded in time and seeded. See docs/operations-hardening.md.
//!
//! Run: `cargo test -p recops --test faults` (about 3 minutes on 2 loaded cores, most of it
//! the `kill -9` suites; `RECOPS_FAULT_SEED=<n>` draws other kill points).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod corpus;
mod kill;
mod props;
mod service;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use recops_serving::{Error, ModelParts, ModelSource, ServingModel};

/// One model in memory: 50 users (ids 1000..1050) x 40 items.
pub(crate) struct OneModel;

pub(crate) const MODEL: &str = "als_20250101_000000";

impl ModelSource for OneModel {
    fn initial_model_id(&self) -> recops_serving::Result<Option<recops_core::ModelId>> {
        Ok(Some(MODEL.parse()?))
    }
    fn load(&self, model_id: &recops_core::ModelId) -> recops_serving::Result<ServingModel> {
        if model_id != MODEL {
            return Err(Error::ModelUnavailable {
                model_id: model_id.to_string(),
                reason: recops_serving::Unavailable::NotRegistered,
            });
        }
        let (nu, ni, k) = (50usize, 40usize, 4usize);
        ServingModel::new(ModelParts {
            model_id: MODEL.parse()?,
            model_type: recops_core::ModelType::Als,
            user_ids: (0..nu as i64).map(|u| 1000 + u).collect(),
            item_ids: (0..ni as i64).map(|i| 500 + i).collect(),
            factors: k,
            user_factors: (0..nu * k).map(|x| ((x * 7 % 11) as f32) / 10.0).collect(),
            item_factors: (0..ni * k).map(|x| ((x * 5 % 13) as f32) / 10.0).collect(),
            seen_indptr: (0..=nu).collect(),
            seen_indices: (0..nu as u32).map(|u| u % ni as u32).collect(),
            item_popularity: (0..ni as u32).map(|i| 100 - i).collect(),
        })
    }
}

pub(crate) fn source() -> Arc<dyn ModelSource> {
    Arc::new(OneModel)
}

/// Raises the soft limit on open files to at least `want` (up to the hard limit);
/// returns the soft limit in force.
pub(crate) fn raise_nofile(want: u64) -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft >= want {
        return soft;
    }
    let target = want.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, target, hard).unwrap();
    target
}

/// Every file under `dir` with its bytes (to prove nothing stored changed).
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
    out
}
