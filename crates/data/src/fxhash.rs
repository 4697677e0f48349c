//! FxHash (rustc's hasher): a multiply-rotate hash, several times faster than SipHash
//! on integer keys. Keys here are ids from our own files, so HashDoS is not a concern.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
pub(crate) type FxHashMap<K, V> = HashMap<K, V, FxBuild>;
pub(crate) type FxHashSet<K> = HashSet<K, FxBuild>;

/// Sorted distinct ids and an id -> position map.
pub(crate) fn index_ids(ids: impl Iterator<Item = i64>) -> (Vec<i64>, FxHashMap<i64, u32>) {
    let mut seen: FxHashSet<i64> = FxHashSet::default();
    for id in ids {
        seen.insert(id);
    }
    let mut sorted: Vec<i64> = seen.into_iter().collect();
    sorted.sort_unstable();
    let map = sorted
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, i as u32))
        .collect();
    (sorted, map)
}
